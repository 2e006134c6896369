"""The reward store end to end: real signed HTTP requests to the local runtime (its in-process
worker queue and the Discord stand-in): /shop -> the Buy button -> the role granted on the
stand-in -> /purchases shows it; /buy's autocomplete answered with type 8 choices."""

from __future__ import annotations

import time

import psycopg
import pytest
from test_interactions_e2e import Stack, stack  # noqa: F401 - the local stack fixture, shared

from pointsbot.community import store
from pointsbot.discord import cards
from pointsbot.platform.db import Database
from pointsbot_local import discord_standin_rest
from pointsbot_local.simulate import autocomplete_payload, command_payload, component_payload, follow

pytestmark = [pytest.mark.e2e, pytest.mark.through_pgbouncer]

GUILD = "940000000000000001"
ADMIN = "840000000000000001"
MEMBER = "840000000000000901"


def _wait_for(check, timeout: float = 30.0):
    """Poll until `check()` is truthy (the in-process worker runs the role task), or give up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    return check()


def test_shop_buy_button_role_granted_and_purchases(stack: Stack, prepare_threshold: int) -> None:  # noqa: F811
    # Given a role the bot can grant, a role reward for 100 points, and a member with 250
    role = discord_standin_rest.state.add_role(GUILD, "Shop Supporter", position=2)
    stack.send(command_payload("points add", {"member": MEMBER, "amount": 250, "reason": "seed"},
                               user_id=ADMIN, admin=True, guild_id=GUILD))  # fmt: skip
    database = Database(stack.dsn, prepare_threshold=prepare_threshold)
    try:
        reward = database.run(store.create_reward, guild_id=int(GUILD), actor_id=int(ADMIN), actor_name="admin",
                              kind="role", name="Supporter role", price=100, role_id=role, duration_days=7)  # fmt: skip
    finally:
        database.close()
    # When the member opens /shop
    status, shop = stack.send(command_payload("shop", user_id=MEMBER, guild_id=GUILD))
    assert status == 200 and shop["type"] == 4 and shop["data"]["flags"] == 64 | cards.IS_COMPONENTS_V2
    assert "**Supporter role**" in cards.plain_text(shop["data"]["components"])
    buy = next(  # the Buy button beside the reward in the card
        section["accessory"]
        for section in shop["data"]["components"][0]["components"]
        if section["type"] == cards.SECTION and section["accessory"].get("custom_id") == f"buy:{reward.id}"
    )
    # and clicks its Buy button
    click = component_payload(buy["custom_id"], user_id=MEMBER, guild_id=GUILD)
    status, bought = stack.send(click)
    # Then the answer is a new private message, and the purchase is made
    assert status == 200 and bought["type"] == 4 and bought["data"]["flags"] == 64 | cards.IS_COMPONENTS_V2
    assert "You bought **Supporter role**" in cards.plain_text(bought["data"]["components"])
    assert "150 points" in cards.plain_text(bought["data"]["components"])
    # and the worker grants the role on "Discord"
    assert _wait_for(lambda: role in discord_standin_rest.state.member_roles(GUILD, MEMBER))

    # and /purchases shows it granted
    def purchases() -> str:
        answer = stack.send(command_payload("purchases", user_id=MEMBER, guild_id=GUILD))[1]
        return cards.plain_text(answer["data"]["components"])

    shown = _wait_for(lambda: (text := purchases()) and "on its way" not in text and text)
    assert "**Supporter role**" in shown and "granted" in shown and "until" in shown
    # Discord delivering the same click again gets the same answer and buys nothing more
    assert stack.send(click) == (200, bought)
    assert stack.sql("SELECT count(*) FROM purchases WHERE user_id = %s", (int(MEMBER),)) == [(1,)]


def test_buy_autocomplete_over_http(stack: Stack, prepare_threshold: int) -> None:  # noqa: F811
    database = Database(stack.dsn, prepare_threshold=prepare_threshold)
    try:
        for name in ("Sticker pack", "Sticker sheet", "Poster"):
            database.run(store.create_reward, guild_id=int(GUILD), actor_id=1, actor_name="admin", kind="item",
                         name=name, price=10)  # fmt: skip
    finally:
        database.close()
    status, answer = stack.send(autocomplete_payload("buy", {"reward": "stick"}, "reward", guild_id=GUILD))
    assert status == 200 and answer["type"] == 8
    assert [c["value"] for c in answer["data"]["choices"]] == ["Sticker pack", "Sticker sheet"]
    # Outside a server: no choices, never an error
    status, answer = stack.send(autocomplete_payload("buy", {"reward": "stick"}, "reward", guild_id=None))
    assert (status, answer) == (200, {"type": 8, "data": {"choices": []}})


def test_a_buy_click_on_a_slow_database_is_deferred_privately_and_finished_by_the_worker(
    stack: Stack,  # noqa: F811
    prepare_threshold: int,
) -> None:
    member = "840000000000000902"
    stack.send(command_payload("points add", {"member": member, "amount": 50, "reason": "seed"},
                               user_id=ADMIN, admin=True, guild_id=GUILD))  # fmt: skip
    database = Database(stack.dsn, prepare_threshold=prepare_threshold)
    try:
        reward = database.run(store.create_reward, guild_id=int(GUILD), actor_id=1, actor_name="admin", kind="item",
                              name="Slow mug", price=20, stock=3)  # fmt: skip
    finally:
        database.close()
    # Given the member's balance row held by another transaction (a slow database)
    locker = psycopg.connect(stack.dsn, prepare_threshold=prepare_threshold)
    locker.execute(
        "SELECT 1 FROM points WHERE guild_id = %s AND user_id = %s FOR UPDATE", (int(GUILD), int(member))
    )
    click = component_payload(f"buy:{reward.id}", user_id=member, guild_id=GUILD)
    try:
        # When the member clicks Buy: "thinking...", privately, as a new message
        status, answer = stack.send(click)
        assert (status, answer) == (200, {"type": 5, "data": {"flags": 64}})
    finally:
        locker.rollback()
        locker.close()
    # Then the worker makes the purchase once and edits that message with the answer
    final = follow(stack.discord, click["application_id"], click["token"], timeout=30)
    assert final is not None and "You bought **Slow mug**" in cards.plain_text(final.get("components"))
    assert stack.sql("SELECT count(*) FROM purchases WHERE user_id = %s", (int(member),)) == [(1,)]
