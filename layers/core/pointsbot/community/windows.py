"""Time-windowed leaderboards: this week, this month, a season (issue 15).

A member's score in a window is the sum of the entries that count (the guild's choice, see
sql/046) made inside it; sql/046's trigger keeps it in `window_scores`, with per-bucket counts
in `window_counts`, in the transaction that writes the entry. Boards and ranks here read those
the way pointsbot.ledger.queries reads the all-time board (sql/036): a rank is 1 + the counts
of the buckets above + the members above inside the score's own bucket, and any page starts
from the member at its first position, found through the counts; Next / Previous go by keyset.
Nothing here sums the ledger at read time.

Windows are calendar weeks (Monday to Monday) and calendar months in the guild's time zone, and
seasons ([starts_at, ends_at)). Their boundaries are computed by Postgres from the same
expressions the trigger uses, so a window holds exactly the entries the trigger put in it,
across daylight saving changes too.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import psycopg
from psycopg.types.json import Jsonb

from ..ledger import KINDS, SOURCES, LeaderboardKey, LeaderboardPage, LeaderboardRow, RankInfo
from ..ledger.queries import _page_args
from ..platform.errors import InvalidInput, NotFound

PERIODS = ("all", "week", "month", "season")
WINDOW_PERIODS = ("week", "month", "season")
DEFAULT_TIME_ZONE = "UTC"
DEFAULT_EXCLUDED_SOURCES = ("purchase", "purchase_refund")
# A reset is bookkeeping, never a score; it is left out by the trigger whatever the guild says.
NEVER_COUNTED = ("season_reset",)


@dataclass(frozen=True)
class Window:
    """One window of a guild's board: its key in window_scores and its [start, end)."""

    period: str  # week | month | season
    key: str  # 'week:2026-11-30', 'month:2026-12-01', 'season:7'
    starts_at: datetime
    ends_at: datetime
    label: str  # "this week", "December 2026", "season Winter Cup"
    season_id: int | None = None


@dataclass(frozen=True)
class CountingRules:
    time_zone: str
    excluded_sources: tuple[str, ...]
    excluded_kinds: tuple[str, ...]


# -- the guild's settings -----------------------------------------------------------------------
def check_time_zone(conn: psycopg.Connection, name: object) -> str:
    """An IANA time zone name both Python and Postgres know; else InvalidInput in plain words."""
    text = name.strip() if isinstance(name, str) else ""
    problem = (
        f"{text[:64]!r} is not a time zone I know. Use a name like Europe/Berlin, America/New_York or UTC."
    )
    if not text or len(text) > 64 or not text.isascii() or text.startswith(("/", ".")) or ".." in text:
        raise InvalidInput(problem)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(problem) from None
    if text not in available_timezones() and text != "UTC":
        raise InvalidInput(problem)
    known = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = %s)", (text,)
    ).fetchone()
    if not known[0]:
        raise InvalidInput(problem)
    return text


def counting_rules(conn: psycopg.Connection, guild_id: int) -> CountingRules:
    row = conn.execute("SELECT settings FROM guilds WHERE guild_id = %s", (guild_id,)).fetchone()
    settings: dict[str, Any] = (row[0] if row else None) or {}
    return CountingRules(
        time_zone=str(settings.get("time_zone") or DEFAULT_TIME_ZONE),
        excluded_sources=tuple(settings.get("window_excluded_sources", DEFAULT_EXCLUDED_SOURCES)),
        excluded_kinds=tuple(settings.get("window_excluded_kinds", ())),
    )


def set_time_zone(conn: psycopg.Connection, guild_id: int, name: str) -> str:
    """Store the guild's time zone (checked first: nothing is written for an unknown zone)."""
    zone = check_time_zone(conn, name)
    _merge_settings(conn, guild_id, {"time_zone": zone})
    return zone


def check_counting(
    *,
    excluded_sources: list[str] | tuple[str, ...] | None = None,
    excluded_kinds: list[str] | tuple[str, ...] | None = None,
) -> None:
    """InvalidInput in words when a source or kind to leave out is not one the ledger has."""
    bad = [s for s in excluded_sources or () if s not in SOURCES]
    if bad:
        raise InvalidInput(f"Unknown source {str(bad[0])[:40]!r}; known: {', '.join(SOURCES)}.")
    bad = [k for k in excluded_kinds or () if k not in KINDS]
    if bad:
        raise InvalidInput(f"Unknown kind {str(bad[0])[:40]!r}; known: {', '.join(KINDS)}.")


