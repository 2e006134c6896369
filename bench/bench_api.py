"""The integration API and outbound webhooks at 100k members.

    python -m bench.bench_api [--quick] [--members N]

Latency, one client, interleaved sample by sample so the shared machine's load falls on all:
- API write: `POST /api/v1/entries` (award 1, silent) through the API's Lambda handler
  in-process: the key, its limit window, the Idempotency-Key claim, the award, the stored
  answer, the audit row;
- the reference: the same ledger operation called directly (`points.award`, silent, source api)
  for the same members of a guild without a webhook;
- the same direct award in a guild with one webhook endpoint wanting `entry.created`: what the
  outbox row written by the trigger (sql/052) adds to a write; without an endpoint the trigger
  finds none and writes nothing (the reference row above runs through it too).

Delivery: N events queued for one endpoint, delivered by `webhooks.deliver_due` (the worker's
loop: claim a batch, POST it 8 at a time, record) to the local recording receiver over HTTPS;
deliveries per second beside the reference, the same N signed POSTs made straight with
`webhook_http.post` at the same concurrency (no database), in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import psycopg

from pointsbot.community import api_keys, points, webhooks
from pointsbot.delivery import tasks, webhook_http
from pointsbot.platform import config, runtime
from pointsbot.platform.db import Database

from .ledger_ops import percentile

GUILD = 790_000_000_000_000_001  # no webhook: the API and the reference
HOOKED = 790_000_000_000_000_002  # one endpoint wanting entry.created
BASE_USER = 791_000_000_000_000_000
_ids = iter(range(10**15, 10**16))


class _NoQueue:
    """The API asks for DM delivery after a write; the bench has no worker."""

    def send(self, task, delay_seconds: int = 0) -> None:
        pass


def seed(dsn: str, guild: int, members: int) -> None:
    """`members` members with a balance, written as one ledger operation of one entry each
    (balance == sum(amounts) from the start), in bulk, kept out of the window scores."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO guilds (guild_id, name, settings) VALUES (%s, 'bench api', %s) "
                     "ON CONFLICT DO NOTHING", (guild, '{"window_excluded_kinds": ["award"]}'))  # fmt: skip
        for table in ("members", "user_stats"):
            conn.execute(f"INSERT INTO {table} (guild_id, user_id) SELECT %s, %s + i FROM generate_series(1, %s) i",
                         (guild, BASE_USER, members))  # fmt: skip
        conn.execute("INSERT INTO points (guild_id, user_id, balance) SELECT %s, %s + i, 1000 "
                     "FROM generate_series(1, %s) i", (guild, BASE_USER, members))  # fmt: skip
        op = conn.execute("INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) "
                          "VALUES (%s, 'bench-seed', '', 'award') RETURNING id", (guild,)).fetchone()[0]  # fmt: skip
        conn.execute(
            "INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, reason, "
            "actor_name, source, silent) SELECT %s, %s, %s + i, 1000, 1000, 'award', 'seed', 'system', 'system', "
            "true FROM generate_series(1, %s) i",
            (op, guild, BASE_USER, members),
        )
        conn.execute(
            "UPDATE user_stats SET transaction_count = 1, total_earned = 1000 WHERE guild_id = %s", (guild,)
        )
        conn.execute("UPDATE guilds SET settings = '{}' WHERE guild_id = %s", (guild,))
        conn.execute("VACUUM ANALYZE members, points, user_stats, transactions, operations")


@dataclass(frozen=True)
class Latency:
    what: str
    samples: int
    p50_ms: float
    p99_ms: float


