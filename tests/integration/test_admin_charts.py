"""The dashboard's charts and top earners on a real Postgres: every figure equals the SQL sum of
the ledger (or the DMs) for that UTC day, kept days included; the top earners are the boards'
tops; an admin's time zone is stored only when Postgres and Python both know it."""

from __future__ import annotations

import pytest

from pointsbot import ledger
from pointsbot.admin import preferences, stats
from pointsbot.admin.sessions import Identity
from pointsbot.community import members, windows
from pointsbot.platform.errors import InvalidInput

pytestmark = pytest.mark.integration
GUILD = 890_000_000_000_000_001
USERS = [891_000_000_000_000_000 + i for i in range(1, 13)]


@pytest.fixture(scope="module")
def history(db):
    """120 days of entries (several members a day, credits and debits, some days empty) and DMs
    of every outcome, written with past dates as an import would; then entries today."""

    def setup(conn):
        conn.execute("INSERT INTO guilds (guild_id, name) VALUES (%s, 'Charts')", (GUILD,))
        for user in USERS:
            members.remember(conn, GUILD, user, f"u{user % 100}", f"User {user % 100}")
        op = conn.execute("INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) "
                          "VALUES (%s, 'charts', 'x', 'award') RETURNING id", (GUILD,)).fetchone()[0]  # fmt: skip
        conn.execute(
            """
            INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, source, created_at)
            SELECT %(op)s, %(g)s, %(base)s + 1 + (d * 7 + k) %% 12,
                   CASE WHEN k %% 3 = 0 THEN -(d %% 9 + 1) ELSE d + k END, 0,
                   CASE WHEN k %% 3 = 0 THEN 'deduct' ELSE 'award' END, 'system',
                   date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                     - make_interval(days => d) + make_interval(mins => k * 97)
            FROM generate_series(1, 120) d, generate_series(0, 8) k
            WHERE d %% 11 <> 0 AND k <= d %% 9
            """,
            {"op": op, "g": GUILD, "base": USERS[0] - 1},
        )
        conn.execute(
            """
            INSERT INTO direct_messages (guild_id, user_id, content, status, created_at)
            SELECT %(g)s, %(base)s + 1 + k %% 12, 'hi',
                   CASE WHEN k %% 4 = 0 THEN 'failed' ELSE 'sent' END,
                   date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                     - make_interval(days => d) + make_interval(mins => k * 131)
            FROM generate_series(1, 95) d, generate_series(0, 5) k WHERE k <= d %% 6
            """,
            {"g": GUILD, "base": USERS[0] - 1},
        )
        conn.execute("UPDATE points p SET balance = s.total FROM (SELECT user_id, sum(amount) total FROM transactions "
                     "WHERE guild_id = %s GROUP BY user_id) s WHERE p.guild_id = %s AND p.user_id = s.user_id",
                     (GUILD, GUILD))  # fmt: skip

    db.run(setup)
    for i, user in enumerate(USERS[:5]):  # today, through the ledger (so the window boards move too)
        db.run(lambda conn, u=user, n=i: ledger.award(conn, guild_id=GUILD, user_id=u, amount=10 * (n + 1),
               reason="today", actor_id=None, actor_name="local:t", source="admin_site", idempotency_key=f"today-{u}"))  # fmt: skip
    db.run(lambda conn: ledger.deduct(conn, guild_id=GUILD, user_id=USERS[0], amount=3, reason="today",
           actor_id=None, actor_name="local:t", source="admin_site", idempotency_key="today-d"))  # fmt: skip


_LEDGER_DAYS = """
SELECT d::date, coalesce(sum(t.amount) FILTER (WHERE t.amount > 0), 0),
       coalesce(-sum(t.amount) FILTER (WHERE t.amount < 0), 0), count(DISTINCT t.user_id)
FROM generate_series((now() AT TIME ZONE 'UTC')::date - (%(n)s - 1), (now() AT TIME ZONE 'UTC')::date, interval '1 day') d
LEFT JOIN transactions t ON t.guild_id = %(g)s AND (t.created_at AT TIME ZONE 'UTC')::date = d::date
GROUP BY 1 ORDER BY 1
"""
_DM_DAYS = """
SELECT d::date, count(m.id) FILTER (WHERE m.status = 'sent'), count(m.id) FILTER (WHERE m.status = 'failed'),
       count(m.id) FILTER (WHERE m.status IN ('queued', 'sending'))
FROM generate_series((now() AT TIME ZONE 'UTC')::date - (%(n)s - 1), (now() AT TIME ZONE 'UTC')::date, interval '1 day') d
LEFT JOIN direct_messages m ON m.guild_id = %(g)s AND (m.created_at AT TIME ZONE 'UTC')::date = d::date
GROUP BY 1 ORDER BY 1
"""


