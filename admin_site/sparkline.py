"""A member's balance as a small line drawn by the server: inline SVG with classes only (no style
attribute, no script), so it passes the site's CSP and needs no charting library for one line.
Hand-written because a sparkline is a path of at most 121 points; the dashboard's charts are
another engineer's and may use a library."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup

from pointsbot.ledger import TrailPoint

WIDTH, HEIGHT, PAD = 320, 64, 3


@dataclass(frozen=True)
class Sparkline:
    svg: Markup
    summary: str  # the same in words (for the caption and screen readers)
    since: datetime  # the first point's time (the page writes it in the admin's time zone)


def sparkline(trail: Sequence[TrailPoint], now: datetime | None = None) -> Sparkline | None:
    """The balance over time as a step line from the first point to now; None without entries."""
    if not trail:
        return None
    now = max(now or datetime.now(UTC), trail[-1].at)
    start = trail[0].at
    span = max((now - start).total_seconds(), 1.0)
    low = min(0, *(p.balance for p in trail))
    high = max(0, *(p.balance for p in trail))
    rise = max(high - low, 1)

    def x(at: datetime) -> float:
        return round(PAD + (at - start).total_seconds() / span * (WIDTH - 2 * PAD), 1)

    def y(balance: int) -> float:
        return round(HEIGHT - PAD - (balance - low) / rise * (HEIGHT - 2 * PAD), 1)

    path = [f"M{x(trail[0].at)} {y(trail[0].balance)}"]
    for point in trail[1:]:
        path.append(f"H{x(point.at)}V{y(point.balance)}")  # a balance holds until the next change
    path.append(f"H{x(now)}")
    last = trail[-1]
    changes = len(trail) - 1
    summary = (
        f"Balance over the last {changes:,} change{'s' if changes != 1 else ''}: "
        f"from {trail[0].balance:,} to {last.balance:,}, lowest {min(p.balance for p in trail):,}, "
        f"highest {max(p.balance for p in trail):,}."
    )
    zero = y(0)
    svg = Markup(
        '<svg class="sparkline" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        'aria-label="{summary}"><title>{summary}</title>'
        '<line class="zero" x1="{pad}" x2="{right}" y1="{zero}" y2="{zero}"></line>'
        '<path class="line" d="{d}"></path>'
        '<circle class="end" cx="{ex}" cy="{ey}" r="2.5"></circle></svg>'
    ).format(w=WIDTH, h=HEIGHT, summary=summary, pad=PAD, right=WIDTH - PAD, zero=zero, d=" ".join(path),
             ex=x(now), ey=y(last.balance))  # fmt: skip
    return Sparkline(svg, summary, trail[0].at)
