"""The dashboard's SVG charts: round axes, stacked and grouped bars, day labels that fit."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from admin_site import charts

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("peak", "step"),
    [(0, 1), (3, 1), (7, 2), (10, 5), (99, 25), (101, 50), (1234, 500), (10**12, 250_000_000_000)],
)
def test_the_value_axis_steps_are_round_and_reach_the_peak_in_about_four(peak, step):
    assert charts.nice_step(peak) == step
    assert 1 <= -(-max(peak, 1) // step) <= 5


@pytest.mark.parametrize(("value", "text"), [(0, "0"), (950, "950"), (1500, "1.5k"), (12_000, "12k"),
                                             (3_000_000, "3M"), (1_250_000_000, "1.2B")])  # fmt: skip
def test_axis_labels_are_compact(value, text):
    assert charts.compact(value) == text


def test_stacked_bars_sum_to_the_days_total_height():
    days = [date(2026, 1, 1), date(2026, 1, 2)]
    chart = charts.bar_chart("dms", days, [charts.Series("sent", "s-sent", [30, 0]),
                                           charts.Series("failed", "s-failed", [10, 0])], stacked=True)  # fmt: skip
    sent, failed = chart.columns[0].bars
    assert sent.y + sent.height == pytest.approx(chart.baseline, abs=0.02)
    assert failed.y + failed.height == pytest.approx(sent.y, abs=0.02)
    assert sent.height == pytest.approx(3 * failed.height, abs=0.05)
    assert chart.peak == 40 and chart.columns[1].bars == ()


@pytest.mark.parametrize("n", [7, 30, 90])
def test_the_day_axis_labels_a_few_days_always_today_and_the_columns_fill_the_plot(n):
    days = [date(2026, 12, 5) - timedelta(days=n - 1 - i) for i in range(n)]
    chart = charts.bar_chart("x", days, [charts.Series("a", "s-in", list(range(n)))])
    assert len(chart.columns) == n and chart.days[-1].label == "5 Dec"
    assert 5 <= len(chart.days) <= 8
    last = chart.columns[-1]
    assert chart.columns[0].x == chart.left and last.x + last.width == pytest.approx(chart.right, abs=0.05)
    assert all(b.x >= c.x and b.x + b.width <= c.x + c.width + 0.01 for c in chart.columns for b in c.bars)


def test_meters_are_shares_of_the_top_score():
    assert [m.width for m in charts.meters([200, 100, 0, -5])] == [100.0, 50.0, 0.0, 0.0]
    assert charts.meters([]) == []
