"""Admin commands: /points add|remove|set|revert, /emails pending|approve|reject, /member info.

Rights were checked by dispatch before any of these runs; each change also writes an
admin_audit row in the same transaction.
"""

from __future__ import annotations

import psycopg

from .. import ledger
from ..community import emails, points
from ..discord.interactions import Reply
from ..platform.errors import InvalidInput
from .context import Context, command
from .member import mention, only_pages

PENDING_PAGE_SIZE = 10


def _required_member(ctx: Context) -> int:
    target = ctx.member()
    if target is None:
        raise InvalidInput(ctx.tr._("Say which member."))
    if ctx.is_bot(target):
        raise InvalidInput(ctx.tr._("Bots cannot hold points."))
    return target


def _confirmation(ctx: Context, title: str, target: int | None, *lines: str) -> Reply:
    """An admin's confirmation card (private, as every admin answer)."""
    card = ctx.card().header(f"### {title}", *lines[:2], avatar=ctx.avatar(target) if target else None)
    for line in lines[2:]:
        card.text(line)
    return ctx.answer(card)


def _audit(ctx: Context, conn: psycopg.Connection, action: str, target: str, after: dict) -> None:
    ctx.audit_later(action, target, after)  # written with the stored answer, same transaction


def _change(ctx: Context, conn: psycopg.Connection, operation: str) -> Reply:
    target = _required_member(ctx)
    amount = ctx.integer("amount")
    if amount is None:
        raise InvalidInput(ctx.tr._("Say how many."))
    silent = ctx.flag("silent")
    common = dict(
        guild_id=ctx.guild_id, user_id=target, reason=ctx.text("reason"), actor_id=ctx.user_id,
        actor_name=ctx.actor_name, source="slash",
        idempotency_key=ctx.idempotency_key, silent=silent, settings=ctx.settings,
    )  # fmt: skip
    tr = ctx.tr
    values = dict(amount=ctx.points(amount), who=mention(target))
    if operation == "add":
        result = points.award(conn, amount=amount, **common)
        done, title = tr._("Added {amount} to {who}", **values), "📈 " + tr._("Points added")
    elif operation == "remove":
        result = points.deduct(conn, amount=amount, **common)
        done, title = tr._("Took {amount} from {who}", **values), "📉 " + tr._("Points taken")
    else:
        result = points.set_balance(conn, target=amount, **common)
        if not result.changed:
            # Nothing was written, so nothing is audited; a replay of the interaction finds the
            # operation's record without entries and answers this again.
            return Reply(tr._("{who} already has {amount} - nothing to change.", **values), ephemeral=True)
        done = tr._("Set the balance of {who} to {amount} (change {change})", change=tr.signed(result.entry.amount),
                    **values)  # fmt: skip
        title = "🟰 " + tr._("Balance set")
    entry = result.entry
    _audit(ctx, conn, f"points.{operation}", f"member:{target}",
           {"amount": amount, "entry": entry.id, "balance": entry.balance_after, "silent": silent})  # fmt: skip
    line = tr._("{done} (entry #{entry}). Balance now {balance}.", done=done, entry=entry.id,
                balance=ctx.points(entry.balance_after))  # fmt: skip
    if silent:
        line += " " + tr._("Silent: no DM.")
    reason = ctx.text("reason").strip()
    return _confirmation(ctx, title, target, line, ("> " + reason) if reason else "")


@command("points add", writes=True, remembers="member")
def points_add(ctx: Context, conn: psycopg.Connection) -> Reply:
    return _change(ctx, conn, "add")


@command("points remove", writes=True, remembers="member")
def points_remove(ctx: Context, conn: psycopg.Connection) -> Reply:
    return _change(ctx, conn, "remove")


@command("points set", writes=True, remembers="member")
def points_set(ctx: Context, conn: psycopg.Connection) -> Reply:
    return _change(ctx, conn, "set")


@command("points revert", writes=True)
def points_revert(ctx: Context, conn: psycopg.Connection) -> Reply:
    entry_id = ctx.integer("entry")
    if entry_id is None or entry_id < 1:
        raise InvalidInput(ctx.tr._("Say which entry (its # number)."))
    reason = ctx.text("reason").strip() or f"Revert of entry #{entry_id}"
    result = points.revert(
        conn, guild_id=ctx.guild_id, entry_id=entry_id, reason=reason, actor_id=ctx.user_id,
        actor_name=ctx.actor_name, source="slash",
        idempotency_key=ctx.idempotency_key, silent=ctx.flag("silent"), settings=ctx.settings,
    )  # fmt: skip
    _audit(ctx, conn, "points.revert", f"entry:{entry_id}", {"entries": [e.id for e in result.entries]})
    tr = ctx.tr
    lines = [tr._("Reverted entry #{entry}:", entry=entry_id)]
    for entry in result.entries:
        lines.append("- " + tr._("{who} {change} (entry #{entry}), balance now {balance}", who=mention(entry.user_id),
                                 change=tr.signed(entry.amount), entry=entry.id,
                                 balance=ctx.points(entry.balance_after)))  # fmt: skip
    return _confirmation(ctx, "↩️ " + tr._("Reverted"), None, lines[0], "\n".join(lines[1:]))


