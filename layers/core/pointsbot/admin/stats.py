"""The admin dashboard's figures: members, circulation, activity, and points per day.

Closed days are summed once and kept in admin_daily_totals (the ledger never changes
behind them), so the chart costs a day's worth of rows however long the ledger grows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg

from ..community import windows
from ..community.windows import Window
from ..ledger import LeaderboardRow, leaderboard_top
from ..ledger.entries import _ENTRY_COLUMNS, LedgerEntry
from ..platform.amounts import COUNTER_CEILING
from ..platform.errors import InvalidInput

CHART_DAYS = 30
CHART_PERIODS = (7, 30, 90)
PERIOD_REFUSAL = "The charts' period is 7, 30 or 90 days."
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
    failed_dms: int  # failed and not retried yet
    queued_dms: int

    def as_json(self) -> dict[str, int | str]:
        """The figures for stats.json. Each balance is within ±10^12, but the circulation is a sum
        over members and can pass 2^53, past which a JavaScript number is no longer exact: such a
        figure is sent as a decimal string (the dashboard script shows strings as they are)."""
        figures = {
            "members": self.members,
            "points_in_circulation": self.points_in_circulation,
            "transactions_today": self.transactions_today,
            "transactions_7d": self.transactions_7d,
            "pending_emails": self.pending_emails,
            "failed_dms": self.failed_dms,
            "queued_dms": self.queued_dms,
        }
        return {k: v if abs(v) <= COUNTER_CEILING else str(v) for k, v in figures.items()}


@dataclass(frozen=True)
class DayTotal:
    day: date
    issued: int
    removed: int  # a positive number: points taken away
    entries: int
    new_members: int = 0
    active_members: int = 0  # members with at least one entry that day


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# Totals per UTC day in [s, e): the entries are one range of transactions_daily_idx read from
# the index alone (it INCLUDEs amount and user_id, sql/060), so today's live day, distinct
# active members included, never fetches an entry from the heap; joins from members_joined.
_DAY_TOTALS = """
WITH t AS (
    SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
           coalesce(sum(amount) FILTER (WHERE amount > 0), 0) AS issued,
           coalesce(-sum(amount) FILTER (WHERE amount < 0), 0) AS removed,
           count(*) AS entries, count(DISTINCT user_id) AS active
    FROM transactions WHERE guild_id = %(g)s AND created_at >= %(s)s AND created_at < %(e)s
    GROUP BY 1
), m AS (
    SELECT (joined_at AT TIME ZONE 'UTC')::date AS day, count(*) AS joined
    FROM members WHERE guild_id = %(g)s AND joined_at >= %(s)s AND joined_at < %(e)s
    GROUP BY 1
)
SELECT coalesce(t.day, m.day), coalesce(t.issued, 0), coalesce(t.removed, 0), coalesce(t.entries, 0),
       coalesce(m.joined, 0), coalesce(t.active, 0)
