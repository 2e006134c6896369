"""Achievements: per-guild definitions that pay a bonus once, checked on change and by a sweep.

A member earns each achievement at most once: the `member_achievements` row and the bonus
(a ledger entry with the stable key "achievement:{id}:{user}") are written in one transaction.

Four modules: achievement_criteria.py (what may be asked, and the SQL that judges it),
achievement_definitions.py (the admin's definitions and their holders), achievement_grants.py
(granting, and the check right after a change), and this one: the sweep over every member.
This module also hands on the others' public names, so callers say `achievements.X`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg

from ..ledger.guilds import GuildPolicy, guild_policy
from ..platform.config import Settings, get_settings
from ..platform.errors import DomainError, InvalidInput
from ..platform.keyset import member_key_range
from . import role_rewards
from .achievement_criteria import (
    ALL_KINDS,
    CHANGE_KINDS,
    CRITERIA,
    CUTOFF,
    WINDOW_EARNED,
    Criterion,
    qualifies,
)
from .achievement_definitions import (
    MAX_BONUS,
    MAX_DESCRIPTION,
    MAX_NAME,
    MAX_WINDOW_DAYS,
    AchievementDefinition,
    EarnedAchievement,
    Holder,
    HoldersPage,
    create_definition,
    delete_definition,
    earned_by,
    get_definition,
    holders,
    list_definitions,
    update_definition,
    validate_definition,
)
from .achievement_grants import Granted, _guild_name, check_member, grant, grant_many

__all__ = [
    "ALL_KINDS",
    "CHANGE_KINDS",
    "CRITERIA",
    "MAX_BONUS",
    "MAX_DESCRIPTION",
    "MAX_NAME",
    "MAX_WINDOW_DAYS",
    "AchievementDefinition",
    "BatchResult",
    "CheckChanged",
    "CheckPreview",
    "Criterion",
    "EarnedAchievement",
    "Granted",
    "Holder",
    "HoldersPage",
    "SweepReport",
    "SweepSnapshot",
    "check_member",
    "create_definition",
    "delete_definition",
    "earned_by",
    "get_definition",
    "grant",
    "grant_many",
    "guild_batch",
    "guild_snapshot",
    "holders",
    "list_definitions",
    "preview_guild_check",
    "run_guild_check",
    "run_sweep",
    "start_sweep",
    "sweep_batch",
    "update_definition",
    "validate_definition",
]


# -- the sweep -----------------------------------------------------------------------------
# What a sweep qualifies members by (README, "Achievements"): the leaderboard and the clock as
# of the sweep's start, each member's own numbers when their batch is checked. Without the
# fixed leaderboard, the bonuses paid to one batch raise the top-K cutoff for the batches after
# it, and members who were in the top K when the sweep started miss the award.
_MIN_KEY = -(2**63)
_DELIVERY_REQUEST_EVERY_S = 10.0


@dataclass
class SweepSnapshot:
    """The sweep's fixed view: its start time and, per top-K achievement id, the K it was taken
    for and the K-th place balance then (None: fewer than K members)."""

    as_of: datetime
    cutoffs: dict[int, tuple[int, int | None]]


# {range_m}, {range_p}, {range_s}, {range_e}, {range_t}: the batch's keys in members, points,
# user_stats, email_submissions and transactions (platform.keyset: scans that stop at the
# batch's last key). Steps materialized so the planner cannot reorder them: the batch's members
# with their balance, counters and approved email (one row each; points, user_stats and
# sql/070's index of approved emails read over the same key range), what each member earned in
# each earned_within_days window (one read of the batch's entries per such achievement), the
# pairs of member and achievement that qualify, and of those the pairs not held yet. The
# anti-join is last, so member_achievements is probed once per qualifying pair. Before (issue
# 14, goal 6), at 5 achievements, member_achievements, points and user_stats were probed 5
# times per member, the entries once per member, and every approved email of the table read
# per batch. tests/integration/test_sweep_reads.py checks the plan.
_BATCH_MEMBER_QUALIFIES = qualifies(
    "%(as_of)s::timestamptz",
    balance="m.balance",
    earned="m.total_earned",
    count="m.transaction_count",
    email_approved="m.email_approved",
    earned_within="coalesce(w.earned, 0)",
)
_BATCH_QUALIFIES = f"""
WITH batch AS MATERIALIZED (
    SELECT m.guild_id, m.user_id, m.joined_at, p.balance, s.total_earned, s.transaction_count,
           e.user_id IS NOT NULL AS email_approved
    FROM members m
    LEFT JOIN points p ON p.guild_id = m.guild_id AND p.user_id = m.user_id AND {{range_p}}
    LEFT JOIN user_stats s ON s.guild_id = m.guild_id AND s.user_id = m.user_id AND {{range_s}}
    LEFT JOIN (SELECT DISTINCT e.guild_id, e.user_id FROM email_submissions e
               WHERE e.status = 'approved' AND {{range_e}}) e
           ON e.guild_id = m.guild_id AND e.user_id = m.user_id
    WHERE {{range_m}}
      AND m.erased_at IS NULL
), a AS MATERIALIZED (
    SELECT a.id, a.guild_id, a.name, a.bonus_points, a.criterion, a.threshold, a.window_days, c.cutoff
    FROM achievements a
    LEFT JOIN unnest(%(cut_ids)s::bigint[], %(cut_ks)s::bigint[], %(cut_values)s::bigint[])
              AS c(achievement_id, k, cutoff)
           ON c.achievement_id = a.id AND c.k = a.threshold
    WHERE a.active AND a.criterion = ANY(%(kinds)s)
      AND a.guild_id IN (SELECT DISTINCT guild_id FROM batch)
      -- A top-K achievement is only judged against the snapshot's cutoff (one defined or
      -- edited a moment ago is picked up by the next batch).
      AND (a.criterion <> 'top_k' OR c.achievement_id IS NOT NULL)
), windows AS MATERIALIZED (
    -- Per member and earned_within_days achievement, what the member earned in its window,
    -- from one read of the batch's entries per such achievement.
    SELECT t.guild_id, t.user_id, a.id AS achievement_id, sum({WINDOW_EARNED}) AS earned
    FROM a
    JOIN transactions t ON t.guild_id = a.guild_id AND {{range_t}}
     AND t.created_at >= %(as_of)s::timestamptz - make_interval(days => a.window_days)
    WHERE a.criterion = 'earned_within_days'
    GROUP BY t.guild_id, t.user_id, a.id
), qualifying AS MATERIALIZED (
    SELECT m.guild_id, m.user_id, a.id, a.name, a.bonus_points,
           m.balance IS NULL OR m.total_earned IS NULL AS first_contact
    FROM batch m
    JOIN a ON a.guild_id = m.guild_id
    LEFT JOIN windows w ON w.guild_id = m.guild_id AND w.user_id = m.user_id AND w.achievement_id = a.id
    WHERE {_BATCH_MEMBER_QUALIFIES}
)
SELECT q.guild_id, q.user_id, q.id, q.name, q.bonus_points, q.first_contact
FROM qualifying q
WHERE NOT EXISTS (SELECT 1 FROM member_achievements ma
                  WHERE ma.guild_id = q.guild_id AND ma.user_id = q.user_id AND ma.achievement_id = q.id)
