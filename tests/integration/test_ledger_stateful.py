"""A Hypothesis state machine drives the ledger against an in-memory model.

After every step the database must agree with the model: balances, the ledger's entries,
sum(amounts) == balance, nothing below zero, replays that change nothing, reverts that undo.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from _ledger_checks import violations
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from pointsbot import ledger
from pointsbot.platform.config import load_settings
from pointsbot.platform.errors import (
    AlreadyReverted,
    DailyCapReached,
    IdempotencyConflict,
    InsufficientBalance,
    InvalidInput,
    LimitExceeded,
    NotFound,
)

pytestmark = pytest.mark.integration

MAX_CHANGE = 300
DAILY_CAP = 500  # in the permissive policy
USERS = st.sampled_from([1, 2, 3, 4])
AMOUNTS = st.integers(min_value=1, max_value=MAX_CHANGE + 20)
_guilds = itertools.count(920_000_000_000_000_001)


@dataclass
class ModelEntry:
    id: int
    user: int
    amount: int
    kind: str
    operation_id: int
    reverted: bool = False


def make_machine(db, *, permissive: bool):
    """permissive: negative balances allowed and a daily cap on credits; else the defaults."""
    policy = load_settings({}).with_overrides(
        max_change=MAX_CHANGE, allow_negative=permissive, daily_cap=DAILY_CAP if permissive else 0
    )
    floor = None if permissive else 0

    class LedgerMachine(RuleBasedStateMachine):
        @initialize()
        def fresh_guild(self) -> None:
            self.guild = next(_guilds)
            self.balances: dict[int, int] = {}
            self.credited: dict[int, int] = {}  # awards and transfers received today
            self.entries: dict[int, ModelEntry] = {}
            self.done: list[tuple[str, dict, ledger.OperationResult]] = []  # replayable calls
            self.keys = itertools.count(1)

        # -- helpers --------------------------------------------------------------------
        def _user(self, user: int) -> int:
            return self.guild + user

        def _call(self, name: str, **kwargs) -> ledger.OperationResult:
            fn = getattr(ledger, name)
            return db.run(fn, guild_id=self.guild, settings=policy, **kwargs)

        def _admin(self, name: str, **kwargs) -> dict:
            return dict(reason="model", actor_id=7, source="admin_site",
                        idempotency_key=f"{name}-{next(self.keys)}", **kwargs)  # fmt: skip

        def _record(self, name: str, kwargs: dict, result: ledger.OperationResult) -> None:
            assert not result.replayed
            for entry in result.entries:
                self.entries[entry.id] = ModelEntry(
                    entry.id, entry.user_id, entry.amount, entry.kind, result.operation_id
                )
                self.balances[entry.user_id] = self.balances.get(entry.user_id, 0) + entry.amount
                assert entry.balance_after == self.balances[entry.user_id]
            self.done.append((name, kwargs, result))

        def _bal(self, user_id: int) -> int:
            return self.balances.get(user_id, 0)

        def _over_cap(self, user_id: int, amount: int) -> bool:
            return permissive and self.credited.get(user_id, 0) + amount > DAILY_CAP

        def _below_floor(self, user_id: int, change: int) -> bool:
            return floor is not None and self._bal(user_id) + change < floor

        # -- rules ----------------------------------------------------------------------
        @rule(user=USERS, amount=AMOUNTS)
        def award(self, user: int, amount: int) -> None:
            kwargs = self._admin("award", user_id=self._user(user), amount=amount)
            if amount > MAX_CHANGE:
                with pytest.raises(LimitExceeded):
                    self._call("award", **kwargs)
                return
            if self._over_cap(kwargs["user_id"], amount):
                with pytest.raises(DailyCapReached):
                    self._call("award", **kwargs)
                return
            result = self._call("award", **kwargs)
            assert result.entry.amount == amount and result.entry.kind == "award"
            self.credited[kwargs["user_id"]] = self.credited.get(kwargs["user_id"], 0) + amount
            self._record("award", kwargs, result)

        @rule(user=USERS, amount=AMOUNTS)
        def deduct(self, user: int, amount: int) -> None:
            uid = self._user(user)
            kwargs = self._admin("deduct", user_id=uid, amount=amount)
            if amount > MAX_CHANGE:
                with pytest.raises(LimitExceeded):
                    self._call("deduct", **kwargs)
            elif self._below_floor(uid, -amount):
                with pytest.raises(InsufficientBalance):
                    self._call("deduct", **kwargs)
            else:
                result = self._call("deduct", **kwargs)
                assert result.entry.amount == -amount
                self._record("deduct", kwargs, result)

        @rule(user=USERS, goal=st.integers(min_value=-100, max_value=400))
        def set_balance(self, user: int, goal: int) -> None:
            uid = self._user(user)
            kwargs = self._admin("set_balance", user_id=uid, target=goal)
            if goal < 0 and not permissive:
                with pytest.raises(InvalidInput):
                    self._call("set_balance", **kwargs)
                return
            if abs(goal - self._bal(uid)) > MAX_CHANGE:
                with pytest.raises(LimitExceeded):
                    self._call("set_balance", **kwargs)
                return
            result = self._call("set_balance", **kwargs)
            if goal == self._bal(uid):
                # No change: no entry (it would count as a transaction), only the key's record.
                assert not result.changed and result.entries == ()
            else:
                assert result.balance == goal
            self._record("set_balance", kwargs, result)

        @rule(src=USERS, dst=USERS, amount=AMOUNTS)
        def transfer(self, src: int, dst: int, amount: int) -> None:
            a, b = self._user(src), self._user(dst)
            kwargs = dict(from_user_id=a, to_user_id=b, amount=amount, reason="gift",
                          idempotency_key=f"transfer-{next(self.keys)}")  # fmt: skip
            if a == b:
                with pytest.raises(InvalidInput):
                    self._call("transfer", **kwargs)
            elif amount > MAX_CHANGE:
                with pytest.raises(LimitExceeded):
                    self._call("transfer", **kwargs)
            else:
                # The legs apply in user id order; the first guard to refuse is the error.
                refusal = None
                for leg in sorted((a, b)):
                    if leg == a and self._bal(a) < amount:  # a giver never goes below zero
                        refusal = InsufficientBalance
                    elif leg == b and self._over_cap(b, amount):
                        refusal = DailyCapReached
                    if refusal:
                        break
                if refusal:
                    with pytest.raises(refusal):
                        self._call("transfer", **kwargs)
                    return
                result = self._call("transfer", **kwargs)
                assert {e.user_id: e.amount for e in result.entries} == {a: -amount, b: amount}
                self.credited[b] = self.credited.get(b, 0) + amount
                self._record("transfer", kwargs, result)

        @precondition(lambda self: self.entries)
        @rule(data=st.data())
        def revert(self, data) -> None:
            target = self.entries[data.draw(st.sampled_from(sorted(self.entries)))]
            kwargs = self._admin("revert", entry_id=target.id)
            legs = (
                [e for e in self.entries.values() if e.operation_id == target.operation_id]
                if target.kind in ("transfer_in", "transfer_out")
                else [target]
            )
            if target.kind == "revert":
                expected = InvalidInput
            elif any(leg.reverted for leg in legs):
                expected = AlreadyReverted
            elif any(leg.amount > 0 and self._below_floor(leg.user, -leg.amount) for leg in legs):
                expected = InsufficientBalance  # taking back a credit never goes below the floor
            else:
                expected = None
            if expected is not None:
                with pytest.raises(expected):
                    self._call("revert", **kwargs)
                return
            result = self._call("revert", **kwargs)
            assert sorted((e.user_id, e.amount) for e in result.entries) == sorted(
                (leg.user, -leg.amount) for leg in legs
            )
            for entry, leg in zip(
                sorted(result.entries, key=lambda e: e.reverts_id),
                sorted(legs, key=lambda e: e.id),
                strict=True,
            ):
                assert entry.reverts_id == leg.id
                leg.reverted = True
            self._record("revert", kwargs, result)

        @rule(user=USERS, amount=st.integers(min_value=1, max_value=MAX_CHANGE), nth=st.integers(min_value=1))
        def revert_missing_entry(self, user: int, amount: int, nth: int) -> None:
            with pytest.raises(NotFound):
                self._call("revert", **self._admin("revert", entry_id=10**15 + nth))

        @precondition(lambda self: self.done)
        @rule(data=st.data())
        def replay(self, data) -> None:
            name, kwargs, first = data.draw(st.sampled_from(self.done))
            again = self._call(name, **kwargs)
            assert again.replayed
            assert again.operation_id == first.operation_id
            assert again.entries == first.entries

        @precondition(lambda self: any(name == "award" for name, _, _ in self.done))
        @rule(data=st.data())
        def reuse_key_differently(self, data) -> None:
            _name, kwargs, _first = data.draw(st.sampled_from([d for d in self.done if d[0] == "award"]))
            with pytest.raises(IdempotencyConflict):
                self._call("award", **{**kwargs, "amount": kwargs["amount"] % MAX_CHANGE + 1})

        # -- invariants -----------------------------------------------------------------
        @invariant()
        def database_agrees_with_model(self) -> None:
            with db.connection() as conn:
                assert violations(conn, self.guild, floor=floor) == []
                balances = dict(
                    conn.execute(
                        "SELECT user_id, balance FROM points WHERE guild_id = %s", (self.guild,)
                    ).fetchall()
                )
                ids = {
                    r[0]
                    for r in conn.execute(
                        "SELECT id FROM transactions WHERE guild_id = %s", (self.guild,)
                    ).fetchall()
                }
            assert {u: b for u, b in balances.items() if u in self.balances} == self.balances
            assert all(b == 0 for u, b in balances.items() if u not in self.balances)
            assert ids == set(self.entries)

    return LedgerMachine


@pytest.mark.parametrize("permissive", [False, True], ids=["defaults", "negative-and-daily-cap"])
def test_ledger_state_machine(db, permissive):
    machine = make_machine(db, permissive=permissive)
    machine.TestCase.settings = settings(
        max_examples=40,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    machine.TestCase().runTest()
