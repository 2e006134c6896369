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
import gc
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


def answer_text(answer: dict) -> str:
    """An interaction answer's text: its content, or a Components V2 card's text displays."""
    from pointsbot.discord.cards import plain_text

    data = answer.get("data") or {}
    return data.get("content") or plain_text(data.get("components"))


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


def _paired(
    handler: Callable, balance: Callable, balance_ok: Callable, points_add: Callable, reps: int
) -> dict:
    from pointsbot.commands import endpoint
    from pointsbot.platform.config import get_settings
    from pointsbot_local.apigw import LambdaContext

    database = endpoint.inline_database(get_settings())
    samples: dict[str, list[float]] = {
        "paired /balance": [],
        "paired /points add": [],
        "paired commit floor": [],
    }
    cpu: dict[str, list[float]] = {name: [] for name in samples}  # the process's CPU per request
    # What a p99 may be made of on our side: the interpreter's garbage collections during each
    # request (count and pause, from gc.callbacks).
    gc_pauses: dict[str, list[float]] = {name: [] for name in samples}
    collecting: dict[str, float] = {}
    pause = [0.0]
    generations: list[int] = []

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            collecting["at"] = time.perf_counter()
        elif "at" in collecting:
            pause[0] += (time.perf_counter() - collecting.pop("at")) * 1000
            generations.append(info["generation"])

    gc.callbacks.append(on_gc)
    failures = 0
    for index in range(reps + 5):
        for name, make_event, expect in (
            ("paired /balance", balance, balance_ok),
            ("paired /points add", points_add, lambda a: "Added" in answer_text(a)),
        ):
            event = make_event()
            pause[0] = 0.0
            cpu_started, started = time.process_time(), time.perf_counter()
            result = handler(event, LambdaContext("interactions"))
            elapsed = (time.perf_counter() - started) * 1000
            if result["statusCode"] != 200 or not expect(json.loads(result["body"])):
                failures += 1
            if index >= 5:
                samples[name].append(elapsed)
                cpu[name].append((time.process_time() - cpu_started) * 1000)
                gc_pauses[name].append(pause[0])
        cpu_started, started = time.process_time(), time.perf_counter()
        database.run(
            lambda conn, n=index: conn.execute(
                "INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) VALUES (%s, %s, 'floor', 'award')",
                (int(GUILD), f"commit-floor-{time.time_ns()}-{n}"),
            )
        )
        if index >= 5:
            samples["paired commit floor"].append((time.perf_counter() - started) * 1000)
            cpu["paired commit floor"].append((time.process_time() - cpu_started) * 1000)
    gc.callbacks.remove(on_gc)
    out = {
        name: {"n": len(v), "p50_ms": percentile(v, 50), "p99_ms": percentile(v, 99), "mean_ms": statistics.fmean(v),
               "cpu_ms_median": statistics.median(cpu[name]), "cpu_ms_p99": percentile(cpu[name], 99),
               "failures": failures if name != "paired commit floor" else 0}
        for name, v in samples.items()
    }  # fmt: skip
    for name in ("paired /balance", "paired /points add"):
        paused = [ms for ms in gc_pauses[name] if ms > 0]
        out[name].update(gc_requests=len(paused), gc_ms_max=max(paused, default=0.0), gc_ms_sum=sum(paused))
    out["_gc_collections_by_generation"] = {g: generations.count(g) for g in (0, 1, 2)}
    add, read = out["paired /points add"], out["paired /balance"]
    out["_paired_ratios"] = {
        "points_add_to_balance_p50": add["p50_ms"] / read["p50_ms"],
        "points_add_to_balance_p99": add["p99_ms"] / read["p99_ms"],
    }
    return out


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
        return answer.get("type") == 4 and "Only admins" not in answer_text(answer)

    results = {}
    with contextlib.redirect_stdout(io.StringIO()):  # the JSON logs and metrics Lambda would ship
        results["PING"] = _measure(handler, ping, reps, lambda a: a == {"type": 1})
        results["/balance"] = _measure(handler, balance, reps, message)
        results["/leaderboard (page 1)"] = _measure(handler, leaderboard_top, reps, message)
        results["/leaderboard (random page)"] = _measure(handler, leaderboard, reps, message)
        results["/points add"] = _measure(handler, points_add, reps, lambda a: "Added" in answer_text(a))
        # Side by side, request by request (load on a shared machine shifts between blocks): the
        # read, the write, and the floor of any durable write on the same connection, one INSERT
        # and its COMMIT (the WAL flush every change waits for).
        results.update(_paired(handler, balance, message, points_add, reps))
    tasks.set_task_queue(None)
    endpoint.reset()
    results["_tasks_sent"] = queue.sent
    return results