ORDER BY q.guild_id, q.user_id, q.id
"""

# Top-K achievements of the given guilds (NULL: all guilds) the snapshot has no cutoff for yet,
# or one taken for another K, with their K-th place balance now.
_MISSING_CUTOFFS = f"""
SELECT a.id, a.threshold, {CUTOFF}
FROM achievements a
WHERE a.active AND a.criterion = 'top_k'
  AND (%(guilds)s::bigint[] IS NULL OR a.guild_id = ANY(%(guilds)s::bigint[]))
  AND NOT EXISTS (SELECT 1 FROM unnest(%(known_ids)s::bigint[], %(known_ks)s::bigint[]) AS k(id, k)
                  WHERE k.id = a.id AND k.k = a.threshold)
"""


def _add_missing_cutoffs(conn: psycopg.Connection, snapshot: SweepSnapshot, guilds: list[int] | None) -> list:
    known = list(snapshot.cutoffs.items())
    rows = conn.execute(
        _MISSING_CUTOFFS,
        {"guilds": guilds, "known_ids": [i for i, _ in known], "known_ks": [k for _, (k, _) in known]},
    ).fetchall()
    for achievement_id, k, cutoff in rows:
        snapshot.cutoffs[achievement_id] = (k, cutoff)
    return rows


def _sweep_snapshot(conn: psycopg.Connection, sweep_id: int, opened: bool) -> SweepSnapshot:
    """The scheduled sweep's snapshot, stored with it so every batch and every run that
    continues it (another Lambda invocation, another sweeper) uses the same one. Taken for
    every guild when the sweep opens (`opened`: in this transaction)."""
    as_of = conn.execute("SELECT started_at FROM achievement_sweeps WHERE id = %s", (sweep_id,)).fetchone()[0]
    rows = conn.execute(
        "SELECT achievement_id, threshold, cutoff FROM achievement_sweep_cutoffs WHERE sweep_id = %s",
        (sweep_id,),
    ).fetchall()
    snapshot = SweepSnapshot(as_of, {i: (k, c) for i, k, c in rows})
    if opened:
        _store_cutoffs(conn, sweep_id, _add_missing_cutoffs(conn, snapshot, None))
    return snapshot


def _store_cutoffs(conn: psycopg.Connection, sweep_id: int, rows: list) -> None:
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO achievement_sweep_cutoffs (sweep_id, achievement_id, threshold, cutoff) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (sweep_id, achievement_id) "
                "DO UPDATE SET threshold = EXCLUDED.threshold, cutoff = EXCLUDED.cutoff",
                [(sweep_id, *row) for row in rows],
            )


@dataclass(frozen=True)
class BatchResult:
    sweep_id: int
    members: int
    granted: tuple[Granted, ...]
    finished: bool


@dataclass(frozen=True)
class SweepReport:
    sweep_id: int | None
    batches: int
    members_checked: int
    awards: int
    dms_queued: int
    finished: bool
    seconds: float


def _open_sweep(conn: psycopg.Connection, continuing: int | None) -> tuple[int, int, int, bool] | None:
    """The sweep in progress, locked for this batch (a second sweeper waits here, then goes
    on from the cursor this one leaves); a new one if none is open, unless the caller is
    `continuing` a sweep (then None once that one is finished). The last item says whether
    the sweep was opened in this transaction."""
    opened = False
    for _ in range(2):
        row = conn.execute(
            "SELECT id, cursor_guild_id, cursor_user_id FROM achievement_sweeps "
            "WHERE finished_at IS NULL FOR UPDATE"
        ).fetchone()
        if row is not None:
            sweep_id, g, u = row
            if continuing is not None and sweep_id != continuing:
                return None
            return sweep_id, _MIN_KEY if g is None else g, _MIN_KEY if u is None else u, opened
        if continuing is not None:
            return None
        opened = (
            conn.execute(
                "INSERT INTO achievement_sweeps DEFAULT VALUES "
                "ON CONFLICT ((TRUE)) WHERE finished_at IS NULL DO NOTHING RETURNING id"
            ).fetchone()
            is not None
        )
    raise RuntimeError("could not open an achievement sweep")


def _sweep_range(
    conn: psycopg.Connection,
    after: tuple[int, int],
    limit: tuple[int, int],
    batch_size: int,
    settings: Settings,
    snapshot: SweepSnapshot,
) -> tuple[tuple[int, int], bool, int, list[Granted], list]:
    """Check the next `batch_size` members after key `after` (up to key `limit`) against every
    active achievement, as of `snapshot`, and grant what they meet. Returns (last key, reached
    the limit, members checked, grants, cutoffs added to the snapshot)."""
    where, params = member_key_range("m", after, limit)
    members, guilds, last = conn.execute(
        f"WITH k AS MATERIALIZED (SELECT m.guild_id, m.user_id FROM members m WHERE {where} "
        "ORDER BY m.guild_id, m.user_id LIMIT %(n)s) "
        "SELECT count(*), array_agg(DISTINCT guild_id), max(ARRAY[guild_id, user_id]) FROM k",
        {**params, "n": batch_size},
    ).fetchone()
    # Fewer than a batch left: this batch reaches the limit.
    finished = members < batch_size
    upto = limit if finished else (last[0], last[1])
    # Top-K achievements defined (or given a new K) since the snapshot was taken: their
    # leaderboard as of now, kept for the rest of the sweep.
    added = _add_missing_cutoffs(conn, snapshot, guilds or []) if members else []
    granted = _grant_due(conn, _due(conn, after, upto, snapshot), settings)
    if members:
        # The same members against the guilds' balance thresholds (made after they passed one,
        # or a balance changed without the check); the role changes are asked for after the run.
        role_rewards.reconcile_range(conn, after, upto, settings)
    return upto, finished, members, granted, added


def _due(
    conn: psycopg.Connection, after: tuple[int, int], upto: tuple[int, int], snapshot: SweepSnapshot
) -> list[tuple[int, int, int, str, int, bool]]:
    """(guild, user, achievement id, name, bonus, first contact) of every active achievement the
    members after key `after` up to `upto` meet and do not hold, as of `snapshot`, in key order;
    first contact: the member has no points or user_stats row yet."""
    cutoffs = list(snapshot.cutoffs.items())
    where = {f"range_{alias}": member_key_range(alias, after, upto)[0] for alias in "mpset"}
    params = member_key_range("m", after, upto)[1]
    return conn.execute(
        _BATCH_QUALIFIES.format(**where),
        {
            **params,
            "kinds": list(ALL_KINDS),
            "as_of": snapshot.as_of,
            "cut_ids": [i for i, _ in cutoffs],
            "cut_ks": [k for _, (k, _) in cutoffs],
            "cut_values": [c for _, (_, c) in cutoffs],
        },
    ).fetchall()


def _grant_due(conn: psycopg.Connection, due: list, settings: Settings) -> list[Granted]:
    """Grant `due` (from _due) in the caller's transaction, locking the balances first."""
    granted: list[Granted] = []
    if due:
        members_due = sorted({(g, u) for g, u, *_ in due})
        keys = ([g for g, _ in members_due], [u for _, u in members_due])
        strangers = sorted({(g, u) for g, u, *_, first_contact in due if first_contact})
        if strangers:
            # First contact for members the ledger has not seen (their points and counters
            # rows), as ledger.ensure_member does one by one. Only when there are some: the
            # statement triggers on points run even for no rows (2-3 ms a batch). Rows are
            # never deleted, so one seen by _due is still there.
            conn.execute(
                "WITH p AS (INSERT INTO points (guild_id, user_id) SELECT * FROM unnest(%(g)b::bigint[], %(u)b::bigint[]) "
                "ORDER BY 1, 2 ON CONFLICT DO NOTHING) "
                "INSERT INTO user_stats (guild_id, user_id) SELECT * FROM unnest(%(g)b::bigint[], %(u)b::bigint[]) "
                "ORDER BY 1, 2 ON CONFLICT DO NOTHING",
                {"g": [g for g, _ in strangers], "u": [u for _, u in strangers]},
            )
        # Lock the balances first, in key order, as a change does before it checks
        # achievements: the sweep and a concurrent change then queue on the same lock instead
        # of deadlocking on member_achievements.
        conn.execute(
            "SELECT 1 FROM points p JOIN unnest(%b::bigint[], %b::bigint[]) AS k(g, u) "
            "ON p.guild_id = k.g AND p.user_id = k.u ORDER BY p.guild_id, p.user_id FOR UPDATE OF p",
            keys,
        )
        policies: dict[int, tuple[GuildPolicy, str]] = {}
        for guild_id in sorted({g for g, *_ in due}):
            policies[guild_id] = (guild_policy(conn, settings, guild_id), _guild_name(conn, guild_id))
        # Every pair of the batch in a fixed number of statements, each as grant() would.
        granted = grant_many(conn, [row[:5] for row in due], policies=policies, settings=settings)
    return granted