FROM t FULL JOIN m ON m.day = t.day
"""


def _sum_days(
    conn: psycopg.Connection, guild_id: int, start: datetime, end: datetime
) -> dict[date, DayTotal]:
    """Totals per UTC day in [start, end), from the ledger and the members' join dates."""
    rows = conn.execute(_DAY_TOTALS, {"g": guild_id, "s": start, "e": end}).fetchall()
    return {r[0]: DayTotal(r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows}


# Today's totals over [s, e) in one pass of transactions_daily_idx (index only); `active`
# counts only members with no entry in [d, s), so a total kept up to s plus this is the day's:
# each of those members is one probe of transactions_member_idx.
_LIVE_SINCE = """
SELECT coalesce(sum(amount) FILTER (WHERE amount > 0), 0), coalesce(-sum(amount) FILTER (WHERE amount < 0), 0),
       count(*),
       count(DISTINCT user_id) FILTER (WHERE %(s)s <= %(d)s OR NOT EXISTS (
           SELECT 1 FROM transactions x WHERE x.guild_id = %(g)s AND x.user_id = t.user_id
           AND x.created_at >= %(d)s AND x.created_at < %(s)s))
FROM transactions t WHERE guild_id = %(g)s AND created_at >= %(s)s AND created_at < %(e)s
"""
# How stale the kept part of today may get before a load moves it forward (the entries read
# live are those since it).
LIVE_KEPT_MAX_AGE = timedelta(minutes=10)


def _live_since(conn: psycopg.Connection, guild_id: int, day: datetime, start: datetime,
                end: datetime) -> tuple[int, int, int, int]:  # fmt: skip
    row = conn.execute(_LIVE_SINCE, {"g": guild_id, "d": day, "s": start, "e": end}).fetchone()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def live_today(conn: psycopg.Connection, guild_id: int, now: datetime) -> DayTotal:
    """Today's totals (UTC day), exact: the part kept in admin_live_day (sql/064) up to a moment
    at least _FINAL_AFTER before it was written, plus the entries since, read live. The kept part
    is made on the day's first load and moved forward once it is LIVE_KEPT_MAX_AGE old, so a
    load reads the last few minutes of entries, not the whole day (same numbers as _sum_days:
    tests/integration/test_admin_live_day.py)."""
    today = now.astimezone(UTC).date()
    start, end = _day_start(today), _day_start(today + timedelta(days=1))
    settled = max(start, now - _FINAL_AFTER)
    row = conn.execute(
        "SELECT upto, issued, removed, entries, active FROM admin_live_day WHERE guild_id = %s AND day = %s",
        (guild_id, today),
    ).fetchone()
    if row is None:
        upto, kept = start, (0, 0, 0, 0)
    else:
        upto, kept = row[0], (int(row[1]), int(row[2]), int(row[3]), int(row[4]))
    if settled - upto >= LIVE_KEPT_MAX_AGE or (row is None and settled > start):
        more = _live_since(conn, guild_id, start, upto, settled)
        upto, kept = settled, tuple(a + b for a, b in zip(kept, more, strict=True))
        conn.execute(
            "INSERT INTO admin_live_day (guild_id, day, upto, issued, removed, entries, active) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (guild_id) DO UPDATE SET day = EXCLUDED.day, "
            "upto = EXCLUDED.upto, issued = EXCLUDED.issued, removed = EXCLUDED.removed, "
            "entries = EXCLUDED.entries, active = EXCLUDED.active "
            "WHERE admin_live_day.day < EXCLUDED.day OR admin_live_day.upto < EXCLUDED.upto",
            (guild_id, today, upto, *kept),
        )  # exact for its range whoever writes it: a later one wins
    tail = _live_since(conn, guild_id, start, upto, end)
    issued, removed, entries, active = (a + b for a, b in zip(kept, tail, strict=True))
    (joined,) = conn.execute(
        "SELECT count(*) FROM members WHERE guild_id = %s AND joined_at >= %s AND joined_at < %s",
        (guild_id, start, end),
    ).fetchone()
    return DayTotal(today, issued, removed, entries, int(joined), active)


def transaction_now(conn: psycopg.Connection) -> datetime:
    """Postgres' now(): the transaction's start, the same for every statement in it."""
    return conn.execute("SELECT now()").fetchone()[0]


def _final_days_end(now: datetime) -> date:
    """The first day that is not final yet (today, or yesterday just after midnight)."""
    return (now - _FINAL_AFTER).astimezone(UTC).date()


def _keep(conn: psycopg.Connection, guild_id: int, days: list[date]) -> dict[date, DayTotal]:
    """Sum the given closed days (a contiguous run is one query) and keep them."""
    if not days:
        return {}
    computed = _sum_days(conn, guild_id, _day_start(min(days)), _day_start(max(days) + timedelta(days=1)))
    totals = {d: computed.get(d, DayTotal(d, 0, 0, 0, 0)) for d in days}
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO admin_daily_totals (guild_id, day, issued, removed, entries, new_members, active_members) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (guild_id, day) DO NOTHING",
            [
                (guild_id, t.day, t.issued, t.removed, t.entries, t.new_members, t.active_members)
                for t in totals.values()
            ],
        )
    return totals