# -- cold start, as deployed ---------------------------------------------------------------
COLD = Path(__file__).resolve().parent / "cold"
FUNCTION = "InteractionsFunction"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/000000000000/pointsbot-dev-tasks"
DB_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:pointsbot-dev-database-AbCdEf"  # noqa: S105 - a reference, not a secret
TOKEN_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:pointsbot-dev-bot-token-AbCdEf"  # noqa: S105


@contextlib.contextmanager
def secrets_manager_standin(secrets: dict[str, str]):
    """Secrets Manager's GetSecretValue over HTTP (the JSON protocol boto3 speaks), for the two
    secrets the template references; boto3 finds it through AWS_ENDPOINT_URL_SECRETS_MANAGER."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            asked = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
            arn = asked.get("SecretId", "")
            if self.headers.get("x-amz-target") != "secretsmanager.GetSecretValue" or arn not in secrets:
                reply, status = {"__type": "ResourceNotFoundException", "Message": "not found"}, 400
            else:
                reply, status = {"ARN": arn, "Name": arn.rsplit(":", 1)[-1], "SecretString": secrets[arn],
                                 "VersionId": "1", "VersionStages": ["AWSCURRENT"]}, 200  # fmt: skip
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("content-type", "application/x-amz-json-1.1")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def deployed_environment(public_key: str, secrets_endpoint: str) -> dict[str, str]:
    """The interactions function's environment read from template.yaml (Globals and its own,
    parameters at their defaults or the bench's values) plus what Lambda adds under
    `Tracing: Active`; secrets are read from the stand-in at `secrets_endpoint`."""
    from pointsbot_local.lambda_env import function_environment, lambda_environment

    env = function_environment(
        FUNCTION,
        parameters={"DiscordApplicationId": "100000000000000001", "DiscordPublicKey": public_key,
                    "DatabaseUrlSecretArn": DB_SECRET_ARN, "DiscordBotTokenSecretArn": TOKEN_SECRET_ARN},
        resources={"TaskQueue": QUEUE_URL},
    )  # fmt: skip
    env.update(lambda_environment(FUNCTION))
    env.update(
        PATH=os.environ.get("PATH", "/usr/bin:/bin"), AWS_ENDPOINT_URL_SECRETS_MANAGER=secrets_endpoint
    )
    return env


def _summary(samples: list[float]) -> dict:
    return {"median": statistics.median(samples), "p99": percentile(samples, 99),
            "min": min(samples), "max": max(samples)}  # fmt: skip


def _cold_once(command: list[str], env: dict[str, str]) -> dict:
    """One fresh process: its report, and the wall time from spawning it to the answer's line."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/")
    line = b""
    for line in process.stdout:  # the function's logs and metrics first, as Lambda ships them
        if line.startswith(b"cold-start-report "):
            break
    wall_ms = (time.perf_counter() - started) * 1000
    _, err = process.communicate(timeout=30)
    if process.returncode != 0 or not line.startswith(b"cold-start-report "):
        raise RuntimeError(f"cold start failed ({process.returncode}): {err.decode()[-2000:]}")
    return {**json.loads(line.split(b" ", 1)[1]), "wall_ms": wall_ms}


