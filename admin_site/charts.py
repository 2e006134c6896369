"""The dashboard's charts, drawn on the server as SVG with real axes.

Why SVG from the server rather than a charting library in the browser: the page is complete as
sent (no script to fetch, parse and run, no extra bytes at cold start, nothing to build or pin in
npm: the Lambda package is Python only), it is CSP-clean as the CSP stands (no inline style, no
eval; SVG geometry is attributes, colours come from site.css, so the light and dark themes apply
to the charts too), and a bar's tooltip is its <title>, which browsers and screen readers show
without JavaScript. Each chart also has its numbers as a table (the accessible reading). The
geometry is computed here, once, in a fixed view box that scales to the card's width; on a phone
the labels are drawn larger in it, so they stay readable at half the size (site.css).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

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


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class DayLabel:
    x: float
    label: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str


@dataclass(frozen=True)
class Column:
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
    for i, (day, v) in enumerate(zip(days, values, strict=True)):
        x0 = LEFT + slot * i
        bars = []
        if stacked:
            width = max(slot * 0.7, 1.0)
            y = baseline
            for s, value in zip(series, v, strict=True):
                h = value * scale
                y -= h
                if value:
                    bars.append(
                        Bar(
                            round(x0 + (slot - width) / 2, 2),
                            round(y, 2),
                            round(width, 2),
                            round(h, 2),
                            s.css,
                        )
                    )
        else:
            width = max(slot * 0.8 / max(len(series), 1), 0.8)
            for k, (s, value) in enumerate(zip(series, v, strict=True)):
                h = value * scale
                x = x0 + slot * 0.1 + width * k
                if value:
                    bars.append(Bar(round(x, 2), round(baseline - h, 2), round(width, 2), round(h, 2), s.css))
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
