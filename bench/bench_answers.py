"""The leaderboard card at scale (issue 11): /leaderboard on a uniformly random page through the
real interactions handler (signature check, dispatch, the keyset read, the Components V2 card,
its JSON) against the plain read of the same page (`ledger.leaderboard_page` on the same
connection pool), request by request in turns, at each size; and the answer's p99 as a share of
the inline budget (commands.endpoint.INLINE_BUDGET_S: past it the answer is deferred).

    python -m bench.bench_answers [--quick] [--members 10000,100000,1000000] [--reps N]

Writes bench/results/<stamp>-answers.json and .md. The machine is shared: the ratios, taken pair
by pair, move much less than the absolute times.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime

from .bench_interactions import ADMIN, BASE_USER, GUILD, RESULTS, CountingQueue, answer_text, load, percentile

PAGE_SIZE = 10


def _summary(samples: list[float]) -> dict:
    return {"n": len(samples), "p50": percentile(samples, 50), "p99": percentile(samples, 99),
            "mean": statistics.fmean(samples)}  # fmt: skip


def run_size(dsn: str, members: int, reps: int) -> dict:
    from nacl.signing import SigningKey

    from pointsbot import ledger
    from pointsbot.commands import endpoint
    from pointsbot.delivery import tasks
    from pointsbot.discord import cards
    from pointsbot.platform import runtime
    from pointsbot.platform.config import get_settings, reset_settings
    from pointsbot.platform.observability import logger
    from pointsbot_local import handlers
    from pointsbot_local.apigw import LambdaContext, to_event
    from pointsbot_local.keys import KeyPair
    from pointsbot_local.simulate import command_payload, signed

    key = SigningKey.generate()
    keys = KeyPair(key.encode().hex(), key.verify_key.encode().hex())
    os.environ.update(DATABASE_URL=dsn, DISCORD_PUBLIC_KEY=keys.public_hex, POWERTOOLS_TRACE_DISABLED="true",
                      POWERTOOLS_METRICS_NAMESPACE="PointsBotBench")  # fmt: skip
    reset_settings()
    endpoint.reset()
    runtime.reset()
    tasks.set_task_queue(CountingQueue())
    handler = handlers.load("interactions")
    logger.setLevel("WARNING")
    database = endpoint.inline_database(get_settings())
    pages = max(1, -(-members // PAGE_SIZE))
    handler_ms: list[float] = []
    plain_ms: list[float] = []
    build_us: list[float] = []
    components: list[int] = []
    failures = 0
    with contextlib.redirect_stdout(io.StringIO()):
        for index in range(reps + 10):
            page = random.randint(1, pages)
            user = str(BASE_USER + random.randint(1, members))
            body, headers = signed(
                command_payload("leaderboard", {"page": page}, user_id=user, guild_id=GUILD), keys
            )
            event = to_event("POST", "/interactions", headers, body)  # signing is Discord's work: untimed
            started = time.perf_counter()
            result = handler(event, LambdaContext("interactions"))
            elapsed = (time.perf_counter() - started) * 1000
            answer = json.loads(result["body"])
            if (
                result["statusCode"] != 200
                or answer.get("type") != 4
                or "Leaderboard" not in answer_text(answer)
            ):
                failures += 1
            started = time.perf_counter()
            board = database.run(ledger.leaderboard_page, int(GUILD), page, PAGE_SIZE)
            plain = (time.perf_counter() - started) * 1000
            if index >= 10:  # the first ones warm the connection and the prepared statements
                handler_ms.append(elapsed)
                plain_ms.append(plain)
                components.append(cards.count_components(answer["data"].get("components")))
            # the card alone, for the same rows (what building it costs without the database)
            started = time.perf_counter()
            card = cards.Card().header(
                "### Leaderboard", f"Page {page}", avatar=cards.default_avatar_url(int(user))
            )
            card.separator().text("\n".join(f"`#{r.rank}` <@{r.user_id}> · **{r.balance:,} points**"
                                            for r in board.rows))  # fmt: skip
            card.buttons(
                *(cards.button(label, f"leaderboard:{page}:{label}") for label in ("a", "b", "c", "d", "e"))
            )
            card.build()
            if index >= 10:
                build_us.append((time.perf_counter() - started) * 1e6)
    tasks.set_task_queue(None)
    endpoint.reset()
    ratios = [a / b for a, b in zip(handler_ms, plain_ms, strict=True)]
    return {
        "members": members,
        "pages": pages,
        "handler_ms": _summary(handler_ms),
        "plain_read_ms": _summary(plain_ms),
        "ratio_pair_by_pair": _summary(ratios),
        "ratio_of_p99": percentile(handler_ms, 99) / percentile(plain_ms, 99),
        "share_of_inline_budget_p99": percentile(handler_ms, 99) / (endpoint.INLINE_BUDGET_S * 1000),
        "card_build_us": _summary(build_us),
        "components_max": max(components),
        "failures": failures,
        "admin": ADMIN,
    }


def markdown(rows: list[dict]) -> list[str]:
    lines = [
        "| members | random page p50 / p99 (handler) | plain read p50 / p99 | handler / plain, p50 of pairs | p99 / p99 "
        "| p99 / inline budget (2 s) | card build p50 | components | failures |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['members']:,} | {r['handler_ms']['p50']:.1f} / {r['handler_ms']['p99']:.1f} ms "
            f"| {r['plain_read_ms']['p50']:.1f} / {r['plain_read_ms']['p99']:.1f} ms "
            f"| {r['ratio_pair_by_pair']['p50']:.2f}x | {r['ratio_of_p99']:.2f}x "
            f"| {r['share_of_inline_budget_p99']:.3f}x | {r['card_build_us']['p50']:.0f} µs | {r['components_max']} "
            f"| {r['failures']} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    import platform

    from .target import bench_database, server

    parser = argparse.ArgumentParser(prog="python -m bench.bench_answers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="10,000 and 100,000 members, 200 pairs")
    parser.add_argument("--members", help="comma-separated sizes (default 10000,100000,1000000)")
    parser.add_argument("--reps", type=int)
    parser.add_argument("--embedded", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.members.split(",")] if args.members else (
        [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000])  # fmt: skip
    reps = args.reps or (200 if args.quick else 1000)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    rows = []
    with server(embedded=args.embedded) as target:
        for members in sizes:
            with bench_database(target) as dsn:
                print(
                    f"bench: PostgreSQL {target.version} ({target.source}); {members:,} members", flush=True
                )
                loaded = load(dsn, members)
                row = run_size(dsn, members, reps)
                row["load_s"] = loaded
                rows.append(row)
                print("\n".join(markdown([row])[2:]), flush=True)
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    load_avg = os.getloadavg()
    text = "\n".join([
        f"# Answers benchmark {stamp}", "",
        f"Server: PostgreSQL {target.version} ({target.source}); {machine}; load average at the end "
        f"{load_avg[0]:.1f} (a shared machine).", "",
        f"/leaderboard on a uniformly random page, {reps} pairs per size (handler, then the plain read of "
        "the same page), after 10 warm-up pairs.", "", *markdown(rows),
    ])  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stamp}-answers.json").write_text(json.dumps({"started": stamp, "machine": machine, "rows": rows},
                                                              indent=2))  # fmt: skip
    (RESULTS / f"{stamp}-answers.md").write_text(text)
    print(text)
    print(f"written: bench/results/{stamp}-answers.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
