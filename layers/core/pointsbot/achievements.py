"""Achievements: per-guild definitions that pay a bonus once, checked on change and by a sweep.

A member earns each achievement at most once: the `member_achievements` row and the bonus
(a ledger entry with the stable key "achievement:{id}:{user}") are written in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import errors as pg_errors

from . import ledger
from .amounts import MAX_BALANCE
from .config import Settings, get_settings
from .errors import DomainError, InvalidInput, NotFound
from .guilds import GuildPolicy, guild_policy
from .paging import page_number


@dataclass(frozen=True)
class Criterion:
    kind: str
    label: str  # for the admin site's form, with {n} and {d}
    threshold_label: str | None  # None: the criterion takes no number N
    uses_window: bool  # takes a number of days D
    on_change: bool  # a balance change can make it true (checked right after the change)


CRITERIA: dict[str, Criterion] = {
    c.kind: c
    for c in (
        Criterion("balance_at_least", "Balance of at least {n}", "balance", False, True),
        Criterion("earned_at_least", "Earned at least {n} in total", "points earned", False, True),
        Criterion("transactions_at_least", "At least {n} transactions", "transactions", False, True),
        Criterion("earned_within_days", "Earned at least {n} within {d} days", "points earned", True, True),
        Criterion("top_k", "In the top {n} of the leaderboard", "places", False, True),
        Criterion("email_approved", "Email address approved", None, False, False),
        Criterion("member_days", "Member for at least {d} days", None, True, False),
    )
}
# What a change of a balance can make true; the rest only the sweep checks (time passes,
# other members' balances move, an email is approved).
CHANGE_KINDS: tuple[str, ...] = tuple(k for k, c in CRITERIA.items() if c.on_change)
ALL_KINDS: tuple[str, ...] = tuple(CRITERIA)

MAX_NAME = 100
MAX_DESCRIPTION = 500
MAX_BONUS = 1_000_000_000
MAX_WINDOW_DAYS = 3650
# A bonus can make another achievement true; each is earned at most once, so the chain ends,
# but the loop is bounded anyway.
_MAX_ROUNDS = 20


@dataclass(frozen=True)
class AchievementDefinition:
    id: int
    guild_id: int
    name: str
    description: str
    bonus_points: int
    criterion: str
    threshold: int
    window_days: int | None
    active: bool
    created_at: datetime
    updated_at: datetime
    holders: int = 0

    @property
    def criterion_text(self) -> str:
        spec = CRITERIA.get(self.criterion)
        if spec is None:
            return self.criterion
        return spec.label.format(n=f"{self.threshold:,}", d=self.window_days or 0)


@dataclass(frozen=True)
class EarnedAchievement:
    achievement_id: int
    name: str
    description: str
    bonus_points: int
    earned_at: datetime


@dataclass(frozen=True)
class Holder:
    user_id: int
    display_name: str | None
    username: str | None
    earned_at: datetime
    transaction_id: int | None


@dataclass(frozen=True)
class HoldersPage:
    holders: tuple[Holder, ...]
    page: int
    page_size: int
    total: int


@dataclass(frozen=True)
class Granted:
    """An achievement a member has just earned (in the current transaction)."""

    guild_id: int
    user_id: int
    achievement_id: int
    name: str
    bonus_points: int
    transaction_id: int | None
    dm_id: int | None


# -- definitions (the admin site) -----------------------------------------------------------
_DEF_COLUMNS = (
    "a.id, a.guild_id, a.name, a.description, a.bonus_points, a.criterion, a.threshold, a.window_days, "
    "a.active, a.created_at, a.updated_at"
)


def _definition(row: tuple, holders: int = 0) -> AchievementDefinition:
    return AchievementDefinition(*row, holders=holders)


def _int_field(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"The {what} must be a whole number.")
    if not low <= value <= high:
        raise InvalidInput(f"The {what} must be between {low:,} and {high:,}.")
    return value


def validate_definition(
    *,
    name: object,
    description: object,
    bonus_points: object,
    criterion: object,
    threshold: object,
    window_days: object,
) -> dict:
    """Check a definition; returns clean values or raises InvalidInput naming the problem."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("The achievement needs a name.")
    if len(name.strip()) > MAX_NAME:
        raise InvalidInput(f"The name is too long (at most {MAX_NAME} characters).")
    description = "" if description is None else description
    if not isinstance(description, str) or len(description.strip()) > MAX_DESCRIPTION:
        raise InvalidInput(f"The description is too long (at most {MAX_DESCRIPTION} characters).")
    spec = CRITERIA.get(criterion) if isinstance(criterion, str) else None
    if spec is None:
        raise InvalidInput("Choose one of the criteria: " + ", ".join(CRITERIA) + ".")
    bonus = _int_field(bonus_points, "bonus", 0, MAX_BONUS)
    if spec.threshold_label is not None:
        number = _int_field(threshold, spec.threshold_label, 1, 10**15)
    else:
        number = 0
    days = _int_field(window_days, "number of days", 1, MAX_WINDOW_DAYS) if spec.uses_window else None
    return {
        "name": name.strip(),
        "description": description.strip(),
        "bonus_points": bonus,
        "criterion": criterion,
        "threshold": number,
        "window_days": days,
    }


