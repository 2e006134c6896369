"""POST /interactions: Discord's interactions endpoint (API Gateway HTTP API, payload 2.0).

Thin: the flow lives in pointsbot.commands.endpoint; this adds logging, a metric per command and
outcome, and tracing when it is switched on (its SDK is imported only then).
"""

from __future__ import annotations

import os

from aws_lambda_powertools.metrics import MetricUnit

from pointsbot.commands import endpoint
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


_tracing = "AWS_LAMBDA_FUNCTION_NAME" in os.environ and os.environ.get(
    "POWERTOOLS_TRACE_DISABLED", ""
).lower() not in (
    "1",
    "true",
)
if _tracing:
    from pointsbot.platform.observability import tracer

    _handle = tracer.capture_lambda_handler(_handle)

lambda_handler = metrics.log_metrics(logger.inject_lambda_context(_handle, clear_state=True))