@pytest.mark.parametrize("days", [7, 30, 90])
def test_each_days_points_and_active_members_are_the_ledgers_sums(db, sql, history, days):
    expected = sql(_LEDGER_DAYS, {"n": days, "g": GUILD})
    # When the chart's series is read the first time (days summed and kept) and again (from the kept days)
    for _ in range(2):
        series = db.run(stats.daily_series, GUILD, days)
        # Then every day is the ledger's exact sum for that UTC day
        assert [(t.day, t.issued, t.removed, t.active_members) for t in series] == expected
    assert sum(t.active_members for t in series) > 0 and series[-1].removed == 3
    # And read as the dashboard reads it (one now() for all its reads), it is the same
    paged = db.run(lambda conn: stats.daily_series(conn, GUILD, days, stats.transaction_now(conn)))
    assert [(t.day, t.issued, t.removed, t.active_members) for t in paged] == expected
    # And the closed days are kept, today is not
    kept = sql("SELECT count(*), max(day) FROM admin_daily_totals WHERE guild_id = %s AND day >= %s",
               (GUILD, expected[0][0]))[0]  # fmt: skip
    assert kept == (days - 1, expected[-2][0])


@pytest.mark.parametrize("days", [7, 30, 90])
def test_each_days_dm_outcomes_are_the_dm_tables_counts(db, sql, history, days):
    expected = sql(_DM_DAYS, {"n": days, "g": GUILD})
    for _ in range(2):
        dms = db.run(stats.dm_series, GUILD, days)
        assert [(d.day, d.sent, d.failed, d.waiting) for d in dms] == expected
    assert sum(d.failed for d in dms) > 0
    paged = db.run(lambda conn: stats.dm_series(conn, GUILD, days, stats.transaction_now(conn)))
    assert [(d.day, d.sent, d.failed, d.waiting) for d in paged] == expected


def test_a_day_with_a_dm_on_its_way_is_not_kept_until_it_ends(db, sql, history):
    # Given a DM from 3 days ago still queued
    three_days_ago = sql("SELECT (now() AT TIME ZONE 'UTC')::date - 3")[0][0]
    sql("DELETE FROM admin_daily_dms WHERE guild_id = %s AND day = %s", (GUILD, three_days_ago))
    dm_id = sql("INSERT INTO direct_messages (guild_id, user_id, content, status, created_at) "
                "VALUES (%s, %s, 'late', 'queued', now() - interval '3 days') RETURNING id", (GUILD, USERS[0]))[0][0]  # fmt: skip
    day = three_days_ago
    before = {d.day: d for d in db.run(stats.dm_series, GUILD, 7)}[day]
    # Then it shows as on its way, and that day is not kept
    assert before.waiting == 1
    assert (
        sql("SELECT count(*) FROM admin_daily_dms WHERE guild_id = %s AND day = %s", (GUILD, day))[0][0] == 0
    )
    # When it fails for good, the day shows it and is kept with it
    sql("UPDATE direct_messages SET status = 'failed' WHERE id = %s", (dm_id,))
    after = {d.day: d for d in db.run(stats.dm_series, GUILD, 7)}[day]
    assert (after.failed, after.waiting) == (before.failed + 1, 0)
    assert (
        sql("SELECT failed FROM admin_daily_dms WHERE guild_id = %s AND day = %s", (GUILD, day))[0][0]
        == after.failed
    )


def test_another_period_is_refused_in_words(db, history):
    for days in (0, 14, 365):
        with pytest.raises(InvalidInput, match="7, 30 or 90 days"):
            db.run(stats.daily_series, GUILD, days)
        with pytest.raises(InvalidInput, match="7, 30 or 90 days"):
            db.run(stats.dm_series, GUILD, days)
    with pytest.raises(InvalidInput, match="all time, week, month or season"):
        db.run(stats.top_earners, GUILD, "year")


