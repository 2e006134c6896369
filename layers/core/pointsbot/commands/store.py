"""The reward store's commands: /shop (paged, a Buy button per reward), /buy (with autocomplete),
/purchases, and the admins' /redemptions pending|fulfil|refund.

The rules are community/store.py's; these shape its answers. Everything here is private
(ephemeral): a member's balance, limits and codes are their own business.
"""

from __future__ import annotations

from typing import Any

import psycopg

from .. import ledger
from ..community import store
from ..discord import cards
from ..discord.interactions import Reply
from ..platform.errors import InvalidInput
from ..platform.i18n import Translator
from .context import Context, autocomplete, command

SHOP_PAGE_SIZE = 5  # one Buy button per reward, each beside its reward (a card has 40 components)
PURCHASES_PAGE_SIZE = 10
PENDING_PAGE_SIZE = 10
KIND_EMOJI = {"role": "🎭", "item": "📦", "code": "🔑"}


def _when(moment: Any) -> str:
    return f"<t:{int(moment.timestamp())}:R>"


def kind_label(tr: Translator, kind: str) -> str:
    labels = {
        "role": tr.pgettext("reward kind", "role"),
        "item": tr.pgettext("reward kind", "item"),
        "code": tr.pgettext("reward kind", "code"),
    }
    return labels.get(kind, kind)


def state_label(tr: Translator, bought: store.Purchase, now: Any) -> str:
    """A purchase's state as its member reads it (store.shown_state's rules, in their language)."""
    shown = store.shown_state(bought, now)
    labels = {
        store.STATE_LABELS["granted"]: tr.pgettext("purchase state", "granted"),
        store.STATE_LABELS["pending"]: tr.pgettext("purchase state", "pending fulfilment"),
        store.STATE_LABELS["fulfilled"]: tr.pgettext("purchase state", "fulfilled"),
        store.STATE_LABELS["refunded"]: tr.pgettext("purchase state", "refunded"),
        store.STATE_LABELS["expired"]: tr.pgettext("purchase state", "expired"),
        "granted (the role is on its way)": tr.pgettext("purchase state", "granted (the role is on its way)"),
    }
    return labels.get(shown, shown)


def buy_button(tr: Translator, row: store.ShopRow) -> dict[str, Any]:
    """A reward's Buy button ("buy:<reward id>"), greyed out when sold out or at the limit."""
    return cards.button(
        tr._("Buy"), f"buy:{row.reward.id}", style=cards.PRIMARY, emoji="🛒",
        disabled=row.reward.stock == 0 or row.left_for_member == 0,
    )  # fmt: skip


def page_buttons(tr: Translator, page: int, pages: int, prefix: str = "shop") -> tuple[dict[str, Any], ...]:
    """Previous/Next ("<prefix>:<page>:prev|next"; they edit their message in place): the shop's,
    /purchases' ("purchases"), a season's final table ("standings:<season id>")."""
    if pages <= 1:
        return ()
    return (
        cards.button(tr._("Previous"), f"{prefix}:{max(page - 1, 1)}:prev", emoji="◀", disabled=page <= 1),
        cards.button(
            tr._("Next"), f"{prefix}:{min(page + 1, pages)}:next", emoji="▶", disabled=page >= pages
        ),
    )


def shop_buttons(page: store.ShopPage, tr: Translator | None = None) -> tuple[dict[str, Any], ...]:
    """Every button of a shop card, in order: a Buy per reward, then Previous/Next."""
    from ..platform.i18n import translator

    tr = tr or translator()
    return (*(buy_button(tr, row) for row in page.rows), *page_buttons(tr, page.page, page.pages))


def reward_lines(ctx: Context, row: store.ShopRow) -> str:
    tr, reward = ctx.tr, row.reward
    facts = [ctx.points(reward.price)]
    if reward.stock is not None:
        facts.append(tr._("sold out") if reward.stock == 0 else tr._("{n} left", n=tr.number(reward.stock)))
    if row.left_for_member is not None:
        facts.append(tr._("you have bought your limit") if row.left_for_member == 0
                     else tr._("you may buy {n} more", n=tr.number(row.left_for_member)))  # fmt: skip
    if reward.kind == "role" and reward.role_id:
        facts.append(
            tr.ngettext("role {role} for {n} day", "role {role} for {n} days", reward.duration_days,
                        role=f"<@&{reward.role_id}>")
            if reward.duration_days else tr._("role {role}", role=f"<@&{reward.role_id}>")
        )  # fmt: skip
    if reward.ends_at is not None:
        facts.append(tr._("until {when}", when=_when(reward.ends_at)))
    text = f"{KIND_EMOJI.get(reward.kind, '🎁')} **{reward.name}**\n" + " · ".join(facts)
    if reward.description:
        text += "\n-# " + reward.description[:200].replace("\n", " ")
    return text


