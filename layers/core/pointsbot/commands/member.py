"""Member commands: /balance, /leaderboard, /rank, /history, /achievements, /email submit, /give.

Each reads or writes only the guild the interaction came from (ctx.guild_id).
"""

from __future__ import annotations

from typing import Any

import psycopg

from .. import ledger
from ..community import emails, points, windows
from ..discord import cards
from ..discord.interactions import Reply
from ..platform.amounts import MAX_BALANCE
from ..platform.errors import InvalidInput
from ..platform.i18n import Translator, translator
from ..platform.paging import page_number
from .context import Context, command

LEADERBOARD_PAGE_SIZE = 10
HISTORY_PAGE_SIZE = 10
MEDALS = {1: "🥇", 2: "🥈", 3: "🥉"}


def kind_label(tr: Translator, kind: str) -> str:
    """What a ledger entry's kind is called in a member's history."""
    labels = {
        "award": tr.pgettext("entry kind", "added"),
        "deduct": tr.pgettext("entry kind", "removed"),
        "set": tr.pgettext("entry kind", "set"),
        "transfer_in": tr.pgettext("entry kind", "gift from"),
        "transfer_out": tr.pgettext("entry kind", "gift to"),
        "revert": tr.pgettext("entry kind", "reverted"),
        "achievement": tr.pgettext("entry kind", "achievement"),
        "email_bonus": tr.pgettext("entry kind", "email bonus"),
        "purchase": tr.pgettext("entry kind", "purchase"),
        "purchase_refund": tr.pgettext("entry kind", "refund"),
        "season_reset": tr.pgettext("entry kind", "season reset"),
        "season_prize": tr.pgettext("entry kind", "season prize"),
    }
    return labels.get(kind, kind)


def mention(user_id: int) -> str:
    return f"<@{user_id}>"


def _whose(ctx: Context, user_id: int, mine: str, theirs: str) -> str:
    return mine if user_id == ctx.user_id else theirs.format(who=mention(user_id))


@command("balance")
def balance(ctx: Context, conn: psycopg.Connection) -> Reply:
    target = ctx.member() or ctx.user_id
    amount = ledger.balance(conn, ctx.guild_id, target)
    tr = ctx.tr
    if target == ctx.user_id:
        line = tr._("You have {amount}.", amount=ctx.points(amount))
    else:
        line = tr._("{who} has {amount}.", who=mention(target), amount=ctx.points(amount))
    card = ctx.card().header("### " + tr._("Balance"), line, avatar=ctx.avatar(target))
    return ctx.answer(card)


def leaderboard_buttons(
    page: int,
    pages: int,
    board: ledger.LeaderboardPage | None = None,
    window_key: str | None = None,
    tr: Translator | None = None,
) -> tuple[dict[str, Any], ...]:
    """First, Previous, Next, Last and "Me". Previous/Next name the page they lead to and, by
    keyset, the member they continue from: "leaderboard:<page>:prev:<balance>:<user id>" of the
    first row shown, "...:next:..." of the last (at most 11+20+5+14+20 = 74 characters, within
    Discord's 100); First and Last lead by page number ("leaderboard:1:first",
    "leaderboard:<pages>:last"), "leaderboard:<page>:me" to the asker's own place. Every id in a
    message differs from the others (Discord requires it): each names its own direction.
    A window's board adds ":<window key>" ("week:2026-11-30", "season:<id>", at most 26 more),
    with the keyset left empty where there is none; the buttons of the all-time board are as
    they always were, so old ones keep working."""
    tr = tr or translator()
    prev_id, next_id = f"leaderboard:{max(page - 1, 1)}:prev", f"leaderboard:{min(page + 1, pages)}:next"
    if board is not None and board.rows:
        first, last = board.rows[0], board.rows[-1]
        prev_id += f":{first.balance}:{first.user_id}"
        next_id += f":{last.balance}:{last.user_id}"
    elif window_key:
        prev_id, next_id = prev_id + "::", next_id + "::"
    first_id, last_id, me_id = (
        "leaderboard:1:first",
        f"leaderboard:{max(pages, 1)}:last",
        f"leaderboard:{page}:me",
    )
    if window_key:
        prev_id, next_id = f"{prev_id}:{window_key}", f"{next_id}:{window_key}"
        first_id, last_id, me_id = (f"{i}:::{window_key}" for i in (first_id, last_id, me_id))
    return (
        cards.row(
            cards.button(tr._("First"), first_id, emoji="⏮", disabled=page <= 1),
            cards.button(tr._("Previous"), prev_id, emoji="◀", disabled=page <= 1),
            cards.button(tr._("Next"), next_id, emoji="▶", disabled=page >= pages),
            cards.button(tr._("Last"), last_id, emoji="⏭", disabled=page >= pages),
            cards.button(tr._("Me"), me_id, style=cards.PRIMARY, emoji="📍"),
        ),
    )


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
        raise InvalidInput(ctx.tr._("The period is one of: {periods}.", periods=", ".join(windows.PERIODS)))
    return period


