"""The admin member search's pages: by keyset (the Next and Previous links) they are exactly the
pages by position, ties included, for every kind of filter; and the plans are the ones
members.search's docstring claims (the leaderboard index first, members read for the page), as
are the dashboard's failed-DM figure's (stats._FAILED_NOT_RETRIED) and its DM outcomes per day
(stats._DMS_PER_DAY)."""

from __future__ import annotations

import psycopg
import pytest

from pointsbot.community import members
from pointsbot.platform.errors import InvalidInput

GUILD = 941_100_000_000_000_001


@pytest.fixture(scope="module")
def guild_db(make_database):
    """A guild of 50,000 members (large ties, a third with an email, 1% pending review, names
    in ten groups), analyzed so the planner chooses by cost as at a million."""
    dsn = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO guilds (guild_id, name) VALUES (%s, 'search')", (GUILD,))
        conn.execute(
            "INSERT INTO members (guild_id, user_id, username, display_name, email) "
            "SELECT %s, 5000 + i, 'user' || i, 'Member ' || (i %% 10) || ' ' || i, "
            "CASE WHEN i %% 3 = 0 THEN 'person' || i || '@example.org' END FROM generate_series(1, 50000) i",
            (GUILD,),
        )
        conn.execute(
            "INSERT INTO points (guild_id, user_id, balance) SELECT %s, 5000 + i, "
            "CASE WHEN i %% 5 < 2 THEN 0 WHEN i %% 7 = 0 THEN 25 "
            "ELSE floor(power((i * 7919 %% 50000) / 50000.0, 3) * 100000)::bigint END FROM generate_series(1, 50000) i",
            (GUILD,),
        )
        conn.execute(
            "INSERT INTO email_submissions (guild_id, user_id, email) "
            "SELECT %s, 5000 + i, 'x' || i || '@example.org' FROM generate_series(1, 50000, 97) i",
            (GUILD,),
        )
        conn.execute(
            "INSERT INTO direct_messages (guild_id, user_id, content, status) SELECT %s, 5000 + i, 'hi', "
            "CASE WHEN i %% 5 = 0 THEN 'failed' ELSE 'sent' END FROM generate_series(1, 50000) i",
            (GUILD,),
        )
        conn.execute(
            "INSERT INTO direct_messages (guild_id, user_id, content, status, dedupe_key) "
            "SELECT guild_id, user_id, 'hi', 'sent', 'retry:' || id FROM direct_messages "
            "WHERE guild_id = %s AND status = 'failed' AND id %% 100 = 0",
            (GUILD,),
        )
        conn.execute("VACUUM ANALYZE members, points, email_submissions, direct_messages")
    return dsn


QUERIES = {
    "no filter": members.MemberQuery(),
    "balance range": members.MemberQuery(min_balance=0, max_balance=30),
    "name prefix": members.MemberQuery(text="member 3"),
    "email pending": members.MemberQuery(email_status="pending"),
    "email approved, at most 25": members.MemberQuery(email_status="approved", max_balance=25),
}


def _all(conn: psycopg.Connection, query: members.MemberQuery) -> list[tuple[int, int]]:
    """Every match in order, by a plain query written apart from the search's."""
    extra = {
        "no filter": "",
        "balance range": "AND p.balance BETWEEN 0 AND 30",
        "name prefix": "AND (lower(m.display_name) LIKE 'member 3%%' OR lower(m.username) LIKE 'member 3%%')",
        "email pending": "AND p.user_id IN (SELECT user_id FROM email_submissions WHERE status = 'pending')",
        "email approved, at most 25": "AND m.email IS NOT NULL AND p.balance <= 25",
    }[next(k for k, q in QUERIES.items() if q == query)]
    return conn.execute(
        f"SELECT p.user_id, p.balance FROM points p JOIN members m USING (guild_id, user_id) "
        f"WHERE p.guild_id = %s {extra} ORDER BY p.balance DESC, p.user_id",
        (GUILD,),
    ).fetchall()


