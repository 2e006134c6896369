"""The ledger's operations on a real Postgres: what each writes and what it refuses."""

from __future__ import annotations

import pytest

from pointsbot import ledger
from pointsbot.platform.errors import (
    AlreadyReverted,
    DailyCapReached,
    IdempotencyConflict,
    InsufficientBalance,
    LimitExceeded,
    ReasonRequired,
)

pytestmark = [pytest.mark.integration, pytest.mark.through_pgbouncer]
GUILD = 900_000_000_000_000_001


def _award(db, settings, user, amount, key, **extra):
    return db.run(
        ledger.award, guild_id=GUILD, user_id=user, amount=amount, reason="test", actor_id=1,
        source="admin_site", idempotency_key=key, settings=settings, **extra,
    )  # fmt: skip


def test_award_writes_entry_and_balance(db, settings, sql):
    # Given a member never seen before
    # When an admin awards 50
    result = _award(db, settings, 101, 50, "a-1")
    # Then the entry and the balance agree
    assert result.balance == 50
    assert result.entry.amount == 50 and result.entry.kind == "award"
    assert db.run(ledger.balance, GUILD, 101) == 50
    assert sql("SELECT sum(amount) FROM transactions WHERE guild_id=%s AND user_id=101", (GUILD,)) == [(50,)]


def test_same_key_replays_and_different_amount_conflicts(db, settings):
    first = _award(db, settings, 102, 10, "k-2")
    again = _award(db, settings, 102, 10, "k-2")
    assert again.replayed and again.entry == first.entry
    assert db.run(ledger.balance, GUILD, 102) == 10
    with pytest.raises(IdempotencyConflict):
        _award(db, settings, 102, 11, "k-2")


def test_deduct_below_zero_is_refused_and_leaves_no_trace(db, settings, sql):
    _award(db, settings, 103, 5, "k-3")
    before = sql("SELECT count(*) FROM transactions"), sql("SELECT count(*) FROM operations")
    with pytest.raises(InsufficientBalance):
        db.run(
            ledger.deduct, guild_id=GUILD, user_id=103, amount=6, reason="too much", actor_id=1,
            source="admin_site", idempotency_key="k-3b", settings=settings,
        )  # fmt: skip
    assert (
        sql("SELECT count(*) FROM transactions"),
        sql("SELECT count(*) FROM operations"),
    ) == before
    assert db.run(ledger.balance, GUILD, 103) == 5


def test_limits(db, settings):
    with pytest.raises(LimitExceeded):
        _award(db, settings, 104, settings.max_change + 1, "k-4")
    capped = settings.with_overrides(daily_cap=100)
    _award(db, capped, 105, 60, "k-5a")
    with pytest.raises(DailyCapReached):
        _award(db, capped, 105, 41, "k-5b")
    with pytest.raises(ReasonRequired):
        db.run(
            ledger.award, guild_id=GUILD, user_id=105, amount=1, reason="  ", actor_id=1,
            source="slash", idempotency_key="k-5c", settings=settings,
        )  # fmt: skip


def test_set_transfer_and_revert(db, settings):
    _award(db, settings, 106, 30, "k-6")
    result = db.run(
        ledger.set_balance, guild_id=GUILD, user_id=106, target=100, reason="fix", actor_id=1,
        source="admin_site", idempotency_key="k-6s", settings=settings,
    )  # fmt: skip
    assert result.entry.amount == 70 and result.balance == 100
    moved = db.run(
        ledger.transfer, guild_id=GUILD, from_user_id=106, to_user_id=107, amount=40, reason="thanks",
        idempotency_key="k-6t", settings=settings,
    )  # fmt: skip
    assert moved.entry_for(106).balance_after == 60 and moved.entry_for(107).balance_after == 40
    undone = db.run(
        ledger.revert, guild_id=GUILD, entry_id=moved.entry_for(107).id, reason="mistake", actor_id=1,
        source="admin_site", idempotency_key="k-6r", settings=settings,
    )  # fmt: skip
    assert {e.user_id: e.balance_after for e in undone.entries} == {106: 100, 107: 0}
    with pytest.raises(AlreadyReverted):
        db.run(
            ledger.revert, guild_id=GUILD, entry_id=moved.entry_for(106).id, reason="again", actor_id=1,
            source="admin_site", idempotency_key="k-6r2", settings=settings,
        )  # fmt: skip


def test_leaderboard_ties_and_rank(db, settings):
    guild = GUILD + 1
    for user, amount in [(1, 50), (2, 70), (3, 50), (4, 10)]:
        db.run(
            ledger.award, guild_id=guild, user_id=user, amount=amount, reason="seed", actor_id=1,
            source="system", idempotency_key=f"lb-{user}", settings=settings,
        )  # fmt: skip
    page = db.run(ledger.leaderboard_page, guild, 1, 10)
    assert [(r.rank, r.user_id) for r in page.rows] == [(1, 2), (2, 1), (2, 3), (4, 4)]
    assert db.run(ledger.rank_of, guild, 3).rank == 2
    second = db.run(ledger.leaderboard_page, guild, 2, 2)
    assert [(r.rank, r.user_id) for r in second.rows] == [(2, 3), (4, 4)]


@pytest.mark.parametrize("policy_known", [False, True], ids=["checked-after", "guarded-in-statement"])
def test_a_refused_change_says_the_same_and_leaves_nothing_whether_the_policy_was_known(
    db, settings, sql, policy_known
):
    # Given a guild with a daily cap of 100 and no negative balances, and members who have some
    from pointsbot.ledger.guilds import guild_policy

    capped = settings.with_overrides(daily_cap=100)
    user_cap, user_floor = 150 + policy_known, 160 + policy_known
    _award(db, capped, user_cap, 70, f"cap-{policy_known}")
    _award(db, capped, user_floor, 30, f"floor-{policy_known}")
    extra = {"policy": db.run(guild_policy, capped, GUILD)} if policy_known else {}
    counted = (
        "SELECT (SELECT count(*) FROM transactions), (SELECT count(*) FROM operations), "
        "(SELECT count(*) FROM window_scores), (SELECT sum(balance) FROM points)"
    )
    before = sql(counted)
    # When a credit would pass the cap, and a debit would go below zero
    with pytest.raises(DailyCapReached) as over_cap:
        _award(db, capped, user_cap, 31, f"cap-{policy_known}-b", **extra)
    with pytest.raises(InsufficientBalance) as below:
        db.run(
            ledger.deduct, guild_id=GUILD, user_id=user_floor, amount=31, reason="too much", actor_id=1,
            source="admin_site", idempotency_key=f"floor-{policy_known}-b", settings=capped, **extra,
        )  # fmt: skip
    # Then each names its guard with the state before it, the same whichever way it was checked
    assert over_cap.value.message.endswith("(30 left today).")
    assert "the balance is 30 and this would take it below 0" in below.value.message
    # and nothing was written: no entry, no claim, no window score, no balance moved
    assert sql(counted) == before
    # and the key was not spent: the same key takes a change within the guards
    assert _award(db, capped, user_cap, 30, f"cap-{policy_known}-b", **extra).balance == 100
