"""The interactions function in-process, as a Lambda container runs it: one connection with the
inline budget, signed API Gateway events through functions/interactions/app.py (verification,
logging and metrics included), on a guild of 100,000 members (`--quick`: 20,000).

Measures p50/p99 of PING, /balance, /leaderboard (a random page) and /points add, and the cold
start: importing and initialising the function (first PING answered) in a fresh Python process,
beside a bare handler that only imports PyNaCl and verifies, as a ratio.

    python -m bench.bench_interactions [--quick] [--members N] [--reps N] [--cold N] [--cold-only]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
GUILD = "790000000000000001"
BASE_USER = 791_000_000_000_000_000
ADMIN = "792000000000000001"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def load(dsn: str, members: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("INSERT INTO guilds (guild_id, name) VALUES (%s, 'interactions bench')", (int(GUILD),))
        conn.execute(
            "INSERT INTO members (guild_id, user_id, username, display_name) "
            "SELECT %s, %s + i, 'user' || i, 'Member ' || i FROM generate_series(1, %s) i",
            (int(GUILD), BASE_USER, members),
        )
        conn.execute(
            "INSERT INTO points (guild_id, user_id, balance) SELECT %s, %s + i, "
            "CASE WHEN random() < 0.4 THEN 0 ELSE floor(power(random(), 3) * 1000000)::bigint END "
            "FROM generate_series(1, %s) i",
            (int(GUILD), BASE_USER, members),
        )
        conn.execute(
            "INSERT INTO user_stats (guild_id, user_id) SELECT guild_id, user_id FROM points WHERE guild_id = %s",
            (int(GUILD),),
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM (ANALYZE) members, points, user_stats")
    return time.perf_counter() - started


class CountingQueue:
    """Where deferrals and DM delivery requests go during the bench (counted, not run)."""

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}

    def send(self, task, delay_seconds: int = 0) -> None:
        self.sent[task.kind] = self.sent.get(task.kind, 0) + 1


def _measure(
    handler: Callable, make_event: Callable[[], dict], reps: int, expect: Callable[[dict], bool]
) -> dict:
    from pointsbot_local.apigw import LambdaContext

    samples, failures = [], 0
    for index in range(reps + 5):
        event = make_event()  # signing is Discord's work: outside the timer
        context = LambdaContext("interactions")
        started = time.perf_counter()
        result = handler(event, context)
        elapsed = (time.perf_counter() - started) * 1000
        if index >= 5:  # the first few warm the connection and the prepared statements
            samples.append(elapsed)
        if result["statusCode"] != 200 or not expect(json.loads(result["body"])):
            failures += 1
    return {"n": len(samples), "p50_ms": percentile(samples, 50), "p99_ms": percentile(samples, 99),
            "mean_ms": statistics.fmean(samples), "failures": failures}  # fmt: skip


def run_warm(dsn: str, members: int, reps: int) -> dict:
    from nacl.signing import SigningKey

    from pointsbot.commands import endpoint
    from pointsbot.delivery import tasks
    from pointsbot.platform import runtime
    from pointsbot.platform.config import reset_settings
    from pointsbot_local import handlers
    from pointsbot_local.apigw import to_event
    from pointsbot_local.keys import KeyPair
    from pointsbot_local.simulate import command_payload, signed, snowflake

    key = SigningKey.generate()
    keys = KeyPair(key.encode().hex(), key.verify_key.encode().hex())
    os.environ.update(DATABASE_URL=dsn, DISCORD_PUBLIC_KEY=keys.public_hex, POWERTOOLS_TRACE_DISABLED="true",
                      POWERTOOLS_METRICS_NAMESPACE="PointsBotBench")  # fmt: skip
    reset_settings()
    endpoint.reset()
    runtime.reset()
    queue = CountingQueue()
    tasks.set_task_queue(queue)
    handler = handlers.load("interactions")
    from pointsbot.platform.observability import logger

    logger.setLevel("WARNING")  # Lambda would ship an INFO line per request; not measured here

    def event(payload: dict) -> dict:
        body, headers = signed(payload, keys)
        return to_event("POST", "/interactions", headers, body)

    def member() -> str:
        return str(BASE_USER + random.randint(1, members))

    def ping() -> dict:
        return event(
            {"id": snowflake(), "application_id": "100000000000000001", "type": 1, "token": "t", "version": 1}
        )

    def balance() -> dict:
        return event(command_payload("balance", user_id=member(), guild_id=GUILD))

    def leaderboard_top() -> dict:
        return event(command_payload("leaderboard", user_id=member(), guild_id=GUILD))

    def leaderboard() -> dict:
        page = random.randint(1, max(1, members // 10))
        return event(command_payload("leaderboard", {"page": page}, user_id=member(), guild_id=GUILD))

    def points_add() -> dict:
        options = {"member": member(), "amount": random.randint(1, 100), "reason": "bench"}
        return event(command_payload("points add", options, user_id=ADMIN, admin=True, guild_id=GUILD))

    def message(answer: dict) -> bool:
        return answer.get("type") == 4 and "Only admins" not in answer["data"]["content"]

    results = {}
    with contextlib.redirect_stdout(io.StringIO()):  # the JSON logs and metrics Lambda would ship
        results["PING"] = _measure(handler, ping, reps, lambda a: a == {"type": 1})
        results["/balance"] = _measure(handler, balance, reps, message)
        results["/leaderboard (page 1)"] = _measure(handler, leaderboard_top, reps, message)
        results["/leaderboard (random page)"] = _measure(handler, leaderboard, reps, message)
        results["/points add"] = _measure(
            handler, points_add, reps, lambda a: "Added" in a["data"]["content"]
        )
    tasks.set_task_queue(None)
    endpoint.reset()
    results["_tasks_sent"] = queue.sent
    return results


_COLD_APP = """
import time, json
started = time.perf_counter()
import importlib.util
spec = importlib.util.spec_from_file_location("app", {app!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
imported = time.perf_counter()
from pointsbot_local.apigw import LambdaContext, to_event
event = to_event("POST", "/interactions", {headers!r}, {body!r})
import contextlib, io
with contextlib.redirect_stdout(io.StringIO()):
    result = module.lambda_handler(event, LambdaContext("interactions"))
assert result["statusCode"] == 200, result
done = time.perf_counter()
print(json.dumps({{"import_ms": (imported - started) * 1000, "first_ping_ms": (done - started) * 1000}}))
"""

_COLD_BARE = """
import time, json
started = time.perf_counter()
from nacl.signing import VerifyKey
key = VerifyKey(bytes.fromhex({public!r}))
imported = time.perf_counter()
key.verify({stamp!r}.encode() + {body!r}, bytes.fromhex({signature!r}))
answer = json.dumps({{"type": 1}})
done = time.perf_counter()
print(json.dumps({{"import_ms": (imported - started) * 1000, "first_ping_ms": (done - started) * 1000}}))
"""


def _fresh(script: str, env: dict[str, str]) -> tuple[dict, float]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, cwd=ROOT
    )
    wall = (time.perf_counter() - started) * 1000
    return json.loads(out.stdout.strip().splitlines()[-1]), wall


def run_cold(runs: int) -> dict:
    from nacl.signing import SigningKey

    from pointsbot_local.keys import KeyPair
    from pointsbot_local.simulate import signed, snowflake

    key = SigningKey.generate()
    keys = KeyPair(key.encode().hex(), key.verify_key.encode().hex())
    body, headers = signed(
        {"id": snowflake(), "application_id": "1", "type": 1, "token": "t", "version": 1}, keys
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "AWS_LAMBDA"))}
    env.update(DISCORD_PUBLIC_KEY=keys.public_hex, POWERTOOLS_TRACE_DISABLED="true")
    app = str(ROOT / "functions" / "interactions" / "app.py")
    scripts = {
        "interactions function": _COLD_APP.format(app=app, headers=headers, body=body),
        "bare PyNaCl handler": _COLD_BARE.format(public=keys.public_hex, stamp=headers["x-signature-timestamp"],
                                                 body=body, signature=headers["x-signature-ed25519"]),
    }  # fmt: skip
    results: dict[str, dict] = {}
    for name, script in scripts.items():
        rows = [_fresh(script, env) for _ in range(runs)]
        results[name] = {
            "runs": runs,
            "import_ms_median": statistics.median(r[0]["import_ms"] for r in rows),
            "first_ping_ms_median": statistics.median(r[0]["first_ping_ms"] for r in rows),
            "process_wall_ms_median": statistics.median(r[1] for r in rows),
        }
    ours, bare = results["interactions function"], results["bare PyNaCl handler"]
    results["ratio"] = {
        "import_and_first_ping": ours["first_ping_ms_median"] / bare["first_ping_ms_median"],
        "whole_process": ours["process_wall_ms_median"] / bare["process_wall_ms_median"],
    }
    return results


def run(dsn: str, members: int, reps: int, cold_runs: int) -> dict:
    """The whole benchmark on a migrated, empty database (what `python -m bench` calls)."""
    result: dict = {"members": members, "load_s": load(dsn, members)}
    print("  warm requests ...", flush=True)
    result["warm"] = run_warm(dsn, members, reps)
    print("  cold starts ...", flush=True)
    result["cold"] = run_cold(cold_runs)
    return result


def markdown(result: dict) -> list[str]:
    """The report's section, as lines."""
    lines = [f"## The interactions function ({result['members']:,} members in one guild, loaded in "
             f"{result['load_s']:.1f} s)", "",
             "In-process, warm container: signed events through functions/interactions/app.py, one "
             "connection with the inline budget.", "",
             "| request | n | p50 ms | p99 ms | mean ms | failures |", "| --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for name, row in result["warm"].items():
        if not name.startswith("_"):
            lines.append(f"| {name} | {row['n']} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['mean_ms']:.2f} | "
                         f"{row['failures']} |")  # fmt: skip
    lines += ["", f"Tasks queued meanwhile: {result['warm']['_tasks_sent']}.", "",
              "Cold start (fresh Python process, medians):", "",
              "| handler | import+init ms | first PING answered ms | whole process ms |",
              "| --- | ---: | ---: | ---: |"]  # fmt: skip
    for name in ("interactions function", "bare PyNaCl handler"):
        row = result["cold"][name]
        lines.append(f"| {name} | {row['import_ms_median']:.0f} | {row['first_ping_ms_median']:.0f} | "
                     f"{row['process_wall_ms_median']:.0f} |")  # fmt: skip
    ratio = result["cold"]["ratio"]
    lines += ["", f"Ratio ours / bare: {ratio['import_and_first_ping']:.1f}x for import and first PING, "
              f"{ratio['whole_process']:.2f}x for the whole process (interpreter start included).", ""]  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> int:
    import platform

    from .target import bench_database, server

    parser = argparse.ArgumentParser(prog="python -m bench.bench_interactions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="20,000 members, 200 samples, 5 cold starts")
    parser.add_argument("--members", type=int)
    parser.add_argument("--reps", type=int)
    parser.add_argument("--cold", type=int, help="fresh processes per cold-start measurement")
    parser.add_argument("--embedded", action="store_true")
    parser.add_argument("--cold-only", action="store_true", help="only the cold-start measurement")
    args = parser.parse_args(argv)
    members = args.members or (20_000 if args.quick else 100_000)
    reps = args.reps or (200 if args.quick else 1000)
    cold_runs = args.cold or (5 if args.quick else 15)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if args.cold_only:
        print(json.dumps(run_cold(cold_runs), indent=2))
        return 0
    with server(embedded=args.embedded) as target, bench_database(target) as dsn:
        print(f"bench: PostgreSQL {target.version} ({target.source}); {members:,} members", flush=True)
        result = run(dsn, members, reps, cold_runs)
    report = {"started": stamp, "server": f"{target.version} ({target.source})", "interactions": result,
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"}  # fmt: skip
    text = "\n".join([f"# Interactions benchmark {stamp}", "",
                      f"Server: PostgreSQL {report['server']}; {report['machine']}.", "", *markdown(result)])  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stamp}-interactions.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"{stamp}-interactions.md").write_text(text)
    print(text)
    print(f"written: bench/results/{stamp}-interactions.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
