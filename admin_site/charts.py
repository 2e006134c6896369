"""The dashboard's charts, drawn on the server as SVG with real axes.

Why SVG from the server rather than a charting library in the browser: the page is complete as
sent (no script to fetch, parse and run, no extra bytes at cold start, nothing to build or pin in
npm: the Lambda package is Python only), it is CSP-clean as the CSP stands (no inline style, no
eval; SVG geometry is attributes, colours come from site.css, so the light and dark themes apply
to the charts too), and a bar's tooltip is its <title>, which browsers and screen readers show
without JavaScript. Each chart also has its numbers as a table (the accessible reading). The
geometry is computed here, once, in a fixed view box that scales to the card's width; on a phone
the labels are drawn larger in it, so they stay readable at half the size (site.css).

The markup is written here too (`figure`), one string per chart, not by a Jinja loop: a 90-day
dashboard is about 5,000 values (bars, tooltips, the numbers table), and the template's loop
escaped each on its own (half of that page's time, profiled). Numbers need no escaping; every
text is escaped once, as the template did.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from markupsafe import Markup, escape

from admin_site import timefmt

WIDTH = 640
HEIGHT = 240
LEFT = 60  # room for the value axis' labels
RIGHT = 22  # half a day label, so the last one is not cut
TOP = 12
BOTTOM = 34  # room for the day axis' labels


@dataclass(frozen=True)
class Series:
    name: str  # "issued"
    css: str  # the class that colours it: "s-in"
    values: Sequence[int]


# A chart has a few hundred of these (90 days, up to three series): named tuples, which cost a
# third of a frozen dataclass to make.
class Tick(NamedTuple):
    y: float
    label: str


class DayLabel(NamedTuple):
    x: float
    label: str


class Bar(NamedTuple):
    x: float
    y: float
    width: float
    height: float
    css: str


class Column(NamedTuple):
    """One day: its bars, and the area that shows its tooltip (`title`) when pointed at."""

    x: float
    width: float
    title: str
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class BarChart:
    title: str
    width: int
    height: int
    left: float
    right: float  # x of the plot's right edge
    top: float
    baseline: float  # y of the zero line
    ticks: tuple[Tick, ...]
    days: tuple[DayLabel, ...]
    columns: tuple[Column, ...]
    series: tuple[Series, ...]
    table: tuple[tuple[str, tuple[int, ...]], ...]  # (day, values) for the numbers table
    peak: int


def nice_step(peak: int, ticks: int = 4) -> int:
    """A round step (1, 2, 2.5 or 5 times a power of ten; whole numbers) so `ticks` steps reach the peak."""
    if peak <= ticks:
        return 1
    raw = peak / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * power
        if step >= raw and step == int(step):
            return int(step)
    return int(10 * power)


def compact(value: int) -> str:
    """An axis label: 950, 1.5k, 12k, 3M, 1.2B (the tooltips and the table give exact numbers)."""
    for size, suffix in ((10**9, "B"), (10**6, "M"), (10**3, "k")):
        if abs(value) >= size:
            text = f"{value / size:.1f}".rstrip("0").rstrip(".")
            return text + suffix
    return str(value)


def _label_every(n: int) -> int:
    return 1 if n <= 10 else max(1, round(n / 6))


def bar_chart(
    title: str,
    days: Sequence[date],
    series: Sequence[Series],
    *,
    stacked: bool = False,
    describe: object = None,
) -> BarChart:
    """Bars per day for each series, side by side (or stacked), on a value axis from zero with
    round ticks and a day axis; `describe(day, values)` gives a day's tooltip text."""
    n = max(len(days), 1)
    values = [tuple(int(s.values[i]) for s in series) for i in range(len(days))]
    peak = max([0, *((sum(v) if stacked else max(v, default=0)) for v in values)])
    step = nice_step(peak)
    top_value = max(step, math.ceil(peak / step) * step)
    right = WIDTH - RIGHT
    baseline = HEIGHT - BOTTOM
    plot_h = baseline - TOP
    slot = (right - LEFT) / n
    scale = plot_h / top_value
    ticks = tuple(Tick(round(baseline - v * scale, 1), compact(v)) for v in range(0, top_value + 1, step))
    every = _label_every(len(days))
    labels = tuple(
        DayLabel(round(LEFT + slot * (i + 0.5), 1), timefmt.short_day(d))
        for i, d in enumerate(days)
        if (len(days) - 1 - i) % every == 0
    )
    columns = []
    css = [s.css for s in series]
    if stacked:
        width = max(slot * 0.7, 1.0)
        inset, bar_w = (slot - width) / 2, round(width, 2)
    else:
        width = max(slot * 0.8 / max(len(series), 1), 0.8)
        gap, bar_w, offsets = slot * 0.1, round(width, 2), [width * k for k in range(len(series))]
    for i, (day, v) in enumerate(zip(days, values, strict=True)):
        x0 = LEFT + slot * i
        if stacked:
            bars, y, bar_x = [], baseline, round(x0 + inset, 2)
            for k, value in enumerate(v):
                h = value * scale
                y -= h
                if value:
                    bars.append(Bar(bar_x, round(y, 2), bar_w, round(h, 2), css[k]))
        else:
            bars = [Bar(round(x0 + gap + offsets[k], 2), round(baseline - value * scale, 2), bar_w,
                        round(value * scale, 2), css[k])
                    for k, value in enumerate(v) if value]  # fmt: skip
        text = (
            describe(day, v)
            if callable(describe)
            else f"{timefmt.day(day)}: "
            + ", ".join(f"{value:,} {s.name}" for s, value in zip(series, v, strict=True))
        )
        columns.append(Column(round(x0, 2), round(slot, 2), text, tuple(bars)))
    table = tuple((timefmt.day(d), v) for d, v in zip(days, values, strict=True))
    return BarChart(title, WIDTH, HEIGHT, LEFT, right, TOP, baseline, ticks, labels, tuple(columns),
                    tuple(series), table, peak)  # fmt: skip


