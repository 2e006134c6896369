"""The window trigger once per statement (sql/062) keeps exactly what sql/047's trigger kept
entry by entry: the same statements of entries written into two guilds alike, one with today's
trigger and one with 047's per-row function put back for the test, give the same scores and
the same bucket counts (time zone and month boundaries, seasons, excluded sources and kinds,
reverts, a season reset and its revert, amounts of 0, a member's entries that cancel out within
one statement). Two writers inserting the same members' entries in opposite orders queue on the
scores instead of deadlocking. The webhook outbox rows (sql/052's rule) are one per entry and
wanting endpoint, none for a guild without one or for a reset."""

from __future__ import annotations

import itertools
import json
import threading
from datetime import UTC, datetime

import psycopg
import pytest

pytestmark = pytest.mark.integration

_guilds = itertools.count(948_000_000_000_000_001)
_ops = itertools.count(1)
SETTINGS = {"time_zone": "Europe/Berlin", "window_excluded_kinds": ["deduct"]}
USERS = (11, 12, 13, 14)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _guild(conn: psycopg.Connection) -> tuple[int, int]:
    """A guild with the test's settings, its members and a season (Nov 20 - Dec 10 2026)."""
    guild = next(_guilds)
    conn.execute("INSERT INTO guilds (guild_id, name, settings) VALUES (%s, 'g', %s::jsonb)",
                 (guild, json.dumps(SETTINGS)))  # fmt: skip
    for user in USERS:
        conn.execute("INSERT INTO members (guild_id, user_id) VALUES (%s, %s)", (guild, user))
        conn.execute("INSERT INTO points (guild_id, user_id) VALUES (%s, %s)", (guild, user))
    season = conn.execute(
        "INSERT INTO seasons (guild_id, name, starts_at, ends_at) VALUES (%s, 's', %s, %s) RETURNING id",
        (guild, _utc(2026, 11, 20), _utc(2026, 12, 10)),
    ).fetchone()[0]
    return guild, season


def _insert(conn: psycopg.Connection, guild: int, entries: list[tuple], reverts: dict[int, int]) -> list[int]:
    """One multi-row INSERT of (user, amount, kind, source, at, index of the entry it reverts
    or None) into `guild`; returns the new ids in order."""
    op = conn.execute(
        "INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) VALUES (%s, %s, 'f', 'award') "
        "RETURNING id", (guild, f"op{next(_ops)}")).fetchone()[0]  # fmt: skip
    rows = conn.execute(
        """
        INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, source,
                                  actor_name, created_at, reverts_id)
        SELECT %s, %s, u, a, 0, k, s, 'test', t, r
        FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::timestamptz[], %s::bigint[])
             WITH ORDINALITY AS x (u, a, k, s, t, r, ord)
        ORDER BY ord
        RETURNING id
        """,
        (op, guild, [e[0] for e in entries], [e[1] for e in entries], [e[2] for e in entries],
         [e[3] for e in entries], [e[4] for e in entries],
         [None if e[5] is None else reverts[e[5]] for e in entries]),
    ).fetchall()  # fmt: skip
    return [r[0] for r in rows]


FIRST = [  # user, amount, kind, source, at (UTC), reverts (index into the entries written so far)
    (11, 100, "award", "system", _utc(2026, 11, 30, 22, 30), None),  # Berlin: Dec 1, a new week and month
    (11, 300, "award", "system", _utc(2026, 11, 30, 22, 29), None),  # Berlin: Nov 30 23:59, the old ones
    (12, 5000, "award", "system", _utc(2026, 11, 25), None),
    (12, -40, "deduct", "system", _utc(2026, 11, 25), None),  # excluded kind
    (13, 70, "purchase", "purchase", _utc(2026, 11, 26), None),  # excluded source (default)
    (13, 0, "award", "system", _utc(2026, 11, 26), None),  # amount 0
    (14, 900, "award", "system", _utc(2026, 11, 10), None),  # before the season
    (14, -900, "season_reset", "season_reset", _utc(2026, 11, 26), None),  # a reset never counts
    (12, 130, "award", "system", _utc(2026, 11, 25, 1), None),
    (11, 9, "award", "system", _utc(2026, 12, 2), None),
]
SECOND = [
    (11, -100, "revert", "system", _utc(2026, 12, 3), 0),  # counts in the reverted entry's windows
    (13, -70, "revert", "purchase", _utc(2026, 12, 3), 4),  # the reverted entry never counted
    (14, 900, "revert", "season_reset", _utc(2026, 12, 3), 7),  # the revert of a reset never counts
    (12, 77, "award", "system", _utc(2026, 12, 3), None),
    (12, -77, "award", "system", _utc(2026, 12, 3), None),  # cancels the one before: a score of 0 stays
    (13, 128, "award", "system", _utc(2026, 12, 3), None),  # crosses into the first class above 127
    (11, 1_000_000_000_000, "award", "system", _utc(2026, 11, 21), None),
    (14, -5, "award", "system", _utc(2026, 12, 9, 23, 59), None),  # the season's last day
    (12, 20, "award", "system", _utc(2026, 12, 10), None),  # the season ended at that instant
]


