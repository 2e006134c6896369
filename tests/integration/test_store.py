"""The reward store on a real Postgres: rewards and their checks, the purchase as one
transaction, refusals that write nothing, codes, fulfilment, refunds, the commands."""

from __future__ import annotations

import pytest
from _command_helpers import GUILD_A, GUILD_B, admin, click, new_member, run, seed, use_queue
from _ledger_checks import table_counts, violations

from pointsbot.community import store
from pointsbot.discord import cards, interactions
from pointsbot.platform.errors import DomainError, InvalidInput
from pointsbot_local.simulate import autocomplete_payload, snowflake

pytestmark = [pytest.mark.integration]

G = int(GUILD_A)


@pytest.fixture(autouse=True)
def queue():
    yield from use_queue()


def _reward(db, kind="item", guild=G, **values):
    values.setdefault("name", f"Reward {snowflake()}")
    values.setdefault("price", 100)
    if kind == "role":
        values.setdefault("role_id", "700000000000000001")
    return db.run(store.create_reward, guild_id=guild, actor_id=1, actor_name="admin", kind=kind, **values)


def _buy(db, settings, user, reward_id, interaction_id=None, guild=G):
    return db.run(
        store.purchase, guild_id=guild, user_id=int(user), reward_id=reward_id,
        interaction_id=int(interaction_id or snowflake()), actor_name="buyer", settings=settings,
    )  # fmt: skip


# -- rewards: bad input is a plain message and writes nothing ------------------------------------
@pytest.mark.parametrize(
    ("kind", "values", "words"),
    [
        ("item", {"price": 0}, "above zero"),
        ("item", {"price": -5}, "above zero"),
        ("item", {"price": "ten"}, "whole number"),
        ("item", {"price": 100, "stock": -1}, "at least 0"),
        ("item", {"price": 100, "per_member_limit": 0}, "above zero"),
        ("item", {"price": 100, "name": "  "}, "needs a name"),
        ("item", {"price": 100, "name": "x" * 101}, "too long"),
        ("item", {"price": 100, "name": "a\u202eb"}, "control character"),
        ("item", {"price": 100, "starts_at": "2026-12-24", "ends_at": "2026-12-01"}, "after the start"),
        ("item", {"price": 100, "starts_at": "soon"}, "date and time"),
        ("item", {"price": 100, "role_id": "700000000000000001"}, "Only a role reward"),
        ("role", {"price": 100, "role_id": "-3"}, "role id"),
        ("role", {"price": 100, "role_id": "7", "duration_days": 0}, "above zero"),
        ("code", {"price": 100, "stock": 5}, "upload codes"),
        ("gift", {"price": 100}, "role, item or code"),
    ],
)
def test_bad_reward_input_is_a_plain_message_and_writes_nothing(db, sql, kind, values, words):
    # Given the tables as they are
    before = _all_counts(sql)
    values.setdefault("name", "Bad")
    # When an admin creates a reward with bad input
    with pytest.raises(InvalidInput) as refused:
        db.run(store.create_reward, guild_id=G, actor_id=1, actor_name="admin", kind=kind, **values)
    # Then the message says what is wrong, and nothing was written
    assert words in refused.value.message
    assert _all_counts(sql) == before


def _all_counts(sql):
    tables = ("rewards", "purchases", "reward_codes", "admin_audit", "transactions", "operations", "guilds")
    return {t: sql(f"SELECT count(*) FROM {t}")[0][0] for t in tables}


def test_names_are_unique_per_guild_whatever_the_case(db, sql):
    _reward(db, name="Golden Ticket")
    with pytest.raises(InvalidInput, match="already a reward"):
        _reward(db, name="golden  ticket")
    # another guild may have its own
    _reward(db, guild=int(GUILD_B), name="Golden Ticket")


def test_create_edit_disable_are_audited(db, sql):
    reward = _reward(db, name="Sticker", price=50, stock=3)
    edited = db.run(store.edit_reward, guild_id=G, reward_id=reward.id, actor_id=1, actor_name="admin",
                    changes={"price": "75", "description": "A shiny sticker"})  # fmt: skip
    assert (edited.price, edited.description, edited.stock) == (75, "A shiny sticker", 3)
    off = db.run(
        store.set_enabled, guild_id=G, reward_id=reward.id, enabled=False, actor_id=1, actor_name="admin"
    )
    assert off.enabled is False
    actions = [
        r[0]
        for r in sql("SELECT action FROM admin_audit WHERE target = %s ORDER BY id", (f"reward:{reward.id}",))
    ]
    assert actions == ["reward.create", "reward.edit", "reward.edit"]
    # a bad edit writes nothing
    with pytest.raises(InvalidInput):
        db.run(store.edit_reward, guild_id=G, reward_id=reward.id, actor_id=1, actor_name="admin",
               changes={"stock": -2})  # fmt: skip
    assert db.run(store.get_reward, G, reward.id).stock == 3


