"""Earning an achievement: `grant` (the row, the bonus, the DM, in the caller's transaction) and
`check_member`, the check right after a member's balance changed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from .. import ledger
from ..delivery import outbox
from ..delivery.outbox import check_content
from ..ledger.entries import _ENTRY_COLUMNS, _entry
from ..ledger.guilds import GuildPolicy, guild_policy
from ..ledger.operations import _fingerprint
from ..platform.amounts import COUNTER_CEILING, MAX_BALANCE
from ..platform.config import Settings, get_settings
from ..platform.storable import check_text
from . import role_rewards, roles
from .achievement_criteria import ACTIVE, CHANGE_KINDS, qualifies

# A bonus can make another achievement true; each is earned at most once, so the chain ends,
# but the loop is bounded anyway.
_MAX_ROUNDS = 20


@dataclass(frozen=True)
class Granted:
    """An achievement a member has just earned (in the current transaction)."""

    guild_id: int
    user_id: int
    achievement_id: int
    name: str
    bonus_points: int
    transaction_id: int | None
    dm_id: int | None
    role_change_id: int | None = None  # the role the achievement grants, asked for


_MEMBER_QUALIFIES = f"""
WITH a AS MATERIALIZED ({ACTIVE} AND a.guild_id = %(guild_id)s)
SELECT a.id, a.name, a.bonus_points
FROM members m
JOIN a ON a.guild_id = m.guild_id
LEFT JOIN points p ON p.guild_id = m.guild_id AND p.user_id = m.user_id
LEFT JOIN user_stats s ON s.guild_id = m.guild_id AND s.user_id = m.user_id
WHERE m.guild_id = %(guild_id)s AND m.user_id = %(user_id)s AND m.erased_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM member_achievements ma
                  WHERE ma.guild_id = m.guild_id AND ma.user_id = m.user_id AND ma.achievement_id = a.id)
  AND {qualifies("now()")}
ORDER BY a.id
"""


def _dm_text(name: str, bonus: int, guild_name: str, policy: GuildPolicy) -> str:
    """The DM of an achievement earned, in the server's language."""
    from ..platform.i18n import translator

    tr = translator(policy.locale)
    if guild_name:
        text = "\N{TROPHY} " + tr._("You earned the achievement **{name}** in **{server}**!", name=name,
                                     server=guild_name)  # fmt: skip
    else:
        text = "\N{TROPHY} " + tr._("You earned the achievement **{name}**!", name=name)
    if bonus:
        text += " " + tr._(
            "Bonus: **{amount}**.", amount=tr.points(bonus, policy.currency_name, policy.currency_one)
        )
    return text


def grant(
    conn: psycopg.Connection,
    guild_id: int,
    user_id: int,
    achievement_id: int,
    name: str,
    bonus_points: int,
    *,
    policy: GuildPolicy,
    settings: Settings,
    guild_name: str = "",
) -> Granted | None:
    """Give one achievement to one member in the caller's transaction; None if they hold it.

    The member_achievements row is claimed first (a concurrent grant waits on it, then finds
    it taken), then the bonus is paid under the key "achievement:{id}:{user}" (a replay pays
    nothing) and the balance thresholds it crosses are reached, the achievement's role is asked
    for (source 'achievement', source_ref "{id}:{user}"), then the DM is queued unless the guild
    turned automatic DMs off.
    """
    row = conn.execute(
        "INSERT INTO member_achievements (guild_id, user_id, achievement_id) VALUES (%s, %s, %s) "
        "ON CONFLICT DO NOTHING RETURNING earned_at",
        (guild_id, user_id, achievement_id),
    ).fetchone()
    if row is None:
        return None
    key = f"achievement:{achievement_id}:{user_id}"
    transaction_id = None
    # A bonus never takes a balance out of the range (pointsbot.platform.amounts): a member near the top
    # gets what still fits, so earning it never refuses the change that earned it. The member's
    # points row is locked by that change (or by the sweep's batch), so the room stays.
    bonus_points = min(bonus_points, max(MAX_BALANCE - ledger.balance(conn, guild_id, user_id), 0))
    if bonus_points > 0:
        result = ledger.award(
            conn,
            guild_id=guild_id,
            user_id=user_id,
            amount=bonus_points,
            reason=f"Achievement: {name}",
            actor_id=None,
            actor_name="achievement",
            source="achievement",
            idempotency_key=key,
            # The achievement DM below tells the member about the bonus; no second DM.
            silent=True,
            kind="achievement",
            settings=settings,
        )
        transaction_id = result.entry.id
        # The bonus is a balance change too (the bare ledger's: points.after_change is not run).
        role_rewards.after_balance_change(conn, policy, result.entries)
        conn.execute(
            "UPDATE member_achievements SET transaction_id = %s "
            "WHERE guild_id = %s AND user_id = %s AND achievement_id = %s",
            (transaction_id, guild_id, user_id, achievement_id),
        )
    role_id = conn.execute("SELECT role_id FROM achievements WHERE id = %s", (achievement_id,)).fetchone()[0]
    role_change_id = None
    if role_id is not None:
        role_change_id = roles.request_role_change(
            conn, guild_id=guild_id, user_id=user_id, role_id=role_id, action="add", source="achievement",
            source_ref=f"{achievement_id}:{user_id}", reason=f"Achievement: {name}",
        )  # fmt: skip
    dm_id = None
    if policy.dm_notifications:
        dm_id = outbox.enqueue_dm(
            conn,
            guild_id=guild_id,
            user_id=user_id,
            content=_dm_text(name, bonus_points, guild_name, policy),
            reason="achievement",
            dedupe_key=key,
        )
    return Granted(
        guild_id, user_id, achievement_id, name, bonus_points, transaction_id, dm_id, role_change_id
    )


