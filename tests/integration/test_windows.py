"""Window scores (sql/046): weeks and months in the guild's time zone, exact at the boundaries
(daylight saving changes included), reverts, ties, which sources count; boards and ranks from
the trigger-kept counts agree with the ledger summed naively; the commands and their buttons."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from _command_helpers import GUILD_A, click, new_member, run, seed
from _ledger_checks import award, deduct, key, revert, transfer, violations

from pointsbot import ledger
from pointsbot.community import windows
from pointsbot.ledger import guilds
from pointsbot.platform.errors import InvalidInput

pytestmark = pytest.mark.integration

_guilds = itertools.count(946_000_000_000_000_001)


def _guild(db, **settings) -> int:
    guild = next(_guilds)
    db.run(guilds.ensure_guild, guild)
    if settings:
        db.run(lambda c: c.execute("UPDATE guilds SET settings = settings || %s::jsonb WHERE guild_id = %s",
                                   (__import__("json").dumps(settings), guild)))  # fmt: skip
    return guild


def _entry_at(sql, guild: int, user: int, amount: int, at: datetime, source: str = "system") -> int:
    """A ledger entry made at `at`, written as the ledger writes one (balance moved with it).
    Entries carry their transaction's start time, so a time of our choosing needs this."""
    sql("INSERT INTO members (guild_id, user_id) VALUES (%s, %s) ON CONFLICT DO NOTHING", (guild, user))
    sql("INSERT INTO points (guild_id, user_id) VALUES (%s, %s) ON CONFLICT DO NOTHING", (guild, user))
    sql("INSERT INTO user_stats (guild_id, user_id) VALUES (%s, %s) ON CONFLICT DO NOTHING", (guild, user))
    rows = sql(
        """
        WITH op AS (INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind)
                    VALUES (%(g)s, %(k)s, 'f', 'award') RETURNING id),
             upd AS (UPDATE points SET balance = balance + %(a)s WHERE guild_id = %(g)s AND user_id = %(u)s
                     RETURNING balance),
             st AS (UPDATE user_stats SET transaction_count = transaction_count + 1, total_earned = total_earned + %(a)s
                    WHERE guild_id = %(g)s AND user_id = %(u)s)
        INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, source,
                                  actor_name, created_at)
        SELECT op.id, %(g)s, %(u)s, %(a)s, upd.balance, 'award', %(s)s, 'system', %(at)s FROM op, upd
        RETURNING id
        """,
        {"g": guild, "u": user, "a": amount, "k": key("at"), "at": at, "s": source},
    )
    return rows[0][0]


def _scores(sql, guild: int) -> dict[tuple[str, int], int]:
    return {(p, u): s for p, u, s in sql("SELECT period, user_id, score FROM window_scores WHERE guild_id = %s",
                                         (guild,))}  # fmt: skip


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_week_and_month_boundaries_in_berlin_across_both_dst_changes(db, sql):
    guild = _guild(db, time_zone="Europe/Berlin")
    tick = timedelta(microseconds=1)
    # Autumn: 25 Oct 2026 03:00 CEST -> 02:00 CET. Monday 26 Oct 00:00 CET = 25 Oct 23:00 UTC,
    # and 1 Nov 00:00 CET = 31 Oct 23:00 UTC.
    week_end, month_end = _utc(2026, 10, 25, 23), _utc(2026, 10, 31, 23)
    # Spring: 29 Mar 2026 02:00 CET -> 03:00 CEST. Monday 30 Mar 00:00 CEST = 29 Mar 22:00 UTC,
    # and 1 Apr 00:00 CEST = 31 Mar 22:00 UTC.
    spring_week, spring_month = _utc(2026, 3, 29, 22), _utc(2026, 3, 31, 22)
    _entry_at(sql, guild, 1, 1, week_end - tick)
    _entry_at(sql, guild, 1, 10, week_end)
    _entry_at(sql, guild, 2, 100, month_end - tick)
    _entry_at(sql, guild, 2, 1000, month_end)
    _entry_at(sql, guild, 3, 7, spring_week - tick)
    _entry_at(sql, guild, 3, 70, spring_week)
    _entry_at(sql, guild, 4, 5, spring_month - tick)
    _entry_at(sql, guild, 4, 50, spring_month)
    assert _scores(sql, guild) == {
        ("week:2026-10-19", 1): 1, ("week:2026-10-26", 1): 10, ("month:2026-10-01", 1): 11,
        ("week:2026-10-26", 2): 1100, ("month:2026-10-01", 2): 100, ("month:2026-11-01", 2): 1000,
        ("week:2026-03-23", 3): 7, ("week:2026-03-30", 3): 70, ("month:2026-03-01", 3): 77,
        ("week:2026-03-30", 4): 55, ("month:2026-03-01", 4): 5, ("month:2026-04-01", 4): 50,
    }  # fmt: skip
    # The windows' own bounds, as the boards and /season show them: the autumn week is 169 hours.
    with db.connection() as conn:
        autumn = windows.calendar_window(conn, guild, "week", at=week_end - tick)
        assert (autumn.key, autumn.starts_at, autumn.ends_at) == (
            "week:2026-10-19",
            _utc(2026, 10, 18, 22),
            week_end,
        )
        assert autumn.ends_at - autumn.starts_at == timedelta(hours=169)
        spring = windows.calendar_window(conn, guild, "week", at=spring_week - tick)
        assert spring.ends_at == spring_week and spring.ends_at - spring.starts_at == timedelta(hours=167)
        october = windows.calendar_window(conn, guild, "month", at=month_end)
        assert (october.key, october.starts_at) == ("month:2026-11-01", month_end)
        assert windows.window_from_key(conn, guild, "week:2026-10-26").starts_at == week_end
        assert windows.window_from_key(conn, guild, "week:2026-10-27") is None  # not a Monday
        board = windows.window_board(conn, guild, "week:2026-10-26")
        assert [(r.rank, r.user_id, r.balance) for r in board.rows] == [(1, 2, 1100), (2, 1, 10)]
        assert windows.window_rank(conn, guild, "month:2026-03-01", 3).rank == 1
        assert violations(conn, guild, floor=None) == []
    # The same instants in a UTC guild fall by UTC midnight.
    utc_guild = _guild(db)
    _entry_at(sql, utc_guild, 1, 1, week_end)  # Sunday 23:00 UTC: still the week of the 19th
    _entry_at(sql, utc_guild, 1, 2, _utc(2026, 10, 26))
    assert _scores(sql, utc_guild)[("week:2026-10-19", 1)] == 1
    assert _scores(sql, utc_guild)[("week:2026-10-26", 1)] == 2