# -- "Run the check now" on the admin site: a preview, then a confirm bound to it -------------
PREVIEW_SAMPLE = 20


class CheckChanged(DomainError):
    """What a check would pay is no longer what the admin saw in the preview."""

    code = "check_changed"


@dataclass(frozen=True)
class CheckPreview:
    """What "check now" would do for one guild: who gets which achievement, how many points in
    all, and a token (a digest of every member, achievement and bonus) the confirm must match."""

    token: str
    awards: int
    members: int
    points: int
    by_achievement: tuple[tuple[int, str, int, int], ...]  # (id, name, bonus, members)
    sample: tuple[int, ...]  # the first members who would get something (user ids)


def _guild_range(guild_id: int) -> tuple[tuple[int, int], tuple[int, int]]:
    return (guild_id, _MIN_KEY), (guild_id, 2**63 - 1)


def _preview(guild_id: int, due: list) -> CheckPreview:
    digest = hashlib.sha256(f"achievement-check:{guild_id}".encode())
    by_achievement: dict[int, list] = {}
    users: list[int] = []
    for _, user_id, achievement_id, name, bonus, _ in due:
        digest.update(f"\n{user_id}:{achievement_id}:{bonus}".encode())
        by_achievement.setdefault(achievement_id, [achievement_id, name, bonus, 0])[3] += 1
        if not users or users[-1] != user_id:
            users.append(user_id)
    return CheckPreview(
        token=digest.hexdigest(), awards=len(due), members=len(users),
        points=sum(row[4] for row in due),
        by_achievement=tuple(tuple(v) for v in sorted(by_achievement.values(), key=lambda v: (v[1], v[0]))),
        sample=tuple(users[:PREVIEW_SAMPLE]),
    )  # fmt: skip