def set_counting(
    conn: psycopg.Connection,
    guild_id: int,
    *,
    excluded_sources: list[str] | tuple[str, ...] | None = None,
    excluded_kinds: list[str] | tuple[str, ...] | None = None,
) -> CountingRules:
    """Which entries count in window scores from now on: sources and kinds left out."""
    check_counting(excluded_sources=excluded_sources, excluded_kinds=excluded_kinds)
    changes: dict[str, Any] = {}
    if excluded_sources is not None:
        changes["window_excluded_sources"] = sorted(set(excluded_sources))
    if excluded_kinds is not None:
        changes["window_excluded_kinds"] = sorted(set(excluded_kinds))
    if changes:
        _merge_settings(conn, guild_id, changes)
    return counting_rules(conn, guild_id)


@functools.cache
def time_zone_names() -> tuple[str, ...]:
    """The IANA time zone names to offer (check_time_zone has the last word)."""
    named = (z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
    return ("UTC", *sorted(named))


def _merge_settings(conn: psycopg.Connection, guild_id: int, changes: dict[str, Any]) -> None:
    conn.execute("INSERT INTO guilds (guild_id) VALUES (%s) ON CONFLICT (guild_id) DO NOTHING", (guild_id,))
    conn.execute(
        "UPDATE guilds SET settings = settings || %s, updated_at = now() WHERE guild_id = %s",
        (Jsonb(changes), guild_id),
    )


# -- which window ---------------------------------------------------------------------------------
_CALENDAR = """
SELECT %(unit)s::text || ':' || to_char(date_trunc(%(unit)s::text, at AT TIME ZONE tz), 'YYYY-MM-DD'),
       date_trunc(%(unit)s::text, at AT TIME ZONE tz) AT TIME ZONE tz,
       (date_trunc(%(unit)s::text, at AT TIME ZONE tz) + ('1 ' || %(unit)s::text)::interval) AT TIME ZONE tz,
       to_char(date_trunc(%(unit)s::text, at AT TIME ZONE tz), 'FMMonth YYYY'),
       to_char(date_trunc(%(unit)s::text, at AT TIME ZONE tz), 'YYYY-MM-DD')
FROM (SELECT coalesce(%(at)s::timestamptz, (%(day)s::date + time '12:00') AT TIME ZONE z.tz, now()) AS at, z.tz
      FROM (SELECT coalesce((SELECT settings ->> 'time_zone' FROM guilds WHERE guild_id = %(g)s), 'UTC') AS tz) z) x
"""


def calendar_window(
    conn: psycopg.Connection, guild_id: int, period: str, at: datetime | None = None, day: date | None = None
) -> Window:
    """The week or month holding `at` (or the local `day`; now if neither) in the guild's time zone."""
    if period not in ("week", "month"):
        raise InvalidInput("A calendar window is a week or a month.")
    key, start, end, month_name, first_day = conn.execute(
        _CALENDAR, {"unit": period, "at": at, "day": day, "g": guild_id}
    ).fetchone()
    label = f"the week of {first_day}" if period == "week" else month_name
    return Window(period, key, start, end, label)


def season_window(conn: psycopg.Connection, guild_id: int, season_id: int) -> Window:
    row = conn.execute(
        "SELECT id, name, starts_at, ends_at FROM seasons WHERE guild_id = %s AND id = %s",
        (guild_id, season_id),
    ).fetchone()
    if row is None:
        raise NotFound("There is no such season in this server.")
    return Window("season", f"season:{row[0]}", row[2], row[3], f"season {row[1]}", season_id=row[0])


def current_season_id(conn: psycopg.Connection, guild_id: int) -> int | None:
    row = conn.execute(
        "SELECT id FROM seasons WHERE guild_id = %s AND starts_at <= now() AND ends_at > now() "
        "ORDER BY starts_at DESC LIMIT 1",
        (guild_id,),
    ).fetchone()
    return row[0] if row else None


def window_for(conn: psycopg.Connection, guild_id: int, period: str) -> Window | None:
    """The window `period` names now: this week, this month, or the season running (None if
    no season is running)."""
    if period in ("week", "month"):
        return calendar_window(conn, guild_id, period)
    if period == "season":
        season_id = current_season_id(conn, guild_id)
        return None if season_id is None else season_window(conn, guild_id, season_id)
    raise InvalidInput(f"The period is one of: {', '.join(PERIODS)}.")


_KEY = re.compile(r"(week|month):(\d{4}-\d{2}-\d{2})|season:([1-9]\d{0,17})")


def is_window_key(text: object) -> bool:
    """Whether `text` has the shape of a window key (which window it names is checked apart)."""
    return isinstance(text, str) and _KEY.fullmatch(text) is not None


def window_from_key(conn: psycopg.Connection, guild_id: int, key: object) -> Window | None:
    """The window a stored key names (a button's), or None when it names none of this guild's
    (a week key must be a Monday of the guild's calendar, a season this guild's)."""
    match = _KEY.fullmatch(key) if isinstance(key, str) else None
    if match is None:
        return None
    if match.group(3):
        try:
            return season_window(conn, guild_id, int(match.group(3)))
        except NotFound:
            return None
    try:
        day = date.fromisoformat(match.group(2))
    except ValueError:
        return None
    window = calendar_window(conn, guild_id, match.group(1), day=day)
    return window if window.key == key else None


# -- boards and ranks -------------------------------------------------------------------------
# As pointsbot.ledger.queries, over window_scores / window_counts of one period (%(w)s).
_ABOVE_EXPR = """
       coalesce((SELECT sum(members) FROM window_counts
                  WHERE guild_id = %(g)s AND period = %(w)s AND tier = 1 AND bucket > balance_class({b})), 0)
     + coalesce((SELECT sum(members) FROM window_counts
                  WHERE guild_id = %(g)s AND period = %(w)s AND tier = 0 AND bucket > balance_bucket({b})
                    AND bucket < balance_class_end({b})), 0)
     + (SELECT count(*) FROM window_scores
         WHERE guild_id = %(g)s AND period = %(w)s AND score > {b} AND score < balance_bucket_end({b}))
"""
_TOTAL = "coalesce((SELECT sum(members) FROM window_counts WHERE guild_id = %(g)s AND period = %(w)s AND tier = 1), 0)"
_ABOVE = f"""
SELECT b.score, {_ABOVE_EXPR.format(b="b.score")}, {_TOTAL}
FROM unnest(%(scores)s::bigint[]) AS b(score)
"""
_RANK = f"""
SELECT me.score, me.present, {_ABOVE_EXPR.format(b="me.score")}, {_TOTAL}
FROM (SELECT coalesce(s.score, 0) AS score, s.score IS NOT NULL AS present
      FROM (SELECT 1) one LEFT JOIN window_scores s
        ON s.guild_id = %(g)s AND s.period = %(w)s AND s.user_id = %(u)s) me
"""
_AT_POSITION = """
WITH class AS (
    SELECT bucket, cum - members AS before
    FROM (SELECT bucket, sum(members) AS members, sum(sum(members)) OVER (ORDER BY bucket DESC) AS cum
          FROM window_counts WHERE guild_id = %(g)s AND period = %(w)s AND tier = 1 GROUP BY bucket) c
    WHERE cum >= %(p)s ORDER BY bucket DESC LIMIT 1
), fine AS (
    SELECT f.bucket, class.before + f.cum - f.members AS before
    FROM class, LATERAL (
        SELECT bucket, sum(members) AS members, sum(sum(members)) OVER (ORDER BY bucket DESC) AS cum
        FROM window_counts
        WHERE guild_id = %(g)s AND period = %(w)s AND tier = 0
          AND bucket >= class.bucket AND bucket < balance_class_end(class.bucket)
        GROUP BY bucket) f
    WHERE f.cum >= %(p)s - class.before ORDER BY f.bucket DESC LIMIT 1
)
SELECT s.score, s.user_id
FROM fine, LATERAL (
    SELECT score, user_id FROM window_scores
    WHERE guild_id = %(g)s AND period = %(w)s AND score >= fine.bucket AND score < balance_bucket_end(fine.bucket)
    ORDER BY score DESC, user_id
    OFFSET %(p)s - fine.before - 1 LIMIT 1) s
"""
_FROM_KEY = """
SELECT k.user_id, k.score, m.display_name
FROM ((SELECT user_id, score FROM window_scores
        WHERE guild_id = %(g)s AND period = %(w)s AND score = %(b)s AND user_id >= %(u)s
        ORDER BY user_id LIMIT %(n)s)
      UNION ALL
      (SELECT user_id, score FROM window_scores
        WHERE guild_id = %(g)s AND period = %(w)s AND score < %(b)s ORDER BY score DESC, user_id LIMIT %(n)s)
      LIMIT %(n)s) k
LEFT JOIN members m ON m.guild_id = %(g)s AND m.user_id = k.user_id
ORDER BY k.score DESC, k.user_id
"""
_BEFORE_KEY = """
SELECT k.user_id, k.score, m.display_name
FROM ((SELECT user_id, score FROM window_scores
        WHERE guild_id = %(g)s AND period = %(w)s AND score = %(b)s AND user_id < %(u)s
        ORDER BY user_id DESC LIMIT %(n)s)
      UNION ALL
      (SELECT user_id, score FROM window_scores
        WHERE guild_id = %(g)s AND period = %(w)s AND score > %(b)s ORDER BY score, user_id DESC LIMIT %(n)s)
      LIMIT %(n)s) k
LEFT JOIN members m ON m.guild_id = %(g)s AND m.user_id = k.user_id
ORDER BY k.score DESC, k.user_id
"""


def window_members(conn: psycopg.Connection, guild_id: int, key: str) -> int:
    """How many members have a score in the window (made a counted entry in it)."""
    return int(conn.execute(f"SELECT {_TOTAL}", {"g": guild_id, "w": key}).fetchone()[0])


def window_board(
    conn: psycopg.Connection,
    guild_id: int,
    key: str,
    page: int = 1,
    page_size: int = 10,
    *,
    after: LeaderboardKey | None = None,
    before: LeaderboardKey | None = None,
    keyset_only: bool = False,
) -> LeaderboardPage:
    """A window's board (`key` from a Window), highest score first; ties share a rank and are
    listed by user id. Same contract as ledger.leaderboard_page; `balance` is the window score
    and total_members the members with a score in the window."""
    page, page_size = _page_args(page, page_size)
    params = {"g": guild_id, "w": key, "n": page_size}
    rows: list[tuple[int, int, str | None]] = []
    if after is not None:
        rows = conn.execute(_FROM_KEY, {**params, "b": after[0], "u": after[1] + 1}).fetchall()
    elif before is not None:
        rows = conn.execute(_BEFORE_KEY, {**params, "b": before[0], "u": before[1]}).fetchall()
    # keyset_only (the API's cursor): a short page is the end of the board, not a moved board.
    if len(rows) < page_size and not (keyset_only and (after is not None or before is not None)):
        start = conn.execute(
            _AT_POSITION, {"g": guild_id, "w": key, "p": (page - 1) * page_size + 1}
        ).fetchone()
        rows = conn.execute(_FROM_KEY, {**params, "b": start[0], "u": start[1]}).fetchall() if start else []
    if not rows:
        return LeaderboardPage((), page, page_size, window_members(conn, guild_id, key))
    counted = conn.execute(
        _ABOVE, {"g": guild_id, "w": key, "scores": sorted({s for _, s, _ in rows})}
    ).fetchall()
    above = {score: int(n) for score, n, _ in counted}
    ranked = tuple(LeaderboardRow(above[s] + 1, user_id, s, name) for user_id, s, name in rows)
    return LeaderboardPage(ranked, page, page_size, int(counted[0][2]))


@dataclass(frozen=True)
class WindowRank:
    rank: int
    score: int
    total_members: int
    on_board: bool  # False: no counted entry in the window (score 0, ranked as 0)

    def as_rank_info(self) -> RankInfo:
        return RankInfo(self.rank, self.score, self.total_members)


def window_rank(conn: psycopg.Connection, guild_id: int, key: str, user_id: int) -> WindowRank:
    """A member's place in a window: 1 + the members with a strictly higher window score."""
    score, present, above, total = conn.execute(_RANK, {"g": guild_id, "w": key, "u": user_id}).fetchone()
    return WindowRank(int(above) + 1, int(score), int(total), bool(present))