def test_a_revert_inside_the_window_moves_the_score_and_the_rank(db, settings):
    guild = _guild(db)
    big = award(db, guild, 11, 50, settings).entry
    award(db, guild, 11, 20, settings)
    award(db, guild, 12, 30, settings)
    with db.connection() as conn:
        week = windows.window_for(conn, guild, "week")
        assert windows.window_rank(conn, guild, week.key, 11).rank == 1
    revert(db, guild, big.id, settings)
    with db.connection() as conn:
        for period in ("week", "month"):
            window = windows.window_for(conn, guild, period)
            place = windows.window_rank(conn, guild, window.key, 11)
            assert (place.rank, place.score, place.total_members) == (2, 20, 2)
            assert [(r.user_id, r.balance) for r in windows.window_board(conn, guild, window.key).rows] == [
                (12, 30), (11, 20)]  # fmt: skip
        assert violations(conn, guild, floor=None) == []


def test_ties_share_a_rank_and_pages_agree_with_the_ledger_summed(db, settings, sql):
    guild = _guild(db)
    scores = {21: 40, 22: 40, 23: 40, 24: 10, 25: 300, 26: 10, 27: -5, 28: 129, 29: 128}
    for user, score in scores.items():
        award(db, guild, user, max(score, 1), settings)
    sql("UPDATE guilds SET settings = settings || '{\"allow_negative\": true}' WHERE guild_id = %s", (guild,))
    deduct(db, guild, 27, 6, settings)  # -5: below zero, still on the board
    expected = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    with db.connection() as conn:
        week = windows.window_for(conn, guild, "week").key
        # the reference: the ledger's entries of the week, summed
        naive = dict(conn.execute(
            "SELECT user_id, sum(amount) FROM transactions WHERE guild_id = %s GROUP BY user_id", (guild,)
        ).fetchall())  # fmt: skip
        assert naive == scores
        listed = []
        for page in range(1, 5):
            board = windows.window_board(conn, guild, week, page, 2)
            assert board.total_members == len(scores) and board.pages == 5
            listed.extend((r.rank, r.user_id, r.balance) for r in board.rows)
        listed.extend(
            (r.rank, r.user_id, r.balance) for r in windows.window_board(conn, guild, week, 5, 2).rows
        )
        model = [(1 + sum(1 for s in scores.values() if s > score), user, score) for user, score in expected]
        assert listed == model
        assert [r[0] for r in model[:5]] == [1, 2, 3, 4, 4] and model[4][0] == 4
        # keyset both ways gives the same rows
        first = windows.window_board(conn, guild, week, 1, 4)
        nxt = windows.window_board(
            conn, guild, week, 2, 4, after=(first.rows[-1].balance, first.rows[-1].user_id)
        )
        assert [(r.rank, r.user_id) for r in nxt.rows] == [(m[0], m[1]) for m in model[4:8]]
        back = windows.window_board(
            conn, guild, week, 1, 4, before=(nxt.rows[0].balance, nxt.rows[0].user_id)
        )
        assert back.rows == first.rows
        for rank, user, score in model:
            place = windows.window_rank(conn, guild, week, user)
            assert (place.rank, place.score, place.on_board) == (rank, score, True)
        stranger = windows.window_rank(conn, guild, week, 99)
        assert (stranger.on_board, stranger.rank) == (False, 1 + sum(1 for s in scores.values() if s > 0))
        counts = dict(conn.execute(
            "SELECT tier, sum(members) FROM window_counts WHERE guild_id = %s AND period = %s GROUP BY tier",
            (guild, week)).fetchall())  # fmt: skip
        assert counts == {0: len(scores), 1: len(scores)}