def preview_guild_check(conn: psycopg.Connection, guild_id: int) -> CheckPreview:
    """What "check now" would grant in this guild as of now; nothing is written."""
    snapshot = guild_snapshot(conn, guild_id)
    return _preview(guild_id, _due(conn, *_guild_range(guild_id), snapshot))


def run_guild_check(
    conn: psycopg.Connection, guild_id: int, token: str, settings: Settings | None = None
) -> tuple[CheckPreview, list[Granted]]:
    """ "Check now" as confirmed: in one transaction, what is due now is worked out again and
    granted only if it is what the preview showed (its token); otherwise CheckChanged and
    nothing is written. The guild's balance thresholds are reconciled too, as the sweep does."""
    settings = settings or get_settings()
    snapshot = guild_snapshot(conn, guild_id)
    after, upto = _guild_range(guild_id)
    due = _due(conn, after, upto, snapshot)
    now = _preview(guild_id, due)
    if not hmac.compare_digest(now.token, token or ""):
        raise CheckChanged(
            "Who qualifies has changed since the preview, so nothing was paid. Check the new preview "
            "and confirm it."
        )
    granted = _grant_due(conn, due, settings)
    role_rewards.reconcile_range(conn, after, upto, settings)
    return now, granted


def guild_snapshot(conn: psycopg.Connection, guild_id: int) -> SweepSnapshot:
    """The fixed view of a check of one guild (the admin site's "check now"), taken at its
    start and kept by the caller for all its batches."""
    snapshot = SweepSnapshot(conn.execute("SELECT now()").fetchone()[0], {})
    _add_missing_cutoffs(conn, snapshot, [guild_id])
    return snapshot