def list_definitions(
    conn: psycopg.Connection, guild_id: int, *, include_inactive: bool = True
) -> list[AchievementDefinition]:
    """The guild's achievements with how many members hold each, by name."""
    rows = conn.execute(
        f"""
        SELECT {_DEF_COLUMNS},
               (SELECT count(*) FROM member_achievements ma
                WHERE ma.guild_id = a.guild_id AND ma.achievement_id = a.id)
        FROM achievements a
        WHERE a.guild_id = %s AND (%s OR a.active)
        ORDER BY lower(a.name), a.id
        """,
        (guild_id, include_inactive),
    ).fetchall()
    return [_definition(r[:-1], r[-1]) for r in rows]


def get_definition(conn: psycopg.Connection, guild_id: int, achievement_id: int) -> AchievementDefinition:
    row = conn.execute(
        f"""
        SELECT {_DEF_COLUMNS},
               (SELECT count(*) FROM member_achievements ma
                WHERE ma.guild_id = a.guild_id AND ma.achievement_id = a.id)
        FROM achievements a WHERE a.guild_id = %s AND a.id = %s
        """,
        (guild_id, achievement_id),
    ).fetchone()
    if row is None:
        raise NotFound("There is no such achievement in this server.")
    return _definition(row[:-1], row[-1])


def _name_taken() -> InvalidInput:
    return InvalidInput("An achievement with that name exists already in this server.")


def create_definition(
    conn: psycopg.Connection,
    guild_id: int,
    *,
    name: str,
    criterion: str,
    threshold: int = 0,
    window_days: int | None = None,
    bonus_points: int = 0,
    description: str = "",
    active: bool = True,
) -> AchievementDefinition:
    """Define an achievement. Members who already qualify get it on the next sweep (or on
    their next change, for the criteria a change can make true)."""
    clean = validate_definition(
        name=name,
        description=description,
        bonus_points=bonus_points,
        criterion=criterion,
        threshold=threshold,
        window_days=window_days,
    )
    from .guilds import ensure_guild

    ensure_guild(conn, guild_id)
    try:
        with conn.transaction():  # a savepoint: a taken name must not abort the caller's transaction
            row = conn.execute(
                f"""
                INSERT INTO achievements AS a (guild_id, name, description, bonus_points, criterion,
                                               threshold, window_days, active)
                VALUES (%(guild_id)s, %(name)s, %(description)s, %(bonus_points)s, %(criterion)s,
                        %(threshold)s, %(window_days)s, %(active)s)
                RETURNING {_DEF_COLUMNS}
                """,
                {**clean, "guild_id": guild_id, "active": bool(active)},
            ).fetchone()
    except pg_errors.UniqueViolation:
        raise _name_taken() from None
    return _definition(row)


