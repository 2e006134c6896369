"""Context menus and their modals, /profile and /help.

A context-menu command stands for a slash command: "Points profile" runs /profile on the member
right-clicked; "Give points", "Award points" and "Award points for this message" first open a
modal (answered at once, without the database: Discord cannot show a modal after a deferral),
and its submit runs /give or /points add with the modal's fields. So a modal submit is a write
like any other: verified, rights checked from the interaction, its interaction id claimed as
the idempotency key (a second delivery replays the first answer), inline or deferred.
"""

from __future__ import annotations

from typing import Any

import psycopg

from .. import ledger
from ..discord import cards
from ..discord.interactions import APPLICATION_COMMAND, CHAT_INPUT, Interaction, Reply
from ..platform.errors import InvalidInput
from ..platform.i18n import Translator, translator
from .catalog import ADMIN_COMMANDS, NAME_CONTEXT, SLASH_COMMANDS, SUB_COMMAND
from .context import Context, command, is_admin
from .member import MEDALS, achievement_line, history_line, mention

PROFILE, GIVE, AWARD, AWARD_MESSAGE = (
    "Points profile", "Give points", "Award points", "Award points for this message",
)  # fmt: skip
# context-menu name -> the slash command it runs
CONTEXT_MENUS = {PROFILE: "profile", GIVE: "give", AWARD: "points add", AWARD_MESSAGE: "points add"}
MODAL_MENUS = frozenset({GIVE, AWARD, AWARD_MESSAGE})
MAX_AMOUNT_CHARS = 16  # "1,000,000,000" and some spaces
PROFILE_RECENT = 3
PROFILE_ACHIEVEMENTS = 5


def menu_route(interaction: Interaction) -> tuple[str, dict[str, Any]]:
    """The slash command a context-menu command runs, and its member."""
    path = CONTEXT_MENUS.get(interaction.command, "")
    if interaction.command == AWARD_MESSAGE and interaction.target_message is not None:
        return path, {"member": interaction.target_message.author_id}
    return path, {"member": interaction.target_id}


def _target_is_bot(interaction: Interaction, target: str) -> bool:
    message = interaction.target_message
    if message is not None and message.author_id == target:
        return message.author_bot
    seen = interaction.users.get(target)
    return bool(seen and seen.bot)


def opens_modal(interaction: Interaction, path: str, options: dict[str, Any]) -> Reply | None:
    """The modal a context-menu command opens (or why it cannot), None for anything else."""
    if interaction.type != APPLICATION_COMMAND or interaction.command_type == CHAT_INPUT:
        return None
    if interaction.command not in MODAL_MENUS:
        return None
    tr = translator(interaction.locale)
    target = str(options.get("member") or "")
    if _target_is_bot(interaction, target):
        return Reply(tr._("Bots cannot hold points."), ephemeral=True)
    if interaction.command == GIVE and target == interaction.user_id:
        return Reply(tr._("You cannot give points to yourself."), ephemeral=True)
    seen = interaction.users.get(target)
    who = (seen.display_name if seen else None) or mention(int(target))
    amount = cards.text_input("amount", tr._("Amount"), placeholder="10", max_length=MAX_AMOUNT_CHARS)
    if interaction.command == GIVE:
        form = cards.modal(
            f"give:{target}", tr._("Give points"),
            {"type": cards.TEXT_DISPLAY, "content": tr._("To {who}", who=who)},
            amount,
            cards.text_input("reason", tr._("Reason"), paragraph=True, required=False, max_length=500),
        )  # fmt: skip
        return Reply("", ephemeral=True, modal=form)
    reason_value = None
    custom_id = f"award:{target}"
    title = tr._("Award points")
    message = interaction.target_message
    if interaction.command == AWARD_MESSAGE and message is not None:
        link = f"https://discord.com/channels/{interaction.guild_id}/{message.channel_id}/{message.id}"
        reason_value = tr._("For this message: {link}", link=link)
        title = tr._("Award points for this message")
    form = cards.modal(
        custom_id, title,
        {"type": cards.TEXT_DISPLAY, "content": tr._("To {who}", who=who)},
        amount,
        cards.text_input("reason", tr._("Reason"), paragraph=True, value=reason_value, max_length=500,
                         description=tr._("Shown in the member's history")),
        cards.checkbox("silent", tr._("Silent"), description=tr._("Do not DM the member about this change")),
    )  # fmt: skip
    return Reply("", ephemeral=True, modal=form)


def modal_route(interaction: Interaction) -> tuple[str, dict[str, Any]]:
    """The command a modal submit runs and its options; InvalidInput (in the asker's language)
    when a field is not what the modal asked for. Unknown modals route nowhere ("")."""
    kind, _, rest = (interaction.custom_id or "").partition(":")
    target = rest.split(":", 1)[0]
    if kind not in ("give", "award") or not (target.isascii() and target.isdigit() and 0 < len(target) <= 19):
        return "", {}
    tr = translator(interaction.locale)
    values = interaction.modal_values
    options: dict[str, Any] = {"member": target, "amount": parse_amount(values.get("amount"), tr)}
    reason = values.get("reason")
    if isinstance(reason, str) and reason.strip():
        options["reason"] = reason.strip()
    if kind == "give":
        return "give", options
    options["silent"] = values.get("silent") is True or values.get("silent") == ["yes"]
    return "points add", options


def parse_amount(value: object, tr: Translator) -> int:
    """A modal's amount: digits 0-9, with the grouping people type (1,000 / 1.000 / 1 000)."""
    text = value.strip() if isinstance(value, str) else ""
    for mark in (",", ".", "_", " ", "\u00a0", "\u202f", "'"):
        text = text.replace(mark, "")
    if not text or len(text) > MAX_AMOUNT_CHARS or not (text.isascii() and text.isdigit()):
        raise InvalidInput(tr._("The amount must be a whole number, written with the digits 0-9."))
    return int(text)