def _windows(conn: psycopg.Connection, guild: int, season: int) -> tuple[dict, dict]:
    scores = {
        (p.replace(f"season:{season}", "season"), u): s
        for p, u, s in conn.execute(
            "SELECT period, user_id, score FROM window_scores WHERE guild_id = %s", (guild,)
        ).fetchall()
    }
    counts = {
        (p.replace(f"season:{season}", "season"), t, b): n
        for p, t, b, n in conn.execute(
            "SELECT period, tier, bucket, sum(members) FROM window_counts WHERE guild_id = %s "
            "GROUP BY 1, 2, 3 HAVING sum(members) <> 0",
            (guild,),
        ).fetchall()
    }
    return scores, counts


def _counted(conn: psycopg.Connection, guild: int, season: int) -> dict:
    """The bucket counts as counting the scores gives them."""
    return {
        (p.replace(f"season:{season}", "season"), t, b): n
        for p, t, b, n in conn.execute(
            "SELECT period, 0::smallint, balance_bucket(score), count(*) FROM window_scores WHERE guild_id = %(g)s "
            "GROUP BY 1, 3 UNION ALL SELECT period, 1::smallint, balance_class(score), count(*) FROM window_scores "
            "WHERE guild_id = %(g)s GROUP BY 1, 3",
            {"g": guild},
        ).fetchall()
    }


def _per_row_trigger(conn: psycopg.Connection) -> None:
    """In this transaction only: sql/047's per-row trigger in place of the statement trigger."""
    conn.execute("ALTER TABLE transactions DISABLE TRIGGER transactions_window_scores")
    conn.execute(
        "CREATE TRIGGER test_window_scores_per_row AFTER INSERT ON transactions FOR EACH ROW "
        "WHEN (NEW.source <> 'season_reset') EXECUTE FUNCTION transactions_window_scores()"
    )


