"""The store's buttons on the wire: a Buy button answers with a new private message (deferred
as type 5 with the ephemeral flag, so the worker's edit of @original is that message, not the
shop), while the shop's Previous/Next edit the shop in place (type 6 when deferred)."""

from __future__ import annotations

import pytest

from pointsbot.commands import dispatch
from pointsbot.discord import interactions
from pointsbot_local.simulate import autocomplete_payload, component_payload

pytestmark = pytest.mark.unit


def _button(custom_id: str) -> interactions.Interaction:
    return interactions.parse(component_payload(custom_id))


def test_buy_is_a_new_private_message_and_shop_pages_edit_in_place():
    buy, page = _button("buy:123"), _button("shop:2:next")
    assert dispatch._route(buy) == ("buy", {"reward_id": 123}, False)
    assert dispatch._route(page) == ("shop", {"page": 2}, True)
    assert dispatch.answers_privately(buy) and not dispatch.updates_message(buy)
    deferred = interactions.deferred(buy, dispatch.answers_privately(buy), dispatch.updates_message(buy))
    assert deferred == {"type": 5, "data": {"flags": 64}}
    assert interactions.deferred(page, dispatch.answers_privately(page), dispatch.updates_message(page)) == {
        "type": 6
    }


def test_purchases_and_season_standings_pages_edit_in_place():
    assert dispatch._route(_button("purchases:3:next")) == ("purchases", {"page": 3}, True)
    assert dispatch._route(_button("standings:42:2:prev")) == (
        "season standings", {"season": "42", "page": 2}, True)  # fmt: skip
    for forged in ("standings:x:2:prev", "standings:42:x:prev", "purchases:-1:next", "standings:42"):
        assert dispatch._route(_button(forged))[0] == "", forged


@pytest.mark.parametrize(
    "custom_id", ["buy:", "buy:0", "buy:-1", "buy:12a", "buy:99999999999999999999", "buy:٣"]
)
def test_a_buy_button_this_code_never_made_leads_nowhere(custom_id):
    assert dispatch._route(_button(custom_id))[0] == ""


def test_an_autocomplete_names_its_focused_option():
    typed = interactions.parse(autocomplete_payload("buy", {"reward": "sti"}, "reward"))
    assert (typed.type, typed.command, typed.focused, typed.options) == (
        4,
        "buy",
        "reward",
        {"reward": "sti"},
    )
    choices = interactions.autocomplete_result([(f"n{i}", "v" * 150) for i in range(30)])
    assert choices["type"] == 8 and len(choices["data"]["choices"]) == 25
    assert len(choices["data"]["choices"][0]["value"]) == 100
    unfocused = autocomplete_payload("buy", {"reward": "sti"}, "nothing")
    with pytest.raises(interactions.RequestRejected):
        interactions.parse(unfocused)
