"""Answer time with a hung database, against Discord's 3 seconds.

The database is a real Postgres behind `pointsbot_local.freezable_proxy`, frozen the way SIGSTOP
freezes a server (connections accepted, bytes taken, nothing answered). Measured:

- the HTTP edge: signed POST /interactions and GET /health/deep to the local runtime (`make
  run`'s stack, in this process), timed by the client;
- the Lambda shape: functions/interactions/app.py and functions/health/app.py called with API
  Gateway events, timed around the call.

Cases: a healthy database (reference), hung under a warm connection (the statement hangs), hung
with no connection (the connect hangs), and a slow one (the member's row locked by another
transaction). After each freeze the proxy thaws and every deferred /points add must end with
its answer edited on the Discord stand-in and exactly one ledger entry. `--without-deadline`
measures the code path with the deadline switched off (as before it existed), freezing for
`--freeze-s` seconds, for comparison.

    python -m bench.bench_hung_db [--quick] [--reps N] [--without-deadline] [--freeze-s 6]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

RESULTS = Path(__file__).resolve().parent / "results"
DISCORD_LIMIT_S = 3.0
GUILD = "795000000000000001"
ADMIN = "795000000000000002"
MEMBER = "795000000000000003"
_ENV = ("DATABASE_URL", "DISCORD_PUBLIC_KEY", "DISCORD_API_BASE_URL", "DISCORD_BOT_TOKEN", "TASK_QUEUE_URL",
        "POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_METRICS_NAMESPACE")  # fmt: skip


def _summary(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered) * 1000,
        "max_ms": ordered[-1] * 1000,
        "max_over_discord_limit": ordered[-1] / DISCORD_LIMIT_S,
    }


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in _ENV}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _deadline_switched_off() -> Iterator[None]:
    from pointsbot.commands import endpoint
    from pointsbot.platform import health

    saved = endpoint.INLINE_BUDGET_S, endpoint.ANSWER_BY_S, health.DEEP_CHECK_BUDGET_S
    endpoint.INLINE_BUDGET_S = endpoint.ANSWER_BY_S = health.DEEP_CHECK_BUDGET_S = 3600.0
    try:
        yield
    finally:
        endpoint.INLINE_BUDGET_S, endpoint.ANSWER_BY_S, health.DEEP_CHECK_BUDGET_S = saved


class Edge:
    """One way in: `interaction(raw)` and `deep_health()` return (status, body, seconds)."""

    def __init__(self, name: str, interaction: Callable, deep_health: Callable, forget_connection: Callable):
        self.name = name
        self.interaction = interaction
        self.deep_health = deep_health
        self.forget_connection = forget_connection


def _timed(call: Callable[[], tuple[int, Any]]) -> tuple[int, Any, float]:
    started = time.perf_counter()
    status, body = call()
    return status, body, time.perf_counter() - started


def run(dsn: str, reps: int, without_deadline: bool, freeze_s: float) -> dict[str, Any]:
    from nacl.signing import SigningKey

    from pointsbot.commands import endpoint
    from pointsbot.delivery import tasks
    from pointsbot.platform import runtime
    from pointsbot.platform.config import reset_settings
    from pointsbot.platform.observability import logger
    from pointsbot_local import handlers
    from pointsbot_local.__main__ import start
    from pointsbot_local.apigw import LambdaContext, to_event
    from pointsbot_local.freezable_proxy import FreezableProxy
    from pointsbot_local.keys import KeyPair
    from pointsbot_local.simulate import command_payload, follow, post, signed

    key = SigningKey.generate()
    keys = KeyPair(key.encode().hex(), key.verify_key.encode().hex())
    proxy = FreezableProxy.for_dsn(dsn)
    env = {"DATABASE_URL": proxy.dsn(dsn), "DISCORD_PUBLIC_KEY": keys.public_hex,
           "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_NAMESPACE": "PointsBotBench"}  # fmt: skip
    for name in ("DISCORD_API_BASE_URL", "DISCORD_BOT_TOKEN", "TASK_QUEUE_URL"):
        os.environ.pop(name, None)
    results: dict[str, Any] = {"without_deadline": without_deadline, "cases": {}}
    adds: list[dict[str, Any]] = []
    deferred: list[dict[str, Any]] = []
    logger.setLevel("ERROR")
    local_dir = Path(tempfile.mkdtemp(prefix="pointsbot-bench-hung-"))
    with _environment(env), contextlib.redirect_stdout(io.StringIO()):
        reset_settings()
        server, _ = start(port=0, local_dir=local_dir)
        queue = tasks.get_task_queue()
        discord = server.url + "/discord-api/v10"

        def over_http(raw: dict[str, Any]) -> tuple[int, Any]:
            body, headers = signed(raw, keys)
            return post(server.url + "/interactions", body, headers, timeout=120)

        def http_health() -> tuple[int, Any]:
            import urllib.error
            import urllib.request

            try:
                with urllib.request.urlopen(server.url + "/health/deep", timeout=120) as answer:  # noqa: S310
                    return answer.status, json.loads(answer.read())
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read())

        def in_lambda(raw: dict[str, Any]) -> tuple[int, Any]:
            body, headers = signed(raw, keys)
            result = handlers.load("interactions")(to_event("POST", "/interactions", headers, body),
                                                   LambdaContext("interactions"))  # fmt: skip
            return result["statusCode"], json.loads(result["body"])

        def lambda_health() -> tuple[int, Any]:
            result = handlers.load("health")(
                to_event("GET", "/health/deep", {}, b""), LambdaContext("health")
            )
            return result["statusCode"], json.loads(result["body"])

        def forget_inline_connection() -> None:
            endpoint.reset()

        edges = [
            Edge("HTTP edge (local runtime)", over_http, http_health, forget_inline_connection),
            Edge("Lambda handler", in_lambda, lambda_health, forget_inline_connection),
        ]

        def add(amount: int) -> dict[str, Any]:
            raw = command_payload("points add", {"member": MEMBER, "amount": amount, "reason": "bench"},
                                  user_id=ADMIN, admin=True, guild_id=GUILD)  # fmt: skip
            adds.append(raw)
            return raw

        def adding(edge: Edge) -> Callable[[], tuple[int, Any]]:
            def send() -> tuple[int, Any]:
                raw = add(1)
                status, body = edge.interaction(raw)
                if body.get("type") == 5:
                    deferred.append(raw)
                return status, body

            return send

        def thaw_after(seconds: float) -> threading.Timer:
            timer = threading.Timer(seconds, proxy.thaw)
            timer.start()
            return timer

        try:
            with _deadline_switched_off() if without_deadline else contextlib.nullcontext():
                samples: dict[str, dict[str, list[float]]] = {}
                answers: dict[str, dict[str, dict[str, int]]] = {}

                def record(edge: Edge, case: str, status: int, body: Any, seconds: float) -> None:
                    samples.setdefault(edge.name, {}).setdefault(case, []).append(seconds)
                    kind = (
                        f"{status} type {body.get('type')}"
                        if status == 200 and "type" in body
                        else str(status)
                    )
                    counted = answers.setdefault(edge.name, {}).setdefault(case, {})
                    counted[kind] = counted.get(kind, 0) + 1

                for edge in edges:
                    for _ in range(reps):
                        proxy.thaw()
                        record(edge, "healthy: /points add", *_timed(adding(edge)))
                        record(edge, "healthy: /health/deep", *_timed(edge.deep_health))
                        # hung under a warm connection
                        edge.interaction(command_payload("balance", user_id=MEMBER, guild_id=GUILD))
                        proxy.freeze()
                        timer = thaw_after(freeze_s) if without_deadline else None
                        record(edge, "hung, warm connection: /points add", *_timed(adding(edge)))
                        if timer:
                            timer.join()
                            proxy.freeze()
                            timer = thaw_after(freeze_s)
                        # hung, and the connection has to be made anew
                        edge.forget_connection()
                        record(edge, "hung, new connection: /points add", *_timed(adding(edge)))
                        if timer:
                            timer.join()
                            proxy.freeze()
                            timer = thaw_after(freeze_s)
                        record(edge, "hung: /health/deep", *_timed(edge.deep_health))
                        if timer:
                            timer.join()
                        proxy.thaw()
                        # slow: the member's balance row held by another transaction
                        with psycopg.connect(dsn) as locker:
                            locker.execute("SELECT 1 FROM points WHERE guild_id = %s AND user_id = %s FOR UPDATE",
                                           (int(GUILD), int(MEMBER)))  # fmt: skip
                            record(edge, "slow (row locked): /points add", *_timed(adding(edge)))
                            locker.rollback()
                    results["cases"][edge.name] = {
                        case: {**_summary(times), "answers": answers[edge.name][case]}
                        for case, times in samples[edge.name].items()
                    }
            proxy.thaw()
            # Every deferred /points add ends once: its answer edited, one entry each.
            getattr(queue, "drain", lambda timeout: True)(timeout=120)
            finals = [follow(discord, raw["application_id"], raw["token"], timeout=30) for raw in deferred]
            from pointsbot.discord.cards import plain_text

            def said(final: dict) -> str:  # an edit's text: its content, or a card's text displays
                return final.get("content") or plain_text(final.get("components"))

            added = sum(1 for final in finals if final and "Added" in said(final))
            with psycopg.connect(dsn) as conn:
                entries = conn.execute(
                    "SELECT count(*), coalesce(sum(amount), 0) FROM transactions WHERE user_id = %s",
                    (int(MEMBER),),
                ).fetchone()
            results["deferred"] = len(deferred)
            results["deferred_added"] = added
            results["deferred_try_again"] = sum(1 for final in finals if final and "try again" in said(final))
            results["adds_sent"] = len(adds)
            results["ledger_entries"] = entries[0]
        finally:
            proxy.thaw()
            server.stop()
            getattr(queue, "stop", lambda: None)()
            tasks.set_task_queue(None)
            endpoint.reset()
            runtime.reset()
            proxy.close()
    return results


def markdown(result: dict[str, Any], freeze_s: float) -> list[str]:
    lines = []
    if result["without_deadline"]:
        lines += [f"Deadline switched off (as before it existed); each freeze lasted {freeze_s:g} s.", ""]
    for edge, cases in result["cases"].items():
        lines += [f"## {edge}", "", "| case | n | p50 ms | max ms | max / Discord's 3 s | answers |",
                  "| --- | ---: | ---: | ---: | ---: | --- |"]  # fmt: skip
        for case, row in cases.items():
            answers = ", ".join(f"{kind}: {count}" for kind, count in row["answers"].items())
            lines.append(f"| {case} | {row['n']} | {row['p50_ms']:.0f} | {row['max_ms']:.0f} | "
                         f"{row['max_over_discord_limit']:.2f} | {answers} |")  # fmt: skip
        lines.append("")
    lines += [f"/points add sent: {result['adds_sent']}; ledger entries afterwards: {result['ledger_entries']} "
              f"(one each); deferred: {result['deferred']}, of which the worker applied "
              f"{result['deferred_added']} and answered \"try again\" to {result['deferred_try_again']}.", ""]  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> int:
    from .target import bench_database, server

    parser = argparse.ArgumentParser(prog="python -m bench.bench_hung_db", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 10")
    parser.add_argument("--reps", type=int)
    parser.add_argument(
        "--without-deadline", action="store_true", help="the deadline switched off, to compare"
    )
    parser.add_argument("--freeze-s", type=float, default=6.0, help="freeze length without the deadline")
    parser.add_argument("--embedded", action="store_true")
    args = parser.parse_args(argv)
    reps = args.reps or (3 if args.quick else 10)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    with server(embedded=args.embedded) as target, bench_database(target) as dsn:
        print(f"bench: PostgreSQL {target.version} ({target.source}); {reps} rounds", flush=True)
        result = run(dsn, reps, args.without_deadline, args.freeze_s)
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    report = {"started": stamp, "server": f"{target.version} ({target.source})", "machine": machine,
              "hung_db": result}  # fmt: skip
    text = "\n".join([f"# Hung database benchmark {stamp}", "",
                      f"Server: PostgreSQL {report['server']} behind a freezable proxy; {machine}.", "",
                      *markdown(result, args.freeze_s)])  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    suffix = "hung-db-without-deadline" if args.without_deadline else "hung-db"
    (RESULTS / f"{stamp}-{suffix}.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"{stamp}-{suffix}.md").write_text(text)
    print(text)
    print(f"written: bench/results/{stamp}-{suffix}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
