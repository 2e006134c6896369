"""The redemptions queue's pages (store.list_redemptions, issue 12): by keyset (the admin site's
Next and Previous links) they are exactly the pages by number, with and without a filter; and a
page by number finds its ids from the index alone, fetching only the page's rows (the plan its
docstring claims), on a guild of 20,000 purchases analyzed so the planner chooses by cost."""

from __future__ import annotations

import psycopg
import pytest

from pointsbot.community import store

GUILD = 941_200_000_000_000_001
BASE = 6000
N = 20_000


@pytest.fixture(scope="module")
def store_db(make_database):
    dsn = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # rows made by construction, no triggers
        conn.execute("INSERT INTO guilds (guild_id, name) VALUES (%s, 'store pages')", (GUILD,))
        conn.execute(
            "INSERT INTO members (guild_id, user_id) SELECT %s, %s + i FROM generate_series(1, 500) i",
            (GUILD, BASE),
        )
        reward = conn.execute(
            "INSERT INTO rewards (guild_id, kind, name, price) VALUES (%s, 'item', 'Mug', 10) RETURNING id",
            (GUILD,),
        ).fetchone()[0]
        op = conn.execute(
            "INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) VALUES (%s, 'load', 'x', 'award') "
            "RETURNING id",
            (GUILD,),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, reason, source, "
            "actor_name) SELECT %s, %s, %s + 1 + i %% 500, -10, 0, 'purchase', 'Mug', 'slash', 'store' "
            "FROM generate_series(1, %s) i",
            (op, GUILD, BASE, N),
        )
        conn.execute(
            "INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) "
            "SELECT %s, 'p' || i, 'x', 'purchase' FROM generate_series(1, %s) i",
            (GUILD, N),
        )
        conn.execute(
            "INSERT INTO purchases (guild_id, user_id, reward_id, kind, reward_name, price, state, interaction_id, "
            "operation_id, entry_id) "
            "SELECT %(g)s, %(b)s + 1 + i %% 500, %(r)s, 'item', 'Mug', 10, "
            "CASE WHEN i %% 10 = 0 THEN 'pending' ELSE 'fulfilled' END, 990000 + i, o.id, t.id "
            "FROM generate_series(1, %(n)s) i JOIN operations o ON o.guild_id = %(g)s AND o.idempotency_key = 'p' || i "
            "JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM transactions WHERE guild_id = %(g)s) t ON t.n = i",
            {"g": GUILD, "b": BASE, "r": reward, "n": N},
        )
        conn.execute("VACUUM (ANALYZE) purchases")
    return dsn


@pytest.mark.parametrize("state", [None, "pending"])
def test_keyset_pages_are_the_pages_by_number(store_db, state):
    with psycopg.connect(store_db, autocommit=True) as conn:
        page_size = 25
        by_number = [
            [p.id for p in store.list_redemptions(conn, GUILD, state=state, page=n, page_size=page_size).rows]
            for n in range(1, 6)
        ]
        # Next from page 1 to 5, carrying the last id shown; then Previous back, the first id shown.
        walked, shown = [by_number[0]], by_number[0]
        for n in range(2, 6):
            shown = [p.id for p in store.list_redemptions(conn, GUILD, state=state, page=n, page_size=page_size,
                                                          after=shown[-1]).rows]  # fmt: skip
            walked.append(shown)
        assert walked == by_number
        back = [walked[-1]]
        for n in range(4, 0, -1):
            shown = [p.id for p in store.list_redemptions(conn, GUILD, state=state, page=n, page_size=page_size,
                                                          before=back[-1][0]).rows]  # fmt: skip
            back.append(shown)
        assert back[::-1] == by_number
        deep = store.list_redemptions(conn, GUILD, state=state, page=300, page_size=page_size)
        assert [p.id for p in deep.rows] == sorted((p.id for p in deep.rows), reverse=True)
        assert len(deep.rows) == page_size if deep.total >= 300 * page_size else deep.page == deep.pages


@pytest.mark.parametrize("state", [None, "pending"])
def test_a_page_by_number_reads_the_skipped_rows_from_the_index_alone(store_db, state):
    """The OFFSET is taken over an index-only scan of the queue's index; the table is read for the
    page's rows only (its primary key, once per row shown)."""
    where = "p.guild_id = %(g)s" + (" AND p.state = %(state)s" if state else "")
    sql = store._PAGE_BY_NUMBER.format(columns="p.id, p.note", clause=where)
    with psycopg.connect(store_db, autocommit=True) as conn:
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + sql,
                {"g": GUILD, "state": state, "n": 25, "o": 15_000 if state is None else 1_500},
            ).fetchall()
        )
    index = "purchases_guild_state_idx" if state else "purchases_guild_idx"
    assert f"Index Only Scan using {index}" in plan, plan
    assert "Seq Scan" not in plan, plan
    # The rows themselves: 25 probes of the primary key, not one per row skipped.
    assert "Index Scan using purchases_pkey on purchases p (actual rows=1 loops=25)" in plan, plan


def test_the_count_of_purchases_to_hand_over_is_the_queues_total(store_db):
    """The menu's and the dashboard's count (store.count_redemptions) is list_redemptions' total
    for that state, and a state the store does not know is refused, not counted."""
    from pointsbot.platform.errors import InvalidInput

    with psycopg.connect(store_db, autocommit=True) as conn:
        for state in ("pending", "fulfilled", "refunded"):
            total = store.list_redemptions(conn, GUILD, state=state, page_size=1).total
            assert store.count_redemptions(conn, GUILD, state=state) == total
        assert store.count_redemptions(conn, GUILD, state="pending") == N // 10
        with pytest.raises(InvalidInput):
            store.count_redemptions(conn, GUILD, state="lost")
