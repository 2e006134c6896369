"""The audit log's before/after in words, and the site's other labels (issue 12, item 5)."""

from __future__ import annotations

import pytest
from markupsafe import Markup

from admin_site import labels

pytestmark = pytest.mark.unit


def _who(user_id, link=True, plain=False):
    return Markup("<person {}>").format(user_id)


def _lines(before, after):
    return [(c.label, None if c.old is None else str(c.old), None if c.new is None else str(c.new))
            for c in labels.audit_changes(before, after, _who)]  # fmt: skip


def test_an_edit_lists_only_what_changed_in_words():
    before = {"max_change": 1000, "transfers_enabled": True, "currency_name": "points", "admin_role_ids": []}
    after = {
        "max_change": 500,
        "transfers_enabled": False,
        "currency_name": "points",
        "admin_role_ids": ["7"],
    }
    assert _lines(before, after) == [
        ("Largest single change", "1,000", "500"),
        ("Members may give points", "yes", "no"),
        ("Admin roles", "—", "7"),
    ]


def test_a_creation_lists_what_was_made_and_a_removal_what_was_there():
    assert _lines(None, {"points": 100, "role_id": "42", "on_drop": "remove"}) == [
        ("Points", None, "100"), ("Role", None, "42"), ("When the balance drops below", None, "remove")]  # fmt: skip
    assert _lines({"name": "Old key", "prefix": "pb_1"}, None) == [
        ("Name", "Old key", None), ("Key starts with", "pb_1", None)]  # fmt: skip


def test_members_are_people_amounts_signed_and_nested_objects_flattened():
    after = {
        "user_id": "301",
        "amount": 50,
        "entry_id": 12,
        "entries": [{"id": 3, "amount": -5}],
        "meta": {"a_b": 1},
    }
    lines = _lines({"balance": 10}, after)
    assert ("Member", None, "<person 301>") in lines
    assert ("Amount", None, "+50") in lines and ("Entry", None, "#12") in lines
    assert ("New entries", None, "Id: #3, Amount: -5") in lines
    assert ("Meta \u203a A b", None, "1") in lines and ("Balance", "10", None) in lines


def test_text_in_an_entry_is_escaped():
    (line,) = _lines(None, {"reason": "<script>alert(1)</script>"})
    assert line[2] == "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.mark.parametrize(
    ("fn", "name", "words"),
    [(labels.dm_reason, "points", "Points change"), (labels.dm_reason, "admin", "Admin's message"),
     (labels.reward_kind, "code", "Code"), (labels.kind, "transfer_out", "Given to a member"),
     (labels.kind, "email_bonus", "Email bonus"), (labels.action, "api_key.create", "API key made"),
     (labels.action, "something.new_here", "Something new here")],
)  # fmt: skip
def test_internal_names_are_shown_as_words(fn, name, words):
    assert fn(name) == words