def _guild_name(conn: psycopg.Connection, guild_id: int) -> str:
    row = conn.execute("SELECT name FROM guilds WHERE guild_id = %s", (guild_id,)).fetchone()
    return row[0] if row else ""


def check_member(
    conn: psycopg.Connection,
    guild_id: int,
    user_id: int,
    *,
    kinds: Iterable[str] = CHANGE_KINDS,
    policy: GuildPolicy | None = None,
    settings: Settings | None = None,
) -> list[Granted]:
    """Grant every active achievement of the given criteria the member now meets.

    Runs in the caller's transaction (points.after_change calls it after each change, with
    the member's points row already locked by that change). A bonus is a change too, so the
    check repeats until nothing new is earned; the bonus's own after_change skips this.
    """
    settings = settings or get_settings()
    policy = policy or guild_policy(conn, settings, guild_id)
    params = {"guild_id": guild_id, "user_id": user_id, "kinds": list(kinds)}
    granted: list[Granted] = []
    guild_name: str | None = None
    for _ in range(_MAX_ROUNDS):
        due = conn.execute(_MEMBER_QUALIFIES, params).fetchall()
        if not due:
            break
        if guild_name is None:
            guild_name = _guild_name(conn, guild_id)
        paid = False
        for achievement_id, name, bonus in due:
            got = grant(
                conn, guild_id, user_id, achievement_id, name, bonus,
                policy=policy, settings=settings, guild_name=guild_name,
            )  # fmt: skip
            if got is not None:
                granted.append(got)
                paid = paid or bonus > 0
        if not paid:
            break
    return granted


# -- many grants at once (the sweep) -------------------------------------------------------------
# The sweep finds thousands of (member, achievement) pairs per batch; granting them one by one
# (five or six round trips each) is what made the first sweep over a large guild slow. These
# statements write exactly what `grant` writes for each pair, for all of them at once: the
# member_achievements row, the operation under the key "achievement:{id}:{user}" with the
# fingerprint ledger.award gives it, the balance, the entry (balance_after chained per member in
# achievement order), the member's counters and the DM. A key that already has an operation
# (a bonus paid before and its row removed since) is `grant`'s replay case: the batch is then
# granted one by one instead, from a savepoint, so the answer is the same as grant's.
# Unlike `grant`, the member_achievements row is written last, with its entry, so no second
# write of the row (an UPDATE of each row re-ran its three foreign-key checks: 5-6 ms of a
# batch of 130 awards). The claim-first order is not needed here: the caller holds the members'
# points rows, and every other grant of a pair the batch can find due holds them too (a change
# locks its balance before its check; "check now" locks as the sweep does), so nobody else
# claims these pairs meanwhile. If a pair is held anyway (its key taken, or its row there), the
# savepoint is rolled back and the batch granted one by one, as for a replayed key.
# The arrays go as binary parameters (%b): psycopg's text form of a list quotes element by
# element, about 10 ms of the client's CPU per batch of 1,000 members (3-10x the binary form).
class _KeyTaken(Exception):
    pass


def _award_fingerprint(user_id: int, amount: int) -> str:
    # ledger.award's fingerprint of an achievement bonus, so a later replay of the key matches.
    return _fingerprint(op="achievement", user=user_id, amount=amount)