def guild_batch(
    conn: psycopg.Connection,
    guild_id: int,
    after_user: int,
    batch_size: int,
    settings: Settings,
    snapshot: SweepSnapshot | None = None,
) -> tuple[BatchResult, int]:
    """One batch of a check of one guild only (the admin site's "check now"); the cursor and
    the snapshot are the caller's, not the scheduled sweep's. Returns the result and the next
    cursor."""
    snapshot = snapshot or guild_snapshot(conn, guild_id)
    (_, upto_u), finished, members, granted, _ = _sweep_range(
        conn, (guild_id, after_user), (guild_id, 2**63 - 1), batch_size, settings, snapshot
    )
    return BatchResult(0, members, tuple(granted), finished), upto_u


def sweep_batch(
    conn: psycopg.Connection, batch_size: int, settings: Settings, continuing: int | None = None
) -> BatchResult:
    """One batch of the sweep in one transaction: the next `batch_size` members after the
    cursor, every active achievement they met as of the sweep's snapshot, the cursor moved
    on. With `continuing`, only that sweep is worked on (finished: nothing to do)."""
    opened = _open_sweep(conn, continuing)
    if opened is None:
        return BatchResult(continuing or 0, 0, (), finished=True)
    sweep_id, after_g, after_u, new = opened
    snapshot = _sweep_snapshot(conn, sweep_id, new)
    (upto_g, upto_u), finished, members, granted, added = _sweep_range(
        conn, (after_g, after_u), (2**63 - 1, 2**63 - 1), batch_size, settings, snapshot
    )
    if finished:
        conn.execute("DELETE FROM achievement_sweep_cutoffs WHERE sweep_id = %s", (sweep_id,))
    else:
        _store_cutoffs(conn, sweep_id, added)
    conn.execute(
        """
        UPDATE achievement_sweeps SET cursor_guild_id = %s, cursor_user_id = %s,
               members_checked = members_checked + %s, awards = awards + %s,
               finished_at = CASE WHEN %s THEN now() END, updated_at = now()
        WHERE id = %s
        """,
        (
            None if finished else upto_g,
            None if finished else upto_u,
            members,
            len(granted),
            finished,
            sweep_id,
        ),
    )
    return BatchResult(sweep_id, members, tuple(granted), finished)