_UPDATABLE = ("name", "description", "bonus_points", "criterion", "threshold", "window_days", "active")


def update_definition(
    conn: psycopg.Connection, guild_id: int, achievement_id: int, **changes: object
) -> AchievementDefinition:
    """Change some fields of a definition (any of name, description, bonus_points, criterion,
    threshold, window_days, active). Members who hold it keep it and the bonus they got."""
    unknown = set(changes) - set(_UPDATABLE)
    if unknown:
        raise InvalidInput(f"unknown achievement field(s): {', '.join(sorted(unknown))}")
    current = get_definition(conn, guild_id, achievement_id)
    merged = {f: changes.get(f, getattr(current, f)) for f in _UPDATABLE}
    clean = validate_definition(**{k: v for k, v in merged.items() if k != "active"})
    active = merged["active"]
    if not isinstance(active, bool):
        raise InvalidInput("Active must be true or false.")
    try:
        with conn.transaction():
            row = conn.execute(
                f"""
                UPDATE achievements AS a SET name = %(name)s, description = %(description)s,
                       bonus_points = %(bonus_points)s, criterion = %(criterion)s, threshold = %(threshold)s,
                       window_days = %(window_days)s, active = %(active)s, updated_at = now()
                WHERE a.guild_id = %(guild_id)s AND a.id = %(id)s
                RETURNING {_DEF_COLUMNS}
                """,
                {**clean, "active": active, "guild_id": guild_id, "id": achievement_id},
            ).fetchone()
    except pg_errors.UniqueViolation:
        raise _name_taken() from None
    return _definition(row, current.holders)


def delete_definition(conn: psycopg.Connection, guild_id: int, achievement_id: int) -> None:
    """Delete a definition nobody holds yet; one that members hold can only be deactivated,
    because their bonus entries point at it."""
    current = get_definition(conn, guild_id, achievement_id)
    if current.holders:
        raise DomainError("Members hold this achievement already; deactivate it instead of deleting it.")
    conn.execute("DELETE FROM achievements WHERE guild_id = %s AND id = %s", (guild_id, achievement_id))


def holders(
    conn: psycopg.Connection, guild_id: int, achievement_id: int, page: int = 1, page_size: int = 50
) -> HoldersPage:
    """Members who hold an achievement, most recent first."""
    page = page_number(page)
    page_size = max(1, min(200, int(page_size)))
    rows = conn.execute(
        """
        SELECT ma.user_id, m.display_name, m.username, ma.earned_at, ma.transaction_id
        FROM member_achievements ma JOIN members m USING (guild_id, user_id)
        WHERE ma.guild_id = %s AND ma.achievement_id = %s
        ORDER BY ma.earned_at DESC, ma.user_id
        LIMIT %s OFFSET %s
        """,
        (guild_id, achievement_id, page_size, (page - 1) * page_size),
    ).fetchall()
    total = conn.execute(
        "SELECT count(*) FROM member_achievements WHERE guild_id = %s AND achievement_id = %s",
        (guild_id, achievement_id),
    ).fetchone()[0]
    return HoldersPage(tuple(Holder(*r) for r in rows), page, page_size, total)


def earned_by(conn: psycopg.Connection, guild_id: int, user_id: int) -> list[EarnedAchievement]:
    """What a member has earned in a guild, oldest first (bonus as defined now)."""
    rows = conn.execute(
        """
        SELECT a.id, a.name, a.description, a.bonus_points, ma.earned_at
        FROM member_achievements ma JOIN achievements a ON a.id = ma.achievement_id
        WHERE ma.guild_id = %s AND ma.user_id = %s
        ORDER BY ma.earned_at, a.id
        """,
        (guild_id, user_id),
    ).fetchall()
    return [EarnedAchievement(*r) for r in rows]


