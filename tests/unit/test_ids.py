"""Snowflakes: digits in, the same digits out; floats, signs and junk refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pointsbot.platform.errors import InvalidInput
from pointsbot.platform.ids import MAX_SNOWFLAKE, format_snowflake, parse_snowflake

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("80351110224678912", 80351110224678912),
        (" 80351110224678912 ", 80351110224678912),
        ("<@80351110224678912>", 80351110224678912),
        ("<@!80351110224678912>", 80351110224678912),
        ("<@&80351110224678912>", 80351110224678912),
        (80351110224678912, 80351110224678912),
        ("9223372036854775807", MAX_SNOWFLAKE),
        ("1", 1),
    ],
)
def test_parse_accepts_ids(raw, expected):
    assert parse_snowflake(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "", "0", "-1", "+5", "12a", "1e18", "12.0", "٣٤٥", "9223372036854775808", "18446744073709551615",
        "00000000000000000001",  # 20 characters
        1.0, 8.035111022467891e16, True, False, None, 0, -7, 2**63, [1], b"123",
    ],
)  # fmt: skip
def test_parse_refuses_what_is_not_an_id(raw):
    with pytest.raises(InvalidInput):
        parse_snowflake(raw, "user")


def test_the_message_names_the_field():
    with pytest.raises(InvalidInput, match="guild_id"):
        parse_snowflake("x", "guild_id")


def test_format():
    assert format_snowflake(MAX_SNOWFLAKE) == "9223372036854775807"
    assert format_snowflake(None) is None


@given(st.integers(min_value=1, max_value=MAX_SNOWFLAKE))
def test_round_trip_through_text_and_json(snowflake):
    text = format_snowflake(snowflake)
    assert isinstance(text, str) and parse_snowflake(text) == snowflake
    assert parse_snowflake(json.loads(json.dumps({"id": text}))["id"]) == snowflake
