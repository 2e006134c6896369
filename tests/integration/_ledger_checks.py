"""Helpers for the ledger tests: short calls of each operation and the invariant checker.

The checker reads only the database, so it judges any implementation that writes the same
tables, the real ledger and the naive negative control alike.
"""

from __future__ import annotations

import itertools
from typing import Any

import psycopg

from pointsbot.community import points as ledger
from pointsbot.platform.db import Database

_keys = itertools.count(1)


def key(prefix: str = "k") -> str:
    """A fresh idempotency key (unique within the test process)."""
    return f"{prefix}-{next(_keys)}"


def award(db: Database, guild: int, user: int, amount: int, settings, **extra: Any) -> ledger.OperationResult:
    extra.setdefault("idempotency_key", key("award"))
    extra.setdefault("reason", "test")
    extra.setdefault("source", "admin_site")
    extra.setdefault("actor_id", 1)
    return db.run(ledger.award, guild_id=guild, user_id=user, amount=amount, settings=settings, **extra)


def deduct(
    db: Database, guild: int, user: int, amount: int, settings, **extra: Any
) -> ledger.OperationResult:
    extra.setdefault("idempotency_key", key("deduct"))
    return db.run(
        ledger.deduct, guild_id=guild, user_id=user, amount=amount, reason="test", actor_id=1,
        source="admin_site", settings=settings, **extra,
    )  # fmt: skip


def set_balance(
    db: Database, guild: int, user: int, target: int, settings, **extra: Any
) -> ledger.OperationResult:
    extra.setdefault("idempotency_key", key("set"))
    return db.run(
        ledger.set_balance, guild_id=guild, user_id=user, target=target, reason="test", actor_id=1,
        source="admin_site", settings=settings, **extra,
    )  # fmt: skip


def transfer(
    db: Database, guild: int, src: int, dst: int, amount: int, settings, **extra: Any
) -> ledger.OperationResult:
    extra.setdefault("idempotency_key", key("transfer"))
    return db.run(
        ledger.transfer, guild_id=guild, from_user_id=src, to_user_id=dst, amount=amount, reason="test",
        settings=settings, **extra,
    )  # fmt: skip


def revert(db: Database, guild: int, entry_id: int, settings, **extra: Any) -> ledger.OperationResult:
    extra.setdefault("idempotency_key", key("revert"))
    return db.run(
        ledger.revert, guild_id=guild, entry_id=entry_id, reason="test", actor_id=1, source="admin_site",
        settings=settings, **extra,
    )  # fmt: skip


def violations(conn: psycopg.Connection, guild: int, *, floor: int | None = 0) -> list[str]:
    """Every way the guild's ledger breaks its invariants, as sentences (empty: all is well).

    - balance == sum(amounts) for every member;
    - each entry's balance_after is the previous entry's balance_after plus its amount
      (entries of one member in id order), so no update was lost or applied twice;
    - no balance and no balance_after below `floor` (None: negatives allowed);
    - user_stats agrees: transaction_count == number of entries, earned - spent == balance.
    """
    found: list[str] = []
    rows = conn.execute(
        """
        SELECT p.user_id, p.balance, coalesce(t.total, 0), coalesce(t.n, 0),
               s.transaction_count, s.total_earned - s.total_spent
        FROM points p
        LEFT JOIN (SELECT user_id, sum(amount) AS total, count(*) AS n FROM transactions
                   WHERE guild_id = %(g)s GROUP BY user_id) t USING (user_id)
        LEFT JOIN user_stats s ON s.guild_id = p.guild_id AND s.user_id = p.user_id
        WHERE p.guild_id = %(g)s
        """,
        {"g": guild},
    ).fetchall()
    for user, bal, total, count, stat_count, net in rows:
        if bal != total:
            found.append(f"member {user}: balance {bal} != sum(amounts) {total}")
        if floor is not None and bal < floor:
            found.append(f"member {user}: balance {bal} below {floor}")
        if stat_count != count:
            found.append(f"member {user}: user_stats counts {stat_count} entries, ledger has {count}")
        if net != bal:
            found.append(f"member {user}: user_stats earned - spent = {net}, balance {bal}")
    breaks = conn.execute(
        """
        SELECT user_id, id, amount, balance_after, prev FROM (
            SELECT user_id, id, amount, balance_after,
                   coalesce(lag(balance_after) OVER (PARTITION BY user_id ORDER BY id), 0) AS prev
            FROM transactions WHERE guild_id = %s) chain
        WHERE prev + amount <> balance_after
        """,
        (guild,),
    ).fetchall()
    for user, entry_id, amount, after, prev in breaks:
        found.append(f"member {user}: entry {entry_id} goes {prev} {amount:+d} -> {after}")
    if floor is not None:
        low = conn.execute(
            "SELECT count(*) FROM transactions WHERE guild_id = %s AND balance_after < %s", (guild, floor)
        ).fetchone()[0]
        if low:
            found.append(f"{low} entries with balance_after below {floor}")
    orphans = conn.execute(
        "SELECT count(*) FROM transactions t WHERE guild_id = %s AND NOT EXISTS "
        "(SELECT 1 FROM points p WHERE p.guild_id = t.guild_id AND p.user_id = t.user_id)",
        (guild,),
    ).fetchone()[0]
    if orphans:
        found.append(f"{orphans} entries of members without a balance row")
    found.extend(bucket_count_errors(conn, guild))
    return found


def bucket_count_errors(conn: psycopg.Connection, guild: int) -> list[str]:
    """Where the trigger-kept balance_counts (sql/036) differ from counting the points rows."""
    rows = conn.execute(
        """
        SELECT tier, bucket, kept.n, counted.n
        FROM (SELECT tier, bucket, sum(members) AS n FROM balance_counts WHERE guild_id = %(g)s
              GROUP BY tier, bucket HAVING sum(members) <> 0) kept
        FULL JOIN (SELECT 0::smallint AS tier, balance_bucket(balance) AS bucket, count(*) AS n
                   FROM points WHERE guild_id = %(g)s GROUP BY 2
                   UNION ALL
                   SELECT 1::smallint, balance_class(balance), count(*)
                   FROM points WHERE guild_id = %(g)s GROUP BY 2) counted USING (tier, bucket)
        WHERE kept.n IS DISTINCT FROM counted.n
        """,
        {"g": guild},
    ).fetchall()
    return [f"tier {t} bucket {b}: kept {k}, counted {c}" for t, b, k, c in rows]


def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Row count of every table in the public schema."""
    names = [
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        ).fetchall()
    ]
    return {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}