@command("shop")
def shop(ctx: Context, conn: psycopg.Connection) -> Reply:
    tr = ctx.tr
    page = store.shop_page(conn, ctx.guild_id, ctx.user_id, ctx.page(), SHOP_PAGE_SIZE)
    if not page.rows:
        card = ctx.card().header("### 🛒 " + tr._("Shop"), tr._("There is nothing in the shop right now."))
        return ctx.answer(card, ephemeral=True)
    balance = ledger.balance(conn, ctx.guild_id, ctx.user_id)
    card = ctx.card().header(
        "### 🛒 " + tr._("Shop"),
        tr._("Page {page} of {pages}", page=tr.number(page.page), pages=tr.number(page.pages))
        + " · " + tr._("You have {amount}.", amount=ctx.points(balance)),
        avatar=ctx.avatar(ctx.user_id),
    )  # fmt: skip
    card.separator()
    for row in page.rows:
        card.section(reward_lines(ctx, row), accessory=buy_button(tr, row))
    card.buttons(*page_buttons(tr, page.page, page.pages))
    return ctx.answer(card, ephemeral=True)


def bought_card(ctx: Context, result: store.PurchaseResult) -> Reply:
    tr, bought = ctx.tr, result.purchase
    lines = [
        tr._(
            "You bought **{reward}** for {amount}.",
            reward=bought.reward_name,
            amount=ctx.points(bought.price),
        )
    ]
    if bought.kind == "role":
        role = f"<@&{bought.role_id}>"
        lines.append(tr._("The role {role} is on its way until {when}.", role=role,
                          when=f"<t:{int(bought.expires_at.timestamp())}:f>") if bought.expires_at
                     else tr._("The role {role} is on its way.", role=role))  # fmt: skip
    elif bought.kind == "item":
        lines.append(
            tr._("An admin will hand it over; you will get a DM then (purchase #{id}).", id=bought.id)
        )
    card = ctx.card().header("### ✅ " + tr._("Bought"), *lines, avatar=ctx.avatar(ctx.user_id))
    if bought.kind == "code" and bought.code:
        card.separator().text(tr._("Your code (also sent by DM):") + f"\n```\n{bought.code}\n```")
    card.separator(divider=False).text(
        "-# " + tr._("Your balance is now {amount}.", amount=ctx.amount(result.balance))
    )
    return ctx.answer(card, ephemeral=True)


@command("buy", writes=True)
def buy(ctx: Context, conn: psycopg.Connection) -> Reply:
    reward_id = ctx.options.get("reward_id")  # from a Buy button (dispatch checked its digits)
    if reward_id is None:
        name = ctx.text("reward").strip()
        reward = store.reward_by_name(conn, ctx.guild_id, name) if name else None
        if reward is None:
            raise InvalidInput(ctx.tr._("There is no reward called {name} here; /shop lists them.",
                                        name=repr(name[:100])))  # fmt: skip
        reward_id = reward.id
    result = store.purchase(
        conn, guild_id=ctx.guild_id, user_id=ctx.user_id, reward_id=reward_id,
        interaction_id=int(ctx.interaction.id), actor_name=ctx.actor_name, settings=ctx.settings, policy=ctx.policy,
    )  # fmt: skip
    return bought_card(ctx, result)


@autocomplete("buy")
def buy_choices(conn: psycopg.Connection, guild_id: int, user_id: int, typed: str) -> list[tuple[str, str]]:
    return [(f"{r.name} ({r.price:,})", r.name) for r in store.search_rewards(conn, guild_id, typed)]


def _purchase_line(ctx: Context, bought: store.Purchase, now: Any, *, who: bool = False) -> str:
    tr = ctx.tr
    member = f" <@{bought.user_id}>" if who else ""
    line = (
        f"`#{bought.id}`{member} {KIND_EMOJI.get(bought.kind, '🎁')} **{bought.reward_name}** "
        f"({kind_label(tr, bought.kind)}, {ctx.amount(bought.price)}): {state_label(tr, bought, now)}, "
        f"{_when(bought.created_at)}"
    )
    if bought.expires_at is not None and bought.state == "granted" and bought.expires_at > now:
        line += ", " + tr._("until {when}", when=f"<t:{int(bought.expires_at.timestamp())}:f>")
    if bought.code and not who:
        line += ", " + tr._("code {code}", code=f"`{bought.code}`")
    if bought.note:
        line += f" - {bought.note[:200]}"
    return line


