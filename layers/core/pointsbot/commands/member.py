"""Member commands: /balance, /leaderboard, /rank, /history, /achievements, /email submit, /give.

Each reads or writes only the guild the interaction came from (ctx.guild_id).
"""

from __future__ import annotations

from typing import Any

import psycopg

from .. import ledger
from ..community import emails, points, windows
from ..discord.interactions import Reply
from ..platform.amounts import MAX_BALANCE
from ..platform.errors import InvalidInput
from ..platform.wording import count, ngettext
from .context import Context, command

LEADERBOARD_PAGE_SIZE = 10
HISTORY_PAGE_SIZE = 10

_KIND_LABELS = {
    "award": "added",
    "deduct": "removed",
    "set": "set",
    "transfer_in": "gift from",
    "transfer_out": "gift to",
    "revert": "reverted",
    "achievement": "achievement",
    "email_bonus": "email bonus",
}


def mention(user_id: int) -> str:
    return f"<@{user_id}>"


def _whose(ctx: Context, user_id: int, mine: str, theirs: str) -> str:
    return mine if user_id == ctx.user_id else theirs.format(who=mention(user_id))


def _signed(amount: int) -> str:
    return f"+{amount:,}" if amount > 0 else f"{amount:,}"


@command("balance")
def balance(ctx: Context, conn: psycopg.Connection) -> Reply:
    target = ctx.member() or ctx.user_id
    amount = ledger.balance(conn, ctx.guild_id, target)
    who = _whose(ctx, target, "You have", "{who} has")
    return Reply(f"{who} {ctx.points(amount)}.")


def leaderboard_buttons(
    page: int, pages: int, board: ledger.LeaderboardPage | None = None, window_key: str | None = None
) -> tuple[dict[str, Any], ...]:
    """Previous/Next; each names the page it leads to and, by keyset, the member it continues
    from: "leaderboard:<page>:prev:<balance>:<user id>" of the first row shown, "...:next:..." of
    the last (at most 11+20+5+14+20 = 74 characters, within Discord's 100; ids differ within
    a message because the directions do). A window's board adds ":<window key>" ("week:2026-11-30",
    "season:<id>", at most 26 more), with the keyset left empty when the page has no rows; the
    buttons of the all-time board are as they always were, so old ones keep working."""
    prev_id, next_id = f"leaderboard:{max(page - 1, 1)}:prev", f"leaderboard:{min(page + 1, pages)}:next"
    if board is not None and board.rows:
        first, last = board.rows[0], board.rows[-1]
        prev_id += f":{first.balance}:{first.user_id}"
        next_id += f":{last.balance}:{last.user_id}"
    elif window_key:
        prev_id, next_id = prev_id + "::", next_id + "::"
    if window_key:
        prev_id, next_id = f"{prev_id}:{window_key}", f"{next_id}:{window_key}"
    return (
        {
            "type": 1,
            "components": [
                {"type": 2, "style": 2, "label": "Previous", "custom_id": prev_id, "disabled": page <= 1},
                {"type": 2, "style": 2, "label": "Next", "custom_id": next_id, "disabled": page >= pages},
            ],
        },
    )  # fmt: skip


def _split_cursor(value: object) -> tuple[str, str | None]:
    """A button's cursor and the window key after it: "next:5:42:week:2026-11-30" ->
    ("next:5:42", "week:2026-11-30"); an all-time button's cursor has no key."""
    if not isinstance(value, str):
        return "", None
    parts = value.split(":", 3)
    if len(parts) == 4 and windows.is_window_key(parts[3]):
        return ":".join(parts[:3]), parts[3]
    return value, None  # anything else is read as before windows existed


def _cursor(value: object) -> dict[str, ledger.LeaderboardKey]:
    """A button's keyset, {"after"|"before": (balance, user id)}, or {} when it carries none or
    one this code never wrote (then the page number alone leads, as for old buttons)."""
    direction, _, key = value.partition(":") if isinstance(value, str) else ("", "", "")
    balance, _, user = key.partition(":")
    if direction not in ("next", "prev") or not _is_int(balance, 14) or not _is_int(user, 20):
        return {}
    place = (int(balance), int(user))
    if abs(place[0]) > MAX_BALANCE or not 0 < place[1] < 2**63:
        return {}
    return {"after": place} if direction == "next" else {"before": place}


def _is_int(text: str, digits: int) -> bool:
    body = text[1:] if text.startswith("-") else text
    return body.isascii() and body.isdigit() and 0 < len(body) <= digits


def _period(ctx: Context) -> str:
    period = ctx.text("period", "all") or "all"
    if period not in windows.PERIODS:
        raise InvalidInput(f"The period is one of: {', '.join(windows.PERIODS)}.")
    return period


def _no_season() -> Reply:
    return Reply("No season is running in this server right now.", ephemeral=True)