def test_top_earners_all_time_are_the_highest_balances(db, sql, history):
    top = db.run(stats.top_earners, GUILD, "all")
    expected = sql("SELECT user_id, balance FROM points WHERE guild_id = %s ORDER BY balance DESC, user_id LIMIT 10",
                   (GUILD,))  # fmt: skip
    assert [(r.user_id, r.balance) for r in top.rows] == expected
    assert top.members == len(USERS) and top.rows[0].rank == 1


@pytest.mark.parametrize("period", ["week", "month"])
def test_top_earners_of_a_window_are_that_windows_scores(db, sql, history, period):
    top = db.run(stats.top_earners, GUILD, period)
    window = db.run(windows.window_for, GUILD, period)
    # Then they are the members who earned most in it: the SQL sum of their entries inside its
    # bounds (every entry here counts: none is a purchase), ties by user id
    expected = sql(
        "SELECT user_id, sum(amount) FROM transactions WHERE guild_id = %s AND created_at >= %s AND created_at < %s "
        "GROUP BY user_id ORDER BY 2 DESC, 1 LIMIT 10",
        (GUILD, window.starts_at, window.ends_at),
    )
    assert [(r.user_id, r.balance) for r in top.rows] == [(u, int(s)) for u, s in expected]
    assert top.window == window and len(top.rows) >= 5


def test_top_earners_of_a_season_when_none_is_running(db, history):
    top = db.run(stats.top_earners, GUILD, "season")
    assert top.no_season and top.rows == ()


# -- the admin's time zone ---------------------------------------------------------------------
def test_the_time_zone_is_the_admins_else_the_guilds_else_utc(db, sql, history):
    alice = Identity("local", "Alice", (GUILD,))
    bob = Identity("discord", "bob", (GUILD,), user_id=892_000_000_000_000_001)
    assert db.run(preferences.time_zone, alice, GUILD).zone == "UTC"
    db.run(windows.set_time_zone, GUILD, "America/New_York")
    assert db.run(preferences.time_zone, alice, GUILD).zone == "America/New_York"
    db.run(preferences.set_time_zone, alice, "Europe/Berlin")
    assert db.run(preferences.time_zone, alice, GUILD).zone == "Europe/Berlin"
    assert db.run(preferences.time_zone, bob, GUILD).zone == "America/New_York"  # each admin their own
    # the same local account, whatever the case of its name at sign-in
    assert db.run(preferences.time_zone, Identity("local", "ALICE", (GUILD,)), None).zone == "Europe/Berlin"
    db.run(preferences.set_time_zone, alice, None)
    assert db.run(preferences.time_zone, alice, GUILD).own is None
    sql("UPDATE guilds SET settings = settings - 'time_zone' WHERE guild_id = %s", (GUILD,))


@pytest.mark.parametrize("bad", ["Mars/Olympus", "", "Europe/../etc/passwd", "x" * 100, "Europe/Berlin\x00"])
def test_an_unknown_time_zone_is_refused_in_words_and_nothing_is_written(db, sql, bad):
    carol = Identity("local", "carol", (GUILD,))
    with pytest.raises(InvalidInput, match="not a time zone I know"):
        db.run(preferences.set_time_zone, carol, bad)
    assert sql("SELECT count(*) FROM admin_preferences WHERE admin_key = 'local:carol'")[0][0] == 0


def test_kept_days_never_hold_today_and_a_late_entry_today_shows_at_once(db, sql, history, settings):
    before = db.run(stats.daily_series, GUILD, 7)[-1]
    db.run(lambda conn: ledger.award(conn, guild_id=GUILD, user_id=USERS[11], amount=1000, reason="late",
           actor_id=None, actor_name="local:t", source="admin_site", idempotency_key="late-1"))  # fmt: skip
    after = db.run(stats.daily_series, GUILD, 7)[-1]
    assert after.issued == before.issued + 1000 and after.active_members == before.active_members + 1
    assert (
        sql("SELECT count(*) FROM admin_daily_totals WHERE guild_id = %s AND day = %s", (GUILD, after.day))[
            0
        ][0]
        == 0
    )
