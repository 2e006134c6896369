"""Seasons (issue 15): a named stretch of time with its own board, then a final table, prizes,
an optional balance reset and an optional post of the final top 10.

A season's live board is a window (community.windows, key "season:<id>"), kept by sql/046's
trigger from the moment it starts. Admins start (now or later), end early, rename; bad input
(an end before the start, dates overlapping another season of the guild, a prize role the bot
cannot grant, a date it cannot read) is refused in plain words with nothing written.

The end (`run_end`, from the worker's "end_seasons" task, which the keep-alive asks for when
a season is due) is a sequence of steps, each one transaction that also moves the season's
`end_step`, so a run killed midway resumes at the step it was in and a second run (or two at
once: each step locks the season's row) finds the work done:
  1. archive: every member with a score in the season, their score, place (competition rank,
     ties share it) and position, into season_standings; end_step 1.
  2. reset (if chosen): every balance to zero as `season_reset` entries, a batch of members per
     transaction with the cursor in the season's row (end_step stays 1). A guild of more than
     two batches of members is cut once into two lanes by user id (sql/063), each with a
     cursor of its own, reset at once on two connections (`_reset_in_lanes`: this run's and a
     companion's, on a thread); a run with no time left, or killed, leaves each lane at its
     last committed batch, and any later run carries both on.
  3. prizes, in the transaction that finds nobody left to reset (or right after the archive
     without a reset): each member placed 1..prize_places gets prize_points (a `season_prize`
     entry, keyed per season and member) and/or the prize role (roles.request_role_change,
     source `season_prize`, ref "<season>:<user>", idempotent), and a DM (outbox, deduped);
     end_step 3. The prizes come after the reset so a winner keeps them, and a revert of the
     reset (which reverts `season_reset` entries only) gives back what the reset took and
     leaves the prizes.
  4. post (if a channel was chosen): the final top 10 as a card (in the server's language) with
     POST /channels/{id}/messages, with a nonce Discord deduplicates on; end_step 4.
end_step 2 ("prizes given, reset not done") is only written by the earlier order (prizes, then
reset); an end left there carries on with the reset, which leaves each winner the prize points
already paid (`_prize_points_paid`), and pays nothing twice.
"""

from __future__ import annotations

import contextvars
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from ..delivery import outbox
from ..ledger import seasonal
from ..ledger.guilds import guild_policy
from ..ledger.queries import LeaderboardPage, LeaderboardRow, _page_args
from ..platform.amounts import MAX_BALANCE
from ..platform.config import get_settings
from ..platform.errors import InvalidInput, NotFound
from ..platform.i18n import Translator, translator
from ..platform.storable import check_one_line
from . import audit, roles, webhooks, windows

END_TASK_KIND = "end_seasons"
MAX_NAME = 100
MAX_PRIZE_PLACES = 100
RESET_BATCH = 20_000
# An entry's time is its transaction's start: a transaction that began just before the end may
# commit a moment after it. The end waits this long past ends_at before archiving.
END_GRACE_S = 60

_COLUMNS = (
    "id, guild_id, name, starts_at, ends_at, prize_places, prize_points, prize_role_id, reset_balances, "
    "post_channel_id, end_step, ended_at, members_archived, posted_message_id, "
    "CASE WHEN now() < starts_at THEN 'scheduled' WHEN now() < ends_at THEN 'running' "
    "WHEN end_step < 4 THEN 'ending' ELSE 'ended' END, reset_operation_id, reset_reverted_operation_id, "
    "revert_done"
)


@dataclass(frozen=True)
class Season:
    id: int
    guild_id: int
    name: str
    starts_at: datetime
    ends_at: datetime
    prize_places: int
    prize_points: int
    prize_role_id: int | None
    reset_balances: bool
    post_channel_id: int | None
    end_step: int
    ended_at: datetime | None
    members_archived: int | None
    posted_message_id: int | None
    status: str  # scheduled | running | ending | ended
    reset_operation_id: int | None = None
    reset_reverted_operation_id: int | None = None
    revert_done: bool = False

    @property
    def key(self) -> str:
        return f"season:{self.id}"

    @property
    def archived(self) -> bool:
        return self.end_step >= 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(), "prize_places": self.prize_places, "prize_points": self.prize_points,
            "prize_role_id": None if self.prize_role_id is None else str(self.prize_role_id),
            "reset_balances": self.reset_balances,
            "post_channel_id": None if self.post_channel_id is None else str(self.post_channel_id),
            "status": self.status,
        }  # fmt: skip


def _season(row: tuple) -> Season:
    return Season(*row)


# -- reading --------------------------------------------------------------------------------------
def get_season(conn: psycopg.Connection, guild_id: int, season_id: int) -> Season:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM seasons WHERE guild_id = %s AND id = %s", (guild_id, season_id)
    ).fetchone()
    if row is None:
        raise NotFound("There is no such season in this server.")
    return _season(row)


