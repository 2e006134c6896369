"""The balance range (pointsbot.platform.amounts): every path that changes a balance keeps it inside
[-MAX_BALANCE, MAX_BALANCE], refuses with the one plain message, and writes nothing then."""

from __future__ import annotations

import itertools

import psycopg
import pytest
from _command_helpers import GUILD_A, admin, counts, new_member, run, use_queue
from _ledger_checks import award, deduct, key, revert, set_balance, transfer, violations

from pointsbot import ledger
from pointsbot.admin import bulk
from pointsbot.community import achievements, emails
from pointsbot.ledger import guilds
from pointsbot.platform.amounts import COUNTER_CEILING, MAX_BALANCE, OUT_OF_RANGE
from pointsbot.platform.config import get_settings
from pointsbot.platform.errors import DailyCapReached, InsufficientBalance, OutOfRange

pytestmark = pytest.mark.integration

BIGINT_MAX = 2**63 - 1
_guilds = itertools.count(930_000_000_000_000_001)
_users = itertools.count(5_000)


@pytest.fixture
def guild(db) -> int:
    """A guild of its own, whose largest single change is the whole range."""
    guild_id = next(_guilds)
    db.run(guilds.update_guild_settings, guild_id, {"max_change": MAX_BALANCE})
    return guild_id


@pytest.fixture
def settings(settings):
    return settings.with_overrides(max_change=MAX_BALANCE)


def _state(sql, guild_id: int) -> tuple:
    return (
        sql("SELECT count(*) FROM transactions WHERE guild_id = %s", (guild_id,)),
        sql("SELECT count(*) FROM operations WHERE guild_id = %s", (guild_id,)),
        sql("SELECT user_id, balance FROM points WHERE guild_id = %s ORDER BY user_id", (guild_id,)),
        sql("SELECT * FROM user_stats WHERE guild_id = %s ORDER BY user_id", (guild_id,)),
    )


def test_setting_bigint_max_is_refused_and_credits_keep_working(db, settings, sql, guild):
    # Given a member with 10 and a guild whose largest change is as large as it can be
    user = next(_users)
    award(db, guild, user, 10, settings)
    before = _state(sql, guild)
    # When an admin sets the balance to bigint's largest value (the old code accepted it)
    with pytest.raises(OutOfRange) as refused:
        set_balance(db, guild, user, BIGINT_MAX, settings)
    # Then a plain refusal, and nothing was written
    assert refused.value.message == OUT_OF_RANGE
    assert _state(sql, guild) == before
    # and credits to the member still work (the old code failed every later credit)
    assert award(db, guild, user, 5, settings).balance == 15
    assert db.run(violations, guild) == []


@pytest.mark.parametrize("amount", [MAX_BALANCE + 1, BIGINT_MAX, 2**64, 10**30])
def test_amounts_beyond_the_range_are_the_plain_message_on_every_operation(db, settings, sql, guild, amount):
    user, other = next(_users), next(_users)
    award(db, guild, user, 100, settings)
    before = _state(sql, guild)
    for attempt in (
        lambda: award(db, guild, user, amount, settings),
        lambda: deduct(db, guild, user, amount, settings),
        lambda: set_balance(db, guild, user, amount, settings),
        lambda: set_balance(db, guild, user, -amount, settings),
        lambda: transfer(db, guild, user, other, amount, settings),
    ):
        with pytest.raises(OutOfRange, match="out of range"):
            attempt()
    assert _state(sql, guild) == before


def test_no_operation_takes_a_balance_past_either_end(db, settings, sql, guild):
    # Given a member at the top of the range, one at the bottom (negatives allowed), a giver
    db.run(guilds.update_guild_settings, guild, {"allow_negative": True})
    top, bottom, giver = next(_users), next(_users), next(_users)
    award(db, guild, giver, 50, settings)
    award(db, guild, top, 10, settings)
    taken = deduct(db, guild, top, 5, settings)  # then up to the top: undoing it would pass it
    set_balance(db, guild, top, MAX_BALANCE, settings)
    set_balance(db, guild, bottom, -MAX_BALANCE, settings)
    before = _state(sql, guild)
    refusals = {
        "award": lambda: award(db, guild, top, 1, settings),
        "transfer in": lambda: transfer(db, guild, giver, top, 1, settings),
        "deduct": lambda: deduct(db, guild, bottom, 1, settings),
        "set above": lambda: set_balance(db, guild, top, MAX_BALANCE + 1, settings),
        "revert of a debit": lambda: revert(db, guild, taken.entry.id, settings),
    }
    for name, attempt in refusals.items():
        with pytest.raises(OutOfRange) as refused:
            attempt()
        assert refused.value.message == OUT_OF_RANGE, name
    # Then nothing was written by any of them, and the ledger adds up
    assert _state(sql, guild) == before
    assert db.run(violations, guild, floor=None) == []


def test_the_daily_cap_and_the_floor_still_say_which_rule_refused(db, settings, guild):
    db.run(guilds.update_guild_settings, guild, {"daily_cap": 100})
    user = next(_users)
    award(db, guild, user, 90, settings)
    with pytest.raises(DailyCapReached) as capped:
        award(db, guild, user, 20, settings)
    assert "daily limit" in capped.value.message
    with pytest.raises(InsufficientBalance):
        deduct(db, guild, user, 91, settings)


def test_the_database_refuses_an_out_of_range_balance_whatever_the_path(db, guild):
    # Given a member with a row, and SQL that bypasses the ledger
    user = next(_users)
    award(db, guild, user, 1, get_settings().with_overrides(max_change=MAX_BALANCE))
    with psycopg.connect(db.dsn) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "UPDATE points SET balance = %s WHERE guild_id = %s AND user_id = %s",
            (MAX_BALANCE + 1, guild, user),
        )


