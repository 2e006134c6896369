"""Logger, metrics and tracer, created once for every function of the bot."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "pointsbot")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "PointsBot"), service=SERVICE)

_tracer: Any = None


def __getattr__(name: str) -> Any:
    # The tracer is made on first use: creating it imports the X-Ray SDK and botocore
    # (~0.2 s), which a function that does not trace should not pay for on a cold start.
    global _tracer
    if name == "tracer":
        if _tracer is None:
            from aws_lambda_powertools import Tracer

            _tracer = Tracer(service=SERVICE)
        return _tracer
    raise AttributeError(name)
