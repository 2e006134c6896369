"""Logger, metrics and tracer, created once for every function of the bot."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "pointsbot")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "PointsBot"), service=SERVICE)
tracer = Tracer(service=SERVICE)
