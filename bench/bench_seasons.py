"""Window boards, window ranks, the season end, and what the window trigger costs a write
(`python -m bench.bench_seasons [--quick] [--sizes 10000,100000,1000000] [--only writes|boards]`).

Writes: `points.award` (1 point, silent) through `Database.run`, one client, in alternating
slices: today's window and webhook triggers (sql/062, once per statement), the write path before
sql/061-062 (047's and 052's per-row triggers and 036's bucket functions, put back for the run by
bench/before_write_path.py), and without the window trigger (ALTER TABLE ... DISABLE TRIGGER
between slices), in a guild with a season running (so every entry lands in three windows):
ops/s and p50/p99 of each, and the ratios. The reference is the same write path without the
window trigger, measured in the same run.

Boards: for each size, one guild of N members with 10 ledger entries each spread over the last
56 days (10M entries at 1M members), bulk-loaded with generate_series; the window scores and
their bucket counts are then built from those entries by one aggregate per window (what the
trigger would have written entry by entry, checked against the ledger summed for 200 random
members, ranks included). Then, interleaved in rounds so every query sees the same load and
cache: top 10 and a uniformly random page of the week, month and season boards, a random
member's rank in the week, the same three for the all-time board (the reference the ratios
are to), and the naive way (summing the ledger at read time) for the week's top 10 and a rank.

Pages (`--only pages`, at the largest size only): the admin site's Leaderboard page and the
public page, each a whole request through the admin site's Lambda handler in-process (session,
the public page's rate limit, the loader, names and avatars, the template, the ETag), for a
uniformly random page of the all-time board and of this week's, interleaved with the slash
command's reads of random pages of the same boards (the reference the ratios are to).

Season end: at the largest size, `seasons.run_end` on the season (prizes for the top 10, every
balance reset) with its wall time per step; afterwards sum(balances) == sum(entries).

The machine is shared (2 cores, other engineers' tests and benches running): numbers are
indicative; compare within a run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench import before_write_path
from bench.ledger_ops import percentile
from bench.target import bench_database, server
from pointsbot import ledger
from pointsbot.community import points, seasons, windows
from pointsbot.ledger.guilds import ensure_guild
from pointsbot.platform.config import load_settings
from pointsbot.platform.db import Database

GUILD = 760_000_000_000_000_000
BASE_USER = 770_000_000_000_000_000
PAGE = 10
ENTRIES_PER_MEMBER = 10


def _summary(samples: list[float]) -> dict:
    return {"n": len(samples), "p50_ms": round(percentile(samples, 0.5), 3),
            "p99_ms": round(percentile(samples, 0.99), 3)}  # fmt: skip


def _interleaved(fns: dict[str, Callable[[], object]], reps: int, budget_s: float) -> dict[str, dict]:
    for fn in fns.values():
        fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    deadline = time.perf_counter() + budget_s
    for _ in range(reps):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - started) * 1000)
        if time.perf_counter() > deadline:
            break
    return {name: _summary(s) for name, s in samples.items()}


# -- writes ----------------------------------------------------------------------------------------
def bench_writes(dsn: str, seconds: float, slices: int, log=print) -> dict:
    """One write in alternating slices: today's statement triggers (sql/061-062), the write path
    before them (sql/047's and 052's per-row triggers, 036's bucket functions), and without the
    window trigger (the reference)."""
    guild = GUILD + 1
    settings = load_settings({}).with_overrides(dm_notifications=False)
    db = Database(dsn, pooled=False)
    ours, before, ref = (
        "statement triggers (sql/062)",
        "per-row triggers (before 061-062)",
        "without the window trigger (reference)",
    )
    try:
        db.run(lambda conn: ensure_guild(conn, guild, "bench writes"))
        db.run(lambda conn: conn.execute(
            "INSERT INTO seasons (guild_id, name, starts_at, ends_at) VALUES (%s, 'bench', now() - interval '1 day', "
            "now() + interval '30 days')", (guild,)))  # fmt: skip
        db.run(before_write_path.per_row_triggers)
        keys = itertools.count()
        samples: dict[str, list[float]] = {ours: [], before: [], ref: []}
        elapsed = dict.fromkeys(samples, 0.0)
        for n in range(slices * 3):
            name = (ours, before, ref)[n % 3]

            def switch(conn, name=name) -> None:
                before_write_path.buckets(conn, before=name == before)
                before_write_path.use(conn, before=name == before, window=name != ref)

            db.run(switch)
            stop = time.perf_counter() + seconds / (slices * 3)
            while time.perf_counter() < stop:
                started = time.perf_counter()
                db.run(points.award, guild_id=guild, user_id=1 + next(keys) % 1000, amount=1, reason="bench",
                       actor_id=None, source="system", idempotency_key=f"w{next(keys)}", silent=True,
                       settings=settings)  # fmt: skip
                took = time.perf_counter() - started
                samples[name].append(took)
                elapsed[name] += took
        db.run(lambda conn: (before_write_path.buckets(conn, before=False),
                             before_write_path.use(conn, before=False)))  # fmt: skip
        rows = {}
        for name, values in samples.items():
            rows[name] = {"ops": len(values), "ops_per_s": round(len(values) / elapsed[name], 1),
                          "p50_ms": round(statistics.median(values) * 1000, 3),
                          "p99_ms": round(percentile(values, 0.99) * 1000, 3)}  # fmt: skip

        def ratio(a: str, b: str) -> dict:
            return {"ops_per_s": round(rows[a]["ops_per_s"] / rows[b]["ops_per_s"], 3),
                    "p50": round(rows[a]["p50_ms"] / rows[b]["p50_ms"], 3),
                    "p99": round(rows[a]["p99_ms"] / rows[b]["p99_ms"], 3)}  # fmt: skip

        ratios = {"ours_to_before": ratio(ours, before), "ours_to_reference": ratio(ours, ref),
                  "before_to_reference": ratio(before, ref)}  # fmt: skip
        for name, row in rows.items():
            log(
                f"  {name:40} {row['ops_per_s']:8.1f} ops/s  p50 {row['p50_ms']:7.3f} ms  p99 {row['p99_ms']:7.3f} ms"
            )
        for name, r in ratios.items():
            log(f"  {name}: ops/s x{r['ops_per_s']}, p50 x{r['p50']}, p99 x{r['p99']}")
        return {"rows": rows, "ratios": ratios, "load_average_after": round(os.getloadavg()[0], 1)}
    finally:
        db.close()


# -- boards ------------------------------------------------------------------------------------------
def _drop_ledger_indexes(conn) -> list[tuple[str, str, str | None]]:
    """The ledger's secondary indexes, exactly as the migrations made them, dropped for the bulk
    load (name, index definition, the UNIQUE constraint's definition it backs or None);
    `_rebuild` makes them again (building once is much faster than 10M inserts into each)."""
    indexes = conn.execute(
        "SELECT i.indexname, i.indexdef, pg_get_constraintdef(c.oid) FROM pg_indexes i "
        "LEFT JOIN pg_constraint c ON c.conname = i.indexname AND c.conrelid = 'transactions'::regclass "
        "WHERE i.tablename = 'transactions' AND i.indexname <> 'transactions_pkey'"
    ).fetchall()
    for name, _, constraint in indexes:
        conn.execute(
            f'ALTER TABLE transactions DROP CONSTRAINT "{name}"' if constraint else f'DROP INDEX "{name}"'
        )
    return indexes


def _rebuild(conn, indexes: list[tuple[str, str, str | None]]) -> None:
    for name, definition, constraint in indexes:
        conn.execute(
            f'ALTER TABLE transactions ADD CONSTRAINT "{name}" {constraint}' if constraint else definition
        )


def load(dsn: str, guild: int, members: int, log, season_only: bool = False) -> dict:
    """Members, 10 entries each over 56 days, balances and counters from them, a season running,
    and the window scores and counts built from the entries (`season_only`: the season's window
    alone, all a season end reads). Returns the season's id and timings."""
    timings = {}
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute("SET work_mem = '64MB'")
        conn.execute("INSERT INTO guilds (guild_id, name) VALUES (%s, 'bench')", (guild,))
        season_id = conn.execute(
            "INSERT INTO seasons (guild_id, name, starts_at, ends_at, prize_places, prize_points, reset_balances) "
            "VALUES (%s, 'bench season', now() - interval '40 days', now() + interval '20 days', 10, 100, TRUE) "
            "RETURNING id", (guild,)).fetchone()[0]  # fmt: skip
        conn.execute(
            "INSERT INTO members (guild_id, user_id, username, display_name) "
            "SELECT %s, %s + i, 'user' || i, 'Member ' || i FROM generate_series(1, %s) i",
            (guild, BASE_USER, members),
        )
        op = conn.execute("INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) "
                          "VALUES (%s, 'bench-load', 'f', 'award') RETURNING id", (guild,)).fetchone()[0]  # fmt: skip
        indexes = _drop_ledger_indexes(conn)
        # The trigger and the foreign keys' checks are off for the bulk load (rebuilt below).
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            """
            INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, source,
                                      actor_name, created_at)
            SELECT %s, %s, %s + 1 + (i %% %s), 1 + floor(power(random(), 4) * 1000)::bigint, 0, 'award',
                   'system', 'bench', now() - random() * interval '56 days'
            FROM generate_series(0, %s - 1) i
            """,
            (op, guild, BASE_USER, members, members * ENTRIES_PER_MEMBER),
        )
        conn.execute("SET session_replication_role = origin")
        timings["entries_s"] = round(time.perf_counter() - started, 1)
        _rebuild(conn, indexes)
        timings["indexes_s"] = round(time.perf_counter() - started - timings["entries_s"], 1)
        conn.execute(
            "INSERT INTO points (guild_id, user_id, balance) SELECT guild_id, user_id, sum(amount) "
            "FROM transactions WHERE guild_id = %s GROUP BY guild_id, user_id",
            (guild,),
        )
        conn.execute(
            "INSERT INTO user_stats (guild_id, user_id, transaction_count, total_earned) "
            "SELECT guild_id, user_id, count(*), sum(amount) FROM transactions WHERE guild_id = %s GROUP BY 1, 2",
            (guild,),
        )
        keys = [windows.calendar_window(conn, guild, "week").key, windows.calendar_window(conn, guild, "month").key,
                f"season:{season_id}"]  # fmt: skip
        for key in keys[2:] if season_only else keys:
            window = (windows.calendar_window(conn, guild, key.split(":")[0]) if not key.startswith("season")
                      else windows.season_window(conn, guild, season_id))  # fmt: skip
            conn.execute(
                "INSERT INTO window_scores (guild_id, period, user_id, score) SELECT %s, %s, user_id, sum(amount) "
                "FROM transactions WHERE guild_id = %s AND created_at >= %s AND created_at < %s GROUP BY user_id",
                (guild, key, guild, window.starts_at, window.ends_at),
            )
            conn.execute(
                "INSERT INTO window_counts (guild_id, period, tier, bucket, members) "
                "SELECT guild_id, period, 0, balance_bucket(score), count(*) FROM window_scores "
                "WHERE guild_id = %(g)s AND period = %(w)s GROUP BY 1, 2, 4 "
                "UNION ALL SELECT guild_id, period, 1, balance_class(score), count(*) FROM window_scores "
                "WHERE guild_id = %(g)s AND period = %(w)s GROUP BY 1, 2, 4",
                {"g": guild, "w": key},
            )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM (ANALYZE) members, points, user_stats, balance_counts, window_scores, window_counts, "
                     "transactions")  # fmt: skip
    timings["total_s"] = round(time.perf_counter() - started, 1)
    log(f"  {members:,} members, {members * ENTRIES_PER_MEMBER:,} entries loaded in {timings['total_s']} s")
    return {"season_id": season_id, "keys": keys, "timings": timings}