def list_seasons(conn: psycopg.Connection, guild_id: int, limit: int = 100) -> list[Season]:
    """The guild's seasons, latest start first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM seasons WHERE guild_id = %s ORDER BY starts_at DESC, id DESC LIMIT %s",
        (guild_id, limit),
    ).fetchall()
    return [_season(r) for r in rows]


def current_season(conn: psycopg.Connection, guild_id: int) -> Season | None:
    """The season running now, else the next one scheduled, else None."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM seasons WHERE guild_id = %s AND ends_at > now() ORDER BY starts_at LIMIT 1",
        (guild_id,),
    ).fetchone()
    return None if row is None else _season(row)


def find_season(conn: psycopg.Connection, guild_id: int, text: object) -> Season:
    """A season by its id (as autocomplete sends it) or its name, any case."""
    value = text.strip() if isinstance(text, str) else str(text or "")
    if value.isascii() and value.isdigit() and 0 < len(value) <= 18:
        row = conn.execute(f"SELECT {_COLUMNS} FROM seasons WHERE guild_id = %s AND id = %s",
                           (guild_id, int(value))).fetchone()  # fmt: skip
        if row is not None:
            return _season(row)
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM seasons WHERE guild_id = %s AND lower(name) = lower(%s)",
        (guild_id, value[:MAX_NAME]),
    ).fetchone()
    if row is None:
        raise NotFound("There is no season called {name} in this server.", name=repr(value[:MAX_NAME]))
    return _season(row)


def season_choices(
    conn: psycopg.Connection, guild_id: int, typed: str, *, ended_only: bool = False
) -> list[tuple[str, str]]:
    """Autocomplete: (name, id) of the guild's seasons whose name contains what was typed."""
    rows = conn.execute(
        "SELECT name, id FROM seasons WHERE guild_id = %s AND (NOT %s OR end_step >= 1) "
        "AND strpos(lower(name), lower(%s)) > 0 ORDER BY starts_at DESC LIMIT 25",
        (guild_id, ended_only, (typed or "")[:MAX_NAME]),
    ).fetchall()
    return [(name, str(sid)) for name, sid in rows]


@dataclass(frozen=True)
class Standing:
    user_id: int
    score: int
    place: int
    members: int  # how many have a place in the season


def standing_of(conn: psycopg.Connection, season: Season, user_id: int) -> Standing | None:
    """A member's place: from the archive once the season ended, else live from its window."""
    if season.archived:
        row = conn.execute(
            "SELECT score, place FROM season_standings WHERE season_id = %s AND user_id = %s",
            (season.id, user_id),
        ).fetchone()
        if row is None:
            return None
        return Standing(user_id, row[0], row[1], season.members_archived or 0)
    place = windows.window_rank(conn, season.guild_id, season.key, user_id)
    return Standing(user_id, place.score, place.rank, place.total_members) if place.on_board else None


def standings_page(
    conn: psycopg.Connection, season: Season, page: int = 1, page_size: int = 10
) -> LeaderboardPage:
    """A page of the season's table: the final one once archived, else the live board."""
    if not season.archived:
        return windows.window_board(conn, season.guild_id, season.key, page, page_size)
    page, page_size = _page_args(page, page_size)
    first = (page - 1) * page_size + 1
    rows = conn.execute(
        "SELECT s.place, s.user_id, s.score, m.display_name FROM season_standings s "
        "LEFT JOIN members m ON m.guild_id = %s AND m.user_id = s.user_id "
        "WHERE s.season_id = %s AND s.position BETWEEN %s AND %s ORDER BY s.position",
        (season.guild_id, season.id, first, first + page_size - 1),
    ).fetchall()
    return LeaderboardPage(
        tuple(LeaderboardRow(place, user, score, name) for place, user, score, name in rows),
        page, page_size, season.members_archived or 0,
    )  # fmt: skip


# -- admins: start, end early, rename ---------------------------------------------------------------
_WHEN = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{1,2}):(\d{2}))?")


def parse_when(conn: psycopg.Connection, guild_id: int, text: object, *, end: bool = False) -> datetime:
    """A date ("2026-12-01") or date and time ("2026-12-01 18:30") in the guild's time zone.
    A date alone is the start of that day, or for an end, the end of that day (the next midnight)."""
    value = text.strip() if isinstance(text, str) else ""
    match = _WHEN.fullmatch(value)
    if match is None:
        raise InvalidInput(f"{value[:40]!r} is not a date I can read. Write 2026-12-31 or 2026-12-31 18:30.")
    year, month, day, hour, minute = match.groups()
    try:
        local = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0))
    except ValueError:
        raise InvalidInput(f"{value!r} is not a real date.") from None
    if not 2000 <= local.year <= 2200:
        raise InvalidInput("Pick a date between the years 2000 and 2200.")
    tz = windows.counting_rules(conn, guild_id).time_zone
    extra = "1 day" if end and hour is None else "0"
    return conn.execute(
        "SELECT (%s::timestamp + %s::interval) AT TIME ZONE %s", (local, extra, tz)
    ).fetchone()[0]


