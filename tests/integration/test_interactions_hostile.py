"""A corpus of signed payloads Discord never sends, each through the endpoint with a real database:
every one gets a 400 or a polite private refusal. None gets a 500, none reaches the generic
"something went wrong" path (an ERROR log with a stack), and none writes anything.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from typing import Any

import pytest
from _command_helpers import ADMIN, GUILD_A, counts, new_member, payload, use_queue
from nacl.signing import SigningKey

from pointsbot.commands import endpoint
from pointsbot.platform.config import reset_settings
from pointsbot_local.apigw import to_event
from pointsbot_local.keys import KeyPair
from pointsbot_local.simulate import component_payload, message_text

pytestmark = pytest.mark.integration

DELETE = object()
TARGET = "820000000000999001"


def _points_add() -> dict[str, Any]:
    return payload(
        "points add", {"member": TARGET, "amount": 5, "reason": "hostile"}, user_id=ADMIN, admin=True
    )


def _give() -> dict[str, Any]:
    return payload("give", {"member": TARGET, "amount": 1}, user_id="820000000000999002")


def _balance() -> dict[str, Any]:
    return payload("balance", user_id="820000000000999003")


def _button() -> dict[str, Any]:
    return component_payload("leaderboard:1:next", guild_id=GUILD_A)


def _leaf(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The leaf options of a command payload (under its sub-command, if any)."""
    options = raw["data"]["options"]
    while options and options[0]["type"] == 1:
        options = options[0]["options"]
    return options


def _set(path: tuple, value: Any, base=_points_add):
    def make() -> dict[str, Any]:
        raw = base()
        *parents, last = path
        node = raw
        for key in parents:
            node = node[key]
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = copy.deepcopy(value)
        return raw

    return make


def _option(name: str, value: Any, *, kind: int | None = None, base=_points_add):
    """The named leaf option's value (and, if given, its claimed type) replaced."""

    def make() -> dict[str, Any]:
        raw = base()
        for option in _leaf(raw):
            if option["name"] == name:
                if value is DELETE:
                    _leaf(raw).remove(option)
                else:
                    option["value"] = value
                    if kind is not None:
                        option["type"] = kind
                break
        else:
            _leaf(raw).append({"name": name, "type": kind or 3, "value": value})
        return raw

    return make


BAD_IDS = ["abc", "-1", "0", "0123", "9223372036854775808", "99999999999999999999", "\uff11\uff12\uff13", " 123", "12e3", "",
           123, 1.5, None, True, [], {}]  # fmt: skip

CORPUS: dict[str, Any] = {}
for bad in BAD_IDS:
    CORPUS[f"interaction id {bad!r}"] = _set(("id",), bad)
    CORPUS[f"guild id {bad!r}"] = _set(("guild_id",), bad)
    CORPUS[f"user id {bad!r}"] = _set(("member", "user", "id"), bad)
    if bad is not None:  # a null channel id is no channel id, which Discord may send
        CORPUS[f"channel id {bad!r}"] = _set(("channel_id",), bad)
    CORPUS[f"role {bad!r}"] = _set(("member", "roles"), [bad])
    CORPUS[f"member option {bad!r}"] = _option("member", bad, kind=6)
    if isinstance(bad, str):  # JSON object keys are strings
        CORPUS[f"resolved user key {bad!r}"] = _set(
            ("data", "resolved", "users"), {bad: {"id": "1", "username": "x"}}
        )
for bad in ["abc", "-5", "0", 2**63, None, 1.5]:
    CORPUS[f"application id {bad!r}"] = _set(("application_id",), bad)
