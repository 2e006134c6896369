"""Logger, metrics and tracer, created once for every function of the bot."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "pointsbot")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "PointsBot"), service=SERVICE)

_tracer: Any = None


def tracing_enabled() -> bool:
    """Whether Powertools' Tracer would record here: inside Lambda (not `sam local`) and not
    switched off with POWERTOOLS_TRACE_DISABLED. Read without importing the X-Ray SDK."""
    if "AWS_LAMBDA_FUNCTION_NAME" not in os.environ or os.environ.get("AWS_SAM_LOCAL"):
        return False
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() not in ("1", "true")


def loaded_tracer() -> Any:
    """The tracer if something already made it, else None; never imports the X-Ray SDK."""
    return _tracer


def __getattr__(name: str) -> Any:
    # The tracer is made on first use: creating it imports the X-Ray SDK and botocore
    # (about 0.25 s on a cold start), which an answer on Discord's clock should not wait for.
    global _tracer
    if name == "tracer":
        if _tracer is None:
            from aws_lambda_powertools import Tracer

            _tracer = Tracer(service=SERVICE)
        return _tracer
    raise AttributeError(name)
