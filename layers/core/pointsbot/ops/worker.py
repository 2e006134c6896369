"""The worker's dispatch: each task kind names the function that carries it out.

A task function takes the Task and raises to ask for redelivery; it must be idempotent,
because SQS delivers at least once.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable

from ..delivery.tasks import Task

# kind -> (module, function). Imported on first use so a worker that only delivers DMs does
# not pay for the interaction code on a cold start, and the other way round.
TASK_HANDLERS: dict[str, tuple[str, str]] = {
    "interaction": ("pointsbot.commands.deferred", "complete_interaction"),
    "deliver_dms": ("pointsbot.delivery.outbox", "deliver_task"),
}


class UnknownTask(ValueError):
    pass


def handler_for(kind: str) -> Callable[[Task], None]:
    try:
        module_name, function = TASK_HANDLERS[kind]
    except KeyError:
        raise UnknownTask(f"no handler for task kind {kind!r}") from None
    return getattr(importlib.import_module(module_name), function)


def run_task(task: Task) -> None:
    handler_for(task.kind)(task)


# When the current invocation must be done (monotonic clock), so a long task (DM delivery)
# stops in time and hands the rest on instead of being killed by Lambda's timeout.
_deadline: float | None = None


def set_deadline(remaining_ms: int | None) -> None:
    """Called by the worker handler with the invocation's remaining time (None: no limit)."""
    global _deadline
    _deadline = None if remaining_ms is None else time.monotonic() + remaining_ms / 1000


def time_left_s() -> float | None:
    """Seconds left in the current invocation, or None outside one."""
    return None if _deadline is None else _deadline - time.monotonic()