@pytest.mark.parametrize("name", list(QUERIES))
def test_next_and_previous_by_keyset_are_the_pages_by_position(guild_db, name):
    query = QUERIES[name]
    with psycopg.connect(guild_db) as conn:
        expected = _all(conn, query)
        n = members.SEARCH_PAGE
        pages = []
        result = members.search(conn, GUILD, query, 1)
        while True:
            pages.append(result)
            assert [(r.user_id, r.balance) for r in result.rows] == expected[
                (result.page - 1) * n : result.page * n
            ]
            if not result.has_more or result.page >= 40:
                break
            after = members.parse_after(result.next_after)
            by_offset = members.search(conn, GUILD, query, result.page + 1)
            result = members.search(conn, GUILD, query, result.page + 1, after=after)
            assert result.rows == by_offset.rows
        # Back again with the Previous links, each from the page after it.
        for later, earlier in zip(reversed(pages[1:]), reversed(pages[:-1]), strict=True):
            back = members.search(
                conn, GUILD, query, later.page - 1, before=members.parse_after(later.previous_before)
            )
            assert back.rows == earlier.rows and back.has_more
    assert len(pages) > 1 and len(expected) > n


@pytest.mark.parametrize("text", ["x", "1:", ":5", "1:2:3", "\u0661:5", "99999999999999999999:1", "5:-1"])
def test_a_page_link_the_site_did_not_write_is_a_plain_message(text):
    with pytest.raises(InvalidInput, match="not one the site wrote"):
        members.parse_after(text)


def _plan(conn: psycopg.Connection, query: members.MemberQuery, page: int, after=None) -> str:
    sql, params = members._search_sql(GUILD, query, page, after, None)
    return "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params).fetchall())


@pytest.mark.parametrize("page", [1, 500])
def test_filters_on_points_read_members_for_the_page_only(guild_db, page):
    # search's docstring: when no filter needs a member column, `members` is read only for the
    # page's rows; with no filter or a balance range, the rows come from points_leaderboard_idx.
    with psycopg.connect(guild_db) as conn:
        for name in ("no filter", "balance range", "email pending"):
            plan = _plan(conn, QUERIES[name], page)
            assert plan.count(" on members") == 1 and "members_pkey on members m" in plan, plan
            assert "Seq Scan on members" not in plan, plan
            if name != "email pending":
                assert "points_leaderboard_idx" in plan and "Seq Scan" not in plan, plan
            else:  # the members with a submission waiting, in leaderboard order (sql/044)
                assert "points_email_pending_idx" in plan and "Seq Scan" not in plan, plan
                assert "points_leaderboard_idx" not in plan and "email_submissions" not in plan, plan


@pytest.mark.parametrize("name", ["no filter", "balance range"])
def test_next_by_keyset_reads_two_ranges_of_the_leaderboard_index(guild_db, name):
    # search's docstring: `after` continues by keyset (the rest of the tie, then the balances
    # below), never OFFSET over the rows before.
    with psycopg.connect(guild_db) as conn:
        plan = _plan(conn, QUERIES[name], 300, after=(0, 30_000))
    assert plan.count("points_leaderboard_idx") == 2 and "Seq Scan" not in plan, plan
    assert "balance = '0'" in plan and "balance < '0'" in plan, plan


def test_email_pending_next_reads_two_ranges_of_the_pending_index(guild_db):
    # search's docstring: "email pending" pages are ranges of points_email_pending_idx (only the
    # members with a submission waiting), by keyset the rest of the tie then the balances below;
    # not a walk of the leaderboard probing each member's submissions.
    with psycopg.connect(guild_db) as conn:
        for after in ((0, 30_000), (25, 5_000), (50_000, 40_000)):
            plan = _plan(conn, QUERIES["email pending"], 3, after=after)
            assert plan.count("points_email_pending_idx") == 2 and "Seq Scan" not in plan, plan
            assert "email_submissions" not in plan and "points_leaderboard_idx" not in plan, plan
            assert "Gather" not in plan, plan


