"""Every answer of every command, card or refusal, in English and German, against Discord's
request schemas: the interaction callback (the inline answer), the @original edit (a deferred
answer) and Components V2's own limits (40 components, 4000 characters of text, custom ids of
100), which the schema alone does not count across nesting."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from pointsbot import commands
from pointsbot.community import achievements, emails, seasons, store
from pointsbot.community import points as ledger
from pointsbot.discord import cards, interactions
from pointsbot.discord.interactions import Reply
from pointsbot.ledger import guilds
from pointsbot_local.simulate import (
    command_payload,
    component_payload,
    menu_payload,
    modal_payload,
    snowflake,
)

pytestmark = pytest.mark.integration

GUILD = "930000000000000001"
ADMIN = "830000000000000001"
MEMBER = "830000000000000002"
OTHER = "830000000000000003"
BOT = "830000000000000009"
LOCALES = ["en-US", "de"]


@pytest.fixture(scope="module")
def seeded(db, task_queue_module) -> None:
    settings = None
    for user, amount in ((MEMBER, 120), (OTHER, 45), (ADMIN, 1)):
        db.run(ledger.award, guild_id=int(GUILD), user_id=int(user), amount=amount, reason="seed", actor_id=1,
               source="system", idempotency_key=f"seed-{user}", settings=settings)  # fmt: skip
    for index in range(30):  # a long board, several pages
        db.run(ledger.award, guild_id=int(GUILD), user_id=840000000000000000 + index, amount=1000 - index,
               reason="seed", actor_id=1, source="system", idempotency_key=f"seed-board-{index}")  # fmt: skip
    db.run(achievements.create_definition, int(GUILD), name="First steps", criterion="balance_at_least",
           threshold=10, bonus_points=5, description="Reach 10 points")  # fmt: skip
    db.run(achievements.check_member, int(GUILD), int(MEMBER))
    db.run(emails.submit, int(GUILD), int(OTHER), "other@example.org")
    db.run(store.create_reward, guild_id=int(GUILD), actor_id=1, actor_name="admin", kind="item", name="Crown",
           price=10**6)  # fmt: skip
    # The store: a page and a half of rewards (every kind, limits, stock, a sold-out one)
    for index in range(7):
        kind = ("item", "code", "role")[index % 3]
        values = dict(name=f"Reward {index} " + "long name " * 8, price=10 + index, description="d" * 900)
        if kind == "role":
            values.update(role_id=700000000000000000 + index, duration_days=30)
        elif kind == "item":
            values.update(stock=0 if index == 3 else 5, per_member_limit=1)
        reward = db.run(store.create_reward, guild_id=int(GUILD), actor_id=1, actor_name="admin", kind=kind,
                        **values)  # fmt: skip
        if kind == "code":
            db.run(store.upload_codes, guild_id=int(GUILD), reward_id=reward.id, data="\n".join(f"C{index}-{n}" for n in range(4)),
                   actor_id=1, actor_name="admin")  # fmt: skip
    # Seasons: one ended (archived with standings), one running with a prize
    now = db.run(lambda conn: conn.execute("SELECT now()").fetchone()[0])
    ended = db.run(lambda conn: seasons.start_season(
        conn, int(GUILD), name="Autumn", starts_at=None, ends_at=now + timedelta(days=1), actor_id=1,
        actor_name="admin"))  # fmt: skip
    for user in (MEMBER, OTHER):
        db.run(ledger.award, guild_id=int(GUILD), user_id=int(user), amount=5, reason="in season", actor_id=1,
               source="system", idempotency_key=f"season-{user}")  # fmt: skip
    db.run(lambda conn: seasons.end_season_early(conn, int(GUILD), ended.id, actor_id=1, actor_name="admin"))
    assert seasons.run_end(db, ended.id).finished
    db.run(lambda conn: seasons.start_season(
        conn, int(GUILD), name="Winter", starts_at=None, ends_at=now + timedelta(days=30), actor_id=1,
        actor_name="admin", prize_places=3, prize_points=50))  # fmt: skip


@pytest.fixture(scope="module")
def task_queue_module():
    from pointsbot.delivery import tasks

    class Queue:
        def send(self, task: Any, delay_seconds: int = 0) -> None:
            pass

    tasks.set_task_queue(Queue())
    yield
    tasks.set_task_queue(None)


def _scenarios(locale: str) -> list[tuple[str, dict[str, Any]]]:
    member = dict(user_id=MEMBER, guild_id=GUILD, locale=locale, guild_locale=locale)
    admin = dict(user_id=ADMIN, guild_id=GUILD, admin=True, locale=locale, guild_locale=locale)
    message = {"id": snowflake(), "channel_id": "500000000000000001", "author_id": MEMBER}
    return [
        ("balance", command_payload("balance", **member)),
        ("balance of another", command_payload("balance", {"member": OTHER}, **member)),
        ("rank", command_payload("rank", **member)),
        ("leaderboard", command_payload("leaderboard", **member)),
        ("leaderboard page 3", command_payload("leaderboard", {"page": 3}, **member)),
        ("leaderboard next", component_payload("leaderboard:2:next", **member)),
        ("leaderboard me", component_payload("leaderboard:1:me", **member)),
        ("leaderboard last", component_payload("leaderboard:4:last", **member)),
        ("history", command_payload("history", **member)),
        ("history past the end", command_payload("history", {"page": 99}, **member)),
        ("achievements", command_payload("achievements", **member)),
        ("no achievements", command_payload("achievements", {"member": OTHER}, **member)),
        ("profile", command_payload("profile", **member)),
        ("profile of another", command_payload("profile", {"member": OTHER}, **member)),
        ("help", command_payload("help", **member)),
        ("help for an admin", command_payload("help", **admin)),
        ("email submit", command_payload("email submit", {"address": "ada@example.org"}, **member)),
        ("bad email", command_payload("email submit", {"address": "not an address"}, **member)),
        ("give", command_payload("give", {"member": OTHER, "amount": 2, "reason": "thanks"}, **member)),
        ("give too much", command_payload("give", {"member": OTHER, "amount": 10**6}, **member)),
        ("denied", command_payload("points add", {"member": OTHER, "amount": 5, "reason": "r"}, **member)),
        ("points add", command_payload("points add", {"member": OTHER, "amount": 5, "reason": "r"}, **admin)),
        (
            "points remove",
            command_payload(
                "points remove", {"member": OTHER, "amount": 1, "reason": "r", "silent": True}, **admin
            ),
        ),
        ("points set", command_payload("points set", {"member": OTHER, "amount": 7, "reason": "r"}, **admin)),
        ("emails pending", command_payload("emails pending", **admin)),
        ("emails approve", command_payload("emails approve", {"member": OTHER, "bonus": 3}, **admin)),
        ("member info", command_payload("member info", {"member": MEMBER}, **admin)),
        ("menu profile", menu_payload("Points profile", OTHER, **member)),
        ("menu give", menu_payload("Give points", OTHER, **member)),
        ("menu give to a bot", menu_payload("Give points", BOT, target_bot=True, **member)),
        ("menu award", menu_payload("Award points", MEMBER, **admin)),
        (
            "menu award message",
            menu_payload("Award points for this message", message["id"], message=message, **admin),
        ),
        ("modal give", modal_payload(f"give:{OTHER}", {"amount": "1", "reason": "for the help"}, **member)),
        ("modal give not a number", modal_payload(f"give:{OTHER}", {"amount": "lots"}, **member)),
        (
            "modal award",
            modal_payload(f"award:{MEMBER}", {"amount": "1,000", "reason": "great", "silent": True}, **admin),
        ),
        (
            "modal award by a member",
            modal_payload(f"award:{MEMBER}", {"amount": "5", "reason": "x"}, **member),
        ),
        ("shop", command_payload("shop", **member)),
        ("shop page 2", component_payload("shop:2:next", **member)),
        (
            "buy by name",
            command_payload(
                "buy", {"reward": f"Reward {LOCALES.index(locale) * 6} " + "long name " * 8}, **member
            ),
        ),
        ("buy code", command_payload("buy", {"reward": "Reward 1 " + "long name " * 8}, **member)),
        ("buy unknown", command_payload("buy", {"reward": "nothing like it"}, **member)),
        ("purchases", command_payload("purchases", **member)),
        ("no purchases", command_payload("purchases", **dict(member, user_id=OTHER))),
        ("redemptions pending", command_payload("redemptions pending", **admin)),
        ("season current", command_payload("season current", **member)),
        ("season standings", command_payload("season standings", **member)),
        ("season standings unknown", command_payload("season standings", {"season": "Nope"}, **member)),
        ("seasons rename", command_payload("seasons rename", {"name": f"Winter {locale}"}, **admin)),
        ("seasons timezone", command_payload("seasons timezone", {"zone": "Europe/Berlin"}, **admin)),
        ("unknown", component_payload("nothing:here", **member)),
    ]


def _problems(contract, reply: Reply) -> list[str]:
    answer = reply.as_response()
    problems = contract.errors(contract.request_schema("POST", "/interactions/1/token/callback"), answer)
    if reply.modal is None:
        edit = contract.request_schema("PATCH", "/webhooks/1/token/messages/@original")
        problems += [f"as edit: {e}" for e in contract.errors(edit, reply.as_edit())]
        data = answer["data"]
        assert data["allowed_mentions"] == {"parse": []}  # nobody is ever pinged
        if reply.v2:
            assert "content" not in data and data["flags"] & cards.IS_COMPONENTS_V2
            assert cards.count_components(data["components"]) <= cards.MAX_COMPONENTS
            assert sum(len(t) for t in _texts(data["components"])) <= cards.MAX_TEXT
            ids = _custom_ids(data["components"])
            assert len(ids) == len(set(ids)) and all(len(i) <= 100 for i in ids)
    else:
        assert cards.count_components(reply.modal["components"]) <= cards.MAX_COMPONENTS
    return problems


def _texts(components: Any) -> list[str]:
    found = []
    for item in components or ():
        if item.get("type") == cards.TEXT_DISPLAY:
            found.append(item["content"])
        found += _texts(item.get("components"))
    return found


def _custom_ids(components: Any) -> list[str]:
    found = []
    for item in components or ():
        if "custom_id" in item:
            found.append(item["custom_id"])
        found += _custom_ids(item.get("components"))
    return found


@pytest.mark.parametrize("locale", LOCALES)
def test_every_answer_conforms(db, settings, seeded, contract, locale):
    results = {}
    autumn = db.fetchone("SELECT id FROM seasons WHERE guild_id = %s AND name = 'Autumn'", (int(GUILD),))[0]
    clicks = [
        ("standings page button", component_payload(f"standings:{autumn}:1:prev", user_id=MEMBER, guild_id=GUILD,
                                                    locale=locale, guild_locale=locale)),
        ("purchases page button", component_payload("purchases:1:prev", user_id=MEMBER, guild_id=GUILD,
                                                     locale=locale, guild_locale=locale)),
    ]  # fmt: skip
    for name, raw in _scenarios(locale) + clicks:
        outcome = commands.execute(db, interactions.parse(raw), settings)
        results[name] = outcome
        assert _problems(contract, outcome.reply) == [], name
    # The scenarios reach what they are named for
    assert results["denied"].status == "denied" and results["bad email"].status == "refused"
    assert results["menu give"].reply.modal is not None and results["menu award message"].reply.modal
    assert results["menu give to a bot"].status == "refused"
    assert results["modal give"].status == "ok" and results["modal award"].status == "ok"
    assert results["modal give not a number"].status == "refused"
    assert results["modal award by a member"].status == "denied"
    assert all(results[n].reply.v2 for n in ("balance", "leaderboard", "profile", "help", "points add"))
    # The store and seasons answer in cards too, and reach what they are named for
    cards_of = ("shop", "shop page 2", "buy by name", "buy code", "purchases", "no purchases",
                "redemptions pending", "season current", "season standings", "seasons rename", "seasons timezone")  # fmt: skip
    assert [
        (n, results[n].reply.content)
        for n in cards_of
        if not (results[n].status == "ok" and results[n].reply.v2)
    ] == []
    for name in ("standings page button", "purchases page button"):  # edit their message in place
        assert results[name].status == "ok" and results[name].reply.update and results[name].reply.v2, name
    assert (
        results["buy unknown"].status == "refused" and results["season standings unknown"].status == "refused"
    )
    shop = results["shop"].reply.components[0]["components"]
    buys = [
        s["accessory"]["custom_id"]
        for s in shop
        if s["type"] == cards.SECTION and s["accessory"]["type"] == 2
    ]
    assert len(buys) == 5 and all(b.startswith("buy:") for b in buys)


def test_the_german_answers_are_german(db, settings, seeded):
    raw = command_payload("balance", user_id=MEMBER, guild_id=GUILD, locale="de", guild_locale="de")
    assert "Du hast **" in commands.execute(db, interactions.parse(raw), settings).reply.content
    board = command_payload("leaderboard", user_id=MEMBER, guild_id=GUILD, locale="en-US", guild_locale="de")
    text = commands.execute(db, interactions.parse(board), settings).reply.content
    # A public answer speaks the server's language; numbers grouped the German way
    assert "Bestenliste" in text and "1.000 Punkte" in text
    # A refusal of the store with values in it is German too, its amounts the German way
    poor = command_payload("buy", {"reward": "Crown"}, user_id=OTHER, guild_id=GUILD, locale="de")
    refused = commands.execute(db, interactions.parse(poor), settings)
    assert refused.status == "refused" and "**Crown** kostet **1.000.000 Punkte**" in refused.reply.content
    sold_out = command_payload("buy", {"reward": "Reward 3 " + "long name " * 8}, user_id=OTHER, guild_id=GUILD,
                               locale="de")  # fmt: skip
    assert "ist ausverkauft" in commands.execute(db, interactions.parse(sold_out), settings).reply.content
    private = command_payload("history", user_id=MEMBER, guild_id=GUILD, locale="de", guild_locale="en-US")
    assert "Dein Verlauf" in commands.execute(db, interactions.parse(private), settings).reply.content


def test_a_card_past_discords_limits_is_caught(contract):
    # The checks can fail: a card with 41 components, a TextDisplay over 4000 characters
    card = cards.Card()
    for _ in range(20):
        card.text("x").separator()
    with pytest.raises(cards.CardTooLarge):
        card.build()
    components, _ = cards.Card().text("y" * 5000).build()
    assert sum(len(t) for t in _texts(components)) <= cards.MAX_TEXT  # cut, not refused
    too_long = {"type": 4, "data": {"flags": 1 << 15, "components": [
        {"type": 17, "components": [{"type": 10, "content": "y" * 4001}]}]}}  # fmt: skip
    assert contract.errors(contract.request_schema("POST", "/interactions/1/token/callback"), too_long)


def test_avatars_follow_discords_cdn_rules():
    # A user on the new username system without an avatar: (id >> 22) % 6
    assert (
        cards.avatar_url("80351110224678912")
        == f"{cards.CDN}/embed/avatars/{(80351110224678912 >> 22) % 6}.png"
    )
    # A legacy discriminator: discriminator % 5
    assert cards.avatar_url("80351110224678912", None, "1337") == f"{cards.CDN}/embed/avatars/2.png"
    own = "a" * 32
    assert cards.avatar_url("1", own) == f"{cards.CDN}/avatars/1/{own}.png?size=128"
    assert cards.avatar_url("1", own, guild_id="9", member_avatar="b" * 32).startswith(
        f"{cards.CDN}/guilds/9/users/1/"
    )
    # Something that is not Discord's hash shape never reaches a URL
    assert cards.avatar_url("1", "../../x") == cards.default_avatar_url("1")


def test_the_card_shows_the_avatar_discord_sent(db, settings, seeded):
    raw = command_payload("balance", user_id=MEMBER, guild_id=GUILD)
    raw["member"]["user"]["avatar"] = "c" * 32
    reply = commands.execute(db, interactions.parse(raw), settings).reply
    section = reply.components[0]["components"][0]
    assert section["type"] == cards.SECTION
    assert section["accessory"]["media"]["url"] == f"{cards.CDN}/avatars/{MEMBER}/{'c' * 32}.png?size=128"
    accent = db.run(guilds.guild_policy, settings, int(GUILD)).accent_color
    assert reply.components[0]["accent_color"] == accent
    assert json.loads(json.dumps(reply.to_json())) == reply.to_json()


def test_dms_speak_the_servers_language(db, settings, sql, task_queue_module):
    # Given a server whose members use Discord in German (guild_locale "de")
    guild, giver, receiver = "930000000000000077", "830000000000000071", "830000000000000072"
    db.run(ledger.award, guild_id=int(guild), user_id=int(giver), amount=10, reason="seed", actor_id=1,
           source="system", idempotency_key="seed-de-giver")  # fmt: skip
    db.run(lambda conn: guilds.ensure_guild(conn, int(receiver) and int(guild)))
    db.run(ledger.award, guild_id=int(guild), user_id=int(receiver), amount=1, reason="seed", actor_id=1,
           source="system", idempotency_key="seed-de-receiver")  # fmt: skip
    # When a member asks in English and gives points
    raw = command_payload("give", {"member": receiver, "amount": 2000 // 1000, "reason": "danke"}, user_id=giver,
                          guild_id=guild, locale="en-US", guild_locale="de")  # fmt: skip
    assert commands.execute(db, interactions.parse(raw), settings).status == "ok"
    # Then the receiver's DM is in the server's language, numbers and all
    dm = sql("SELECT content FROM direct_messages WHERE guild_id = %s AND user_id = %s ORDER BY id DESC LIMIT 1",
             (int(guild), int(receiver)))[0][0]  # fmt: skip
    assert (
        dm
        == f"<@{giver}> hat dir **2 Punkte** geschenkt.\nGrund: danke\nDein Punktestand ist jetzt **3 Punkte**."
    )