@dataclass(frozen=True)
class Meter:
    """A top earner's bar: the share of the top score, as a width in a 0-100 view box."""

    width: float


def meters(scores: Sequence[int]) -> list[Meter]:
    top = max([1, *scores])
    return [Meter(round(max(score, 0) * 100 / top, 1)) for score in scores]


def figure(element_id: str, chart: BarChart) -> Markup:
    """The chart's <figure>: the SVG (grid, value axis, one <g class="day"> per day with its
    tooltip and bars, the axes, the day labels), the legend and the numbers as a table; the same
    elements and attributes the dashboard's template macro wrote, as one string."""
    e = escape
    # A number is written as the template wrote it: {{ x }} is str(x), and f"{x}" is the same.
    left, right, top, baseline = chart.left, chart.right, chart.top, chart.baseline
    plot_h = chart.baseline - chart.top
    out = [
        f'<figure class="chart-box" id="{e(element_id)}">\n<div class="chart-scroll">\n'
        f'<svg class="chart" viewBox="0 0 {chart.width} {chart.height}" role="img" '
        f'aria-labelledby="{e(element_id)}-title" preserveAspectRatio="xMidYMid meet">\n'
        f'<title id="{e(element_id)}-title">{e(chart.title)}, {len(chart.table)} days (UTC days), '
        f'peak {chart.peak:,}</title>\n<g class="grid">\n'
    ]
    out += [f'<line x1="{left}" y1="{t.y}" x2="{right}" y2="{t.y}"/>\n' for t in chart.ticks]
    out.append('</g>\n<g class="y-axis">\n')
    label_x = chart.left - 6
    out += [
        f'<text x="{label_x}" y="{t.y}" dy="0.32em" text-anchor="end">{e(t.label)}</text>\n'
        for t in chart.ticks
    ]
    out.append('</g>\n<g class="bars">\n')
    classes = {s.css: e(s.css) for s in chart.series}
    for c in chart.columns:
        bars = "".join(
            f'<rect class="{classes[b.css]}" x="{b.x}" y="{b.y}" width="{b.width}" height="{b.height}"/>'
            for b in c.bars
        )
        out.append(
            f'<g class="day">\n<title>{e(c.title)}</title>\n<rect class="hit" x="{c.x}" y="{top}" '
            f'width="{c.width}" height="{plot_h}"/>\n{bars}\n</g>\n'
        )
    out.append(
        f'</g>\n<line class="axis" x1="{left}" y1="{baseline}" x2="{right}" y2="{baseline}"/>\n'
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{baseline}"/>\n<g class="x-axis">\n'
    )
    tick_end, label_y = chart.baseline + 4, chart.baseline + 6
    out += [
        f'<line x1="{d.x}" y1="{baseline}" x2="{d.x}" y2="{tick_end}"/>\n'
        f'<text x="{d.x}" y="{label_y}" dy="1em" text-anchor="middle">{e(d.label)}</text>\n'
        for d in chart.days
    ]
    out.append('</g>\n</svg>\n</div>\n<figcaption class="legend">')
    out += [f'<span class="key {e(s.css)}" aria-hidden="true"></span> {e(s.name)} ' for s in chart.series]
    out.append(
        f"· peak {chart.peak:,} a day</figcaption>\n"
        '<details class="chart-numbers">\n<summary>The numbers</summary>\n<table class="data">\n'
        '<thead><tr><th scope="col">Day (UTC)</th>'
    )
    out += [f'<th scope="col" class="num">{e(s.name)}</th>' for s in chart.series]
    out.append("</tr></thead>\n<tbody>\n")
    out += [
        f"<tr><td>{e(day)}</td>" + "".join(f'<td class="num">{v:,}</td>' for v in values) + "</tr>\n"
        for day, values in reversed(chart.table)
    ]
    out.append("</tbody>\n</table>\n</details>\n</figure>\n")
    # Every text in `out` went through escape() above; the rest is our tags and numbers.
    return Markup("".join(out))  # noqa: S704
