"""Every 5 minutes (EventBridge): warm the interactions function, check the database, emit
HealthCheck (1 healthy, 0 not), ask for delivery of DMs and role changes left due, and ask for
the removal of timed roles whose end has passed."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from pointsbot.ops import keepalive
from pointsbot.platform import runtime
from pointsbot.platform.observability import logger, metrics


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: object) -> dict:
    result = keepalive.run(runtime.get_database())
    metrics.add_metric(name="HealthCheck", unit=MetricUnit.Count, value=1 if result.healthy else 0)
    metrics.add_metric(name="InteractionsWarm", unit=MetricUnit.Count, value=1 if result.warmed else 0)
    metrics.add_metric(name="DatabaseLatency", unit=MetricUnit.Milliseconds, value=result.database_ms)
    if result.error:
        logger.warning("keep-alive found a problem", extra={"result": result.as_dict()})
    else:
        logger.info("keep-alive", extra={"result": result.as_dict()})
    return result.as_dict()
