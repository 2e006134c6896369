"""DM delivery through the worker to the Discord stand-in, which enforces Discord's limits
(global 50 requests per second per bot token, per-route buckets, 429 with retry_after).

10,000 DMs (`--quick`: 1,000) round-robin over 2,000 members whose DM channels are known (as
after their first DM, so each DM is one request), queued in the outbox, then delivered by
`--workers` concurrent simulated Lambda containers running functions/worker/app.py on
"deliver_dms" tasks (three tasks to start with, as several enqueuers would send). Measured
at the stand-in: requests per second against the allowed 50, and how many 429s were drawn.
By default it runs twice in the same run, each in a fresh database: the old setting (45/s)
and today's default of DM_RATE_PER_SECOND, side by side; `--rate R` runs R alone.

    python -m bench.bench_dms [--quick] [--dms N] [--members N] [--workers N] [--rate R]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

GUILD = 760_000_000_000_000_001
BASE_USER = 770_000_000_000_000_000
BASE_CHANNEL = 780_000_000_000_000_000
RESULTS = Path(__file__).resolve().parent / "results"
ALLOWED_PER_S = 50


def load(dsn: str, dms: int, members: int) -> None:
    """Members with known DM channels and `dms` queued DMs, round-robin over the members."""
    from pointsbot_local import discord_standin_rest

    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO guilds (guild_id, name) VALUES (%s, 'dm bench')", (GUILD,))
        conn.execute(
            "INSERT INTO members (guild_id, user_id) SELECT %s, %s + i FROM generate_series(1, %s) i",
            (GUILD, BASE_USER, members),
        )
        conn.execute(
            "INSERT INTO dm_channels (user_id, channel_id) SELECT %s + i, %s + i FROM generate_series(1, %s) i",
            (BASE_USER, BASE_CHANNEL, members),
        )
        conn.execute(
            "INSERT INTO direct_messages (guild_id, user_id, content, reason) "
            "SELECT %s, %s + 1 + (i %% %s), 'Bench DM ' || i, 'admin' FROM generate_series(0, %s - 1) i",
            (GUILD, BASE_USER, members, dms),
        )
    with discord_standin_rest.standin.lock:
        for i in range(1, members + 1):
            user, channel = str(BASE_USER + i), str(BASE_CHANNEL + i)
            discord_standin_rest.state.dm_channels[user] = channel
            discord_standin_rest.state.channel_recipients[channel] = user


class BenchQueue:
    """SQS stand-in for the bench: tasks wait here until a simulated container takes one."""

    def __init__(self) -> None:
        self.items: queue.Queue[str] = queue.Queue()
        self.sent = 0

    def send(self, task, delay_seconds: int = 0) -> None:
        # Delays (retries scheduled later) are not waited for: the bench ends when all is sent.
        self.sent += 1
        self.items.put(task.to_json())


def run(dsn: str, dms: int, members: int, workers: int, rate: int | None) -> dict:
    from pointsbot.delivery import tasks
    from pointsbot.discord.rest import set_client
    from pointsbot.platform import config, runtime
    from pointsbot.platform.db import Database
    from pointsbot.platform.observability import logger
    from pointsbot_local import discord_standin_rest, handlers
    from pointsbot_local.apigw import LambdaContext
    from pointsbot_local.discord_standin import PREFIX, standin
    from pointsbot_local.server import LocalServer, mount

    logger.setLevel("WARNING")  # one line per delivery round is too much for 10,000 DMs
    mount("/discord-api", standin)
    server = LocalServer("127.0.0.1", 0).start()
    discord_standin_rest.reset()
    os.environ["DISCORD_API_BASE_URL"] = server.url + PREFIX
    os.environ["DISCORD_BOT_TOKEN"] = "bench-token"  # noqa: S105 - the stand-in takes any token
    if rate is not None:
        os.environ["DM_RATE_PER_SECOND"] = str(rate)
    else:
        os.environ.pop("DM_RATE_PER_SECOND", None)
    config.reset_settings()
    set_client(None)
    database = Database(dsn, pooled=True, pool_max=workers + 4)
    runtime.set_database(database)
    bench_queue = BenchQueue()
    tasks.set_task_queue(bench_queue)
    print(f"  queueing {dms:,} DMs to {members:,} members ...", flush=True)
    load(dsn, dms, members)
    worker = handlers.load("worker")

    def remaining() -> int:
        return database.fetchone(
            "SELECT count(*) FROM direct_messages WHERE status IN ('queued', 'sending')"
        )[0]

    invocations = [0]
    lock = threading.Lock()

    def container() -> None:
        while True:
            try:
                body = bench_queue.items.get(timeout=1.0)
            except queue.Empty:
                if remaining() == 0:
                    return
                # Retries scheduled for later (SQS DelaySeconds): ask again, as the keep-alive would.
                bench_queue.send(tasks.Task("deliver_dms", {}))
                continue
            event = {"Records": [{"messageId": f"m{time.time_ns()}", "receiptHandle": "r", "body": body,
                                  "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
                                  "eventSourceARN": "arn:aws:sqs:local:0:bench", "awsRegion": "local"}]}  # fmt: skip
            with lock:
                invocations[0] += 1
            worker(event, LambdaContext("worker", timeout_s=60))

    print(f"  delivering with {workers} workers ...", flush=True)
    for _ in range(3):
        bench_queue.send(tasks.Task("deliver_dms", {}))
    started = time.perf_counter()
    threads = [threading.Thread(target=container) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    exchanges = [
        e for e in standin.sent() if e.route.startswith("/channels/") or e.route.startswith("/users/")
    ]
    statuses: dict[int, int] = {}
    for e in exchanges:
        statuses[e.status] = statuses.get(e.status, 0) + 1
    ok = [e for e in exchanges if e.status == 200]
    span = (max(e.at for e in ok) - min(e.at for e in ok)) if len(ok) > 1 else 0.0
    # Requests in the busiest fixed one-second window, as the stand-in counts them.
    windows: dict[int, int] = {}
    first = min(e.at for e in exchanges) if exchanges else 0.0
    for e in exchanges:
        windows[int(e.at - first)] = windows.get(int(e.at - first), 0) + 1
    sent_rows = database.fetchone("SELECT count(*) FROM direct_messages WHERE status = 'sent'")[0]
    delivered = sum(len(m) for m in discord_standin_rest.state.messages.values())
    configured = config.get_settings().dm_rate_per_second
    database.close()
    server.stop()
    achieved = (len(ok) - 1) / span if span else 0.0
    return {
        "dms": dms,
        "members": members,
        "workers": workers,
        "dm_rate_per_second": configured,
        "wall_seconds": round(wall, 1),
        "requests": len(exchanges),
        "requests_ok": len(ok),
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        "rate_limited_429": statuses.get(429, 0),
        "ratio_429": round(statuses.get(429, 0) / len(exchanges), 4) if exchanges else 0.0,
        "achieved_requests_per_s": round(achieved, 2),
        "ratio_to_allowed": round(achieved / ALLOWED_PER_S, 3),
        "ratio_to_configured": round(achieved / configured, 3),
        "busiest_second": max(windows.values()) if windows else 0,
        "dms_sent_rows": sent_rows,
        "messages_at_standin": delivered,
        "worker_invocations": invocations[0],
        "tasks_sent": bench_queue.sent,
    }


def markdown(report: dict) -> list[str]:
    return markdown_compare([report])


OLD_RATE = 45  # the setting before issue 16: a tenth of the global limit left unused


def markdown_compare(reports: list[dict]) -> list[str]:
    first = reports[0]
    lines = [
        f"## DM delivery: {first['dms']:,} DMs through the worker to the stand-in (50 requests/s allowed)",
        "",
        f"{first['workers']} concurrent workers sharing the database pacer; {first['members']:,} members with "
        "known DM channels (one request per DM). Each row its own fresh database, same run.",
        "",
        "| DM_RATE_PER_SECOND | DMs | wall s | requests | achieved req/s | achieved / 50 | of configured "
        "| 429s | 429 / requests | busiest 1 s window |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in reports:
        lines.append(
            f"| {r['dm_rate_per_second']} | {r['dms']:,} | {r['wall_seconds']} | {r['requests']:,} | "
            f"{r['achieved_requests_per_s']} | {r['ratio_to_allowed']:.3f} | {r['ratio_to_configured']:.3f} | "
            f"{r['rate_limited_429']} | {r.get('ratio_429', 0):.2%} | {r['busiest_second']} |"
        )
    lines.append("")
    for r in reports:
        lines.append(
            f"At {r['dm_rate_per_second']}/s: sent rows {r['dms_sent_rows']:,}, messages the stand-in holds "
            f"{r['messages_at_standin']:,} (each DM exactly once); worker invocations {r['worker_invocations']}, "
            f"delivery tasks sent {r['tasks_sent']}."
        )
    lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "PointsBotBench")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from .target import bench_database, server

    parser = argparse.ArgumentParser(prog="python -m bench.bench_dms", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 DMs over 200 members")
    parser.add_argument("--dms", type=int, help="DMs to deliver (default 10,000)")
    parser.add_argument("--members", type=int, help="members they go to (default 2,000)")
    parser.add_argument("--workers", type=int, default=3, help="concurrent worker containers (default 3)")
    parser.add_argument(
        "--rate", type=int, help="DM_RATE_PER_SECOND alone (default: the old 45 and today's default)"
    )
    parser.add_argument("--embedded", action="store_true", help="measure an embedded PostgreSQL 18")
    args = parser.parse_args(argv)
    dms = args.dms or (1_000 if args.quick else 10_000)
    members = args.members or (200 if args.quick else 2_000)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    from pointsbot.platform.config import load_settings

    rates = [args.rate] if args.rate else [OLD_RATE, load_settings({}).dm_rate_per_second]
    reports = []
    with server(embedded=args.embedded) as target:
        print(f"bench_dms: PostgreSQL {target.version} ({target.source})", flush=True)
        for rate in rates:
            print(f"DM_RATE_PER_SECOND={rate}:", flush=True)
            with bench_database(target) as dsn:
                reports.append(run(dsn, dms, members, args.workers, rate))
    report = {"runs": reports}
    text = "\n".join(markdown_compare(reports)) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stamp}-dms.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"{stamp}-dms.md").write_text(text)
    print()
    print(text)
    print(f"written: bench/results/{stamp}-dms.json and .md")
    return 0 if all(r["messages_at_standin"] == r["dms"] == r["dms_sent_rows"] for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
