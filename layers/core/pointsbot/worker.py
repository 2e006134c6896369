"""The worker's dispatch: each task kind names the function that carries it out.

A task function takes the Task and raises to ask for redelivery; it must be idempotent,
because SQS delivers at least once.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from contextvars import ContextVar

from .tasks import Task

# kind -> (module, function). Imported on first use so a worker that only delivers DMs does
# not pay for the interaction code on a cold start, and the other way round.
TASK_HANDLERS: dict[str, tuple[str, str]] = {
    "interaction": ("pointsbot.deferred", "complete_interaction"),
    "deliver_dms": ("pointsbot.outbox", "deliver_task"),
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


# How many times SQS hands a message to the worker before moving it to the dead-letter queue
# (template.yaml's maxReceiveCount; the local queue uses the same).
MAX_RECEIVES = 5

# When the current invocation must be done (monotonic clock), so a long task (DM delivery)
# stops in time and hands the rest on instead of being killed by Lambda's timeout. A context
# variable, so the local runtime's worker threads each have their own.
_deadline: ContextVar[float | None] = ContextVar("worker_deadline", default=None)


def set_deadline(remaining_ms: int | None) -> None:
    """Called by the worker handler with the invocation's remaining time (None: no limit)."""
    _deadline.set(None if remaining_ms is None else time.monotonic() + remaining_ms / 1000)


def time_left_s() -> float | None:
    """Seconds left in the current invocation, or None outside one."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()
