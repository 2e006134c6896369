"""What an admin does about seasons on the admin site that community.seasons does not audit
itself: the guild's time zone (weeks, months and season dates), audited in the same
transaction. Starting, ending, renaming and reverting a reset are community.seasons' own
functions, which audit themselves."""

from __future__ import annotations

import psycopg

from ..community import audit, windows
from .sessions import Identity


def set_time_zone(conn: psycopg.Connection, identity: Identity, guild_id: int, name: object) -> str:
    """The guild's time zone, checked first (an unknown zone is InvalidInput, nothing written);
    an audit line when it changed."""
    before = windows.counting_rules(conn, guild_id).time_zone
    zone = windows.set_time_zone(conn, guild_id, name if isinstance(name, str) else "")
    if zone != before:
        audit.record(conn, guild_id=guild_id, actor_id=identity.user_id, actor_name=identity.actor_name,
                     action="season.time_zone", target="guild", before={"time_zone": before},
                     after={"time_zone": zone})  # fmt: skip
    return zone