def _naive_week(conn, guild: int, window) -> dict[str, Callable[[], object]]:
    top = ("SELECT user_id, sum(amount) s FROM transactions WHERE guild_id = %s AND created_at >= %s "
           "AND created_at < %s GROUP BY user_id ORDER BY s DESC, user_id LIMIT 10")  # fmt: skip
    rank = ("SELECT 1 + count(*) FROM (SELECT user_id FROM transactions WHERE guild_id = %(g)s AND created_at >= %(a)s "
            "AND created_at < %(b)s GROUP BY user_id HAVING sum(amount) > (SELECT coalesce(sum(amount), 0) "
            "FROM transactions WHERE guild_id = %(g)s AND user_id = %(u)s AND created_at >= %(a)s "
            "AND created_at < %(b)s)) x")  # fmt: skip
    return {
        "naive: week top 10 summed from the ledger": lambda: conn.execute(
            top, (guild, window.starts_at, window.ends_at)).fetchall(),
        "naive: week rank summed from the ledger": lambda: conn.execute(
            rank, {"g": guild, "a": window.starts_at, "b": window.ends_at,
                   "u": BASE_USER + random.randint(1, 1000)}).fetchone(),
    }  # fmt: skip


def _check(conn, guild: int, members: int, keys: list[str], season_id: int) -> int:
    """Window scores and ranks against the ledger summed, for 200 random members; mismatches."""
    rnd = random.Random(7)
    bad = 0
    for key in keys:
        window = (windows.season_window(conn, guild, season_id) if key.startswith("season")
                  else windows.calendar_window(conn, guild, key.split(":")[0]))  # fmt: skip
        for _ in range(200 // len(keys) + 1):
            user = BASE_USER + rnd.randint(1, members)
            naive = conn.execute(
                "SELECT coalesce(sum(amount), 0) FROM transactions WHERE guild_id = %s AND user_id = %s "
                "AND created_at >= %s AND created_at < %s", (guild, user, window.starts_at, window.ends_at)
            ).fetchone()[0]  # fmt: skip
            place = windows.window_rank(conn, guild, key, user)
            above = conn.execute("SELECT count(*) FROM window_scores WHERE guild_id = %s AND period = %s AND score > %s",
                                 (guild, key, place.score)).fetchone()[0]  # fmt: skip
            bad += place.score != naive or place.rank != above + 1
    return bad


def _board_fns(conn, guild: int, keys: list[str], pages: dict, all_pages: int, rnd, pick) -> dict:
    week_key, month_key, season_key = keys

    def page_of(key: str) -> Callable[[], object]:
        return lambda: windows.window_board(conn, guild, key, rnd.randint(1, min(pages[key], 100_000)), PAGE)

    fns = {
        "all-time top 10 (reference)": lambda: ledger.leaderboard_page(conn, guild, 1, PAGE),
        "all-time random page (reference)": lambda: ledger.leaderboard_page(
            conn, guild, rnd.randint(1, min(all_pages, 100_000)), PAGE),
        "all-time rank (reference)": lambda: ledger.rank_of(conn, guild, next(pick)),
        "week top 10": lambda: windows.window_board(conn, guild, week_key, 1, PAGE),
        "week random page": page_of(week_key),
        "week rank": lambda: windows.window_rank(conn, guild, week_key, next(pick)),
        "month top 10": lambda: windows.window_board(conn, guild, month_key, 1, PAGE),
        "month random page": page_of(month_key),
        "month rank": lambda: windows.window_rank(conn, guild, month_key, next(pick)),
        "season top 10": lambda: windows.window_board(conn, guild, season_key, 1, PAGE),
        "season random page": page_of(season_key),
        "season rank": lambda: windows.window_rank(conn, guild, season_key, next(pick)),
    }  # fmt: skip
    return fns


def bench_boards(dsn: str, sizes: list[int], reps: int, budget_s: float, naive_reps: int, log=print) -> dict:
    results = {}
    for members in sizes:
        guild = GUILD + members
        loaded = load(dsn, guild, members, log)

        rnd = random.Random(members)
        with psycopg.connect(dsn, autocommit=True) as conn:
            mismatches = _check(conn, guild, members, loaded["keys"], loaded["season_id"])
            sizes_of = {k: windows.window_members(conn, guild, k) for k in loaded["keys"]}
            pages = {k: -(-n // PAGE) for k, n in sizes_of.items()}
            all_pages = -(-members // PAGE)
            users = [BASE_USER + rnd.randint(1, members) for _ in range(1000)]
            pick = itertools.cycle(users)

            fns = _board_fns(conn, guild, loaded["keys"], pages, all_pages, rnd, pick)
            latency = _interleaved(fns, reps, budget_s)
            week = windows.calendar_window(conn, guild, "week")
            latency.update(_interleaved(_naive_week(conn, guild, week), naive_reps, budget_s / 4))
        ref = {"top 10": latency["all-time top 10 (reference)"], "random page": latency["all-time random page (reference)"],
               "rank": latency["all-time rank (reference)"]}  # fmt: skip
        ratios = {}
        for name, row in latency.items():
            kind = next((k for k in ("top 10", "random page", "rank") if name.endswith(k)), None)
            if kind and "reference" not in name and not name.startswith("naive"):
                ratios[name] = round(row["p99_ms"] / ref[kind]["p99_ms"], 2)
        log(f"  {members:,} members: window sizes {sizes_of}; exactness mismatches {mismatches}")
        for name, row in latency.items():
            extra = f"  p99 ratio to all-time {ratios[name]}" if name in ratios else ""
            log(
                f"    {name:44} p50 {row['p50_ms']:9.3f} ms  p99 {row['p99_ms']:9.3f} ms  (n={row['n']}){extra}"
            )
        results[members] = {"load": loaded["timings"], "window_members": sizes_of, "mismatches": mismatches,
                            "latency": latency, "p99_ratio_to_all_time": ratios, "season_id": loaded["season_id"]}  # fmt: skip
    return results


# -- the Leaderboard pages (admin and public) ---------------------------------------------------------
class _NoQueue:
    """The pages ask the worker to refresh stale names; the bench drops those requests."""

    def send(self, task) -> None:
        return None


def _site_client(dsn: str, guild: int):
    """The admin site's Lambda handler in-process on this database: a signed-in local admin of
    `guild`, and a GET that returns (status, body length)."""
    import os

    from admin_site.app import lambda_handler
    from pointsbot.admin import auth
    from pointsbot.delivery import tasks
    from pointsbot.platform import config, runtime
    from pointsbot_local import apigw

    # The public page's limit counts every request (one statement) but never refuses the bench.
    os.environ["PUBLIC_BOARD_RATE_LIMIT"] = "1000000000"
    config.reset_settings()
    runtime.reset()
    runtime.set_database(Database(dsn))
    tasks.set_task_queue(_NoQueue())
    db = runtime.get_database()
    if not db.run(lambda conn: conn.execute(
            "SELECT 1 FROM admin_accounts WHERE lower(name) = 'bench-admin'").fetchone()):  # fmt: skip
        db.run(auth.create_account, "bench-admin", "bench admin password", [guild])  # a kept database has it
    db.run(lambda conn: conn.execute(
        "UPDATE guilds SET settings = settings || '{\"public_leaderboard\": true}' WHERE guild_id = %s", (guild,)))  # fmt: skip
    cookie: dict[str, str] = {}

    def get(path: str, form: dict | None = None, address: str = "198.51.100.9") -> tuple[int, int]:
        from urllib.parse import urlencode

        headers = {"host": "bench.test"}
        if cookie:
            headers["cookie"] = "pointsbot_admin=" + cookie["v"]
        body = b""
        if form is not None:
            headers["content-type"] = "application/x-www-form-urlencoded"
            body = urlencode(form).encode()
        event = apigw.to_event("POST" if form is not None else "GET", path, headers, body, source_ip=address)
        result = lambda_handler(event, apigw.LambdaContext("admin_site"))
        for c in result.get("cookies", []):
            name, _, rest = c.partition("=")
            if name == "pointsbot_admin" and rest.split(";", 1)[0]:
                cookie["v"] = rest.split(";", 1)[0]
        return result["statusCode"], len(result.get("body") or "")

    import re

    event = apigw.to_event("GET", "/admin/login", {"host": "bench.test"}, b"", source_ip="198.51.100.9")
    first = lambda_handler(event, apigw.LambdaContext("admin_site"))
    cookie["v"] = first["cookies"][0].split("=", 1)[1].split(";", 1)[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', first["body"]).group(1)
    status, _ = get(
        "/admin/login", {"csrf_token": token, "name": "bench-admin", "password": "bench admin password"}
    )
    assert status == 303, status
    return get, db


def bench_pages(dsn: str, members: int, reps: int, budget_s: float, log=print) -> dict:
    """The admin Leaderboard page and the public page, whole requests through the admin site's
    handler (session, rate limit, loader, names, template, ETag), for a random deep page of the
    all-time board and of this week's, interleaved with the slash command's reads of the same
    pages (ledger.leaderboard_page / windows.window_board, the reference)."""
    from pointsbot.community import boards

    guild = GUILD + members
    loaded = load(dsn, guild, members, log)
    week_key = loaded["keys"][0]
    rnd = random.Random(members + 1)
    get, db = _site_client(dsn, guild)
    with psycopg.connect(dsn, autocommit=True) as conn:
        week_members = windows.window_members(conn, guild, week_key)
        # The slash command's 10-row pages and the site's 25-row pages over the same places.
        cmd_pages = {"all": min(-(-members // PAGE), 100_000), "week": min(-(-week_members // PAGE), 100_000)}
        site_pages = {"all": min(-(-members // boards.PAGE_SIZE), 100_000),
                      "week": min(-(-week_members // boards.PAGE_SIZE), 100_000)}  # fmt: skip
        statuses: list[int] = []
        addresses = [f"203.0.113.{i}" for i in range(1, 200)]

        def page_get(path: str) -> Callable[[], object]:
            def go() -> None:
                status, _ = get(path, address=rnd.choice(addresses))
                statuses.append(status)

            return go

        fns = {
            "slash command all-time random page (reference)": lambda: ledger.leaderboard_page(
                conn, guild, rnd.randint(1, cmd_pages["all"]), PAGE),
            "admin page all-time random page": lambda: page_get(
                f"/admin/g/{guild}/leaderboard?page={rnd.randint(1, site_pages['all'])}")(),
            "public page all-time random page": lambda: page_get(
                f"/admin/leaderboard/{guild}?page={rnd.randint(1, site_pages['all'])}")(),
            "slash command week random page (reference)": lambda: windows.window_board(
                conn, guild, week_key, rnd.randint(1, cmd_pages["week"]), PAGE),
            "admin page week random page": lambda: page_get(
                f"/admin/g/{guild}/leaderboard?period={week_key}&page={rnd.randint(1, site_pages['week'])}")(),
            "public page week random page": lambda: page_get(
                f"/admin/leaderboard/{guild}?period={week_key}&page={rnd.randint(1, site_pages['week'])}")(),
        }  # fmt: skip
        latency = _interleaved(fns, reps, budget_s)
    db.close()
    bad = sorted({s for s in statuses if s != 200})
    ratios = {}
    for name, row in latency.items():
        if "reference" in name:
            continue
        ref = latency[f"slash command {'week' if 'week' in name else 'all-time'} random page (reference)"]
        ratios[name] = {
            "p99": round(row["p99_ms"] / ref["p99_ms"], 2),
            "p50": round(row["p50_ms"] / ref["p50_ms"], 2),
        }
    log(
        f"  {members:,} members ({week_members:,} in this week's board); statuses other than 200: {bad or 'none'}"
    )
    for name, row in latency.items():
        extra = (
            f"  ratio to the slash command's read p99 {ratios[name]['p99']}x, p50 {ratios[name]['p50']}x"
            if name in ratios
            else ""
        )
        log(f"    {name:48} p50 {row['p50_ms']:9.3f} ms  p99 {row['p99_ms']:9.3f} ms  (n={row['n']}){extra}")
    return {"members": members, "week_members": week_members, "load": loaded["timings"], "latency": latency,
            "ratio_to_slash_command": ratios, "non_200": bad}  # fmt: skip


class _Killed(Exception):
    pass


def _backend_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) the server process `pid` has used, when the server runs on
    this machine: on a shared machine the wall time is the load's, this is the work's."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_season_end(dsn: str, members: int, season_id: int, log=print, kill_after_batches: int = 0) -> dict:
    """`seasons.run_end` over the guild; with `kill_after_batches`, the first run dies right after
    that many reset batches committed and a second run carries the end on from there (the wall
    time is both runs')."""
    guild = GUILD + members
    db = Database(dsn, pooled=False, statement_timeout_ms=600_000)  # the checks below read 10M entries
    # The reset's second lane runs on a connection of its own (seasons._reset_in_lanes); made
    # here, not by run_end, so its server process's CPU can be read too.
    second = Database(dsn, pooled=False, statement_timeout_ms=600_000)
    try:
        db.run(lambda conn: conn.execute("UPDATE seasons SET ends_at = now() WHERE id = %s", (season_id,)))
        nonzero_before = db.run(lambda conn: conn.execute(
            "SELECT count(*) FROM points WHERE guild_id = %s AND balance <> 0", (guild,)).fetchone()[0])  # fmt: skip
        steps: dict[int, float] = {}
        batches = {"n": 0}
        backends = [
            d.run(lambda conn: conn.execute("SELECT pg_backend_pid()").fetchone()[0]) for d in (db, second)
        ]
        cpu_before = [_backend_cpu_s(b) for b in backends]
        load_before = os.getloadavg()[0]
        started = time.perf_counter()

        def mark(step: int) -> None:
            first = step not in steps
            steps.setdefault(step, time.perf_counter() - started)
            if step == 1 and not first:
                batches["n"] += 1  # after the archive (the first 1), each reset batch committed
                if kill_after_batches and batches["n"] == kill_after_batches:
                    raise _Killed

        killed_at_s = None
        try:
            report = seasons.run_end(db, season_id, client=object(), after_step=mark, companion=second)
        except _Killed:
            killed_at_s = round(time.perf_counter() - started, 1)
            log(f"  killed after {kill_after_batches} reset batches at {killed_at_s} s; running again")
            report = seasons.run_end(db, season_id, client=object(), after_step=mark, companion=second)
        wall = time.perf_counter() - started
        cpu_after = [_backend_cpu_s(b) for b in backends]
        server_cpu = (
            round(sum(a - b for a, b in zip(cpu_after, cpu_before, strict=True)), 1)
            if None not in cpu_before and None not in cpu_after
            else None
        )
        lanes = db.run(lambda conn: conn.execute(
            "SELECT count(*) FROM season_reset_lanes WHERE season_id = %s", (season_id,)).fetchone()[0])  # fmt: skip
        load_after = os.getloadavg()[0]
        reset_twice = db.run(lambda conn: conn.execute(
            "SELECT count(*) FROM (SELECT user_id FROM transactions WHERE guild_id = %s AND kind = 'season_reset' "
            "GROUP BY user_id HAVING count(*) > 1) d", (guild,)).fetchone()[0])  # fmt: skip
        resets_written = db.run(lambda conn: conn.execute(
            "SELECT count(*) FROM transactions WHERE guild_id = %s AND kind = 'season_reset'", (guild,)).fetchone()[0])  # fmt: skip
        with db.connection() as conn:
            total_entries, total_balance, nonzero, archived = conn.execute(
                "SELECT (SELECT sum(amount) FROM transactions WHERE guild_id = %(g)s), "
                "(SELECT sum(balance) FROM points WHERE guild_id = %(g)s), "
                "(SELECT count(*) FROM points WHERE guild_id = %(g)s AND balance <> 0), "
                "(SELECT count(*) FROM season_standings WHERE season_id = %(s)s)", {"g": guild, "s": season_id}
            ).fetchone()  # fmt: skip
        out = {"members": members, "wall_s": round(wall, 1), "archived": report.archived, "prizes": report.prizes,
               "resets": report.resets, "finished": report.finished,
               "step_done_at_s": {k: round(v, 1) for k, v in steps.items()},
               "sum_entries_equals_sum_balances": total_entries == total_balance, "nonzero_balances_after": nonzero,
               "standings_rows": archived, "killed_at_s": killed_at_s, "nonzero_balances_before": nonzero_before,
               "reset_entries": resets_written, "members_reset_twice": reset_twice,
               "wall_to_goal_60_s": round(wall / 60, 3), "server_cpu_s": server_cpu, "reset_lanes": lanes,
               "load_average_before_after": [round(load_before, 1), round(load_after, 1)]}  # fmt: skip
        log(f"  season end over {members:,} members: {out['wall_s']} s wall ({out['wall_to_goal_60_s']}x the 60 s goal; "
            f"the server processes' CPU {server_cpu} s; load average {out['load_average_before_after']}; "
            f"reset lanes {lanes}); "
            f"steps done at {out['step_done_at_s']} s; archived {archived:,}, prizes {report.prizes}, "
            f"reset entries {resets_written:,} for {nonzero_before:,} non-zero balances, members reset twice "
            f"{reset_twice}; sum(entries) == sum(balances): {out['sum_entries_equals_sum_balances']}")  # fmt: skip
        return out
    finally:
        db.close()
        second.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--embedded", action="store_true")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument(
        "--only",
        choices=("writes", "boards", "pages", "end"),
        default=None,
        help="end: load the largest size only and measure the season end",
    )
    parser.add_argument(
        "--kill-after-batches",
        type=int,
        default=0,
        help="the season end's first run dies after this many reset batches; a second continues",
    )
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if not args.quick else [10_000, 100_000]
    out: dict = {"started": datetime.now(UTC).isoformat(), "shared_machine": True}
    with server(args.embedded) as target, bench_database(target) as dsn:
        print(f"Postgres {target.version} ({target.source}); shared 2-core machine, numbers indicative")
        if args.only == "pages":  # not in the default run: one size (the largest), the pages only
            print("Leaderboard pages (admin and public) beside the slash command's read:")
            out["pages"] = bench_pages(
                dsn, max(sizes), 50 if args.quick else args.reps, 30.0 if args.quick else 150.0
            )
        if args.only in (None, "writes"):
            print("Ledger writes with and without the window trigger (one client):")
            out["writes"] = bench_writes(dsn, 6.0 if args.quick else args.seconds, 3 if args.quick else 6)
        if args.only in (None, "boards"):
            print("Window boards and ranks beside the all-time board:")
            out["boards"] = bench_boards(dsn, sizes, 50 if args.quick else args.reps, 30.0 if args.quick else 120.0,
                                         5 if args.quick else 10)  # fmt: skip
            largest = max(sizes)
            print("Season end:")
            out["season_end"] = bench_season_end(dsn, largest, out["boards"][largest]["season_id"],
                                                 kill_after_batches=args.kill_after_batches)  # fmt: skip
        if args.only == "end":
            largest = max(sizes)
            print(f"Season end over {largest:,} members (loaded alone):")
            loaded = load(dsn, GUILD + largest, largest, print, season_only=True)
            out["season_end"] = bench_season_end(dsn, largest, loaded["season_id"],
                                                 kill_after_batches=args.kill_after_batches)  # fmt: skip
            out["season_end"]["load"] = loaded["timings"]
    folder = Path(__file__).resolve().parent / "results"
    folder.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    (folder / f"{stamp}-seasons.json").write_text(json.dumps(out, indent=2, default=str))
    print(f"written: bench/results/{stamp}-seasons.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
