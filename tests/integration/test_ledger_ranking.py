"""Leaderboard pages and ranks against a model: competition ranks, ties by user id."""

from __future__ import annotations

import dataclasses
import itertools

import psycopg
import pytest
from _ledger_checks import bucket_count_errors, set_balance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pointsbot import ledger
from pointsbot.ledger import guilds, queries, ties

pytestmark = pytest.mark.integration

_guilds = itertools.count(940_000_000_000_000_001)


def _expected_ranks(balances: dict[int, int]) -> list[tuple[int, int, int]]:
    ordered = sorted(balances.items(), key=lambda item: (-item[1], item[0]))
    return [(1 + sum(1 for b in balances.values() if b > bal), user, bal) for user, bal in ordered]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    balances=st.lists(st.sampled_from([0, 5, 5, 10, 40, 1000]), min_size=0, max_size=12),
    page_size=st.integers(min_value=1, max_value=5),
)
def test_pages_and_ranks_match_the_model(db, settings, balances, page_size):
    guild = next(_guilds)
    members = {guild + 10 * (i + 1): bal for i, bal in enumerate(balances)}
    db.run(guilds.ensure_guild, guild)
    for user, bal in members.items():
        db.run(ledger.ensure_member, guild, user)  # a set to 0 alone changes nothing, so makes no member
        set_balance(db, guild, user, bal, settings)
    expected = _expected_ranks(members)

    pages = -(-len(expected) // page_size) or 1
    listed = []
    for page in range(1, pages + 2):  # one past the end is an empty page
        board = db.run(ledger.leaderboard_page, guild, page, page_size)
        assert board.total_members == len(members) and board.pages == pages
        listed.extend((row.rank, row.user_id, row.balance) for row in board.rows)
    assert listed == expected
    # the dashboard's top: page one read from the top of the index, ties ranked the same
    top = db.run(ledger.leaderboard_top, guild, page_size)
    assert [(r.rank, r.user_id, r.balance) for r in top.rows] == expected[:page_size]
    assert top.total_members == len(members)

    for rank, user, bal in expected:
        info = db.run(ledger.rank_of, guild, user)
        assert (info.rank, info.balance, info.total_members) == (rank, bal, len(members))
    # someone never seen ranks as a zero balance
    stranger = db.run(ledger.rank_of, guild, guild + 999_999)
    assert stranger.balance == 0 and stranger.total_members == len(members)
    assert stranger.rank == 1 + sum(1 for b in members.values() if b > 0)


# -- the bucket counts (sql/036) that ranks and pages are found through -------------------------
# Balances on both sides of the bucket boundaries: exact below 128, then 64 buckets per power
# of two, mirrored below zero, up to the balance range's ends.
_EDGES = [0, 1, 5, 127, 128, 129, 130, 255, 256, 257, 1000, 4095, 4096, 10**6, 10**12]
_BALANCES = st.one_of(
    st.sampled_from(_EDGES + [-v for v in _EDGES]), st.integers(min_value=-(10**12), max_value=10**12)
)


def _naive_ranks(conn, guild: int) -> dict[int, tuple[int, int]]:
    """user -> (1 + count(*) of members with strictly more, balance): the reference."""
    rows = conn.execute(
        "SELECT user_id, balance, (SELECT count(*) FROM points o WHERE o.guild_id = p.guild_id "
        "AND o.balance > p.balance) FROM points p WHERE guild_id = %s",
        (guild,),
    ).fetchall()
    return {user: (1 + above, bal) for user, bal, above in rows}


def _walk_every_way(db, guild: int, page_size: int) -> None:
    """Every member's rank, every page by number, and the keyset chains both ways agree with
    the naive count and the model order."""
    with db.connection() as conn:
        assert bucket_count_errors(conn, guild) == []
        naive = _naive_ranks(conn, guild)
    expected = [
        (naive[user][0], user, bal)
        for user, (_, bal) in sorted(naive.items(), key=lambda i: (-i[1][1], i[0]))
    ]
    for user, (rank, bal) in naive.items():
        info = db.run(ledger.rank_of, guild, user)
        assert (info.rank, info.balance, info.total_members) == (rank, bal, len(naive))
    pages = [
        [(r.rank, r.user_id, r.balance) for r in db.run(ledger.leaderboard_page, guild, n, page_size).rows]
        for n in range(1, -(-len(expected) // page_size) + 2)
    ]
    assert [row for page in pages for row in page] == expected and pages[-1] == []
    top = db.run(ledger.leaderboard_top, guild, page_size)
    assert [(r.rank, r.user_id, r.balance) for r in top.rows] == pages[0]
    # Next from each page's last row, Previous from each page's first row
    for n, page in enumerate(pages[:-1], start=1):
        if n < len(pages) - 1:
            after = db.run(ledger.leaderboard_page, guild, n + 1, page_size, after=(page[-1][2], page[-1][1]))
            assert [(r.rank, r.user_id, r.balance) for r in after.rows] == pages[n]
        if n > 1:
            before = db.run(ledger.leaderboard_page, guild, n - 1, page_size, before=(page[0][2], page[0][1]))
            assert [(r.rank, r.user_id, r.balance) for r in before.rows] == pages[n - 2]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    # within half the range, so any move between two of them is a change the ledger allows
    writes=st.lists(
        st.tuples(st.integers(0, 9), _BALANCES.filter(lambda b: abs(b) <= 5 * 10**11)), max_size=25
    ),
    page_size=st.integers(min_value=1, max_value=4),
)
def test_ranks_and_pages_stay_exact_through_ledger_writes(db, settings, writes, page_size):
    # Given members whose balances the ledger moves across bucket boundaries, ties included
    guild = next(_guilds)
    signed = dataclasses.replace(settings, allow_negative=True, max_change=10**12)
    for slot, target in writes:
        set_balance(db, guild, guild + 10 * (slot + 1), target, signed)
    # Then every rank equals the naive count and every page, by number or keyset, the model
    _walk_every_way(db, guild, page_size)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=st.lists(_BALANCES, min_size=1, max_size=30),
    shift=st.integers(min_value=-300, max_value=300),
    drop_every=st.integers(min_value=2, max_value=7),
)
def test_bucket_counts_follow_multi_row_statements(db, start, shift, drop_every):
    # Statements the ledger never runs (bulk loads, hand-written fixes) move many rows at once:
    # the statement-level triggers still keep every bucket's count.
    guild = next(_guilds)
    with db.connection() as conn:
        conn.execute("INSERT INTO guilds (guild_id, name) VALUES (%s, 'bulk')", (guild,))
        conn.execute(
            "INSERT INTO members (guild_id, user_id) SELECT %s, %s + i FROM generate_series(1, %s) i",
            (guild, guild, len(start)),
        )
        conn.execute(
            "INSERT INTO points (guild_id, user_id, balance) SELECT %s, %s + i, b "
            "FROM unnest(%s::bigint[]) WITH ORDINALITY AS s(b, i)",
            (guild, guild, start),
        )
        conn.execute(
            "UPDATE points SET balance = greatest(-1000000000000, least(1000000000000, balance + %s)) "
            "WHERE guild_id = %s",
            (shift, guild),
        )
        conn.execute(
            "DELETE FROM points WHERE guild_id = %s AND (user_id - %s) %% %s = 0", (guild, guild, drop_every)
        )
        conn.commit()
    _walk_every_way(db, guild, 3)


def test_bucket_writers_never_wait_on_each_other(make_database):
    # Two open transactions moving members across the same two buckets in opposite orders,
    # twice over: with counters updated in place the second would wait on the first (and the
    # next pair deadlock). Here each adds its own rows and folds only rows nobody holds.
    dsn = make_database()
    guild = 940_900_000_000_000_001
    with psycopg.connect(dsn, autocommit=True) as setup:
        setup.execute("INSERT INTO guilds (guild_id, name) VALUES (%s, 'g')", (guild,))
        setup.execute(
            "INSERT INTO members (guild_id, user_id) SELECT %s, i FROM generate_series(1, 4) i", (guild,)
        )
        setup.execute(
            "INSERT INTO points (guild_id, user_id, balance) VALUES (%s, 1, 5), (%s, 2, 500), (%s, 3, 5), (%s, 4, 500)",
            (guild, guild, guild, guild),
        )
    move = "UPDATE points SET balance = %s WHERE guild_id = %s AND user_id = %s"
    with psycopg.connect(dsn) as one, psycopg.connect(dsn) as two:
        for conn in (one, two):
            conn.execute("SET lock_timeout = '2s'")  # waiting at all fails the test
        one.execute(move, (500, guild, 1))  # 5 -> 500
        two.execute(move, (5, guild, 2))  # 500 -> 5: the same buckets, the other way
        two.execute(move, (500, guild, 3))
        one.execute(move, (5, guild, 4))
        one.commit()
        two.commit()
    with psycopg.connect(dsn) as conn:
        assert bucket_count_errors(conn, guild) == []
        assert [ledger.rank_of(conn, guild, u).rank for u in (1, 2, 3, 4)] == [1, 3, 1, 3]


@pytest.fixture(scope="module")
def big_guild(make_database):
    """A guild large enough (50,000 members, skewed balances, many ties) that the planner
    chooses by cost, as at a million: its own database, analyzed."""
    dsn = make_database()
    guild = 940_800_000_000_000_001
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO guilds (guild_id, name) VALUES (%s, 'big')", (guild,))
        conn.execute(
            "INSERT INTO members (guild_id, user_id) SELECT %s, 7000 + i FROM generate_series(1, 50000) i",
            (guild,),
        )
        conn.execute(
            "INSERT INTO points (guild_id, user_id, balance) SELECT %s, 7000 + i, "
            "CASE WHEN i %% 5 < 2 THEN 0 ELSE floor(power((i * 7919 %% 50000) / 50000.0, 3) * 1000000)::bigint END "
            "FROM generate_series(1, 50000) i",
            (guild,),
        )
        conn.execute("VACUUM ANALYZE members, points, balance_counts")
    return dsn, guild


def _plan(conn, sql: str, params: dict) -> str:
    return "\n".join(row[0] for row in conn.execute("EXPLAIN " + sql, params).fetchall())


@pytest.mark.parametrize("balance", [0, 1, 200, 5000, 999_000])
def test_rank_reads_the_bucket_counts_and_one_bucket_of_the_index(big_guild, balance):
    # rank_of's docstring: the members above are summed from balance_counts plus a range of
    # the leaderboard index inside the balance's own bucket; nothing scans the guild.
    dsn, guild = big_guild
    with psycopg.connect(dsn) as conn:
        user = conn.execute(
            "SELECT user_id FROM points WHERE guild_id = %s AND balance >= %s ORDER BY balance LIMIT 1",
            (guild, balance),
        ).fetchone()[0]
        plans = [
            _plan(conn, queries._RANK, {"g": guild, "u": user}),  # rank_of
            _plan(conn, queries._ABOVE, {"g": guild, "balances": [balance, balance + 1]}),  # a page's ranks
        ]
    for plan in plans:
        assert "Seq Scan" not in plan, plan
        assert plan.count("balance_counts_bucket_idx") == 2, plan
        assert "points_leaderboard_idx" in plan and "balance < balance_bucket_end" in plan, plan
    # rank_of reads the member's balance once (before: once per use of it, six index scans).
    assert plans[0].count("points_pkey") == 1, plans[0]


@pytest.mark.parametrize("position", [1, 10_001, 25_000, 49_991])
def test_a_page_is_found_through_the_bucket_counts_and_listed_by_keyset(big_guild, position):
    # leaderboard_page's docstring: page N's first member by position through the bucket
    # counts (no OFFSET over the board), then the page by keyset on the leaderboard index.
    dsn, guild = big_guild
    with psycopg.connect(dsn) as conn:
        start = _plan(conn, queries._AT_POSITION, {"g": guild, "p": position})
        key = conn.execute(queries._AT_POSITION, {"g": guild, "p": position}).fetchone()
        listed = [
            _plan(conn, sql, {"g": guild, "b": key[0], "u": key[1], "n": 10})
            for sql in (queries._FROM_KEY, queries._BEFORE_KEY)
        ]
    assert "Seq Scan" not in start and "balance_counts_bucket_idx" in start, start
    assert "points_leaderboard_idx" in start and "balance < balance_bucket_end" in start, start
    for plan in listed:
        assert "Seq Scan on points" not in plan and plan.count("points_leaderboard_idx") == 2, plan


def test_the_top_is_one_range_from_the_top_of_the_index(big_guild):
    # leaderboard_top's docstring: the first rows of points_leaderboard_idx, stopped by the
    # LIMIT; no bucket counts, no pass over the board; the same rows and ranks as page one.
    dsn, guild = big_guild
    with psycopg.connect(dsn) as conn:
        plan = _plan(conn, queries._TOP.format(member_count=queries._MEMBER_COUNT), {"g": guild, "n": 10})
        conn.execute(
            "UPDATE points SET balance = 999999 WHERE guild_id = %s AND user_id IN (7003, 7004, 7999)",
            (guild,),
        )
        page = queries.leaderboard_page(conn, guild, 1, 10)
        top = queries.leaderboard_top(conn, guild, 10)
        conn.rollback()
    assert "Seq Scan" not in plan and "Sort" not in plan and "balance_counts" not in plan, plan
    assert "Scan using points_leaderboard_idx on points" in plan and "Limit" in plan, plan
    assert plan.index("Limit") < plan.index("points_leaderboard_idx"), plan  # the range stops at n
    assert top.rows == page.rows and top.total_members == page.total_members == 50_000
    assert [r.rank for r in top.rows[:4]] == [1, 1, 1, 4]  # a three-way tie at the top


# -- blocks for large ties (sql/039) ------------------------------------------------------------
def _tie_block_errors(conn, guild: int) -> list[tuple]:
    """Blocks whose count is not the members of their tie inside their user id range."""
    return conn.execute(
        "SELECT b.balance, b.lo, b.members, (SELECT count(*) FROM points p WHERE p.guild_id = b.guild_id "
        "AND p.balance = b.balance AND p.user_id >= b.lo AND (b.hi IS NULL OR p.user_id < b.hi)) AS actual "
        "FROM balance_tie_blocks b WHERE b.guild_id = %s",
        (guild,),
    ).fetchall()


def _block_errors(conn, guild: int) -> list[tuple]:
    return [row for row in _tie_block_errors(conn, guild) if row[2] != row[3]]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    before=st.lists(st.tuples(st.integers(0, 14), st.sampled_from([0, 0, 0, 1, 5, -3, 200])), max_size=20),
    after=st.lists(st.tuples(st.integers(0, 14), st.sampled_from([0, 0, 1, 5, -3, 200])), max_size=20),
    shift=st.integers(min_value=-2, max_value=2),
    page_size=st.integers(min_value=1, max_value=4),
)
def test_ties_with_blocks_keep_exact_pages_through_writes(db, settings, before, after, shift, page_size):
    # Given ties cut into blocks of two members (the keep-alive's refresh with a tiny size)
    guild = next(_guilds)
    signed = dataclasses.replace(settings, allow_negative=True, max_change=10**12)
    for slot, target in before:
        set_balance(db, guild, guild + 10 * (slot + 1), target, signed)
    db.run(lambda conn: ties.refresh_tie_blocks(conn, guild, threshold=2, size=2))
    # When the ledger moves members into, out of and between the ties, and a statement the
    # ledger never runs moves many rows at once
    for slot, target in after:
        set_balance(db, guild, guild + 10 * (slot + 1), target, signed)
    with db.connection() as conn:
        conn.execute(
            "UPDATE points SET balance = balance + %s WHERE guild_id = %s AND user_id %% 20 = 0",
            (shift, guild),
        )
        conn.commit()
        # Then every block counts exactly its members, and pages by number (found through the
        # blocks), keyset chains and ranks are the model's
        assert _block_errors(conn, guild) == []
    _walk_every_way(db, guild, page_size)
    # And a refresh re-cuts or drops blocks without changing any answer
    db.run(lambda conn: ties.refresh_tie_blocks(conn, guild, threshold=3, size=1))
    with db.connection() as conn:
        assert _block_errors(conn, guild) == []
    _walk_every_way(db, guild, page_size)


