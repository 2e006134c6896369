"""What an admin does about role rewards on the admin site, each audited in the same
transaction: balance thresholds (community/role_rewards) and the refused role changes flag
(community/roles). Whether the bot can grant a role is asked of Discord first, by the site."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from ..community import audit, role_rewards, roles
from .sessions import Identity


@dataclass(frozen=True)
class RolesOverview:
    thresholds: list[role_rewards.RoleThreshold]
    refused: list[roles.RoleChange]  # refused or failed, not acknowledged yet
    refused_count: int


def overview(conn: psycopg.Connection, guild_id: int) -> RolesOverview:
    return RolesOverview(
        role_rewards.list_thresholds(conn, guild_id),
        roles.unseen_refusals(conn, guild_id, limit=100),
        roles.unseen_refusal_count(conn, guild_id),
    )


def create_threshold(conn: psycopg.Connection, identity: Identity, guild_id: int, *, points: object,
                     role_id: object, on_drop: object) -> role_rewards.RoleThreshold:  # fmt: skip
    return role_rewards.create_threshold(conn, guild_id, points=points, role_id=role_id, on_drop=on_drop,
                                         actor_id=identity.user_id, actor_name=identity.actor_name)  # fmt: skip


def remove_threshold(
    conn: psycopg.Connection, identity: Identity, guild_id: int, threshold_id: int
) -> role_rewards.RoleThreshold:
    return role_rewards.remove_threshold(conn, guild_id, threshold_id, actor_id=identity.user_id,
                                         actor_name=identity.actor_name)  # fmt: skip


def acknowledge_change(conn: psycopg.Connection, identity: Identity, guild_id: int, change_id: int) -> bool:
    """The refused change leaves the flag; False when it was not on it (seen already, or none)."""
    if not roles.acknowledge(conn, guild_id, change_id, identity.user_id):
        return False
    audit.record(conn, guild_id=guild_id, actor_id=identity.user_id, actor_name=identity.actor_name,
                 action="role_change.acknowledge", target=f"role_change:{change_id}")  # fmt: skip
    return True