# How many uncached days one request sums at most; a guild with years of history gets its
# figures from the slow exact path for the first few dashboard loads, then the fast one.
FILL_DAYS_PER_CALL = 62


def _history(conn: psycopg.Connection, guild_id: int, final_end: date) -> tuple[date, int]:
    """The guild's first day (its creation, first entry or first join, whichever is first) and
    how many closed days before `final_end` are kept, in one statement."""
    row = conn.execute(
        """
        WITH h AS (
            SELECT (least(
                (SELECT created_at FROM guilds WHERE guild_id = %(g)s),
                (SELECT min(created_at) FROM transactions WHERE guild_id = %(g)s),
                (SELECT min(joined_at) FROM members WHERE guild_id = %(g)s)) AT TIME ZONE 'UTC')::date AS first
        )
        SELECT h.first, (SELECT count(*) FROM admin_daily_totals
                         WHERE guild_id = %(g)s AND day >= h.first AND day < %(end)s)
        FROM h
        """,
        {"g": guild_id, "end": final_end},
    ).fetchone()
    if row[0] is None:  # nothing yet: today
        return datetime.now(UTC).date(), 0
    return row[0], int(row[1])


# Failed DMs without a retry: the failed ones (a range of direct_messages_guild_idx) less the
# failed ones a retry ("retry:<id>", at most one per DM) names, found from the retries through
# direct_messages_retries_idx (sql/038); no pass over the guild's DMs.
_FAILED_NOT_RETRIED = """(
    (SELECT count(*) FROM direct_messages WHERE guild_id = %(g)s AND status = 'failed')
  - (SELECT count(*) FROM direct_messages r
     JOIN direct_messages d ON d.id = CASE WHEN substr(r.dedupe_key, 7) ~ '^[0-9]{1,18}$'
                                           THEN substr(r.dedupe_key, 7)::bigint END
     WHERE r.guild_id = %(g)s AND r.dedupe_key LIKE 'retry:%%'
       AND d.guild_id = %(g)s AND d.status = 'failed'))"""


