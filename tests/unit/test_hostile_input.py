"""The one-place rules for input from outside, without I/O: redirect targets, response headers,
secret token comparison, permission bit sets."""

from __future__ import annotations

import pytest

from admin_site import web
from pointsbot.admin import auth, sessions
from pointsbot.commands.dispatch import is_admin
from pointsbot.discord import interactions
from pointsbot.discord.permissions import ADMINISTRATOR, MANAGE_GUILD, parse_permissions
from pointsbot.ledger.guilds import policy_from
from pointsbot.platform.config import load_settings
from pointsbot.platform.errors import InvalidInput
from pointsbot.platform.paging import page_number
from pointsbot.platform.storable import check_text
from pointsbot_local.simulate import command_payload

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("char", ["\r\n", "\r", "\n", "\x00", "\t", "\x0b", "\x1b", "\x7f", "\x85", "\ud800"])
def test_a_redirect_target_with_any_control_character_falls_back_to_home(char):
    assert web.safe_next(f"/admin/{char}Set-Cookie: planted=1") == "/admin/"
    assert web.safe_next(f"/admin/g/1/members?q=a{char}") == "/admin/"


def test_a_redirect_target_keeps_url_syntax_and_encodes_what_is_beyond_ascii():
    assert web.safe_next("/admin/g/1/members?q=a+b&page=2#top") == "/admin/g/1/members?q=a+b&page=2#top"
    assert web.safe_next("/admin/g/1/members?q=José") == "/admin/g/1/members?q=Jos%C3%A9"
    assert web.safe_next("/admin/g/1/members?q=%0D%0A") == "/admin/g/1/members?q=%0D%0A"  # stays escaped


@pytest.mark.parametrize(
    "headers",
    [{"Location": "/admin/\r\nSet-Cookie: planted=1"}, {"Location": "/admin/\nx"}, {"X-Note": "a\x00b"},
     {"Content-Disposition": 'attachment; filename="é.csv"'}, {"Bad\r\nName": "x"}],
)  # fmt: skip
def test_the_response_layer_refuses_any_header_a_line_cannot_hold(headers):
    with pytest.raises(web.UnsafeHeader):
        web.respond(None, 303, "", headers=headers, settings=load_settings({}))


def test_the_response_layer_sends_ordinary_headers():
    answer = web.respond(
        None, 303, "", headers={"Location": "/admin/g/1/?a=b%20c"}, settings=load_settings({})
    )
    assert answer.headers["Location"] == "/admin/g/1/?a=b%20c"


@pytest.mark.parametrize("submitted", ["é", "токен", "\ud800", "🔑" * 43, "", None, 42])
def test_secret_tokens_compare_without_error_whatever_arrives(submitted):
    expected = "k3y-Of_The_Session"
    assert sessions.tokens_match(expected, submitted) is False
    assert sessions.tokens_match(expected, expected) is True
    assert sessions.tokens_match("", "") is False and sessions.tokens_match(None, expected) is False


def test_the_oauth_state_is_compared_in_constant_time(monkeypatch):
    # Given a session waiting for Discord's callback, and a spy on the constant-time compare
    seen = []
    real = sessions.hmac.compare_digest
    monkeypatch.setattr(sessions.hmac, "compare_digest", lambda a, b: seen.append((a, b)) or real(a, b))
    session = sessions.Session("token", "csrf", None, oauth_state="state-from-the-start")
    # Then a wrong state (ASCII or not) is refused through it, and the right one passes
    assert not session.oauth_state_ok("state-from-the-stArt")
    assert not session.oauth_state_ok("état")
    assert session.oauth_state_ok("state-from-the-start")
    assert len(seen) == 3 and all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in seen)


NOT_A_BIT_SET = ["-1", "-8", "-9223372036854775808", "+8", " 8", "8 ", "8.0", "1e3", "0x28", "\uff18", "", "abc",
                 str(2**64), "9" * 5000, 8, -1, 8.0, True, None, ["8"]]  # fmt: skip


@pytest.mark.parametrize("raw", NOT_A_BIT_SET, ids=repr)
def test_anything_but_a_non_negative_integer_string_is_no_rights(raw):
    assert parse_permissions(raw) == 0


