"""A season end's reset in two lanes (sql/063, community.seasons._reset_in_lanes): the guild's
members cut once by user id, each lane reset on its own connection and thread with its own
cursor. Killed from either lane, out of time, or run twice at once, the end still resets every
non-zero balance exactly once, the ledger adds up after every run, and the reset reverts."""

from __future__ import annotations

import itertools
import threading

import pytest
from _ledger_checks import award, violations

from pointsbot.community import seasons
from pointsbot.ledger import ensure_member, guilds
from pointsbot.platform.db import Database

pytestmark = pytest.mark.integration

_guilds = itertools.count(949_000_000_000_000_001)
MEMBERS = range(301, 341)  # 40 members, every third at zero


class Killed(Exception):
    pass


def _season(db, settings, sql) -> tuple[int, int, dict[int, int]]:
    guild = next(_guilds)
    db.run(guilds.ensure_guild, guild)
    (season_id,) = sql(
        "INSERT INTO seasons (guild_id, name, starts_at, ends_at, reset_balances, prize_places, prize_points) "
        "VALUES (%s, 's', now() - interval '2 days', now() + interval '1 hour', TRUE, 1, 50) RETURNING id",
        (guild,),
    )[0]
    for user in MEMBERS:
        if user % 3:
            award(db, guild, user, user * 7, settings)
        else:
            db.run(ensure_member, guild, user)
    sql("UPDATE seasons SET ends_at = now() WHERE id = %s", (season_id,))
    balances = dict(sql("SELECT user_id, balance FROM points WHERE guild_id = %s", (guild,)))
    return guild, season_id, balances


def _resets(sql, guild: int) -> list[tuple[int, int]]:
    return sorted(
        sql(
            "SELECT user_id, amount FROM transactions WHERE guild_id = %s AND kind = 'season_reset'", (guild,)
        )
    )


def _adds_up(db, guild: int) -> None:
    with db.connection() as conn:
        assert violations(conn, guild, floor=None) == []


def test_killed_in_a_lane_then_run_again_resets_everyone_once_in_two_lanes(db, settings, sql) -> None:
    guild, season_id, before = _season(db, settings, sql)
    batches = []

    def kill_after_three(step: int) -> None:
        batches.append(step)
        if batches.count(1) == 4:  # the archive, then three reset batches (from either lane)
            raise Killed

    with pytest.raises(Killed):
        seasons.run_end(db, season_id, batch=4, client=object(), after_step=kill_after_three)
    lanes = sql("SELECT lane, cursor, upto_user FROM season_reset_lanes WHERE season_id = %s ORDER BY lane",
                (season_id,))  # fmt: skip
    assert [(lane, upto) for lane, _cursor, upto in lanes] == [(0, 320), (1, None)]  # 20 members each
    assert lanes[0][1] > 0 and lanes[1][1] > 320  # both lanes moved
    partial = _resets(sql, guild)
    assert 3 <= len(partial) < len(before) and len({u for u, _ in partial}) == len(partial)
    _adds_up(db, guild)

    done = seasons.run_end(db, season_id, batch=4, client=object())
    assert done.finished and done.prizes == 1
    assert _resets(sql, guild) == sorted((u, -b) for u, b in before.items() if b)
    winner = max(before, key=lambda u: before[u])
    assert dict(sql("SELECT user_id, balance FROM points WHERE guild_id = %s", (guild,))) == {
        u: 50 if u == winner else 0 for u in before
    }
    _adds_up(db, guild)
    reverted = seasons.revert_reset(db, guild, season_id, actor_id=1, actor_name="admin", batch=7)
    assert reverted.finished
    assert dict(sql("SELECT user_id, balance FROM points WHERE guild_id = %s", (guild,))) == {
        u: b + (50 if u == winner else 0) for u, b in before.items()
    }
    _adds_up(db, guild)


def test_one_connection_of_its_own_runs_the_second_lane_and_time_running_out_stops_both(
    database_url, db, settings, sql
) -> None:
    guild, season_id, before = _season(db, settings, sql)
    lambda_db = Database(database_url, pooled=False)  # as in Lambda: one connection, no pool
    calls = {"n": 0}

    def time_left() -> float:  # enough for the archive and two batches, then short
        calls["n"] += 1
        return 100.0 if calls["n"] <= 2 else 1.0

    try:
        first = seasons.run_end(lambda_db, season_id, batch=4, client=object(), time_left_s=time_left)
        assert not first.finished and 1 <= first.resets < len(before)
        assert db.run(seasons.get_season_by_id, season_id).end_step == 1
        _adds_up(db, guild)
        done = seasons.run_end(lambda_db, season_id, batch=4, client=object())
    finally:
        lambda_db.close()
    assert done.finished and first.resets + done.resets == sum(1 for b in before.values() if b)
    assert _resets(sql, guild) == sorted((u, -b) for u, b in before.items() if b)
    _adds_up(db, guild)


def test_two_runs_at_once_reset_each_member_once(db, settings, sql) -> None:
    guild, season_id, before = _season(db, settings, sql)
    reports: list = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def one_run() -> None:
        try:
            start.wait()
            reports.append(seasons.run_end(db, season_id, batch=3, client=object()))
        except BaseException as failed:  # reported below
            errors.append(failed)

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and all(r.finished for r in reports)
    assert sum(r.resets for r in reports) == sum(1 for b in before.values() if b)
    assert _resets(sql, guild) == sorted((u, -b) for u, b in before.items() if b)
    assert sum(r.prizes for r in reports) == 1
    _adds_up(db, guild)