def run_cold(dsn: str, runs: int, members: int) -> dict:
    """First PING and first /balance answered by a fresh process, `runs` times each, in turns with
    the bare PyNaCl handler: the interactions function with template.yaml's environment
    (`Tracing: Active`, the Powertools variables, the database URL read from Secrets Manager),
    and once more with both secrets given in the environment, to show what reading them costs."""
    import sysconfig
    import tempfile

    from nacl.signing import SigningKey

    from pointsbot_local.apigw import to_event
    from pointsbot_local.keys import KeyPair
    from pointsbot_local.lambda_env import trace_header
    from pointsbot_local.simulate import command_payload, signed, snowflake

    key = SigningKey.generate()
    keys = KeyPair(key.encode().hex(), key.verify_key.encode().hex())
    layer = [str(ROOT / "layers" / "core"), sysconfig.get_paths()["purelib"]]
    runner = [sys.executable, "-I", "-S", str(COLD / "runner.py")]
    ours = [*runner, str(ROOT / "functions" / "interactions"), "app.lambda_handler"]
    bare = [*runner, str(COLD / "bare"), "app.lambda_handler"]

    def invocation(folder: Path, payload: dict) -> str:
        body, headers = signed(payload, keys)
        path = folder / f"{snowflake()}.json"
        event = to_event("POST", "/interactions", headers, body)
        path.write_text(json.dumps({"event": event, "trace_header": trace_header()}))
        return str(path)

    def ping() -> dict:
        return {
            "id": snowflake(),
            "application_id": "100000000000000001",
            "type": 1,
            "token": "t",
            "version": 1,
        }

    def balance() -> dict:
        user = str(BASE_USER + random.randint(1, members))
        return command_payload("balance", user_id=user, guild_id=GUILD)

    with secrets_manager_standin({DB_SECRET_ARN: dsn, TOKEN_SECRET_ARN: "bench-bot-token"}) as endpoint, \
            tempfile.TemporaryDirectory(prefix="cold-") as tmp:  # fmt: skip
        deployed = deployed_environment(keys.public_hex, endpoint)
        direct = {k: v for k, v in deployed.items() if not k.endswith("_SECRET_ARN")}
        direct.update(DATABASE_URL=dsn, DISCORD_BOT_TOKEN="bench-bot-token")  # noqa: S106 - a dummy
        bare_env = {"PATH": deployed["PATH"], "DISCORD_PUBLIC_KEY": keys.public_hex, "DATABASE_URL": dsn,
                    **lambda_environment_of(deployed)}  # fmt: skip
        cases = {
            "PING": (ping, deployed),
            "/balance": (balance, deployed),
            "/balance, secrets in the environment": (balance, direct),
        }
        results: dict = {"environment": sorted(deployed), "runs": runs, "cases": {}}
        for name, (payload, env) in cases.items():
            rows: dict[str, list[dict]] = {"ours": [], "bare": []}
            for _ in range(runs + 1):  # the first pair warms the page cache, not counted
                for who, command, who_env in (("ours", ours, env), ("bare", bare, bare_env)):
                    report = _cold_once([*command, invocation(Path(tmp), payload()), *layer], who_env)
                    body = json.loads(report["body"])
                    if payload is ping:
                        assert report["status"] == 200 and body == {"type": 1}, report
                    else:  # a balance, not an apology
                        content = answer_text(body)
                        assert report["status"] == 200 and "points" in content and "wrong" not in content, (
                            report
                        )
                    rows[who].append(report)
            rows = {who: r[1:] for who, r in rows.items()}
            case: dict = {}
            for who, reports in rows.items():
                case[who] = {
                    "answered_in_process_ms": _summary([r["answered_ms"] for r in reports]),
                    "init_ms": _summary([r["init_ms"] for r in reports]),
                    "answered_whole_process_ms": _summary([r["wall_ms"] for r in reports]),
                    "cpu_ms": _summary([r["cpu_ms"] for r in reports]),
                    "rss_after_init_mib": statistics.median(r["after_init"]["rss_kib"] for r in reports)
                    / 1024,
                    "rss_after_answer_mib": statistics.median(r["after_answer"]["rss_kib"] for r in reports)
                    / 1024,
                    "loaded_after_answer": reports[-1]["after_answer"]["loaded"],
                }
            pairs = list(zip(rows["ours"], rows["bare"], strict=True))
            case["ratio"] = {
                "in_process": _summary([a["answered_ms"] / b["answered_ms"] for a, b in pairs]),
                "whole_process": _summary([a["wall_ms"] / b["wall_ms"] for a, b in pairs]),
                "cpu": _summary([a["cpu_ms"] / b["cpu_ms"] for a, b in pairs]),
            }
            results["cases"][name] = case
    return results


def lambda_environment_of(env: dict[str, str]) -> dict[str, str]:
    """The variables Lambda itself sets (the bare handler gets these, not the template's)."""
    from pointsbot_local.lambda_env import lambda_environment

    return {k: env[k] for k in lambda_environment(FUNCTION)}