@command("leaderboard")
def leaderboard(ctx: Context, conn: psycopg.Connection) -> Reply:
    page = ctx.page()
    raw_cursor, window_key = _split_cursor(ctx.options.get("cursor"))
    cursor = _cursor(raw_cursor)
    window: windows.Window | None = None
    if window_key is not None:  # a window board's button: the same window, even once it has passed
        window = windows.window_from_key(conn, ctx.guild_id, window_key)
        if window is None:
            return Reply("That board is no longer available. Run /leaderboard again.", ephemeral=True)
    elif ctx.options.get("period") is not None:
        period = _period(ctx)
        if period != "all":
            window = windows.window_for(conn, ctx.guild_id, period)
            if window is None:
                return _no_season()
    if window is None:
        board = ledger.leaderboard_page(conn, ctx.guild_id, page, LEADERBOARD_PAGE_SIZE, **cursor)
        if page > board.pages:  # past the end (members left, or a stale button): show the last page
            board = ledger.leaderboard_page(conn, ctx.guild_id, board.pages, LEADERBOARD_PAGE_SIZE)
        title = "**Leaderboard**"
    else:
        board = windows.window_board(conn, ctx.guild_id, window.key, page, LEADERBOARD_PAGE_SIZE, **cursor)
        if page > board.pages:
            board = windows.window_board(conn, ctx.guild_id, window.key, board.pages, LEADERBOARD_PAGE_SIZE)
        title = f"**Leaderboard: {window.label}**"
    lines = [f"{title} (page {board.page} of {board.pages})"]
    if window is not None and not board.rows:
        lines.append(f"Nobody has earned {ctx.policy.currency_name} in {window.label} yet.")
    for row in board.rows:
        lines.append(f"{row.rank}. {mention(row.user_id)} {ctx.policy.points(row.balance)}")
    key = window.key if window is not None else None
    return Reply("\n".join(lines), components=leaderboard_buttons(board.page, board.pages, board, key))


def only_pages(pages: int, what: str) -> str:
    """The answer to a page past the end: "There is only 1 page of history."."""
    return f"{ngettext('There is', 'There are', pages)} only {count(pages, 'page')} {what}."


@command("rank")
def rank(ctx: Context, conn: psycopg.Connection) -> Reply:
    target = ctx.member() or ctx.user_id
    period = _period(ctx)
    if period != "all":
        window = windows.window_for(conn, ctx.guild_id, period)
        if window is None:
            return _no_season()
        place = windows.window_rank(conn, ctx.guild_id, window.key, target)
        if not place.on_board:
            who = _whose(ctx, target, "You have", "{who} has")
            return Reply(
                f"{who} no {ctx.policy.currency_name} in {window.label} yet "
                f"({count(place.total_members, 'member')} on that board)."
            )
        who = _whose(ctx, target, "You are", "{who} is")
        return Reply(
            f"{who} ranked **#{place.rank:,}** of {place.total_members:,} in {window.label} "
            f"with {ctx.points(place.score)}."
        )
    info = ledger.rank_of(conn, ctx.guild_id, target)
    who = _whose(ctx, target, "You are", "{who} is")
    return Reply(
        f"{who} ranked **#{info.rank:,}** of {max(info.total_members, 1):,} with {ctx.points(info.balance)}."
    )


@command("history")
def history(ctx: Context, conn: psycopg.Connection) -> Reply:
    page = ctx.page()
    result = ledger.history_page(conn, ctx.guild_id, ctx.user_id, page, HISTORY_PAGE_SIZE)
    if not result.entries:
        if result.total:
            return Reply(only_pages(result.pages, "of history"), ephemeral=True)
        return Reply(f"You have no {ctx.policy.currency_name} history yet.", ephemeral=True)
    lines = [f"**Your history** (page {result.page} of {result.pages})"]
    for entry in result.entries:
        label = _KIND_LABELS.get(entry.kind, entry.kind)
        if entry.counterparty_id and entry.kind.startswith("transfer"):
            label = f"{label} {mention(entry.counterparty_id)}"
        reason = f" - {entry.reason}" if entry.reason else ""
        when = f"<t:{int(entry.created_at.timestamp())}:R>"
        lines.append(
            f"`#{entry.id}` **{_signed(entry.amount)}** {label}{reason} ({when}), balance {entry.balance_after:,}"
        )
    return Reply("\n".join(lines), ephemeral=True)


@command("achievements")
def achievements(ctx: Context, conn: psycopg.Connection) -> Reply:
    from ..community import achievements as achievement_rules  # the achievements engineer's module

    target = ctx.member() or ctx.user_id
    earned = achievement_rules.earned_by(conn, ctx.guild_id, target)
    if not earned:
        return Reply(_whose(ctx, target, "You have no achievements yet.", "{who} has no achievements yet."))
    lines = [_whose(ctx, target, "**Your achievements**", "**Achievements of {who}**")]
    for item in earned:
        bonus = f" (+{item.bonus_paid:,})" if item.bonus_paid else ""
        about = f" - {item.description}" if item.description else ""
        lines.append(f"- **{item.name}**{bonus}{about} (<t:{int(item.earned_at.timestamp())}:d>)")
    return Reply("\n".join(lines))


@command("email submit", writes=True)
def email_submit(ctx: Context, conn: psycopg.Connection) -> Reply:
    submission = emails.submit(conn, ctx.guild_id, ctx.user_id, ctx.text("address"))
    return Reply(
        f"Thanks! {submission.email} is waiting for an admin to review it. You will get a DM when it is.",
        ephemeral=True,
    )


@command("give", writes=True)
def give(ctx: Context, conn: psycopg.Connection) -> Reply:
    target = ctx.member()
    amount = ctx.integer("amount")
    if target is None or amount is None:
        raise InvalidInput("Say who gets the points and how many.")
    if ctx.is_bot(target):
        raise InvalidInput("Bots cannot hold points.")
    ctx.remember_option_member(conn, target)
    result = points.transfer(
        conn, guild_id=ctx.guild_id, from_user_id=ctx.user_id, to_user_id=target, amount=amount,
        reason=ctx.text("reason"), idempotency_key=ctx.idempotency_key, source="slash", settings=ctx.settings,
        actor_name=ctx.actor_name,
    )  # fmt: skip
    reason = ctx.text("reason").strip()
    left = result.entry_for(ctx.user_id).balance_after
    return Reply(
        f"{mention(ctx.user_id)} gave {ctx.points(amount)} to {mention(target)}"
        + (f": {reason}" if reason else ".")
        + f"\n{mention(ctx.user_id)} has {ctx.policy.points(left)} left."
    )
