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
from .context import Context, autocomplete, command
from .member import MEDALS, mention
from .store import page_buttons

STANDINGS_PAGE_SIZE = 10


def _when(moment: datetime, style: str = "f") -> str:
    return f"<t:{int(moment.timestamp())}:{style}>"


def prize_words(ctx: Context, season: seasons.Season) -> str | None:
    """ "The top 3 places win 50 points and @Champion", in the answer's language; None without prizes."""
    if not season.prize_places:
        return None
    tr = ctx.tr
    gifts = [g for g in (ctx.amount(season.prize_points) if season.prize_points else None,
                         f"<@&{season.prize_role_id}>" if season.prize_role_id else None) if g]  # fmt: skip
    if not gifts:
        return tr.ngettext(
            "The top {n} place wins a prize.", "The top {n} places win a prize.", season.prize_places
        )
    return tr.ngettext("The top {n} place wins {prize}.", "The top {n} places win {prize}.", season.prize_places,
                       prize=tr._("{first} and {second}", first=gifts[0], second=gifts[1]) if len(gifts) == 2
                       else gifts[0])  # fmt: skip


@command("season current")
def season_current(ctx: Context, conn: psycopg.Connection) -> Reply:
    tr = ctx.tr
    season = seasons.current_season(conn, ctx.guild_id)
    if season is None:
        return ctx.answer(ctx.card().header("### 🗓️ " + tr._("Season"),
                                            tr._("No season is running or scheduled in this server.")))  # fmt: skip
    title = "### 🗓️ " + tr._("Season {season}", season=season.name)
    if season.status == "scheduled":
        card = ctx.card().header(title, tr._("Starts {start} ({relative}) and ends {end}.", start=_when(season.starts_at),
                                             relative=_when(season.starts_at, "R"), end=_when(season.ends_at)))  # fmt: skip
        card.text(prize_words(ctx, season) or "")
        return ctx.answer(card)
    dates = tr._("{start} to {end}, ends {relative}.", start=_when(season.starts_at, "d"),
                 end=_when(season.ends_at, "d"), relative=_when(season.ends_at, "R"))  # fmt: skip
    card = ctx.card().header(title, dates, avatar=ctx.avatar(ctx.user_id))
    card.separator()
    standing = seasons.standing_of(conn, season, ctx.user_id)
    if standing is None:
        card.text(tr._("You have no {currency} this season yet.", currency=ctx.policy.currency_name))
    else:
        medal = MEDALS.get(standing.place, "🏅")
        card.text(f"{medal} " + tr._("You are **#{rank}** of {total} with {amount}.", rank=tr.number(standing.place),
                                     total=tr.number(standing.members), amount=ctx.points(standing.score)))  # fmt: skip
    prizes = prize_words(ctx, season)
    if prizes:
        card.text("🎁 " + prizes)
    return ctx.answer(card)


