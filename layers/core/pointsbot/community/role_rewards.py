"""Role rewards without spending: balance thresholds per guild ("reach 1,000 points -> role X",
with a policy for a balance that drops below again: keep the role, or remove it).

`after_balance_change` runs in the transaction of every balance change (points.after_change,
and an achievement's bonus). It costs nothing unless the change crosses a threshold: the
guild's threshold balances ride along in its policy (kept in the guild's settings by the
functions here), so only a crossing reads `role_thresholds`. Each crossing is one role change
(pointsbot.community.roles, source 'threshold', source_ref "<threshold>:<user>:<crossing>"),
and `member_role_thresholds` says whether the member holds it now, so a replayed or repeated
crossing asks once. The member's points row is locked by the change, so two changes of one
member cross one after the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import psycopg

from ..ledger import LedgerEntry
from ..ledger.guilds import GuildPolicy, guild_policy
from ..platform.amounts import MAX_BALANCE
from ..platform.config import Settings
from ..platform.errors import InvalidInput, NotFound
from ..platform.ids import parse_snowflake
from ..platform.keyset import member_key_range
from . import audit, roles

ON_DROP = {"keep": "keep the role", "remove": "remove the role"}
MAX_THRESHOLDS = 50  # per guild


@dataclass(frozen=True)
class RoleThreshold:
    id: int
    guild_id: int
    points: int
    role_id: int
    on_drop: str  # "keep" | "remove"
    active: bool
    created_at: datetime
    holders: int = 0


_COLUMNS = "t.id, t.guild_id, t.points, t.role_id, t.on_drop, t.active, t.created_at"


def list_thresholds(conn: psycopg.Connection, guild_id: int) -> list[RoleThreshold]:
    """The guild's live thresholds, lowest first, with how many members hold each now."""
    rows = conn.execute(
        f"SELECT {_COLUMNS}, (SELECT count(*) FROM member_role_thresholds h "
        "WHERE h.threshold_id = t.id AND h.held) FROM role_thresholds t "
        "WHERE t.guild_id = %s AND t.active ORDER BY t.points, t.id",
        (guild_id,),
    ).fetchall()
    return [RoleThreshold(*r[:-1], holders=r[-1]) for r in rows]


def check_threshold(points: object, role_id: object, on_drop: object) -> tuple[int, int, str]:
    """The form's values, checked: InvalidInput with a plain message for any bad one."""
    if isinstance(points, bool) or not isinstance(points, int):
        raise InvalidInput("The points must be a whole number.")
    if points <= 0:
        raise InvalidInput("The points must be above zero: every member starts at zero.")
    if points > MAX_BALANCE:
        raise InvalidInput(f"The points can be at most {MAX_BALANCE:,}.")
    role = parse_snowflake(role_id, "The role id")
    if on_drop not in ON_DROP:
        raise InvalidInput("When the balance drops below again, the bot can keep the role or remove it.")
    return points, role, str(on_drop)


def _refresh_guild_cache(conn: psycopg.Connection, guild_id: int) -> None:
    """Store the live thresholds' balances in the guild's settings (read with its policy)."""
    conn.execute(
        "UPDATE guilds SET settings = jsonb_set(settings, '{role_thresholds}', (SELECT coalesce("
        "jsonb_agg(DISTINCT points), '[]'::jsonb) FROM role_thresholds WHERE guild_id = %s AND active)), "
        "updated_at = now() WHERE guild_id = %s",
        (guild_id, guild_id),
    )


def create_threshold(
    conn: psycopg.Connection,
    guild_id: int,
    *,
    points: object,
    role_id: object,
    on_drop: object,
    actor_id: int | None,
    actor_name: str,
) -> RoleThreshold:
    """A new threshold (the admin checks first that the bot can grant the role: roles.bot_can_grant).

    Members reach it from their next balance change that crosses it; those above it already get
    it from the achievement sweep (`reconcile_range`, hourly, or the admin site's "check now")."""
    points, role, on_drop = check_threshold(points, role_id, on_drop)
    # One guild's threshold edits take turns (the cache in its settings is rewritten whole).
    conn.execute("SELECT 1 FROM guilds WHERE guild_id = %s FOR UPDATE", (guild_id,))
    live = conn.execute(
        "SELECT count(*) FROM role_thresholds WHERE guild_id = %s AND active", (guild_id,)
    ).fetchone()[0]
    if live >= MAX_THRESHOLDS:
        raise InvalidInput(f"A server can have at most {MAX_THRESHOLDS} role thresholds.")
    row = conn.execute(
        "INSERT INTO role_thresholds (guild_id, points, role_id, on_drop) VALUES (%s, %s, %s, %s) "
        f"ON CONFLICT (guild_id, role_id) WHERE active DO NOTHING RETURNING {_COLUMNS.replace('t.', '')}",
        (guild_id, points, role, on_drop),
    ).fetchone()
    if row is None:
        raise InvalidInput("That role already has a threshold; remove it first to change it.")
    threshold = RoleThreshold(*row)
    _refresh_guild_cache(conn, guild_id)
    audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name,
                 action="role_threshold.create", target=str(threshold.id),
                 after={"points": points, "role_id": str(role), "on_drop": on_drop})  # fmt: skip
    return threshold