def test_the_failed_dm_figure_reads_the_failed_range_and_the_retries_only(guild_db):
    # stats._FAILED_NOT_RETRIED: the failed DMs (direct_messages_guild_idx) less the failed ones
    # a retry names, found from the retries (direct_messages_retries_idx); no pass over the DMs.
    from pointsbot.admin import stats

    with psycopg.connect(guild_db) as conn:
        plan = "\n".join(
            r[0] for r in conn.execute("EXPLAIN SELECT " + stats._FAILED_NOT_RETRIED, {"g": GUILD}).fetchall()
        )
        got = conn.execute("SELECT " + stats._FAILED_NOT_RETRIED, {"g": GUILD}).fetchone()[0]
        naive = conn.execute(
            "SELECT count(*) FROM direct_messages d WHERE d.guild_id = %s AND d.status = 'failed' "
            "AND NOT EXISTS (SELECT 1 FROM direct_messages r WHERE r.guild_id = d.guild_id "
            "AND r.dedupe_key = 'retry:' || d.id)",
            (GUILD,),
        ).fetchone()[0]
    assert "Seq Scan" not in plan, plan
    assert "direct_messages_guild_idx" in plan and "direct_messages_retries_idx" in plan, plan
    assert got == naive and 0 < naive < 10_000


def test_the_pending_flag_follows_the_submissions(make_database, settings):
    # sql/044 keeps points.email_pending (what the "email pending" search reads) equal to "has a
    # submission waiting for review", through submit, approve, reject, a new submission, and a
    # points row made after its member's submission.
    from pointsbot.community import emails
    from pointsbot.platform.db import Database

    guild = 941_100_000_000_000_002
    db = Database(make_database(), pooled=False)

    def flags() -> dict[int, tuple[bool, bool]]:
        rows = db.run(lambda conn: conn.execute(
            "SELECT p.user_id, p.email_pending, EXISTS (SELECT 1 FROM email_submissions e WHERE e.guild_id = "
            "p.guild_id AND e.user_id = p.user_id AND e.status = 'pending') FROM points p WHERE p.guild_id = %s",
            (guild,)).fetchall())  # fmt: skip
        return {u: (flag, truth) for u, flag, truth in rows}

    try:
        from pointsbot.ledger.guilds import ensure_guild

        db.run(ensure_guild, guild)
        first, second, _third = (
            db.run(emails.submit, guild, user, f"m{user}@example.org") for user in (11, 12, 13)
        )
        assert flags() == {11: (True, True), 12: (True, True), 13: (True, True)}
        db.run(emails.approve, guild_id=guild, submission_id=first.id, reviewer_id=1, note="", bonus_points=0,
               idempotency_key="a-1", source="admin_site", settings=settings)  # fmt: skip
        db.run(emails.reject, guild_id=guild, submission_id=second.id, reviewer_id=1)
        assert flags() == {11: (False, False), 12: (False, False), 13: (True, True)}
        db.run(emails.submit, guild, 12, "again@example.org")  # a new submission after a rejection
        assert flags()[12] == (True, True)
        # A member whose points row is made after the submission (first contact later).
        db.run(lambda conn: (
            conn.execute("INSERT INTO members (guild_id, user_id) VALUES (%s, 14)", (guild,)),
            conn.execute("INSERT INTO email_submissions (guild_id, user_id, email) VALUES (%s, 14, 'l@example.org')",
                         (guild,))))  # fmt: skip
        assert 14 not in flags()
        from pointsbot.ledger import ensure_member

        db.run(ensure_member, guild, 14)
        assert flags()[14] == (True, True)
        # Balance changes keep the flag (and the partial index follows the balance).
        from pointsbot import ledger

        db.run(lambda conn: ledger.award(conn, guild_id=guild, user_id=13, amount=5, reason="r", actor_id=1,
                                         source="admin_site", idempotency_key="k-13"))  # fmt: skip
        assert flags()[13] == (True, True)
        assert {r.user_id for r in db.run(members.search, guild, QUERIES["email pending"]).rows} == {
            12,
            13,
            14,
        }
        assert db.run(members.search, guild, QUERIES["email pending"]).rows[0].user_id == 13
    finally:
        db.close()


