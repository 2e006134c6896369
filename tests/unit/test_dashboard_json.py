"""The dashboard's live figures stay exact for JavaScript: past 2^53 they are strings."""

from __future__ import annotations

import json

import pytest

from pointsbot.admin.stats import DashboardFigures
from pointsbot.platform.amounts import COUNTER_CEILING, MAX_BALANCE

pytestmark = pytest.mark.unit


def test_a_circulation_past_2_53_is_sent_as_an_exact_string():
    # Given 10 million members each at the top of the balance range
    circulation = 10_000_000 * MAX_BALANCE
    figures = DashboardFigures(10_000_000, circulation, 3, 4, 0, 0, 0)
    # When the figures become stats.json
    data = json.loads(json.dumps(figures.as_json()))
    # Then the circulation survives as an exact decimal string; the small figures stay numbers
    assert data["points_in_circulation"] == str(circulation)
    assert data["members"] == 10_000_000 and data["transactions_today"] == 3
    at_the_edge = DashboardFigures(1, COUNTER_CEILING, 0, 0, 0, 0, 0).as_json()
    assert at_the_edge["points_in_circulation"] == COUNTER_CEILING  # still exact as a number