def _check_name(name: object) -> str:
    text = name.strip() if isinstance(name, str) else ""
    if not 0 < len(text) <= MAX_NAME:
        raise InvalidInput(f"A season's name is 1 to {MAX_NAME} characters.")
    return check_one_line(text, "The season's name")


def _name_free(conn: psycopg.Connection, guild_id: int, name: str, except_id: int | None = None) -> None:
    taken = conn.execute(
        "SELECT 1 FROM seasons WHERE guild_id = %s AND lower(name) = lower(%s) AND id IS DISTINCT FROM %s",
        (guild_id, name, except_id),
    ).fetchone()
    if taken:
        raise InvalidInput(f"There is already a season called {name!r} in this server.")


def _lock_guild(conn: psycopg.Connection, guild_id: int) -> None:
    """Season changes of one guild, one at a time (so two overlapping starts cannot both pass)."""
    conn.execute("INSERT INTO guilds (guild_id) VALUES (%s) ON CONFLICT (guild_id) DO NOTHING", (guild_id,))
    conn.execute("SELECT 1 FROM guilds WHERE guild_id = %s FOR UPDATE", (guild_id,))


GrantCheck = Callable[[int], "roles.GrantCheck"]


def start_season(
    conn: psycopg.Connection,
    guild_id: int,
    *,
    name: str,
    starts_at: datetime | None,
    ends_at: datetime,
    actor_id: int | None,
    actor_name: str,
    prize_places: int = 0,
    prize_points: int = 0,
    prize_role_id: int | None = None,
    reset_balances: bool = False,
    post_channel_id: int | None = None,
    grant_check: GrantCheck | None = None,
) -> Season:
    """A new season (now if `starts_at` is None, or later). Everything is checked before
    anything is written; `grant_check(role_id)` asks Discord whether the bot can give the prize
    role (roles.bot_can_grant), and is required when there is one."""
    name = _check_name(name)
    for what, value, top in (
        ("prize places", prize_places, MAX_PRIZE_PLACES),
        ("prize points", prize_points, MAX_BALANCE),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise InvalidInput(f"The {what} must be a whole number from 0 to {top:,}.")
    if (prize_points or prize_role_id) and not prize_places:
        raise InvalidInput("Say how many places win a prize (prize places), or give no prize.")
    now = conn.execute("SELECT now()").fetchone()[0]
    start = starts_at or now
    if start < now and (now - start).total_seconds() > 60:
        raise InvalidInput("A season cannot start in the past: its board counts entries from its start on.")
    start = max(start, now)
    if ends_at <= start:
        raise InvalidInput("The season must end after it starts.")
    _lock_guild(conn, guild_id)
    _name_free(conn, guild_id, name)
    clash = conn.execute(
        "SELECT name FROM seasons WHERE guild_id = %s AND starts_at < %s AND ends_at > %s ORDER BY starts_at LIMIT 1",
        (guild_id, ends_at, start),
    ).fetchone()
    if clash:
        raise InvalidInput(
            f"Those dates overlap the season {clash[0]!r}; seasons of a server cannot overlap."
        )
    if prize_role_id is not None:
        if grant_check is None:
            raise InvalidInput("Whether the bot can give the prize role could not be checked.")
        check = grant_check(prize_role_id)
        if not check.ok:
            raise InvalidInput(f"The bot cannot give that prize role: {check.reason}")
    row = conn.execute(
        f"""INSERT INTO seasons (guild_id, name, starts_at, ends_at, prize_places, prize_points, prize_role_id,
                                 reset_balances, post_channel_id, created_by)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}""",
        (guild_id, name, start, ends_at, prize_places, prize_points, prize_role_id, reset_balances, post_channel_id,
         actor_id),
    ).fetchone()  # fmt: skip
    season = _season(row)
    audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name, action="season.start",
                 target=f"season:{season.id}", after=season.as_dict())  # fmt: skip
    return season


