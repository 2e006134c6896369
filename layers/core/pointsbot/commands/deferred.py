"""Deferred interactions: the interactions function answered "thinking..." and queued the
interaction; the worker runs the same command (idempotently, keyed by the interaction id) and
edits the original answer through Discord's webhook endpoint.

Every deferred interaction ends in exactly one of two ways, each with a log line and a metric:
done once (`DeferredDone`: the command ran, or had run, under its interaction id; its answer
then replaces "thinking..."), or a final "try again" edit (`DeferredGaveUp`: the database
stayed away through every attempt, or the command failed, and nothing was changed). An answer
that could not be shown at all (the token ran out first, Discord refused the edit to the end)
is also counted as `DeferredLost` and logged at warning: that member was left at "thinking...".

The attempts never rely on SQS redelivering a failed message (that comes back only after the
queue's visibility timeout, minutes later): a task that cannot finish now queues its own next
attempt with a delay, and knows when the 15-minute token leaves no time for one.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from ..delivery.tasks import Task
from ..discord.interactions import Interaction, Reply, RequestRejected, parse
from ..platform.i18n import N_, translator
from ..platform.observability import logger, metrics

TASK_KIND = "interaction"
# Seconds before each further attempt while the database is unreachable: about a minute in
# all, so "try again in a moment" comes while the member still remembers asking.
RETRY_DELAYS_S = (2, 4, 8, 15, 30)
# Seconds before each further try of the edit itself when Discord did not take it (5xx,
# network, rate limit); the token's lifetime ends them in any case.
EDIT_RETRY_DELAYS_S = (2, 5, 15, 30, 60, 120, 240)
TOKEN_LIFETIME_S = 15 * 60
# Leave time for the last attempt and the edit itself before the token expires.
TOKEN_MARGIN_S = 60
# A task needs about this long (a connection, the command's statements, the edit); with less
# left in the worker's invocation it is queued again instead of being cut off by its timeout.
TASK_NEEDS_S = 20.0
TRY_AGAIN = N_(
    "The points database is not answering right now, so nothing was changed. Please try again in a moment."
)
SOMETHING_WENT_WRONG = N_("Something went wrong on our side and nothing was changed. Please try again later.")

DONE, GAVE_UP = "done", "gave_up"


class _Outage:
    """What this container knows of the database while deferred tasks find it unreachable.

    During an outage every task would otherwise wait for a connection of its own (seconds
    each: a backlog of thousands would take hours to get through, and a batch of ten would
    outlast the worker's timeout). Instead one task at a time tries the database (the probe);
    the others go straight on to their next attempt. The first task that reaches it ends the
    outage.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down = False
        self._probing = False

    def begin(self) -> bool | None:
        """None: skip the database this time. True: try it as the probe. False: just try it."""
        with self._lock:
            if not self._down:
                return False
            if self._probing:
                return None
            self._probing = True
            return True

    def end(self, probe: bool | None, reachable: bool | None) -> None:
        """After a try: `reachable` None when the try said nothing about the database."""
        with self._lock:
            if probe:
                self._probing = False
            if reachable is not None:
                self._down = not reachable


outage = _Outage()


def task_for(interaction: Interaction, attempt: int = 1) -> Task:
    return Task(TASK_KIND, {"interaction": interaction.raw, "attempt": attempt})


def _answer_task(interaction: Interaction, reply: Reply, end: str, try_: int) -> Task:
    """A task that only shows an answer already decided (the command is not run again)."""
    return Task(TASK_KIND, {"interaction": interaction.raw, "answer": reply.to_json(), "end": end,
                            "edit_try": try_})  # fmt: skip


def enqueue(interaction: Interaction, attempt: int = 1, delay_seconds: int = 0) -> None:
    """Hand an interaction to the worker; raises if the queue cannot take it."""
    from ..delivery.tasks import get_task_queue

    get_task_queue().send(task_for(interaction, attempt), delay_seconds=delay_seconds)


def _retry_later(interaction: Interaction, attempt: int, age: float) -> bool:
    """Queue the next attempt if there is time for it; False means give up now."""

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
    """The worker's handler for "interaction" tasks. Ends in an answer, a queued next
    attempt, or a log line saying why neither was possible; it raises only on a bug."""
    from .. import commands
    from ..delivery.tasks import time_left_s
    from ..platform import runtime
    from ..platform.db import DatabaseUnavailable

    raw = task.payload.get("interaction")
    try:
        interaction = parse(raw if isinstance(raw, dict) else {})
    except RequestRejected:
        logger.error("unreadable deferred interaction dropped")
        metrics.add_metric(name="DeferredLost", unit=MetricUnit.Count, value=1)
        return
    logger.set_correlation_id(interaction.id)
    age = (time.time() if now is None else now) - interaction.created_at
    if age > TOKEN_LIFETIME_S - 5:
        # Nothing can be shown any more, and a change the member never saw confirmed would
        # surprise them: drop it.
        logger.warning("deferred interaction expired before it could run", extra={"age_s": round(age)})
        metrics.add_metric(name="DeferredLost", unit=MetricUnit.Count, value=1)
        return
    if isinstance(task.payload.get("answer"), dict):
        # The command's outcome is known; only showing it is left.
        end = DONE if task.payload.get("end") == DONE else GAVE_UP
        reply = Reply.from_json(task.payload["answer"])
        _show(interaction, reply, end, age, int(task.payload.get("edit_try") or 1), client)
        return
    attempt = int(task.payload.get("attempt") or 1)
    left = time_left_s()
    if left is not None and left < TASK_NEEDS_S and _requeue(interaction, attempt):
        return
    probe = outage.begin()
    reachable: bool | None = None
    try:
        if probe is None:
            raise DatabaseUnavailable("the database was unreachable a moment ago")
        outcome = commands.execute(database or runtime.get_database(), interaction)
        reachable = True
        reply, end = outcome.reply, DONE
        logger.info("deferred interaction done", extra={"command": outcome.command, "outcome": outcome.status,
                                                        "attempt": attempt})  # fmt: skip
        metrics.add_metric(name="DeferredDone", unit=MetricUnit.Count, value=1)
    except DatabaseUnavailable:
        reachable = False if probe is not None else None
        if _retry_later(interaction, attempt, age):
            return
        reply, end = Reply(translator(interaction.locale)._(TRY_AGAIN), ephemeral=True), GAVE_UP
        logger.warning("deferred interaction gave up: database unavailable", extra={"attempt": attempt})
        metrics.add_metric(name="DeferredGaveUp", unit=MetricUnit.Count, value=1)
    except Exception:  # a bug will not go away on redelivery: say so instead of "thinking..." forever
        logger.exception("deferred command failed; the member is asked to try again later")
        reply, end = Reply(translator(interaction.locale)._(SOMETHING_WENT_WRONG), ephemeral=True), GAVE_UP
        metrics.add_metric(name="DeferredGaveUp", unit=MetricUnit.Count, value=1)
    finally:
        outage.end(probe, reachable)
    _show(interaction, reply, end, age, 1, client)


def _requeue(interaction: Interaction, attempt: int) -> bool:
    """Too little of the invocation left: the same attempt again, at once, in a new one."""

    try:
        enqueue(interaction, attempt, 0)
    except Exception:
        logger.warning("could not hand a deferred interaction on; running it now", exc_info=True)
        return False
    logger.info("deferred interaction handed on: the invocation is nearly out of time")
    return True


def _show(interaction: Interaction, reply: Reply, end: str, age: float, try_: int, client: Any) -> None:
    """Edit @original with the answer; if Discord does not take it now, try again later."""
    from ..delivery.tasks import get_task_queue
    from ..discord import rest as discord_rest

    client = client or discord_rest.get_client()
    try:
        client.edit_original(interaction.application_id, interaction.token, reply.as_edit())
    except discord_rest.UnknownWebhook:
        logger.warning("interaction token no longer valid; answer not shown", extra={"end": end})
        metrics.add_metric(name="DeferredLost", unit=MetricUnit.Count, value=1)
        return
    except discord_rest.DiscordError as exc:  # any other refusal will not change by trying again
        logger.warning(
            "Discord refused the answer of a deferred interaction", extra={"end": end, "error": str(exc)}
        )
        metrics.add_metric(name="DeferredLost", unit=MetricUnit.Count, value=1)
        return
    except (discord_rest.DiscordUnavailable, discord_rest.RateLimited) as exc:
        delay = EDIT_RETRY_DELAYS_S[min(try_, len(EDIT_RETRY_DELAYS_S)) - 1]
        if isinstance(exc, discord_rest.RateLimited):
            delay = max(delay, int(exc.retry_after + 1))
        if try_ <= len(EDIT_RETRY_DELAYS_S) and age + delay < TOKEN_LIFETIME_S - 5:
            try:
                get_task_queue().send(_answer_task(interaction, reply, end, try_ + 1), delay_seconds=delay)
            except Exception:
                logger.warning("could not queue another try of the answer", exc_info=True)
            else:
                logger.info("Discord did not take the answer; tried again later",
                            extra={"end": end, "edit_try": try_, "delay_s": delay, "error": str(exc)})  # fmt: skip
                return
        logger.warning("the answer of a deferred interaction could not be shown",
                       extra={"end": end, "edit_try": try_, "error": str(exc)})  # fmt: skip
        metrics.add_metric(name="DeferredLost", unit=MetricUnit.Count, value=1)
        return
    logger.info("deferred interaction answered", extra={"end": end, "edit_try": try_})