def test_purchases_never_count_by_default_and_a_guild_chooses_what_counts(db, settings, sql):
    guild = _guild(db)
    award(db, guild, 31, 100, settings)
    with db.connection() as conn, conn.transaction():
        policy = guilds.guild_policy(conn, settings, guild)
        ledger.purchase_debit(conn, guild_id=guild, user_id=31, price=60, reason="hat",
                              idempotency_key=key("buy"), policy=policy)  # fmt: skip
    transfer(db, guild, 31, 32, 15, settings)
    with db.connection() as conn:
        week = windows.window_for(conn, guild, "week").key
        assert windows.window_rank(conn, guild, week, 31).score == 85  # 100 - 15, the purchase left out
        assert windows.window_rank(conn, guild, week, 32).score == 15
    with db.connection() as conn, conn.transaction():
        windows.set_counting(conn, guild, excluded_sources=["purchase", "purchase_refund"],
                             excluded_kinds=["transfer_out"])  # fmt: skip
    transfer(db, guild, 31, 32, 5, settings)
    with db.connection() as conn:
        assert windows.window_rank(conn, guild, week, 31).score == 85  # a gift out no longer counts
        assert windows.window_rank(conn, guild, week, 32).score == 20
        with pytest.raises(InvalidInput):
            windows.set_counting(conn, guild, excluded_sources=["nope"])
        assert violations(conn, guild) == []


def test_time_zone_setting_is_checked_and_an_unknown_one_writes_nothing(db, sql):
    guild = _guild(db)
    with db.connection() as conn:
        for bad in ("Mars/Olympus", "", "../etc/passwd", "Europe/Ber lin", "EST5EDT/x", "x" * 100, 7):
            with pytest.raises(InvalidInput) as refused:
                windows.set_time_zone(conn, guild, bad)
            assert "time zone" in refused.value.message
        conn.rollback()
    assert sql("SELECT settings FROM guilds WHERE guild_id = %s", (guild,))[0][0] == {}
    with db.connection() as conn, conn.transaction():
        assert windows.set_time_zone(conn, guild, "America/New_York") == "America/New_York"
    assert (
        sql("SELECT settings ->> 'time_zone' FROM guilds WHERE guild_id = %s", (guild,))[0][0]
        == "America/New_York"
    )


def test_leaderboard_and_rank_commands_by_period_and_their_buttons(db, settings):
    first, second = new_member(), new_member()
    seed(db, settings, GUILD_A, first, 70)
    seed(db, settings, GUILD_A, second, 30)
    week = run(db, settings, "leaderboard", {"period": "week"})
    assert week.status == "ok" and "Leaderboard: the week of" in week.reply.content
    assert f"<@{first}>" in week.reply.content
    buttons = [b for row in week.reply.components if row["type"] == 1 for b in row["components"]]
    next_id = buttons[2]["custom_id"]
    assert next_id.startswith("leaderboard:") and ":week:" in next_id and len(next_id) <= 100
    assert all(
        ":week:" in b["custom_id"] and len(b["custom_id"]) <= 100 for b in buttons
    )  # First, Last, Me too
    clicked = click(db, settings, next_id)
    assert clicked.status == "ok" and "the week of" in clicked.reply.content
    me = click(db, settings, buttons[4]["custom_id"], user_id=second)
    assert me.status == "ok" and "the week of" in me.reply.content and f"<@{second}>" in me.reply.content
    # a button from before periods existed still leads to the all-time board
    old = click(db, settings, "leaderboard:1:next")
    assert old.status == "ok" and old.reply.content.startswith("### 🏆 Leaderboard\nPage ")
    # a forged window key gets a plain answer
    forged = click(db, settings, "leaderboard:1:next:::season:999999")
    assert forged.status == "ok" and "no longer available" in forged.reply.content
    rank = run(db, settings, "rank", {"period": "month"}, user_id=first)
    assert "in " in rank.reply.content and "ranked **#" in rank.reply.content
    nobody = run(db, settings, "rank", {"period": "week"}, user_id=new_member())
    assert "yet" in nobody.reply.content
    season = run(db, settings, "leaderboard", {"period": "season"})
    assert "No season is running" in season.reply.content
    bad = run(db, settings, "rank", {"period": "decade"})
    assert bad.status == "refused" and "period is one of" in bad.reply.content