def end_season_early(
    conn: psycopg.Connection, guild_id: int, season_id: int, *, actor_id: int | None, actor_name: str
) -> Season | None:
    """End a running season now (its end steps follow); a season not started yet is cancelled
    (removed: it has no scores). Returns the ended season, None when cancelled."""
    _lock_guild(conn, guild_id)
    season = get_season(conn, guild_id, season_id)
    if season.status == "scheduled":
        conn.execute("DELETE FROM seasons WHERE id = %s", (season.id,))
        audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name, action="season.cancel",
                     target=f"season:{season.id}", before=season.as_dict())  # fmt: skip
        return None
    if season.status != "running":
        raise InvalidInput(f"The season {season.name!r} has already ended.")
    conn.execute("UPDATE seasons SET ends_at = now(), updated_at = now() WHERE id = %s", (season.id,))
    ended = get_season(conn, guild_id, season.id)
    audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name, action="season.end_early",
                 target=f"season:{season.id}", before=season.as_dict(), after=ended.as_dict())  # fmt: skip
    return ended


def rename_season(
    conn: psycopg.Connection,
    guild_id: int,
    season_id: int,
    name: str,
    *,
    actor_id: int | None,
    actor_name: str,
) -> Season:
    name = _check_name(name)
    _lock_guild(conn, guild_id)
    season = get_season(conn, guild_id, season_id)
    _name_free(conn, guild_id, name, except_id=season.id)
    conn.execute("UPDATE seasons SET name = %s, updated_at = now() WHERE id = %s", (name, season.id))
    renamed = get_season(conn, guild_id, season.id)
    audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name, action="season.rename",
                 target=f"season:{season.id}", before={"name": season.name}, after={"name": name})  # fmt: skip
    return renamed


# -- the end ------------------------------------------------------------------------------------
@dataclass
class EndReport:
    season_id: int
    step: int = 0  # the end_step reached
    archived: int = 0
    prizes: int = 0
    resets: int = 0
    posted: bool = False
    finished: bool = False
    dms_queued: bool = False
    roles_queued: bool = False
    seconds: float = 0.0


def due_seasons(conn: psycopg.Connection, grace_s: int = END_GRACE_S) -> list[int]:
    rows = conn.execute(
        "SELECT id FROM seasons WHERE end_step < 4 AND ends_at <= now() - make_interval(secs => %s) ORDER BY ends_at",
        (grace_s,),
    ).fetchall()
    return [r[0] for r in rows]


def _lock_season(conn: psycopg.Connection, season_id: int) -> Season:
    row = conn.execute(f"SELECT {_COLUMNS} FROM seasons WHERE id = %s FOR UPDATE", (season_id,)).fetchone()
    if row is None:
        raise NotFound("There is no such season.")
    return _season(row)


def _archive(conn: psycopg.Connection, season_id: int, report: EndReport) -> None:
    season = _lock_season(conn, season_id)
    if season.end_step >= 1:
        return
    conn.execute("SET LOCAL statement_timeout = '300s'")  # one statement over every member
    archived = conn.execute(
        """
        INSERT INTO season_standings (season_id, user_id, score, place, position)
        SELECT %(s)s, user_id, score, rank() OVER (ORDER BY score DESC),
               row_number() OVER (ORDER BY score DESC, user_id)
        FROM window_scores WHERE guild_id = %(g)s AND period = %(w)s
        """,
        {"s": season.id, "g": season.guild_id, "w": season.key},
    ).rowcount
    conn.execute(
        "UPDATE seasons SET end_step = 1, ended_at = now(), members_archived = %s WHERE id = %s",
        (archived, season.id),
    )
    report.archived = archived


def prize_dm_text(
    season: Season, place: int, points: str | None, role: bool, tr: Translator | None = None
) -> str:
    """A winner's DM, in the server's language (`points`: the prize as an amount in it)."""
    tr = tr or translator()
    text = tr._("The season **{season}** has ended and you placed **#{place}**!", season=season.name,
                place=tr.number(place))  # fmt: skip
    gifts = [g for g in (points, tr._("a prize role") if role else None) if g]
    if gifts:
        prize = tr._("{first} and {second}", first=gifts[0], second=gifts[1]) if len(gifts) == 2 else gifts[0]
        text += " " + tr._("You won {prize}.", prize=prize)
    return text


def _pay_prizes(conn: psycopg.Connection, season: Season, report: EndReport) -> None:
    """Places 1..prize_places: the points, the role, the DM; every one keyed per season and
    member, so a replay writes nothing twice."""
    if not season.prize_places:
        return
    policy = guild_policy(conn, get_settings(), season.guild_id)
    tr = translator(policy.locale)
    prize = (
        tr.points(season.prize_points, policy.currency_name, policy.currency_one)
        if season.prize_points
        else None
    )
    for user_id, place in _winners(conn, season):
        if season.prize_points:
            seasonal.season_prize(conn, guild_id=season.guild_id, user_id=user_id, amount=season.prize_points,
                                  season_id=season.id, place=place, season_name=season.name, policy=policy)  # fmt: skip
        if season.prize_role_id is not None:
            roles.request_role_change(
                conn, guild_id=season.guild_id, user_id=user_id, role_id=season.prize_role_id, action="add",
                source="season_prize", source_ref=f"{season.id}:{user_id}",
                reason=f"Season {season.name}: place {place}"[:512],
            )  # fmt: skip
            report.roles_queued = True
        text = prize_dm_text(season, place, prize, season.prize_role_id is not None, tr)
        if outbox.enqueue_dm(conn, guild_id=season.guild_id, user_id=user_id, content=text, reason="season",
                             dedupe_key=f"season:{season.id}:prize:{user_id}") is not None:  # fmt: skip
            report.dms_queued = True
        report.prizes += 1