# -- qualifying ----------------------------------------------------------------------------
# Whether member m (with points p and user_stats s, either may be missing) meets achievement a,
# with {now} as the present (now() for a change; the sweep's start for the sweep).
# `a.cutoff` is the balance of the K-th place for top_k (NULL: fewer than K members), so
# "rank <= K" (competition rank: 1 + how many have strictly more) is "balance >= cutoff".
# The arms are ANDed with the criterion first so only the matching arm's subquery runs.
def _qualifies(now: str) -> str:
    return f"""
(
    (a.criterion = 'balance_at_least' AND coalesce(p.balance, 0) >= a.threshold)
 OR (a.criterion = 'earned_at_least' AND coalesce(s.total_earned, 0) >= a.threshold)
 OR (a.criterion = 'transactions_at_least' AND coalesce(s.transaction_count, 0) >= a.threshold)
 OR (a.criterion = 'top_k' AND coalesce(p.balance, 0) > 0
     AND (a.cutoff IS NULL OR p.balance >= a.cutoff))
 OR (a.criterion = 'member_days' AND m.joined_at <= {now} - make_interval(days => a.window_days))
 OR (a.criterion = 'email_approved' AND EXISTS (
        SELECT 1 FROM email_submissions e
        WHERE e.guild_id = m.guild_id AND e.user_id = m.user_id AND e.status = 'approved'))
 OR (a.criterion = 'earned_within_days' AND (
        -- "earned" as user_stats counts it: credits, less reverted credits.
        SELECT coalesce(sum(CASE WHEN t.kind = 'revert' THEN least(t.amount, 0)
                                 ELSE greatest(t.amount, 0) END), 0)
        FROM transactions t
        WHERE t.guild_id = m.guild_id AND t.user_id = m.user_id
          AND t.created_at >= {now} - make_interval(days => a.window_days)) >= a.threshold)
)
"""


# The balance of the K-th place of top-K achievement `a` (NULL: fewer than K members).
_CUTOFF = """(
    SELECT p2.balance FROM points p2 WHERE p2.guild_id = a.guild_id
    ORDER BY p2.balance DESC, p2.user_id OFFSET greatest(a.threshold, 1) - 1 LIMIT 1)"""

_ACTIVE = f"""
SELECT a.id, a.guild_id, a.name, a.bonus_points, a.criterion, a.threshold, a.window_days,
       CASE WHEN a.criterion = 'top_k' THEN {_CUTOFF} END AS cutoff
FROM achievements a
WHERE a.active AND a.criterion = ANY(%(kinds)s)
"""

_MEMBER_QUALIFIES = f"""
WITH a AS MATERIALIZED ({_ACTIVE} AND a.guild_id = %(guild_id)s)
SELECT a.id, a.name, a.bonus_points
FROM members m
JOIN a ON a.guild_id = m.guild_id
LEFT JOIN points p ON p.guild_id = m.guild_id AND p.user_id = m.user_id
LEFT JOIN user_stats s ON s.guild_id = m.guild_id AND s.user_id = m.user_id
WHERE m.guild_id = %(guild_id)s AND m.user_id = %(user_id)s AND m.erased_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM member_achievements ma
                  WHERE ma.guild_id = m.guild_id AND ma.user_id = m.user_id AND ma.achievement_id = a.id)
  AND {_qualifies("now()")}
ORDER BY a.id
"""


def _dm_text(name: str, bonus: int, guild_name: str, policy: GuildPolicy) -> str:
    where = f" in **{guild_name}**" if guild_name else ""
    text = f"\N{TROPHY} You earned the achievement **{name}**{where}!"
    if bonus:
        text += f" Bonus: **{policy.points(bonus)}**."
    return text