CORPUS.update({
    "interaction id missing": _set(("id",), DELETE),
    "interaction id on a read": _set(("id",), "9223372036854775808", base=_balance),
    "interaction id on a give": _set(("id",), "not-a-number", base=_give),
    "interaction id on a button": _set(("id",), "-7", base=_button),
    "token missing": _set(("token",), DELETE),
    "token a number": _set(("token",), 12345),
    "token empty": _set(("token",), ""),
    "token with a newline": _set(("token",), "abc\ndef"),
    "token with spaces": _set(("token",), "a b"),
    "token non-ascii": _set(("token",), "tökén"),
    "token huge": _set(("token",), "x" * 20_000),
    "type zero": _set(("type",), 0),
    "type unknown": _set(("type",), 99),
    "type negative": _set(("type",), -2),
    "type huge": _set(("type",), 2**70),
    "type true": _set(("type",), True),
    "type float": _set(("type",), 2.0),
    "type a string": _set(("type",), "2"),
    "modal submit": _set(("type",), 5),
    "member a string": _set(("member",), "me"),
    "member a list": _set(("member",), []),
    "member without user": _set(("member", "user"), DELETE),
    "member user a string": _set(("member", "user"), "x"),
    "member and user both missing": _set(("member",), DELETE),
    "username a number": _set(("member", "user", "username"), 42),
    "username a list": _set(("member", "user", "username"), ["a"]),
    "username an object": _set(("member", "user", "username"), {"a": 1}),
    "username huge": _set(("member", "user", "username"), "u" * 100_000),
    "username empty": _set(("member", "user", "username"), ""),
    "global name a number": _set(("member", "user", "global_name"), 7),
    "nick a number": _set(("member", "nick"), 7),
    "nick huge": _set(("member", "nick"), "n" * 5000),
    "roles a string": _set(("member", "roles"), "123"),
    "roles too many": _set(("member", "roles"), [str(10**17 + i) for i in range(300)]),
    "permissions garbage": _set(("member", "permissions"), "all of them"),
    "permissions negative": _set(("member", "permissions"), "-8"),
    "permissions a list": _set(("member", "permissions"), [8]),
    "channel an object without a proper id": lambda: {**_set(("channel_id",), DELETE)(), "channel": {"id": {"a": 1}}},
    "data missing": _set(("data",), DELETE),
    "data a string": _set(("data",), "points"),
    "data a list": _set(("data",), []),
    "data name missing": _set(("data", "name"), DELETE),
    "data name a number": _set(("data", "name"), 5),
    "data name huge": _set(("data", "name"), "p" * 10_000),
    "data name unknown": _set(("data", "name"), "nuke"),
    "options a string": _set(("data", "options"), "add"),
    "options an object": _set(("data", "options"), {"name": "add"}),
    "options of numbers": _set(("data", "options"), [1, 2]),
    "options nested too deep": _set(("data", "options"), [{"type": 2, "name": "a", "options": [{"type": 2, "name": "b", "options": [{"type": 1, "name": "c"}]}]}]),
    "sub-command name a number": _set(("data", "options", 0, "name"), 5),
    "sub-command unknown": _set(("data", "options", 0, "name"), "steal"),
    "sub-command missing": _set(("data", "options"), []),
    "option of unknown type": _option("amount", 5, kind=99),
    "option name a number": _set(("data", "options", 0, "options"), [{"name": 5, "type": 4, "value": 1}]),
    "option twice": _set(("data", "options", 0, "options"), [{"name": "amount", "type": 4, "value": 1}] * 2),
    "too many options": _set(("data", "options", 0, "options"), [{"name": f"o{i}", "type": 4, "value": 1} for i in range(40)]),
    "unknown option": _option("bonus", 5, kind=4),
    "amount missing": _option("amount", DELETE),
    "member missing": _option("member", DELETE),
    "reason missing": _option("reason", DELETE),
    "amount a string claiming integer": _option("amount", "5", kind=4),
    "amount a string claiming string": _option("amount", "5", kind=3),
    "amount a float": _option("amount", 1.5, kind=4),
    "amount a float claiming number": _option("amount", 1.5, kind=10),
    "amount NaN claiming number": _option("amount", float("nan"), kind=10),
    "amount true": _option("amount", True, kind=4),
    "amount null": _option("amount", None, kind=4),
    "amount beyond bigint": _option("amount", 2**64, kind=4),
    "amount 2^63-1": _option("amount", 2**63 - 1, kind=4),
    "amount beyond its declared maximum": _option("amount", 10**12, kind=4),
    "amount zero": _option("amount", 0, kind=4),
    "amount negative": _option("amount", -5, kind=4),
    "amount an object": _option("amount", {"value": 5}, kind=4),
    "member option a number": _option("member", 820000000000999001, kind=6),
    "member option claiming string": _option("member", "820000000000999001", kind=3),
    "member option a mention": _option("member", "<@820000000000999001>", kind=3),
    "reason a number": _option("reason", 5, kind=3),
    "reason a list": _option("reason", ["a"], kind=3),
    "reason huge": _option("reason", "r" * 7000, kind=3),
    "reason beyond its declared length": _option("reason", "r" * 501, kind=3),
    "silent a string": _option("silent", "true", kind=5),
    "silent a number": _option("silent", 1, kind=5),
    "silent claiming string": _option("silent", "yes", kind=3),
    "give amount a string": _option("amount", "lots", kind=4, base=_give),
    "give amount beyond bigint": _option("amount", 2**63, kind=4, base=_give),
    "give to an id beyond bigint": _option("member", "9223372036854775808", kind=6, base=_give),
    "balance of an id beyond bigint": _option("member", "99999999999999999999", kind=6, base=_balance),
    "resolved a string": _set(("data", "resolved"), "x"),
    "resolved users a list": _set(("data", "resolved", "users"), ["x"]),
    "resolved user a string": _set(("data", "resolved", "users", TARGET), "x"),
    "resolved user without id": _set(("data", "resolved", "users", TARGET), {"username": "x"}),
    "resolved username a number": _set(("data", "resolved", "users", TARGET, "username"), 5),
    "resolved member a string": _set(("data", "resolved", "members", TARGET), "x"),
    "resolved member nick a number": _set(("data", "resolved", "members", TARGET, "nick"), 5),
    "custom_id missing": _set(("data", "custom_id"), DELETE, base=_button),
    "custom_id a number": _set(("data", "custom_id"), 5, base=_button),
    "custom_id an object": _set(("data", "custom_id"), {"a": 1}, base=_button),
    "custom_id empty": _set(("data", "custom_id"), "", base=_button),
    "custom_id huge": _set(("data", "custom_id"), "leaderboard:1:" + "x" * 200, base=_button),
    "custom_id unknown": _set(("data", "custom_id"), "admin:grant:all", base=_button),
    "custom_id page not a number": _set(("data", "custom_id"), "leaderboard:abc:next", base=_button),
    "custom_id page negative": _set(("data", "custom_id"), "leaderboard:-1:next", base=_button),
    "component type a string": _set(("data", "component_type"), "2", base=_button),
    "button without data": _set(("data",), DELETE, base=_button),
    "button user a number": _set(("member", "user"), 5, base=_button),
    "deeply nested extra field": _set(("extra",), json.loads("[" * 70 + "]" * 70)),
})  # fmt: skip


