"""The deploy hook: CloudFormation custom resources for schema migrations and slash command sync.

Everything but the entry point lives in pointsbot.ops.deploy_hooks; the event is not logged because
its ResponseURL is a presigned URL.
"""

from __future__ import annotations

from pointsbot.ops import deploy_hooks
from pointsbot.platform.observability import logger


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: object) -> dict:
    return deploy_hooks.handle(event, context)
