"""Health checks: `alive` costs nothing; `deep` makes a database round trip."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .db import Database, DatabaseUnavailable, run_within
from .migrate import schema_version

# UptimeRobot (and anyone looking) should hear "503" within 3 s of asking, whether the database
# refuses connections, is slow, or hangs; the connect and statement timeouts alone can add up
# to 10 s, and a hung server honours neither.
DEEP_CHECK_BUDGET_S = 2.0


@dataclass(frozen=True)
class DeepHealth:
    ok: bool
    schema_version: int | None
    database_ms: float
    error: str | None = None

    def as_dict(self) -> dict:
        return {
            "status": "ok" if self.ok else "error",
            "database": "ok" if self.ok else "unreachable",
            "schema_version": self.schema_version,
            "database_ms": round(self.database_ms, 1),
            **({"error": self.error} if self.error else {}),
        }


def deep_check(database: Database) -> DeepHealth:
    started = time.perf_counter()
    try:
        version = run_within(DEEP_CHECK_BUDGET_S, database.run, schema_version)
    except DatabaseUnavailable as exc:
        return DeepHealth(False, None, (time.perf_counter() - started) * 1000, str(exc)[:200])
    return DeepHealth(version is not None, version, (time.perf_counter() - started) * 1000)