def test_a_permission_string_is_its_bits():
    assert parse_permissions("8") == ADMINISTRATOR and parse_permissions("32") == MANAGE_GUILD
    assert parse_permissions(str((1 << 60) | MANAGE_GUILD)) == (1 << 60) | MANAGE_GUILD
    assert parse_permissions("0") == 0 and parse_permissions(str(2**64 - 1)) == 2**64 - 1


@pytest.mark.parametrize("raw", ["-1", "-8", "-32", "8.0", "\uff18"])
def test_a_negative_or_odd_member_permissions_value_is_not_admin(raw):
    # Given an interaction whose member permissions Discord would never send (-1 has every bit set)
    payload = command_payload("points add", permissions=0)
    payload["member"]["permissions"] = raw
    parsed = interactions.parse(payload)
    # Then the member has no rights at all
    assert parsed.permissions == 0
    assert is_admin(parsed, policy_from(load_settings({}), None)) is False


@pytest.mark.parametrize("raw", ["-1", "-8", "-32", 40, "1e9"])
def test_an_oauth_guild_with_a_negative_or_odd_permissions_value_is_not_manageable(raw, monkeypatch):
    # Given Discord's guild list (GET /users/@me/guilds) with a permissions value it never sends
    client = auth.DiscordOAuthClient("http://discord.invalid/api/v10", "1", "secret", "https://bot.example")
    rows = [{"id": "700000000000000001", "name": "Odd", "owner": False, "permissions": raw}]
    monkeypatch.setattr(client, "_call", lambda *a, **k: rows)
    # Then the guild is listed with no rights and cannot be managed
    (grant,) = client.guilds("token")
    assert grant.permissions == 0 and grant.can_manage is False


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, 1), ("", 1), ("  ", 1), (0, 1), ("0", 1), (-5, 1), ("-4611686018427387904", 1), (7, 7), ("7", 7),
     (" 7 ", 7), ("+7", 7), ("007", 7), (PAGE_MAX := 100_000, PAGE_MAX), (PAGE_MAX + 1, PAGE_MAX),
     ("4611686018427387904", PAGE_MAX), (2**64, PAGE_MAX), ("9" * 5000, PAGE_MAX), ("0" * 5000 + "3", 3)],
)  # fmt: skip
def test_a_page_number_is_clamped_into_range(raw, expected):
    assert page_number(raw) == expected


def test_a_page_number_can_have_a_lower_ceiling():
    assert page_number("5000", maximum=1000) == 1000 and page_number(999, maximum=1000) == 999


@pytest.mark.parametrize("raw", ["1e9", "2.5", "abc", "\uff17", "1 000", 2.5, True, [1]], ids=repr)
def test_a_page_that_is_not_a_whole_number_is_refused_plainly(raw):
    with pytest.raises(InvalidInput, match=r"^The page must be a whole number\.$"):
        page_number(raw)


@pytest.mark.parametrize("text", ["\x00", "a\x00", "broken \ud800", "\udfff end"], ids=repr)
def test_text_postgres_cannot_store_is_refused_with_a_plain_message(text):
    with pytest.raises(
        InvalidInput, match=r"^The note contains .* which cannot be stored\. Remove it and try again\.$"
    ):
        check_text(text, "The note")


def test_any_other_text_is_storable_as_it_is():
    for text in ("", "plain", "Zoë 🔑 \uff1d", "tab\tand\nnewline", "\x01\x1b\x7f"):
        assert check_text(text) == text


def test_every_kind_of_parameter_is_looked_at_before_it_is_sent():
    from psycopg.types.json import Jsonb

    from pointsbot.platform.storable import check_params

    check_params(None)
    check_params((1, None, True, "fine", ["a", "b"], Jsonb({"k": ["v"]})))
    for poisoned in [("a\x00",), {"name": "a\x00"}, (["ok", "a\x00"],), (Jsonb({"k": ["a\x00"]}),),
                     (Jsonb({"a\x00": 1}),), ("\ud800",)]:  # fmt: skip
        with pytest.raises(InvalidInput):
            check_params(poisoned)
