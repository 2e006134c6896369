"""Concurrent first contact: credits for a member the ledger has never seen, all at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from pointsbot import ledger

pytestmark = pytest.mark.integration
GUILD = 900_000_000_000_000_777


def test_simultaneous_first_credits_for_a_new_member_all_land(db, settings, sql):
    # Given members nobody has seen, each about to get 8 credits at the same moment
    users = [5_000 + n for n in range(10)]

    def credit(job: tuple[int, int]) -> int:
        user, n = job
        return db.run(
            ledger.award, guild_id=GUILD, user_id=user, amount=3, reason="hello", actor_id=1,
            source="system", idempotency_key=f"first-{user}-{n}", settings=settings,
        ).balance  # fmt: skip

    # When they all arrive together
    jobs = [(user, n) for n in range(8) for user in users]
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(credit, jobs))

    # Then none was refused or failed, and every balance is the sum of its entries
    assert len(results) == len(jobs)
    rows = sql(
        "SELECT p.user_id, p.balance, sum(t.amount) FROM points p JOIN transactions t USING (guild_id, user_id) "
        "WHERE p.guild_id = %s GROUP BY p.user_id, p.balance ORDER BY p.user_id",
        (GUILD,),
    )
    assert rows == [(user, 24, 24) for user in users]
    # and the guild's kept member count saw every new member exactly once
    assert sql("SELECT member_count FROM guilds WHERE guild_id = %s", (GUILD,)) == [(len(users),)]
    assert db.run(ledger.rank_of, GUILD, users[0]).total_members == len(users)
