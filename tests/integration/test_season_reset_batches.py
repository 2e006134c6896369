"""The season reset's batches (ledger.seasonal.reset_batch) at the ledger level: a member already
at zero is neither written nor locked, so a transaction holding such a member's row does not
hold up the reset of everyone else, and the reset still writes one entry per non-zero balance."""

from __future__ import annotations

import psycopg
import pytest
from _ledger_checks import award, violations

from pointsbot.ledger import ensure_member, guilds, seasonal

pytestmark = pytest.mark.integration
GUILD = 948_000_000_000_000_001


def test_a_zero_balance_held_by_another_transaction_does_not_hold_up_the_reset(
    db, database_url, settings, sql
):
    db.run(guilds.ensure_guild, GUILD)
    for user, amount in ((201, 10), (203, 5), (205, 7)):
        award(db, GUILD, user, amount, settings)
    for user in (202, 204):  # members at zero
        db.run(ensure_member, GUILD, user)

    with psycopg.connect(database_url) as holder, psycopg.connect(database_url) as conn:
        # Another transaction holds member 202's row (at zero) and does not finish.
        holder.execute("SELECT 1 FROM points WHERE guild_id = %s AND user_id = 202 FOR UPDATE", (GUILD,))
        conn.execute("SET lock_timeout = '3s'")
        op = seasonal.reset_operation(conn, GUILD, 1)
        last, written = seasonal.reset_batch(conn, guild_id=GUILD, operation_id=op, after_user=0, limit=10,
                                             reason="Season ended")  # fmt: skip
        conn.commit()
        holder.rollback()

    assert (last, written) == (205, 3)
    entries = sql("SELECT user_id, amount, balance_after FROM transactions WHERE guild_id = %s "
                  "AND kind = 'season_reset' ORDER BY user_id", (GUILD,))  # fmt: skip
    assert entries == [(201, -10, 0), (203, -5, 0), (205, -7, 0)]
    assert set(dict(sql("SELECT user_id, balance FROM points WHERE guild_id = %s", (GUILD,))).values()) == {0}
    with db.connection() as c:
        assert violations(c, GUILD, floor=None) == []