def remove_threshold(
    conn: psycopg.Connection, guild_id: int, threshold_id: int, *, actor_id: int | None, actor_name: str
) -> RoleThreshold:
    """Stop a threshold: nobody reaches or leaves it any more; members who hold its role keep it."""
    conn.execute("SELECT 1 FROM guilds WHERE guild_id = %s FOR UPDATE", (guild_id,))
    row = conn.execute(
        f"UPDATE role_thresholds t SET active = FALSE, updated_at = now() "
        f"WHERE t.guild_id = %s AND t.id = %s AND t.active RETURNING {_COLUMNS}",
        (guild_id, threshold_id),
    ).fetchone()
    if row is None:
        raise NotFound("There is no such role threshold (it may have been removed already).")
    threshold = RoleThreshold(*row)
    _refresh_guild_cache(conn, guild_id)
    audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name,
                 action="role_threshold.remove", target=str(threshold_id),
                 before={"points": threshold.points, "role_id": str(threshold.role_id),
                         "on_drop": threshold.on_drop})  # fmt: skip
    return threshold


# -- crossing -----------------------------------------------------------------------------------
def after_balance_change(
    conn: psycopg.Connection, policy: GuildPolicy, entries: Iterable[LedgerEntry]
) -> int:
    """Ask for the role changes the entries' balance changes make due; returns how many.

    In the caller's transaction, after the ledger wrote the entries (the members' points rows
    are locked). No query unless an entry's change crosses one of `policy.role_thresholds`.
    """
    if not policy.role_thresholds:
        return 0
    asked = 0
    for entry in entries:
        before, after = entry.balance_after - entry.amount, entry.balance_after
        low, high = min(before, after), max(before, after)
        if before == after or not any(low < p <= high for p in policy.role_thresholds):
            continue
        crossed = conn.execute(
            "SELECT id, points, role_id, on_drop FROM role_thresholds "
            "WHERE guild_id = %s AND active AND points > %s AND points <= %s ORDER BY points, id",
            (entry.guild_id, low, high),
        ).fetchall()
        for threshold_id, points, role_id, on_drop in crossed:
            if after > before:
                asked += _reach(conn, entry.guild_id, entry.user_id, threshold_id, points, role_id, policy)
            elif on_drop == "remove":
                asked += _leave(conn, entry.guild_id, entry.user_id, threshold_id, points, role_id, policy)
    return asked


# Members of a key range whose threshold state disagrees with their balance: above a threshold
# they do not hold (never crossed since it was made, or a change that bypassed the check), or
# below a 'remove' threshold they hold. {range}: the keys (platform.keyset).
_OUT_OF_STEP = """
SELECT p.guild_id, p.user_id, t.id, t.points, t.role_id, p.balance >= t.points
FROM points p
JOIN role_thresholds t ON t.guild_id = p.guild_id AND t.active
LEFT JOIN member_role_thresholds h
       ON h.guild_id = p.guild_id AND h.user_id = p.user_id AND h.threshold_id = t.id
WHERE {range}
  AND ((p.balance >= t.points AND NOT coalesce(h.held, FALSE))
       OR (t.on_drop = 'remove' AND h.held AND p.balance < t.points))
ORDER BY p.guild_id, p.user_id, t.points, t.id
FOR UPDATE OF p
"""


def reconcile_range(
    conn: psycopg.Connection, after: tuple[int, int], upto: tuple[int, int], settings: Settings
) -> int:
    """Bring the members of keys (after, upto] in step with the guild's thresholds: a threshold
    made after they passed it, or a balance changed without `after_balance_change`. The
    achievement sweep calls this for each of its batches; returns the role changes asked for.
    The members' points rows are locked (key order) first, as a change would."""
    where, params = member_key_range("p", after, upto)
    rows = conn.execute(_OUT_OF_STEP.format(range=where), params).fetchall()
    asked = 0
    policies: dict[int, GuildPolicy] = {}
    for guild_id, user_id, threshold_id, points, role_id, above in rows:
        if guild_id not in policies:
            policies[guild_id] = guild_policy(conn, settings, guild_id)
        step = _reach if above else _leave
        asked += step(conn, guild_id, user_id, threshold_id, points, role_id, policies[guild_id])
    return asked


def _reach(
    conn, guild_id: int, user_id: int, threshold_id: int, points: int, role_id: int, policy: GuildPolicy
) -> int:
    row = conn.execute(
        "INSERT INTO member_role_thresholds (guild_id, user_id, threshold_id, held, crossings) "
        "VALUES (%s, %s, %s, TRUE, 1) ON CONFLICT (guild_id, user_id, threshold_id) DO UPDATE "
        "SET held = TRUE, crossings = member_role_thresholds.crossings + 1, updated_at = now() "
        "WHERE NOT member_role_thresholds.held RETURNING crossings",
        (guild_id, user_id, threshold_id),
    ).fetchone()
    if row is None:
        return 0  # holds it already (kept from before)
    roles.request_role_change(
        conn, guild_id=guild_id, user_id=user_id, role_id=role_id, action="add", source="threshold",
        source_ref=f"{threshold_id}:{user_id}:{row[0]}", reason=f"Reached {policy.points(points)}",
    )  # fmt: skip
    return 1


def _leave(
    conn, guild_id: int, user_id: int, threshold_id: int, points: int, role_id: int, policy: GuildPolicy
) -> int:
    row = conn.execute(
        "UPDATE member_role_thresholds SET held = FALSE, updated_at = now() "
        "WHERE guild_id = %s AND user_id = %s AND threshold_id = %s AND held RETURNING crossings",
        (guild_id, user_id, threshold_id),
    ).fetchone()
    if row is None:
        return 0
    source_ref = f"{threshold_id}:{user_id}:{row[0]}"
    if roles.other_live_grant(conn, guild_id, user_id, role_id, source="threshold", source_ref=source_ref):
        return 0  # bought or won as well: leaving the threshold takes nothing away
    roles.request_role_change(
        conn, guild_id=guild_id, user_id=user_id, role_id=role_id, action="remove",
        source="threshold", source_ref=source_ref, reason=f"Balance fell below {policy.points(points)}",
    )  # fmt: skip
    return 1
