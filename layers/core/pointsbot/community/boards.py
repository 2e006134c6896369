"""Leaderboard pages for the admin site and the public page (issue 15): one loader for both.

A board is any period: all time (ledger.leaderboard_page over sql/036's counts), this week or
month or a past one, a running season (community.windows over sql/046's window counts), or a
past season's final standings (season_standings, read by position). Each page is found as the
slash command finds it: page N through the counts (never OFFSET over the board), Previous and
Next by keyset from the first / last member shown; a final table by its position index. Ranks
are the slash command's: competition ranks, ties share one. Names and avatars are looked up
once per page (community.profiles.people); an erased member is shown without name or picture.
No statement the loader sends scans a board or OFFSETs over one, on any page of any period
(tests/integration/test_boards.py EXPLAINs each at 60,000 members).

The public page's rate limit is here too: requests per client address per fixed window, counted
by one statement as the API counts its keys (api.gate), in sql/049's table.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import psycopg

from ..ledger import LeaderboardKey, LeaderboardPage, leaderboard_page
from ..platform.amounts import MAX_BALANCE
from ..platform.errors import NotFound
from ..platform.paging import page_number
from . import profiles, seasons, windows

PAGE_SIZE = 25
MEDALS = {1: "🥇", 2: "🥈", 3: "🥉"}  # as the slash command shows the first three
PUBLIC_SETTING = "public_leaderboard"
NO_SUCH_BOARD = "There is no such board in this server."


@dataclass(frozen=True)
class Period:
    """The period a board shows. `value` is what a link carries to keep it: "all", a window's
    key ("week:2026-11-30", "month:2026-12-01", "season:7"); a season that has ended shows its
    final standings (`final`)."""

    value: str
    label: str
    window: windows.Window | None = None
    season: seasons.Season | None = None

    @property
    def final(self) -> bool:
        return self.season is not None and self.season.archived


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class BoardRow:
    rank: int
    user_id: int
    score: int
    person: profiles.Person

    @property
    def medal(self) -> str:
        return MEDALS.get(self.rank, "")

    @property
    def shown_name(self) -> str:
        return self.person.label

    @property
    def initial(self) -> str:
        return "?" if self.person.erased else self.person.initial


@dataclass(frozen=True)
class Board:
    guild_id: int
    period: Period
    page: LeaderboardPage
    rows: tuple[BoardRow, ...]
    choices: tuple[Choice, ...]

    @property
    def keyset(self) -> bool:
        """Whether Previous / Next carry a keyset (a final table goes by position instead)."""
        return not self.period.final

    @property
    def first_key(self) -> str | None:
        return f"{self.rows[0].score}:{self.rows[0].user_id}" if self.rows and self.keyset else None

    @property
    def last_key(self) -> str | None:
        return f"{self.rows[-1].score}:{self.rows[-1].user_id}" if self.rows and self.keyset else None


# -- the period -----------------------------------------------------------------------------------
def parse_period(conn: psycopg.Connection, guild_id: int, text: object) -> Period:
    """ "all" (or nothing), "week", "month", "season" (the one running), or a key a link carried
    (a week's or month's, "season:<id>" of any of the guild's seasons). Anything else, a week
    key that is not a Monday of the guild's calendar, another guild's season: NotFound."""
    value = text.strip() if isinstance(text, str) else ""
    if value in ("", "all"):
        return Period("all", "All time")
    if value in ("week", "month"):
        window = windows.calendar_window(conn, guild_id, value)
        return Period(window.key, _window_label(window), window)
    if value == "season":
        season_id = windows.current_season_id(conn, guild_id)
        if season_id is None:
            raise NotFound("No season is running in this server right now.")
        value = f"season:{season_id}"
    if not windows.is_window_key(value):
        raise NotFound(NO_SUCH_BOARD)
    if value.startswith("season:"):
        try:
            season = seasons.get_season(conn, guild_id, int(value.partition(":")[2]))
        except NotFound:
            raise NotFound(NO_SUCH_BOARD) from None
        window = windows.season_window(conn, guild_id, season.id)
        suffix = " (final standings)" if season.archived else ""
        return Period(value, f"Season {season.name}{suffix}", window, season)
    window = windows.window_from_key(conn, guild_id, value)
    if window is None:
        raise NotFound(NO_SUCH_BOARD)
    return Period(window.key, _window_label(window), window)


def _window_label(window: windows.Window) -> str:
    text = window.label
    return text[:1].upper() + text[1:]


def period_choices(conn: psycopg.Connection, guild_id: int) -> tuple[Choice, ...]:
    """What the period switcher offers: all time, this week, this month, and the guild's seasons
    that have begun (running: its live board; ended: its final standings), latest first."""
    week = windows.calendar_window(conn, guild_id, "week")
    month = windows.calendar_window(conn, guild_id, "month")
    choices = [
        Choice("all", "All time"),
        Choice(week.key, "This week"),
        Choice(month.key, f"This month ({month.label})"),
    ]
    for season in seasons.list_seasons(conn, guild_id, 50):
        if season.status == "scheduled":
            continue
        what = "running" if season.status == "running" else "final standings"
        choices.append(Choice(season.key, f"Season {season.name} ({what})"))
    return tuple(choices)


def parse_key(text: object) -> LeaderboardKey | None:
    """A keyset from a link ("<score>:<user id>"), or None for one this site never wrote."""
    if not isinstance(text, str):
        return None
    score, _, user = text.partition(":")
    body = score[1:] if score.startswith("-") else score
    if not (body.isascii() and body.isdigit() and 0 < len(body) <= 14):
        return None
    if not (user.isascii() and user.isdigit() and 0 < len(user) <= 19):
        return None
    key = (int(score), int(user))
    if abs(key[0]) > MAX_BALANCE or not 0 < key[1] < 2**63:
        return None
    return key


# -- the board ------------------------------------------------------------------------------------
def _page(
    conn: psycopg.Connection, guild_id: int, period: Period, page: int, page_size: int, cursor: dict[str, Any]
) -> LeaderboardPage:
    if period.final:
        return seasons.standings_page(conn, period.season, page, page_size)
    if period.window is None:
        return leaderboard_page(conn, guild_id, page, page_size, **cursor)
    return windows.window_board(conn, guild_id, period.window.key, page, page_size, **cursor)


def load_board(
    conn: psycopg.Connection,
    guild_id: int,
    period_text: object = "all",
    *,
    page: object = 1,
    after: object = None,
    before: object = None,
    page_size: int = PAGE_SIZE,
    choices: bool = True,
) -> Board:
    """One page of a board, its members' names and pictures, and the periods to switch to.

    `page` is the page to show (a jump, or the label of a keyset page); `after` / `before` the
    keyset of Next / Previous ("<score>:<user id>", ignored for a final table, which goes by
    position). Past the end, the last page, as the slash command does. Reads only."""
    period = parse_period(conn, guild_id, period_text)
    number = page_number(page)
    cursor: dict[str, Any] = {}
    if not period.final:
        if (key := parse_key(after)) is not None:
            cursor = {"after": key}
        elif (key := parse_key(before)) is not None:
            cursor = {"before": key}
    board = _page(conn, guild_id, period, number, page_size, cursor)
    if number > board.pages or (cursor and not board.rows):
        board = _page(conn, guild_id, period, board.pages, page_size, {})
    people = profiles.people(conn, guild_id, {r.user_id for r in board.rows})
    rows = tuple(
        BoardRow(
            r.rank,
            r.user_id,
            r.balance,
            people.get(r.user_id) or profiles.Person(r.user_id, None, None, None),
        )
        for r in board.rows
    )
    return Board(guild_id, period, board, rows, period_choices(conn, guild_id) if choices else ())


# -- the public page --------------------------------------------------------------------------------
def public_settings(
    conn: psycopg.Connection, guild_id: int
) -> tuple[dict[str, Any], profiles.GuildProfile] | None:
    """The guild's settings and profile when its public leaderboard is on; None when the guild is
    unknown or has it off (the same answer for both). Reads only: no guild row is made."""
    row = conn.execute("SELECT settings, name, icon FROM guilds WHERE guild_id = %s", (guild_id,)).fetchone()
    if row is None or (row[0] or {}).get(PUBLIC_SETTING) is not True:
        return None
    return row[0], profiles.GuildProfile(guild_id, row[1] or "", row[2])


def client_hash(address: str) -> bytes:
    """What the limit counts a client by: the SHA-256 of its address, never the address."""
    return hashlib.sha256(("public-board:" + address).encode("utf-8", "replace")).digest()


# Count this request in its client's window and say how far the window has to run (api.gate._COUNT).
_COUNT = """
INSERT INTO public_board_windows AS w (client_hash, window_start, requests)
VALUES (%(c)s, to_timestamp(floor(extract(epoch FROM now()) / %(s)s) * %(s)s), 1)
ON CONFLICT (client_hash, window_start) DO UPDATE SET requests = w.requests + 1
RETURNING requests, ceil(extract(epoch FROM w.window_start + make_interval(secs => %(s)s) - now()))::int
"""


def admit_client(conn: psycopg.Connection, address: str, *, limit: int, window_s: int) -> int | None:
    """Count one public request of this client; None when it is within `limit` per `window_s`,
    else the seconds until its window ends (the Retry-After)."""
    used, remaining_s = conn.execute(_COUNT, {"c": client_hash(address), "s": window_s}).fetchone()
    return None if used <= limit else max(1, int(remaining_s))


def prune_client_windows(conn: psycopg.Connection) -> int:
    """Forget the public page's rate windows older than an hour (the keep-alive)."""
    return conn.execute(
        "DELETE FROM public_board_windows WHERE window_start < now() - interval '1 hour'"
    ).rowcount
