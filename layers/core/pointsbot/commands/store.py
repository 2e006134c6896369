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
from ..discord.interactions import Reply
from ..platform.errors import InvalidInput
from ..platform.wording import count
from .context import Context, autocomplete, command

SHOP_PAGE_SIZE = 5  # one row of Buy buttons (Discord allows 5 buttons in a row)
PURCHASES_PAGE_SIZE = 10
PENDING_PAGE_SIZE = 10
MAX_LABEL = 80  # Discord's limit for a button's label


def _when(moment: Any) -> str:
    return f"<t:{int(moment.timestamp())}:R>"


def shop_buttons(page: store.ShopPage) -> tuple[dict[str, Any], ...]:
    """A Buy button per reward ("buy:<reward id>"), and Previous/Next ("shop:<page>:prev|next")
    when there is more than one page."""
    rows: list[dict[str, Any]] = []
    if page.rows:
        buttons = []
        for row in page.rows:
            label = f"Buy {row.reward.name}"
            buttons.append({
                "type": 2, "style": 1, "label": label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…",
                "custom_id": f"buy:{row.reward.id}",
                "disabled": row.reward.stock == 0 or row.left_for_member == 0,
            })  # fmt: skip
        rows.append({"type": 1, "components": buttons})
    if page.pages > 1:
        rows.append({
            "type": 1,
            "components": [
                {"type": 2, "style": 2, "label": "Previous", "custom_id": f"shop:{max(page.page - 1, 1)}:prev",
                 "disabled": page.page <= 1},
                {"type": 2, "style": 2, "label": "Next", "custom_id": f"shop:{min(page.page + 1, page.pages)}:next",
                 "disabled": page.page >= page.pages},
            ],
        })  # fmt: skip
    return tuple(rows)


@command("shop")
def shop(ctx: Context, conn: psycopg.Connection) -> Reply:
    page = store.shop_page(conn, ctx.guild_id, ctx.user_id, ctx.page(), SHOP_PAGE_SIZE)
    if not page.rows:
        return Reply("There is nothing in the shop right now.", ephemeral=True)
    balance = ledger.balance(conn, ctx.guild_id, ctx.user_id)
    lines = [f"**Shop** (page {page.page} of {page.pages}) - you have {ctx.points(balance)}"]
    for row in page.rows:
        reward = row.reward
        facts = [ctx.points(reward.price)]
        if reward.stock is not None:
            facts.append("sold out" if reward.stock == 0 else f"{reward.stock:,} left")
        if row.left_for_member is not None:
            facts.append(
                "you have bought your limit"
                if row.left_for_member == 0
                else f"you may buy {count(row.left_for_member, 'more', 'more')}"
            )
        if reward.kind == "role" and reward.role_id:
            days = f" for {count(reward.duration_days, 'day')}" if reward.duration_days else ""
            facts.append(f"role <@&{reward.role_id}>{days}")
        if reward.ends_at is not None:
            facts.append(f"until {_when(reward.ends_at)}")
        lines.append(f"- **{reward.name}**: " + ", ".join(facts))
        if reward.description:
            lines.append(f"  {reward.description[:200]}")
    return Reply("\n".join(lines), ephemeral=True, components=shop_buttons(page))


def _bought_text(ctx: Context, result: store.PurchaseResult) -> str:
    bought = result.purchase
    text = f"You bought **{bought.reward_name}** for {ctx.points(bought.price)}."
    if bought.kind == "role":
        until = f" until <t:{int(bought.expires_at.timestamp())}:f>" if bought.expires_at else ""
        text += f" The role <@&{bought.role_id}> is on its way{until}."
    elif bought.kind == "item":
        text += f" An admin will hand it over; you will get a DM then (purchase #{bought.id})."
    elif bought.kind == "code" and bought.code:
        text += f" Your code (also sent by DM):\n```\n{bought.code}\n```"
    return text + f"\nYour balance is now {ctx.points(result.balance)}."


