"""Leaderboard pages (issue 15): the one loader behind the admin page and the public page
(ties, periods, a past season's final table, an erased member, keyset and jump paging against
the naive query), and the public page through the admin site's handler: off and unknown give
the same 404, on gives 200, ETag and 304, the per-client limit's 429, no private data."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

import pytest
from _admin_browser import Browser, admin_site_database
from _ledger_checks import award, revert

from pointsbot.community import boards, members, seasons
from pointsbot.ledger import guilds
from pointsbot.platform import config, runtime
from pointsbot.platform.errors import InvalidInput, NotFound
from pointsbot_local import apigw

pytestmark = pytest.mark.integration

_guilds = itertools.count(948_000_000_000_000_001)
ADMIN_NAME, ADMIN_PASSWORD = "boards-admin", "boards admin's password"


def _guild(db) -> int:
    guild = next(_guilds)
    db.run(guilds.ensure_guild, guild)
    return guild


def _naive(sql, guild: int) -> list[tuple[int, int, int]]:
    """The all-time board the slow way: (rank, user, balance), ranks 1 + the members above."""
    return [(int(r), u, b) for u, b, r in sql(
        "SELECT p.user_id, p.balance, 1 + (SELECT count(*) FROM points q WHERE q.guild_id = p.guild_id "
        "AND q.balance > p.balance) FROM points p JOIN members m USING (guild_id, user_id) "
        "WHERE p.guild_id = %s ORDER BY p.balance DESC, p.user_id", (guild,))]  # fmt: skip


def _rows(board) -> list[tuple[int, int, int]]:
    return [(r.rank, r.user_id, r.score) for r in board.rows]


def test_ties_share_a_rank_and_pages_match_the_naive_board_by_jump_and_by_keyset(db, settings, sql):
    # Given 23 members with many ties (balances 0..4, some several times)
    guild = _guild(db)
    for i in range(23):
        award(db, guild, 1000 + i, 1 + (i * 7) % 5, settings)
    naive = _naive(sql, guild)
    assert len({rank for rank, _, _ in naive}) < len(naive)  # there are ties
    # When every page of 5 is read by page number (the jump)
    pages = [db.run(boards.load_board, guild, "all", page=p, page_size=5, choices=False) for p in range(1, 6)]
    # Then together they are the naive board, ranks included
    assert [row for b in pages for row in _rows(b)] == naive
    assert pages[0].page.pages == 5 and pages[0].page.total_members == 23
    # When Next is followed by keyset from page 1, and Previous back from the last page
    walked, board = _rows(pages[0]), pages[0]
    while board.page.page < board.page.pages:
        board = db.run(boards.load_board, guild, "all", page=board.page.page + 1, after=board.last_key, page_size=5,
                       choices=False)  # fmt: skip
        walked += _rows(board)
    back, board = _rows(board), board
    while board.page.page > 1:
        board = db.run(boards.load_board, guild, "all", page=board.page.page - 1, before=board.first_key,
                       page_size=5, choices=False)  # fmt: skip
        back = _rows(board) + back
    # Then both walks are the naive board too
    assert walked == naive and back == naive
    # And a page past the end is the last page, as the slash command shows it
    past = db.run(boards.load_board, guild, "all", page=99, page_size=5, choices=False)
    assert past.page.page == 5 and _rows(past) == naive[20:]
    # When the board moves between page 1 and Next (a member climbs to the top)
    first = pages[0]
    award(db, guild, 999, 50, settings)
    moved = db.run(boards.load_board, guild, "all", page=2, after=first.last_key, page_size=5, choices=False)
    # Then Next continues right after the last member shown (no one shown twice), ranks fresh
    later = _naive(sql, guild)
    start = [u for _, u, _ in later].index(first.rows[-1].user_id) + 1
    assert _rows(moved) == later[start : start + 5]
    # And a keyset this site never wrote is ignored (the page number leads)
    odd = db.run(boards.load_board, guild, "all", page=2, after="1e3:x", page_size=5, choices=False)
    assert _rows(odd) == later[5:10]


def test_periods_week_month_current_season_and_a_past_seasons_final_table(db, settings, sql):
    guild = _guild(db)
    # Given a season with scores, a tie for second, and an entry reverted inside it
    now = db.run(lambda c: c.execute("SELECT now()").fetchone()[0])
    season = db.run(lambda c: seasons.start_season(c, guild, name="Spring", starts_at=None,
                                                   ends_at=now + timedelta(days=30), actor_id=1, actor_name="a"))  # fmt: skip
    for user, amount in ((201, 40), (202, 25), (203, 25), (204, 5)):
        award(db, guild, user, amount, settings)
    wrong = award(db, guild, 204, 100, settings).entry
    revert(db, guild, wrong.id, settings)
    expected = [(1, 201, 40), (2, 202, 25), (2, 203, 25), (4, 204, 5)]
    # Then this week, this month and the running season show the window scores, ties shared
    for period in ("week", "month", "season", f"season:{season.id}"):
        board = db.run(boards.load_board, guild, period)
        assert _rows(board) == expected, period
    week = db.run(boards.load_board, guild, "week")
    assert week.period.value.startswith("week:") and week.period.label.startswith("The week of")
    # And the period a link carries (the week's key) is the same board
    assert _rows(db.run(boards.load_board, guild, week.period.value)) == expected
    running = db.run(boards.load_board, guild, "season")
    assert running.period.value == f"season:{season.id}" and not running.period.final
    assert any(c.value == f"season:{season.id}" and "running" in c.label for c in running.choices)
    # When the season ends and its final table is archived; then balances move on
    sql("UPDATE seasons SET ends_at = now() WHERE id = %s", (season.id,))
    seasons.run_end(db, season.id, client=object())
    award(db, guild, 204, 1000, settings)
    final = db.run(boards.load_board, guild, f"season:{season.id}")
    # Then the past season shows its final standings (ties exact), not the live balances
    assert final.period.final and final.period.label == "Season Spring (final standings)"
    assert _rows(final) == expected and final.first_key is None
    assert any(c.value == f"season:{season.id}" and "final standings" in c.label for c in final.choices)
    assert _rows(db.run(boards.load_board, guild, "all"))[0] == (1, 204, 1005)
    # And no season running now: "season" names no board
    with pytest.raises(NotFound):
        db.run(boards.load_board, guild, "season")


@pytest.mark.parametrize(
    "period", ["year", "season:1", "week:2026-12-02", "month:2026-13-01", "season:0", "x" * 300]
)
def test_a_period_the_guild_has_not_is_not_found(db, period):
    guild = _guild(db)
    with pytest.raises(NotFound):
        db.run(boards.load_board, guild, period)


def test_a_page_that_is_not_a_number_is_refused_in_plain_words(db):
    with pytest.raises(InvalidInput, match="whole number"):
        db.run(boards.load_board, _guild(db), "all", page="two")


def test_names_and_avatars_and_an_erased_member_without_name_or_picture(db, settings):
    guild = _guild(db)
    db.run(members.remember, guild, 301, "ann", "Ann Example", "a" * 32)
    db.run(members.remember, guild, 302, "bert", "Bert Gone", "b" * 32)
    award(db, guild, 301, 10, settings)
    award(db, guild, 302, 20, settings)
    db.run(members.erase, guild, 302)
    rows = db.run(boards.load_board, guild, "all").rows
    assert [r.user_id for r in rows] == [302, 301]
    gone, ann = rows
    assert gone.shown_name == "Erased member" and gone.person.avatar_url is None and gone.initial == "?"
    assert ann.shown_name == "Ann Example" and ann.person.avatar_url.startswith("https://cdn.discordapp.com/")


# -- the public page through the admin site's handler --------------------------------------------------
@pytest.fixture(scope="module")
def site(database_url):
    db = admin_site_database(database_url, 948_100_000_000_000_001, (ADMIN_NAME, ADMIN_PASSWORD))
    yield db
    runtime.reset()


def _get(path: str, address: str = "198.51.100.80", **headers: str) -> dict:
    from admin_site.app import lambda_handler

    event = apigw.to_event("GET", path, {"host": "admin.test", **headers}, b"", source_ip=address)
    return lambda_handler(event, apigw.LambdaContext("admin_site"))


def _public_guild(site, settings, on: bool) -> int:
    guild = _guild(site)
    site.run(members.remember, guild, 401, "pub", "Public Person", "c" * 32)
    site.run(members.remember, guild, 402, "gone", "Gone Person", None)
    award(site, guild, 401, 30, settings, reason="a private reason")
    award(site, guild, 402, 31, settings)
    site.run(lambda c: c.execute(
        "UPDATE members SET email = 'secret@example.org', notes = 'a private note' WHERE guild_id = %s AND user_id = 401",
        (guild,)))  # fmt: skip
    site.run(members.erase, guild, 402)
    if on:
        site.run(guilds.update_guild_settings, guild, {"public_leaderboard": True})
    return guild


def test_public_page_off_and_unknown_are_the_same_404_and_on_is_200(site, settings):
    off = _public_guild(site, settings, on=False)
    on = _public_guild(site, settings, on=True)
    unknown = _get("/admin/leaderboard/948999999999999999", "198.51.100.81")
    switched_off = _get(f"/admin/leaderboard/{off}", "198.51.100.81")
    assert unknown["statusCode"] == switched_off["statusCode"] == 404
    assert unknown["body"] == switched_off["body"] and "Public Person" not in switched_off["body"]
    assert _get("/admin/leaderboard/0948", "198.51.100.81")["body"] == unknown["body"]
    page = _get(f"/admin/leaderboard/{on}", "198.51.100.81")
    assert page["statusCode"] == 200 and "Public Person" in page["body"]
    assert "set-cookie" not in {k.lower() for k in page["headers"]} and not page.get("cookies")
    # no private data: no email, note, reason; the erased member without name, picture or id
    body = page["body"]
    for private in ("secret@example.org", "a private note", "a private reason", "Gone Person", "402", "401"):
        assert private not in body, private
    assert "Erased member" in body
    assert page["headers"]["Content-Security-Policy"].startswith("default-src 'none'")
    # a period the guild has not is the same 404 too
    assert _get(f"/admin/leaderboard/{on}?period=season:1", "198.51.100.81")["body"] == unknown["body"]


def test_public_page_etag_and_304(site, settings):
    guild = _public_guild(site, settings, on=True)
    first = _get(f"/admin/leaderboard/{guild}?period=week", "198.51.100.82")
    etag = first["headers"]["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{40}"', etag) and "public" in first["headers"]["Cache-Control"]
    again = _get(f"/admin/leaderboard/{guild}?period=week", "198.51.100.82", **{"if-none-match": etag})
    assert again["statusCode"] == 304 and again["body"] == "" and again["headers"]["ETag"] == etag
    # a change on the board is a new tag
    award(site, guild, 401, 5, settings)
    changed = _get(f"/admin/leaderboard/{guild}?period=week", "198.51.100.82", **{"if-none-match": etag})
    assert changed["statusCode"] == 200 and changed["headers"]["ETag"] != etag


def test_public_page_is_rate_limited_per_client(site, settings, monkeypatch):
    guild = _public_guild(site, settings, on=True)
    monkeypatch.setenv("PUBLIC_BOARD_RATE_LIMIT", "3")
    monkeypatch.setenv("PUBLIC_BOARD_RATE_WINDOW_S", "3600")
    config.reset_settings()
    try:
        statuses = [_get(f"/admin/leaderboard/{guild}", "198.51.100.83")["statusCode"] for _ in range(3)]
        limited = _get(f"/admin/leaderboard/{guild}", "198.51.100.83")
        other = _get(f"/admin/leaderboard/{guild}", "198.51.100.84")
    finally:
        monkeypatch.undo()
        config.reset_settings()
    assert statuses == [200, 200, 200]
    assert limited["statusCode"] == 429 and 1 <= int(limited["headers"]["Retry-After"]) <= 3600
    assert "Try again in" in limited["body"] and "Public Person" not in limited["body"]
    assert other["statusCode"] == 200  # another client is not held back
    # the address itself is never stored
    stored = site.run(lambda c: c.execute("SELECT client_hash FROM public_board_windows").fetchall())
    assert stored and all(b"198.51.100" not in bytes(h) for (h,) in stored)


def test_admin_leaderboard_page_keeps_the_period_across_paging(site, settings):
    guild = 948_100_000_000_000_001
    for i in range(30):
        award(site, guild, 500 + i, 1 + i % 4, settings)
    admin = Browser("198.51.100.85")
    assert admin.sign_in(ADMIN_NAME, ADMIN_PASSWORD)["statusCode"] == 303
    page = admin.request("GET", f"/admin/g/{guild}/leaderboard?period=month")
    assert page["statusCode"] == 200
    nxt = re.search(r'href="([^"]+)" id="board-next"', page["body"]).group(1).replace("&amp;", "&")
    assert "period=month%3A" in nxt and "after=" in nxt and "page=2" in nxt
    second = admin.request("GET", nxt)
    assert second["statusCode"] == 200 and "Page 2 of 2" in second["body"]
    assert re.search(r'<option value="month:[0-9-]+" selected>', second["body"])
    bad = admin.request("GET", f"/admin/g/{guild}/leaderboard?period=nonsense")
    assert bad["statusCode"] in (400, 404) and "no such board" in bad["body"]


# -- what the loader sends, at a size where the planner chooses by cost ----------------------------------
class _Recording:
    """The connection the loader is given: every statement it sends is kept, to EXPLAIN it."""

    def __init__(self, conn) -> None:
        self.conn, self.sent = conn, []

    def execute(self, query, params=None, **kw):
        self.sent.append((query, params))
        return self.conn.execute(query, params, **kw)


@pytest.fixture(scope="module")
def big_board(make_database):
    """60,000 members with skewed scores and many ties, on the all-time board, this week's and a
    past season's final table; analyzed, in a database of its own."""
    import psycopg

    from pointsbot.community import windows

    dsn = make_database()
    guild, n = 948_200_000_000_000_001, 60_000
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO guilds (guild_id, name) VALUES (%s, 'big')", (guild,))
        conn.execute("INSERT INTO members (guild_id, user_id, display_name) SELECT %s, 9000 + i, 'M' || i "
                     "FROM generate_series(1, %s) i", (guild, n))  # fmt: skip
        conn.execute("INSERT INTO points (guild_id, user_id, balance) SELECT %s, 9000 + i, CASE WHEN i %% 5 < 2 "
                     "THEN 0 ELSE floor(power((i * 7919 %% %s) / %s::numeric, 3) * 100000)::bigint END "
                     "FROM generate_series(1, %s) i", (guild, n, n, n))  # fmt: skip
        week = windows.calendar_window(conn, guild, "week").key
        conn.execute("INSERT INTO window_scores (guild_id, period, user_id, score) SELECT guild_id, %s, user_id, "
                     "balance / 3 FROM points WHERE guild_id = %s AND balance > 0", (week, guild))  # fmt: skip
        conn.execute(
            "INSERT INTO window_counts (guild_id, period, tier, bucket, members) "
            "SELECT guild_id, period, 0, balance_bucket(score), count(*) FROM window_scores "
            "WHERE guild_id = %(g)s AND period = %(w)s GROUP BY 1, 2, 4 "
            "UNION ALL SELECT guild_id, period, 1, balance_class(score), count(*) FROM window_scores "
            "WHERE guild_id = %(g)s AND period = %(w)s GROUP BY 1, 2, 4",
            {"g": guild, "w": week},
        )
        season = conn.execute(
            "INSERT INTO seasons (guild_id, name, starts_at, ends_at, end_step, members_archived) VALUES "
            "(%s, 'Old', now() - interval '90 days', now() - interval '60 days', 4, %s) RETURNING id", (guild, n)
        ).fetchone()[0]  # fmt: skip
        conn.execute(
            "INSERT INTO season_standings (season_id, user_id, score, place, position) "
            "SELECT %s, user_id, balance, rank() OVER (ORDER BY balance DESC), row_number() OVER (ORDER BY balance DESC, "
            "user_id) FROM points WHERE guild_id = %s", (season, guild))  # fmt: skip
        conn.execute(
            "VACUUM ANALYZE members, points, balance_counts, window_scores, window_counts, season_standings"
        )
    return dsn, guild, week, season, n


@pytest.mark.parametrize("period", ["all", "week", "final"])
@pytest.mark.parametrize("where", ["first", "deep", "last"])
def test_no_statement_of_the_loader_scans_the_board(big_board, period, where):
    # The module's claim: a page is found through the counts (or a final table's position index)
    # and listed by keyset, never an OFFSET or a scan over the board, whichever page and period.
    import psycopg

    dsn, guild, week, season, _members = big_board
    value = {"all": "all", "week": week, "final": f"season:{season}"}[period]
    page = {"first": 1, "deep": 1234, "last": 100_000}[where]
    with psycopg.connect(dsn) as conn:
        recording = _Recording(conn)
        board = boards.load_board(recording, guild, value, page=page)
        assert board.rows and (where != "deep" or board.page.page == 1234)
        nxt = _Recording(conn)
        boards.load_board(nxt, guild, value, page=2, after=board.last_key)
        for query, params in recording.sent + nxt.sent:
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + query, params).fetchall())
            for table in ("points", "members", "window_scores", "season_standings", "transactions"):
                assert f"Seq Scan on {table}" not in plan, (query, plan)
            assert not re.search(r"Rows Removed by Filter|OFFSET \d{4,}", plan), plan
