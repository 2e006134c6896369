"""What an admin does on the admin site, each with its audit-log line in the same transaction.

The site's routes call these; the rules themselves live in the modules named (members, emails,
achievements, outbox, guilds). Points changes are in `bulk` (single and bulk).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

from ..community import achievements, audit, emails, members, windows
from ..delivery import outbox
from ..ledger import guilds
from ..platform.config import Settings
from ..platform.errors import DomainError, InvalidInput
from . import monitor, sessions
from .sessions import Identity


def _record(conn: psycopg.Connection, identity: Identity, guild_id: int, action: str, target: str,
            before: Any = None, after: Any = None) -> None:  # fmt: skip
    audit.record(conn, guild_id=guild_id, actor_id=identity.user_id, actor_name=identity.actor_name,
                 action=action, target=target, before=before, after=after)  # fmt: skip


def create_member(
    conn: psycopg.Connection, identity: Identity, guild_id: int, user_id: int, display_name: str | None
) -> members.Member:
    member = members.create(conn, guild_id, user_id, display_name)
    _record(conn, identity, guild_id, "member.create", f"member:{user_id}", after=member.editable())
    return member


def edit_member(
    conn: psycopg.Connection, identity: Identity, guild_id: int, user_id: int, changes: dict[str, Any]
) -> bool:
    """Save a profile form; True when something changed (only then is it audited)."""
    before, after = members.update_profile(conn, guild_id, user_id, changes)
    if before == after:
        return False
    _record(conn, identity, guild_id, "member.edit", f"member:{user_id}", before, after)
    return True


def export_member(
    conn: psycopg.Connection, identity: Identity, guild_id: int, user_id: int
) -> dict[str, Any]:
    data = members.export(conn, guild_id, user_id)
    # Reading someone's whole record is worth a line in the audit log too.
    _record(conn, identity, guild_id, "member.export", f"member:{user_id}")
    return data


def erase_member(
    conn: psycopg.Connection, identity: Identity, guild_id: int, user_id: int, confirm: str
) -> None:
    if confirm.strip() != str(user_id):
        raise InvalidInput("Type the member's Discord id to confirm the erasure.")
    removed = members.erase(conn, guild_id, user_id)
    # The audit line says what kinds of data went, never the data itself.
    _record(conn, identity, guild_id, "member.erase", f"member:{user_id}", after=removed)


def review_email(
    conn: psycopg.Connection,
    identity: Identity,
    guild_id: int,
    submission_id: int,
    *,
    approve: bool,
    note: str,
    bonus_points: int,
    form_token: str,
    settings: Settings,
) -> emails.ReviewResult:
    """Approve (with an optional bonus) or reject; the member gets a DM either way."""
    if not form_token:
        raise InvalidInput("This form is missing its token; reload the page and submit again.")
    key = f"admin:{form_token}"
    before = emails.get(conn, guild_id, submission_id)
    if approve:
        result = emails.approve(conn, guild_id=guild_id, submission_id=submission_id, reviewer_id=identity.user_id,
                                note=note, bonus_points=bonus_points, idempotency_key=key, source="admin_site",
                                settings=settings, reviewer_name=identity.actor_name)  # fmt: skip
    else:
        result = emails.reject(conn, guild_id=guild_id, submission_id=submission_id, reviewer_id=identity.user_id,
                               note=note, idempotency_key=key)  # fmt: skip
    if not result.replayed:
        _record(conn, identity, guild_id, "email.approve" if approve else "email.reject",
                f"submission:{submission_id}", {"status": before.status if before else None},
                {"status": result.submission.status, "note": note, "bonus_entry_id": result.bonus_entry_id})  # fmt: skip
    return result


def create_achievement(
    conn: psycopg.Connection, identity: Identity, guild_id: int, fields: dict[str, Any]
) -> achievements.AchievementDefinition:
    definition = achievements.create_definition(conn, guild_id, **fields)
    _record(conn, identity, guild_id, "achievement.create", f"achievement:{definition.id}", after=fields)
    return definition


def edit_achievement(
    conn: psycopg.Connection, identity: Identity, guild_id: int, achievement_id: int, changes: dict[str, Any]
) -> achievements.AchievementDefinition:
    before = achievements.get_definition(conn, guild_id, achievement_id)
    after = achievements.update_definition(conn, guild_id, achievement_id, **changes)
    _record(conn, identity, guild_id, "achievement.edit", f"achievement:{achievement_id}",
            {k: getattr(before, k) for k in changes}, {k: getattr(after, k) for k in changes})  # fmt: skip
    return after


def send_dms(
    conn: psycopg.Connection,
    identity: Identity,
    guild_id: int,
    recipients: list[int],
    content: str,
    form_token: str,
) -> int:
    """Queue one admin DM per recipient; the same form again queues nothing new."""
    if not recipients:
        raise InvalidInput("There is nobody to send this to.")
    if not form_token:
        raise InvalidInput("This form is missing its token; reload the page and submit again.")
    queued = 0
    for user_id in recipients:
        dm_id = outbox.enqueue_dm(conn, guild_id=guild_id, user_id=user_id, content=content, reason="admin",
                                  dedupe_key=f"admin:{form_token}:{user_id}", created_by=identity.user_id)  # fmt: skip
        queued += dm_id is not None
    if queued:
        _record(conn, identity, guild_id, "dm.send", f"members:{len(recipients)}",
                after={"queued": queued, "content": content[:200]})  # fmt: skip
    return queued


def retry_dms(conn: psycopg.Connection, identity: Identity, guild_id: int, dm_ids: list[int] | None) -> int:
    requeued = monitor.retry_failed_dms(conn, guild_id, dm_ids, created_by=identity.user_id)
    if requeued:
        _record(conn, identity, guild_id, "dm.retry", "failed", after={"requeued": requeued})
    return requeued


# The guild's settings kept by the windowed boards (pointsbot.community.windows), saved with the rest.
WINDOW_SETTINGS = ("time_zone", "window_excluded_sources", "window_excluded_kinds")


def guild_settings_problems(conn: psycopg.Connection, changes: dict[str, Any]) -> dict[str, str]:
    """Each setting of a settings form checked on its own: {setting: why it is refused}, in words."""
    problems: dict[str, str] = {}
    for key, value in changes.items():
        try:
            if key == "time_zone":
                windows.check_time_zone(conn, value)
            elif key == "window_excluded_sources":
                windows.check_counting(excluded_sources=value)
            elif key == "window_excluded_kinds":
                windows.check_counting(excluded_kinds=value)
            else:
                guilds.validate_overrides({key: value})
        except DomainError as exc:
            problems[key] = exc.message
    return problems


def save_guild_settings(
    conn: psycopg.Connection, identity: Identity, guild_id: int, changes: dict[str, Any]
) -> bool:
    """Store a settings form (checked first: a refused value stores nothing); True when something
    changed, and only then is it audited, with the settings that changed before and after."""
    before = dict(guilds.ensure_guild(conn, guild_id))
    guilds.update_guild_settings(
        conn, guild_id, {k: v for k, v in changes.items() if k not in WINDOW_SETTINGS}
    )
    if "time_zone" in changes:
        windows.set_time_zone(conn, guild_id, changes["time_zone"])
    if "window_excluded_sources" in changes or "window_excluded_kinds" in changes:
        windows.set_counting(conn, guild_id, excluded_sources=changes.get("window_excluded_sources"),
                             excluded_kinds=changes.get("window_excluded_kinds"))  # fmt: skip
    after = guilds.ensure_guild(conn, guild_id)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if not changed:
        return False
    _record(conn, identity, guild_id, "guild.settings", f"guild:{guild_id}",
            {k: before.get(k) for k in changed}, {k: after.get(k) for k in changed})  # fmt: skip
    return True


def run_achievement_check(
    conn: psycopg.Connection, identity: Identity, guild_id: int, token: str, settings: Any = None
) -> tuple[Any, list[Any]]:
    """The admin's confirmed "check now": what the preview showed (achievements.run_guild_check
    refuses otherwise), granted and audited in one transaction."""
    preview, granted = achievements.run_guild_check(conn, guild_id, token, settings)
    _record(conn, identity, guild_id, "achievement.check_now", "sweep",
            after={"awards": len(granted), "members": preview.members,
                   "points": sum(g.bonus_points for g in granted)})  # fmt: skip
    return preview, granted


def record_check_run(conn: psycopg.Connection, identity: Identity, guild_id: int, report: Any) -> None:
    _record(conn, identity, guild_id, "achievement.check_now", "sweep",
            after={"members_checked": report.members_checked, "awards": report.awards,
                   "finished": report.finished})  # fmt: skip


def start_session(
    conn: psycopg.Connection,
    previous_token: str | None,
    identity: Identity,
    max_age: timedelta,
    discord_token: str | None = None,
) -> sessions.Session:
    """Sign-in: a new session (the anonymous one ends), a welcome line, an audit line."""
    session = sessions.sign_in(conn, previous_token, identity, max_age=max_age, discord_token=discord_token)
    sessions.add_flash(conn, session, "ok", f"Signed in as {identity.name}.")
    audit.record(conn, guild_id=None, actor_id=identity.user_id, actor_name=identity.actor_name,
                 action="session.sign_in", target=identity.kind, after={"guilds": len(identity.guild_ids)})  # fmt: skip
    return session
