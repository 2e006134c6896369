"""What the achievement sweep reads per batch (issue 14, goal 6), on a guild large enough that
the planner chooses by cost: key ranges whose index scans stop at the batch's last key
(platform.keyset), and a batch query that reads each member's balance, counters and approved
email once and probes member_achievements only for the pairs that qualify. Checked by the
pages and loops in EXPLAIN (ANALYZE, BUFFERS), not by time."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest

from pointsbot.platform.keyset import member_key_range

GUILD = 940_900_000_000_000_001
NEXT_GUILD = GUILD + 1  # after GUILD in key order
MEMBERS = 30_000
MIN_KEY = -(2**63)
MAX_KEY = 2**63 - 1


@pytest.fixture(scope="module")
def big(make_database) -> Iterator[str]:
    """GUILD with 30,000 members (user ids 1..30,000): balances, counters, 1% approved emails,
    entries of the last days for 10%; NEXT_GUILD with 50 members. Analyzed."""
    dsn = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for guild, members in ((GUILD, MEMBERS), (NEXT_GUILD, 50)):
            conn.execute("INSERT INTO guilds (guild_id, name) VALUES (%s, 'big')", (guild,))
            conn.execute(
                "INSERT INTO members (guild_id, user_id, joined_at) "
                "SELECT %s, i, now() - make_interval(days => i %% 400) FROM generate_series(1, %s) i",
                (guild, members),
            )
            conn.execute(
                "INSERT INTO points (guild_id, user_id, balance) SELECT %s, i, (i * 7919) %% 100000 "
                "FROM generate_series(1, %s) i",
                (guild, members),
            )
            conn.execute(
                "INSERT INTO user_stats (guild_id, user_id, transaction_count, total_earned) "
                "SELECT guild_id, user_id, 1 + user_id %% 50, balance FROM points WHERE guild_id = %s",
                (guild,),
            )
        conn.execute(
            "INSERT INTO email_submissions (guild_id, user_id, email, status) "
            "SELECT %s, i, 'm' || i || '@example.org', 'approved' FROM generate_series(1, %s, 100) i",
            (GUILD, MEMBERS),
        )
        conn.execute(
            "INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) "
            "SELECT %s, 'r-' || i, '', 'award' FROM generate_series(1, %s, 10) i",
            (GUILD, MEMBERS),
        )
        conn.execute(
            "INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, source, created_at) "
            "SELECT o.id, o.guild_id, substr(o.idempotency_key, 3)::bigint, 600, 0, 'award', 'system', "
            "now() - interval '1 day' FROM operations o WHERE o.guild_id = %s",
            (GUILD,),
        )
        conn.execute("VACUUM ANALYZE members, points, user_stats, email_submissions, transactions")
    return dsn


def _plan(conn: psycopg.Connection, sql: str, params: dict, execute=None) -> dict:
    row = (execute or conn.execute)("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params).fetchone()[0]
    return (row if isinstance(row, list) else json.loads(row))[0]["Plan"]


def _nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _pages(node: dict) -> int:
    return node["Shared Hit Blocks"] + node["Shared Read Blocks"]


@pytest.mark.parametrize(
    ("after", "upto"),
    [
        ((GUILD, 100), (GUILD, 1100)),  # inside one guild
        ((MIN_KEY, MIN_KEY), (GUILD, 40)),  # the sweep's first batch
        ((GUILD, MEMBERS - 20), (NEXT_GUILD, 10)),  # across the end of a guild
        ((GUILD, 0), (GUILD, MAX_KEY)),  # a whole guild ("check now")
        ((GUILD, MEMBERS), (NEXT_GUILD, MAX_KEY)),  # nothing left in the first guild
    ],
)
def test_a_key_range_selects_exactly_the_keys_after_its_start_up_to_its_end(big, after, upto) -> None:
    where, params = member_key_range("m", after, upto)
    with psycopg.connect(big) as conn:
        everyone = conn.execute("SELECT guild_id, user_id FROM members ORDER BY 1, 2").fetchall()
        got = conn.execute(f"SELECT m.guild_id, m.user_id FROM members m WHERE {where} ORDER BY 1, 2", params)
        assert got.fetchall() == [k for k in everyone if after < k <= upto]


@pytest.mark.parametrize(
    ("after", "upto"),
    [
        ((GUILD, 100), (GUILD, 1100)),  # 1,000 members at the start of a guild of 30,000
        ((GUILD, MEMBERS - 20), (NEXT_GUILD, 10)),  # across the end of a guild
    ],
)
def test_a_key_range_scan_stops_at_the_end_of_the_range(big, after, upto) -> None:
    # keyset's docstring: the scan reads the range's pages, not the rest of the guild (the row
    # comparison alone read the index to its end: about 90 leaf pages of the 29,000 members after
    # the first range here).
    where, params = member_key_range("m", after, upto)
    with psycopg.connect(big) as conn:
        plan = _plan(conn, f"SELECT count(*) FROM members m WHERE {where}", params)
    scan = next(n for n in _nodes(plan) if n["Node Type"] in ("Index Only Scan", "Index Scan"))
    assert scan["Index Name"] == "members_pkey"
    assert scan["Actual Rows"] <= 1000
    assert _pages(scan) <= 12, scan


def test_a_batch_reads_each_member_once_and_probes_held_pairs_only_where_they_qualify(big, settings) -> None:
    # achievements._BATCH_QUALIFIES's comment: points, user_stats, the approved emails and the
    # entries of the window are read once over the batch's range (one scan each, not a probe per
    # member and achievement), and member_achievements is probed once per qualifying pair.
    from pointsbot.community.achievements import SweepSnapshot, _due

    with psycopg.connect(big) as conn:
        defs = [
            ("Veteran", "member_days", 0, 365),
            ("Rich", "balance_at_least", 90_000, None),
            ("Verified", "email_approved", 0, None),
            ("Hot", "earned_within_days", 500, 7),
            ("Busy", "transactions_at_least", 45, None),
        ]
        for name, criterion, threshold, days in defs:
            conn.execute(
                "INSERT INTO achievements (guild_id, name, criterion, threshold, window_days, bonus_points) "
                "VALUES (%s, %s, %s, %s, %s, 1)",
                (GUILD, name, criterion, threshold, days),
            )
        snapshot = SweepSnapshot(conn.execute("SELECT now()").fetchone()[0], {})
        after, upto = (GUILD, 5000), (GUILD, 6000)
        due = _due(conn, after, upto, snapshot)
        assert due  # some of the 1,000 qualify for something
        captured: list[dict] = []
        real = conn.execute

        def explain(sql, params=None):
            captured.append(_plan(conn, sql, params, real))
            return real(sql, params)

        conn.execute = explain  # type: ignore[method-assign]
        try:
            assert _due(conn, after, upto, snapshot) == due
        finally:
            conn.execute = real  # type: ignore[method-assign]
        conn.rollback()
    nodes = list(_nodes(captured[0]))
    by_index: dict[str, list[dict]] = {}
    for n in nodes:
        if "Index Name" in n:
            by_index.setdefault(n["Index Name"], []).append(n)
    for index in (
        "members_pkey",
        "points_pkey",
        "user_stats_pkey",
        "email_submissions_approved_idx",
        "transactions_member_idx",  # the batch's entries, once for the one earned_within_days
    ):
        (scan,) = by_index[index]
        assert scan["Actual Loops"] == 1, (index, scan["Actual Loops"])
        assert scan["Actual Rows"] <= 1000
    # member_achievements: one probe per qualifying pair (the pairs found, none held yet).
    (held,) = by_index["member_achievements_pkey"]
    assert held["Actual Loops"] == len(due)
    # Nothing read every approved email or every member of the guild.
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan" and n.get("Relation Name") != "achievements"]