def _arrays(rows: list[tuple], width: int) -> list[list]:
    return [[r[i] for r in rows] for i in range(width)]


def grant_many(
    conn: psycopg.Connection,
    due: list[tuple[int, int, int, str, int]],
    *,
    policies: dict[int, tuple[GuildPolicy, str]],
    settings: Settings,
) -> list[Granted]:
    """Give each (guild, user, achievement id, name, bonus) of `due` as `grant` would, in the
    caller's transaction, in a fixed number of statements. The members' points rows must be
    locked by the caller (the sweep locks them in key order first); `policies` holds each
    guild's (policy, name). Pairs already held are skipped, as `grant` returns None for them."""
    if not due:
        return []
    try:
        with conn.transaction():
            return _grant_set(conn, sorted(set(due)), policies)
    except _KeyTaken:
        granted = []
        for guild_id, user_id, achievement_id, name, bonus in sorted(set(due)):
            policy, guild_name = policies[guild_id]
            got = grant(
                conn, guild_id, user_id, achievement_id, name, bonus,
                policy=policy, settings=settings, guild_name=guild_name,
            )  # fmt: skip
            if got is not None:
                granted.append(got)
        return granted


def _grant_set(
    conn: psycopg.Connection,
    due: list[tuple[int, int, int, str, int]],
    policies: dict[int, tuple[GuildPolicy, str]],
) -> list[Granted]:
    balances = {
        (r[0], r[1]): r[2]
        for r in conn.execute(
            "SELECT p.guild_id, p.user_id, p.balance FROM points p "
            "JOIN unnest(%b::bigint[], %b::bigint[]) AS k(g, u) ON p.guild_id = k.g AND p.user_id = k.u",
            _arrays(sorted({(r[0], r[1]) for r in due}), 2),
        ).fetchall()
    }
    # Each bonus as grant clamps it: what still fits in the balance range, in achievement order.
    paid: list[tuple[int, int, int, str, int, int]] = []  # ... bonus paid, balance after
    for guild_id, user_id, achievement_id, name, bonus in due:
        balance = balances.get((guild_id, user_id), 0)
        amount = min(bonus, max(MAX_BALANCE - balance, 0))
        balances[(guild_id, user_id)] = balance + amount
        paid.append((guild_id, user_id, achievement_id, name, amount, balance + amount))
    credits = [p for p in paid if p[4] > 0]
    entry_of: dict[tuple[int, int, int], int] = {}
    if credits:
        keys = [f"achievement:{p[2]}:{p[1]}" for p in credits]
        # Ids in the order grant() one pair after another would give them: (guild, user,
        # achievement), so each member's entries chain their balance_after in id order.
        ops = conn.execute(
            "INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) "
            "SELECT g, k, f, 'achievement' FROM unnest(%b::bigint[], %b::text[], %b::text[]) "
            "WITH ORDINALITY AS x(g, k, f, ord) ORDER BY ord "
            "ON CONFLICT (guild_id, idempotency_key) DO NOTHING RETURNING guild_id, idempotency_key, id",
            ([p[0] for p in credits], keys, [_award_fingerprint(p[1], p[4]) for p in credits]),
        ).fetchall()
        if len(ops) != len(credits):
            raise _KeyTaken
        op_id = {(r[0], r[1]): r[2] for r in ops}
        totals: dict[tuple[int, int], list[int]] = {}
        for p in credits:
            t = totals.setdefault((p[0], p[1]), [0, 0])
            t[0] += p[4]
            t[1] += 1
        member_keys = sorted(totals)
        conn.execute(
            "UPDATE points p SET balance = p.balance + d.amount, updated_at = now() "
            "FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[]) AS d(g, u, amount) "
            "WHERE p.guild_id = d.g AND p.user_id = d.u",
            (*_arrays(member_keys, 2), [totals[k][0] for k in member_keys]),
        )
        entries = conn.execute(
            f"""
            INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, reason,
                                      actor_id, source, silent, actor_name)
            SELECT op, g, u, amount, after, 'achievement', reason, NULL, 'achievement', true, 'achievement'
            FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[], %b::text[])
                 WITH ORDINALITY AS x(op, g, u, amount, after, reason, ord)
            ORDER BY ord
            RETURNING {_ENTRY_COLUMNS}
            """,
            (
                [op_id[(p[0], k)] for p, k in zip(credits, keys, strict=True)],
                [p[0] for p in credits],
                [p[1] for p in credits],
                [p[4] for p in credits],
                [p[5] for p in credits],
                [check_text(f"Achievement: {p[3]}", "The reason") for p in credits],
            ),
        ).fetchall()
        written = sorted((_entry(r) for r in entries), key=lambda e: e.id)
        entry_by_op = {e.operation_id: e.id for e in written}
        for p, k in zip(credits, keys, strict=True):
            entry_of[(p[0], p[1], p[2])] = entry_by_op[op_id[(p[0], k)]]
        # The bonuses are balance changes too: the role thresholds they cross (as grant does).
        for guild_id in sorted({e.guild_id for e in written}):
            role_rewards.after_balance_change(
                conn, policies[guild_id][0], [e for e in written if e.guild_id == guild_id]
            )
        conn.execute(
            "UPDATE user_stats s SET transaction_count = s.transaction_count + d.n, "
            "total_earned = LEAST(s.total_earned, %s::bigint - d.earned) + d.earned, last_transaction_at = now() "
            "FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[]) AS d(g, u, earned, n) "
            "WHERE s.guild_id = d.g AND s.user_id = d.u",
            (
                COUNTER_CEILING,
                *_arrays(member_keys, 2),
                [totals[k][0] for k in member_keys],
                [totals[k][1] for k in member_keys],
            ),
        )
    # The rows, each with its entry (none for a bonus of 0), in key order.
    claimed = {
        (r[0], r[1], r[2])
        for r in conn.execute(
            "INSERT INTO member_achievements (guild_id, user_id, achievement_id, transaction_id) "
            "SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[]) ORDER BY 1, 2, 3 "
            "ON CONFLICT DO NOTHING RETURNING guild_id, user_id, achievement_id",
            (*_arrays(paid, 3), [entry_of.get((p[0], p[1], p[2])) for p in paid]),
        ).fetchall()
    }
    if any(k not in claimed for k in entry_of):
        raise _KeyTaken  # held already, and paid just now: grant one by one, as grant would
    # Held already without a bonus paid here: skipped, as grant returns None for it.
    paid = [p for p in paid if (p[0], p[1], p[2]) in claimed]
    if not paid:
        return []
    # The roles the achievements grant, asked for as grant asks (source 'achievement').
    role_of = dict(
        conn.execute(
            "SELECT id, role_id FROM achievements WHERE id = ANY(%s) AND role_id IS NOT NULL",
            (sorted({p[2] for p in paid}),),
        ).fetchall()
    )
    role_change_of: dict[tuple[int, int, int], int] = {}
    for guild_id, user_id, achievement_id, name, *_ in paid:
        if achievement_id in role_of:
            role_change_of[(guild_id, user_id, achievement_id)] = roles.request_role_change(
                conn, guild_id=guild_id, user_id=user_id, role_id=role_of[achievement_id], action="add",
                source="achievement", source_ref=f"{achievement_id}:{user_id}", reason=f"Achievement: {name}",
            )  # fmt: skip
    dm_of: dict[tuple[int, int, int], int] = {}
    notify = [p for p in paid if policies[p[0]][0].dm_notifications]
    if notify:
        dms = conn.execute(
            """
            INSERT INTO direct_messages (guild_id, user_id, content, reason, dedupe_key)
            SELECT m.guild_id, m.user_id, d.content, 'achievement', d.k
            FROM unnest(%b::bigint[], %b::bigint[], %b::text[], %b::text[]) AS d(g, u, content, k)
            JOIN members m ON m.guild_id = d.g AND m.user_id = d.u
            WHERE m.erased_at IS NULL AND NOT m.dm_opt_out
            ORDER BY d.g, d.u, d.k
            ON CONFLICT (guild_id, dedupe_key) DO NOTHING
            RETURNING guild_id, dedupe_key, id
            """,
            (
                [p[0] for p in notify],
                [p[1] for p in notify],
                [check_content(_dm_text(p[3], p[4], policies[p[0]][1], policies[p[0]][0])) for p in notify],
                [f"achievement:{p[2]}:{p[1]}" for p in notify],
            ),
        ).fetchall()
        by_key = {(r[0], r[1]): r[2] for r in dms}
        for p in notify:
            dm = by_key.get((p[0], f"achievement:{p[2]}:{p[1]}"))
            if dm is not None:
                dm_of[(p[0], p[1], p[2])] = dm
    return [
        Granted(
            p[0], p[1], p[2], p[3], p[4], entry_of.get((p[0], p[1], p[2])), dm_of.get((p[0], p[1], p[2])),
            role_change_of.get((p[0], p[1], p[2])),
        )
        for p in paid
    ]  # fmt: skip
