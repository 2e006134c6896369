"""The reward store: a purchase's latency at 100k members, and purchases per second when every
buyer wants the same reward (one stock row, locked by each purchase until it commits) against
the same buyers each buying a reward of their own, in the same run.

    python -m bench.bench_store [--quick]

References, measured in the same run and interleaved with what they are compared to:
- latency: `points.deduct` of the same amount for the same random members (the plain ledger
  debit a purchase is built on), so purchase / deduct is what the store adds (the reward read,
  the member's lock, the limit count, the stock UPDATE, the purchase row);
- throughput: the uncontended run (each client its own reward) for the contended one.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from dataclasses import asdict, dataclass

import psycopg

from pointsbot.community import points, store
from pointsbot.platform.config import load_settings
from pointsbot.platform.db import Database

from .ledger_ops import percentile

GUILD = 760_000_000_000_000_001
BASE_USER = 770_000_000_000_000_000
BALANCE = 1_000_000_000
_ids = iter(range(10**15, 10**16))


def seed(dsn: str, members: int) -> None:
    """`members` members with a large balance each, written as one ledger operation of one entry
    per member (so balance == sum(amounts) holds from the start), in bulk."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        # The seed's entries are kept out of the window scores (sql/046's trigger, which a bulk
        # insert of 100k rows in one statement makes slow); the guild's settings are plain again
        # before anything is measured.
        conn.execute("INSERT INTO guilds (guild_id, name, settings) VALUES (%s, 'bench store', %s) "
                     "ON CONFLICT DO NOTHING", (GUILD, '{"window_excluded_kinds": ["award"]}'))  # fmt: skip
        for table in ("members", "user_stats"):
            conn.execute(
                f"INSERT INTO {table} (guild_id, user_id) SELECT %s, %s + i FROM generate_series(1, %s) i",
                (GUILD, BASE_USER, members),
            )
        conn.execute(
            "INSERT INTO points (guild_id, user_id, balance) SELECT %s, %s + i, %s FROM generate_series(1, %s) i",
            (GUILD, BASE_USER, BALANCE, members),
        )
        op = conn.execute(
            "INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) "
            "VALUES (%s, 'bench-seed', '', 'award') RETURNING id",
            (GUILD,),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, reason, "
            "actor_name, source, silent) SELECT %s, %s, %s + i, %s, %s, 'award', 'seed', 'system', 'system', true "
            "FROM generate_series(1, %s) i",
            (op, GUILD, BASE_USER, BALANCE, BALANCE, members),
        )
        conn.execute(
            "UPDATE user_stats SET transaction_count = 1, total_earned = %s WHERE guild_id = %s",
            (BALANCE, GUILD),
        )
        conn.execute("UPDATE guilds SET settings = '{}' WHERE guild_id = %s", (GUILD,))
        conn.execute("VACUUM ANALYZE members, points, user_stats, transactions, operations")


def new_reward(db: Database, name: str) -> int:
    reward = db.run(store.create_reward, guild_id=GUILD, actor_id=None, actor_name="bench", kind="item",
                    name=name, price=1, stock=10**9)  # fmt: skip
    return reward.id


@dataclass(frozen=True)
class Latency:
    what: str
    samples: int
    p50_ms: float
    p99_ms: float


def latencies(dsn: str, members: int, reps: int) -> tuple[Latency, Latency]:
    """One client: a purchase and a plain deduct of the same members, interleaved."""
    settings = load_settings({})
    db = Database(dsn, pooled=False)
    reward = new_reward(db, f"Latency {next(_ids)}")
    rnd = random.Random(1)
    bought: list[float] = []
    deducted: list[float] = []
    for _ in range(reps):
        user = BASE_USER + rnd.randint(1, members)
        started = time.perf_counter()
        db.run(store.purchase, guild_id=GUILD, user_id=user, reward_id=reward, interaction_id=next(_ids),
               actor_name="bench", settings=settings)  # fmt: skip
        bought.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        db.run(points.deduct, guild_id=GUILD, user_id=user, amount=1, reason="bench", actor_id=user,
               source="slash", idempotency_key=f"deduct-{next(_ids)}", settings=settings)  # fmt: skip
        deducted.append((time.perf_counter() - started) * 1000)
    db.close()
    return (
        Latency("purchase", reps, percentile(bought, 0.5), percentile(bought, 0.99)),
        Latency("deduct (reference)", reps, percentile(deducted, 0.5), percentile(deducted, 0.99)),
    )


@dataclass(frozen=True)
class Throughput:
    what: str
    clients: int
    purchases: int
    seconds: float
    errors: int
    p50_ms: float | None
    p99_ms: float | None

    @property
    def per_s(self) -> float:
        return self.purchases / self.seconds if self.seconds else 0.0


def throughput(
    dsn: str, members: int, clients: int, seconds: float, rewards: list[int], what: str
) -> Throughput:
    """`clients` threads (a connection each) buying for `seconds`; client i buys rewards[i % len]."""
    settings = load_settings({})
    databases = [Database(dsn, pooled=False) for _ in range(clients)]
    samples: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    ready = threading.Barrier(clients + 1)
    stop_at = [time.perf_counter() + 3600]

    def client(index: int) -> None:
        rnd = random.Random(index)
        db = databases[index]
        db.run(lambda conn: conn.execute("SELECT 1"))
        reward = rewards[index % len(rewards)]
        ready.wait()
        while time.perf_counter() < stop_at[0]:
            started = time.perf_counter()
            try:
                db.run(store.purchase, guild_id=GUILD, user_id=BASE_USER + rnd.randint(1, members),
                       reward_id=reward, interaction_id=next(_ids), actor_name="bench", settings=settings)  # fmt: skip
            except Exception:  # counted and reported, never hidden
                errors[index] += 1
                continue
            samples[index].append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    stop_at[0] = started + seconds
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for db in databases:
        db.close()
    flat = [x for per in samples for x in per]
    return Throughput(what, clients, len(flat), elapsed, sum(errors),
                      percentile(flat, 0.5) if flat else None, percentile(flat, 0.99) if flat else None)  # fmt: skip


