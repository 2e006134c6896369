"""The achievement sweep over a large guild (1M members by default, `--quick` 100k).

Members, balances, counters, approved emails and recent ledger entries are bulk-loaded with
generate_series. Five achievements (member for 365 days, top 100, email approved, 1,000 earned
within 7 days, balance of 900,000) are defined after the load, so the first sweep finds and pays
everyone who qualifies (one ledger entry, member_achievements row and DM each); a second sweep
is the steady state (only who crossed a line since). Each sweep runs as a series of simulated
Lambda invocations with the template's timeout, continuing from the saved cursor. Each sweep's
awards are checked against an independent count of who qualified as of its start.

    python -m bench.bench_sweep [--quick] [--members N] [--timeout-s 120]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from pointsbot.community import achievements
from pointsbot.delivery import tasks
from pointsbot.platform.config import load_settings
from pointsbot.platform.db import Database

GUILD = 740_000_000_000_000_001
BASE_USER = 750_000_000_000_000_000
RESULTS = Path(__file__).resolve().parent / "results"


def load(dsn: str, members: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute("INSERT INTO guilds (guild_id, name) VALUES (%s, 'sweep bench')", (GUILD,))
        conn.execute(
            "INSERT INTO members (guild_id, user_id, display_name, joined_at) "
            "SELECT %s, %s + i, 'Member ' || i, now() - random() * interval '400 days' "
            "FROM generate_series(1, %s) i",
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
            "SELECT guild_id, user_id, 1 + (random() * 50)::int, balance FROM points WHERE guild_id = %s",
            (GUILD,),
        )
        # 1% with an approved email.
        conn.execute(
            "INSERT INTO email_submissions (guild_id, user_id, email, status, reviewed_at) "
            "SELECT %s, %s + i, 'm' || i || '@example.org', 'approved', now() "
            "FROM generate_series(1, %s, 100) i",
            (GUILD, BASE_USER, members),
        )
        # 10% with ledger entries of the last 14 days (one operation each).
        conn.execute(
            "INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) "
            "SELECT %s, 'bench-' || i, '', 'award' FROM generate_series(1, %s, 10) i",
            (GUILD, members),
        )
        conn.execute(
            """
            INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, source, created_at)
            SELECT o.id, o.guild_id, %s + substr(o.idempotency_key, 7)::bigint, a.amount, 0, 'award', 'system',
                   now() - random() * interval '14 days'
            FROM operations o
            CROSS JOIN LATERAL (SELECT (random() * 1000)::bigint AS amount FROM generate_series(1, 2)) a
            WHERE o.guild_id = %s AND o.idempotency_key LIKE 'bench-%%'
            """,
            (BASE_USER, GUILD),
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM (ANALYZE) members, points, user_stats, transactions, email_submissions")
    return time.perf_counter() - started


DEFINITIONS = (
    {"name": "Veteran", "criterion": "member_days", "window_days": 365, "bonus_points": 10},
    {"name": "Top 100", "criterion": "top_k", "threshold": 100, "bonus_points": 50},
    {"name": "Verified", "criterion": "email_approved", "bonus_points": 5},
    {"name": "Hot week", "criterion": "earned_within_days", "threshold": 1000, "window_days": 7},
    {"name": "Rich", "criterion": "balance_at_least", "threshold": 900_000, "bonus_points": 1},
)


def expected_awards(dsn: str, as_of: datetime) -> int:
    """Who qualifies as of the sweep's start `as_of` (README, "Achievements": the leaderboard
    and the clock of that moment) and does not hold the achievement yet, counted by a plain
    query written apart from the sweep's, before any batch has run. Places by rank(), not by
    the sweep's cutoff balance."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            """
            WITH ranked AS (SELECT user_id, balance, rank() OVER (ORDER BY balance DESC) AS place
                            FROM points WHERE guild_id = %(g)s),
                 week AS (SELECT user_id, sum(amount) s FROM transactions
                          WHERE guild_id = %(g)s AND created_at >= %(t)s - interval '7 days' GROUP BY user_id),
                 qualifying (user_id, name) AS (
                    SELECT user_id, 'Veteran' FROM members
                    WHERE guild_id = %(g)s AND joined_at <= %(t)s - interval '365 days'
                    UNION ALL SELECT user_id, 'Top 100' FROM ranked WHERE balance > 0 AND place <= 100
                    UNION ALL SELECT DISTINCT user_id, 'Verified' FROM email_submissions
                    WHERE guild_id = %(g)s AND status = 'approved'
                    UNION ALL SELECT user_id, 'Hot week' FROM week WHERE s >= 1000
                    UNION ALL SELECT user_id, 'Rich' FROM ranked WHERE balance >= 900000)
            SELECT count(*) FROM qualifying q
            WHERE NOT EXISTS (SELECT 1 FROM member_achievements ma JOIN achievements a ON a.id = ma.achievement_id
                              WHERE ma.guild_id = %(g)s AND ma.user_id = q.user_id AND a.name = q.name)
            """,
            {"g": GUILD, "t": as_of},
        ).fetchone()[0]


def sweep_as_lambda(database: Database, timeout_s: float, settings) -> dict:
    """Invocations of the sweep function until the sweep is finished, each with `timeout_s`."""
    invocations: list[dict] = []
    started = time.perf_counter()
    while True:
        deadline = time.monotonic() + timeout_s
        report = achievements.run_sweep(
            database, settings=settings, time_left_s=lambda d=deadline: d - time.monotonic()
        )
        invocations.append(
            {"seconds": round(report.seconds, 2), "members": report.members_checked, "awards": report.awards}
        )
        if report.finished:
            break
    total = time.perf_counter() - started
    members = sum(i["members"] for i in invocations)
    return {
        "seconds": round(total, 1),
        "invocations": len(invocations),
        "longest_invocation_s": max(i["seconds"] for i in invocations),
        "members": members,
        "awards": sum(i["awards"] for i in invocations),
        "members_per_s": round(members / total) if total else None,
    }


class _Discard:
    def send(self, task, delay_seconds: int = 0) -> None:
        return None


def run(dsn: str, members: int, timeout_s: float = 120.0, batch: int = 1000) -> dict:
    print(f"  loading {members:,} members ...", flush=True)
    load_s = load(dsn, members)
    settings = load_settings({}).with_overrides(achievement_sweep_batch=batch)
    # The DMs the awards queue are not delivered here (bench_dms measures delivery).
    tasks.set_task_queue(_Discard())
    database = Database(dsn)
    try:
        for definition in DEFINITIONS:
            database.run(achievements.create_definition, GUILD, **definition)
        # Open the sweep (its snapshot taken) before counting, so the count and the sweep judge
        # by the same moment; the first invocation then continues it.
        _, as_of = database.run(achievements.start_sweep)
        expected = expected_awards(dsn, as_of)
        print(f"  first sweep ({expected:,} awards due) ...", flush=True)
        first = sweep_as_lambda(database, timeout_s, settings)
        print("  steady-state sweep ...", flush=True)
        _, steady_as_of = database.run(achievements.start_sweep)
        steady_expected = expected_awards(dsn, steady_as_of)
        second = sweep_as_lambda(database, timeout_s, settings)
        with psycopg.connect(dsn) as conn:
            paid_twice = conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM transactions WHERE kind = 'achievement' "
                "GROUP BY user_id, reason HAVING count(*) > 1) d"
            ).fetchone()[0]
    finally:
        database.close()
    return {
        "members": members,
        "batch": batch,
        "lambda_timeout_s": timeout_s,
        "load_seconds": round(load_s, 1),
        "expected_awards": expected,
        "steady_expected_awards": steady_expected,
        "first": first,
        "steady": second,
        "paid_twice": paid_twice,
    }


def markdown(report: dict) -> list[str]:
    first, steady = report["first"], report["steady"]
    return [
        f"## Achievement sweep over {report['members']:,} members (batches of {report['batch']:,})",
        "",
        f"Loaded in {report['load_seconds']} s. Each sweep runs as Lambda invocations of "
        f"{report['lambda_timeout_s']:g} s (the template's timeout), each stopping in time and the next "
        "continuing from the saved cursor.",
        "",
        "| sweep | members | awards | total s | members/s | invocations | longest invocation s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| first (5 new achievements) | {first['members']:,} | {first['awards']:,} | {first['seconds']} | "
        f"{first['members_per_s']:,} | {first['invocations']} | {first['longest_invocation_s']} |",
        f"| steady state (second sweep) | {steady['members']:,} | {steady['awards']:,} | {steady['seconds']} | "
        f"{steady['members_per_s']:,} | {steady['invocations']} | {steady['longest_invocation_s']} |",
        "",
        "Independent count of who qualifies as of each sweep's start (a separate query, places by "
        f"rank(), taken before the first batch): first sweep {report['expected_awards']:,} "
        f"(awards {first['awards']:,}, difference {first['awards'] - report['expected_awards']:+,}), "
        f"steady state {report['steady_expected_awards']:,} (awards {steady['awards']:,}, difference "
        f"{steady['awards'] - report['steady_expected_awards']:+,}); members paid twice for one "
        f"achievement: {report['paid_twice']}.",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    from .target import bench_database, server

    parser = argparse.ArgumentParser(prog="python -m bench.bench_sweep", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100,000 members")
    parser.add_argument("--members", type=int, help="members in the guild (default 1,000,000)")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="simulated Lambda timeout")
    parser.add_argument("--batch", type=int, default=1000, help="members per batch")
    parser.add_argument("--embedded", action="store_true", help="measure an embedded PostgreSQL 18")
    args = parser.parse_args(argv)
    members = args.members or (100_000 if args.quick else 1_000_000)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    with server(embedded=args.embedded) as target, bench_database(target) as dsn:
        print(f"bench_sweep: PostgreSQL {target.version} ({target.source})", flush=True)
        report = run(dsn, members, args.timeout_s, args.batch)
    report["server"] = {"version": target.version, "source": target.source}
    text = "\n".join(markdown(report)) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stamp}-sweep.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"{stamp}-sweep.md").write_text(text)
    print()
    print(text)
    print(f"written: bench/results/{stamp}-sweep.json and .md")
    exact = (
        report["first"]["awards"] == report["expected_awards"]
        and report["steady"]["awards"] == report["steady_expected_awards"]
    )
    return 0 if report["paid_twice"] == 0 and exact else 1


if __name__ == "__main__":
    sys.exit(main())
