"""Many Lambda containers on few database connections: PgBouncer in transaction mode.

Lambda can start hundreds of containers at once, each holding one connection; a Postgres allows
~100. The pooler multiplexes their transactions over a fixed pool. Measured side by side in one
run, the same write (`points.award`, silent, through `Database.run`):

- direct:     `pool` containers straight to Postgres (as many connections as the pool holds:
              the reference, what those server connections do without a pooler);
- pooled:     `containers` containers (default 500) through PgBouncer with `pool` (default 20)
              server connections, `DB_PREPARE_THRESHOLD=-1`;
- pooled-few: `pool` containers through the same PgBouncer (the pooler's own cost).

Each container is a thread with a `Database` of its own (one connection, no shared pool), and the
containers are spread over separate processes (`--processes`), as Lambda's are over machines.
Errors are every exception a container's call raised, connects included.

`python -m bench.bench_pooler [--quick] [--containers 500] [--pool 20] [--seconds 8]`, or as part
of `python -m bench` (`--only pooler`).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import threading
import time
from typing import Any

from .ledger_ops import BASE_USER, GUILD, percentile, seed_members


def _containers_process(
    dsn: str,
    first: int,
    count: int,
    prepare_threshold: int,
    members: int,
    ready: Any,
    go: Any,
    window: Any,
    out: Any,
) -> None:
    """`count` containers (threads, one connection each) in one process; reports to `out`."""
    from pointsbot.community import points
    from pointsbot.platform.config import load_settings
    from pointsbot.platform.db import Database

    settings = load_settings({})
    ops = [0] * count
    errors = [0] * count
    latencies: list[list[float]] = [[] for _ in range(count)]
    connected = threading.Barrier(count + 1)

    def container(i: int) -> None:
        rnd = random.Random(first + i)
        db = Database(dsn, pooled=False, prepare_threshold=prepare_threshold, connect_timeout_s=30)
        try:
            db.run(lambda conn: conn.execute("SELECT 1"))  # a warm container: connected already
        except Exception:  # counted, never hidden
            errors[i] += 1
        connected.wait()
        go.wait()
        start_at, stop_at = window[0], window[1]
        while time.time() < start_at:
            time.sleep(0.001)
        n = 0
        while time.time() < stop_at:
            n += 1
            began = time.perf_counter()
            try:
                db.run(
                    points.award, guild_id=GUILD, user_id=BASE_USER + rnd.randint(1, members),
                    amount=rnd.randint(1, 100), reason="bench pooler", actor_id=None, source="system",
                    idempotency_key=f"pooler-{first + i}-{n}-{time.time_ns()}", silent=True,
                    settings=settings,
                )  # fmt: skip
            except Exception:  # counted, never hidden
                errors[i] += 1
                continue
            ops[i] += 1
            latencies[i].append((time.perf_counter() - began) * 1000)
        db.close()

    threads = [threading.Thread(target=container, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    connected.wait()
    ready.put(count)
    for t in threads:
        t.join()
    samples = [x for per in latencies for x in per]
    out.put(
        {
            "ops": sum(ops),
            "errors": sum(errors),
            "latencies": random.Random(first).sample(samples, min(len(samples), 2000)),
        }
    )


def run_level(
    dsn: str, containers: int, processes: int, seconds: float, prepare_threshold: int, members: int
) -> dict:
    ctx = mp.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    go = ctx.Event()
    window = ctx.Array("d", 2)
    processes = max(1, min(processes, containers))
    share = [containers // processes + (1 if i < containers % processes else 0) for i in range(processes)]
    procs, first = [], 0
    for count in share:
        procs.append(
            ctx.Process(
                target=_containers_process,
                args=(dsn, first, count, prepare_threshold, members, ready, go, window, out),
                daemon=True,
            )
        )
        first += count
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=300)  # every container connected
    window[0] = time.time() + 0.5
    window[1] = window[0] + seconds
    go.set()
    results = [out.get(timeout=seconds + 300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    ops = sum(r["ops"] for r in results)
    samples = [x for r in results for x in r["latencies"]]
    return {
        "containers": containers,
        "processes": processes,
        "ops": ops,
        "ops_per_s": round(ops / seconds, 1),
        "errors": sum(r["errors"] for r in results),
        "p50_ms": round(percentile(samples, 0.5), 2) if samples else None,
        "p99_ms": round(percentile(samples, 0.99), 2) if samples else None,
    }


def run(
    dsn: str,
    admin_dsn: str,
    *,
    containers: int = 500,
    pool: int = 20,
    seconds: float = 8.0,
    processes: int = 10,
    members: int = 1000,
    log=print,
) -> dict:
    from pointsbot_local import pgbouncer

    seed_members(dsn, members)
    bouncer = pgbouncer.start(admin_dsn, pool_size=pool, max_clients=containers + 100)
    try:
        through = bouncer.url_for(dsn)
        direct = run_level(dsn, pool, min(processes, pool), seconds, 5, members)
        log(
            f"  direct       {pool:>4} containers: {direct['ops_per_s']:8.0f} ops/s, errors {direct['errors']}"
        )
        pooled = run_level(through, containers, processes, seconds, -1, members)
        log(
            f"  pgbouncer    {containers:>4} containers: {pooled['ops_per_s']:8.0f} ops/s, errors {pooled['errors']}"
        )
        few = run_level(through, pool, min(processes, pool), seconds, -1, members)
        log(f"  pgbouncer    {pool:>4} containers: {few['ops_per_s']:8.0f} ops/s, errors {few['errors']}")
        with __import__("psycopg").connect(dsn) as conn:
            max_connections = int(conn.execute("SHOW max_connections").fetchone()[0])
    finally:
        bouncer.stop()
    return {
        "pool": pool,
        "seconds": seconds,
        "members": members,
        "server_max_connections": max_connections,
        "direct": direct,
        "pooled": pooled,
        "pooled_few": few,
        "ratio_pooled_to_direct": round(pooled["ops_per_s"] / direct["ops_per_s"], 3)
        if direct["ops_per_s"]
        else None,
        "ratio_pooled_few_to_direct": round(few["ops_per_s"] / direct["ops_per_s"], 3)
        if direct["ops_per_s"]
        else None,
    }


def markdown(result: dict) -> list[str]:
    lines = [
        f"## Through PgBouncer (transaction mode, {result['pool']} server connections)",
        "",
        f"`points.award` (silent) through `Database.run`, {result['seconds']:g} s each; every container a "
        "thread with one connection of its own, spread over separate processes. The server allows "
        f"{result['server_max_connections']} connections.",
        "",
        "| route | containers | server connections | ops/s | p50 ms | p99 ms | errors | / direct |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    routes = [
        ("direct", result["direct"], 1.0),
        ("PgBouncer", result["pooled"], result["ratio_pooled_to_direct"]),
        ("PgBouncer", result["pooled_few"], result["ratio_pooled_few_to_direct"]),
    ]
    for name, level, ratio in routes:
        connections = level["containers"] if name == "direct" else result["pool"]
        lines.append(
            f"| {name} | {level['containers']} | {connections} | {level['ops_per_s']:,.0f} | {level['p50_ms']} | "
            f"{level['p99_ms']} | {level['errors']} | {ratio:.2f} |"
        )
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    from .target import bench_database, server

    parser = argparse.ArgumentParser(prog="python -m bench.bench_pooler", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 s per route")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--containers", type=int, default=500)
    parser.add_argument("--pool", type=int, default=20)
    parser.add_argument("--processes", type=int, default=10)
    parser.add_argument("--embedded", action="store_true")
    args = parser.parse_args(argv)
    seconds = args.seconds or (3.0 if args.quick else 8.0)
    with server(embedded=args.embedded) as target, bench_database(target) as dsn:
        print(f"bench pooler: PostgreSQL {target.version} ({target.source})", flush=True)
        result = run(dsn, target.admin_dsn, containers=args.containers, pool=args.pool, seconds=seconds,
                     processes=args.processes)  # fmt: skip
    print(json.dumps(result, indent=2))
    print("\n".join(markdown(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