def figures(conn: psycopg.Connection, guild_id: int, now: datetime | None = None) -> DashboardFigures:
    """The dashboard's numbers, exact. Members and circulation come from the kept closed days
    plus the entries since (the ledger is the balances' sum), once every day is kept. `now`: the
    transaction's (transaction_now), read once for all of a page's reads."""
    now = now or transaction_now(conn)
    final_end = _final_days_end(now)
    start, kept_days = _history(conn, guild_id, final_end)
    wanted = (final_end - start).days
    if kept_days < wanted:
        have = {
            r[0]
            for r in conn.execute(
                "SELECT day FROM admin_daily_totals WHERE guild_id = %s AND day >= %s AND day < %s",
                (guild_id, start, final_end),
            ).fetchall()
        }
        missing = [d for d in (start + timedelta(days=i) for i in range(wanted)) if d not in have]
        _keep(conn, guild_id, missing[:FILL_DAYS_PER_CALL])
        complete = len(missing) <= FILL_DAYS_PER_CALL
    else:
        complete = True
    since = _day_start(final_end)
    today = _day_start(now.astimezone(UTC).date())
    week = today - timedelta(days=6)
    params = {"g": guild_id, "since": since, "end": final_end, "today": today, "week": week}
    if complete:
        # One pass over the entries since the last kept day (today's are among them: `since`
        # is today's or yesterday's start) gives circulation, today's and the week's counts.
        row = conn.execute(
            f"""
            WITH recent AS (
                SELECT coalesce(sum(amount), 0) AS amount, count(*) AS n,
                       count(*) FILTER (WHERE created_at >= %(today)s) AS today
                FROM transactions WHERE guild_id = %(g)s AND created_at >= %(since)s
            ), kept AS (
                SELECT coalesce(sum(new_members), 0) AS joined, coalesce(sum(issued - removed), 0) AS amount,
                       coalesce(sum(entries) FILTER (WHERE day >= %(week)s), 0) AS week
                FROM admin_daily_totals WHERE guild_id = %(g)s AND day < %(end)s
            )
            SELECT kept.joined + (SELECT count(*) FROM members WHERE guild_id = %(g)s AND joined_at >= %(since)s),
                   kept.amount + recent.amount,
                   recent.today,
                   kept.week + recent.n,
                   (SELECT count(*) FROM email_submissions WHERE guild_id = %(g)s AND status = 'pending'),
                   {_FAILED_NOT_RETRIED},
                   (SELECT count(*) FROM direct_messages WHERE guild_id = %(g)s AND status IN ('queued', 'sending'))
            FROM recent, kept
            """,
            params,
        ).fetchone()
        return DashboardFigures(*(int(v) for v in row))
    members_n, circulation = conn.execute(
        "SELECT count(*), coalesce(sum(balance), 0) FROM points WHERE guild_id = %s", (guild_id,)
    ).fetchone()
    row = conn.execute(
        f"""
        SELECT
          (SELECT count(*) FROM transactions WHERE guild_id = %(g)s AND created_at >= %(today)s),
          (SELECT count(*) FROM transactions WHERE guild_id = %(g)s AND created_at >= %(week)s),
          (SELECT count(*) FROM email_submissions WHERE guild_id = %(g)s AND status = 'pending'),
          {_FAILED_NOT_RETRIED},
          (SELECT count(*) FROM direct_messages WHERE guild_id = %(g)s AND status IN ('queued', 'sending'))
        """,
        params,
    ).fetchone()
    return DashboardFigures(int(members_n), int(circulation), *(int(v) for v in row))


def daily_series(
    conn: psycopg.Connection, guild_id: int, days: int = CHART_DAYS, now: datetime | None = None
) -> list[DayTotal]:
    """Points issued and removed, entries and active members per UTC day for the last `days`
    days, today included: the kept closed days (one index range of admin_daily_totals), the
    missing closed days summed once and kept, and today summed live."""
    if days not in CHART_PERIODS:
        raise InvalidInput(PERIOD_REFUSAL)
    now = now or transaction_now(conn)
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    final_end = _final_days_end(now)
    cached = {
        r[0]: DayTotal(r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]))
        for r in conn.execute(
            "SELECT day, issued, removed, entries, new_members, active_members FROM admin_daily_totals "
            "WHERE guild_id = %s AND day >= %s",
            (guild_id, first),
        ).fetchall()
    }
    missing = [d for d in (first + timedelta(days=i) for i in range(days)) if d not in cached]
    cached.update(_keep(conn, guild_id, [d for d in missing if d < final_end]))
    open_days = [d for d in missing if d >= final_end and d != today]  # yesterday, just after midnight
    if open_days:
        live = _sum_days(
            conn, guild_id, _day_start(min(open_days)), _day_start(max(open_days) + timedelta(days=1))
        )
        for day in open_days:
            cached[day] = live.get(day, DayTotal(day, 0, 0, 0, 0))
    if today in missing:
        cached[today] = live_today(conn, guild_id, now)
    return [cached[first + timedelta(days=i)] for i in range(days)]


def recent_transactions(conn: psycopg.Connection, guild_id: int, limit: int = 10) -> list[LedgerEntry]:
    rows = conn.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM transactions WHERE guild_id = %s ORDER BY id DESC LIMIT %s",
        (guild_id, limit),
    ).fetchall()
    return [LedgerEntry(*r) for r in rows]


@dataclass(frozen=True)
class DayDms:
    """DMs created on a UTC day, by where their delivery ended (or has not yet)."""

    day: date
    sent: int
    failed: int
    waiting: int = 0  # queued or being sent; only ever on a day not kept yet


