"""Buyers for the store's concurrency tests, importable by a separate process (spawn)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from pointsbot.community import store
from pointsbot.platform.db import Database
from pointsbot.platform.errors import DomainError


def outcome_of(exc: BaseException | None) -> str:
    """ "sold", or the refusal's code ("sold_out", "purchase_limit", ...), or the error's repr."""
    if exc is None:
        return "sold"
    if isinstance(exc, DomainError):
        return exc.code
    return f"error: {exc!r}"[:300]


def buy_all(
    dsn: str, guild: int, reward_id: int, buyers: list[tuple[int, int]], *, pool: int = 5,
    prepare_threshold: int = 5, start: Any = None,
) -> Counter[str]:  # fmt: skip
    """Each (user id, interaction id) buys one `reward_id` on a thread of its own, all started
    together (after `start`, a barrier shared with other processes, when given)."""
    database = Database(dsn, pooled=True, pool_max=pool, connect_timeout_s=60, statement_timeout_ms=60_000,
                        prepare_threshold=prepare_threshold)  # fmt: skip
    together = threading.Barrier(len(buyers))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def buy(user: int, interaction: int) -> None:
        together.wait()
        try:
            database.run(store.purchase, guild_id=guild, user_id=user, reward_id=reward_id,
                         interaction_id=interaction, actor_name="buyer")  # fmt: skip
            result = None
        except Exception as exc:  # judged by the test
            result = exc
        with lock:
            outcomes[outcome_of(result)] += 1

    try:
        if start is not None:
            start.wait()
        threads = [threading.Thread(target=buy, args=b) for b in buyers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        database.close()
    return outcomes


def buyer_process(dsn: str, guild: int, reward_id: int, buyers: list[tuple[int, int]], prepare_threshold: int,
                  start: Any, results: Any) -> None:  # fmt: skip
    """A separate process's buyers; its outcome counts go to `results` (a multiprocessing queue)."""
    try:
        results.put(
            dict(buy_all(dsn, guild, reward_id, buyers, prepare_threshold=prepare_threshold, start=start))
        )
    except BaseException as exc:
        results.put({f"process error: {exc!r}": len(buyers)})