@command("emails pending")
def emails_pending(ctx: Context, conn: psycopg.Connection) -> Reply:
    page = ctx.page()
    tr = ctx.tr
    result = emails.pending(conn, ctx.guild_id, page, PENDING_PAGE_SIZE)
    if not result.submissions:
        if result.total:
            return Reply(only_pages(tr, result.pages, "pending"), ephemeral=True)
        return Reply(tr._("No email submissions are waiting for review."), ephemeral=True)
    heading = tr._("**Pending email submissions** ({total}; page {page} of {pages})", total=tr.number(result.total),
                   page=tr.number(result.page), pages=tr.number(result.pages))  # fmt: skip
    lines = [
        f"`#{item.id}` {mention(item.user_id)} {item.email} (<t:{int(item.submitted_at.timestamp())}:R>)"
        for item in result.submissions
    ]
    card = ctx.card().header("### ✉️ " + tr._("Email review"), heading).separator().text("\n".join(lines))
    card.separator(divider=False).text("-# " + tr._("Use /emails approve or /emails reject with the member."))
    return ctx.answer(card)


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
    tr = ctx.tr
    if bonus:
        line = tr._("Approved {email} for {who} with a bonus of {amount} (entry #{entry}). They will get a DM.",
                    email=done.email, who=mention(target), amount=ctx.points(bonus), entry=result.bonus_entry_id)  # fmt: skip
    else:
        line = tr._("Approved {email} for {who}. They will get a DM.", email=done.email, who=mention(target))
    return _confirmation(ctx, "✅ " + tr._("Email approved"), target, line)


@command("emails reject", writes=True)
def emails_reject(ctx: Context, conn: psycopg.Connection) -> Reply:
    target = _required_member(ctx)
    result = emails.reject(
        conn, guild_id=ctx.guild_id, user_id=target, reviewer_id=ctx.user_id, note=ctx.text("note")
    )
    done = result.submission
    _audit(ctx, conn, "email.reject", f"member:{target}", {"submission": done.id, "email": done.email})
    tr = ctx.tr
    line = tr._("Rejected {email} for {who}. They will get a DM.", email=done.email, who=mention(target))
    return _confirmation(ctx, "❌ " + tr._("Email rejected"), target, line)


@command("member info")
def member_info(ctx: Context, conn: psycopg.Connection) -> Reply:
    target = _required_member(ctx)
    profile = conn.execute(
        "SELECT username, display_name, email, dm_opt_out, joined_at, erased_at FROM members "
        "WHERE guild_id = %s AND user_id = %s",
        (ctx.guild_id, target),
    ).fetchone()
    tr = ctx.tr
    if profile is None:
        return Reply(
            tr._("{who} has no points record in this server yet.", who=mention(target)), ephemeral=True
        )
    username, display_name, email, opted_out, joined_at, erased_at = profile
    if erased_at is not None:
        return Reply(tr._("The profile of {who} was erased.", who=mention(target)), ephemeral=True)
    stats = conn.execute(
        "SELECT transaction_count, total_earned, total_spent FROM user_stats WHERE guild_id = %s AND user_id = %s",
        (ctx.guild_id, target),
    ).fetchone() or (0, 0, 0)
    place = ledger.rank_of(conn, ctx.guild_id, target)
    waiting = emails.pending_for(conn, ctx.guild_id, target)
    recent = ledger.history_page(conn, ctx.guild_id, target, 1, 5)
    n = tr.number
    lines = [
        f"**{display_name or username or target}** ({mention(target)}, id {target})",
        tr._("Balance {amount}, rank #{rank} of {total}", amount=ctx.points(place.balance), rank=n(place.rank),
             total=n(max(place.total_members, 1))),
        tr.ngettext("{n} entry", "{n} entries", stats[0]) + "; "
        + tr._("earned {earned}, spent {spent}", earned=n(stats[1]), spent=n(stats[2])),
        tr._("Email: {email}", email=email or tr._("none"))
        + (" " + tr._("(pending: {email})", email=waiting.email) if waiting else ""),
        (tr._("DMs: opted out") if opted_out else tr._("DMs: on")) + "; "
        + tr._("first seen {when}", when=f"<t:{int(joined_at.timestamp())}:d>"),
    ]  # fmt: skip
    card = ctx.card().header("### 🔎 " + tr._("Member"), lines[0], lines[1], avatar=ctx.avatar(target))
    card.text("\n".join(lines[2:]))
    if recent.entries:
        entries = [tr._("Latest entries:")]
        for entry in recent.entries:
            reason = f" - {entry.reason}" if entry.reason else ""
            entries.append(f"`#{entry.id}` {tr.signed(entry.amount)} {entry.kind}{reason}")
        card.separator().text("\n".join(entries))
    return ctx.answer(card)
