"""Admin commands: /points add|remove|set|revert, /emails pending|approve|reject, /member info.

Rights were checked by dispatch before any of these runs; each change also writes an
admin_audit row in the same transaction.
"""

from __future__ import annotations

import psycopg

from .. import ledger
from ..community import audit, emails, points
from ..discord.interactions import Reply
from ..platform.errors import InvalidInput
from ..platform.wording import count
from .context import Context, command
from .member import mention, only_pages

PENDING_PAGE_SIZE = 10


def _required_member(ctx: Context) -> int:
    target = ctx.member()
    if target is None:
        raise InvalidInput("Say which member.")
    if ctx.is_bot(target):
        raise InvalidInput("Bots cannot hold points.")
    return target


def _audit(ctx: Context, conn: psycopg.Connection, action: str, target: str, after: dict) -> None:
    audit.record(conn, guild_id=ctx.guild_id, actor_id=ctx.user_id, actor_name=ctx.actor_name,
                 action=action, target=target, after={**after, "via": "slash", "interaction": ctx.interaction.id})  # fmt: skip


def _change(ctx: Context, conn: psycopg.Connection, operation: str) -> Reply:
    target = _required_member(ctx)
    amount = ctx.integer("amount")
    if amount is None:
        raise InvalidInput("Say how many.")
    silent = ctx.flag("silent")
    ctx.remember_option_member(conn, target)
    common = dict(
        guild_id=ctx.guild_id, user_id=target, reason=ctx.text("reason"), actor_id=ctx.user_id,
        actor_name=ctx.actor_name, source="slash",
        idempotency_key=ctx.idempotency_key, silent=silent, settings=ctx.settings,
    )  # fmt: skip
    if operation == "add":
        result = points.award(conn, amount=amount, **common)
        done = f"Added {ctx.points(amount)} to {mention(target)}"
    elif operation == "remove":
        result = points.deduct(conn, amount=amount, **common)
        done = f"Took {ctx.points(amount)} from {mention(target)}"
    else:
        result = points.set_balance(conn, target=amount, **common)
        if not result.changed:
            # Nothing was written, so nothing is audited; a replay of the interaction finds the
            # operation's record without entries and answers this again.
            return Reply(
                f"{mention(target)} already has {ctx.points(amount)} - nothing to change.", ephemeral=True
            )
        done = (
            f"Set the balance of {mention(target)} to {ctx.points(amount)} (change {result.entry.amount:+,})"
        )
    entry = result.entry
    _audit(ctx, conn, f"points.{operation}", f"member:{target}",
           {"amount": amount, "entry": entry.id, "balance": entry.balance_after, "silent": silent})  # fmt: skip
    note = " Silent: no DM." if silent else ""
    return Reply(
        f"{done} (entry #{entry.id}). Balance now {ctx.points(entry.balance_after)}.{note}", ephemeral=True
    )


@command("points add", writes=True)
def points_add(ctx: Context, conn: psycopg.Connection) -> Reply:
    return _change(ctx, conn, "add")


@command("points remove", writes=True)
def points_remove(ctx: Context, conn: psycopg.Connection) -> Reply:
    return _change(ctx, conn, "remove")


@command("points set", writes=True)
def points_set(ctx: Context, conn: psycopg.Connection) -> Reply:
    return _change(ctx, conn, "set")


@command("points revert", writes=True)
def points_revert(ctx: Context, conn: psycopg.Connection) -> Reply:
    entry_id = ctx.integer("entry")
    if entry_id is None or entry_id < 1:
        raise InvalidInput("Say which entry (its # number).")
    reason = ctx.text("reason").strip() or f"Revert of entry #{entry_id}"
    result = points.revert(
        conn, guild_id=ctx.guild_id, entry_id=entry_id, reason=reason, actor_id=ctx.user_id,
        actor_name=ctx.actor_name, source="slash",
        idempotency_key=ctx.idempotency_key, silent=ctx.flag("silent"), settings=ctx.settings,
    )  # fmt: skip
    _audit(ctx, conn, "points.revert", f"entry:{entry_id}", {"entries": [e.id for e in result.entries]})
    lines = [f"Reverted entry #{entry_id}:"]
    for entry in result.entries:
        lines.append(f"- {mention(entry.user_id)} {entry.amount:+,} (entry #{entry.id}), balance now "
                     f"{ctx.points(entry.balance_after)}")  # fmt: skip
    return Reply("\n".join(lines), ephemeral=True)


