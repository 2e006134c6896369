"""Seasons: starting one (and the plain refusals that write nothing), the season's window, the
end run exactly once (run twice, killed midway), prizes, the reset and its revert as one batch,
the final top 10 posted through the Discord stand-in, and the commands."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from _command_helpers import admin, counts, run
from _dm_fixtures import discord_fixture
from _ledger_checks import award, revert, violations

from pointsbot.commands import dispatch
from pointsbot.community import roles, seasons, windows
from pointsbot.discord import cards, interactions
from pointsbot.ledger import guilds
from pointsbot.platform.errors import InvalidInput
from pointsbot_local import discord_standin_rest
from pointsbot_local.simulate import autocomplete_payload

pytestmark = pytest.mark.integration
__all__ = ["discord_fixture"]

_guilds = itertools.count(947_000_000_000_000_001)
state = discord_standin_rest.state


class Killed(Exception):
    """A run stopped from outside (Lambda's timeout, a crash) right after a commit."""


def _guild(db) -> int:
    guild = next(_guilds)
    db.run(guilds.ensure_guild, guild)
    return guild


def _start(db, guild: int, name: str = "Winter", **extra):
    def start(conn):
        now = conn.execute("SELECT now()").fetchone()[0]
        return seasons.start_season(conn, guild, name=name, starts_at=None, ends_at=now + timedelta(days=30),
                                    actor_id=1, actor_name="admin", **extra)  # fmt: skip

    return db.run(start)


def _close(sql, season_id: int) -> None:
    """The season's end has come (ends_at moved to now, as the clock would)."""
    sql("UPDATE seasons SET ends_at = now() WHERE id = %s", (season_id,))


def _table(sql, season_id: int) -> list[tuple[int, int, int, int]]:
    return sql("SELECT user_id, score, place, position FROM season_standings WHERE season_id = %s ORDER BY position",
               (season_id,))  # fmt: skip


def test_bad_input_is_refused_in_plain_words_and_writes_nothing(db, sql, discord):
    guild = _guild(db)
    first = _start(db, guild, "Spring")
    before = sql("SELECT count(*) FROM seasons")[0][0], sql("SELECT count(*) FROM admin_audit")[0][0]
    above_bot = state.add_role(str(guild), "Champion", position=20)
    fine_role = state.add_role(str(guild), "Winner", position=2)

    def attempt(**overrides):
        def go(conn):
            now = conn.execute("SELECT now()").fetchone()[0]
            args = {"name": "Summer", "starts_at": first.ends_at + timedelta(days=1),
                    "ends_at": first.ends_at + timedelta(days=20), "actor_id": 1, "actor_name": "admin",
                    "grant_check": lambda role: roles.bot_can_grant(discord, guild, role, discord_standin_rest.bot_user_id())}  # fmt: skip
            args.update(
                {
                    k: (v(now) if callable(v) and k in ("starts_at", "ends_at") else v)
                    for k, v in overrides.items()
                }
            )
            return seasons.start_season(conn, guild, **args)

        with pytest.raises(InvalidInput) as refused:
            db.run(go)
        return refused.value.message

    assert "end after it starts" in attempt(ends_at=first.ends_at + timedelta(hours=1))
    assert "overlap the season 'Spring'" in attempt(starts_at=first.ends_at - timedelta(days=1))
    assert "cannot start in the past" in attempt(starts_at=lambda now: now - timedelta(days=2))
    assert "already a season called" in attempt(name="spring")
    assert "cannot give that prize role" in attempt(prize_places=3, prize_role_id=int(above_bot))
    assert "prize places" in attempt(prize_points=10)
    assert "1 to 100 characters" in attempt(name=" ")
    assert (
        sql("SELECT count(*) FROM seasons")[0][0],
        sql("SELECT count(*) FROM admin_audit")[0][0],
    ) == before
    # the same role, grantable, passes; a scheduled start is allowed
    later = db.run(lambda conn: seasons.start_season(
        conn, guild, name="Summer", starts_at=first.ends_at + timedelta(days=1), ends_at=first.ends_at + timedelta(days=9),
        actor_id=1, actor_name="admin", prize_places=1, prize_role_id=int(fine_role),
        grant_check=lambda role: roles.bot_can_grant(discord, guild, role, discord_standin_rest.bot_user_id())))  # fmt: skip
    assert later.status == "scheduled"
    with db.connection() as conn:
        with pytest.raises(InvalidInput) as unreadable:
            seasons.parse_when(conn, guild, "31/12/2026")
        assert "not a date I can read" in unreadable.value.message
        with pytest.raises(InvalidInput):
            seasons.parse_when(conn, guild, "2026-02-30")


def test_slash_commands_refuse_bad_input_and_write_nothing(db, settings, sql):
    before = counts(sql), sql("SELECT count(*) FROM seasons")[0][0]
    for options in ({"name": "X", "end": "2020-01-01"}, {"name": "X", "end": "tomorrow"},
                    {"name": "X", "end": "2099-01-01", "start": "2098-13-01"}):  # fmt: skip
        outcome = admin(db, settings, "seasons start", options)
        assert outcome.status == "refused" and outcome.reply.ephemeral, outcome.reply.content
        assert "Traceback" not in outcome.reply.content
    zone = admin(db, settings, "seasons timezone", {"zone": "Moon/Tranquility"})
    assert zone.status == "refused" and "not a time zone I know" in zone.reply.content
    assert (counts(sql), sql("SELECT count(*) FROM seasons")[0][0]) == before
    member = run(db, settings, "seasons start", {"name": "X", "end": "2099-01-01"})
    assert member.status == "denied"


def test_the_season_board_counts_only_inside_its_dates(db, settings, sql):
    guild = _guild(db)
    award(db, guild, 1, 5, settings)  # before the season
    season = _start(db, guild)
    award(db, guild, 1, 40, settings)
    award(db, guild, 2, 60, settings)
    _close(sql, season.id)
    award(db, guild, 2, 1000, settings)  # after its end
    with db.connection() as conn:
        board = windows.window_board(conn, guild, season.key)
        assert [(r.user_id, r.balance, r.rank) for r in board.rows] == [(2, 60, 1), (1, 40, 2)]


def _season_with_scores(db, settings, sql, guild, **extra):
    """Six members, a tie for second and one for fifth; one entry reverted inside the season."""
    season = _start(db, guild, **extra)
    scores = {101: 90, 102: 50, 103: 50, 104: 30, 105: 10, 106: 10}
    for user, score in scores.items():
        award(db, guild, user, score, settings)
    wrong = award(db, guild, 104, 500, settings).entry
    revert(db, guild, wrong.id, settings)
    award(db, guild, 107, 25, settings)
    sql("UPDATE guilds SET settings = settings || '{\"allow_negative\": true}' WHERE guild_id = %s", (guild,))
    return season, {**scores, 107: 25}


def test_season_end_twice_and_killed_midway_archives_prizes_and_resets_once(db, settings, sql, discord):
    guild = _guild(db)
    channel = "555000000000000001"
    prize_role = state.add_role(str(guild), "Champion", position=2)
    season, _scores = _season_with_scores(
        db, settings, sql, guild, prize_places=2, prize_points=100, prize_role_id=int(prize_role),
        reset_balances=True, post_channel_id=int(channel),
        grant_check=lambda role: roles.bot_can_grant(discord, guild, role, discord_standin_rest.bot_user_id()),
    )  # fmt: skip
    _close(sql, season.id)
    balances_before = dict(sql("SELECT user_id, balance FROM points WHERE guild_id = %s", (guild,)))

    # killed after the first reset batch committed (batches of 2 members): the archive's step
    # is 1 and so is each reset batch's (the prizes come after the reset)
    def kill_in_reset(step: int, seen=[]) -> None:  # noqa: B006 - counts the calls of this run
        seen.append(step)
        if seen.count(1) == 2:
            raise Killed

    with pytest.raises(Killed):
        seasons.run_end(db, season.id, batch=2, client=discord, after_step=kill_in_reset)
    assert db.run(seasons.get_season_by_id, season.id).end_step == 1
    assert sql(
        "SELECT count(*) FROM transactions WHERE guild_id = %s AND kind = 'season_prize'", (guild,)
    ) == [(0,)]
    done = seasons.run_end(db, season.id, batch=2, client=discord)
    assert done.finished and done.step == 4
    again = seasons.run_end(db, season.id, batch=2, client=discord)  # a second run finds it all done
    assert again.finished and (again.archived, again.prizes, again.resets, again.posted) == (0, 0, 0, False)

    # one archive: every member's score and place, ties exact
    table = _table(sql, season.id)
    assert table == [(101, 90, 1, 1), (102, 50, 2, 2), (103, 50, 2, 3), (104, 30, 4, 4), (107, 25, 5, 5),
                     (105, 10, 6, 6), (106, 10, 6, 7)]  # fmt: skip
    # one prize each for places 1..2: three members (the tie at second wins too)
    prizes = sql("SELECT user_id, amount FROM transactions WHERE guild_id = %s AND kind = 'season_prize' ORDER BY user_id",
                 (guild,))  # fmt: skip
    assert prizes == [(101, 100), (102, 100), (103, 100)]
    changes = sql(
        "SELECT user_id, role_id, source_ref FROM role_changes WHERE guild_id = %s ORDER BY user_id", (guild,)
    )
    assert changes == [(u, int(prize_role), f"{season.id}:{u}") for u in (101, 102, 103)]
    dms = sql("SELECT user_id, content FROM direct_messages WHERE guild_id = %s AND reason = 'season' ORDER BY user_id",
              (guild,))  # fmt: skip
    assert [u for u, _ in dms] == [101, 102, 103] and "placed **#2**" in dms[1][1]
    # one reset entry per member with a balance, taking what they held before the prizes; the
    # winners keep their prize and every other balance is zero; the ledger still adds up
    resets = sql(
        "SELECT user_id, amount FROM transactions WHERE guild_id = %s AND kind = 'season_reset'", (guild,)
    )
    assert sorted(resets) == sorted((u, -b) for u, b in balances_before.items() if b)
    prize_of = {u: 100 if u in (101, 102, 103) else 0 for u in balances_before}
    assert dict(sql("SELECT user_id, balance FROM points WHERE guild_id = %s", (guild,))) == prize_of
    with db.connection() as conn:
        assert violations(conn, guild, floor=None) == []
        # the reset counts in no window
        week = windows.window_for(conn, guild, "week").key
        assert windows.window_rank(conn, guild, week, 101).score == 90 + 100
    # the final top 10 posted once, with mentions that ping nobody
    posted = state.channel_messages(channel)
    assert (
        len(posted) == 1
        and "final top 10" in cards.plain_text(posted[0]["components"])
        and "🥇 <@101> · **90 points**" in cards.plain_text(posted[0]["components"])
        and posted[0]["flags"] == cards.IS_COMPONENTS_V2
        and posted[0]["content"] == ""
    )
    assert sql("SELECT posted_message_id FROM seasons WHERE id = %s", (season.id,))[0][0] == int(
        posted[0]["id"]
    )

    # the reset reverted as one batch restores every balance exactly and keeps the prizes; twice is once
    expected_after_revert = {u: b + prize_of[u] for u, b in balances_before.items()}
    first = seasons.revert_reset(db, guild, season.id, actor_id=1, actor_name="admin", batch=3)
    second = seasons.revert_reset(db, guild, season.id, actor_id=1, actor_name="admin", batch=3)
    assert first.finished and first.reverted == len(resets) and second.reverted == 0
    assert (
        dict(sql("SELECT user_id, balance FROM points WHERE guild_id = %s", (guild,)))
        == expected_after_revert
    )
    reverts = sql("SELECT count(*), count(DISTINCT reverts_id), count(DISTINCT operation_id) FROM transactions "
                  "WHERE guild_id = %s AND kind = 'revert' AND source = 'season_reset'", (guild,))  # fmt: skip
    assert reverts == [(len(resets), len(resets), 1)]
    with db.connection() as conn:
        assert violations(conn, guild, floor=None) == []


def _balances(sql, guild: int) -> dict[int, int]:
    return dict(sql("SELECT user_id, balance FROM points WHERE guild_id = %s", (guild,)))


def _prizes(sql, guild: int) -> list[tuple[int, int]]:
    return sql("SELECT user_id, amount FROM transactions WHERE guild_id = %s AND kind = 'season_prize' ORDER BY user_id",
               (guild,))  # fmt: skip


def _entries_add_up(db, sql, guild: int) -> None:
    sums = dict(
        sql("SELECT user_id, sum(amount) FROM transactions WHERE guild_id = %s GROUP BY user_id", (guild,))
    )
    assert sums == _balances(sql, guild)
    with db.connection() as conn:
        assert violations(conn, guild, floor=None) == []


def test_with_the_reset_on_a_winner_holds_exactly_the_prize_after_the_end(db, settings, sql, discord):
    # Given a season with a reset whose top two win 40 points (102 and 103 tie for second)
    guild = _guild(db)
    season, _scores = _season_with_scores(db, settings, sql, guild, prize_places=2, prize_points=40,
                                          reset_balances=True)  # fmt: skip
    _close(sql, season.id)
    # When it ends
    assert seasons.run_end(db, season.id, client=discord).finished
    # Then the winners hold their prize and nothing else, everyone else nothing
    assert _balances(sql, guild) == {101: 40, 102: 40, 103: 40, 104: 0, 105: 0, 106: 0, 107: 0}
    _entries_add_up(db, sql, guild)


def test_a_winner_keeps_the_prize_through_the_reset_killed_between_reset_and_prizes(
    db, settings, sql, discord
):
    # Given a season with a reset whose winner (101, 90 points) wins 100 points and a role
    guild = _guild(db)
    prize_role = state.add_role(str(guild), "Champion", position=2)
    season, _scores = _season_with_scores(
        db, settings, sql, guild, prize_places=1, prize_points=100, prize_role_id=int(prize_role),
        reset_balances=True,
        grant_check=lambda role: roles.bot_can_grant(discord, guild, role, discord_standin_rest.bot_user_id()),
    )  # fmt: skip
    _close(sql, season.id)
    before = _balances(sql, guild)
    assert before[101] == 90

    # When the end is killed after the reset's last batch (7 members, 2 a batch: the archive and
    # four batches report step 1), before the transaction that pays the prizes
    def kill_before_prizes(step: int, seen=[]) -> None:  # noqa: B006 - counts the calls of this run
        seen.append(step)
        if seen.count(1) == 5:
            raise Killed

    with pytest.raises(Killed):
        seasons.run_end(db, season.id, batch=2, client=discord, after_step=kill_before_prizes)
    # Then every balance is reset and nothing is paid yet
    assert db.run(seasons.get_season_by_id, season.id).end_step == 1
    assert set(_balances(sql, guild).values()) == {0} and _prizes(sql, guild) == []
    assert sql("SELECT count(*) FROM role_changes WHERE guild_id = %s", (guild,)) == [(0,)]

    # When it runs again, and once more
    done = seasons.run_end(db, season.id, batch=2, client=discord)
    again = seasons.run_end(db, season.id, batch=2, client=discord)
    # Then the winner holds exactly the prize, paid once (points, role, DM), nobody is reset twice
    assert done.finished and (done.prizes, done.resets) == (1, 0)
    assert again.finished and (again.prizes, again.resets) == (0, 0)
    after = _balances(sql, guild)
    assert after[101] == 100 and {u: b for u, b in after.items() if u != 101} == {
        u: 0 for u in before if u != 101
    }
    assert _prizes(sql, guild) == [(101, 100)]
    assert sql("SELECT user_id, source_ref FROM role_changes WHERE guild_id = %s", (guild,)) == [
        (101, f"{season.id}:101")
    ]
    assert sql("SELECT user_id FROM direct_messages WHERE guild_id = %s AND reason = 'season'", (guild,)) == [
        (101,)
    ]
    resets = sql(
        "SELECT user_id, amount FROM transactions WHERE guild_id = %s AND kind = 'season_reset'", (guild,)
    )
    assert sorted(resets) == sorted((u, -b) for u, b in before.items() if b)
    _entries_add_up(db, sql, guild)

    # When the reset is reverted after the end
    reverted = seasons.revert_reset(db, guild, season.id, actor_id=1, actor_name="admin", batch=3)
    # Then every balance is back to before the reset, and the winner keeps the prize on top
    assert reverted.finished and reverted.reverted == len(resets)
    assert _balances(sql, guild) == {u: b + (100 if u == 101 else 0) for u, b in before.items()}
    assert _prizes(sql, guild) == [(101, 100)]
    _entries_add_up(db, sql, guild)


def test_an_end_left_half_done_by_the_prizes_first_order_finishes_keeping_the_prizes(
    db, settings, sql, discord
):
    # Given an end that archived and paid the prizes (end_step 2, as the order before paid them
    # first) and was stopped before its reset began
    guild = _guild(db)
    season, _scores = _season_with_scores(db, settings, sql, guild, prize_places=2, prize_points=100,
                                          reset_balances=True)  # fmt: skip
    _close(sql, season.id)
    before = _balances(sql, guild)

    def kill_after_archive(step: int) -> None:
        if step == 1:
            raise Killed

    with pytest.raises(Killed):
        seasons.run_end(db, season.id, client=discord, after_step=kill_after_archive)

    def old_prize_step(conn) -> None:
        season_now = seasons._lock_season(conn, season.id)
        seasons._pay_prizes(conn, season_now, seasons.EndReport(season.id))
        conn.execute("UPDATE seasons SET end_step = 2 WHERE id = %s", (season.id,))

    db.run(old_prize_step)
    assert _prizes(sql, guild) == [(101, 100), (102, 100), (103, 100)]

    # When the end runs on (in batches of 2, killed after one reset batch, then to its end)
    def kill_in_reset(step: int, seen=[]) -> None:  # noqa: B006 - counts the calls of this run
        seen.append(step)
        if step == 2:
            raise Killed

    with pytest.raises(Killed):
        seasons.run_end(db, season.id, batch=2, client=discord, after_step=kill_in_reset)
    done = seasons.run_end(db, season.id, batch=2, client=discord)
    # Then no prize is paid twice and the reset took only what the winners held before them
    assert done.finished and done.prizes == 0
    assert _prizes(sql, guild) == [(101, 100), (102, 100), (103, 100)]
    winners = {101, 102, 103}
    assert _balances(sql, guild) == {u: 100 if u in winners else 0 for u in before}
    resets = sql(
        "SELECT user_id, amount FROM transactions WHERE guild_id = %s AND kind = 'season_reset'", (guild,)
    )
    assert sorted(resets) == sorted((u, -b) for u, b in before.items() if b)
    _entries_add_up(db, sql, guild)
    # And its revert gives back what the reset took, the prizes kept
    assert seasons.revert_reset(db, guild, season.id, actor_id=1, actor_name="admin").finished
    assert _balances(sql, guild) == {u: b + (100 if u in winners else 0) for u, b in before.items()}
    _entries_add_up(db, sql, guild)


def test_a_run_killed_after_the_archive_and_a_post_refused_still_end_once(db, settings, sql, discord):
    guild = _guild(db)
    channel = "555000000000000002"
    state.no_access_channels.add(channel)
    season, _scores = _season_with_scores(db, settings, sql, guild, prize_places=1, prize_points=7,
                                          post_channel_id=int(channel))  # fmt: skip
    _close(sql, season.id)

    def kill_after_archive(step: int) -> None:
        if step == 1:
            raise Killed

    with pytest.raises(Killed):
        seasons.run_end(db, season.id, client=discord, after_step=kill_after_archive)
    assert len(_table(sql, season.id)) == 7
    assert sql(
        "SELECT count(*) FROM transactions WHERE guild_id = %s AND kind = 'season_prize'", (guild,)
    ) == [(0,)]
    report = seasons.run_end(db, season.id, client=discord)
    assert report.finished and not report.posted and report.archived == 0
    assert len(_table(sql, season.id)) == 7
    assert sql(
        "SELECT user_id FROM transactions WHERE guild_id = %s AND kind = 'season_prize'", (guild,)
    ) == [(101,)]
    assert sql("SELECT end_step, posted_message_id FROM seasons WHERE id = %s", (season.id,)) == [(4, None)]
    assert sql(
        "SELECT count(*) FROM transactions WHERE guild_id = %s AND kind = 'season_reset'", (guild,)
    ) == [(0,)]
    with db.connection() as conn:
        assert violations(conn, guild, floor=None) == []


def test_due_seasons_wait_for_the_grace_and_the_keepalive_asks_the_worker(db, sql):
    guild = _guild(db)
    season = _start(db, guild, "Due")
    sql("UPDATE seasons SET starts_at = now() - interval '2 days', ends_at = now() - interval '30 seconds' WHERE id = %s",
        (season.id,))  # fmt: skip
    with db.connection() as conn:
        assert season.id not in seasons.due_seasons(conn)
    sql("UPDATE seasons SET ends_at = now() - interval '2 minutes' WHERE id = %s", (season.id,))
    with db.connection() as conn:
        assert season.id in seasons.due_seasons(conn)
    from _dm_fixtures import RecordingQueue

    from pointsbot.delivery import tasks
    from pointsbot.ops import keepalive, worker

    assert worker.handler_for("end_seasons") is seasons.end_task
    queue = RecordingQueue([])
    tasks.set_task_queue(queue)
    try:
        result = keepalive.run(db, warmer=lambda _event: None)
    finally:
        tasks.set_task_queue(None)
    assert result.seasons_due >= 1 and result.season_end_requested
    assert "end_seasons" in [task.kind for task, _delay in queue.sent]
    # the worker's run takes every due season through its end (this one has no prizes or post)
    reports = seasons.run_due(db, time_left_s=lambda: 300.0, client=object())
    assert season.id in [r.season_id for r in reports if r.finished]
    with db.connection() as conn:
        assert seasons.due_seasons(conn) == []


def test_member_and_admin_commands(db, settings, sql):
    from _command_helpers import GUILD_A

    guild = int(GUILD_A)
    started = admin(db, settings, "seasons start", {"name": "Cup 1", "end": "2099-12-31", "prize_places": 3,
                                                    "prize_points": 50})  # fmt: skip
    assert started.status == "ok", started.reply.content
    assert "Cup 1" in started.reply.content and "top 3 places win 50 points" in started.reply.content
    season = db.run(seasons.find_season, guild, "cup 1")
    user = "820000000000099001"
    award(db, guild, int(user), 12, settings)
    current = run(db, settings, "season current", user_id=user)
    assert "Season Cup 1" in current.reply.content and "You are **#1** of" in current.reply.content
    # /profile shows the place in the season running now
    profile = run(db, settings, "profile", user_id=user)
    assert "Season Cup 1: **#1** with 12 points" in profile.reply.content, profile.reply.content
    renamed = admin(db, settings, "seasons rename", {"name": "Cup One"})
    assert "is now **Cup One**" in renamed.reply.content
    not_yet = run(db, settings, "season standings", {"season": "Cup One"})
    assert "has not ended yet" in not_yet.reply.content
    ended = admin(db, settings, "seasons end", {"season": str(season.id)})
    assert ended.status == "ok" and "has ended" in ended.reply.content
    seasons.run_end(db, season.id, client=object())  # no channel: the client is never used
    table = run(db, settings, "season standings", {"season": "cup one"}, user_id=user)
    assert "final standings" in table.reply.content and f"🥇 <@{user}> · **12 points**" in table.reply.content
    assert "You placed **#1**" in table.reply.content
    latest = run(db, settings, "season standings", user_id=user)
    assert "Cup One" in latest.reply.content
    unknown = run(db, settings, "season standings", {"season": "nope"})
    assert unknown.status == "refused" and "no season called" in unknown.reply.content
    choices = dispatch.autocomplete(
        db,
        interactions.parse(
            autocomplete_payload("season standings", {"season": "cup"}, "season", guild_id=GUILD_A)
        ),
    )
    assert choices == [("Cup One", str(season.id))]
    assert sql("SELECT count(*) FROM admin_audit WHERE target = %s", (f"season:{season.id}",))[0][0] == 3