@command("purchases")
def purchases(ctx: Context, conn: psycopg.Connection) -> Reply:
    tr = ctx.tr
    page = store.member_purchases(conn, ctx.guild_id, ctx.user_id, ctx.page(), PURCHASES_PAGE_SIZE)
    title = "### 🧾 " + tr._("Your purchases")
    if not page.rows:
        card = ctx.card().header(title, tr._("You have not bought anything yet; /shop shows what there is."),
                                 avatar=ctx.avatar(ctx.user_id))  # fmt: skip
        return ctx.answer(card, ephemeral=True)
    now = conn.execute("SELECT now()").fetchone()[0]
    card = ctx.card().header(
        title, tr._("Page {page} of {pages}", page=tr.number(page.page), pages=tr.number(page.pages)),
        avatar=ctx.avatar(ctx.user_id),
    )  # fmt: skip
    card.separator().text("\n".join(_purchase_line(ctx, bought, now) for bought in page.rows))
    card.buttons(*page_buttons(tr, page.page, page.pages, "purchases"))
    return ctx.answer(card, ephemeral=True)


# -- admins ------------------------------------------------------------------------------------
@command("redemptions pending")
def redemptions_pending(ctx: Context, conn: psycopg.Connection) -> Reply:
    tr = ctx.tr
    page = store.list_redemptions(
        conn, ctx.guild_id, state="pending", page=ctx.page(), page_size=PENDING_PAGE_SIZE
    )
    title = "### 📦 " + tr._("Waiting to be handed over")
    if not page.rows:
        return ctx.answer(
            ctx.card().header(title, tr._("No purchases are waiting to be handed over.")), ephemeral=True
        )
    now = conn.execute("SELECT now()").fetchone()[0]
    card = ctx.card().header(
        title,
        tr.ngettext("{n} purchase", "{n} purchases", page.total) + " · "
        + tr._("Page {page} of {pages}", page=tr.number(page.page), pages=tr.number(page.pages)),
    )  # fmt: skip
    card.separator().text("\n".join(_purchase_line(ctx, bought, now, who=True) for bought in page.rows))
    card.separator(divider=False).text("-# " + tr._(
        "`/redemptions fulfil purchase:<#>` when handed over, `/redemptions refund` to give the points back."
    ))  # fmt: skip
    return ctx.answer(card, ephemeral=True)


def _purchase_id(ctx: Context) -> int:
    value = ctx.integer("purchase")
    if value is None or value < 1 or value >= 2**63:
        raise InvalidInput(ctx.tr._("Give the purchase number (#) from /redemptions pending."))
    return value


@command("redemptions fulfil", writes=True)
def redemptions_fulfil(ctx: Context, conn: psycopg.Connection) -> Reply:
    done = store.fulfil(conn, guild_id=ctx.guild_id, purchase_id=_purchase_id(ctx), note=ctx.text("note"),
                        actor_id=ctx.user_id, actor_name=ctx.actor_name)  # fmt: skip
    tr = ctx.tr
    card = ctx.card().header(
        "### ✅ " + tr._("Fulfilled"),
        tr._("Purchase #{id} (**{reward}**) is fulfilled; {who} gets a DM.", id=done.id, reward=done.reward_name,
             who=f"<@{done.user_id}>"),
        avatar=ctx.avatar(done.user_id),
    )  # fmt: skip
    return ctx.answer(card, ephemeral=True)


@command("redemptions refund", writes=True)
def redemptions_refund(ctx: Context, conn: psycopg.Connection) -> Reply:
    done = store.refund(conn, guild_id=ctx.guild_id, purchase_id=_purchase_id(ctx), reason=ctx.text("reason"),
                        actor_id=ctx.user_id, actor_name=ctx.actor_name, settings=ctx.settings)  # fmt: skip
    tr = ctx.tr
    card = ctx.card().header(
        "### ↩️ " + tr._("Refunded"),
        tr._("Purchase #{id} (**{reward}**) is refunded: {amount} back to {who}, who gets a DM.", id=done.id,
             reward=done.reward_name, amount=ctx.points(done.price), who=f"<@{done.user_id}>"),
        avatar=ctx.avatar(done.user_id),
    )  # fmt: skip
    return ctx.answer(card, ephemeral=True)