@command("emails pending")
def emails_pending(ctx: Context, conn: psycopg.Connection) -> Reply:
    page = ctx.page()
    result = emails.pending(conn, ctx.guild_id, page, PENDING_PAGE_SIZE)
    if not result.submissions:
        if result.total:
            return Reply(only_pages(result.pages, "of pending submissions"), ephemeral=True)
        return Reply("No email submissions are waiting for review.", ephemeral=True)
    lines = [f"**Pending email submissions** ({result.total:,}; page {result.page} of {result.pages})"]
    for item in result.submissions:
        lines.append(
            f"`#{item.id}` {mention(item.user_id)} {item.email} (<t:{int(item.submitted_at.timestamp())}:R>)"
        )
    lines.append("Use /emails approve or /emails reject with the member.")
    return Reply("\n".join(lines), ephemeral=True)


@command("emails approve", writes=True)
def emails_approve(ctx: Context, conn: psycopg.Connection) -> Reply:
    target = _required_member(ctx)
    bonus = ctx.integer("bonus", 0) or 0
    result = emails.approve(
        conn, guild_id=ctx.guild_id, user_id=target, reviewer_id=ctx.user_id, note=ctx.text("note"),
        bonus_points=bonus, source="slash", settings=ctx.settings, reviewer_name=ctx.actor_name,
    )  # fmt: skip
    done = result.submission
    _audit(ctx, conn, "email.approve", f"member:{target}",
           {"submission": done.id, "email": done.email, "bonus": bonus, "entry": result.bonus_entry_id})  # fmt: skip
    extra = f" with a bonus of {ctx.points(bonus)} (entry #{result.bonus_entry_id})" if bonus else ""
    return Reply(f"Approved {done.email} for {mention(target)}{extra}. They will get a DM.", ephemeral=True)


@command("emails reject", writes=True)
def emails_reject(ctx: Context, conn: psycopg.Connection) -> Reply:
    target = _required_member(ctx)
    result = emails.reject(
        conn, guild_id=ctx.guild_id, user_id=target, reviewer_id=ctx.user_id, note=ctx.text("note")
    )
    done = result.submission
    _audit(ctx, conn, "email.reject", f"member:{target}", {"submission": done.id, "email": done.email})
    return Reply(f"Rejected {done.email} for {mention(target)}. They will get a DM.", ephemeral=True)


@command("member info")
def member_info(ctx: Context, conn: psycopg.Connection) -> Reply:
    target = _required_member(ctx)
    profile = conn.execute(
        "SELECT username, display_name, email, dm_opt_out, joined_at, erased_at FROM members "
        "WHERE guild_id = %s AND user_id = %s",
        (ctx.guild_id, target),
    ).fetchone()
    if profile is None:
        return Reply(f"{mention(target)} has no points record in this server yet.", ephemeral=True)
    username, display_name, email, opted_out, joined_at, erased_at = profile
    if erased_at is not None:
        return Reply(f"The profile of {mention(target)} was erased.", ephemeral=True)
    stats = conn.execute(
        "SELECT transaction_count, total_earned, total_spent FROM user_stats WHERE guild_id = %s AND user_id = %s",
        (ctx.guild_id, target),
    ).fetchone() or (0, 0, 0)
    place = ledger.rank_of(conn, ctx.guild_id, target)
    waiting = emails.pending_for(conn, ctx.guild_id, target)
    recent = ledger.history_page(conn, ctx.guild_id, target, 1, 5)
    lines = [
        f"**{display_name or username or target}** ({mention(target)}, id {target})",
        f"Balance {ctx.points(place.balance)}, rank #{place.rank:,} of {max(place.total_members, 1):,}",
        f"{count(stats[0], 'entry', 'entries')}; earned {stats[1]:,}, spent {stats[2]:,}",
        f"Email: {email or 'none'}" + (f" (pending: {waiting.email})" if waiting else ""),
        f"DMs: {'opted out' if opted_out else 'on'}; first seen <t:{int(joined_at.timestamp())}:d>",
    ]
    if recent.entries:
        lines.append("Latest entries:")
        for entry in recent.entries:
            reason = f" - {entry.reason}" if entry.reason else ""
            lines.append(f"`#{entry.id}` {entry.amount:+,} {entry.kind}{reason}")
    return Reply("\n".join(lines), ephemeral=True)
