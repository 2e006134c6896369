"""One budget of requests per second for everything the bot token does, shared by every
container: a token bucket in the database (`dm_pacer`, GCRA: a "theoretical arrival time"
moved on by 1 / rate per slot), so any number of workers together stay at DM_RATE_PER_SECOND,
evenly spaced. The REST client calls a `SharedPacer` before each bot request."""

from __future__ import annotations

import time

import psycopg

from ..platform import config, runtime
from ..platform.db import DatabaseUnavailable
from ..platform.observability import logger


def reserve_slots(conn: psycopg.Connection, count: int, rate: float) -> tuple[float, float]:
    """Reserve `count` request slots in the shared bucket.

    Returns (start, now) in database seconds: the k-th request (from 0) may go at
    start + k / rate. Slots are never handed out faster than `rate`, whoever asks.
    """
    row = conn.execute(
        """
        WITH clock AS (SELECT clock_timestamp() AS now)
        UPDATE dm_pacer SET tat = greatest(tat, clock.now) + make_interval(secs => %(n)s / %(rate)s)
        FROM clock WHERE id = 1
        RETURNING extract(epoch FROM tat) - %(n)s / %(rate)s, extract(epoch FROM clock.now)
        """,
        {"n": float(count), "rate": float(rate)},
    ).fetchone()
    return float(row[0]), float(row[1])


def booked_ahead_s(conn: psycopg.Connection) -> float:
    """How far into the future the shared bucket is booked (0 when it is free now)."""
    row = conn.execute(
        "WITH clock AS (SELECT clock_timestamp() AS now) "
        "SELECT extract(epoch FROM greatest(tat, clock.now) - clock.now)::float8 FROM dm_pacer, clock WHERE id = 1"
    ).fetchone()
    return 0.0 if row is None or row[0] is None else float(row[0])


class SharedPacer:
    """One slot of the shared bucket (`dm_pacer`) right before each Discord request, and a sleep
    until it: the `pacer` of the bot's REST client, so every bot call (DMs, DM channel opens,
    whatever else uses the bot token) of every worker draws on one budget of
    DM_RATE_PER_SECOND.

    Reserving per request rather than per batch means a slow answer from Discord never leaves
    a worker behind its slots and then sending them late, in a burst next to another worker's.
    Without a database (down, or none in this process) a request goes unpaced rather than not
    at all: Discord's 429s, which the client waits out, still hold it back.
    """

    def __init__(self, database=None, rate: float | None = None) -> None:
        self._database = database  # None: the container's (runtime.get_database()) at each call
        self._rate = rate  # None: DM_RATE_PER_SECOND at each call

    def __call__(self) -> None:
        database = self._database
        if database is None:
            database = runtime.get_database()
        rate = self._rate
        if rate is None:
            rate = config.get_settings().dm_rate_per_second
        try:
            start, db_now = database.run(reserve_slots, 1, float(rate))
        except DatabaseUnavailable:
            logger.warning("the shared Discord pacer is unreachable; this request goes unpaced")
            return
        if start > db_now:
            time.sleep(start - db_now)
