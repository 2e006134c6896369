"""The interactions endpoint's flow: verify, answer PING, run a command inline or defer it.

Every path ends in an answer Discord accepts within its 3 seconds: 401/400/413 for requests
that are not Discord's, PONG, a command's answer, "thinking..." (deferred to the worker), or
a private "try again in a moment". Never a 500.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..discord import interactions
from ..discord.interactions import RequestRejected
from ..platform.config import Settings, get_public_settings, get_settings
from .deferred import SOMETHING_WENT_WRONG

# What the keep-alive sends this function: answered at once, without work, after warming.
KEEPALIVE_EVENT: dict[str, Any] = {"keepalive": True}


def is_keepalive(event: object) -> bool:
    """Whether an invocation is the keep-alive's ping (answer it without doing any work)."""
    return isinstance(event, dict) and event.get("keepalive") is True


# Discord waits 3 s for an answer. Counted from when the function got the request: the inline
# attempt (waiting for the connection, connecting, every statement, COMMIT) has until
# INLINE_BUDGET_S, then the interaction is deferred; queueing it has until ANSWER_BY_S, else
# the member is asked to try again. What is left covers API Gateway and the network.
INLINE_BUDGET_S = 2.0
ANSWER_BY_S = 2.5


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    command: str  # for metrics: the command path, "ping", or "-" when the request was refused
    outcome: str  # ok, refused, denied, replayed, deferred, unavailable, error, rejected_<status>
    interaction_id: str | None = None

    def as_http(self) -> dict[str, Any]:
        import json

        return {
            "statusCode": self.status,
            "headers": {"content-type": "application/json"},
            "body": json.dumps(self.body, separators=(",", ":")),
        }


_database: Any = None
_database_key: tuple | None = None


def inline_database(settings: Settings) -> Any:
    """The interactions function's own Database: short connect and statement timeouts, so a slow
    or unreachable database turns into a deferral well inside Discord's 3 seconds."""
    global _database, _database_key
    from ..platform.db import Database

    key = (
        settings.database_url,
        settings.interaction_db_statement_timeout_ms,
        settings.interaction_db_connect_timeout_s,
    )
    if _database is None or _database_key != key:
        if _database is not None:
            _database.close()
        _database = Database.from_settings(
            settings.with_overrides(
                db_statement_timeout_ms=settings.interaction_db_statement_timeout_ms,
                db_connect_timeout_s=settings.interaction_db_connect_timeout_s,
            )
        )
        _database_key = key
    return _database


def reset() -> None:
    """Forget the container's database (tests that change the environment)."""
    global _database, _database_key
    if _database is not None:
        _database.close()
    _database, _database_key = None, None


def handle(event: dict[str, Any], *, now: float | None = None, database: Any = None) -> Answer:
    """Answer one API Gateway event. Whatever goes wrong, the answer is never a 500: before the
    signature is verified it is a 401, after it a private "something went wrong"."""
    verified: list[bool] = []
    try:
        return _handle(event, now, database, verified, time.monotonic())
    except Exception:  # the last line of defence (a broken setting, a bug)
        from ..platform.observability import logger

        logger.exception("interaction could not be handled")
        if verified:
            return Answer(200, interactions.ephemeral(SOMETHING_WENT_WRONG), "-", "error")
        return Answer(401, {"error": "request could not be verified"}, "-", "rejected_401")


def warm(settings: Settings) -> None:
    """What the keep-alive's ping does: load the command code, make the tracer (when tracing is
    on) and open the inline connection, so the next member does not wait for imports or a TLS
    handshake. The tracer is made only here: its X-Ray SDK and botocore cost about 0.25 s, which
    no member's first answer should wait for."""
    from ..platform import observability
    from ..platform.db import DatabaseUnavailable
    from .dispatch import _load_commands

    _load_commands()
    if observability.tracing_enabled():
        observability.tracer  # noqa: B018 - made now, off Discord's clock
    try:
        with inline_database(settings).connection():
            pass
    except DatabaseUnavailable:
        pass  # the keep-alive reports database health itself


