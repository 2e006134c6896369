"""Earning an achievement: `grant` (the row, the bonus, the DM, in the caller's transaction) and
`check_member`, the check right after a member's balance changed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from .. import ledger
from ..delivery import outbox
from ..ledger.guilds import GuildPolicy, guild_policy
from ..platform.amounts import MAX_BALANCE
from ..platform.config import Settings, get_settings
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
    where = f" in **{guild_name}**" if guild_name else ""
    text = f"\N{TROPHY} You earned the achievement **{name}**{where}!"
    if bonus:
        text += f" Bonus: **{policy.points(bonus)}**."
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
