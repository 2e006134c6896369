"""The admin dashboard's figures: members, circulation, activity, and points per day.

Closed days are summed once and kept in admin_daily_totals (the ledger never changes
behind them), so the chart costs a day's worth of rows however long the ledger grows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg

from .ledger import _ENTRY_COLUMNS, LedgerEntry

CHART_DAYS = 30
# A day is final once no transaction that began in it can still commit; the statement timeout
# bounds that far below this margin.
_FINAL_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class DashboardFigures:
    members: int
    points_in_circulation: int
    transactions_today: int
    transactions_7d: int
    pending_emails: int
    failed_dms: int
    queued_dms: int

    def as_json(self) -> dict[str, int]:
        return {
            "members": self.members,
            "points_in_circulation": self.points_in_circulation,
            "transactions_today": self.transactions_today,
            "transactions_7d": self.transactions_7d,
            "pending_emails": self.pending_emails,
            "failed_dms": self.failed_dms,
            "queued_dms": self.queued_dms,
        }


@dataclass(frozen=True)
class DayTotal:
    day: date
    issued: int
    removed: int  # a positive number: points taken away
    entries: int


def figures(conn: psycopg.Connection, guild_id: int) -> DashboardFigures:
    row = conn.execute(
        """
        WITH bounds AS (
            SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS today
        )
        SELECT
          (SELECT count(*) FROM points WHERE guild_id = %(g)s),
          (SELECT coalesce(sum(balance), 0) FROM points WHERE guild_id = %(g)s),
          (SELECT count(*) FROM transactions, bounds WHERE guild_id = %(g)s AND created_at >= bounds.today),
          (SELECT count(*) FROM transactions, bounds
            WHERE guild_id = %(g)s AND created_at >= bounds.today - interval '6 days'),
          (SELECT count(*) FROM email_submissions WHERE guild_id = %(g)s AND status = 'pending'),
          (SELECT count(*) FROM direct_messages WHERE guild_id = %(g)s AND status = 'failed'),
          (SELECT count(*) FROM direct_messages WHERE guild_id = %(g)s AND status IN ('queued', 'sending'))
        """,
        {"g": guild_id},
    ).fetchone()
    return DashboardFigures(*(int(v) for v in row))


def _sum_days(
    conn: psycopg.Connection, guild_id: int, start: datetime, end: datetime
) -> dict[date, DayTotal]:
    rows = conn.execute(
        """
        SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
               coalesce(sum(amount) FILTER (WHERE amount > 0), 0),
               coalesce(-sum(amount) FILTER (WHERE amount < 0), 0),
               count(*)
        FROM transactions
        WHERE guild_id = %s AND created_at >= %s AND created_at < %s
        GROUP BY 1
        """,
        (guild_id, start, end),
    ).fetchall()
    return {r[0]: DayTotal(r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows}


def daily_series(conn: psycopg.Connection, guild_id: int, days: int = CHART_DAYS) -> list[DayTotal]:
    """Points issued and removed per UTC day for the last `days` days, today included."""
    now = conn.execute("SELECT now()").fetchone()[0]
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    cached = {
        r[0]: DayTotal(r[0], int(r[1]), int(r[2]), int(r[3]))
        for r in conn.execute(
            "SELECT day, issued, removed, entries FROM admin_daily_totals WHERE guild_id = %s AND day >= %s",
            (guild_id, first),
        ).fetchall()
    }
    missing = [d for d in (first + timedelta(days=i) for i in range(days)) if d not in cached]
    closed_missing = [d for d in missing if _day_start(d + timedelta(days=1)) + _FINAL_AFTER <= now]
    if closed_missing:
        computed = _sum_days(
            conn,
            guild_id,
            _day_start(min(closed_missing)),
            _day_start(max(closed_missing) + timedelta(days=1)),
        )
        for day in closed_missing:
            total = computed.get(day, DayTotal(day, 0, 0, 0))
            cached[day] = total
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO admin_daily_totals (guild_id, day, issued, removed, entries) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (guild_id, day) DO NOTHING",
                [
                    (guild_id, t.day, t.issued, t.removed, t.entries)
                    for t in (cached[d] for d in closed_missing)
                ],
            )
    open_days = [d for d in missing if d not in closed_missing]
    if open_days:
        live = _sum_days(
            conn, guild_id, _day_start(min(open_days)), _day_start(max(open_days) + timedelta(days=1))
        )
        for day in open_days:
            cached[day] = live.get(day, DayTotal(day, 0, 0, 0))
    return [cached[first + timedelta(days=i)] for i in range(days)]


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def recent_transactions(conn: psycopg.Connection, guild_id: int, limit: int = 10) -> list[LedgerEntry]:
    rows = conn.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM transactions WHERE guild_id = %s ORDER BY id DESC LIMIT %s",
        (guild_id, limit),
    ).fetchall()
    return [LedgerEntry(*r) for r in rows]


@dataclass(frozen=True)
class ChartBar:
    x: float
    day: str
    issued_y: float
    issued_h: float
    removed_y: float
    removed_h: float
    issued: int
    removed: int


@dataclass(frozen=True)
class Chart:
    """Geometry of the server-rendered SVG bar chart (issued up, removed down from a middle line)."""

    width: int
    height: int
    middle: float
    bar_width: float
    bars: tuple[ChartBar, ...]
    peak: int


def chart(series: list[DayTotal], width: int = 720, height: int = 200) -> Chart:
    peak = max([1, *(max(t.issued, t.removed) for t in series)])
    half = (height - 20) / 2
    middle = 10 + half
    slot = width / max(len(series), 1)
    bar_width = max(slot * 0.35, 1)
    bars = []
    for index, total in enumerate(series):
        up = half * total.issued / peak
        down = half * total.removed / peak
        x = index * slot + slot * 0.1
        bars.append(
            ChartBar(
                x=round(x, 1), day=total.day.isoformat(),
                issued_y=round(middle - up, 1), issued_h=round(up, 1),
                removed_y=round(middle, 1), removed_h=round(down, 1),
                issued=total.issued, removed=total.removed,
            )
        )  # fmt: skip
    return Chart(width, height, round(middle, 1), round(bar_width, 1), tuple(bars), peak)