def _handle(
    event: dict[str, Any], now: float | None, database: Any, verified: list[bool], arrived: float
) -> Answer:
    if is_keepalive(event):
        warm(get_settings())  # secrets too: the next command finds them read
        return Answer(200, {"keepalive": "ok"}, "keepalive", "ok")
    try:
        # No secret is read before the signature is checked: a PING (and a forged request)
        # never waits for Secrets Manager on a cold start.
        verifier = interactions.verifier_for(get_public_settings().discord_public_key)
    except ValueError:
        from ..platform.observability import logger

        logger.error("DISCORD_PUBLIC_KEY is missing or not 64 hex characters; every request is refused")
        return Answer(401, {"error": "invalid request signature"}, "-", "rejected_401")
    try:
        payload = interactions.read_request(event, verifier, now)
        verified.append(True)
        if payload["type"] == interactions.PING:
            return Answer(200, interactions.pong(), "ping", "ok")
        interaction = interactions.parse(payload)
    except RequestRejected as rejected:
        return Answer(rejected.status, {"error": rejected.message}, "-", f"rejected_{rejected.status}")
    if interaction.type == interactions.AUTOCOMPLETE:
        return run_autocomplete(interaction, database or inline_database(get_settings()), arrived)
    if interaction.type not in (
        interactions.APPLICATION_COMMAND,
        interactions.MESSAGE_COMPONENT,
        interactions.MODAL_SUBMIT,
    ):
        return Answer(200, interactions.ephemeral("That is not something this bot does."), "-", "refused",
                      interaction.id)  # fmt: skip
    settings = get_settings()
    return run_command(interaction, settings, database or inline_database(settings), arrived=arrived)


def run_autocomplete(interaction: interactions.Interaction, database: Any, arrived: float) -> Answer:
    """Choices while the member types, inline or not at all: an autocomplete cannot be deferred,
    so a slow database or anything unexpected answers with no choices (the member can still
    type the whole name), never an error."""
    from ..platform.db import run_within
    from ..platform.observability import logger
    from .dispatch import autocomplete

    name = f"{interaction.command} (autocomplete)"
    try:
        choices = run_within(_left(arrived, INLINE_BUDGET_S), autocomplete, database, interaction)
        outcome = "ok"
    except Exception:
        logger.warning("autocomplete answered with no choices", exc_info=True)
        choices, outcome = [], "unavailable"
    return Answer(200, interactions.autocomplete_result(choices), name, outcome, interaction.id)


def run_command(
    interaction: interactions.Interaction, settings: Settings, database: Any, *, arrived: float | None = None
) -> Answer:
    """Run the command inline within the budget; defer it when the database is slow, hung or away.

    `arrived` (time.monotonic()) is when the request came in; the budget counts from there.
    """
    from .. import commands
    from ..platform.db import DatabaseUnavailable, DeadlineExceeded, run_within
    from ..platform.i18n import translator
    from ..platform.observability import logger
    from . import deferred
    from .dispatch import answers_privately, updates_message

    logger.set_correlation_id(interaction.id)
    arrived = time.monotonic() if arrived is None else arrived
    name = interaction.command or "component"
    try:
        outcome = run_within(
            _left(arrived, INLINE_BUDGET_S), commands.execute, database, interaction, settings
        )
    except DatabaseUnavailable as exc:
        logger.warning(
            "inline attempt could not reach the database; deferring", extra={"error": str(exc)[:200]}
        )
        try:
            # The queue gets a deadline too: an answer after Discord's 3 s is no answer at all.
            run_within(_left(arrived, ANSWER_BY_S), deferred.enqueue, interaction)
        except DeadlineExceeded:
            logger.warning("the queue did not take the deferred interaction in time; asking to try again")
            return Answer(
                200,
                interactions.ephemeral(translator(interaction.locale)._(deferred.TRY_AGAIN)),
                name,
                "unavailable",
                interaction.id,
            )
        except Exception:
            logger.exception("could not queue the deferred interaction")
            return Answer(
                200,
                interactions.ephemeral(translator(interaction.locale)._(deferred.TRY_AGAIN)),
                name,
                "unavailable",
                interaction.id,
            )
        body = interactions.deferred(
            interaction, answers_privately(interaction), updates_message(interaction)
        )
        return Answer(200, body, name, "deferred", interaction.id)
    except Exception:  # a bug: the member gets a plain sentence, the log gets the stack
        logger.exception("command failed")
        return Answer(200, interactions.ephemeral(translator(interaction.locale)._(SOMETHING_WENT_WRONG)), name,
                      "error", interaction.id)  # fmt: skip
    return Answer(200, outcome.reply.as_response(), outcome.command or name, outcome.status, interaction.id)


def _left(arrived: float, budget_s: float) -> float:
    """Seconds left of a budget counted from the request's arrival (a little at least, so a late
    start still gets one quick try rather than none)."""
    return max(0.05, arrived + budget_s - time.monotonic())
