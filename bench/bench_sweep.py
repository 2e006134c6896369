"""The achievement sweep over a large guild (1M members by default, `--quick` 100k).

Members, balances, counters, approved emails and recent ledger entries are bulk-loaded with
generate_series. Five achievements (member for 365 days, top 100, email approved, 1,000 earned
within 7 days, balance of 900,000) are defined after the load, so the first sweep finds and pays
everyone who qualifies (one ledger entry, member_achievements row and DM each); a second sweep
is the steady state (only who crossed a line since). Each sweep runs as a series of simulated
Lambda invocations with the template's timeout, continuing from the saved cursor. Each sweep's
awards are checked against an independent count of who qualified as of its start.

    python -m bench.bench_sweep [--quick] [--members N] [--timeout-s 120] [--reference] [--before]

`--before` also runs the first sweep on a fresh load with the ledger's write path as it was
before sql/061-062 (bench/before_write_path.py: the window and webhook triggers once per entry,
sql/036's bucket functions), in the same run, and reports the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench import before_write_path
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


class _Killed(Exception):
    pass


def _dies_at(batch: int):
    """grant_many that dies once, in the middle of its `batch`-th call (its grants written,
    the batch's transaction not committed): a sweep killed where it hurts most."""
    real = achievements.grant_many
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        granted = real(*args, **kwargs)
        if calls["n"] == batch:
            raise _Killed
        return granted

    return dying


def _one_by_one(conn, due, *, policies, settings):
    """The reference: each pair granted by grant(), one after the other (before grant_many)."""
    granted = []
    for guild_id, user_id, achievement_id, name, bonus in due:
        policy, guild_name = policies[guild_id]
        got = achievements.grant(
            conn, guild_id, user_id, achievement_id, name, bonus,
            policy=policy, settings=settings, guild_name=guild_name,
        )  # fmt: skip
        if got is not None:
            granted.append(got)
    return granted


def sweep_as_lambda(database: Database, timeout_s: float, settings, kill_at_batch: int = 0) -> dict:
    """Invocations of the sweep function until the sweep is finished, each with `timeout_s`.
    With `kill_at_batch`, the invocation running that batch dies in its middle (the next one
    continues from the saved cursor)."""
    invocations: list[dict] = []
    started = time.perf_counter()
    real = achievements.grant_many
    if kill_at_batch:
        achievements.grant_many = _dies_at(kill_at_batch)
    killed = 0
    held_before = _held(database)
    cpu_before = _server_cpu(database)
    load_before = os.getloadavg()[0]
    while True:
        deadline = time.monotonic() + timeout_s
        try:
            report = achievements.run_sweep(
                database, settings=settings, time_left_s=lambda d=deadline: d - time.monotonic()
            )
        except _Killed:
            killed += 1
            achievements.grant_many = real
            invocations.append({"seconds": 0.0, "members": 0, "awards": 0, "killed": True})
            continue
        invocations.append(
            {"seconds": round(report.seconds, 2), "members": report.members_checked, "awards": report.awards}
        )
        if report.finished:
            break
    achievements.grant_many = real
    total = time.perf_counter() - started
    cpu_after = _server_cpu(database)
    server_cpu = sum(cpu - cpu_before.get(pid, 0.0) for pid, cpu in cpu_after.items())
    # From the sweep's own row and the rows granted: a killed invocation reports nothing, but
    # the batches it committed before dying count.
    members = database.run(lambda conn: conn.execute(
        "SELECT members_checked FROM achievement_sweeps WHERE id = %s", (report.sweep_id,)).fetchone()[0])  # fmt: skip
    return {
        "seconds": round(total, 1),
        "invocations": len(invocations),
        "longest_invocation_s": max(i["seconds"] for i in invocations),
        "members": members,
        "awards": _held(database) - held_before,
        "members_per_s": round(members / total) if total else None,
        "killed": killed,
        # The CPU of the database's server processes (those alive at the end; from /proc, when the
        # server runs on this machine): on a shared machine the wall is mostly the others' load.
        "server_cpu_s": round(server_cpu, 1) if cpu_after else None,
        "load_average_before_after": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }


_GRANT_MANY = achievements.grant_many


def _server_cpu(database: Database) -> dict[int, float]:
    """CPU seconds (user + system) so far of each server process of this database, by pid."""
    pids = database.run(lambda conn: [r[0] for r in conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()").fetchall()])  # fmt: skip
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _held(database: Database) -> int:
    return database.run(lambda conn: conn.execute("SELECT count(*) FROM member_achievements").fetchone()[0])


class _Discard:
    def send(self, task, delay_seconds: int = 0) -> None:
        return None


def run(
    dsn: str,
    members: int,
    timeout_s: float = 120.0,
    batch: int = 5000,
    kill_at_batch: int = 0,
    reference: bool = False,
    before: bool = False,
) -> dict:
    """The first and the steady-state sweep (`reference`: the first only, granting one by one;
    `before`: the first only, with the write path as before sql/061-062)."""
    if before:
        with psycopg.connect(dsn, autocommit=True) as conn:
            before_write_path.restore(conn)
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
        if reference:
            achievements.grant_many = _one_by_one
        try:
            first = sweep_as_lambda(
                database, timeout_s, settings, 0 if reference or before else kill_at_batch
            )
        finally:
            achievements.grant_many = _GRANT_MANY
        if reference or before:
            return {
                "members": members,
                "expected_awards": expected,
                "first": first,
                "load_seconds": round(load_s, 1),
            }
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


def _reference_lines(report: dict) -> list[str]:
    first, ref = report["first"], report.get("reference")
    lines = [
        f"First sweep {first['seconds']} s = {first['seconds'] / 60:.2f}x the goal of 60 s"
        + (f"; killed once in the middle of batch {report['kill_at_batch']} and continued by the next "
           "invocation" if first.get("killed") else "")
        + ".",
        "",
    ]  # fmt: skip
    if ref:
        lines += [
            f"Reference in the same run (a fresh load of the same size, the first sweep granting each pair "
            f"one by one with grant(), as before grant_many): {ref['first']['seconds']} s for "
            f"{ref['first']['awards']:,} awards (independent count {ref['expected_awards']:,}); "
            f"grant_many / one by one = {first['seconds'] / ref['first']['seconds']:.2f}x the time.",
            "",
        ]
    old = report.get("before")
    if old:
        lines += [
            f"Before sql/061-062 in the same run (a fresh load of the same size, the window and webhook "
            f"triggers once per entry, sql/036's bucket functions): {old['first']['seconds']} s for "
            f"{old['first']['awards']:,} awards (independent count {old['expected_awards']:,}); "
            f"now / before = {first['seconds'] / old['first']['seconds']:.2f}x the time (server CPU "
            f"{first.get('server_cpu_s')} s against {old['first'].get('server_cpu_s')} s; load average "
            f"{old['first'].get('load_average_before_after')}).",
            "",
        ]
    return lines


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
        f"Server CPU (its processes of the bench's database): first sweep {first.get('server_cpu_s')} s, "
        f"steady state {steady.get('server_cpu_s')} s; load average before/after: first "
        f"{first.get('load_average_before_after')}, steady {steady.get('load_average_before_after')}.",
        "",
        *_reference_lines(report),
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
    parser.add_argument("--batch", type=int, default=5000, help="members per batch (the template's 5,000)")
    parser.add_argument("--embedded", action="store_true", help="measure an embedded PostgreSQL 18")
    parser.add_argument(
        "--kill-at-batch",
        type=int,
        help="the first sweep dies in this batch (0: never; default: 30%% of the way, batch 60 of 200 at 1M)",
    )
    parser.add_argument("--reference", action="store_true", help="also the first sweep granting one by one")
    parser.add_argument(
        "--before", action="store_true", help="also the first sweep with the write path before sql/061-062"
    )
    args = parser.parse_args(argv)
    members = args.members or (100_000 if args.quick else 1_000_000)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    with server(embedded=args.embedded) as target, bench_database(target) as dsn:
        print(f"bench_sweep: PostgreSQL {target.version} ({target.source})", flush=True)
        kill_at = (
            args.kill_at_batch
            if args.kill_at_batch is not None
            else max(1, (3 * members) // (10 * args.batch))
        )
        report = run(dsn, members, args.timeout_s, args.batch, kill_at)
        report["kill_at_batch"] = kill_at
    if args.reference:
        with server(embedded=args.embedded) as target, bench_database(target) as dsn:
            print("  reference: a fresh load, the first sweep granting one by one ...", flush=True)
            report["reference"] = run(dsn, members, args.timeout_s, args.batch, reference=True)
    if args.before:
        with server(embedded=args.embedded) as target, bench_database(target) as dsn:
            print("  before: a fresh load, the write path as before sql/061-062 ...", flush=True)
            report["before"] = run(dsn, members, args.timeout_s, args.batch, before=True)
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
        and (
            "reference" not in report
            or report["reference"]["first"]["awards"] == report["reference"]["expected_awards"]
        )
        and (
            "before" not in report
            or report["before"]["first"]["awards"] == report["before"]["expected_awards"]
        )
        and report["steady"]["awards"] == report["steady_expected_awards"]
    )
    return 0 if report["paid_twice"] == 0 and exact else 1


if __name__ == "__main__":
    sys.exit(main())
