"""Admin-site queries at size: the dashboard, member search and the transactions monitor with
one guild of 1,000,000 members and 10,000,000 ledger entries (defaults).

Bulk-loaded with generate_series into a dedicated database: the transactions table's indexes
(exactly those the migrations made) are dropped for the load and rebuilt after, which is much
faster than maintaining ten indexes row by row. Balances are then set to the sum of each
member's entries, so the data keeps the ledger's invariant.

    python -m bench.bench_admin [--members N] [--entries N] [--reps N] [--keep-db]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from pointsbot import ledger
from pointsbot.admin import member_view, monitor, stats
from pointsbot.community import members, windows
from pointsbot.platform.db import Database

from .ledger_ops import percentile
from .target import bench_database, server

GUILD = 740_000_000_000_000_001
BASE_USER = 750_000_000_000_000_000
RESULTS = Path(__file__).resolve().parent / "results"
GOAL_MS = 50.0  # issue 14, goal 6: dashboard and member search p99


def load(dsn: str, n_members: int, n_entries: int, log: Callable[[str], None] = print) -> dict[str, float]:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET statement_timeout = 0")
        # Generated rows satisfy the foreign keys by construction; skip checking 10M of them.
        conn.execute("SET session_replication_role = replica")
        conn.execute("INSERT INTO guilds (guild_id, name) VALUES (%s, 'bench guild')", (GUILD,))
        conn.execute(
            "INSERT INTO members (guild_id, user_id, username, display_name, email, joined_at) "
            "SELECT %s, %s + i, 'user' || i, 'Member ' || i, "
            "CASE WHEN i %% 3 = 0 THEN 'person' || i || '@example.org' END, "
            "now() - make_interval(secs => (%s - i)::float8 * 31536000 / %s) FROM generate_series(1, %s) i",
            (GUILD, BASE_USER, n_members, n_members, n_members),
        )
        conn.execute(
            "INSERT INTO points (guild_id, user_id) SELECT %s, %s + i FROM generate_series(1, %s) i",
            (GUILD, BASE_USER, n_members),
        )
        conn.execute(
            "INSERT INTO user_stats (guild_id, user_id) SELECT %s, %s + i FROM generate_series(1, %s) i",
            (GUILD, BASE_USER, n_members),
        )
        timings["members_s"] = time.perf_counter() - started
        log(f"  {n_members:,} members in {timings['members_s']:.0f} s")
        op_id = conn.execute(
            "INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) "
            "VALUES (%s, 'bench-load', 'bench', 'award') RETURNING id",
            (GUILD,),
        ).fetchone()[0]
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'transactions' "
            "AND indexname NOT IN ('transactions_pkey')"
        ).fetchall()
        constraints = [n for n, d in indexes if "UNIQUE" in d]
        for name, _ in indexes:
            if name in constraints:
                conn.execute(f'ALTER TABLE transactions DROP CONSTRAINT "{name}"')
            else:
                conn.execute(f'DROP INDEX "{name}"')
        step = time.perf_counter()
        # A year of activity, evenly spread; members picked at random; mostly small credits.
        chunk = 1_000_000
        for offset in range(0, n_entries, chunk):
            size = min(chunk, n_entries - offset)
            conn.execute(
                """
                INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, reason,
                                          actor_id, source, silent, created_at)
                SELECT %(op)s, %(g)s, %(base)s + 1 + floor(random() * %(members)s)::bigint,
                       a.amount, 0, a.kind, 'bench entry ' || i,
                       CASE WHEN a.kind IN ('award', 'deduct', 'set') THEN 700000000000000000 + (i %% 5)
                            ELSE 710000000000000000 + (i %% 1000) END,  -- a transfer's actor: the giver
                       CASE WHEN a.kind IN ('award', 'deduct', 'set') THEN 'admin_site' ELSE 'slash' END,
                       false,
                       now() - make_interval(secs => (%(n)s - i)::float8 * 31536000 / %(n)s)
                FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) i,
                LATERAL (SELECT CASE WHEN r < 0.55 THEN 'award' WHEN r < 0.65 THEN 'deduct'
                                     WHEN r < 0.80 THEN 'transfer_in' WHEN r < 0.95 THEN 'transfer_out'
                                     WHEN r < 0.99 THEN 'achievement' ELSE 'set' END AS kind,
                                CASE WHEN r < 0.55 THEN 1 + floor(random() * 100)::bigint
                                     WHEN r < 0.65 THEN -1 - floor(random() * 20)::bigint
                                     WHEN r < 0.80 THEN 1 + floor(random() * 50)::bigint
                                     WHEN r < 0.95 THEN -1 - floor(random() * 10)::bigint
                                     WHEN r < 0.99 THEN 100 ELSE 5 END AS amount
                         FROM (SELECT random() + i * 0 AS r) x) a
                """,
                {"op": op_id, "g": GUILD, "base": BASE_USER, "members": n_members, "n": n_entries,
                 "lo": offset + 1, "hi": offset + size},
            )  # fmt: skip
            log(f"  {offset + size:,} entries ({time.perf_counter() - step:.0f} s)")
        timings["entries_s"] = time.perf_counter() - step
        step = time.perf_counter()
        for name, definition in indexes:
            if name in constraints:
                conn.execute(f'ALTER TABLE transactions ADD CONSTRAINT "{name}" UNIQUE (reverts_id)')
            else:
                conn.execute(definition)
        timings["indexes_s"] = time.perf_counter() - step
        log(f"  {len(indexes)} indexes rebuilt in {timings['indexes_s']:.0f} s")
        step = time.perf_counter()
        conn.execute(
            "UPDATE points p SET balance = s.total FROM (SELECT user_id, sum(amount) AS total FROM transactions "
            "WHERE guild_id = %s GROUP BY user_id) s WHERE p.guild_id = %s AND p.user_id = s.user_id",
            (GUILD, GUILD),
        )
        conn.execute(
            "UPDATE user_stats u SET transaction_count = s.n FROM (SELECT user_id, count(*) AS n FROM transactions "
            "WHERE guild_id = %s GROUP BY user_id) s WHERE u.guild_id = %s AND u.user_id = s.user_id",
            (GUILD, GUILD),
        )
        # Some pending email submissions and failed DMs, so those figures count something.
        conn.execute(
            "INSERT INTO email_submissions (guild_id, user_id, email) SELECT %s, %s + i, 'x' || i || '@example.org' "
            "FROM generate_series(1, %s, 97) i",
            (GUILD, BASE_USER, n_members),
        )
        # The load runs with triggers off (session_replication_role), so what the triggers keep is
        # built here as they would have: the all-time board's bucket counts (sql/036, as its own
        # first fill), this week's and this month's window scores and counts (sql/046, as
        # bench_seasons builds them), and sql/044's flag below.
        conn.execute("DELETE FROM balance_counts WHERE guild_id = %s", (GUILD,))
        conn.execute(
            "INSERT INTO balance_counts (guild_id, tier, bucket, members) "
            "SELECT guild_id, 0, balance_bucket(balance), count(*) FROM points WHERE guild_id = %(g)s GROUP BY 1, 3 "
            "UNION ALL SELECT guild_id, 1, balance_class(balance), count(*) FROM points WHERE guild_id = %(g)s GROUP BY 1, 3",
            {"g": GUILD},
        )
        for period in ("week", "month"):
            window = windows.calendar_window(conn, GUILD, period)
            conn.execute(
                "INSERT INTO window_scores (guild_id, period, user_id, score) SELECT %s, %s, user_id, sum(amount) "
                "FROM transactions WHERE guild_id = %s AND created_at >= %s AND created_at < %s GROUP BY user_id",
                (GUILD, window.key, GUILD, window.starts_at, window.ends_at),
            )
            conn.execute(
                "INSERT INTO window_counts (guild_id, period, tier, bucket, members) "
                "SELECT guild_id, period, 0, balance_bucket(score), count(*) FROM window_scores "
                "WHERE guild_id = %(g)s AND period = %(w)s GROUP BY 1, 2, 4 "
                "UNION ALL SELECT guild_id, period, 1, balance_class(score), count(*) FROM window_scores "
                "WHERE guild_id = %(g)s AND period = %(w)s GROUP BY 1, 2, 4",
                {"g": GUILD, "w": window.key},
            )
        # sql/044's flag is set here
        # as its trigger would have (without it the "email pending" search finds no page at all).
        conn.execute(
            "UPDATE points p SET email_pending = TRUE FROM email_submissions e WHERE p.guild_id = %s "
            "AND e.guild_id = p.guild_id AND e.user_id = p.user_id AND e.status = 'pending'",
            (GUILD,),
        )
        timings["other_tables"] = seed_other_tables(conn, n_members, n_entries)
        log("  other tables: " + ", ".join(f"{k} {v:,}" for k, v in timings["other_tables"].items()))
        conn.execute("VACUUM (ANALYZE)")
        timings["balances_s"] = time.perf_counter() - step
    timings["total_s"] = time.perf_counter() - started
    return timings


# The admin actions the audit log holds, with how many rows in 1,000 each gets (a busy guild:
# points changes mostly, a rare action or two for the filter's worst case).
AUDIT_ACTIONS = (("points.award", 400), ("points.deduct", 150), ("member.edit", 120), ("email.approve", 90),
                 ("email.reject", 30), ("dm.send", 60), ("bulk.award", 40), ("redemption.fulfil", 50),
                 ("points.set", 30), ("reward.edit", 15), ("settings.update", 10), ("season.rename", 5))  # fmt: skip
SEASONS = 12  # ended, one a month over the last year, each with an archived table
WEBHOOKS = 3


def seed_other_tables(conn: psycopg.Connection, n_members: int, n_entries: int) -> dict[str, int]:
    """What a busy guild's other admin pages read, bulk-loaded (triggers off, as the entries):
    audit rows (n/5), DMs (n/2), email submissions (every 7th member reviewed, every 97th
    pending), rewards and purchases (n/10), ended seasons with their tables, webhooks and their
    deliveries (n/4). All spread over the year, as the entries are."""
    g, base, n = GUILD, BASE_USER, n_members
    year = "now() - make_interval(secs => (%(total)s - i)::float8 * 31536000 / %(total)s)"
    sizes: dict[str, int] = {}
    cases = " ".join(
        f"WHEN i %% 1000 < {sum(w for _, w in AUDIT_ACTIONS[: k + 1])} THEN '{a}'"
        for k, (a, _) in enumerate(AUDIT_ACTIONS)
    )
    total = max(1, n // 5)
    conn.execute(
        f"INSERT INTO admin_audit (guild_id, actor_id, actor_name, action, target, before, after, created_at) "
        f"SELECT %(g)s, 700000000000000000 + i %% 5, '', CASE {cases} END, 'member:' || (%(base)s + 1 + i %% %(n)s), "
        f"jsonb_build_object('balance', i %% 977), jsonb_build_object('balance', i %% 977 + 10), {year} "
        f"FROM generate_series(1::bigint, %(total)s::bigint) i",
        {"g": g, "base": base, "n": n, "total": total},
    )  # fmt: skip
    sizes["audit rows"] = total
    total = max(1, n // 2)
    conn.execute(
        f"INSERT INTO direct_messages (guild_id, user_id, content, reason, status, attempts, last_error, "
        f"created_at, sent_at) "
        f"SELECT %(g)s, %(base)s + 1 + (i * 7919) %% %(n)s, 'hello, this is message ' || i, "
        f"(ARRAY['admin', 'points', 'email', 'achievement', 'store', 'season'])[1 + i %% 6], "
        f"CASE WHEN i %% 20 = 0 THEN 'failed' ELSE 'sent' END, 1, "
        f"CASE WHEN i %% 20 = 0 THEN 'Discord: Cannot send messages to this user' END, {year}, "
        f"CASE WHEN i %% 20 <> 0 THEN {year} END "
        f"FROM generate_series(1::bigint, %(total)s::bigint) i",
        {"g": g, "base": base, "n": n, "total": total},
    )  # fmt: skip
    sizes["DMs"] = total
    conn.execute(
        "INSERT INTO email_submissions (guild_id, user_id, email, status, submitted_at, reviewed_at, reviewed_by) "
        "SELECT %(g)s, %(base)s + i, 'y' || i || '@example.org', CASE WHEN i %% 3 = 0 THEN 'rejected' ELSE 'approved' END, "
        "now() - interval '400 days' + make_interval(secs => i::float8 * 31536000 / %(n)s), "
        "now() - interval '399 days' + make_interval(secs => i::float8 * 31536000 / %(n)s), 700000000000000001 "
        "FROM generate_series(1::bigint, %(n)s::bigint, 7) i",
        {"g": g, "base": base, "n": n},
    )
    sizes["email submissions reviewed"] = (n + 6) // 7
    sizes["email submissions pending"] = (n + 96) // 97
    conn.execute(
        "INSERT INTO rewards (guild_id, kind, name, description, price, stock, role_id) "
        "SELECT %(g)s, k, 'Reward ' || r, 'What reward ' || r || ' is', 100 * r, CASE WHEN k = 'code' THEN 1000 END, "
        "CASE WHEN k = 'role' THEN 790000000000000000 + r END "
        "FROM generate_series(1, 20) r, LATERAL (SELECT (ARRAY['item', 'role', 'code'])[1 + r %% 3] AS k) x",
        {"g": g},
    )
    total = max(1, min(n // 10, n_entries))
    rewards = conn.execute(
        "SELECT array_agg(id ORDER BY id) FROM rewards WHERE guild_id = %s", (g,)
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) "
        "SELECT %(g)s, 'bench-purchase-' || i, 'bench', 'purchase' FROM generate_series(1::bigint, %(total)s::bigint) i",
        {"g": g, "total": total},
    )
    # Each purchase names an entry of the loaded ledger as its own (the read side never checks
    # that the entry is a purchase's).
    conn.execute(
        f"INSERT INTO purchases (guild_id, user_id, reward_id, kind, reward_name, price, state, interaction_id, "
        f"operation_id, entry_id, role_id, created_at) "
        f"SELECT %(g)s, %(base)s + 1 + (i * 104729) %% %(n)s, r.id, r.kind, r.name, r.price, "
        f"CASE WHEN r.kind = 'role' THEN 'granted' WHEN i %% 10 = 0 THEN 'pending' "
        f"WHEN r.kind = 'item' THEN 'fulfilled' ELSE 'granted' END, 880000000000000000 + i, o.id, "
        f"(SELECT min(id) FROM transactions) + (i - 1) * (%(entries)s / %(total)s), r.role_id, {year} "
        f"FROM generate_series(1::bigint, %(total)s::bigint) i "
        f"JOIN rewards r ON r.id = (%(rewards)s::bigint[])[1 + i %% 20] "
        f"JOIN operations o ON o.guild_id = %(g)s AND o.idempotency_key = 'bench-purchase-' || i",
        {"g": g, "base": base, "n": n, "total": total, "entries": n_entries, "rewards": rewards},
    )  # fmt: skip
    sizes["rewards"] = 20
    sizes["purchases"] = total
    per_season = max(1, n // 10)
    for k in range(SEASONS):
        season_id = conn.execute(
            "INSERT INTO seasons (guild_id, name, starts_at, ends_at, prize_places, prize_points, end_step, "
            "ended_at, members_archived) VALUES (%(g)s, %(name)s, now() - make_interval(days => 30 * (%(k)s + 1) + 5), "
            "now() - make_interval(days => 30 * %(k)s + 5), 10, 500, 4, now() - make_interval(days => 30 * %(k)s + 5), "
            "%(m)s) RETURNING id",
            {"g": g, "name": f"Season {SEASONS - k}", "k": k, "m": per_season},
        ).fetchone()[0]  # fmt: skip
        conn.execute(
            "INSERT INTO season_standings (season_id, user_id, score, place, position) "
            "SELECT %(s)s, %(base)s + 1 + ((j * 10 + %(k)s) %% %(n)s), 5000 - j / 20, 1 + (j - 1) / 20 * 20, j "
            "FROM generate_series(1::bigint, %(m)s::bigint) j ON CONFLICT DO NOTHING",
            {"s": season_id, "base": base, "k": k, "n": n, "m": per_season},
        )
    sizes["ended seasons"] = SEASONS
    sizes["season standings rows"] = SEASONS * per_season
    total = max(1, min(n // 4, n_entries))
    conn.execute(
        "INSERT INTO webhooks (guild_id, url, description, secret, events) "
        "SELECT %s, 'https://hooks.example.org/' || h, 'endpoint ' || h, 'whsec_bench' || h, "
        "ARRAY['entry.created', 'entry.reverted'] FROM generate_series(1, %s) h",
        (g, WEBHOOKS),
    )
    conn.execute(
        "INSERT INTO webhook_deliveries (webhook_id, guild_id, event_id, event_type, data, event_at, created_at, "
        "status, attempts, last_status, delivered_at) "
        "SELECT w.id, %(g)s, gen_random_uuid(), 'entry.created', to_jsonb(t), t.created_at, t.created_at, "
        "CASE WHEN i %% 50 = 0 THEN 'failed' ELSE 'delivered' END, 1, CASE WHEN i %% 50 = 0 THEN 500 ELSE 200 END, "
        "CASE WHEN i %% 50 <> 0 THEN t.created_at + interval '1 second' END "
        "FROM generate_series(1::bigint, %(total)s::bigint) i "
        "JOIN transactions t ON t.id = (SELECT min(id) FROM transactions) + (i - 1) * %(stride)s "
        "JOIN webhooks w ON w.guild_id = %(g)s AND w.url = 'https://hooks.example.org/' || (1 + i %% %(hooks)s)",
        {"g": g, "total": total, "stride": max(1, n_entries // total), "hooks": WEBHOOKS},
    )  # the rows as sql/052's trigger writes them (to_jsonb of the entry)
    sizes["webhooks"] = WEBHOOKS
    sizes["webhook deliveries"] = total
    return sizes


def _timed(fn: Callable[[], object] | None, reps: int, budget_s: float) -> dict[str, float] | None:
    if fn is None:  # nothing to measure at this size (left out of the report)
        return None
    fn()  # warm the cache and prepared statements
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < reps and time.perf_counter() < deadline:
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return {"n": len(samples), "p50_ms": percentile(samples, 0.50), "p99_ms": percentile(samples, 0.99)}


def _plan(db: Database, sql: str, params: dict) -> list[str]:
    return [r[0] for r in db.run(lambda conn: conn.execute("EXPLAIN " + sql, params).fetchall())]


# The member search's statement before keyset pages (the reference, measured in the same run):
# members joined for every row walked, the page by OFFSET.
_OLD_SEARCH = """
SELECT m.user_id, m.username, m.display_name, m.email, p.balance, m.erased_at IS NOT NULL
FROM points p JOIN members m USING (guild_id, user_id)
WHERE p.guild_id = %(g)s AND m.guild_id = %(g)s {extra}
ORDER BY p.balance DESC, p.user_id
LIMIT 51 OFFSET %(offset)s
"""
_OLD_PENDING = (
    "AND EXISTS (SELECT 1 FROM email_submissions e WHERE e.guild_id = m.guild_id "
    "AND e.user_id = m.user_id AND e.status = 'pending')"
)
# The "email pending" filter before sql/044 (the reference for its pages, in the same run): the
# leaderboard walked by keyset, each member's submissions probed.
_OLD_PENDING_ON_POINTS = (
    "EXISTS (SELECT 1 FROM email_submissions e WHERE e.guild_id = p.guild_id "
    "AND e.user_id = p.user_id AND e.status = 'pending')"
)


def _old_pending_sql(page: int, after: tuple[int, int] | None) -> tuple[str, dict]:
    """members.search's statement for "email pending" with the filter as it was before sql/044."""
    kept = members._EMAIL_STATUS_SQL["pending"]
    members._EMAIL_STATUS_SQL["pending"] = _OLD_PENDING_ON_POINTS
    try:
        return members._search_sql(GUILD, members.MemberQuery(email_status="pending"), page, after, None)
    finally:
        members._EMAIL_STATUS_SQL["pending"] = kept