def _winners(conn: psycopg.Connection, season: Season) -> list[tuple[int, int]]:
    return conn.execute(
        "SELECT user_id, place FROM season_standings WHERE season_id = %s AND place <= %s ORDER BY position",
        (season.id, season.prize_places),
    ).fetchall()


def _prize_points_paid(conn: psycopg.Connection, season: Season) -> dict[int, int]:
    """The season's prize points already written, by member, which the rest of the reset must
    leave them: only in an end begun when the prizes came first (its end_step 2, "prizes given",
    with the reset not done). In today's order the prizes come after the reset, so this is
    empty without a look (the winners' query reads the season's whole table)."""
    if season.end_step < 2 or not (season.prize_places and season.prize_points):
        return {}
    keys = [f"season_prize:{season.id}:{user_id}" for user_id, _place in _winners(conn, season)]
    rows = conn.execute(
        "SELECT t.user_id, sum(t.amount) FROM operations o JOIN transactions t ON t.operation_id = o.id "
        "WHERE o.guild_id = %s AND o.idempotency_key = ANY(%s) AND t.kind = 'season_prize' GROUP BY t.user_id",
        (season.guild_id, keys),
    ).fetchall()
    return {int(user): int(amount) for user, amount in rows}


def _reset_then_prizes(conn: psycopg.Connection, season_id: int, batch: int, report: EndReport) -> bool:
    """One batch of the reset (if chosen); the transaction that finds nobody left to reset pays
    the prizes and moves end_step to 3. True when both are done."""
    season = _lock_season(conn, season_id)
    report.step = min(season.end_step, 3)
    if season.end_step >= 3:
        return True
    op = season.reset_operation_id
    if season.reset_balances:
        conn.execute("SET LOCAL statement_timeout = '120s'")
        op = op or seasonal.reset_operation(conn, season.guild_id, season.id)
        keep = _prize_points_paid(conn, season)
        lanes = _lanes(conn, season.id)
        # One lane at a time here (what the lanes left, or a reset in one lane: its cursor in
        # the season's row).
        for lane, cursor, upto in lanes or [(None, _reset_cursor(conn, season.id), None)]:
            last, written = seasonal.reset_batch(
                conn, guild_id=season.guild_id, operation_id=op, after_user=cursor, limit=batch,
                reason=_reset_reason(season), keep=keep, upto_user=upto,
            )  # fmt: skip
            report.resets += written
            if last is None:
                continue
            if lane is None:
                conn.execute(
                    "UPDATE seasons SET reset_cursor = %s, reset_operation_id = %s WHERE id = %s",
                    (last, op, season.id),
                )
            else:
                _move_lane(conn, season.id, lane, last)
            return False
    if season.end_step < 2:  # an end begun when the prizes came first paid them at its step 2
        _pay_prizes(conn, season, report)
    conn.execute("UPDATE seasons SET end_step = 3, reset_operation_id = %s WHERE id = %s", (op, season.id))
    report.step = 3
    return True


def _reset_reason(season: Season) -> str:
    return f"Season {season.name} ended: balances reset"


def _reset_cursor(conn: psycopg.Connection, season_id: int) -> int:
    return conn.execute("SELECT reset_cursor FROM seasons WHERE id = %s", (season_id,)).fetchone()[0]


