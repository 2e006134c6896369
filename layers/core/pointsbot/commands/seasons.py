"""Season commands: members' /season current and /season standings, admins' /seasons start,
end, rename and timezone. (Reverting a season's balance reset is seasons.revert_reset, for the
admin site: a guild's worth of entries does not fit in an interaction's few seconds.)

Discord does not let one command be both run bare and have sub-commands, so the member's
"/season" is "/season current". The rules are community/seasons.py's; these shape answers.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

from ..community import seasons, windows
from ..discord.interactions import Reply
from ..platform.errors import InvalidInput
from ..platform.wording import count
from .context import Context, autocomplete, command

STANDINGS_PAGE_SIZE = 10


def _when(moment: datetime, style: str = "f") -> str:
    return f"<t:{int(moment.timestamp())}:{style}>"


@command("season current")
def season_current(ctx: Context, conn: psycopg.Connection) -> Reply:
    season = seasons.current_season(conn, ctx.guild_id)
    if season is None:
        return Reply("No season is running or scheduled in this server.")
    if season.status == "scheduled":
        return Reply(
            f"**{season.name}** starts {_when(season.starts_at)} ({_when(season.starts_at, 'R')}) "
            f"and ends {_when(season.ends_at)}."
        )
    lines = [
        f"**Season {season.name}**: {_when(season.starts_at, 'd')} to {_when(season.ends_at, 'd')}, "
        f"ends {_when(season.ends_at, 'R')}."
    ]
    standing = seasons.standing_of(conn, season, ctx.user_id)
    if standing is None:
        lines.append(f"You have no {ctx.policy.currency_name} this season yet.")
    else:
        lines.append(
            f"You are **#{standing.place:,}** of {standing.members:,} with {ctx.points(standing.score)}."
        )
    if season.prize_places:
        lines.append(f"The top {count(season.prize_places, 'place')} win a prize.")
    return Reply("\n".join(lines))


@command("season standings")
def season_standings(ctx: Context, conn: psycopg.Connection) -> Reply:
    named = ctx.text("season")
    if named:
        season = seasons.find_season(conn, ctx.guild_id, named)
    else:
        past = [s for s in seasons.list_seasons(conn, ctx.guild_id, 20) if s.archived]
        if not past:
            return Reply("No season has ended in this server yet.", ephemeral=True)
        season = past[0]
    if not season.archived:
        return Reply(
            f"The season {season.name!r} has not ended yet: see /leaderboard period:season.", ephemeral=True
        )
    page = ctx.page()
    board = seasons.standings_page(conn, season, page, STANDINGS_PAGE_SIZE)
    if page > board.pages:
        board = seasons.standings_page(conn, season, board.pages, STANDINGS_PAGE_SIZE)
    lines = [f"**Season {season.name}: final standings** (page {board.page} of {board.pages})"]
    if not board.rows:
        lines.append("Nobody scored this season.")
    for row in board.rows:
        lines.append(f"{row.rank}. <@{row.user_id}> {ctx.policy.points(row.balance)}")
    mine = seasons.standing_of(conn, season, ctx.user_id)
    if mine is not None:
        lines.append(f"You placed **#{mine.place:,}** with {ctx.points(mine.score)}.")
    return Reply("\n".join(lines))


@autocomplete("season standings")
def standings_choices(
    conn: psycopg.Connection, guild_id: int, user_id: int, typed: str
) -> list[tuple[str, str]]:
    return seasons.season_choices(conn, guild_id, typed, ended_only=True)


@autocomplete("seasons end")
def end_choices(conn: psycopg.Connection, guild_id: int, user_id: int, typed: str) -> list[tuple[str, str]]:
    return seasons.season_choices(conn, guild_id, typed)


autocomplete("seasons rename")(end_choices)


# -- admins ----------------------------------------------------------------------------------------
def _grant_check(ctx: Context):
    def check(role_id: int):
        from ..community import roles
        from ..discord.rest import get_client

        return roles.bot_can_grant(get_client(), ctx.guild_id, role_id)

    return check


@command("seasons start", writes=True)
def seasons_start(ctx: Context, conn: psycopg.Connection) -> Reply:
    start_text = ctx.text("start").strip()
    starts_at = seasons.parse_when(conn, ctx.guild_id, start_text) if start_text else None
    ends_at = seasons.parse_when(conn, ctx.guild_id, ctx.text("end"), end=True)
    season = seasons.start_season(
        conn, ctx.guild_id, name=ctx.text("name"), starts_at=starts_at, ends_at=ends_at,
        actor_id=ctx.user_id, actor_name=ctx.actor_name,
        prize_places=ctx.integer("prize_places", 0), prize_points=ctx.integer("prize_points", 0),
        prize_role_id=ctx.member("prize_role"), reset_balances=ctx.flag("reset_balances"),
        post_channel_id=ctx.member("channel"), grant_check=_grant_check(ctx),
    )  # fmt: skip
    when = "now" if season.status == "running" else _when(season.starts_at)
    extras = []
    if season.prize_places:
        gifts = [g for g in (ctx.policy.points(season.prize_points) if season.prize_points else None,
                             f"<@&{season.prize_role_id}>" if season.prize_role_id else None) if g]  # fmt: skip
        extras.append(f"the top {count(season.prize_places, 'place')} win {' and '.join(gifts)}")
    if season.reset_balances:
        extras.append("every balance is reset to zero at the end")
    if season.post_channel_id:
        extras.append(f"the final top 10 is posted in <#{season.post_channel_id}>")
    tail = f" At the end, {'; '.join(extras)}." if extras else ""
    return Reply(
        f"Season **{season.name}** (#{season.id}) starts {when} and ends {_when(season.ends_at)}.{tail}"
    )


@command("seasons end", writes=True)
def seasons_end(ctx: Context, conn: psycopg.Connection) -> Reply:
    season = _named_or_current(ctx, conn)
    ended = seasons.end_season_early(
        conn, ctx.guild_id, season.id, actor_id=ctx.user_id, actor_name=ctx.actor_name
    )
    if ended is None:
        return Reply(f"Season **{season.name}** had not started; it is cancelled.")
    return Reply(f"Season **{season.name}** has ended. Its final standings and prizes follow within minutes.")


@command("seasons rename", writes=True)
def seasons_rename(ctx: Context, conn: psycopg.Connection) -> Reply:
    season = _named_or_current(ctx, conn)
    renamed = seasons.rename_season(conn, ctx.guild_id, season.id, ctx.text("name"), actor_id=ctx.user_id,
                                    actor_name=ctx.actor_name)  # fmt: skip
    return Reply(f"Season **{season.name}** is now **{renamed.name}**.")


@command("seasons timezone", writes=True)
def seasons_timezone(ctx: Context, conn: psycopg.Connection) -> Reply:
    zone = windows.set_time_zone(conn, ctx.guild_id, ctx.text("zone"))
    return Reply(f"Weeks, months and season dates now follow **{zone}** (for points earned from now on).")


def _named_or_current(ctx: Context, conn: psycopg.Connection) -> seasons.Season:
    named = ctx.text("season")
    if named:
        return seasons.find_season(conn, ctx.guild_id, named)
    season = seasons.current_season(conn, ctx.guild_id)
    if season is None:
        raise InvalidInput("No season is running or scheduled; name one with the season option.")
    return season
