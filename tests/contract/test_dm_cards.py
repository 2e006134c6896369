"""DMs as cards: what the worker sends to POST /channels/{dm channel}/messages for every kind
of DM (points, achievement, store purchase with its code, email review, season prize, an
admin's message) is a Components V2 card naming the server it comes from, valid by Discord's
spec, accepted by the stand-in, and still sent exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from pointsbot import ledger
from pointsbot.community import achievements, store
from pointsbot.community import points as community_points
from pointsbot.delivery import outbox, tasks
from pointsbot.discord import cards
from pointsbot.discord.rest import DiscordClient
from pointsbot.ledger.guilds import ensure_guild
from pointsbot.platform.db import Database
from pointsbot_local import discord_standin_rest
from pointsbot_local.discord_standin import standin

pytestmark = pytest.mark.integration

GUILD = 950000000000000001
BARE_GUILD = 950000000000000002  # a server whose name the bot never learnt
MEMBER = 850000000000000001
ICON = "icons/950000000000000001/" + "a1" * 16
MESSAGES = "/channels/{channel_id}/messages"


@pytest.fixture
def db(make_database, prepare_threshold) -> Iterator[Database]:
    """A database of this test's own: delivery takes every due DM in it."""
    database = Database(make_database(), pooled=True, pool_max=5, prepare_threshold=prepare_threshold)
    yield database
    database.close()


@pytest.fixture
def fast(settings):
    return settings.with_overrides(dm_rate_per_second=500, dm_deliver_budget_s=20)


@pytest.fixture(autouse=True)
def quiet_queue() -> Iterator[None]:
    class Queue:
        def send(self, task, delay_seconds: int = 0) -> None:
            pass

    tasks.set_task_queue(Queue())
    yield
    tasks.set_task_queue(None)


def _seed(db: Database, settings) -> None:
    def guilds(conn) -> None:
        ensure_guild(conn, GUILD, "**Café** _club_ <@1>")  # markdown and a mention in a name
        conn.execute(
            'UPDATE guilds SET icon = %s, settings = settings || \'{"locale": "de", "accent_color": 15844367}\' '
            "WHERE guild_id = %s",
            (ICON, GUILD),
        )
        ensure_guild(conn, BARE_GUILD, None)
        for guild in (GUILD, BARE_GUILD):
            ledger.ensure_member(conn, guild, MEMBER)

    db.run(guilds)
    # Real producers: a change of balance, the achievement it earns, a code bought in the store
    db.run(achievements.create_definition, GUILD, name="First steps", criterion="balance_at_least", threshold=10,
           bonus_points=5, description="Reach 10 points")  # fmt: skip
    db.run(community_points.award, guild_id=GUILD, user_id=MEMBER, amount=120, reason="welcome", actor_id=1,
           source="slash", idempotency_key="dm-cards-award", settings=settings)  # fmt: skip
    reward = db.run(store.create_reward, guild_id=GUILD, actor_id=1, actor_name="admin", kind="code",
                    name="Gift card", price=20)  # fmt: skip
    db.run(
        store.upload_codes, guild_id=GUILD, reward_id=reward.id, data="GIFT-123", actor_id=1, actor_name="a"
    )
    db.run(store.purchase, guild_id=GUILD, user_id=MEMBER, reward_id=reward.id, interaction_id=4242,
           actor_name="member", settings=settings)  # fmt: skip
    # The rest as their producers word them (their own tests cover the producing)
    for reason, text in (("email", "Your email was approved."), ("season", "You placed **#1** in Autumn."),
                         ("admin", "Welcome aboard!")):  # fmt: skip
        assert db.run(outbox.enqueue_dm, guild_id=GUILD, user_id=MEMBER, content=text, reason=reason)
    assert db.run(outbox.enqueue_dm, guild_id=BARE_GUILD, user_id=MEMBER, content="Hello", reason="admin")