def _lanes(conn: psycopg.Connection, season_id: int) -> list[tuple[int, int, int | None]]:
    """The reset's lanes (lane, cursor, last user id or None), none for a reset in one lane."""
    rows = conn.execute(
        "SELECT lane, cursor, upto_user FROM season_reset_lanes WHERE season_id = %s ORDER BY lane",
        (season_id,),
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def _move_lane(conn: psycopg.Connection, season_id: int, lane: int, last: int) -> None:
    conn.execute(
        "UPDATE season_reset_lanes SET cursor = %s WHERE season_id = %s AND lane = %s",
        (last, season_id, lane),
    )


def _make_lanes(conn: psycopg.Connection, season_id: int, batch: int) -> list[int]:
    """The reset's two lanes, cut once (sql/063) from where the reset stands when the guild has
    more than two batches of members left; [] for a reset in one lane, or none to do."""
    season = _lock_season(conn, season_id)
    if season.end_step >= 3 or not season.reset_balances:
        return []
    lanes = _lanes(conn, season.id)
    if lanes:
        return [lane for lane, _cursor, _upto in lanes]
    cursor = _reset_cursor(conn, season.id)
    split = seasonal.split_point(conn, season.guild_id, cursor, 2 * batch)
    if split is None:
        return []
    op = season.reset_operation_id or seasonal.reset_operation(conn, season.guild_id, season.id)
    conn.execute(
        "INSERT INTO season_reset_lanes (season_id, lane, cursor, upto_user) VALUES (%s, 0, %s, %s), (%s, 1, %s, NULL)",
        (season.id, cursor, split, season.id, split),
    )
    conn.execute("UPDATE seasons SET reset_operation_id = %s WHERE id = %s", (op, season.id))
    return [0, 1]


def _lane_batch(conn: psycopg.Connection, season_id: int, lane: int, batch: int) -> tuple[bool, int, int]:
    """One batch of one lane: (True when the lane is done, the entries written, the end's step:
    1, or 2 for an end begun when the prizes came first). Shares the
    season's row (the prizes' transaction locks it, so it waits for the batches in flight) and
    locks the lane's (two runs on one lane take turns)."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM seasons WHERE id = %s FOR SHARE", (season_id,)).fetchone()
    season = _season(row)
    if season.end_step >= 3:
        return True, 0, season.end_step
    conn.execute("SET LOCAL statement_timeout = '120s'")
    cursor, upto = conn.execute(
        "SELECT cursor, upto_user FROM season_reset_lanes WHERE season_id = %s AND lane = %s FOR UPDATE",
        (season_id, lane),
    ).fetchone()
    last, written = seasonal.reset_batch(
        conn, guild_id=season.guild_id, operation_id=season.reset_operation_id, after_user=cursor, limit=batch,
        reason=_reset_reason(season), keep=_prize_points_paid(conn, season), upto_user=upto,
    )  # fmt: skip
    if last is None:
        return True, 0, season.end_step
    _move_lane(conn, season_id, lane, last)
    return False, written, season.end_step


def _reset_in_lanes(
    database,
    season_id: int,
    batch: int,
    report: EndReport,
    tick: Callable[[int], None],
    enough_time: Callable[[], bool],
    companion=None,
) -> bool:
    """The reset's lanes at once: the first on `database` (this thread), the second on
    `companion` (by default `database.companion()`, closed after) on a thread of its own, batch
    by batch, each batch one transaction, until both are done (True) or time is short (False).
    A failure on either side stops both after their batch in flight and is raised here."""
    lanes = database.run(_make_lanes, season_id, batch)
    if not lanes:
        return True
    other = companion or database.companion()
    stop = threading.Event()
    failed: list[BaseException] = []
    done = dict.fromkeys(lanes, False)
    turn = threading.Lock()

    def work(db, lane: int) -> None:
        try:
            while not stop.is_set() and enough_time():
                finished, written, step = db.run(_lane_batch, season_id, lane, batch)
                if finished:
                    done[lane] = True
                    return
                with turn:
                    report.resets += written
                    tick(step)  # a reset batch committed
        except BaseException as exc:  # raised below, once the other side has stopped
            failed.append(exc)
            stop.set()

    helper = threading.Thread(
        target=contextvars.copy_context().run,
        args=(work, other, lanes[1]),
        name=f"season-{season_id}-lane",
        daemon=True,
    )
    helper.start()
    try:
        work(database, lanes[0])
    finally:
        helper.join()
        if companion is None and other is not database:
            other.close()
    if failed:
        raise failed[0]
    return all(done.values())


def top_ten_body(conn: psycopg.Connection, season: Season) -> dict[str, Any]:
    """The post of the final top 10: a card in the answers' style (discord/cards.py) in the
    server's language and accent colour, medals for the top 3; mentions that ping nobody."""
    from ..discord import cards

    policy = guild_policy(conn, get_settings(), season.guild_id)
    tr = translator(policy.locale)
    board = standings_page(conn, season, 1, 10)
    card = cards.Card(accent=policy.accent_color).header(
        "### 🏁 " + tr._("Season {season}: final top 10", season=season.name),
        tr.ngettext("{n} member scored", "{n} members scored", season.members_archived or 0),
    )  # fmt: skip
    card.separator()
    if board.rows:
        medals = {1: "🥇", 2: "🥈", 3: "🥉"}
        card.text("\n".join(
            f"{medals.get(row.rank) or f'`#{tr.number(row.rank)}`'} <@{row.user_id}> · "
            f"**{tr.points(row.balance, policy.currency_name, policy.currency_one)}**"
            for row in board.rows
        ))  # fmt: skip
    else:
        card.text(tr._("Nobody scored this season."))
    components, _text = card.build()
    return {"flags": cards.IS_COMPONENTS_V2, "components": list(components), "allowed_mentions": {"parse": []},
            "nonce": f"season-{season.id}"[:25], "enforce_nonce": True}  # fmt: skip


def _post(database, season_id: int, report: EndReport, client: Any) -> None:
    from ..discord.rest import DiscordError

    with database.connection() as conn:
        season = get_season_by_id(conn, season_id)
        if season.end_step >= 4:
            return
        body = top_ten_body(conn, season) if season.post_channel_id else {}
    message_id = None
    if season.post_channel_id:
        try:
            sent = client.send_message(season.post_channel_id, body)
            message_id = int(sent["id"])
            report.posted = True
        except DiscordError as refused:
            if refused.status == 401:
                raise  # our token: tried again by the next run (5xx and 429 raise their own errors)
            # Discord will not take it (no access, unknown channel): the season still ends.

    def finish(conn: psycopg.Connection) -> None:
        conn.execute(
            "UPDATE seasons SET end_step = 4, posted_message_id = coalesce(posted_message_id, %s) "
            "WHERE id = %s AND end_step = 3",
            (message_id, season_id),
        )

    database.run(finish)


def get_season_by_id(conn: psycopg.Connection, season_id: int) -> Season:
    row = conn.execute(f"SELECT {_COLUMNS} FROM seasons WHERE id = %s", (season_id,)).fetchone()
    if row is None:
        raise NotFound("There is no such season.")
    return _season(row)


def run_end(
    database,
    season_id: int,
    *,
    time_left_s: Callable[[], float] | None = None,
    batch: int = RESET_BATCH,
    client: Any = None,
    after_step: Callable[[int], None] | None = None,
    companion=None,
) -> EndReport:
    """Carry a due season's end as far as time allows (see the module's doc); resumable.
    `after_step(step)` is called after each committed transaction (tests stop a run there; with
    the reset in lanes, from either lane's thread). `companion`: the Database the reset's second
    lane runs on (default: `database.companion()`)."""
    started = time.perf_counter()
    report = EndReport(season_id)

    def tick(step: int) -> None:
        report.step = step
        if after_step is not None:
            after_step(step)

    def enough_time() -> bool:
        return time_left_s is None or time_left_s() > 15

    if database.run(lambda c: get_season_by_id(c, season_id)).end_step < 1:
        database.run(_archive, season_id, report)
    tick(1)
    if not _reset_in_lanes(database, season_id, batch, report, tick, enough_time, companion):
        report.seconds = time.perf_counter() - started
        _wake(report)
        return report
    while not database.run(_reset_then_prizes, season_id, batch, report):
        tick(report.step)  # a reset batch committed (end_step still 1, or 2 in an end begun before)
        if not enough_time():
            report.seconds = time.perf_counter() - started
            _wake(report)
            return report
    tick(3)
    if client is None:
        from ..discord.rest import get_client

        client = get_client()
    _post(database, season_id, report, client)
    tick(4)
    report.finished = True
    report.seconds = time.perf_counter() - started
    _wake(report)
    return report


def _wake(report: EndReport) -> None:
    if report.finished:  # season.ended, if an endpoint wants it (queued with the last step)
        webhooks.request_delivery()
    if report.dms_queued:
        outbox.request_delivery()
    if report.roles_queued:
        roles.request_role_delivery()


def run_due(
    database, *, time_left_s: Callable[[], float] | None = None, client: Any = None
) -> list[EndReport]:
    """Every due season's end, oldest first, while time allows."""
    reports = []
    for season_id in database.run(due_seasons):
        if time_left_s is not None and time_left_s() < 30:
            break
        reports.append(run_end(database, season_id, time_left_s=time_left_s, client=client))
    return reports


def request_end_run(delay_seconds: int = 0) -> bool:
    """Ask the worker for an "end_seasons" task (after COMMIT). Never raises."""
    from ..delivery.tasks import Task, get_task_queue

    try:
        get_task_queue().send(Task(END_TASK_KIND), delay_seconds=delay_seconds)
        return True
    except Exception:  # the keep-alive asks again
        return False


def end_task(task) -> None:
    """The worker's "end_seasons" task: idempotent, resumable; asks again if work is left."""
    from ..delivery.tasks import time_left_s
    from ..platform.runtime import get_database

    def left() -> float:
        seconds = time_left_s()
        return float("inf") if seconds is None else seconds

    database = get_database()
    reports = run_due(database, time_left_s=left)
    if any(not r.finished for r in reports):
        request_end_run()


def due_count(conn: psycopg.Connection) -> int:
    return len(due_seasons(conn))


# -- undoing a reset --------------------------------------------------------------------------------
@dataclass
class RevertReport:
    reverted: int = 0
    skipped: int = 0  # a balance that would leave the range
    finished: bool = False


def revert_reset(
    database, guild_id: int, season_id: int, *, actor_id: int | None, actor_name: str, batch: int = RESET_BATCH,
    time_left_s: Callable[[], float] | None = None,
) -> RevertReport:  # fmt: skip
    """Revert the season's balance reset as one batch: a `revert` entry for every reset entry,
    each member's balance back up by what the reset took. Resumable; a second call finds it done."""
    report = RevertReport()

    def begin(conn: psycopg.Connection) -> tuple[int, int, int | None] | None:
        _lock_guild(conn, guild_id)
        season = get_season(conn, guild_id, season_id)
        if season.end_step < 3 or season.reset_operation_id is None:
            raise InvalidInput(f"The season {season.name!r} has no balance reset to revert.")
        if season.revert_done:
            return None
        op = season.reset_reverted_operation_id or seasonal.revert_operation(conn, guild_id, season.id)
        conn.execute("UPDATE seasons SET reset_reverted_operation_id = %s WHERE id = %s", (op, season.id))
        conn.execute("SET LOCAL statement_timeout = '120s'")
        first = seasonal.first_reset_entry(conn, season.reset_operation_id)
        return op, season.reset_operation_id, first

    begun = database.run(begin)
    if begun is None:
        report.finished = True
        return report
    op, reset_op, first = begun

    def one(conn: psycopg.Connection) -> bool:
        season = _lock_season(conn, season_id)
        if season.revert_done:
            return True
        conn.execute("SET LOCAL statement_timeout = '120s'")
        cursor = conn.execute("SELECT revert_cursor FROM seasons WHERE id = %s", (season_id,)).fetchone()[0]
        if first is None:
            last, written, found = None, 0, 0
        else:
            last, written, found = seasonal.revert_reset_batch(
                conn, guild_id=guild_id, reset_operation_id=reset_op, first_entry_id=first, operation_id=op,
                after_user=cursor, limit=batch, reason=f"Season {season.name}: balance reset reverted",
                actor_id=actor_id, actor_name=actor_name,
            )  # fmt: skip
        report.reverted += written
        report.skipped += found - written
        if last is not None and not _anyone_after(conn, guild_id, last):
            last = None  # the batch ended on the last member: done now, not on one more call (a click)
        if last is None:
            conn.execute("UPDATE seasons SET revert_done = TRUE WHERE id = %s", (season_id,))
            audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name,
                         action="season.reset_reverted", target=f"season:{season_id}")  # fmt: skip
            return True
        conn.execute("UPDATE seasons SET revert_cursor = %s WHERE id = %s", (last, season_id))
        return False

    while not database.run(one):
        if time_left_s is not None and time_left_s() < 15:
            return report
    report.finished = True
    return report