@command("buy", writes=True)
def buy(ctx: Context, conn: psycopg.Connection) -> Reply:
    reward_id = ctx.options.get("reward_id")  # from a Buy button (dispatch checked its digits)
    if reward_id is None:
        name = ctx.text("reward").strip()
        reward = store.reward_by_name(conn, ctx.guild_id, name) if name else None
        if reward is None:
            raise InvalidInput(f"There is no reward called {name[:100]!r} here; /shop lists them.")
        reward_id = reward.id
    result = store.purchase(
        conn, guild_id=ctx.guild_id, user_id=ctx.user_id, reward_id=reward_id,
        interaction_id=int(ctx.interaction.id), actor_name=ctx.actor_name, settings=ctx.settings, policy=ctx.policy,
    )  # fmt: skip
    return Reply(_bought_text(ctx, result), ephemeral=True)


@autocomplete("buy")
def buy_choices(conn: psycopg.Connection, guild_id: int, user_id: int, typed: str) -> list[tuple[str, str]]:
    return [(f"{r.name} ({r.price:,})", r.name) for r in store.search_rewards(conn, guild_id, typed)]


def _purchase_line(ctx: Context, bought: store.Purchase, now: Any, *, who: bool = False) -> str:
    member = f" <@{bought.user_id}>" if who else ""
    line = (
        f"`#{bought.id}`{member} **{bought.reward_name}** ({bought.kind}, {ctx.policy.points(bought.price)}): "
        f"{store.shown_state(bought, now)}, {_when(bought.created_at)}"
    )
    if bought.expires_at is not None and bought.state == "granted" and bought.expires_at > now:
        line += f", until <t:{int(bought.expires_at.timestamp())}:f>"
    if bought.code and not who:
        line += f", code `{bought.code}`"
    if bought.note:
        line += f" - {bought.note[:200]}"
    return line


@command("purchases")
def purchases(ctx: Context, conn: psycopg.Connection) -> Reply:
    page = store.member_purchases(conn, ctx.guild_id, ctx.user_id, ctx.page(), PURCHASES_PAGE_SIZE)
    if not page.rows:
        return Reply("You have not bought anything yet; /shop shows what there is.", ephemeral=True)
    now = conn.execute("SELECT now()").fetchone()[0]
    lines = [f"**Your purchases** (page {page.page} of {page.pages})"]
    lines += [_purchase_line(ctx, bought, now) for bought in page.rows]
    return Reply("\n".join(lines), ephemeral=True)


# -- admins ------------------------------------------------------------------------------------
@command("redemptions pending")
def redemptions_pending(ctx: Context, conn: psycopg.Connection) -> Reply:
    page = store.list_redemptions(
        conn, ctx.guild_id, state="pending", page=ctx.page(), page_size=PENDING_PAGE_SIZE
    )
    if not page.rows:
        return Reply("No purchases are waiting to be handed over.", ephemeral=True)
    now = conn.execute("SELECT now()").fetchone()[0]
    lines = [f"**Waiting to be handed over**: {page.total:,} (page {page.page} of {page.pages})"]
    lines += [_purchase_line(ctx, bought, now, who=True) for bought in page.rows]
    lines.append(
        "`/redemptions fulfil purchase:<#>` when handed over, `/redemptions refund` to give the points back."
    )
    return Reply("\n".join(lines), ephemeral=True)


def _purchase_id(ctx: Context) -> int:
    value = ctx.integer("purchase")
    if value is None or value < 1 or value >= 2**63:
        raise InvalidInput("Give the purchase number (#) from /redemptions pending.")
    return value


@command("redemptions fulfil", writes=True)
def redemptions_fulfil(ctx: Context, conn: psycopg.Connection) -> Reply:
    done = store.fulfil(conn, guild_id=ctx.guild_id, purchase_id=_purchase_id(ctx), note=ctx.text("note"),
                        actor_id=ctx.user_id, actor_name=ctx.actor_name)  # fmt: skip
    return Reply(f"Purchase `#{done.id}` (**{done.reward_name}**) is fulfilled; <@{done.user_id}> gets a DM.",
                 ephemeral=True)  # fmt: skip


@command("redemptions refund", writes=True)
def redemptions_refund(ctx: Context, conn: psycopg.Connection) -> Reply:
    done = store.refund(conn, guild_id=ctx.guild_id, purchase_id=_purchase_id(ctx), reason=ctx.text("reason"),
                        actor_id=ctx.user_id, actor_name=ctx.actor_name, settings=ctx.settings)  # fmt: skip
    return Reply(
        f"Purchase `#{done.id}` (**{done.reward_name}**) is refunded: {ctx.points(done.price)} back to "
        f"<@{done.user_id}>, who gets a DM.",
        ephemeral=True,
    )
