"""What role thresholds cost a balance change (`python -m bench.bench_roles [--quick]`).

One client, `points.award` (silent) of 1 point through `Database.run`, interleaved in rounds
over three guilds of the same size so the machine's load hits all alike: the reference (no
thresholds), a guild with 20 thresholds that the changes never cross (the common case: the
policy's threshold list is checked in Python, no query), and a guild whose every change
crosses one (a member moves across 1,000 and back: the threshold's row, the member's state and
a role change written). Reports p50/p99 per row and the ratios to the reference.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.ledger_ops import percentile
from bench.target import bench_database, server
from pointsbot.community import points, role_rewards
from pointsbot.ledger.guilds import ensure_guild
from pointsbot.platform.config import load_settings
from pointsbot.platform.db import Database

REFERENCE, QUIET, CROSSING = 910_000_000_000_000_001, 910_000_000_000_000_002, 910_000_000_000_000_003


def _setup(db: Database, members: int) -> None:
    for guild in (REFERENCE, QUIET, CROSSING):
        db.run(lambda conn, g=guild: ensure_guild(conn, g, f"bench {g}"))
        db.run(
            lambda conn, g=guild: conn.execute(
                "INSERT INTO members (guild_id, user_id) SELECT %s, u FROM generate_series(1, %s) u",
                (g, members),
            )
        )
        db.run(
            lambda conn, g=guild: conn.execute(
                "INSERT INTO points (guild_id, user_id) SELECT %s, u FROM generate_series(1, %s) u",
                (g, members),
            )
        )
    for n in range(20):
        db.run(role_rewards.create_threshold, QUIET, points=10**9 + n, role_id=5000 + n, on_drop="remove",
               actor_id=None, actor_name="bench")  # fmt: skip
    db.run(role_rewards.create_threshold, CROSSING, points=1000, role_id=6000, on_drop="remove", actor_id=None,
           actor_name="bench")  # fmt: skip
    # The crossing guild's members sit just under the threshold; +1 crosses up, -1 back down.
    settings = load_settings({}).with_overrides(dm_notifications=False)
    for user in range(1, members + 1):
        _one(db, settings, CROSSING, user, 999, f"start{user}")


def _one(db: Database, settings, guild: int, user: int, amount: int, key: str) -> float:
    started = time.perf_counter()
    operation = points.award if amount > 0 else points.deduct
    db.run(operation, guild_id=guild, user_id=user, amount=abs(amount), reason="bench", actor_id=None,
           source="system", idempotency_key=key, silent=True, settings=settings)  # fmt: skip
    return time.perf_counter() - started


def run(dsn: str, rounds: int, members: int, log=print) -> dict:
    settings = load_settings({}).with_overrides(allow_negative=True, dm_notifications=False)
    db = Database(dsn, pooled=False)
    try:
        _setup(db, members)
        samples: dict[str, list[float]] = {"no thresholds": [], "20 thresholds, none crossed": [],
                                           "a threshold crossed each change": []}  # fmt: skip
        for n in range(rounds):
            user = 1 + n % members
            samples["no thresholds"].append(_one(db, settings, REFERENCE, user, 1, f"r{n}"))
            samples["20 thresholds, none crossed"].append(_one(db, settings, QUIET, user, 1, f"q{n}"))
            # Up across 1,000 on even rounds of a member, back down on odd ones.
            amount = 1 if (n // members) % 2 == 0 else -1
            samples["a threshold crossed each change"].append(
                _one(db, settings, CROSSING, user, amount, f"c{n}")
            )
        reference = statistics.median(samples["no thresholds"])
        rows = {}
        for name, values in samples.items():
            p50, p99 = statistics.median(values), percentile(values, 0.99)
            rows[name] = {"p50_ms": round(p50 * 1000, 3), "p99_ms": round(p99 * 1000, 3),
                          "p50_ratio": round(p50 / reference, 3)}  # fmt: skip
            log(
                f"{name:34} p50 {p50 * 1000:7.3f} ms  p99 {p99 * 1000:7.3f} ms  p50 ratio {p50 / reference:5.2f}"
            )
        changes = db.fetchone("SELECT count(*) FROM role_changes WHERE guild_id = %s", (CROSSING,))[0]
        log(f"role changes written by the crossing guild: {changes:,} (one per crossing)")
        return {"rounds": rounds, "members": members, "rows": rows, "role_changes": changes}
    finally:
        db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--embedded", action="store_true")
    args = parser.parse_args(argv)
    rounds, members = (300, 50) if args.quick else (2000, 200)
    with server(args.embedded) as target, bench_database(target) as dsn:
        print(
            f"Postgres {target.version} ({target.source}); {rounds} rounds over {members} members per guild"
        )
        run(dsn, rounds, members)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
