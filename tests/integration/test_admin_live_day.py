"""The dashboard's live day (stats.live_today, sql/064): the kept part plus the entries since is
exactly what summing the whole day gives (stats._sum_days), on the day's first load, after new
entries (new members and members already active), when the kept part moves forward, and when a
new day begins; and the entries since the kept part count their members by probing
transactions_member_idx, not by reading the day again (the plan its comment claims)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from pointsbot.admin import stats

GUILD = 941_300_000_000_000_001
BASE = 7000


def _add(conn, start: datetime, users: range, minutes: float, amount: int = 5) -> None:
    """One entry for each member in `users`, `minutes` after `start`."""
    conn.execute(
        "INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, reason, source, "
        "actor_name, created_at) SELECT (SELECT min(id) FROM operations), %s, %s + i, "
        "CASE WHEN i %% 4 = 0 THEN -%s ELSE %s END, 0, 'award', 'live day', 'slash', 'system', %s "
        "FROM generate_series(%s::int, %s::int) i",
        (GUILD, BASE, amount, amount, start + timedelta(minutes=minutes), users.start, users.stop - 1),
    )


@pytest.fixture
def conn(make_database):
    with psycopg.connect(make_database(), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # rows made by construction
        conn.execute("INSERT INTO guilds (guild_id, name) VALUES (%s, 'live day')", (GUILD,))
        conn.execute(
            "INSERT INTO members (guild_id, user_id, joined_at) SELECT %s, %s + i, now() - interval '2 days' "
            "FROM generate_series(1, 3000) i",
            (GUILD, BASE),
        )
        conn.execute(
            "INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) VALUES (%s, 'k', 'f', 'award')",
            (GUILD,),
        )
        yield conn


def _whole_day(conn, day_start: datetime) -> stats.DayTotal:
    found = stats._sum_days(conn, GUILD, day_start, day_start + timedelta(days=1))
    return found.get(day_start.date(), stats.DayTotal(day_start.date(), 0, 0, 0, 0))


def test_kept_part_plus_the_entries_since_is_the_whole_day(conn):
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    _add(conn, day - timedelta(days=1), range(1, 500), 600)  # yesterday's: not today's
    _add(conn, day, range(1, 1000), 30)
    _add(conn, day, range(500, 1500), 200)  # half of them active already today
    now = day + timedelta(hours=6)

    first = stats.live_today(conn, GUILD, now)
    assert first == _whole_day(conn, day)
    kept = conn.execute(
        "SELECT upto, entries, active FROM admin_live_day WHERE guild_id = %s", (GUILD,)
    ).fetchone()
    assert kept == (now - stats._FINAL_AFTER, 1999, 1499)

    # New entries after the kept moment: members already counted and new ones.
    _add(conn, day, range(1200, 2200), 356)
    _add(conn, day, range(2100, 2300), 357, amount=7)
    assert stats.live_today(conn, GUILD, now + timedelta(minutes=2)) == _whole_day(conn, day)
    assert conn.execute("SELECT upto FROM admin_live_day").fetchone()[0] == kept[0]  # not moved yet

    # Later: the kept part moves forward over those entries, the totals stay the day's.
    later = now + timedelta(minutes=30)
    assert stats.live_today(conn, GUILD, later) == _whole_day(conn, day)
    assert conn.execute("SELECT upto FROM admin_live_day").fetchone()[0] == later - stats._FINAL_AFTER
    _add(conn, day, range(1, 3001), 390)
    assert stats.live_today(conn, GUILD, later + timedelta(minutes=1)) == _whole_day(conn, day)

    # The next day starts from nothing kept.
    tomorrow = day + timedelta(days=1)
    _add(conn, tomorrow, range(1, 10), 5)
    assert stats.live_today(conn, GUILD, tomorrow + timedelta(minutes=20)) == _whole_day(conn, tomorrow)
    assert conn.execute("SELECT day FROM admin_live_day").fetchone()[0] == tomorrow.date()


def test_daily_series_today_is_the_whole_day(conn):
    now = datetime.now(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    _add(conn, day, range(1, 300), max(0.0, (now - day).total_seconds() / 60 - 20))
    _add(conn, day, range(200, 400), max(0.0, (now - day).total_seconds() / 60 - 1))
    series = stats.daily_series(conn, GUILD, 7)
    assert series[-1] == _whole_day(conn, day)


def test_entries_since_count_their_members_by_probes(conn):
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for hour in range(0, 10):
        _add(conn, day, range(1, 3001), hour * 60)
    conn.execute("ANALYZE transactions")
    params = {"g": GUILD, "d": day, "s": day + timedelta(hours=9), "e": day + timedelta(days=1)}
    plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + stats._LIVE_SINCE, params).fetchall())
    assert "transactions_member_idx" in plan, plan
    assert plan.count("transactions_daily_idx") == 1, plan  # the entries since, once