def _no_season(tr: Translator) -> Reply:
    return Reply(tr._("No season is running in this server right now."), ephemeral=True)


def leaderboard_line(ctx: Context, row: ledger.LeaderboardRow) -> str:
    place = MEDALS.get(row.rank) or f"`#{ctx.tr.number(row.rank)}`"
    line = f"{place} {mention(row.user_id)} · {ctx.points(row.balance)}"
    if row.user_id == ctx.user_id:
        line = f"{line} ◀ " + ctx.tr._("you")
    return line


@command("leaderboard")
def leaderboard(ctx: Context, conn: psycopg.Connection) -> Reply:
    page = ctx.page()
    raw_cursor, window_key = _split_cursor(ctx.options.get("cursor"))
    cursor = _cursor(raw_cursor)
    tr = ctx.tr
    window: windows.Window | None = None
    if window_key is not None:  # a window board's button: the same window, even once it has passed
        window = windows.window_from_key(conn, ctx.guild_id, window_key)
        if window is None:
            return Reply(tr._("That board is no longer available. Run /leaderboard again."), ephemeral=True)
    elif ctx.options.get("period") is not None:
        period = _period(ctx)
        if period != "all":
            window = windows.window_for(conn, ctx.guild_id, period)
            if window is None:
                return _no_season(tr)
    mine: ledger.RankInfo | None = None
    if raw_cursor.split(":", 1)[0] == "me":
        # The asker's page starts with them: the keyset just before them (same score, id - 1).
        mine = _place(conn, ctx, window, ctx.user_id)
        page = page_number((mine.rank - 1) // LEADERBOARD_PAGE_SIZE + 1)
        cursor = {"after": (mine.balance, ctx.user_id - 1)}
    if window is None:
        board = ledger.leaderboard_page(conn, ctx.guild_id, page, LEADERBOARD_PAGE_SIZE, **cursor)
        if page > board.pages or (cursor and not board.rows):  # past the end: show the last page
            board = ledger.leaderboard_page(conn, ctx.guild_id, board.pages, LEADERBOARD_PAGE_SIZE)
        title = "### 🏆 " + tr._("Leaderboard")
    else:
        board = windows.window_board(conn, ctx.guild_id, window.key, page, LEADERBOARD_PAGE_SIZE, **cursor)
        if page > board.pages or (cursor and not board.rows):
            board = windows.window_board(conn, ctx.guild_id, window.key, board.pages, LEADERBOARD_PAGE_SIZE)
        title = "### 🏆 " + tr._("Leaderboard: {window}", window=window.label)
    card = ctx.card().header(
        title,
        tr._("Page {page} of {pages}", page=tr.number(board.page), pages=tr.number(board.pages))
        + " · " + tr.ngettext("{n} member", "{n} members", board.total_members),
        avatar=ctx.avatar(ctx.user_id),
    )  # fmt: skip
    card.separator()
    if board.rows:
        card.text("\n".join(leaderboard_line(ctx, row) for row in board.rows))
    elif window is not None:
        card.text(tr._("Nobody has earned {currency} in {window} yet.", currency=ctx.policy.currency_name,
                       window=window.label))  # fmt: skip
    else:
        card.text(tr._("Nobody has any {currency} yet.", currency=ctx.policy.currency_name))
    if not any(row.user_id == ctx.user_id for row in board.rows):
        mine = mine or _place(conn, ctx, window, ctx.user_id)
        card.separator(divider=False).text(
            "-# " + tr._("Your place: #{rank} with {amount}", rank=tr.number(mine.rank), amount=ctx.amount(mine.balance))
        )  # fmt: skip
    key = window.key if window is not None else None
    card.buttons(*leaderboard_buttons(board.page, board.pages, board, key, tr)[0]["components"])
    return ctx.answer(card)


def _place(
    conn: psycopg.Connection, ctx: Context, window: windows.Window | None, user_id: int
) -> ledger.RankInfo:
    """A member's place on the all-time board or in a window (rank, balance or score, members)."""
    if window is None:
        return ledger.rank_of(conn, ctx.guild_id, user_id)
    return windows.window_rank(conn, ctx.guild_id, window.key, user_id).as_rank_info()


def only_pages(tr: Translator, pages: int, what: str) -> str:
    """The answer to a page past the end: "There is only 1 page of history."; `what` is one of
    "history", "pending" (the catalog has each sentence whole, as languages need)."""
    if what == "pending":
        return tr.ngettext("There is only {n} page of pending submissions.",
                           "There are only {n} pages of pending submissions.", pages)  # fmt: skip
    return tr.ngettext("There is only {n} page of history.", "There are only {n} pages of history.", pages)


@command("rank")
def rank(ctx: Context, conn: psycopg.Connection) -> Reply:
    target = ctx.member() or ctx.user_id
    period = _period(ctx)
    tr = ctx.tr
    if period != "all":
        window = windows.window_for(conn, ctx.guild_id, period)
        if window is None:
            return _no_season(tr)
        place = windows.window_rank(conn, ctx.guild_id, window.key, target)
        on_board = tr.ngettext("{n} member on that board", "{n} members on that board", place.total_members)
        values = dict(currency=ctx.policy.currency_name, window=window.label, board=on_board,
                      rank=tr.number(place.rank), total=tr.number(place.total_members), amount=ctx.points(place.score))  # fmt: skip
        if not place.on_board:
            line = (tr._("You have no {currency} in {window} yet ({board}).", **values) if target == ctx.user_id
                    else tr._("{who} has no {currency} in {window} yet ({board}).", who=mention(target), **values))  # fmt: skip
        elif target == ctx.user_id:
            line = tr._("You are ranked **#{rank}** of {total} in {window} with {amount}.", **values)
        else:
            line = tr._("{who} is ranked **#{rank}** of {total} in {window} with {amount}.", who=mention(target),
                        **values)  # fmt: skip
        medal = MEDALS.get(place.rank, "🏅") if place.on_board else "🏅"
        return ctx.answer(ctx.card().header(f"### {medal} " + tr._("Rank"), line, avatar=ctx.avatar(target)))
    info = ledger.rank_of(conn, ctx.guild_id, target)
    values = dict(
        rank=tr.number(info.rank),
        total=tr.number(max(info.total_members, 1)),
        amount=ctx.points(info.balance),
    )
    if target == ctx.user_id:
        line = tr._("You are ranked **#{rank}** of {total} with {amount}.", **values)
    else:
        line = tr._("{who} is ranked **#{rank}** of {total} with {amount}.", who=mention(target), **values)
    place = MEDALS.get(info.rank, "🏅")
    card = ctx.card().header(f"### {place} " + tr._("Rank"), line, avatar=ctx.avatar(target))
    return ctx.answer(card)


def history_line(ctx: Context, entry: ledger.LedgerEntry) -> str:
    tr = ctx.tr
    label = kind_label(tr, entry.kind)
    if entry.counterparty_id and entry.kind.startswith("transfer"):
        label = f"{label} {mention(entry.counterparty_id)}"
    reason = f" - {entry.reason}" if entry.reason else ""
    when = f"<t:{int(entry.created_at.timestamp())}:R>"
    after = tr._("balance {amount}", amount=tr.number(entry.balance_after))
    return f"`#{entry.id}` **{tr.signed(entry.amount)}** {label}{reason} ({when}), {after}"


@command("history")
def history(ctx: Context, conn: psycopg.Connection) -> Reply:
    page = ctx.page()
    tr = ctx.tr
    result = ledger.history_page(conn, ctx.guild_id, ctx.user_id, page, HISTORY_PAGE_SIZE)
    if not result.entries:
        if result.total:
            return Reply(only_pages(tr, result.pages, "history"), ephemeral=True)
        return Reply(
            tr._("You have no {currency} history yet.", currency=ctx.policy.currency_name), ephemeral=True
        )
    card = ctx.card().header(
        "### " + tr._("Your history"),
        tr._("Page {page} of {pages}", page=tr.number(result.page), pages=tr.number(result.pages)),
        avatar=ctx.avatar(ctx.user_id),
    )
    card.separator().text("\n".join(history_line(ctx, entry) for entry in result.entries))
    return ctx.answer(card)


@command("achievements")
def achievements(ctx: Context, conn: psycopg.Connection) -> Reply:
    from ..community import achievements as achievement_rules  # the achievements engineer's module

    target = ctx.member() or ctx.user_id
    tr = ctx.tr
    earned = achievement_rules.earned_by(conn, ctx.guild_id, target)
    title = "### 🎖️ " + tr._("Achievements")
    if not earned:
        line = (tr._("You have no achievements yet.") if target == ctx.user_id
                else tr._("{who} has no achievements yet.", who=mention(target)))  # fmt: skip
        return ctx.answer(ctx.card().header(title, line, avatar=ctx.avatar(target)))
    whose = (tr._("**Your achievements**") if target == ctx.user_id
             else tr._("**Achievements of {who}**", who=mention(target)))  # fmt: skip
    card = ctx.card().header(title, whose, avatar=ctx.avatar(target)).separator()
    card.text("\n".join(achievement_line(ctx, item) for item in earned))
    return ctx.answer(card)


def achievement_line(ctx: Context, item: Any) -> str:
    bonus = f" (+{ctx.tr.number(item.bonus_paid)})" if item.bonus_paid else ""
    about = f" - {item.description}" if item.description else ""
    return f"- **{item.name}**{bonus}{about} (<t:{int(item.earned_at.timestamp())}:d>)"


@command("email submit", writes=True)
def email_submit(ctx: Context, conn: psycopg.Connection) -> Reply:
    submission = emails.submit(conn, ctx.guild_id, ctx.user_id, ctx.text("address"))
    tr = ctx.tr
    card = ctx.card().header(
        "### ✉️ " + tr._("Email submitted"),
        tr._("Thanks! {email} is waiting for an admin to review it. You will get a DM when it is.",
             email=submission.email),
        avatar=ctx.avatar(ctx.user_id),
    )  # fmt: skip
    return ctx.answer(card)


@command("give", writes=True, remembers="member")
def give(ctx: Context, conn: psycopg.Connection) -> Reply:
    target = ctx.member()
    amount = ctx.integer("amount")
    if target is None or amount is None:
        raise InvalidInput(ctx.tr._("Say who gets the points and how many."))
    if ctx.is_bot(target):
        raise InvalidInput(ctx.tr._("Bots cannot hold points."))
    result = points.transfer(
        conn, guild_id=ctx.guild_id, from_user_id=ctx.user_id, to_user_id=target, amount=amount,
        reason=ctx.text("reason"), idempotency_key=ctx.idempotency_key, source="slash", settings=ctx.settings,
        actor_name=ctx.actor_name,
    )  # fmt: skip
    return gift_card(
        ctx, target, amount, ctx.text("reason").strip(), result.entry_for(ctx.user_id).balance_after
    )


def gift_card(ctx: Context, target: int, amount: int, reason: str, left: int) -> Reply:
    """The public answer to a gift (/give and the "Give points" modal)."""
    tr = ctx.tr
    values = dict(giver=mention(ctx.user_id), amount=ctx.points(amount), receiver=mention(target))
    gave = (tr._("{giver} gave {amount} to {receiver}: {reason}", reason=reason, **values) if reason
            else tr._("{giver} gave {amount} to {receiver}.", **values))  # fmt: skip
    rest = tr._("{giver} has {amount} left.", giver=mention(ctx.user_id), amount=ctx.amount(left))
    card = ctx.card().header("### 🎁 " + tr._("Gift"), gave, rest, avatar=ctx.avatar(target))
    return ctx.answer(card)