def start_sweep(conn: psycopg.Connection) -> tuple[int, datetime]:
    """Open the scheduled sweep (or find the one in progress) and take its snapshot without
    checking anyone yet; returns its id and start. For counting, beside it, who qualifies as
    of that start (bench/bench_sweep.py)."""
    opened = _open_sweep(conn, None)
    assert opened is not None
    sweep_id, _, _, new = opened
    return sweep_id, _sweep_snapshot(conn, sweep_id, new).as_of


def run_sweep(
    database,
    *,
    batch_size: int | None = None,
    time_left_s: Callable[[], float] | None = None,
    settings: Settings | None = None,
    max_batches: int | None = None,
    on_batch: Callable[[BatchResult], None] | None = None,
    guild_id: int | None = None,
) -> SweepReport:
    """Sweep members in batches until the sweep is finished or time runs short.

    With `guild_id`, only that guild's members are checked, from the first, and the scheduled
    sweep's cursor is left alone (the admin site's "check now"; sweep_id is None).

    `time_left_s` says how much time the caller has left (Lambda: remaining time of the
    invocation); the sweep stops while there is time for at least two more of its slowest
    batches, and the next run continues from the saved cursor. Each batch is its own
    transaction, so stopping anywhere pays nobody twice. DMs are requested after each batch.
    """
    from ..delivery import outbox
    from . import roles

    settings = settings or get_settings()
    size = batch_size or settings.achievement_sweep_batch
    if size < 1:
        raise InvalidInput("The sweep's batch size must be at least 1.")
    started = time.monotonic()
    slowest = 0.0
    batches = members = awards = dms = unrequested = roles_asked = 0
    last_request = 0.0
    sweep_id = None
    guild_cursor = _MIN_KEY
    snapshot = database.run(guild_snapshot, guild_id) if guild_id is not None else None
    finished = False
    while not finished:
        if max_batches is not None and batches >= max_batches:
            break
        if time_left_s is not None and time_left_s() < max(5.0, 3 * slowest):
            break
        t0 = time.monotonic()
        if guild_id is None:
            result = database.run(sweep_batch, size, settings, sweep_id)
            sweep_id = result.sweep_id
        else:
            result, guild_cursor = database.run(guild_batch, guild_id, guild_cursor, size, settings, snapshot)
        slowest = max(slowest, time.monotonic() - t0)
        batches += 1
        finished = result.finished
        members += result.members
        awards += len(result.granted)
        roles_asked += sum(1 for g in result.granted if g.role_change_id is not None)
        queued = sum(1 for g in result.granted if g.dm_id is not None)
        dms += queued
        unrequested += queued
        if unrequested and time.monotonic() - last_request >= _DELIVERY_REQUEST_EVERY_S:
            # A running delivery keeps claiming what is due, so one request now and then is enough.
            outbox.request_delivery()
            unrequested, last_request = 0, time.monotonic()
        if on_batch is not None:
            on_batch(result)
    if unrequested:
        outbox.request_delivery()
    if roles_asked or (batches and database.run(roles.due_count)):
        roles.request_role_delivery()
    return SweepReport(sweep_id, batches, members, awards, dms, finished, time.monotonic() - started)