def check(dsn: str) -> dict[str, int]:
    """After the run: members whose balance is not the sum of their entries; stock sold vs purchases."""
    with psycopg.connect(dsn) as conn:
        broken = conn.execute(
            "SELECT count(*) FROM points p LEFT JOIN (SELECT user_id, sum(amount) s FROM transactions "
            "WHERE guild_id = %s GROUP BY user_id) t USING (user_id) WHERE p.guild_id = %s AND p.balance <> t.s",
            (GUILD, GUILD),
        ).fetchone()[0]
        oversold = conn.execute(
            "SELECT count(*) FROM rewards r WHERE r.guild_id = %s AND r.stock + (SELECT count(*) FROM purchases p "
            "WHERE p.reward_id = r.id) <> 1000000000",
            (GUILD,),
        ).fetchone()[0]
    return {"balance_not_sum_of_entries": broken, "rewards_whose_stock_and_purchases_disagree": oversold}


def run(dsn: str, members: int, reps: int, clients: int, seconds: float, rounds: int = 2, log=print) -> dict:
    log(f"  seeding {members:,} members")
    seed(dsn, members)
    db = Database(dsn, pooled=False)
    shared = [new_reward(db, f"Contended {next(_ids)}")]
    own = [new_reward(db, f"Own {i} {next(_ids)}") for i in range(clients)]
    db.close()
    bought, deducted = latencies(dsn, members, reps)
    log(f"  purchase p50 {bought.p50_ms:.2f} ms p99 {bought.p99_ms:.2f} ms; "
        f"deduct p50 {deducted.p50_ms:.2f} ms p99 {deducted.p99_ms:.2f} ms")  # fmt: skip
    runs: list[Throughput] = []
    for _ in range(rounds):  # interleaved, so the machine's other load falls on both
        for what, rewards in (("uncontended", own), ("contended", shared)):
            result = throughput(dsn, members, clients, seconds, rewards, what)
            log(
                f"  {what}: {result.per_s:,.0f} purchases/s, p50 {result.p50_ms or 0:.1f} ms, errors {result.errors}"
            )
            runs.append(result)
    per = {w: [r for r in runs if r.what == w] for w in ("uncontended", "contended")}
    rate = {w: sum(r.purchases for r in rs) / sum(r.seconds for r in rs) for w, rs in per.items()}
    return {
        "members": members,
        "latency": [asdict(bought), asdict(deducted)],
        "latency_ratio_p50": bought.p50_ms / deducted.p50_ms,
        "latency_ratio_p99": bought.p99_ms / deducted.p99_ms,
        "throughput": [{**asdict(r), "per_s": r.per_s} for r in runs],
        "contended_per_s": rate["contended"],
        "uncontended_per_s": rate["uncontended"],
        "ratio_contended_to_uncontended": rate["contended"] / rate["uncontended"],
        "check": check(dsn),
    }


def markdown(report: dict) -> list[str]:
    bought, deducted = report["latency"]
    lines = [
        f"## Reward store ({report['members']:,} members)",
        "",
        f"Purchase latency, one client, {bought['samples']} samples each, interleaved with the reference "
        "(`points.deduct` of the same members):",
        "",
        "| | p50 ms | p99 ms |",
        "| --- | ---: | ---: |",
        f"| purchase | {bought['p50_ms']:.2f} | {bought['p99_ms']:.2f} |",
        f"| deduct (reference) | {deducted['p50_ms']:.2f} | {deducted['p99_ms']:.2f} |",
        f"| purchase / deduct | {report['latency_ratio_p50']:.2f}x | {report['latency_ratio_p99']:.2f}x |",
        "",
        "Purchases per second, every client buying the same reward (contended: one stock row) against "
        "each client buying its own (uncontended), interleaved:",
        "",
        "| run | clients | purchases/s | p50 ms | p99 ms | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["throughput"]:
        lines.append(f"| {r['what']} | {r['clients']} | {r['per_s']:,.0f} | {r['p50_ms'] or 0:.1f} | "
                     f"{r['p99_ms'] or 0:.1f} | {r['errors']} |")  # fmt: skip
    lines += [
        "",
        f"Contended / uncontended: {report['ratio_contended_to_uncontended']:.2f}x. After the run: "
        f"{report['check']['balance_not_sum_of_entries']} members whose balance is not the sum of their entries, "
        f"{report['check']['rewards_whose_stock_and_purchases_disagree']} rewards whose stock and purchases disagree.",
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    from .target import bench_database, server

    parser = argparse.ArgumentParser(prog="python -m bench.bench_store", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer samples, shorter runs")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args(argv)
    with server() as target, bench_database(target) as dsn:
        report = run(dsn, args.members, 100 if args.quick else 400, args.clients, 3.0 if args.quick else 6.0)
    print("\n".join(markdown(report)))
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