@command("season standings")
def season_standings(ctx: Context, conn: psycopg.Connection) -> Reply:
    tr = ctx.tr
    named = ctx.text("season")
    if named:
        season = seasons.find_season(conn, ctx.guild_id, named)
    else:
        past = [s for s in seasons.list_seasons(conn, ctx.guild_id, 20) if s.archived]
        if not past:
            return Reply(tr._("No season has ended in this server yet."), ephemeral=True)
        season = past[0]
    if not season.archived:
        return Reply(tr._("The season {season} has not ended yet: see /leaderboard period:season.",
                          season=repr(season.name)), ephemeral=True)  # fmt: skip
    page = ctx.page()
    board = seasons.standings_page(conn, season, page, STANDINGS_PAGE_SIZE)
    if page > board.pages:
        board = seasons.standings_page(conn, season, board.pages, STANDINGS_PAGE_SIZE)
    card = ctx.card().header(
        "### 🏁 " + tr._("Season {season}: final standings", season=season.name),
        tr._("Page {page} of {pages}", page=tr.number(board.page), pages=tr.number(board.pages)),
        avatar=ctx.avatar(ctx.user_id),
    )  # fmt: skip
    card.separator()
    if not board.rows:
        card.text(tr._("Nobody scored this season."))
    else:
        card.text("\n".join(
            f"{MEDALS.get(row.rank) or f'`#{tr.number(row.rank)}`'} {mention(row.user_id)} · {ctx.points(row.balance)}"
            for row in board.rows
        ))  # fmt: skip
    card.buttons(*page_buttons(tr, board.page, board.pages, f"standings:{season.id}"))
    mine = seasons.standing_of(conn, season, ctx.user_id)
    if mine is not None:
        card.separator(divider=False).text("-# " + tr._("You placed **#{rank}** with {amount}.",
                                                        rank=tr.number(mine.place), amount=ctx.amount(mine.score)))  # fmt: skip
    return ctx.answer(card)


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
    tr = ctx.tr
    values = dict(season=season.name, id=season.id, end=_when(season.ends_at))
    line = (tr._("Season **{season}** (#{id}) starts now and ends {end}.", **values) if season.status == "running"
            else tr._("Season **{season}** (#{id}) starts {start} and ends {end}.", start=_when(season.starts_at),
                      **values))  # fmt: skip
    card = ctx.card().header("### 🗓️ " + tr._("Season scheduled"), line)
    extras = [prize_words(ctx, season)]
    if season.reset_balances:
        extras.append(tr._("Every balance is reset to zero at the end."))
    if season.post_channel_id:
        extras.append(
            tr._("The final top 10 is posted in {channel}.", channel=f"<#{season.post_channel_id}>")
        )
    if any(extras):
        card.separator().text("\n".join("- " + e for e in extras if e))
    return ctx.answer(card)


@command("seasons end", writes=True)
def seasons_end(ctx: Context, conn: psycopg.Connection) -> Reply:
    season = _named_or_current(ctx, conn)
    ended = seasons.end_season_early(
        conn, ctx.guild_id, season.id, actor_id=ctx.user_id, actor_name=ctx.actor_name
    )
    tr = ctx.tr
    if ended is None:
        line = tr._("Season **{season}** had not started; it is cancelled.", season=season.name)
    else:
        line = tr._("Season **{season}** has ended. Its final standings and prizes follow within minutes.",
                    season=season.name)  # fmt: skip
    return ctx.answer(ctx.card().header("### 🏁 " + tr._("Season ended"), line))


@command("seasons rename", writes=True)
def seasons_rename(ctx: Context, conn: psycopg.Connection) -> Reply:
    season = _named_or_current(ctx, conn)
    renamed = seasons.rename_season(conn, ctx.guild_id, season.id, ctx.text("name"), actor_id=ctx.user_id,
                                    actor_name=ctx.actor_name)  # fmt: skip
    tr = ctx.tr
    line = tr._("Season **{old}** is now **{new}**.", old=season.name, new=renamed.name)
    return ctx.answer(ctx.card().header("### ✏️ " + tr._("Season renamed"), line))


@command("seasons timezone", writes=True)
def seasons_timezone(ctx: Context, conn: psycopg.Connection) -> Reply:
    zone = windows.set_time_zone(conn, ctx.guild_id, ctx.text("zone"))
    tr = ctx.tr
    line = tr._(
        "Weeks, months and season dates now follow **{zone}** (for points earned from now on).", zone=zone
    )
    return ctx.answer(ctx.card().header("### 🕒 " + tr._("Time zone"), line))


def _named_or_current(ctx: Context, conn: psycopg.Connection) -> seasons.Season:
    named = ctx.text("season")
    if named:
        return seasons.find_season(conn, ctx.guild_id, named)
    season = seasons.current_season(conn, ctx.guild_id)
    if season is None:
        raise InvalidInput(ctx.tr._("No season is running or scheduled; name one with the season option."))
    return season
