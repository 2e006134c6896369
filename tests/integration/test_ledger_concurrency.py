"""The ledger under concurrent load on a real Postgres: nothing lost, nothing doubled.

A deliberately naive read-modify-write ledger runs under the same load as a negative control:
the same checker must catch it, which shows the checker can see a lost update at all.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from _ledger_checks import award, deduct, key, revert, set_balance, transfer, violations

from pointsbot import ledger
from pointsbot.platform.errors import (
    AlreadyReverted,
    DailyCapReached,
    DomainError,
    IdempotencyConflict,
    InsufficientBalance,
    InvalidInput,
)

pytestmark = [pytest.mark.integration, pytest.mark.through_pgbouncer]

THREADS = 8
OPS_PER_THREAD = 40


def _in_threads(count: int, work: Callable[[int], object]) -> list[object]:
    """Run work(i) for i in range(count) on as many threads, started together."""
    barrier = threading.Barrier(count)

    def start(index: int) -> object:
        barrier.wait()
        try:
            return work(index)
        except Exception as exc:  # collected and judged by the test
            return exc

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(start, range(count)))


def test_mixed_operations_lose_nothing(db, settings):
    # Given six members with 500 each
    guild = 910_000_000_000_000_001
    members = [guild + i for i in range(1, 7)]
    results: list[ledger.OperationResult] = [award(db, guild, m, 500, settings) for m in members]
    entry_ids = [e.id for r in results for e in r.entries]
    refused: Counter[str] = Counter()

    def worker(index: int) -> None:
        rnd = random.Random(index)
        for _ in range(OPS_PER_THREAD):
            op = rnd.choices(["award", "deduct", "transfer", "set", "revert"], [3, 3, 4, 1, 2])[0]
            a, b = rnd.sample(members, 2)
            try:
                if op == "award":
                    result = award(db, guild, a, rnd.randint(1, 50), settings)
                elif op == "deduct":
                    result = deduct(db, guild, a, rnd.randint(1, 120), settings)
                elif op == "transfer":
                    result = transfer(db, guild, a, b, rnd.randint(1, 150), settings)
                elif op == "set":
                    result = set_balance(db, guild, a, rnd.randint(0, 400), settings)
                else:
                    result = revert(db, guild, rnd.choice(entry_ids), settings)
            except (InsufficientBalance, AlreadyReverted, InvalidInput) as exc:
                refused[type(exc).__name__] += 1
                continue
            results.append(result)
            entry_ids.extend(e.id for e in result.entries)

    # When eight threads apply a mix of every operation to the same members at once
    outcomes = _in_threads(THREADS, worker)

    # Then no thread failed for any other reason
    assert [o for o in outcomes if o is not None] == []
    applied = [r for r in results if not r.replayed]
    assert len(applied) > THREADS * OPS_PER_THREAD // 2  # most operations went through
    # and every member's balance is exactly the sum of what the callers were told was written
    expected: dict[int, int] = defaultdict(int)
    for result in applied:
        for entry in result.entries:
            expected[entry.user_id] += entry.amount
    with db.connection() as conn:
        balances = dict(
            conn.execute("SELECT user_id, balance FROM points WHERE guild_id = %s", (guild,)).fetchall()
        )
        written = {
            r[0] for r in conn.execute("SELECT id FROM transactions WHERE guild_id = %s", (guild,)).fetchall()
        }
        assert balances == dict(expected)
        # and the ledger holds exactly the entries returned, no more
        assert written == {e.id for r in applied for e in r.entries}
        # and balance == sum(amounts), an unbroken chain of balance_after, nothing below zero
        assert violations(conn, guild) == []


# -- the negative control -----------------------------------------------------------------
def _naive_change(conn: psycopg.Connection, guild: int, user: int, amount: int, op_key: str) -> None:
    """Read the balance, compute the new one in Python, write it back: loses updates."""
    op_id = conn.execute(
        "INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) VALUES (%s, %s, '', 'award') "
        "RETURNING id",
        (guild, op_key),
    ).fetchone()[0]
    current = conn.execute(
        "SELECT balance FROM points WHERE guild_id = %s AND user_id = %s", (guild, user)
    ).fetchone()[0]
    time.sleep(0.002)  # the round trip to Lambda's database; widens the window a real one has
    new = current + amount
    conn.execute("UPDATE points SET balance = %s WHERE guild_id = %s AND user_id = %s", (new, guild, user))
    conn.execute(
        "INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, source) "
        "VALUES (%s, %s, %s, %s, %s, %s, 'system')",
        (op_id, guild, user, amount, new, "award" if amount > 0 else "deduct"),
    )
    conn.execute(
        "UPDATE user_stats SET transaction_count = transaction_count + 1, total_earned = total_earned + %s, "
        "total_spent = total_spent + %s WHERE guild_id = %s AND user_id = %s",
        (max(amount, 0), max(-amount, 0), guild, user),
    )


def test_naive_read_modify_write_is_caught_by_the_same_checker(db, settings):
    # Given two members created through the real ledger
    guild = 910_000_000_000_000_002
    members = [guild + 1, guild + 2]
    for m in members:
        award(db, guild, m, 1000, settings)
    with db.connection() as conn:
        assert violations(conn, guild) == []

    def worker(index: int) -> None:
        rnd = random.Random(index)
        for _ in range(15):
            amount = rnd.choice([1, 2, 3, 5, 8, -1, -2, -3])
            db.run(_naive_change, guild, rnd.choice(members), amount, key("naive"))

    # When the naive implementation runs under the same concurrent load
    outcomes = _in_threads(THREADS, worker)
    assert [o for o in outcomes if o is not None] == []

    # Then the checker reports lost updates
    with db.connection() as conn:
        found = violations(conn, guild)
    assert any("!= sum(amounts)" in v for v in found), found
    assert any("goes" in v for v in found), found


# -- idempotency under concurrency ----------------------------------------------------------
def test_same_key_ten_times_at_once_writes_one_entry(db, settings, sql):
    guild = 910_000_000_000_000_003
    user = guild + 1
    op_key = "interaction-1234567890"

    # When the same award arrives ten times at once (a retried Lambda, a redelivered message)
    outcomes = _in_threads(10, lambda _i: award(db, guild, user, 25, settings, idempotency_key=op_key))

    # Then each caller got the same result, one of them the original and nine replays
    assert all(isinstance(o, ledger.OperationResult) for o in outcomes), outcomes
    assert {(o.operation_id, o.entries) for o in outcomes} == {
        (outcomes[0].operation_id, outcomes[0].entries)
    }
    assert sorted(o.replayed for o in outcomes) == [False] + [True] * 9
    # and one entry was written
    assert sql("SELECT count(*), sum(amount) FROM transactions WHERE guild_id = %s", (guild,)) == [(1, 25)]
    assert sql("SELECT count(*) FROM operations WHERE guild_id = %s", (guild,)) == [(1,)]
    assert db.run(ledger.balance, guild, user) == 25

    # And the same key with a different amount is refused, and changes nothing
    with pytest.raises(IdempotencyConflict):
        award(db, guild, user, 26, settings, idempotency_key=op_key)
    with pytest.raises(IdempotencyConflict):
        deduct(db, guild, user, 25, settings, idempotency_key=op_key)
    assert db.run(ledger.balance, guild, user) == 25


def test_same_key_at_once_with_different_amounts_applies_exactly_one(db, settings, sql):
    guild = 910_000_000_000_000_004
    user = guild + 1
    outcomes = _in_threads(6, lambda i: award(db, guild, user, 10 + i, settings, idempotency_key="race"))
    applied = [o for o in outcomes if isinstance(o, ledger.OperationResult) and not o.replayed]
    assert len(applied) == 1
    # every other caller either replays the winner (same amount) or is told of the conflict
    for other in outcomes:
        if isinstance(other, ledger.OperationResult):
            assert other.entries == applied[0].entries
        else:
            assert isinstance(other, IdempotencyConflict), other
    assert sql("SELECT count(*) FROM transactions WHERE guild_id = %s", (guild,)) == [(1,)]
    assert db.run(ledger.balance, guild, user) == applied[0].balance


# -- spends racing for one balance ------------------------------------------------------------
@pytest.mark.parametrize("spend", ["deduct", "transfer", "mixed"])
def test_concurrent_spends_only_what_the_balance_covers(db, settings, sql, spend):
    # Given a member with 50, and twenty spends of 10 arriving at once (so 5 can succeed)
    guild = 910_000_000_000_000_010 + ["deduct", "transfer", "mixed"].index(spend)
    giver = guild + 1
    award(db, guild, giver, 50, settings)

    def spend_once(index: int) -> ledger.OperationResult:
        as_transfer = spend == "transfer" or (spend == "mixed" and index % 2 == 0)
        if as_transfer:
            return transfer(db, guild, giver, guild + 100 + index, 10, settings)
        return deduct(db, guild, giver, 10, settings)

    outcomes = _in_threads(20, spend_once)

    # Then exactly five succeed and the others are told the balance is too low
    succeeded = [o for o in outcomes if isinstance(o, ledger.OperationResult)]
    assert len(succeeded) == 5
    assert all(isinstance(o, InsufficientBalance) for o in outcomes if o not in succeeded)
    assert db.run(ledger.balance, guild, giver) == 0
    # and the balance never went below zero on the way
    assert sql(
        "SELECT min(balance_after) FROM transactions WHERE guild_id = %s AND user_id = %s", (guild, giver)
    ) == [(0,)]
    with db.connection() as conn:
        assert violations(conn, guild) == []


def test_concurrent_credits_only_what_the_daily_cap_allows(db, settings, sql):
    # Given a daily cap of 50 and twenty credits of 10 arriving at once (awards and transfers in)
    guild = 910_000_000_000_000_015
    capped = settings.with_overrides(daily_cap=50)
    receiver, giver = guild + 1, guild + 2
    award(db, guild, giver, 500, settings)

    def credit(index: int) -> ledger.OperationResult:
        if index % 2:
            return transfer(db, guild, giver, receiver, 10, capped)
        return award(db, guild, receiver, 10, capped)

    outcomes = _in_threads(20, credit)

    # Then exactly five land and the rest are told of the cap
    succeeded = [o for o in outcomes if isinstance(o, ledger.OperationResult)]
    assert len(succeeded) == 5
    assert all(isinstance(o, DailyCapReached) for o in outcomes if o not in succeeded)
    assert db.run(ledger.balance, guild, receiver) == 50
    assert sql(
        "SELECT daily_credited FROM points WHERE guild_id = %s AND user_id = %s", (guild, receiver)
    ) == [(50,)]
    with db.connection() as conn:
        assert violations(conn, guild) == []


@pytest.mark.parametrize("first", ["award", "transfer"])
def test_simultaneous_first_contact_of_a_new_member(db, settings, first):
    # Twelve first credits at once for a member nobody has seen yet; the race (one creates the
    # member while the others' guarded UPDATE found no row) is narrow, so several rounds.
    guild = 910_000_000_000_000_030 + (first == "transfer")
    giver = guild + 1
    if first == "transfer":
        award(db, guild, giver, 10_000, settings)
    for round_ in range(8):
        newcomer = guild + 100 + round_

        def credit(index: int, newcomer: int = newcomer) -> ledger.OperationResult:
            if first == "transfer":
                return transfer(db, guild, giver, newcomer, index + 1, settings)
            return award(db, guild, newcomer, index + 1, settings)

        outcomes = _in_threads(12, credit)
        assert all(isinstance(o, ledger.OperationResult) for o in outcomes), outcomes
        assert db.run(ledger.balance, guild, newcomer) == sum(range(1, 13))
    with db.connection() as conn:
        assert violations(conn, guild) == []


def test_opposite_transfers_at_once_do_not_deadlock(db, settings):
    # Lock order by user id: A->B and B->A at the same time both go through.
    guild = 910_000_000_000_000_020
    a, b = guild + 1, guild + 2
    award(db, guild, a, 1000, settings)
    award(db, guild, b, 1000, settings)
    outcomes = _in_threads(
        16,
        lambda i: transfer(db, guild, a, b, 7, settings) if i % 2 else transfer(db, guild, b, a, 5, settings),
    )
    assert all(isinstance(o, ledger.OperationResult) for o in outcomes), [
        o for o in outcomes if isinstance(o, DomainError | Exception)
    ]
    assert db.run(ledger.balance, guild, a) == 1000 - 8 * 7 + 8 * 5
    assert db.run(ledger.balance, guild, b) == 1000 + 8 * 7 - 8 * 5
    with db.connection() as conn:
        assert violations(conn, guild) == []


def test_concurrent_moves_across_buckets_keep_every_rank_exact(db, settings):
    # Eight threads move twelve members of one guild across bucket boundaries (sets from 0 to
    # 10^6, transfers between them) at once: nothing fails or waits forever, the kept bucket
    # counts (sql/036) equal a recount, and every rank equals the naive count.
    guild = 910_000_000_000_000_030
    members = [guild + i for i in range(1, 13)]
    for member in members:
        award(db, guild, member, 300, settings)

    def worker(index: int) -> None:
        rnd = random.Random(100 + index)
        for _ in range(OPS_PER_THREAD):
            a, b = rnd.sample(members, 2)
            try:
                if rnd.random() < 0.5:
                    set_balance(
                        db,
                        guild,
                        a,
                        rnd.choice([0, 5, 127, 128, 129, 300, 4096, rnd.randint(0, 10**6)]),
                        settings,
                    )
                else:
                    transfer(db, guild, a, b, rnd.randint(1, 400), settings)
            except InsufficientBalance:
                continue

    outcomes = _in_threads(THREADS, worker)
    assert [o for o in outcomes if o is not None] == []
    with db.connection() as conn:
        assert violations(conn, guild) == []
        for member in members:
            naive = conn.execute(
                "SELECT 1 + count(*) FROM points WHERE guild_id = %s AND balance > "
                "(SELECT balance FROM points WHERE guild_id = %s AND user_id = %s)",
                (guild, guild, member),
            ).fetchone()[0]
            assert ledger.rank_of(conn, guild, member).rank == naive
