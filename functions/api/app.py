"""The integration API (/api/v1/...): its Lambda entry point. Everything is in pointsbot.api."""

from __future__ import annotations

from pointsbot.api import app as api

lambda_handler = api.lambda_handler
