"""POST /interactions: Discord's interactions endpoint (API Gateway HTTP API, payload 2.0).

Thin: the flow lives in pointsbot.commands.endpoint; this adds logging, a metric per command and
outcome, and tracing. Tracing never delays an answer on a cold start: the X-Ray SDK (and the
botocore it patches) is not imported here. The keep-alive's ping, which no member waits for,
makes the tracer (`endpoint.warm`); from then on every invocation of the container is traced by
Powertools' Tracer. A container no ping has warmed answers untraced by the SDK (Lambda still
records its own segment for every invocation, `Tracing: Active`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from pointsbot.commands import endpoint
from pointsbot.platform import observability
from pointsbot.platform.observability import logger, metrics


def _handle(event: dict, context: object) -> dict:
    answer = endpoint.handle(event)
    metrics.add_dimension(name="command", value=answer.command)
    metrics.add_dimension(name="outcome", value=answer.outcome)
    metrics.add_metric(name="Interactions", unit=MetricUnit.Count, value=1)
    if answer.status != 200:
        logger.warning("request refused", extra={"status": answer.status, "reason": answer.body.get("error")})
    else:
        logger.info("interaction answered", extra={"command": answer.command, "outcome": answer.outcome,
                                                   "type": answer.body.get("type")})  # fmt: skip
    return answer.as_http()


_traced: Callable[[dict, Any], dict] | None = None


def _answer(event: dict, context: object) -> dict:
    global _traced
    tracer = observability.loaded_tracer() if observability.tracing_enabled() else None
    if tracer is None:
        return _handle(event, context)
    if _traced is None:
        _traced = tracer.capture_lambda_handler(_handle)
    return _traced(event, context)


lambda_handler = metrics.log_metrics(logger.inject_lambda_context(_answer, clear_state=True))
