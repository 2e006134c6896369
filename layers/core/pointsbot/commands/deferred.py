"""Deferred interactions: the interactions function answered "thinking..." and queued the
interaction; the worker runs the same command (idempotently, keyed by the interaction id) and
edits the original answer through Discord's webhook endpoint.

While the database stays unreachable the worker tries again with growing delays, and when the
interaction token (15 minutes) would run out first, it says "try again in a moment" instead.
"""

from __future__ import annotations

import time
from typing import Any

from ..delivery.tasks import Task
from ..discord.interactions import Interaction, Reply, RequestRejected, parse

TASK_KIND = "interaction"
# Seconds before each further attempt while the database is unreachable: about a minute in
# all, so "try again in a moment" comes while the member still remembers asking.
RETRY_DELAYS_S = (2, 4, 8, 15, 30)
TOKEN_LIFETIME_S = 15 * 60
# Leave time for the last attempt and the edit itself before the token expires.
TOKEN_MARGIN_S = 60
TRY_AGAIN = (
    "The points database is not answering right now, so nothing was changed. Please try again in a moment."
)
SOMETHING_WENT_WRONG = "Something went wrong on our side and nothing was changed. Please try again later."


def task_for(interaction: Interaction, attempt: int = 1) -> Task:
    return Task(TASK_KIND, {"interaction": interaction.raw, "attempt": attempt})


def enqueue(interaction: Interaction, attempt: int = 1, delay_seconds: int = 0) -> None:
    """Hand an interaction to the worker; raises if the queue cannot take it."""
    from ..delivery.tasks import get_task_queue

    get_task_queue().send(task_for(interaction, attempt), delay_seconds=delay_seconds)


def _retry_later(interaction: Interaction, attempt: int, age: float) -> bool:
    """Queue the next attempt if there is time for it; False means give up now."""
    from ..platform.observability import logger

    if attempt > len(RETRY_DELAYS_S):
        return False
    delay = RETRY_DELAYS_S[attempt - 1]
    if age + delay > TOKEN_LIFETIME_S - TOKEN_MARGIN_S:
        return False
    try:
        enqueue(interaction, attempt + 1, delay)
    except Exception:  # the queue is down too: tell the member now rather than never
        logger.warning("could not queue the next attempt of a deferred interaction", exc_info=True)
        return False
    logger.info("database unavailable; deferred interaction retried later",
                extra={"attempt": attempt, "delay_s": delay})  # fmt: skip
    return True


def complete_interaction(
    task: Task, *, database: Any = None, client: Any = None, now: float | None = None
) -> None:
    """The worker's handler for "interaction" tasks. Raises to have SQS deliver it again."""
    from .. import commands
    from ..discord import rest as discord_rest
    from ..platform import runtime
    from ..platform.db import DatabaseUnavailable
    from ..platform.observability import logger

    raw = task.payload.get("interaction")
    try:
        interaction = parse(raw if isinstance(raw, dict) else {})
    except RequestRejected:
        logger.error("unreadable deferred interaction dropped")
        return
    logger.set_correlation_id(interaction.id)
    attempt = int(task.payload.get("attempt") or 1)
    age = (time.time() if now is None else now) - interaction.created_at
    if age > TOKEN_LIFETIME_S - 5:
        # Nothing can be shown any more, and a change the member never saw confirmed would
        # surprise them: drop it.
        logger.warning("deferred interaction expired before it could run", extra={"age_s": round(age)})
        return
    try:
        outcome = commands.execute(database or runtime.get_database(), interaction)
        reply = outcome.reply
        logger.info(
            "deferred interaction done", extra={"command": outcome.command, "outcome": outcome.status}
        )
    except DatabaseUnavailable:
        if _retry_later(interaction, attempt, age):
            return
        reply = Reply(TRY_AGAIN, ephemeral=True)
        logger.warning("deferred interaction gave up: database unavailable", extra={"attempt": attempt})
    except Exception:  # a bug will not go away on redelivery: say so instead of "thinking..." forever
        logger.exception("deferred command failed")
        reply = Reply(SOMETHING_WENT_WRONG, ephemeral=True)
    client = client or discord_rest.get_client()
    try:
        client.edit_original(interaction.application_id, interaction.token, reply.as_edit())
    except discord_rest.UnknownWebhook:
        logger.warning("interaction token no longer valid; answer not shown")
