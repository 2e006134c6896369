"""`python -m bench` (what `make bench` runs): ledger throughput and leaderboard latency.

Writes bench/results/<timestamp>.json and .md and prints the table. `--quick` for a short run.
The numbers are indicative: a shared machine, one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from . import (
    bench_admin,
    bench_api,
    bench_dms,
    bench_interactions,
    bench_pooler,
    bench_store,
    bench_sweep,
    leaderboard,
    ledger_ops,
)
from .target import bench_database, server

RESULTS = Path(__file__).resolve().parent / "results"


def _markdown(report: dict) -> str:
    lines = [
        f"# Benchmark {report['started']}",
        "",
        f"Server: PostgreSQL {report['server']['version']} ({report['server']['source']}); "
        f"client machine: {report['machine']}.",
        "",
    ]
    ops = report.get("ledger_ops")
    if ops:
        lines += [
            f"## Ledger writes per second ({ops['seconds_per_level']:g} s per level, {ops['members']:,} members)",
            "",
            "Ours: `points.award` (silent) through `Database.run`, each client a separate process with "
            "its own connection. pgbench, in turns with ours: the statements our code sends for that "
            "award, rendered from the code's own SQL, and the minimal shape of a ledger write "
            f"(INSERT operation, UPDATE balance, INSERT entry) ({ops['pgbench_version'] or 'not found'}, "
            f"`-M prepared`). Medians of {ops.get('reps', 1)} rounds; each ratio is taken within a round.",
            "",
            "| clients | ours ops/s | ours p50 ms | ours p99 ms | ours client CPU ms/op | pgbench (same) tps | "
            "pgbench client CPU ms/op | minimal shape tps | ours / pgbench (same) | ours / minimal |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in ops["levels"]:
            lines.append(
                f"| {row['clients']} | {row['ours_ops_per_s']:,.0f} | {row['ours_p50_ms']:.1f} | "
                f"{row['ours_p99_ms']:.1f} | {row['ours_client_cpu_ms_per_op']:.2f} | "
                + (
                    f"{row['pgbench_tps']:,.0f} | {row['pgbench_client_cpu_ms_per_op']:.2f} | "
                    f"{row['minimal_tps']:,.0f} | {row['ratio_ours_to_pgbench']:.2f} | "
                    f"{row['ratio_ours_to_minimal']:.2f} |"
                    if row["pgbench_tps"]
                    else "- | - | - | - | - |"
                )
            )
        dm = ops.get("with_dm")
        if dm:
            lines += [
                "",
                f"Ours with the points DM queued (not silent, as an admin's award): {dm['clients']} clients, "
                f"{dm['ops_per_s']:,.0f} ops/s, p50 {dm['p50_ms']:.1f} ms, p99 {dm['p99_ms']:.1f} ms.",
            ]
        lines += [
            "",
            f"Errors: ours {sum(r['ours_errors'] for r in ops['levels'])}, pgbench "
            f"{sum(r['pgbench_failed'] or 0 for r in ops['levels'])}. Members whose balance is not "
            f"the sum of their entries afterwards: {ops['invariant_violations_after']}.",
            "",
        ]
    if report.get("leaderboard"):
        lines += leaderboard.markdown(report["leaderboard"])
    if report.get("dms"):
        lines += bench_dms.markdown(report["dms"])
    if report.get("sweep"):
        lines += bench_sweep.markdown(report["sweep"])
    if report.get("interactions"):
        lines += bench_interactions.markdown(report["interactions"])
    if report.get("pooler"):
        lines += bench_pooler.markdown(report["pooler"])
    if report.get("store"):
        lines += bench_store.markdown(report["store"])
    if report.get("api"):
        lines += bench_api.markdown(report["api"])
    if report.get("admin"):
        lines += [*bench_admin.markdown(report["admin"]).splitlines(), ""]
    lines.append(f"Total run time: {report['seconds']:.0f} s.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short run: 3 s per level, 100k members")
    parser.add_argument("--seconds", type=float, help="seconds per concurrency level (default 8)")
    parser.add_argument("--clients", default="1,8,32", help="concurrency levels (default 1,8,32)")
    parser.add_argument("--ledger-members", type=int, default=1000, help="members the writes spread over")
    parser.add_argument("--members", type=int, help="members in the leaderboard guild (default 1,000,000)")
    parser.add_argument("--reps", type=int, default=200, help="samples per latency measurement")
    parser.add_argument(
        "--only",
        choices=["ledger", "leaderboard", "dms", "sweep", "interactions", "admin", "pooler", "store", "api"],
        help="run one benchmark",
    )
    parser.add_argument("--embedded", action="store_true", help="measure an embedded PostgreSQL 18")
    parser.add_argument("--keep-db", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args(argv)
    seconds = args.seconds or (3.0 if args.quick else 8.0)
    members = args.members or (100_000 if args.quick else 1_000_000)
    levels = [int(c) for c in args.clients.split(",") if c.strip()]

    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report: dict = {
        "started": stamp,
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs, Python {platform.python_version()}",
    }
    with server(embedded=args.embedded) as target:
        print(f"bench: PostgreSQL {target.version} ({target.source})", flush=True)
        report["server"] = {"version": target.version, "source": target.source}
        with bench_database(target, keep=args.keep_db) as dsn:
            if args.only in (None, "ledger"):
                print("ledger writes:", flush=True)
                report["ledger_ops"] = ledger_ops.run(
                    dsn, levels, seconds, args.ledger_members, reps=1 if args.quick else 3
                )
            if args.only in (None, "leaderboard"):
                print(f"leaderboard ({members:,} members):", flush=True)
                report["leaderboard"] = leaderboard.run(
                    dsn, members, args.reps, budget_s=6.0 if args.quick else 12.0
                )
        # DMs and the sweep in databases of their own: delivery takes every queued DM there is.
        if args.only in (None, "dms"):
            print("DM delivery:", flush=True)
            with bench_database(target) as dms_dsn:
                report["dms"] = bench_dms.run(
                    dms_dsn,
                    1_000 if args.quick else 10_000,
                    200 if args.quick else 2_000,
                    workers=3,
                    rate=None,
                )
        if args.only in (None, "sweep"):
            print(f"achievement sweep ({members:,} members):", flush=True)
            with bench_database(target) as sweep_dsn:
                report["sweep"] = bench_sweep.run(sweep_dsn, members)
        if args.only in (None, "interactions"):
            guild_size = 20_000 if args.quick else 100_000
            print(f"interactions function ({guild_size:,} members):", flush=True)
            with bench_database(target) as interactions_dsn:
                report["interactions"] = bench_interactions.run(
                    interactions_dsn, guild_size, args.reps, cold_runs=5 if args.quick else 15
                )
        if args.only in (None, "pooler"):
            print("through PgBouncer (500 containers, 20 server connections):", flush=True)
            with bench_database(target) as pooler_dsn:
                report["pooler"] = bench_pooler.run(pooler_dsn, target.admin_dsn, seconds=seconds)
        if args.only in (None, "store"):
            print("reward store (100,000 members):", flush=True)
            with bench_database(target) as store_dsn:
                report["store"] = bench_store.run(store_dsn, 100_000, 100 if args.quick else 400, 8,
                                                  3.0 if args.quick else 6.0)  # fmt: skip
        if args.only in (None, "api"):
            print("integration API and webhooks (100,000 members):", flush=True)
            with bench_database(target) as api_dsn:
                report["api"] = bench_api.run(
                    api_dsn, 100_000, 100 if args.quick else 500, 300 if args.quick else 2000
                )
        if args.only in (None, "admin"):
            entries = 1_000_000 if args.quick else 10_000_000
            print(f"admin site ({members:,} members, {entries:,} ledger entries):", flush=True)
            with bench_database(target) as admin_dsn:
                report["admin"] = bench_admin.run(admin_dsn, members, entries, args.reps,
                                                  budget_s=6.0 if args.quick else 12.0)  # fmt: skip
    report["seconds"] = time.perf_counter() - started
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stamp}.json").write_text(json.dumps(report, indent=2))
    text = _markdown(report)
    (RESULTS / f"{stamp}.md").write_text(text)
    print()
    print(text)
    print(f"written: bench/results/{stamp}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