def test_a_statement_of_many_entries_keeps_what_the_per_row_trigger_kept(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        ours, ours_season = _guild(conn)
        ref, ref_season = _guild(conn)
        conn.commit()
        ids = _insert(conn, ours, FIRST, {})
        _insert(conn, ours, SECOND, dict(enumerate(ids)))
        conn.commit()
        _per_row_trigger(conn)
        ids = _insert(conn, ref, FIRST, {})
        _insert(conn, ref, SECOND, dict(enumerate(ids)))
        ref_windows = _windows(conn, ref, ref_season)
        conn.rollback()  # the per-row trigger goes, and the reference's rows with it
        our_windows = _windows(conn, ours, ours_season)
        assert our_windows[0] == ref_windows[0]
        assert our_windows[1] == ref_windows[1]
        assert our_windows[1] == _counted(conn, ours, ours_season)
        scores = our_windows[0]
        assert scores[("week:2026-11-30", 12)] == 0  # +77 and -77 in one statement: the row stays, at 0
        assert scores[("week:2026-11-30", 11)] == 309 and scores[("month:2026-12-01", 11)] == 9
        assert scores[("month:2026-11-01", 11)] == 300 + 1_000_000_000_000
        assert ("week:2026-11-23", 13) not in scores and ("month:2026-11-01", 14) in scores
        assert scores[("season", 14)] == -5 and scores[("season", 12)] == 5000 + 130
        assert len(scores) == len(ref_windows[0]) > 10


def test_one_entry_at_a_time_and_one_statement_keep_the_same_windows(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        together, together_season = _guild(conn)
        apart, apart_season = _guild(conn)
        ids = _insert(conn, together, FIRST, {})
        _insert(conn, together, SECOND, dict(enumerate(ids)))
        ids = [_insert(conn, apart, [e], {})[0] for e in FIRST]
        for e in SECOND:
            _insert(conn, apart, [e], dict(enumerate(ids)))
        conn.commit()
        assert _windows(conn, together, together_season) == _windows(conn, apart, apart_season)


def test_two_writers_of_the_same_members_in_opposite_orders_queue_and_never_deadlock(
    database_url: str,
) -> None:
    with psycopg.connect(database_url) as conn:
        guild, _ = _guild(conn)
        many = list(range(100, 160))
        for user in many:
            conn.execute("INSERT INTO members (guild_id, user_id) VALUES (%s, %s)", (guild, user))
            conn.execute("INSERT INTO points (guild_id, user_id) VALUES (%s, %s)", (guild, user))
        conn.commit()
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(users: list[int]) -> None:
        try:
            with psycopg.connect(database_url) as conn:
                conn.execute("SET deadlock_timeout = '50ms'")
                start.wait()
                for _ in range(15):
                    _insert(
                        conn, guild, [(u, 1, "award", "system", _utc(2026, 12, 3), None) for u in users], {}
                    )
                    conn.commit()
        except BaseException as failed:  # reported below
            errors.append(failed)

    threads = [threading.Thread(target=writer, args=(order,)) for order in (many, many[::-1])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [], errors
    with psycopg.connect(database_url) as conn:
        got = conn.execute(
            "SELECT count(*), min(score), max(score) FROM window_scores WHERE guild_id = %s AND period = 'week:2026-11-30'",
            (guild,),
        ).fetchone()
        assert got == (len(many), 30, 30)


def test_webhook_rows_one_per_entry_and_endpoint_none_without_one_or_for_a_reset(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        hooked, _ = _guild(conn)
        quiet, _ = _guild(conn)
        for events in (["entry.created", "entry.reverted"], ["entry.reverted"], ["purchase.created"]):
            conn.execute(
                "INSERT INTO webhooks (guild_id, url, secret, events) VALUES (%s, 'https://example.org/h', 'whsec_x', %s)",
                (hooked, events),
            )
        conn.execute(
            "INSERT INTO webhooks (guild_id, url, secret, events, enabled, disabled_reason) "
            "VALUES (%s, 'https://example.org/off', 'whsec_x', ARRAY['entry.created'], FALSE, 'admin')",
            (hooked,),
        )
        ids = _insert(conn, hooked, FIRST, {})
        second = _insert(conn, hooked, SECOND, dict(enumerate(ids)))
        quiet_ids = _insert(conn, quiet, FIRST, {})
        _insert(conn, quiet, SECOND, dict(enumerate(quiet_ids)))
        conn.commit()
        rows = conn.execute(
            "SELECT d.event_type, (d.data ->> 'id')::bigint, d.event_id, w.events FROM webhook_deliveries d "
            "JOIN webhooks w ON w.id = d.webhook_id WHERE d.guild_id = %s ORDER BY d.id",
            (hooked,),
        ).fetchall()
        (quiet_rows,) = conn.execute(
            "SELECT count(*) FROM webhook_deliveries WHERE guild_id = %s", (quiet,)
        ).fetchone()
        assert quiet_rows == 0
    entries = [(i, e) for i, e in zip(ids + second, FIRST + SECOND, strict=True) if e[3] != "season_reset"]
    expected = []
    for entry_id, e in entries:
        kind = "entry.reverted" if e[2] == "revert" else "entry.created"
        expected += [(kind, entry_id)] * (2 if kind == "entry.reverted" else 1)
    assert [(r[0], r[1]) for r in rows] == expected
    by_entry: dict[int, set] = {}
    for _, entry_id, event_id, _ in rows:
        by_entry.setdefault(entry_id, set()).add(event_id)
    assert all(len(events) == 1 for events in by_entry.values())  # one event id per entry
    assert len({next(iter(v)) for v in by_entry.values()}) == len(by_entry)