def latencies(dsn: str, members: int, reps: int, receiver_url: str) -> list[Latency]:
    from pointsbot.api.app import lambda_handler
    from pointsbot_local import apigw

    db = runtime.get_database()
    key = db.run(
        api_keys.create_key, GUILD, name="bench", scopes=["write"], actor_id=None, actor_name="bench"
    ).secret
    db.run(webhooks.create_webhook, guild_id=HOOKED, url=receiver_url, events=["entry.created"], actor_id=None,
           actor_name="bench")  # fmt: skip
    direct = Database(dsn, pooled=False)
    rnd = random.Random(7)
    api_ms: list[float] = []
    ref_ms: list[float] = []
    hooked_ms: list[float] = []

    def award(guild: int, user: int) -> None:
        direct.run(points.award, guild_id=guild, user_id=user, amount=1, reason="bench", actor_id=None,
                   actor_name="api:bench", source="api", idempotency_key=f"b-{next(_ids)}", silent=True)  # fmt: skip

    for i in range(reps + 20):  # the first 20 warm the connections and plans and are not kept
        user = BASE_USER + rnd.randint(1, members)
        body = json.dumps({"user_id": str(user), "operation": "award", "amount": 1, "reason": "bench",
                           "silent": True}).encode()  # fmt: skip
        headers = {"host": "api.bench", "authorization": f"Bearer {key}", "idempotency-key": f"i-{next(_ids)}",
                   "content-type": "application/json"}  # fmt: skip
        started = time.perf_counter()
        answer = lambda_handler(
            apigw.to_event("POST", "/api/v1/entries", headers, body), apigw.LambdaContext("api")
        )
        took = (time.perf_counter() - started) * 1000
        if answer["statusCode"] != 201:
            raise RuntimeError(f"API write refused: {answer}")
        started = time.perf_counter()
        award(GUILD, user)
        took_ref = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        award(HOOKED, user)
        took_hooked = (time.perf_counter() - started) * 1000
        if i >= 20:
            api_ms.append(took)
            ref_ms.append(took_ref)
            hooked_ms.append(took_hooked)
    direct.close()
    return [
        Latency("API write (POST /entries)", reps, percentile(api_ms, 0.5), percentile(api_ms, 0.99)),
        Latency("points.award direct (reference)", reps, percentile(ref_ms, 0.5), percentile(ref_ms, 0.99)),
        Latency("points.award direct, guild with a webhook", reps, percentile(hooked_ms, 0.5),
                percentile(hooked_ms, 0.99)),
    ]  # fmt: skip


@dataclass(frozen=True)
class Throughput:
    what: str
    deliveries: int
    seconds: float
    failed: int

    @property
    def per_s(self) -> float:
        return self.deliveries / self.seconds if self.seconds else 0.0


def _queue_events(n: int) -> None:
    db = runtime.get_database()
    db.run(lambda c: c.execute("DELETE FROM webhook_deliveries"))
    for start in range(0, n, 500):
        batch = min(500, n - start)

        def write(conn, batch=batch) -> None:
            for _ in range(batch):
                points.award(conn, guild_id=HOOKED, user_id=BASE_USER + 1, amount=1, reason="event", actor_id=None,
                             actor_name="bench", source="system", idempotency_key=f"e-{next(_ids)}", silent=True)  # fmt: skip

        db.run(write)


def delivery(n: int, concurrency: int) -> Throughput:
    _queue_events(n)
    db = runtime.get_database()
    started = time.perf_counter()
    report = webhooks.deliver_due(db, budget_s=600, concurrency=concurrency)
    seconds = time.perf_counter() - started
    delivered = db.run(lambda c: c.execute("SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'")
                       .fetchone()[0])  # fmt: skip
    return Throughput(f"deliver_due, {concurrency} at once", delivered, seconds, report.failed_attempts)


def straight_posts(n: int, concurrency: int, url: str) -> Throughput:
    """The reference: the same signed POSTs (a body of an event's size), no database."""
    target = webhook_http.check_url(url)
    body = json.dumps(
        {"id": "evt_" + "0" * 32, "type": "entry.created", "data": {"object": {"x": "y" * 300}}}
    ).encode()
    secret = webhooks.new_secret()

    def one(_: int) -> bool:
        headers = {"Content-Type": "application/json",
                   webhook_http.SIGNATURE_HEADER: webhook_http.signature_header(secret, int(time.time()), body)}  # fmt: skip
        return webhook_http.post(target, body, headers).ok

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, range(n)))
    seconds = time.perf_counter() - started
    return Throughput(f"straight POSTs, {concurrency} at once (reference)", sum(results), seconds,
                      results.count(False))  # fmt: skip