# -- codes uploads -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"\n  \n", "empty"),
        (b"\xff\xfeA\x00B\x00", "not UTF-8"),
        (b"x" * (store.MAX_CODES_BYTES + 1), "too big"),
        (b"AAA\nBBB\nAAA\n", "twice"),
        (("C" * 201).encode(), "too long"),
        ("\n".join(f"c{i}" for i in range(store.MAX_CODES + 1)).encode(), "at most"),
        (b"ok\nbad\x1bcode\n", "control character"),
    ],
)
def test_bad_codes_uploads_write_nothing(db, sql, data, words):
    reward = _reward(db, "code")
    before = _all_counts(sql)
    with pytest.raises(InvalidInput) as refused:
        db.run(store.upload_codes, guild_id=G, reward_id=reward.id, data=data, actor_id=1, actor_name="admin")
    assert words in refused.value.message
    assert _all_counts(sql) == before
    assert db.run(store.get_reward, G, reward.id).stock == 0


def test_codes_already_uploaded_refuse_the_whole_upload(db, sql):
    first, second = _reward(db, "code"), _reward(db, "code")
    added = db.run(store.upload_codes, guild_id=G, reward_id=first.id, data=b"K-1\r\nK-2\n\n", actor_id=1,
                   actor_name="admin")  # fmt: skip
    assert added == 2 and db.run(store.get_reward, G, first.id).stock == 2
    with pytest.raises(InvalidInput, match="uploaded before"):
        db.run(
            store.upload_codes, guild_id=G, reward_id=second.id, data="K-3\nK-2", actor_id=1, actor_name="a"
        )
    assert sql("SELECT count(*) FROM reward_codes WHERE reward_id = %s", (second.id,))[0][0] == 0


# -- the purchase ----------------------------------------------------------------------------------
def test_an_item_purchase_is_one_entry_of_its_own_kind_and_one_unit_of_stock(db, settings, sql):
    member = new_member()
    seed(db, settings, GUILD_A, member, 500)
    reward = _reward(db, "item", price=120, stock=2)
    result = _buy(db, settings, member, reward.id)
    assert result.balance == 380 and not result.replayed
    bought = result.purchase
    assert (bought.state, bought.price, bought.kind) == ("pending", 120, "item")
    entry = sql("SELECT kind, source, amount, actor_id FROM transactions WHERE id = %s", (bought.entry_id,))[
        0
    ]
    assert entry == ("purchase", "purchase", -120, int(member))
    assert db.run(store.get_reward, G, reward.id).stock == 1
    with db.connection() as conn:
        assert violations(conn, G) == []


def test_the_same_interaction_twice_buys_once(db, settings, sql):
    member = new_member()
    seed(db, settings, GUILD_A, member, 500)
    reward = _reward(db, "item", price=100, stock=5)
    interaction = snowflake()
    first = _buy(db, settings, member, reward.id, interaction)
    second = _buy(db, settings, member, reward.id, interaction)
    assert second.replayed and second.purchase.id == first.purchase.id and second.balance == 400
    assert sql("SELECT count(*) FROM purchases WHERE user_id = %s", (int(member),))[0][0] == 1
    assert db.run(store.get_reward, G, reward.id).stock == 4


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        ({"price": 1000}, "costs"),
        ({"stock": 0}, "sold out"),
        ({"enabled": False}, "not on sale"),
        ({"starts_at": "2999-01-01T00:00"}, "goes on sale"),
        ({"ends_at": "2001-01-01T00:00"}, "no longer on sale"),
    ],
)
def test_refused_purchases_are_plain_and_write_nothing(db, settings, sql, setup, words):
    member = new_member()
    seed(db, settings, GUILD_A, member, 500)
    reward = _reward(db, "item", **{"price": 100, **setup})
    before = table_counts_of(db)
    with pytest.raises(DomainError) as refused:
        _buy(db, settings, member, reward.id)
    assert words in refused.value.message
    assert table_counts_of(db) == before


def table_counts_of(db):
    with db.connection() as conn:
        return table_counts(conn)


