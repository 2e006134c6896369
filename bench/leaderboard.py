"""Leaderboard page and rank lookup latency with one very large guild (1M members by default).

Members, balances and counters are bulk-loaded with generate_series (no ledger entries: the
bench database is thrown away). Balances are skewed like a real guild's: many members at
zero, a long tail of large balances, lots of ties.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import psycopg

from pointsbot import ledger

from .ledger_ops import percentile

GUILD = 720_000_000_000_000_001
BASE_USER = 730_000_000_000_000_000


def load(dsn: str, members: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute("INSERT INTO guilds (guild_id, name) VALUES (%s, 'one million')", (GUILD,))
        conn.execute(
            "INSERT INTO members (guild_id, user_id, username, display_name) "
            "SELECT %s, %s + i, 'user' || i, 'Member ' || i FROM generate_series(1, %s) i",
            (GUILD, BASE_USER, members),
        )
        conn.execute(
            "INSERT INTO points (guild_id, user_id, balance) SELECT %s, %s + i, "
            "CASE WHEN random() < 0.4 THEN 0 ELSE floor(power(random(), 3) * 1000000)::bigint END "
            "FROM generate_series(1, %s) i",
            (GUILD, BASE_USER, members),
        )
        conn.execute(
            "INSERT INTO user_stats (guild_id, user_id, transaction_count, total_earned) "
            "SELECT guild_id, user_id, 1, balance FROM points WHERE guild_id = %s",
            (GUILD,),
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM (ANALYZE) members, points, user_stats")  # visibility map for index-only scans
    return time.perf_counter() - started


def _timed(fn: Callable[[], object], reps: int, budget_s: float) -> list[float]:
    fn()  # warm the cache and the prepared statement
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < reps and time.perf_counter() < deadline:
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _summary(samples: list[float]) -> dict:
    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 0.5), 2),
        "p99_ms": round(percentile(samples, 0.99), 2),
    }


# rank_of's first query, measured beside it for comparison: a correlated subquery for "above"
# and another for "all" (two scans of the guild). rank_of now counts only the members above and
# reads the total from the guild's kept member_count.
_RANK_TWO_SCANS = """
SELECT p.balance,
       (SELECT count(*) FROM points o WHERE o.guild_id = p.guild_id AND o.balance > p.balance),
       (SELECT count(*) FROM points o WHERE o.guild_id = p.guild_id)
FROM points p WHERE p.guild_id = %s AND p.user_id = %s
"""


def run(dsn: str, members: int, reps: int, budget_s: float, log=print) -> dict:
    seconds = load(dsn, members)
    log(f"  loaded {members:,} members in {seconds:.1f} s")
    rnd = random.Random(7)
    with psycopg.connect(dsn, autocommit=True) as conn:
        users = [BASE_USER + rnd.randint(1, members) for _ in range(reps)]
        balances = dict(
            conn.execute(
                "SELECT user_id, balance FROM points WHERE guild_id = %s AND user_id = ANY(%s)",
                (GUILD, users),
            ).fetchall()
        )
        top = conn.execute(
            "SELECT user_id FROM points WHERE guild_id = %s ORDER BY balance DESC, user_id LIMIT 1", (GUILD,)
        ).fetchone()[0]
        top_balance = conn.execute(
            "SELECT balance FROM points WHERE guild_id = %s AND user_id = %s", (GUILD, top)
        ).fetchone()[0]
        bottom = conn.execute(
            "SELECT user_id FROM points WHERE guild_id = %s ORDER BY balance, user_id DESC LIMIT 1", (GUILD,)
        ).fetchone()[0]
        cycle = iter(users * 1000)
        results: dict[str, dict] = {}

        def measure(name: str, fn: Callable[[], object]) -> None:
            results[name] = _summary(_timed(fn, reps, budget_s))
            log(f"  {name:<36} p50 {results[name]['p50_ms']:8.2f} ms   p99 {results[name]['p99_ms']:8.2f} ms")

        measure("leaderboard top 10", lambda: ledger.leaderboard_page(conn, GUILD, 1, 10))
        measure("leaderboard page 1000", lambda: ledger.leaderboard_page(conn, GUILD, 1000, 10))
        measure("rank_of (random member)", lambda: ledger.rank_of(conn, GUILD, next(cycle)))
        measure("rank_of (top member)", lambda: ledger.rank_of(conn, GUILD, top))
        measure("rank_of (bottom member)", lambda: ledger.rank_of(conn, GUILD, bottom))
        # Where the time goes: the old two-scan query, and each count on its own. "Count above"
        # alone is what rank_of would cost if the guild's member count were kept in a counter.
        measure(
            "old two-scan rank (random member)",
            lambda: conn.execute(_RANK_TWO_SCANS, (GUILD, next(cycle))).fetchone(),
        )
        measure(
            "count all members of the guild",
            lambda: conn.execute("SELECT count(*) FROM points WHERE guild_id = %s", (GUILD,)).fetchone(),
        )
        measure(
            "count above only (random member)",
            lambda: conn.execute(
                "SELECT count(*) FROM points WHERE guild_id = %s AND balance > %s",
                (GUILD, balances[next(cycle)]),
            ).fetchone(),
        )
        measure(
            "count above only (top member)",
            lambda: conn.execute(
                "SELECT count(*) FROM points WHERE guild_id = %s AND balance > %s",
                (GUILD, top_balance),
            ).fetchone(),
        )
        plan = conn.execute(
            "EXPLAIN (FORMAT TEXT) SELECT count(*) FROM points WHERE guild_id = %s AND balance > %s",
            (GUILD, 0),
        ).fetchall()
        at_zero = conn.execute(
            "SELECT count(*) FILTER (WHERE balance = 0) FROM points WHERE guild_id = %s", (GUILD,)
        ).fetchone()[0]
    return {
        "members": members,
        "load_seconds": round(seconds, 1),
        "members_at_zero": at_zero,
        "rank_count_plan": [row[0] for row in plan],
        "latency": results,
    }