def _old_chart(conn: psycopg.Connection) -> list:
    """stats.daily_series as it was before issue 12 (kept days, today summed live without
    counting its members); the reference the new dashboard is measured beside."""
    now = conn.execute("SELECT now()").fetchone()[0]
    today = now.astimezone(UTC).date()
    rows = conn.execute(
        "SELECT day, issued, removed, entries, new_members FROM admin_daily_totals WHERE guild_id = %s AND day >= %s",
        (GUILD, today - timedelta(days=29)),
    ).fetchall()
    live = conn.execute(
        "SELECT coalesce(sum(amount) FILTER (WHERE amount > 0), 0), coalesce(-sum(amount) FILTER (WHERE amount < 0), 0), "
        "count(*) FROM transactions WHERE guild_id = %s AND created_at >= %s",
        (GUILD, datetime(today.year, today.month, today.day, tzinfo=UTC)),
    ).fetchone()
    return [*rows, live]


def measure(dsn: str, n_members: int, n_entries: int, reps: int, budget_s: float) -> dict:
    db = Database(dsn, statement_timeout_ms=30_000)
    rng = random.Random(7)
    try:
        # The first dashboard loads sum a year of closed days, FILL_DAYS_PER_CALL at a time, and
        # keep them; measured here apart from the steady state.
        warm_up_ms = []
        while True:
            t0 = time.perf_counter()
            db.run(stats.figures, GUILD)
            db.run(stats.daily_series, GUILD)
            warm_up_ms.append(round((time.perf_counter() - t0) * 1000, 1))
            kept = db.run(lambda conn: conn.execute(
                "SELECT count(*) FROM admin_daily_totals WHERE guild_id = %s", (GUILD,)).fetchone()[0])  # fmt: skip
            if kept >= 365 or len(warm_up_ms) > 20:
                break

        for days in stats.CHART_PERIODS:  # the DM days are kept on their first read too
            db.run(stats.dm_series, GUILD, days)

        def dashboard_reference() -> None:
            """The dashboard before issue 12's charts (the reference, in the same run): figures,
            the one 30-day chart of points issued and removed, recent entries."""
            db.run(lambda conn: (stats.figures(conn, GUILD), _old_chart(conn), stats.recent_transactions(conn, GUILD)))  # fmt: skip

        def dashboard_at(days: int, board: str = "all") -> Callable[[], object]:
            """The dashboard as the page loads it now: figures, the three charts over `days`
            (points, active members, DMs), the top earners of `board`, recent entries."""

            def go() -> None:
                db.run(lambda conn: (stats.figures(conn, GUILD), stats.daily_series(conn, GUILD, days),
                                     stats.dm_series(conn, GUILD, days), stats.top_earners(conn, GUILD, board),
                                     stats.recent_transactions(conn, GUILD)))  # fmt: skip

            return go

        def before_speedup(conn: psycopg.Connection, days: int) -> None:
            """The 30-day dashboard as it loaded before the speed-up (the reference, same run):
            the all-time top found by position (leaderboard_page), today's entries fetched from
            the heap for their members (as before sql/060's user_id in transactions_daily_idx:
            the same index range without the index-only read)."""
            stats.figures(conn, GUILD)
            conn.execute("SET LOCAL enable_indexonlyscan = off")
            stats.daily_series(conn, GUILD, days)
            conn.execute("SET LOCAL enable_indexonlyscan = on")
            stats.dm_series(conn, GUILD, days)
            ledger.leaderboard_page(conn, GUILD, 1, 10)
            stats.recent_transactions(conn, GUILD)

        def today_totals(index_only: bool) -> Callable[[], object]:
            def go(conn: psycopg.Connection) -> None:
                if not index_only:
                    conn.execute("SET LOCAL enable_indexonlyscan = off")
                today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
                stats._sum_days(conn, GUILD, today, today + timedelta(days=1))

            return lambda: db.run(go)

        def search(query: members.MemberQuery) -> Callable[[], object]:
            return lambda: db.run(members.search, GUILD, query)

        def random_prefix() -> None:
            n = rng.randint(1, n_members)
            db.run(members.search, GUILD, members.MemberQuery(text=f"Member {n}"))

        def random_id() -> None:
            db.run(
                members.search, GUILD, members.MemberQuery(text=str(BASE_USER + rng.randint(1, n_members)))
            )

        def random_member_history() -> None:
            flt = monitor.TransactionFilter(user_id=BASE_USER + rng.randint(1, n_members))
            db.run(monitor.transactions_page, GUILD, flt)

        def random_member_page(load: Callable[..., object]) -> Callable[[], object]:
            # the member page's one transaction: the page's parts (the site adds names, the sparkline)
            return lambda: db.run(load, GUILD, BASE_USER + rng.randint(1, n_members))

        def old_search(extra: str, page: int) -> Callable[[], object]:
            sql = _OLD_SEARCH.format(extra=extra)
            params = {"g": GUILD, "offset": (page - 1) * members.SEARCH_PAGE}
            return lambda: db.run(lambda conn: conn.execute(sql, params).fetchall())

        def keyset_walk(query: members.MemberQuery, pages: int) -> list[tuple[int, int]]:
            """The Next keys of the first `pages` pages, as the site's Next links carry them."""
            keys, result = [], db.run(members.search, GUILD, query)
            for _ in range(pages):
                if not result.has_more:
                    break
                keys.append(members.parse_after(result.next_after))
                result = db.run(members.search, GUILD, query, len(keys) + 1, keys[-1])
            return keys

        def random_next(
            query: members.MemberQuery, keys: list[tuple[int, int]]
        ) -> Callable[[], object] | None:
            if not keys:  # one page only (a small guild): there is no Next to follow
                return None

            def go() -> None:
                i = rng.randrange(len(keys))
                db.run(members.search, GUILD, query, i + 2, keys[i])

            return go

        def old_pending(keys: list[tuple[int, int]] | None) -> Callable[[], object]:
            def go() -> None:
                i = rng.randrange(len(keys)) if keys else 0
                sql, params = _old_pending_sql(i + 2 if keys else 1, keys[i] if keys else None)
                db.run(lambda conn: conn.execute(sql, params).fetchall())

            return go

        pending = members.MemberQuery(email_status="pending")
        approved = members.MemberQuery(email_status="approved")
        pending_keys = keyset_walk(pending, 200)
        approved_keys = keyset_walk(approved, 1000)
        top_keys = keyset_walk(members.MemberQuery(), 1000)
        deep_before = db.run(lambda conn: conn.execute(
            "SELECT id FROM transactions WHERE guild_id = %s ORDER BY id DESC OFFSET %s LIMIT 1", (GUILD, n_entries // 2)
        ).fetchone()[0])  # fmt: skip
        latency = {
            "dashboard, reference (before: figures + one 30-day chart + recent)": _timed(
                dashboard_reference, reps, budget_s
            ),
            **{
                f"dashboard {days} days (figures + 3 charts + top earners all time + recent)": _timed(
                    dashboard_at(days), reps, budget_s
                )
                for days in stats.CHART_PERIODS
            },
            **{
                f"dashboard 30 days, top earners of the {board}": _timed(
                    dashboard_at(30, board), reps, budget_s
                )
                for board in ("week", "month")
            },
            "dashboard 30 days, reference (before the speed-up: top by position, today's members from the heap)": _timed(
                lambda: db.run(before_speedup, 30), reps, budget_s
            ),
            "top earners all time (first rows of the index)": _timed(
                lambda: db.run(ledger.leaderboard_top, GUILD, 10), reps, budget_s
            ),
            "top earners all time, reference (before: page one by position)": _timed(
                lambda: db.run(ledger.leaderboard_page, GUILD, 1, 10), reps, budget_s
            ),
            "today's totals and active members (index only)": _timed(today_totals(True), reps, budget_s),
            "today's totals and active members: kept part + entries since (stats.live_today, sql/064)": _timed(
                lambda: db.run(lambda conn: stats.live_today(conn, GUILD, datetime.now(UTC))), reps, budget_s
            ),
            "today's totals and active members, reference (before: entries from the heap)": _timed(
                today_totals(False), reps, budget_s
            ),
            "dashboard figures only (stats.json)": _timed(
                lambda: db.run(stats.figures, GUILD), reps, budget_s
            ),
            "search: name prefix (random member)": _timed(random_prefix, reps, budget_s),
            "search: short name prefix 'member 1'": _timed(
                search(members.MemberQuery(text="member 1")), reps, budget_s
            ),
            "search: Discord id (random member)": _timed(random_id, reps, budget_s),
            "search: email prefix": _timed(search(members.MemberQuery(text="person12@")), reps, budget_s),
            "search: no filter (top balances)": _timed(search(members.MemberQuery()), reps, budget_s),
            "search: balance range": _timed(
                search(members.MemberQuery(min_balance=500, max_balance=600)), reps, budget_s
            ),
            "search: email pending": _timed(search(pending), reps, budget_s),
            "search: email pending, reference (before: members joined per row)": _timed(
                old_search(_OLD_PENDING, 1), reps, budget_s
            ),
            "search: email pending, first page, reference (before sql/044: the leaderboard walked)": _timed(
                old_pending(None), reps, budget_s
            ),
            f"search: email pending, Next from a random one of its {len(pending_keys) + 1} pages (keyset)": _timed(
                random_next(pending, pending_keys), reps, budget_s
            ),
            "search: email pending, Next, reference (before sql/044: the leaderboard walked)": _timed(
                old_pending(pending_keys), reps, budget_s
            ),
            "search: no filter, page 1000 by number": _timed(
                lambda: db.run(members.search, GUILD, members.MemberQuery(), 1000), reps, budget_s
            ),
            "search: no filter, page 1000, reference (before: OFFSET over the join)": _timed(
                old_search("", 1000), reps, budget_s
            ),
            "search: no filter, Next from a random page of the first 1000 (keyset)": _timed(
                random_next(members.MemberQuery(), top_keys), reps, budget_s
            ),
            "search: email approved, page 1000 by number": _timed(
                lambda: db.run(members.search, GUILD, approved, 1000), reps, budget_s
            ),
            "search: email approved, Next from a random page of the first 1000 (keyset)": _timed(
                random_next(approved, approved_keys), reps, budget_s
            ),
            "monitor: first page, no filter": _timed(
                lambda: db.run(monitor.transactions_page, GUILD, monitor.TransactionFilter()), reps, budget_s
            ),
            "monitor: half-way through the ledger (keyset)": _timed(
                lambda: db.run(monitor.transactions_page, GUILD, monitor.TransactionFilter(), deep_before),
                reps,
                budget_s,
            ),
            "monitor: one member (random)": _timed(random_member_history, reps, budget_s),
            "member page (random member)": _timed(
                random_member_page(member_view.member_view), reps, budget_s
            ),
            "member page, reference (before issue 12 item 10)": _timed(
                random_member_page(member_view.before_view), reps, budget_s
            ),
            "monitor: kind = set": _timed(
                lambda: db.run(monitor.transactions_page, GUILD, monitor.TransactionFilter(kind="set")),
                reps,
                budget_s,
            ),
        }
        latency = {name: row for name, row in latency.items() if row is not None}
        plans = {
            "search name prefix": _plan(db, "SELECT m.user_id FROM points p JOIN members m USING (guild_id, user_id) "
                                            "WHERE p.guild_id = %(g)s AND m.guild_id = %(g)s AND "
                                            "(lower(m.display_name) LIKE %(q)s OR lower(m.username) LIKE %(q)s) "
                                            "ORDER BY p.balance DESC, p.user_id LIMIT 51",
                                        {"g": GUILD, "q": "member 4242%"}),
            "figures, circulation since the last kept day": _plan(
                db, "SELECT coalesce(sum(amount), 0) FROM transactions WHERE guild_id = %(g)s "
                "AND created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
                {"g": GUILD}),
        }  # fmt: skip
        return {"warm_up_ms": warm_up_ms, "latency": latency, "plans": plans}
    finally:
        db.close()


def measure_pages(dsn: str, n_members: int, n_entries: int, reps: int, budget_s: float) -> dict:
    """Every admin page a busy admin opens, each a whole request through the admin site's Lambda
    handler in-process (session cookie, routing, the gate, the loader, names, the template), in
    rounds so every page sees the same load and cache; each non-200 answer is counted."""
    from .bench_seasons import _site_client

    discord = _discord_standin()
    rng = random.Random(11)
    get, db = _site_client(dsn, GUILD)
    g = f"/admin/g/{GUILD}"
    try:

        def one(sql: str, *params: object) -> object:
            return db.run(lambda conn: conn.execute(sql, params).fetchone()[0])

        # The deep places the Next links of the pages reach: keys of the member search's first
        # 1,000 pages (walked as the links carry them), ids half-way down each list.
        keys, result = [], db.run(members.search, GUILD, members.MemberQuery())
        for _ in range(1000):
            if not result.has_more:
                break
            keys.append(result.next_after)
            result = db.run(members.search, GUILD, members.MemberQuery(), len(keys) + 1,
                            members.parse_after(keys[-1]))  # fmt: skip
        ids = {
            table: (one(f"SELECT min(id) FROM {table} WHERE guild_id = %s", GUILD) or 0,
                    one(f"SELECT max(id) FROM {table} WHERE guild_id = %s", GUILD) or 0)
            for table in ("transactions", "admin_audit", "direct_messages")
        }  # fmt: skip
        hook = one("SELECT min(id) FROM webhooks WHERE guild_id = %s", GUILD)
        pending_emails = one(
            "SELECT count(*) FROM email_submissions WHERE guild_id = %s AND status = 'pending'", GUILD
        )
        all_redemptions = one("SELECT count(*) FROM purchases WHERE guild_id = %s", GUILD)
        purchase_ids = db.run(lambda conn: [r[0] for r in conn.execute(
            "SELECT id FROM purchases WHERE guild_id = %s ORDER BY id DESC", (GUILD,)).fetchall()])  # fmt: skip

        def redemptions_next() -> str:
            """Next from a random page, as the pager's link carries it (the last id shown)."""
            n = rng.randint(1, max(1, len(purchase_ids) // 25 - 1))
            return f"{g}/redemptions?page={n + 1}&after={purchase_ids[min(n * 25, len(purchase_ids)) - 1]}"

        a_day = (datetime.now(UTC) - timedelta(days=180)).date().isoformat()

        def middle(table: str) -> int:
            lo, hi = ids[table]
            return rng.randint(lo + (hi - lo) // 4, hi - (hi - lo) // 4) if hi > lo else hi + 1

        def member() -> int:
            return BASE_USER + rng.randint(1, n_members)

        def deep_after() -> str:
            i = rng.randrange(len(keys)) if keys else 0
            return f"?after={keys[i]}&page={i + 2}" if keys else ""

        pages: dict[str, Callable[[], str]] = {
            **{f"dashboard, {d} days": (lambda d=d: f"{g}/?days={d}") for d in stats.CHART_PERIODS},
            "members: search, no filter (page 1)": lambda: f"{g}/members",
            "members: search, name prefix (random member)": lambda: f"{g}/members?q=Member+{rng.randint(1, n_members)}",
            "members: Next from a random page of the first 1000 (keyset)": lambda: f"{g}/members{deep_after()}",
            "members: page 1000 by number": lambda: f"{g}/members?page=1000",
            "member page (random member)": lambda: f"{g}/members/{member()}",
            "transactions: first page": lambda: f"{g}/transactions",
            "transactions: deep page (keyset, random id in the middle half)": lambda: f"{g}/transactions?before={middle('transactions')}",
            "transactions: one member (random)": lambda: f"{g}/transactions?member={member()}",
            "transactions: kind = set": lambda: f"{g}/transactions?kind=set",
            "transactions: one day, 180 days ago": lambda: f"{g}/transactions?from={a_day}&to={a_day}",
            "audit log: first page": lambda: f"{g}/audit",
            "audit log: action = points.award": lambda: f"{g}/audit?action=points.award",
            "audit log: action = season.rename (0.5 % of rows)": lambda: f"{g}/audit?action=season.rename",
            "audit log: deep page (keyset, random id in the middle half)": lambda: f"{g}/audit?before={middle('admin_audit')}",
            "email reviews: first page": lambda: f"{g}/emails",
            f"email reviews: random page of {max(1, -(-pending_emails // 25))}": lambda: f"{g}/emails?page={rng.randint(1, max(1, -(-pending_emails // 25)))}",
            "DMs: history, first page": lambda: f"{g}/dms",
            "DMs: failed": lambda: f"{g}/dms?status=failed",
            "DMs: deep page (keyset, random id in the middle half)": lambda: f"{g}/dms?before={middle('direct_messages')}",
            "rewards": lambda: f"{g}/rewards",
            "redemptions: queue (first page)": lambda: f"{g}/redemptions",
            "redemptions: pending": lambda: f"{g}/redemptions?state=pending",
            f"redemptions: random page of {max(1, -(-all_redemptions // 25))}": lambda: f"{g}/redemptions?page={rng.randint(1, max(1, -(-all_redemptions // 25)))}",
            f"redemptions: Next from a random one of its {max(1, -(-all_redemptions // 25))} pages (keyset)": redemptions_next,
            "seasons list": lambda: f"{g}/seasons",
            "leaderboard: random page": lambda: f"{g}/leaderboard?page={rng.randint(1, max(1, min(100_000, n_members // 25)))}",
            "settings": lambda: f"{g}/settings",
            "webhooks": lambda: f"{g}/webhooks",
            "webhook: one endpoint with its deliveries": lambda: f"{g}/webhooks/{hook}",
        }  # fmt: skip
        statuses: dict[str, dict[int, int]] = {name: {} for name in pages}
        sizes: dict[str, int] = {}

        def fetch(name: str) -> None:
            status, size = get(pages[name]())
            statuses[name][status] = statuses[name].get(status, 0) + 1
            sizes[name] = max(sizes.get(name, 0), size)

        for name in pages:  # warm each page once (templates compiled, statements prepared)
            fetch(name)
        samples: dict[str, list[float]] = {name: [] for name in pages}
        deadline = time.perf_counter() + budget_s
        for _ in range(reps):
            for name in pages:
                t0 = time.perf_counter()
                fetch(name)
                samples[name].append((time.perf_counter() - t0) * 1000)
            if time.perf_counter() > deadline:
                break
        latency = {name: {"n": len(v), "p50_ms": percentile(v, 0.50), "p99_ms": percentile(v, 0.99),
                          "max_body_chars": sizes[name], "statuses": {str(k): c for k, c in statuses[name].items()}}
                   for name, v in samples.items()}  # fmt: skip
        return {"pages": latency}
    finally:
        db.close()
        discord.stop()


def _discord_standin():
    """The Discord stand-in on a local port, as the pages that ask Discord (the rewards' and
    seasons' role and channel lists, the kept role list of Settings) reach it: a guild with 30
    roles and 20 channels. Its answers cost a local HTTP round trip, not Discord's."""
    from pointsbot.discord.rest import set_client
    from pointsbot.platform import config
    from pointsbot_local import discord_standin_rest
    from pointsbot_local.discord_standin import PREFIX, standin
    from pointsbot_local.server import LocalServer, mount

    mount("/discord-api", standin)
    local = LocalServer("127.0.0.1", 0).start()
    discord_standin_rest.reset()
    for i in range(30):
        discord_standin_rest.state.add_role(str(GUILD), f"Role {i}", position=1 + i % 9)
    for i in range(20):
        discord_standin_rest.state.add_channel(str(GUILD), f"channel-{i}", kind=(0, 5, 2)[i % 3], position=i)
    os.environ["DISCORD_API_BASE_URL"] = local.url + PREFIX
    os.environ["DISCORD_BOT_TOKEN"] = "bench-token"  # noqa: S105 - the stand-in takes any token
    os.environ.setdefault("DISCORD_APPLICATION_ID", discord_standin_rest.bot_user_id())
    config.reset_settings()
    set_client(None)
    return local


def measure_all(
    dsn: str,
    n_members: int,
    n_entries: int,
    reps: int,
    only: str = "",
    budget_s: float = 20.0,
    pages_budget_s: float = 300.0,
) -> dict:
    """The reads (the references, as they were measured before) and then the pages, in one run."""
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = os.getloadavg()
    result: dict = {"latency": {}, "plans": {}, "warm_up_ms": [], "pages": {}}
    if only in ("", "reads"):
        result.update(measure(dsn, n_members, n_entries, reps, budget_s))
    if only in ("", "pages"):
        print("  pages through the handler", flush=True)
        result.update(measure_pages(dsn, n_members, n_entries, reps, pages_budget_s))
    result["measured"] = {"started": started, "ended": datetime.now(UTC).isoformat(timespec="seconds"),
                          "load_average_before": load_before, "load_average_after": os.getloadavg()}  # fmt: skip
    return result


def run(dsn: str, n_members: int, n_entries: int, reps: int, only: str = "") -> dict:
    print(f"  loading {n_members:,} members and {n_entries:,} entries", flush=True)
    timings = load(dsn, n_members, n_entries, log=lambda m: print(m, flush=True))
    result = measure_all(dsn, n_members, n_entries, reps, only)
    return {"members": n_members, "entries": n_entries, "load": timings, **result}


def markdown(report: dict) -> str:
    lines = [
        f"## Admin site with {report['members']:,} members and {report['entries']:,} ledger entries",
        "",
        f"Loaded in {report['load']['total_s']:.0f} s (entries {report['load']['entries_s']:.0f} s, indexes "
        f"{report['load']['indexes_s']:.0f} s). The first dashboard loads, which sum the closed days "
        f"once and keep them: {', '.join(f'{ms:.0f}' for ms in report['warm_up_ms'])} ms.",
        "",
        f"| query | n | p50 ms | p99 ms | p99 / goal ({GOAL_MS:g} ms) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in report["latency"].items():
        lines.append(
            f"| {name} | {row['n']} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['p99_ms'] / GOAL_MS:.2f} |"
        )
    lat = report["latency"]
    pairs = [
        *((f"dashboard {days} days (figures + 3 charts + top earners all time + recent)",
           "dashboard, reference (before: figures + one 30-day chart + recent)") for days in (7, 30, 90)),
        ("dashboard 30 days (figures + 3 charts + top earners all time + recent)",
         "dashboard 30 days, reference (before the speed-up: top by position, today's members from the heap)"),
        ("top earners all time (first rows of the index)",
         "top earners all time, reference (before: page one by position)"),
        ("today's totals and active members: kept part + entries since (stats.live_today, sql/064)",
         "today's totals and active members (index only)"),
        ("today's totals and active members (index only)",
         "today's totals and active members, reference (before: entries from the heap)"),
        ("search: email pending", "search: email pending, reference (before: members joined per row)"),
        ("search: email pending", "search: email pending, first page, reference (before sql/044: the leaderboard walked)"),
        (next((k for k in lat if k.startswith("search: email pending, Next from")), ""),
         "search: email pending, Next, reference (before sql/044: the leaderboard walked)"),
        ("member page (random member)", "member page, reference (before issue 12 item 10)"),
        ("search: no filter, page 1000 by number",
         "search: no filter, page 1000, reference (before: OFFSET over the join)"),
    ]  # fmt: skip
    lines += ["", "Ours / the reference measured in the same run (p50, p99):", ""]
    for ours, ref in pairs:
        if ours in lat and ref in lat:
            lines.append(
                f"- {ours}: {lat[ours]['p50_ms'] / lat[ref]['p50_ms']:.3f}x, {lat[ours]['p99_ms'] / lat[ref]['p99_ms']:.3f}x"
            )
    for name, plan in report["plans"].items():
        lines += ["", f"Plan, {name}:", "", "```", *plan, "```"]
    if report.get("pages"):
        lines += ["", "Whole pages through the admin site's handler (session cookie, routing, loader, template), "
                  "in rounds; beside each, the read it was measured by before (same run) where there is one:", "",
                  f"| page | n | p50 ms | p99 ms | p99 / goal ({GOAL_MS:g} ms) | the read before, p50 / p99 ms | "
                  "page / read, p99 |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
        for name, row in report["pages"].items():
            ref = lat.get(_PAGE_READS.get(name, ""))
            before = f"{ref['p50_ms']:.2f} / {ref['p99_ms']:.2f}" if ref else "—"
            ratio = f"{row['p99_ms'] / ref['p99_ms']:.2f}x" if ref else "—"
            lines.append(f"| {name} | {row['n']} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | "
                         f"{row['p99_ms'] / GOAL_MS:.2f} | {before} | {ratio} |")  # fmt: skip
    if report.get("measured"):
        m = report["measured"]
        lines += ["", f"Measured {m['started']} to {m['ended']}; load average (1, 5, 15 min) before "
                  f"{', '.join(f'{x:.2f}' for x in m['load_average_before'])}, after "
                  f"{', '.join(f'{x:.2f}' for x in m['load_average_after'])}."]  # fmt: skip
    if report.get("load", {}).get("other_tables"):
        lines += [
            "",
            "Other tables: "
            + ", ".join(f"{k} {v:,}" for k, v in report["load"]["other_tables"].items())
            + ".",
        ]
    return "\n".join(lines) + "\n"


# Which read of the reads above each page was measured by before this bench measured pages.
_PAGE_READS = {
    **{f"dashboard, {d} days": f"dashboard {d} days (figures + 3 charts + top earners all time + recent)"
       for d in (7, 30, 90)},
    "members: search, no filter (page 1)": "search: no filter (top balances)",
    "members: search, name prefix (random member)": "search: name prefix (random member)",
    "members: page 1000 by number": "search: no filter, page 1000 by number",
    "members: Next from a random page of the first 1000 (keyset)": "search: no filter, Next from a random page of the first 1000 (keyset)",
    "member page (random member)": "member page (random member)",
    "transactions: first page": "monitor: first page, no filter",
    "transactions: deep page (keyset, random id in the middle half)": "monitor: half-way through the ledger (keyset)",
    "transactions: one member (random)": "monitor: one member (random)",
    "transactions: kind = set": "monitor: kind = set",
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_admin", description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--only", choices=("reads", "pages"), default="",
                        help="the reads (the references) or the pages through the handler; both by default")  # fmt: skip
    parser.add_argument("--embedded", action="store_true")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--measure-only", metavar="DSN", help="measure a database loaded before (with --keep-db)"
    )
    args = parser.parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if args.measure_only:
        report = {"members": args.members, "entries": args.entries, "load": {"total_s": 0, "entries_s": 0,
                  "indexes_s": 0}, **measure_all(args.measure_only, args.members, args.entries, args.reps, args.only)}  # fmt: skip
    else:
        with server(embedded=args.embedded) as target:
            print(f"bench_admin: PostgreSQL {target.version} ({target.source})", flush=True)
            with bench_database(target, keep=args.keep_db) as dsn:
                if args.keep_db:
                    print(f"  database kept: {dsn}", flush=True)
                report = run(dsn, args.members, args.entries, args.reps, args.only)
        report["server"] = {"version": target.version, "source": target.source}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"admin-{stamp}.json").write_text(json.dumps(report, indent=2))
    text = markdown(report)
    (RESULTS / f"admin-{stamp}.md").write_text(text)
    print()
    print(text)
    bad = {
        name: row["statuses"]
        for name, row in report.get("pages", {}).items()
        if set(row["statuses"]) != {"200"}
    }
    if bad:
        print(f"pages answered other than 200: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