@pytest.mark.parametrize("offset", [0, 1, 4_095, 12_345, 19_999])
def test_a_page_deep_inside_a_large_tie_is_found_through_its_blocks(big_guild, offset):
    # queries._AT_POSITION (and ledger.ties): inside a tie with blocks, the block where the
    # tie's running count reaches the position, then an offset inside that block only.
    dsn, guild = big_guild
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT balance_tie_blocks_build(%s, 0, 1000)", (guild,))
        above_zero = conn.execute(
            "SELECT count(*) FROM points WHERE guild_id = %s AND balance > 0", (guild,)
        ).fetchone()[0]
        position = above_zero + offset + 1
        plan = _plan(conn, queries._AT_POSITION, {"g": guild, "p": position})
        found = conn.execute(queries._AT_POSITION, {"g": guild, "p": position}).fetchone()
        naive = conn.execute(
            "SELECT balance, user_id FROM points WHERE guild_id = %s ORDER BY balance DESC, user_id OFFSET %s LIMIT 1",
            (guild, position - 1),
        ).fetchone()
        assert _block_errors(conn, guild) == []
        conn.rollback()  # the blocks were this test's only
    assert found == naive and found[0] == 0
    assert "balance_tie_blocks_pkey" in plan and "Seq Scan on points" not in plan, plan
    assert "user_id >= block.lo" in plan or "(user_id >= " in plan, plan