def test_the_per_member_limit(db, settings):
    member = new_member()
    seed(db, settings, GUILD_A, member, 1000)
    reward = _reward(db, "item", price=10, per_member_limit=2)
    _buy(db, settings, member, reward.id)
    _buy(db, settings, member, reward.id)
    with pytest.raises(store.PurchaseLimitReached, match=r"as often as one member may \(2 of 2\)"):
        _buy(db, settings, member, reward.id)
    # a refunded purchase does not count against it
    first = db.run(store.list_redemptions, G, user_id=int(member)).rows[-1]
    db.run(
        store.refund,
        guild_id=G,
        purchase_id=first.id,
        reason="changed my mind",
        actor_id=1,
        actor_name="admin",
    )
    _buy(db, settings, member, reward.id)


def test_a_code_purchase_hands_out_one_code_and_queues_its_dm(db, settings, sql):
    member = new_member()
    seed(db, settings, GUILD_A, member, 500)
    reward = _reward(db, "code", price=50)
    db.run(
        store.upload_codes, guild_id=G, reward_id=reward.id, data="GIFT-1\nGIFT-2", actor_id=1, actor_name="a"
    )
    interaction = snowflake()
    bought = _buy(db, settings, member, reward.id, interaction).purchase
    assert bought.code == "GIFT-1" and bought.state == "granted"
    dms = sql(
        "SELECT content, reason, dedupe_key FROM direct_messages WHERE user_id = %s AND reason = 'store'",
        (int(member),),
    )
    assert len(dms) == 1 and "GIFT-1" in dms[0][0] and dms[0][1:] == ("store", f"purchase:{bought.id}:code")
    # redelivery: the same purchase, the same code, still one DM
    again = _buy(db, settings, member, reward.id, interaction).purchase
    assert again.code == "GIFT-1"
    assert (
        sql("SELECT count(*) FROM direct_messages WHERE user_id = %s AND reason = 'store'", (int(member),))[
            0
        ][0]
        == 1
    )
    assert sql("SELECT count(*) FROM reward_codes WHERE purchase_id IS NOT NULL")[0][0] >= 1
    # a handed-out code can be neither changed nor removed
    with pytest.raises(Exception, match="handed out"):
        sql("DELETE FROM reward_codes WHERE code = 'GIFT-1'")
    # the pool runs dry: sold out, nothing written
    _buy(db, settings, member, reward.id)
    with pytest.raises(store.SoldOut):
        _buy(db, settings, member, reward.id)


def test_fulfil_and_refund_an_item(db, settings, sql):
    member = new_member()
    seed(db, settings, GUILD_A, member, 500)
    reward = _reward(db, "item", price=100, stock=1)
    bought = _buy(db, settings, member, reward.id).purchase
    done = db.run(
        store.fulfil, guild_id=G, purchase_id=bought.id, note="Posted today", actor_id=1, actor_name="adm"
    )
    assert done.state == "fulfilled" and done.note == "Posted today"
    with pytest.raises(InvalidInput, match="not waiting"):
        db.run(store.fulfil, guild_id=G, purchase_id=bought.id, note="", actor_id=1, actor_name="adm")
    back = db.run(
        store.refund, guild_id=G, purchase_id=bought.id, reason="It broke", actor_id=1, actor_name="adm"
    )
    assert back.state == "refunded"
    refund_entry = sql("SELECT kind, source, amount, reverts_id FROM transactions WHERE id = %s",
                       (back.refund_entry_id,))[0]  # fmt: skip
    assert refund_entry == ("purchase_refund", "purchase_refund", 100, bought.entry_id)
    assert db.run(store.get_reward, G, reward.id).stock == 1  # back in stock
    with pytest.raises(InvalidInput, match="refunded already"):
        db.run(store.refund, guild_id=G, purchase_id=bought.id, reason="", actor_id=1, actor_name="adm")
    dms = [
        r[0]
        for r in sql(
            "SELECT dedupe_key FROM direct_messages WHERE user_id = %s AND reason = 'store' ORDER BY id",
            (int(member),),
        )
    ]
    assert dms == [f"purchase:{bought.id}:fulfilled", f"purchase:{bought.id}:refund"]
    with db.connection() as conn:
        assert violations(conn, G) == []
    # /points revert cannot undo a purchase or its refund behind the store's back
    outcome = admin(db, settings, "points revert", {"entry": bought.entry_id})
    assert outcome.status == "refused" and "refund the purchase" in outcome.reply.content