# One range of direct_messages_created_idx, read from the index alone (status is INCLUDEd).
_DMS_PER_DAY = """
SELECT (created_at AT TIME ZONE 'UTC')::date,
       count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'failed'),
       count(*) FILTER (WHERE status IN ('queued', 'sending'))
FROM direct_messages WHERE guild_id = %(g)s AND created_at >= %(s)s AND created_at < %(e)s
GROUP BY 1
"""


def _count_dms(conn: psycopg.Connection, guild_id: int, first: date, last: date) -> dict[date, DayDms]:
    """DMs per UTC day of creation in [first, last], by status (direct_messages_created_idx)."""
    rows = conn.execute(
        _DMS_PER_DAY, {"g": guild_id, "s": _day_start(first), "e": _day_start(last + timedelta(days=1))}
    ).fetchall()
    return {r[0]: DayDms(r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows}


def dm_series(
    conn: psycopg.Connection, guild_id: int, days: int = CHART_DAYS, now: datetime | None = None
) -> list[DayDms]:
    """DM delivery outcomes per UTC day for the last `days` days. A closed day whose DMs have
    all ended (sent or failed: final, a retry is a new DM) is kept in admin_daily_dms; the
    others, today's and any with a DM still on its way, are counted live."""
    if days not in CHART_PERIODS:
        raise InvalidInput(PERIOD_REFUSAL)
    now = now or transaction_now(conn)
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    final_end = _final_days_end(now)
    kept = {
        r[0]: DayDms(r[0], int(r[1]), int(r[2]))
        for r in conn.execute(
            "SELECT day, sent, failed FROM admin_daily_dms WHERE guild_id = %s AND day >= %s",
            (guild_id, first),
        ).fetchall()
    }
    missing = [d for d in (first + timedelta(days=i) for i in range(days)) if d not in kept]
    if missing:
        live = _count_dms(conn, guild_id, min(missing), max(missing))
        settled = []
        for day in missing:
            counted = live.get(day, DayDms(day, 0, 0, 0))
            kept[day] = counted
            if day < final_end and counted.waiting == 0:
                settled.append(counted)
        if settled:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO admin_daily_dms (guild_id, day, sent, failed) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (guild_id, day) DO NOTHING",
                    [(guild_id, d.day, d.sent, d.failed) for d in settled],
                )
    return [kept[first + timedelta(days=i)] for i in range(days)]


BOARD_PERIODS = ("all", "week", "month", "season")
BOARD_REFUSAL = "The top earners' period is all time, week, month or season."


@dataclass(frozen=True)
class TopEarners:
    period: str  # all | week | month | season
    label: str  # "all time", "December 2026", "season Winter Cup"
    rows: tuple[LeaderboardRow, ...]
    members: int  # members on that board
    window: Window | None = None
    no_season: bool = False  # period "season" with no season running


def top_earners(conn: psycopg.Connection, guild_id: int, period: str = "all", limit: int = 10) -> TopEarners:
    """The top of a board: all time (balances: ledger.leaderboard_top, the first rows of the
    leaderboard index, ranked from the rows themselves) or this week, this month or the running
    season (window scores, community.windows, read through their bucket counts) — the boards
    /leaderboard shows, with the same ranks; no pass over the members or the ledger."""
    if period not in BOARD_PERIODS:
        raise InvalidInput(BOARD_REFUSAL)
    if period == "all":
        board = leaderboard_top(conn, guild_id, limit)
        return TopEarners(period, "all time", board.rows, board.total_members)
    window = windows.window_for(conn, guild_id, period)
    if window is None:
        return TopEarners(period, "the current season", (), 0, no_season=True)
    board = windows.window_board(conn, guild_id, window.key, 1, limit)
    label = "this week" if period == "week" else window.label
    return TopEarners(period, label, board.rows, board.total_members, window)