def grant(
    conn: psycopg.Connection,
    guild_id: int,
    user_id: int,
    achievement_id: int,
    name: str,
    bonus_points: int,
    *,
    policy: GuildPolicy,
    settings: Settings,
    guild_name: str = "",
) -> Granted | None:
    """Give one achievement to one member in the caller's transaction; None if they hold it.

    The member_achievements row is claimed first (a concurrent grant waits on it, then finds
    it taken), then the bonus is paid under the key "achievement:{id}:{user}" (a replay pays
    nothing), then the DM is queued unless the guild turned automatic DMs off.
    """
    row = conn.execute(
        "INSERT INTO member_achievements (guild_id, user_id, achievement_id) VALUES (%s, %s, %s) "
        "ON CONFLICT DO NOTHING RETURNING earned_at",
        (guild_id, user_id, achievement_id),
    ).fetchone()
    if row is None:
        return None
    key = f"achievement:{achievement_id}:{user_id}"
    transaction_id = None
    # A bonus never takes a balance out of the range (pointsbot.amounts): a member near the top
    # gets what still fits, so earning it never refuses the change that earned it. The member's
    # points row is locked by that change (or by the sweep's batch), so the room stays.
    bonus_points = min(bonus_points, max(MAX_BALANCE - ledger.balance(conn, guild_id, user_id), 0))
    if bonus_points > 0:
        result = ledger.award(
            conn,
            guild_id=guild_id,
            user_id=user_id,
            amount=bonus_points,
            reason=f"Achievement: {name}",
            actor_id=None,
            actor_name="achievement",
            source="achievement",
            idempotency_key=key,
            # The achievement DM below tells the member about the bonus; no second DM.
            silent=True,
            kind="achievement",
            settings=settings,
        )
        transaction_id = result.entry.id
        conn.execute(
            "UPDATE member_achievements SET transaction_id = %s "
            "WHERE guild_id = %s AND user_id = %s AND achievement_id = %s",
            (transaction_id, guild_id, user_id, achievement_id),
        )
    dm_id = None
    if policy.dm_notifications:
        from . import outbox

        dm_id = outbox.enqueue_dm(
            conn,
            guild_id=guild_id,
            user_id=user_id,
            content=_dm_text(name, bonus_points, guild_name, policy),
            reason="achievement",
            dedupe_key=key,
        )
    return Granted(guild_id, user_id, achievement_id, name, bonus_points, transaction_id, dm_id)


def _guild_name(conn: psycopg.Connection, guild_id: int) -> str:
    row = conn.execute("SELECT name FROM guilds WHERE guild_id = %s", (guild_id,)).fetchone()
    return row[0] if row else ""


def check_member(
    conn: psycopg.Connection,
    guild_id: int,
    user_id: int,
    *,
    kinds: Iterable[str] = CHANGE_KINDS,
    policy: GuildPolicy | None = None,
    settings: Settings | None = None,
) -> list[Granted]:
    """Grant every active achievement of the given criteria the member now meets.

    Runs in the caller's transaction (effects.after_change calls it after each change, with
    the member's points row already locked by that change). A bonus is a change too, so the
    check repeats until nothing new is earned; the bonus's own after_change skips this.
    """
    settings = settings or get_settings()
    policy = policy or guild_policy(conn, settings, guild_id)
    params = {"guild_id": guild_id, "user_id": user_id, "kinds": list(kinds)}
    granted: list[Granted] = []
    guild_name: str | None = None
    for _ in range(_MAX_ROUNDS):
        due = conn.execute(_MEMBER_QUALIFIES, params).fetchall()
        if not due:
            break
        if guild_name is None:
            guild_name = _guild_name(conn, guild_id)
        paid = False
        for achievement_id, name, bonus in due:
            got = grant(
                conn, guild_id, user_id, achievement_id, name, bonus,
                policy=policy, settings=settings, guild_name=guild_name,
            )  # fmt: skip
            if got is not None:
                granted.append(got)
                paid = paid or bonus > 0
        if not paid:
            break
    return granted


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


