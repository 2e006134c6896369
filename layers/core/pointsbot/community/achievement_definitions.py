"""Achievement definitions, per guild: what the admin site creates, edits and lists, and who
holds each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import errors as pg_errors

from ..platform.errors import DomainError, InvalidInput, NotFound
from ..platform.ids import parse_snowflake
from ..platform.paging import page_number
from ..platform.storable import check_one_line
from .achievement_criteria import CRITERIA

MAX_NAME = 100
MAX_DESCRIPTION = 500
MAX_BONUS = 1_000_000_000
MAX_WINDOW_DAYS = 3650


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
    role_id: int | None = None  # a Discord role granted with the achievement
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
    bonus_paid: int  # the bonus entry's amount: less than defined (or 0) at the balance ceiling
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


# -- definitions (the admin site) -----------------------------------------------------------
_DEF_COLUMNS = (
    "a.id, a.guild_id, a.name, a.description, a.bonus_points, a.criterion, a.threshold, a.window_days, "
    "a.active, a.created_at, a.updated_at, a.role_id"
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
    role_id: object = None,
) -> dict:
    """Check a definition; returns clean values or raises InvalidInput naming the problem.
    Whether the bot can grant `role_id` is asked of Discord by the admin site (roles.bot_can_grant)."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("The achievement needs a name.")
    if len(name.strip()) > MAX_NAME:
        raise InvalidInput(f"The name is too long (at most {MAX_NAME} characters).")
    check_one_line(name, "The name")
    description = "" if description is None else description
    if not isinstance(description, str) or len(description.strip()) > MAX_DESCRIPTION:
        raise InvalidInput(f"The description is too long (at most {MAX_DESCRIPTION} characters).")
    spec = CRITERIA.get(criterion) if isinstance(criterion, str) else None
    if spec is None:
        raise InvalidInput("Choose a rule from the list.", field="criterion")
    bonus = _int_field(bonus_points, "bonus", 0, MAX_BONUS)
    if spec.threshold_label is not None:
        number = _int_field(threshold, spec.threshold_label, 1, 10**15)
    else:
        number = 0
    days = _int_field(window_days, "number of days", 1, MAX_WINDOW_DAYS) if spec.uses_window else None
    role = None if role_id is None or role_id == "" else parse_snowflake(role_id, "The role id")
    return {
        "role_id": role,
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
    role_id: int | str | None = None,
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
        role_id=role_id,
    )
    from ..ledger.guilds import ensure_guild

    ensure_guild(conn, guild_id)
    try:
        with conn.transaction():  # a savepoint: a taken name must not abort the caller's transaction
            row = conn.execute(
                f"""
                INSERT INTO achievements AS a (guild_id, name, description, bonus_points, criterion,
                                               threshold, window_days, active, role_id)
                VALUES (%(guild_id)s, %(name)s, %(description)s, %(bonus_points)s, %(criterion)s,
                        %(threshold)s, %(window_days)s, %(active)s, %(role_id)s)
                RETURNING {_DEF_COLUMNS}
                """,
                {**clean, "guild_id": guild_id, "active": bool(active)},
            ).fetchone()
    except pg_errors.UniqueViolation:
        raise _name_taken() from None
    return _definition(row)


_UPDATABLE = (
    "name",
    "description",
    "bonus_points",
    "criterion",
    "threshold",
    "window_days",
    "active",
    "role_id",
)


def update_definition(
    conn: psycopg.Connection, guild_id: int, achievement_id: int, **changes: object
) -> AchievementDefinition:
    """Change some fields of a definition (any of name, description, bonus_points, criterion,
    threshold, window_days, active, role_id). Members who hold it keep it, the bonus they got and
    the role they were given; a new role is given to those who earn it from then on."""
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
                       window_days = %(window_days)s, active = %(active)s, role_id = %(role_id)s,
                       updated_at = now()
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
    """What a member has earned in a guild, oldest first, with the bonus actually paid.

    That is the bonus entry's amount, not the definition's bonus: a member at the balance
    ceiling was paid what fitted (maybe nothing: no entry), and a definition edited later does
    not change what was paid then.
    """
    rows = conn.execute(
        """
        SELECT a.id, a.name, a.description, coalesce(t.amount, 0), ma.earned_at
        FROM member_achievements ma JOIN achievements a ON a.id = ma.achievement_id
        LEFT JOIN transactions t ON t.id = ma.transaction_id
        WHERE ma.guild_id = %s AND ma.user_id = %s
        ORDER BY ma.earned_at, a.id
        """,
        (guild_id, user_id),
    ).fetchall()
    return [EarnedAchievement(*r) for r in rows]