def test_counters_that_only_grow_stop_at_the_ceiling_instead_of_overflowing(db, settings, sql, guild):
    # Given a member whose earned and spent totals are just below the ceiling (thousands of
    # changes of the largest size get there)
    user = next(_users)
    award(db, guild, user, 10, settings)
    sql(
        "UPDATE user_stats SET total_earned = %s, total_spent = %s WHERE guild_id = %s AND user_id = %s",
        (COUNTER_CEILING - 3, COUNTER_CEILING - 3, guild, user),
    )
    # When more is earned and spent
    award(db, guild, user, MAX_BALANCE - 10, settings)
    deduct(db, guild, user, MAX_BALANCE - 10, settings)
    # Then the totals stop at the ceiling (an exact integer for every JSON reader) and the
    # member's changes go on working
    assert sql(
        "SELECT total_earned, total_spent FROM user_stats WHERE guild_id = %s AND user_id = %s", (guild, user)
    ) == [(COUNTER_CEILING, COUNTER_CEILING)]
    assert award(db, guild, user, 1, settings).balance == 11


def test_an_achievement_bonus_pays_what_fits_and_never_refuses_the_change(db, settings, sql, guild):
    # Given "balance at least 10^12 - 10" paying 1,000
    db.run(achievements.create_definition, guild, name="Whale", criterion="balance_at_least",
           threshold=MAX_BALANCE - 10, bonus_points=1_000)  # fmt: skip
    user = next(_users)
    # When an admin sets a member to 10^12 - 4
    set_balance(db, guild, user, MAX_BALANCE - 4, settings)
    # Then the change went through, the achievement is earned and its bonus is what fits (4)
    assert db.run(ledger.balance, guild, user) == MAX_BALANCE
    assert [a.name for a in db.run(achievements.earned_by, guild, user)] == ["Whale"]
    assert sql("SELECT amount FROM transactions WHERE guild_id = %s AND user_id = %s AND kind = 'achievement'",
               (guild, user)) == [(4,)]  # fmt: skip


def test_an_email_bonus_past_the_range_is_refused_and_the_submission_stays_pending(db, settings, sql, guild):
    user = next(_users)
    set_balance(db, guild, user, MAX_BALANCE - 1, settings)
    submission = db.run(emails.submit, guild, user, "big@example.org")
    before = _state(sql, guild)
    with pytest.raises(OutOfRange, match="out of range"):
        db.run(emails.approve, guild_id=guild, submission_id=submission.id, reviewer_id=1, bonus_points=2,
               idempotency_key=key("approve"), source="admin_site", settings=settings)  # fmt: skip
    assert _state(sql, guild) == before
    assert db.run(emails.get, guild, submission.id).status == "pending"


def test_guild_settings_accept_only_limits_inside_the_range(db, guild):
    for field in ("max_change", "daily_cap"):
        with pytest.raises(OutOfRange) as refused:
            db.run(guilds.update_guild_settings, guild, {field: MAX_BALANCE + 1})
        assert refused.value.message == OUT_OF_RANGE
    # A limit stored before the range existed counts as the range's end
    policy = guilds.policy_from(get_settings(), {"max_change": BIGINT_MAX, "daily_cap": BIGINT_MAX})
    assert (policy.max_change, policy.daily_cap) == (MAX_BALANCE, MAX_BALANCE)


def test_bulk_rows_outside_the_range_get_the_plain_message_in_the_dry_run(db, settings, guild):
    user = next(_users)
    set_balance(db, guild, user, MAX_BALANCE - 1, settings)
    rows = bulk.parse_csv(
        f"{next(_users)},{2**64},too big\n{user},2,past the top\n{next(_users)},{MAX_BALANCE},fits\n"
    )
    preview = db.run(bulk.check_rows, guild, "award", rows, settings=settings)
    assert [r.error for r in preview.rows] == [OUT_OF_RANGE, OUT_OF_RANGE, None]


# -- slash commands --------------------------------------------------------------------------
@pytest.fixture
def wide_guild(db):
    db.run(guilds.update_guild_settings, int(GUILD_A), {"max_change": MAX_BALANCE})
    yield GUILD_A
    db.run(guilds.update_guild_settings, int(GUILD_A), {"max_change": 1_000_000})


@pytest.fixture
def task_queue():
    yield from use_queue()


def test_points_set_to_bigint_max_is_a_plain_refusal_and_gives_still_work(
    db, settings, sql, wide_guild, task_queue
):
    # Given a member with 50 in a guild whose largest change was raised as far as it goes
    member, giver = new_member(), new_member()
    admin(db, settings, "points add", {"member": member, "amount": 50, "reason": "r"})
    admin(db, settings, "points add", {"member": giver, "amount": 50, "reason": "r"})
    before = counts(sql)
    # When an admin sets the member to 9223372036854775807
    outcome = admin(db, settings, "points set", {"member": member, "amount": BIGINT_MAX, "reason": "r"})
    # Then the same plain message, and no row anywhere changed
    assert outcome.status == "refused" and outcome.reply.content == OUT_OF_RANGE
    assert counts(sql) == before
    # And the member can still be given points
    given = run(db, settings, "give", {"member": member, "amount": 3}, user_id=giver)
    assert given.status == "ok", given.reply.content
    huge = run(db, settings, "give", {"member": member, "amount": 2**64}, user_id=giver)
    assert huge.status == "refused" and huge.reply.content == OUT_OF_RANGE