_BATCH_QUALIFIES = f"""
WITH batch AS (
    SELECT m.guild_id, m.user_id, m.joined_at
    FROM members m
    WHERE (m.guild_id, m.user_id) > (%(after_g)s, %(after_u)s)
      AND (m.guild_id, m.user_id) <= (%(upto_g)s, %(upto_u)s)
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
)
SELECT m.guild_id, m.user_id, a.id, a.name, a.bonus_points
FROM batch m
JOIN a ON a.guild_id = m.guild_id
LEFT JOIN points p ON p.guild_id = m.guild_id AND p.user_id = m.user_id
LEFT JOIN user_stats s ON s.guild_id = m.guild_id AND s.user_id = m.user_id
WHERE NOT EXISTS (SELECT 1 FROM member_achievements ma
                  WHERE ma.guild_id = m.guild_id AND ma.user_id = m.user_id AND ma.achievement_id = a.id)
  AND {_qualifies("%(as_of)s::timestamptz")}
ORDER BY m.guild_id, m.user_id, a.id
"""

# Top-K achievements of the given guilds (NULL: all guilds) the snapshot has no cutoff for yet,
# or one taken for another K, with their K-th place balance now.
_MISSING_CUTOFFS = f"""
SELECT a.id, a.threshold, {_CUTOFF}
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
    end = conn.execute(
        "SELECT guild_id, user_id FROM members WHERE (guild_id, user_id) > (%s, %s) "
        "AND (guild_id, user_id) <= (%s, %s) ORDER BY guild_id, user_id OFFSET %s LIMIT 1",
        (*after, *limit, batch_size - 1),
    ).fetchone()
    finished = end is None
    upto = limit if end is None else (end[0], end[1])
    members, guilds = conn.execute(
        "SELECT count(*), array_agg(DISTINCT guild_id) FROM members "
        "WHERE (guild_id, user_id) > (%s, %s) AND (guild_id, user_id) <= (%s, %s)",
        (*after, *upto),
    ).fetchone()
    # Top-K achievements defined (or given a new K) since the snapshot was taken: their
    # leaderboard as of now, kept for the rest of the sweep.
    added = _add_missing_cutoffs(conn, snapshot, guilds or []) if members else []
    cutoffs = list(snapshot.cutoffs.items())
    due = conn.execute(
        _BATCH_QUALIFIES,
        {
            "after_g": after[0],
            "after_u": after[1],
            "upto_g": upto[0],
            "upto_u": upto[1],
            "kinds": list(ALL_KINDS),
            "as_of": snapshot.as_of,
            "cut_ids": [i for i, _ in cutoffs],
            "cut_ks": [k for _, (k, _) in cutoffs],
            "cut_values": [c for _, (_, c) in cutoffs],
        },
    ).fetchall()
    granted: list[Granted] = []
    if due:
        members_due = sorted({(g, u) for g, u, *_ in due})
        # Lock the balances first, in key order, as a change does before it checks
        # achievements: the sweep and a concurrent change then queue on the same lock instead
        # of deadlocking on member_achievements.
        conn.execute(
            "SELECT 1 FROM points p JOIN unnest(%s::bigint[], %s::bigint[]) AS k(g, u) "
            "ON p.guild_id = k.g AND p.user_id = k.u ORDER BY p.guild_id, p.user_id FOR UPDATE OF p",
            ([g for g, _ in members_due], [u for _, u in members_due]),
        )
        policies: dict[int, tuple[GuildPolicy, str]] = {}
        for guild_id, user_id, achievement_id, name, bonus in due:
            if guild_id not in policies:
                policies[guild_id] = (guild_policy(conn, settings, guild_id), _guild_name(conn, guild_id))
            policy, guild_name = policies[guild_id]
            ledger.ensure_member(conn, guild_id, user_id)
            got = grant(
                conn, guild_id, user_id, achievement_id, name, bonus,
                policy=policy, settings=settings, guild_name=guild_name,
            )  # fmt: skip
            if got is not None:
                granted.append(got)
    return upto, finished, members, granted, added


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
    from . import outbox

    settings = settings or get_settings()
    size = batch_size or settings.achievement_sweep_batch
    if size < 1:
        raise InvalidInput("The sweep's batch size must be at least 1.")
    started = time.monotonic()
    slowest = 0.0
    batches = members = awards = dms = unrequested = 0
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
    return SweepReport(sweep_id, batches, members, awards, dms, finished, time.monotonic() - started)