def test_the_dm_outcomes_per_day_read_one_range_of_the_created_index_only(guild_db):
    # stats._DMS_PER_DAY: the days' DMs are one range of direct_messages_created_idx (sql/045),
    # their status read from the index (INCLUDE), never the guild's DMs one by one
    from datetime import UTC, datetime, timedelta

    from pointsbot.admin import stats

    # (the 50,000 DMs are from now; the days asked for are the 90 before today, as a first
    # dashboard load asks for closed days not kept yet)
    end = datetime.now(UTC) - timedelta(hours=1)
    params = {"g": GUILD, "s": end - timedelta(days=90), "e": end}
    with psycopg.connect(guild_db, autocommit=True) as conn:
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + stats._DMS_PER_DAY, params).fetchall())
        counted = conn.execute(stats._DMS_PER_DAY, params).fetchall()
    assert "Index Only Scan using direct_messages_created_idx" in plan and "Seq Scan" not in plan, plan
    assert counted == []


@pytest.fixture(scope="module")
def ledger_db(make_database):
    """A ledger large enough that the planner chooses by cost: 200,000 entries of 20,000
    members over 40 days, about 5,000 of them today; its own database, analyzed."""
    dsn = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # entries generated consistent
        conn.execute("INSERT INTO guilds (guild_id, name) VALUES (%s, 'ledger')", (GUILD,))
        conn.execute(
            "INSERT INTO members (guild_id, user_id, joined_at) SELECT %s, 5000 + i, now() - make_interval(days => i %% 40) "
            "FROM generate_series(1, 20000) i",
            (GUILD,),
        )
        op = conn.execute(
            "INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) "
            "VALUES (%s, 'daily', 'x', 'award') RETURNING id",
            (GUILD,),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, source, created_at) "
            "SELECT %s, %s, 5001 + (i * 7919) %% 20000, CASE WHEN i %% 4 = 0 THEN -3 ELSE 10 END, 0, 'award', 'system', "
            "now() - make_interval(secs => (200000 - i) * 40 * 86400.0 / 200000) FROM generate_series(1, 200000) i",
            (op, GUILD),
        )
        conn.execute("VACUUM ANALYZE members, transactions")
    return dsn


def test_the_live_day_and_its_active_members_are_read_from_the_daily_index_alone(ledger_db):
    # stats._DAY_TOTALS: today's issued, removed, entries and distinct active members are one
    # range of transactions_daily_idx read from the index (amount and user_id INCLUDEd, sql/060),
    # no entry fetched from the heap, no pass over the guild's ledger.
    from datetime import UTC, datetime, timedelta

    from pointsbot.admin import stats

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    params = {"g": GUILD, "s": today, "e": today + timedelta(days=1)}
    with psycopg.connect(ledger_db) as conn:
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + stats._DAY_TOTALS, params).fetchall())
        totals = stats._sum_days(conn, GUILD, params["s"], params["e"])
        naive = conn.execute(
            "SELECT count(*), count(DISTINCT user_id), sum(amount) FILTER (WHERE amount > 0) FROM transactions "
            "WHERE guild_id = %s AND created_at >= %s",
            (GUILD, today),
        ).fetchone()
    assert "Index Only Scan using transactions_daily_idx on transactions" in plan, plan
    assert "Seq Scan on transactions" not in plan and "Bitmap Heap Scan on transactions" not in plan, plan
    day = totals[today.date()]
    assert naive[0] > 1000 and (day.entries, day.active_members, day.issued) == naive
