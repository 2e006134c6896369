"""Rank and leaderboard pages at growing guild sizes, each beside its naive reference in the same run.

For every size (10k, 100k, 1M by default; up to --members, e.g. 5M) one guild is bulk-loaded with
generate_series (no ledger entries: the bench database is thrown away). Balances are skewed like
a real guild's: 40% at zero, a long tail of large balances, lots of ties. Then, interleaved so
both sides see the same cache and load:

- rank_of of a random member vs the naive rank, `1 + count(*)` of the members above;
- a uniformly random leaderboard page vs the page as it was found before (LIMIT/OFFSET plus the
  count above its first balance), and Next by keyset from a random page;
- the top 10;
- a ledger write (ledger.award, its own transaction) with the bucket-count triggers (sql/036)
  and, in the same run, with them switched off: what keeping the counts costs the write path.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable

import psycopg

from pointsbot import ledger
from pointsbot.ledger import ties

from .ledger_ops import percentile

GUILD = 720_000_000_000_000_001
BASE_USER = 730_000_000_000_000_000
SIZES = (10_000, 100_000, 1_000_000, 5_000_000)
PAGE = 10


def load(dsn: str, guild: int, members: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute("INSERT INTO guilds (guild_id, name) VALUES (%s, 'bench')", (guild,))
        conn.execute(
            "INSERT INTO members (guild_id, user_id, username, display_name) "
            "SELECT %s, %s + i, 'user' || i, 'Member ' || i FROM generate_series(1, %s) i",
            (guild, BASE_USER, members),
        )
        conn.execute(
            "INSERT INTO points (guild_id, user_id, balance) SELECT %s, %s + i, "
            "CASE WHEN random() < 0.4 THEN 0 ELSE floor(power(random(), 3) * 1000000)::bigint END "
            "FROM generate_series(1, %s) i",
            (guild, BASE_USER, members),
        )
        conn.execute(
            "INSERT INTO user_stats (guild_id, user_id, transaction_count, total_earned) "
            "SELECT guild_id, user_id, 1, balance FROM points WHERE guild_id = %s",
            (guild,),
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM (ANALYZE) members, points, user_stats, balance_counts")
    return time.perf_counter() - started


def _summary(samples: list[float]) -> dict:
    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 0.5), 3),
        "p99_ms": round(percentile(samples, 0.99), 3),
    }


def _interleaved(fns: dict[str, Callable[[], object]], reps: int, budget_s: float) -> dict[str, dict]:
    """Each function once per round, in turn, until `reps` rounds or the budget is spent."""
    for fn in fns.values():
        fn()  # warm the cache and the prepared statements
    samples: dict[str, list[float]] = {name: [] for name in fns}
    deadline = time.perf_counter() + budget_s
    for _ in range(reps):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - started) * 1000)
        if time.perf_counter() > deadline:
            break
    return {name: _summary(s) for name, s in samples.items()}


# The page as leaderboard_page found it before sql/036: OFFSET over the board, then the count
# of the members above the page's first balance for its first rank.
_OFFSET_PAGE = """
SELECT p.user_id, p.balance, m.display_name
FROM points p JOIN members m USING (guild_id, user_id)
WHERE p.guild_id = %s
ORDER BY p.balance DESC, p.user_id
LIMIT %s OFFSET %s
"""
_COUNT_ABOVE = "SELECT count(*) FROM points WHERE guild_id = %s AND balance > %s"


def _offset_page(conn: psycopg.Connection, guild: int, page: int) -> None:
    rows = conn.execute(_OFFSET_PAGE, (guild, PAGE, (page - 1) * PAGE)).fetchall()
    if rows:
        conn.execute(_COUNT_ABOVE, (guild, rows[0][1])).fetchone()


def _naive_rank(conn: psycopg.Connection, guild: int, user: int) -> int:
    bal = conn.execute(
        "SELECT balance FROM points WHERE guild_id = %s AND user_id = %s", (guild, user)
    ).fetchone()[0]
    return 1 + conn.execute(_COUNT_ABOVE, (guild, bal)).fetchone()[0]


def _one_size(dsn: str, members: int, reps: int, budget_s: float, log) -> dict:
    guild = GUILD + members
    seconds = load(dsn, guild, members)
    log(f"  {members:,} members loaded in {seconds:.1f} s")
    rnd = random.Random(members)
    pages = -(-members // PAGE)
    users = itertools.cycle([BASE_USER + rnd.randint(1, members) for _ in range(max(reps, 1))])
    page_numbers = itertools.cycle([rnd.randint(1, pages) for _ in range(max(reps, 1))])
    keys = itertools.count()
    with psycopg.connect(dsn, autocommit=True) as conn:
        mismatches = 0
        for _ in range(min(reps, 200)):  # exactness at this size, ties included
            user = next(users)
            mismatches += ledger.rank_of(conn, guild, user).rank != _naive_rank(conn, guild, user)
        latency: dict[str, dict] = {}
        latency.update(
            _interleaved(
                {
                    "rank_of (random member)": lambda: ledger.rank_of(conn, guild, next(users)),
                    "naive rank: 1 + count(*) above": lambda: _naive_rank(conn, guild, next(users)),
                },
                reps,
                budget_s,
            )
        )
        # What a p99 of a few ms is made of on a shared machine: rank_of again without the naive
        # count's parallel scan between its samples, beside the floor of any query on the same
        # connection (a round trip, and one primary-key read), interleaved so all see the same load.
        latency.update(
            _interleaved(
                {
                    "rank_of, no naive count between": lambda: ledger.rank_of(conn, guild, next(users)),
                    "floor: SELECT 1 (a round trip)": lambda: conn.execute("SELECT 1").fetchone(),
                    "floor: one balance by primary key": lambda: conn.execute(
                        "SELECT balance FROM points WHERE guild_id = %s AND user_id = %s",
                        (guild, next(users)),
                    ).fetchone(),
                },
                reps,
                budget_s,
            )
        )
        paired = _interleaved(
            {
                "random page (beside the old)": lambda: ledger.leaderboard_page(
                    conn, guild, next(page_numbers), PAGE
                ),
                "old page: OFFSET + count above": lambda: _offset_page(conn, guild, next(page_numbers)),
            },
            reps,
            budget_s,
        )
        # The old page is slow, so few pairs fit the budget; ours alone for a p99 worth the name.
        latency["leaderboard random page"] = _interleaved(
            {"p": lambda: ledger.leaderboard_page(conn, guild, next(page_numbers), PAGE)}, reps, budget_s
        )["p"]
        latency.update(paired)
        # The worst place for a page: the end of the largest tie (everyone at zero), where the
        # page's first member is found by an offset inside that one balance.
        above_zero, at_zero = conn.execute(
            "SELECT count(*) FILTER (WHERE balance > 0), count(*) FILTER (WHERE balance = 0) FROM points "
            "WHERE guild_id = %s",
            (guild,),
        ).fetchone()
        last_zero_page = (above_zero + at_zero - 1) // PAGE + 1
        latency["page at the end of the zero tie"] = _interleaved(
            {"z": lambda: ledger.leaderboard_page(conn, guild, last_zero_page, PAGE)}, reps, budget_s
        )["z"]
        # The same page and random pages once the zero tie has blocks (sql/039, made here as the
        # keep-alive makes them); the tie's page must list the same rows with the same ranks.
        without = ledger.leaderboard_page(conn, guild, last_zero_page, PAGE).rows
        started = time.perf_counter()
        with conn.transaction():
            ties.refresh_tie_blocks(conn, guild)
        tie_blocks_build_s = round(time.perf_counter() - started, 2)
        tie_page_differs = ledger.leaderboard_page(conn, guild, last_zero_page, PAGE).rows != without
        latency["page at the end of the zero tie, tie blocks"] = _interleaved(
            {"z": lambda: ledger.leaderboard_page(conn, guild, last_zero_page, PAGE)}, reps, budget_s
        )["z"]
        latency["leaderboard random page, tie blocks"] = _interleaved(
            {"p": lambda: ledger.leaderboard_page(conn, guild, next(page_numbers), PAGE)}, reps, budget_s
        )["p"]

        def next_by_keyset() -> None:
            shown = ledger.leaderboard_page(conn, guild, next(page_numbers), PAGE).rows
            if shown:
                start = time.perf_counter()
                ledger.leaderboard_page(conn, guild, 2, PAGE, after=(shown[-1].balance, shown[-1].user_id))
                keyset_samples.append((time.perf_counter() - start) * 1000)

        keyset_samples: list[float] = []
        latency.update(
            _interleaved({"top 10": lambda: ledger.leaderboard_page(conn, guild, 1, PAGE)}, reps, budget_s)
        )
        _interleaved({"_": next_by_keyset}, reps, budget_s)
        latency["Next by keyset (random page)"] = _summary(keyset_samples)

        def write() -> None:
            with conn.transaction():
                ledger.award(
                    conn, guild_id=guild, user_id=next(users), amount=rnd.randint(1, 1000), reason="bench",
                    actor_id=1, source="admin_site", idempotency_key=f"bench-{members}-{next(keys)}",
                )  # fmt: skip

        latency["ledger.award, bucket counts kept"] = _interleaved({"w": write}, reps, budget_s)["w"]
        conn.execute("ALTER TABLE points DISABLE TRIGGER points_balance_counts_update")
        latency["ledger.award, bucket trigger off"] = _interleaved({"w": write}, reps, budget_s)["w"]
        conn.execute("ALTER TABLE points ENABLE TRIGGER points_balance_counts_update")
        latency["ledger.award, bucket counts kept (again)"] = _interleaved({"w": write}, reps, budget_s)["w"]
        buckets = conn.execute(
            "SELECT count(DISTINCT (tier, bucket)), count(*) FROM balance_counts WHERE guild_id = %s",
            (guild,),
        ).fetchone()
    for name, row in latency.items():
        log(f"  {name:<42} p50 {row['p50_ms']:9.3f} ms   p99 {row['p99_ms']:9.3f} ms   (n {row['n']})")
    return {
        "members": members,
        "load_seconds": round(seconds, 1),
        "rank_mismatches": mismatches,
        "members_at_zero": at_zero,
        "tie_blocks_build_s": tie_blocks_build_s,
        "tie_page_differs_with_blocks": tie_page_differs,
        "buckets": buckets[0],
        "bucket_rows": buckets[1],
        "latency": latency,
    }


def run(dsn: str, members: int, reps: int, budget_s: float, log=print) -> dict:
    sizes = [size for size in SIZES if size < members] + [members]
    return {"members": members, "sizes": [_one_size(dsn, size, reps, budget_s, log) for size in sizes]}


def _ratio(slow: float, fast: float) -> str:
    return f"{slow / fast:,.0f}x" if fast else "-"


def markdown(board: dict) -> list[str]:
    """The growth table: each size's p99 (p50) beside its naive reference and the ratio."""
    sizes = board["sizes"]
    head = "| | " + " | ".join(f"{s['members']:,}" for s in sizes) + " |"
    lines = [
        "## Rank and leaderboard pages as the guild grows",
        "",
        "p99 ms (p50 ms), each row measured interleaved with its reference at the same size.",
        "",
        head,
        "| --- |" + " ---: |" * len(sizes),
    ]
    for name in sizes[0]["latency"]:
        cells = [f"{s['latency'][name]['p99_ms']:.2f} ({s['latency'][name]['p50_ms']:.2f})" for s in sizes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(
        "| naive rank ÷ rank_of, p99 | "
        + " | ".join(
            _ratio(
                s["latency"]["naive rank: 1 + count(*) above"]["p99_ms"],
                s["latency"]["rank_of (random member)"]["p99_ms"],
            )
            for s in sizes
        )
        + " |"
    )
    lines.append(
        "| old page ÷ random page, p99 | "
        + " | ".join(
            _ratio(
                s["latency"]["old page: OFFSET + count above"]["p99_ms"],
                s["latency"]["random page (beside the old)"]["p99_ms"],
            )
            for s in sizes
        )
        + " |"
    )
    for label, name, ref in (
        ("naive rank ÷ rank_of, p50", "rank_of (random member)", "naive rank: 1 + count(*) above"),
        ("old page ÷ random page, p50", "random page (beside the old)", "old page: OFFSET + count above"),
    ):
        ratios = [_ratio(s["latency"][ref]["p50_ms"], s["latency"][name]["p50_ms"]) for s in sizes]
        lines.append(f"| {label} | " + " | ".join(ratios) + " |")
    lines.append(
        "| rank_of ≠ naive (of up to 200 members) | "
        + " | ".join(str(s["rank_mismatches"]) for s in sizes)
        + " |"
    )
    lines.append(
        "| buckets (rows) | " + " | ".join(f"{s['buckets']:,} ({s['bucket_rows']:,})" for s in sizes) + " |"
    )
    lines.append(
        "| members at zero (the largest tie) | "
        + " | ".join(f"{s['members_at_zero']:,}" for s in sizes)
        + " |"
    )
    lines.append(
        "| tie blocks: build s (tie page differs with blocks) | "
        + " | ".join(
            f"{s.get('tie_blocks_build_s')} ({s.get('tie_page_differs_with_blocks')})" for s in sizes
        )
        + " |"
    )
    lines.append("| load s | " + " | ".join(str(s["load_seconds"]) for s in sizes) + " |")
    lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.leaderboard [--size 1000000] [--reps 400] [--budget 8]`: one guild size
    only (its load, then every row above), a short run for the bench lock; `python -m bench
    --only leaderboard` runs the growth table."""
    import argparse
    import json
    import sys

    from .target import bench_database, server

    parser = argparse.ArgumentParser(prog="python -m bench.leaderboard", description=main.__doc__)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=400)
    parser.add_argument("--budget", type=float, default=8.0, help="seconds per interleaved measurement")
    args = parser.parse_args(argv)
    with server() as target, bench_database(target) as dsn:
        print(f"bench: PostgreSQL {target.version} ({target.source})", flush=True)
        board = {"members": args.size, "sizes": [_one_size(dsn, args.size, args.reps, args.budget, print)]}
    print("\n".join(markdown(board)))
    json.dump(board, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