@pytest.fixture
def keys(monkeypatch) -> KeyPair:
    key = SigningKey.generate()
    pair = KeyPair(key.encode().hex(), key.verify_key.encode().hex())
    monkeypatch.setenv("DISCORD_PUBLIC_KEY", pair.public_hex)
    reset_settings()
    yield pair
    reset_settings()


@pytest.fixture
def task_queue():
    yield from use_queue()


def _send(keys: KeyPair, raw: dict[str, Any], db) -> endpoint.Answer:
    body = json.dumps(raw).encode()
    stamp = str(int(time.time()))
    event = to_event("POST", "/interactions", {"content-type": "application/json",
                     "x-signature-ed25519": keys.sign(stamp, body), "x-signature-timestamp": stamp}, body)  # fmt: skip
    return endpoint.handle(event, database=db)


def test_the_base_payloads_are_answered(db, keys, task_queue):
    # The corpus's starting points work, so each refusal below is the mutation's doing.
    new_member()
    for make, expected in ((_points_add, "Added"), (_give, ""), (_balance, ""), (_button, "Leaderboard")):
        answer = _send(keys, make(), db)
        assert answer.status == 200 and answer.outcome in ("ok", "refused"), (make.__name__, answer)
        assert expected in message_text(answer.body["data"])


@pytest.mark.parametrize("label", list(CORPUS))
def test_a_payload_discord_never_sends_gets_a_400_or_a_polite_refusal(
    label, db, keys, sql, task_queue, caplog
):
    # Given a signed payload Discord would never send
    raw = CORPUS[label]()
    before = counts(sql)
    # When it reaches the endpoint
    with caplog.at_level(logging.INFO, logger="pointsbot"):
        answer = _send(keys, raw, db)
    # Then it is a 400, or a private refusal in plain words, and nothing was written or queued
    if answer.status != 400:
        assert answer.status == 200, answer
        assert answer.outcome in ("refused", "denied"), answer
        assert answer.body["type"] == 4 and answer.body["data"]["flags"] == 64
        assert answer.body["data"]["content"] != endpoint.SOMETHING_WENT_WRONG
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "reached the generic error path"
    assert counts(sql) == before
    assert [t for t in task_queue.sent if t.kind == "interaction"] == []