# -- the commands ----------------------------------------------------------------------------------
def test_shop_buy_button_and_purchases(db, settings, sql):
    member = new_member()
    seed(db, settings, GUILD_A, member, 300)
    reward = _reward(db, "item", name="Mug", price=100, stock=3, per_member_limit=2)
    shop = run(db, settings, "shop", user_id=member)
    assert shop.status == "ok" and shop.reply.ephemeral
    assert (
        "**Mug**" in shop.reply.content and "3 left" in shop.reply.content and "2 more" in shop.reply.content
    )
    # The card: each reward a section with its own Buy button beside it
    sections = [c for c in shop.reply.components[0]["components"] if c["type"] == cards.SECTION]
    mug = next(s for s in sections if "**Mug**" in s["components"][0]["content"])
    assert shop.reply.v2 and mug["accessory"]["custom_id"] == f"buy:{reward.id}"
    assert mug["accessory"]["type"] == cards.BUTTON and not mug["accessory"].get("disabled")
    # When the member clicks Buy
    bought = click(db, settings, f"buy:{reward.id}", user_id=member)
    assert bought.status == "ok" and bought.reply.ephemeral and not bought.reply.update
    assert "You bought **Mug**" in bought.reply.content and "200 points" in bought.reply.content
    # Then /purchases shows it, pending
    mine = run(db, settings, "purchases", user_id=member)
    assert "**Mug**" in mine.reply.content and "pending fulfilment" in mine.reply.content
    # and the admins' queue has it; fulfilling it DMs the member
    pending = admin(db, settings, "redemptions pending")
    purchase_id = sql("SELECT id FROM purchases WHERE user_id = %s", (int(member),))[0][0]
    assert f"#{purchase_id}" in pending.reply.content
    done = admin(db, settings, "redemptions fulfil", {"purchase": purchase_id, "note": "Enjoy"})
    assert done.status == "ok" and "fulfilled" in done.reply.content
    assert "fulfilled" in run(db, settings, "purchases", user_id=member).reply.content


def test_buy_by_name_and_refusals_through_the_command(db, settings, sql):
    member = new_member()
    seed(db, settings, GUILD_A, member, 50)
    _reward(db, "item", name="Poster", price=80)
    poor = run(db, settings, "buy", {"reward": "poster"}, user_id=member)
    assert poor.status == "refused" and "costs" in poor.reply.content and poor.reply.ephemeral
    unknown = run(db, settings, "buy", {"reward": "Nothing like it"}, user_id=member)
    assert unknown.status == "refused" and "no reward called" in unknown.reply.content
    # a Buy button of another guild's reward, or a forged id, buys nothing
    other = _reward(db, "item", guild=int(GUILD_B), price=1)
    assert click(db, settings, f"buy:{other.id}", user_id=member).status == "refused"
    assert click(db, settings, "buy:0", user_id=member).status == "refused"
    assert click(db, settings, "buy:99999999999999999999", user_id=member).status == "refused"
    assert sql("SELECT count(*) FROM purchases WHERE user_id = %s", (int(member),))[0][0] == 0


def test_autocomplete_answers_type_8_with_at_most_25_choices(db, settings):
    from pointsbot.commands import dispatch

    for i in range(30):
        _reward(db, "item", name=f"Badge {i:02d}", price=10 + i)
    _reward(db, "item", name="Secret badge", price=5, enabled=False)
    _reward(db, "item", name="Pin with a badge", price=5)
    typed = interactions.parse(autocomplete_payload("buy", {"reward": "badge"}, "reward", guild_id=GUILD_A))
    choices = dispatch.autocomplete(db, typed)
    assert len(choices) == 25 and choices[0] == ("Badge 00 (10)", "Badge 00")
    assert all("Secret" not in name for name, _ in choices)
    typed = interactions.parse(autocomplete_payload("buy", {"reward": "with a"}, "reward", guild_id=GUILD_A))
    assert dispatch.autocomplete(db, typed) == [("Pin with a badge (5)", "Pin with a badge")]
    # LIKE's wildcards are only characters
    typed = interactions.parse(autocomplete_payload("buy", {"reward": "%"}, "reward", guild_id=GUILD_A))
    assert dispatch.autocomplete(db, typed) == []


def test_the_members_export_holds_their_purchases(db, settings):
    from pointsbot.community import members

    member = new_member()
    seed(db, settings, GUILD_A, member, 500)
    reward = _reward(db, "item", name="Exported thing", price=10)
    _buy(db, settings, member, reward.id)
    exported = db.run(members.export, G, int(member))["purchases"]
    assert [(p["reward_name"], p["state"], p["price"]) for p in exported] == [
        ("Exported thing", "pending", 10)
    ]