# -- /profile ------------------------------------------------------------------------------------
@command("profile")
def profile(ctx: Context, conn: psycopg.Connection) -> Reply:
    from ..community import achievements as achievement_rules

    target = ctx.member() or ctx.user_id
    tr = ctx.tr
    place = ledger.rank_of(conn, ctx.guild_id, target)
    seen = ctx.interaction.user(str(target))
    name = (seen.display_name if seen else None) or _stored_name(conn, ctx.guild_id, target) or str(target)
    card = ctx.card().header(f"### {name}", mention(target), avatar=ctx.avatar(target), alt=name)
    card.separator()
    medal = MEDALS.get(place.rank, "🏅")
    lines = [
        "💰 " + tr._("Balance: {amount}", amount=ctx.points(place.balance)),
        f"{medal} "
        + tr._(
            "Rank: **#{rank}** of {total}",
            rank=tr.number(place.rank),
            total=tr.number(max(place.total_members, 1)),
        ),
    ]
    season = _season_line(conn, ctx, target)
    if season:
        lines.append(season)
    card.text("\n".join(lines))
    earned = achievement_rules.earned_by(conn, ctx.guild_id, target)
    if earned:
        card.separator().text(
            "**" + tr.ngettext("{n} achievement", "{n} achievements", len(earned)) + "**\n"
            + "\n".join(achievement_line(ctx, item) for item in earned[:PROFILE_ACHIEVEMENTS])
        )  # fmt: skip
    if target == ctx.user_id:  # a history is its member's own (as /history is)
        recent = ledger.history_page(conn, ctx.guild_id, target, 1, PROFILE_RECENT)
        if recent.entries:
            card.separator().text(
                "**"
                + tr._("Recent changes")
                + "**\n"
                + "\n".join(history_line(ctx, e) for e in recent.entries)
            )
    return ctx.answer(card)


def _stored_name(conn: psycopg.Connection, guild_id: int, user_id: int) -> str | None:
    row = conn.execute(
        "SELECT coalesce(display_name, username) FROM members WHERE guild_id = %s AND user_id = %s "
        "AND erased_at IS NULL",
        (guild_id, user_id),
    ).fetchone()
    return row[0] if row else None


def _season_line(conn: psycopg.Connection, ctx: Context, user_id: int) -> str | None:
    """The member's place in the season running now (live from its window), None when no season
    runs or they have no points in it yet."""
    from ..community import seasons

    season = seasons.current_season(conn, ctx.guild_id)
    if season is None or season.status != "running":
        return None
    standing = seasons.standing_of(conn, season, user_id)
    if standing is None:
        return None
    return "🗓️ " + ctx.tr._("Season {season}: **#{rank}** with {amount}", season=season.name,
                            rank=ctx.tr.number(standing.place), amount=ctx.amount(standing.score))  # fmt: skip


# -- /help ----------------------------------------------------------------------------------------
@command("help")
def help_(ctx: Context, conn: psycopg.Connection) -> Reply:
    tr = ctx.tr
    admin = is_admin(ctx.interaction, ctx.policy)
    members: list[str] = []
    admins: list[str] = []
    for definition in SLASH_COMMANDS:
        if definition["name"] == "give" and not ctx.policy.transfers_enabled:
            continue
        is_admin_command = definition["name"] in ADMIN_COMMANDS
        if is_admin_command and not admin:
            continue
        (admins if is_admin_command else members).extend(help_lines(tr, definition))
    card = ctx.card().header(
        "### ❔ " + tr._("Help"), tr._("What you can do here:"), avatar=ctx.avatar(ctx.user_id)
    )
    card.separator().text("\n".join(members))
    if admins:
        card.separator().text("**" + tr._("Admins") + "**\n" + "\n".join(admins))
    menus = [tr.pgettext(NAME_CONTEXT, PROFILE)]
    if ctx.policy.transfers_enabled:
        menus.append(tr.pgettext(NAME_CONTEXT, GIVE))
    message_menus = []
    if admin:
        menus.append(tr.pgettext(NAME_CONTEXT, AWARD))
        message_menus.append(tr.pgettext(NAME_CONTEXT, AWARD_MESSAGE))
    right_click = tr._("Right-click a member (Apps): {actions}", actions=", ".join(menus))
    if message_menus:
        right_click += "\n" + tr._(
            "Right-click a message (Apps): {actions}", actions=", ".join(message_menus)
        )
    card.separator().text(right_click)
    return ctx.answer(card)


def help_lines(tr: Translator, definition: dict[str, Any]) -> list[str]:
    """One line per command (per sub-command): `/name [option]` - what it does."""
    name = _name(tr, definition)
    subs = [o for o in definition.get("options") or () if o["type"] == SUB_COMMAND]
    if not subs:
        return [f"`/{name}{_usage(tr, definition)}` - " + _description(tr, definition)]
    return [f"`/{name} {_name(tr, sub)}{_usage(tr, sub)}` - " + _description(tr, sub) for sub in subs]


def _name(tr: Translator, definition: dict[str, Any]) -> str:
    english = definition["name"]  # marked for the catalogs in catalog.py
    return tr.pgettext(NAME_CONTEXT, english)


def _description(tr: Translator, definition: dict[str, Any]) -> str:
    english = definition["description"]  # marked for the catalogs in catalog.py
    return tr._(english)


def _usage(tr: Translator, definition: dict[str, Any]) -> str:
    parts = []
    for option in definition.get("options") or ():
        label = _name(tr, option)
        parts.append(f"<{label}>" if option.get("required") else f"[{label}]")
    return (" " + " ".join(parts)) if parts else ""