def _anyone_after(conn: psycopg.Connection, guild_id: int, user_id: int) -> bool:
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM points WHERE guild_id = %s AND user_id > %s)", (guild_id, user_id)
    ).fetchone()[0]


@dataclass(frozen=True)
class ResetSummary:
    """What reverting a season's reset would touch: its reset entries (one per member whose
    balance it took), the points they took, how many are reverted already, and the members it
    took the most from (for the admin's confirmation step)."""

    members: int
    points: int  # what the reset took, summed (a negative balance reset counts as negative)
    reverted: int
    largest: tuple[tuple[int, int], ...]  # (user id, points taken), largest first


def reset_summary(conn: psycopg.Connection, guild_id: int, season_id: int, largest: int = 20) -> ResetSummary:
    """The reset's entries, counted for the confirmation before `revert_reset`; InvalidInput
    when the season has no reset to revert (not ended yet, or no reset chosen)."""
    season = get_season(conn, guild_id, season_id)
    if season.end_step < 3 or season.reset_operation_id is None:
        raise InvalidInput(f"The season {season.name!r} has no balance reset to revert.")
    members, points = conn.execute(
        "SELECT count(*), coalesce(sum(-amount), 0) FROM transactions WHERE operation_id = %s",
        (season.reset_operation_id,),
    ).fetchone()
    reverted = 0
    if season.reset_reverted_operation_id is not None:
        reverted = conn.execute(
            "SELECT count(*) FROM transactions WHERE operation_id = %s", (season.reset_reverted_operation_id,)
        ).fetchone()[0]
    top = conn.execute(
        "SELECT user_id, -amount FROM transactions WHERE operation_id = %s ORDER BY abs(amount) DESC, user_id LIMIT %s",
        (season.reset_operation_id, largest),
    ).fetchall()
    return ResetSummary(int(members), int(points), int(reverted), tuple((int(u), int(a)) for u, a in top))