def run(dsn: str, members: int, reps: int, cold_runs: int) -> dict:
    """The whole benchmark on a migrated, empty database (what `python -m bench` calls)."""
    result: dict = {"members": members, "load_s": load(dsn, members)}
    print("  warm requests ...", flush=True)
    result["warm"] = run_warm(dsn, members, reps)
    if cold_runs:
        print("  cold starts ...", flush=True)
        result["cold"] = run_cold(dsn, cold_runs, members)
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
    ratios = result["warm"].get("_paired_ratios")
    if ratios:
        lines += ["", f"Paired (request by request): /points add ÷ /balance p50 {ratios['points_add_to_balance_p50']:.2f}x, "
                      f"p99 {ratios['points_add_to_balance_p99']:.2f}x. \"commit floor\": one INSERT and its COMMIT on "
                      "the same connection, the WAL flush any change waits for."]  # fmt: skip
        lines += ["", "| paired | CPU p50 ms | CPU p99 ms | requests with a GC pause | longest GC pause ms |",
                  "| --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
        for name in ("paired /balance", "paired /points add", "paired commit floor"):
            row = result["warm"][name]
            lines.append(f"| {name} | {row['cpu_ms_median']:.2f} | {row['cpu_ms_p99']:.2f} | "
                         f"{row.get('gc_requests', '-')} | {row.get('gc_ms_max', 0):.2f} |")  # fmt: skip
    lines += [
        "",
        f"Tasks queued meanwhile: {result['warm']['_tasks_sent']}.",
        "",
        *(cold_markdown(result["cold"]) if "cold" in result else []),
    ]
    return lines


def cold_markdown(cold: dict) -> list[str]:
    """The cold-start table, as lines."""
    lines = [f"Cold start as deployed: a fresh process per start ({cold['runs']} each, in turns with the bare "
             "PyNaCl handler), the function's environment read from template.yaml (Globals and "
             "InteractionsFunction: `Tracing: Active`, POWERTOOLS_*, the *_SECRET_ARN references, ...) plus "
             "what Lambda adds (function name, credentials, X-Ray daemon address, trace header); secrets "
             "are read by the function's own code from a Secrets Manager stand-in. \"in process\": from "
             "the interpreter's first line to the answer (what Lambda counts as init plus the first "
             "invocation, less the interpreter's own start); \"whole\": from spawning the process to the "
             "answer; \"CPU\": the process's CPU time by then (interpreter start included), which a loaded "
             "machine disturbs least. Ratios are ours / bare, pair by pair, medians.", "",
             "| first request | handler | in process ms (median / p99) | whole ms (median / p99) | CPU ms | "
             "ratio in process | ratio whole | ratio CPU | RSS after init MiB | X-Ray SDK / botocore.session loaded |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]  # fmt: skip
    for name, case in cold["cases"].items():
        for who in ("ours", "bare"):
            row = case[who]
            inproc, whole, cpu = (
                row["answered_in_process_ms"],
                row["answered_whole_process_ms"],
                row["cpu_ms"],
            )
            loaded = row["loaded_after_answer"]
            ratio = case["ratio"]
            ratios = (f"{ratio['in_process']['median']:.2f}x | {ratio['whole_process']['median']:.2f}x | "
                      f"{ratio['cpu']['median']:.2f}x" if who == "ours" else " | | ")  # fmt: skip
            lines.append(f"| {name} | {'interactions function' if who == 'ours' else 'bare PyNaCl'} | "
                         f"{inproc['median']:.0f} / {inproc['p99']:.0f} | {whole['median']:.0f} / {whole['p99']:.0f} | "
                         f"{cpu['median']:.0f} | {ratios} | {row['rss_after_init_mib']:.1f} | "
                         f"{'yes' if loaded['aws_xray_sdk'] else 'no'} / {'yes' if loaded['botocore.session'] else 'no'} |")  # fmt: skip
    lines += ["", "The function's environment (template.yaml's InteractionsFunction, and Lambda's): "
              + ", ".join(f"`{name}`" for name in cold["environment"]) + ".", ""]  # fmt: skip
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
    parser.add_argument("--warm-only", action="store_true", help="only the warm requests (no cold starts)")
    args = parser.parse_args(argv)
    members = args.members or (20_000 if args.quick else 100_000)
    reps = args.reps or (200 if args.quick else 1000)
    cold_runs = args.cold or (5 if args.quick else 15)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    with server(embedded=args.embedded) as target, bench_database(target) as dsn:
        print(f"bench: PostgreSQL {target.version} ({target.source}); {members:,} members", flush=True)
        if args.cold_only:
            members = args.members or 2_000
            load(dsn, members)
            cold = run_cold(dsn, cold_runs, members)
            print(json.dumps(cold, indent=2))
            print("\n".join(cold_markdown(cold)))
            return 0
        result = run(dsn, members, reps, 0 if args.warm_only else cold_runs)
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