def check(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT count(*) FROM points p WHERE p.guild_id IN (%s, %s) AND p.balance <> (SELECT sum(amount) FROM "
            "transactions t WHERE t.guild_id = p.guild_id AND t.user_id = p.user_id)",
            (GUILD, HOOKED),
        ).fetchone()[0]


def run(dsn: str, members: int, reps: int, events: int, log=print) -> dict:
    from pointsbot_local.webhook_receiver import WebhookReceiver

    log(f"  seeding 2 x {members:,} members")
    seed(dsn, GUILD, members)
    seed(dsn, HOOKED, members)
    os.environ["API_RATE_LIMIT"] = str(10**9)  # the bench measures the write, not the limit
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    config.reset_settings()
    runtime.reset()
    runtime.set_database(Database(dsn, pooled=True, pool_max=4))
    tasks.set_task_queue(_NoQueue())
    receiver = WebhookReceiver().start()
    webhook_http.set_address_policy(receiver.address_policy())
    try:
        rows = latencies(dsn, members, reps, receiver.url)
        for r in rows:
            log(f"  {r.what}: p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms")
        runs: list[Throughput] = []
        for concurrency in (1, 8):
            for measure in (lambda c=concurrency: delivery(events, c),
                            lambda c=concurrency: straight_posts(events, c, receiver.url)):  # fmt: skip
                result = measure()
                log(f"  {result.what}: {result.per_s:,.0f}/s ({result.deliveries} in {result.seconds:.1f} s)")
                runs.append(result)
        received = len(receiver.received)
    finally:
        webhook_http.set_address_policy(None)
        receiver.stop()
        tasks.set_task_queue(None)
        runtime.reset()
        del os.environ["API_RATE_LIMIT"]
        config.reset_settings()
    api, ref, hooked = rows
    return {
        "members": members,
        "latency": [asdict(r) for r in rows],
        "api_to_direct_p50": api.p50_ms / ref.p50_ms,
        "api_to_direct_p99": api.p99_ms / ref.p99_ms,
        "webhook_to_none_p50": hooked.p50_ms / ref.p50_ms,
        "webhook_to_none_p99": hooked.p99_ms / ref.p99_ms,
        "events": events,
        "delivery": [{**asdict(r), "per_s": r.per_s} for r in runs],
        "delivery_ratio_1": runs[0].per_s / runs[1].per_s,
        "delivery_ratio_8": runs[2].per_s / runs[3].per_s,
        "received": received,
        "balance_not_sum_of_entries": check(dsn),
    }


def markdown(report: dict) -> list[str]:
    api, ref, hooked = report["latency"]
    lines = [
        f"## Integration API and webhooks ({report['members']:,} members)",
        "",
        f"Write latency, one client, {api['samples']} samples each, interleaved:",
        "",
        "| | p50 ms | p99 ms |",
        "| --- | ---: | ---: |",
        *(f"| {r['what']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |" for r in report["latency"]),
        f"| API / direct | {report['api_to_direct_p50']:.2f}x | {report['api_to_direct_p99']:.2f}x |",
        f"| with a webhook / without | {report['webhook_to_none_p50']:.2f}x | {report['webhook_to_none_p99']:.2f}x |",
        "",
        f"Webhook delivery to the local HTTPS receiver, {report['events']:,} events, beside straight POSTs:",
        "",
        "| run | delivered | seconds | per s | failed |",
        "| --- | ---: | ---: | ---: | ---: |",
        *(
            f"| {r['what']} | {r['deliveries']:,} | {r['seconds']:.1f} | {r['per_s']:,.0f} | {r['failed']} |"
            for r in report["delivery"]
        ),
        "",
        f"deliver_due / straight POSTs: {report['delivery_ratio_1']:.2f}x at 1, {report['delivery_ratio_8']:.2f}x "
        f"at 8. Members whose balance is not the sum of their entries afterwards: "
        f"{report['balance_not_sum_of_entries']}.",
        "",
    ]
    assert hooked and ref
    return lines


def main(argv: list[str] | None = None) -> int:
    from .target import bench_database, server

    parser = argparse.ArgumentParser(prog="python -m bench.bench_api", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer samples and events")
    parser.add_argument("--members", type=int, default=100_000)
    args = parser.parse_args(argv)
    with server() as target, bench_database(target) as dsn:
        report = run(dsn, args.members, 100 if args.quick else 500, 300 if args.quick else 2000)
    print("\n".join(markdown(report)))
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
