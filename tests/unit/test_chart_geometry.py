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


# The template macro that wrote each chart before charts.figure (issue 12, the 90-day dashboard):
# the reference the figure's markup is compared with, element by element.
_MACRO = """{% macro bar_chart(id, chart) %}
<figure class="chart-box" id="{{ id }}">
  <div class="chart-scroll">
  <svg class="chart" viewBox="0 0 {{ chart.width }} {{ chart.height }}" role="img" aria-labelledby="{{ id }}-title" preserveAspectRatio="xMidYMid meet">
    <title id="{{ id }}-title">{{ chart.title }}, {{ chart.table|length }} days (UTC days), peak {{ chart.peak|money }}</title>
    <g class="grid">
      {% for t in chart.ticks %}
      <line x1="{{ chart.left }}" y1="{{ t.y }}" x2="{{ chart.right }}" y2="{{ t.y }}"/>
      {% endfor %}
    </g>
    <g class="y-axis">
      {% for t in chart.ticks %}
      <text x="{{ chart.left - 6 }}" y="{{ t.y }}" dy="0.32em" text-anchor="end">{{ t.label }}</text>
      {% endfor %}
    </g>
    <g class="bars">
      {% for c in chart.columns %}
      <g class="day">
        <title>{{ c.title }}</title>
        <rect class="hit" x="{{ c.x }}" y="{{ chart.top }}" width="{{ c.width }}" height="{{ chart.baseline - chart.top }}"/>
        {% for b in c.bars %}<rect class="{{ b.css }}" x="{{ b.x }}" y="{{ b.y }}" width="{{ b.width }}" height="{{ b.height }}"/>{% endfor %}
      </g>
      {% endfor %}
    </g>
    <line class="axis" x1="{{ chart.left }}" y1="{{ chart.baseline }}" x2="{{ chart.right }}" y2="{{ chart.baseline }}"/>
    <line class="axis" x1="{{ chart.left }}" y1="{{ chart.top }}" x2="{{ chart.left }}" y2="{{ chart.baseline }}"/>
    <g class="x-axis">
      {% for d in chart.days %}
      <line x1="{{ d.x }}" y1="{{ chart.baseline }}" x2="{{ d.x }}" y2="{{ chart.baseline + 4 }}"/>
      <text x="{{ d.x }}" y="{{ chart.baseline + 6 }}" dy="1em" text-anchor="middle">{{ d.label }}</text>
      {% endfor %}
    </g>
  </svg>
  </div>
  <figcaption class="legend">{% for s in chart.series %}<span class="key {{ s.css }}" aria-hidden="true"></span> {{ s.name }} {% endfor %}· peak {{ chart.peak|money }} a day</figcaption>
  <details class="chart-numbers">
    <summary>The numbers</summary>
    <table class="data">
      <thead><tr><th scope="col">Day (UTC)</th>{% for s in chart.series %}<th scope="col" class="num">{{ s.name }}</th>{% endfor %}</tr></thead>
      <tbody>
      {% for day, values in chart.table|reverse %}
      <tr><td>{{ day }}</td>{% for v in values %}<td class="num">{{ v|money }}</td>{% endfor %}</tr>
      {% endfor %}
      </tbody>
    </table>
  </details>
</figure>
{% endmacro %}{{ bar_chart(id, chart) }}"""


def _elements(markup: str) -> list[tuple]:
    """The markup as a list of start tags (attributes in order), texts and end tags; whitespace
    between elements dropped, as a browser lays it out."""
    from html.parser import HTMLParser

    seen: list[tuple] = []

    class Walk(HTMLParser):
        def handle_starttag(self, tag, attrs):
            seen.append(("start", tag, tuple(attrs)))

        def handle_startendtag(self, tag, attrs):
            seen.append(("start", tag, tuple(attrs)))
            seen.append(("end", tag))

        def handle_endtag(self, tag):
            seen.append(("end", tag))

        def handle_data(self, data):
            if data.strip():
                seen.append(("text", " ".join(data.split())))

    Walk(convert_charrefs=True).feed(markup)
    return seen


@pytest.mark.parametrize("n", [7, 30, 90])
@pytest.mark.parametrize("stacked", [False, True])
def test_a_chart_figure_is_the_markup_the_template_macro_wrote(n, stacked):
    from jinja2 import Environment

    from admin_site import web

    days = [date(2026, 12, 5) - timedelta(days=n - 1 - i) for i in range(n)]
    series = [charts.Series("issued <&> \"x\"", "s-in", [(i * 7919) % 1013 * 1000 for i in range(n)]),
              charts.Series("removed", "s-out", [0 if i % 5 == 0 else i * 3 for i in range(n)])]  # fmt: skip
    chart = charts.bar_chart("Points <issued> & 'removed'", days, series, stacked=stacked,
                             describe=lambda d, v: f"{d}: {v[0]:,} <in> & {v[1]:,} out")  # fmt: skip
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = web._money
    before = env.from_string(_MACRO).render(id="chart-x", chart=chart)
    after = str(charts.figure("chart-x", chart))
    # Then the same elements, attributes and texts, in the same order (every value escaped once)
    assert _elements(after) == _elements(before)
    assert len([e for e in _elements(after) if e[:2] == ("start", "g")]) == n + 4
    assert "<in>" not in after and "&lt;in&gt; &amp;" in after
