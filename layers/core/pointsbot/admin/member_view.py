"""A member's page on the admin site: one place to answer "what happened to this person's
points" (issue 12, item 10). Read in one transaction; every part is a bounded read on an index
of its own (the member's entries, purchases, role changes and DMs by (guild, user, id DESC),
the rank from the bucket counts, at most SEASONS seasons), so the page costs the same at 10M
entries as at 10 thousand (bench/bench_admin.py measures it beside the page before)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from .. import ledger
from ..community import achievements, members, profiles, roles, seasons, store
from . import monitor

SEASONS = 10  # the latest seasons shown with the member's place in each
PURCHASES = 10
ROLE_CHANGES = 50
DMS = 20
HISTORY = 20


@dataclass(frozen=True)
class SeasonPlace:
    season: seasons.Season
    standing: seasons.Standing | None  # None: no place (nothing counted in it)


@dataclass(frozen=True)
class MemberView:
    member: members.Member
    stats: members.MemberStats
    rank: ledger.RankInfo
    trail: tuple[ledger.TrailPoint, ...]
    history: ledger.HistoryPage
    earned: list[Any]
    submissions: list[Any]
    dms: list[Any]
    role_changes: list[roles.RoleChange]
    role_names: dict[int, str]  # from the guild's kept role list (no call to Discord)
    purchases: store.PurchasePage
    season_places: list[SeasonPlace]


def before_view(conn: psycopg.Connection, guild_id: int, user_id: int, page: int = 1) -> tuple:
    """What the member page read before issue 12 item 10 (the bench's reference)."""
    return (
        members.get(conn, guild_id, user_id),
        members.stats_of(conn, guild_id, user_id),
        ledger.history_page(conn, guild_id, user_id, page, HISTORY),
        achievements.earned_by(conn, guild_id, user_id),
        monitor.email_submissions_of(conn, guild_id, user_id),
        monitor.dm_page(conn, guild_id, user_id=user_id, limit=DMS)[0],
        roles.member_changes(conn, guild_id, user_id, limit=ROLE_CHANGES),
    )


def member_view(conn: psycopg.Connection, guild_id: int, user_id: int, page: int = 1) -> MemberView:
    member, stats, history, earned, submissions, dms, role_changes = before_view(
        conn, guild_id, user_id, page
    )
    places = [
        SeasonPlace(season, seasons.standing_of(conn, season, user_id))
        for season in seasons.list_seasons(conn, guild_id, limit=SEASONS)
        if season.status != "scheduled"
    ]
    kept_roles = profiles.cached_roles(conn, guild_id)
    wanted = {c.role_id for c in role_changes}
    return MemberView(
        member=member,
        stats=stats,
        rank=ledger.rank_of(conn, guild_id, user_id),
        trail=ledger.balance_trail(conn, guild_id, user_id),
        history=history,
        earned=earned,
        submissions=submissions,
        dms=dms,
        role_changes=role_changes,
        role_names={r: name for r in wanted if (name := kept_roles.name_of(r))},
        purchases=store.member_purchases(conn, guild_id, user_id, 1, PURCHASES),
        season_places=places,
    )
