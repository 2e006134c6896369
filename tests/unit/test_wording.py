"""Counts in words: one is singular, everything else plural, the currency's singular by rule."""

from __future__ import annotations

import pytest

from pointsbot.ledger.guilds import policy_from
from pointsbot.platform.config import load_settings
from pointsbot.platform.wording import count, currency_singular, ngettext, points

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("number", "expected"),
    [(0, "0 pages"), (1, "1 page"), (2, "2 pages"), (-1, "-1 page"), (1000, "1,000 pages")],
)
def test_count_uses_the_singular_for_exactly_one(number, expected):
    assert count(number, "page") == expected


def test_irregular_plurals_are_given():
    assert count(1, "entry", "entries") == "1 entry" and count(3, "entry", "entries") == "3 entries"
    assert (
        ngettext("There is", "There are", 1) == "There is"
        and ngettext("There is", "There are", 2) == "There are"
    )


@pytest.mark.parametrize(
    ("name", "one"),
    [("points", "point"), ("Points", "Point"), ("gems", "gem"), ("rubies", "ruby"), ("XP", "XP"),
     ("gold", "gold"), ("karma", "karma"), ("kudos", "kudos"), ("bonus", "bonus"), ("glass", "glass")],
)  # fmt: skip
def test_the_currency_singular_rule(name, one):
    assert currency_singular(name) == one


def test_points_in_the_guilds_currency():
    assert points(1, "points") == "1 point"
    assert points(-1, "points") == "-1 point"
    assert points(0, "points") == "0 points"
    assert points(1_500, "gems") == "1,500 gems"
    assert points(1, "geese", "goose") == "1 goose" and points(2, "geese", "goose") == "2 geese"


def test_a_guild_may_name_its_singular_and_an_empty_one_means_the_rule():
    settings = load_settings({})
    assert policy_from(settings, {}).points(1) == "1 point"
    assert (
        policy_from(settings, {"currency_name": "geese", "currency_singular": "goose"}).points(1) == "1 goose"
    )
    assert policy_from(settings, {"currency_name": "gems", "currency_singular": ""}).points(1) == "1 gem"
