"""The worker's dispatch: each task kind names the function that carries it out.

A task function takes the Task and raises to ask for redelivery; it must be idempotent,
because SQS delivers at least once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ..delivery.tasks import Task, set_deadline, time_left_s

__all__ = [
    "MAX_RECEIVES",
    "TASK_HANDLERS",
    "UnknownTask",
    "handler_for",
    "run_task",
    "set_deadline",
    "time_left_s",
]

# kind -> (module, function). Imported on first use so a worker that only delivers DMs does
# not pay for the interaction code on a cold start, and the other way round.
TASK_HANDLERS: dict[str, tuple[str, str]] = {
    "interaction": ("pointsbot.commands.deferred", "complete_interaction"),
    "deliver_dms": ("pointsbot.ops.worker", "deliver_dms_and_role_changes"),
    "apply_role_changes": ("pointsbot.community.roles", "apply_task"),
    "end_seasons": ("pointsbot.community.seasons", "end_task"),
    "refresh_profiles": ("pointsbot.community.profiles", "refresh_task"),
    "deliver_webhooks": ("pointsbot.community.webhooks", "deliver_task"),
}


def deliver_dms_and_role_changes(task: Task) -> None:
    """The "deliver_dms" task: deliver due DMs, then make due role changes, and ask for webhook delivery when an event is due. Every place that
    changes points asks for DM delivery after COMMIT, and a threshold crossed or an achievement's
    role rides on the same change, so this one wake-up serves both (roles have their own task,
    "apply_role_changes", for the callers that know they asked for one)."""
    from ..community import roles, webhooks
    from ..delivery import outbox
    from ..platform.runtime import get_database

    outbox.deliver_task(task)
    if get_database().run(roles.due_count):
        roles.apply_due(get_database())
    # The same wake-up follows every change that may have queued a webhook event; the events
    # go out in a task of their own, so a slow receiver never holds up DMs.
    if get_database().run(webhooks.next_due_in_s) == 0:
        webhooks.request_delivery()


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