def test_every_kind_of_dm_is_a_card_naming_its_server(db, settings, fast, standin_url, contract):
    discord_standin_rest.reset()
    client = DiscordClient(standin_url, "test-token", max_retry_wait=5.0)
    _seed(db, settings)
    reasons = [r for (r,) in db.fetchall("SELECT reason FROM direct_messages ORDER BY id")]
    assert set(reasons) == {"points", "achievement", "store", "email", "season", "admin"}

    report = outbox.deliver_due(db, client, settings=fast)

    assert report.sent == len(reasons) and report.failed == 0
    # Every request and answer as Discord's spec describes them
    exchanges = standin.sent()
    problems = {f"{e.method} {e.path} -> {e.status}": contract.check_exchange(e) for e in exchanges}
    assert {k: v for k, v in problems.items() if v} == {}
    sent = [e.body for e in standin.sent("POST", MESSAGES)]
    assert len(sent) == len(reasons)
    for body in sent:
        assert body["flags"] == cards.IS_COMPONENTS_V2 and "content" not in body
        assert body["allowed_mentions"] == {"parse": []} and body["enforce_nonce"] is True
        assert cards.count_components(body["components"]) <= cards.MAX_COMPONENTS
    named, bare = sent[:-1], sent[-1]
    for body in named:
        container = body["components"][0]
        assert container["accent_color"] == 15844367  # the server's colour
        header = container["components"][0]
        assert header["type"] == cards.SECTION and header["accessory"]["media"]["url"].startswith(
            f"https://cdn.discordapp.com/{ICON}.png"
        )
        text = cards.plain_text(body["components"])
        # In the server's language, its name shown as written (escaped, so never a mention or bold)
        assert "Vom Server **\\*\\*Café\\*\\* \\_club\\_ \\<\\@1\\>**" in text, text
    texts = {b["nonce"]: cards.plain_text(b["components"]) for b in named}
    # the code reaches the buyer, in the server's language as every store DM
    assert any("GIFT-123" in t and "Danke für deinen Kauf von **Gift card**" in t for t in texts.values())
    assert any("### 🎖️ Erfolg" in t for t in texts.values()) and any(
        "### 💰 Punkte" in t for t in texts.values()
    )
    # A server the bot has no name for: said so, in English (no language known), default colour
    assert "From a server you share with this bot" in cards.plain_text(bare["components"])
    assert bare["components"][0]["accent_color"] == cards.DEFAULT_ACCENT

    # Exactly once: a second delivery sends nothing, and the same body again (an answer lost
    # on the way back) is dropped by its nonce, the first message returned
    assert outbox.deliver_due(db, client, settings=fast).sent == 0
    channel = discord_standin_rest.state.dm_channels[str(MEMBER)]
    again = client.send_message(channel, sent[0])
    assert len(discord_standin_rest.state.dms_to(str(MEMBER))) == len(reasons)
    assert again["id"] == discord_standin_rest.state.dms_to(str(MEMBER))[0]["id"]


def test_the_stand_in_refuses_content_beside_a_v2_card(client):
    channel = client.create_dm("222")
    components, _ = cards.Card().text("hi").build()
    from pointsbot.discord.rest import DiscordError

    with pytest.raises(DiscordError) as refused:
        client.send_message(channel, {"content": "also", "flags": cards.IS_COMPONENTS_V2,
                                      "components": list(components)})  # fmt: skip
    assert refused.value.status == 400 and refused.value.code == 50035
    message = client.send_message(channel, {"flags": cards.IS_COMPONENTS_V2, "components": list(components)})
    assert message["content"] == "" and message["flags"] == cards.IS_COMPONENTS_V2


def test_a_dm_body_is_built_from_the_claimed_row_alone():
    dm = outbox.ClaimedDM(1, GUILD, MEMBER, "x" * 2000, "store", 1, datetime.now(UTC), None, None,
                          {"name": "n" * 100, "icon": "not a path", "accent": "red", "locale": "xx"})  # fmt: skip
    body = outbox.dm_body(dm)
    header = body["components"][0]["components"][0]
    assert header["type"] == cards.TEXT_DISPLAY  # no icon that Discord's CDN would have: no thumbnail
    assert body["components"][0]["accent_color"] == cards.DEFAULT_ACCENT
    assert body["nonce"] == "pbdm1"
