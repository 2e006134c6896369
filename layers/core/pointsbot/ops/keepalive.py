"""The keep-alive: warm the interactions function, check the database, ask for stuck DMs and
role changes, forget stored interaction answers past their use.

`KEEPALIVE_EVENT` is what the keep-alive sends the interactions function; that handler answers
it at once without work (`is_keepalive(event)`; both are the endpoint's, named here too). In AWS the warmer is a Lambda invoke; the
local runtime installs one that calls the handler in-process (`set_warmer`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ..commands.endpoint import KEEPALIVE_EVENT, is_keepalive
from ..platform.db import Database

__all__ = ["KEEPALIVE_EVENT", "KeepaliveResult", "LambdaWarmer", "get_warmer", "is_keepalive", "keepalive_response",
           "run", "set_warmer"]  # fmt: skip

Warmer = Callable[[dict[str, Any]], Any]


def keepalive_response() -> dict[str, Any]:
    """What the interactions function answers the ping with."""
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": '{"keepalive":"ok"}'}


@dataclass(frozen=True)
class KeepaliveResult:
    healthy: bool  # the database answered
    database_ms: float
    warmed: bool  # the interactions function answered the ping
    dms_due: int | None
    delivery_requested: bool
    error: str | None = None
    replies_pruned: int | None = None  # stored interaction answers past their use
    role_changes_due: int | None = None
    role_delivery_requested: bool = False
    timed_roles_ended: int | None = None  # removals asked for timed grants that ended
    seasons_due: int | None = None  # seasons past their end whose end steps are not all done
    season_end_requested: bool = False
    tie_blocks_built: int | None = None  # large ties given blocks or re-cut (ledger.ties)
    webhook_delivery_requested: bool = False  # a webhook delivery due now or within 15 minutes

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class LambdaWarmer:
    """Invokes the interactions function with the ping and waits for its answer."""

    def __init__(self, function_name: str, client: Any = None) -> None:
        self.function_name = function_name
        self._client = client

    def __call__(self, event: dict[str, Any]) -> Any:
        if self._client is None:
            import boto3  # in the Lambda runtime already

            self._client = boto3.client("lambda")
        answer = self._client.invoke(
            FunctionName=self.function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
        if answer.get("FunctionError"):
            raise RuntimeError(f"{self.function_name} failed the keep-alive: {answer['FunctionError']}")
        return json.loads(answer["Payload"].read() or b"null")


_warmer: Warmer | None = None


def get_warmer() -> Warmer | None:
    """The installed warmer, or a Lambda invoke of INTERACTIONS_FUNCTION_NAME (None if unset)."""
    global _warmer
    if _warmer is None:
        from ..platform.config import get_settings

        name = get_settings().interactions_function_name
        if name:
            _warmer = LambdaWarmer(name)
    return _warmer


def set_warmer(warmer: Warmer | None) -> None:
    """Use this warmer in the process (the local runtime, tests)."""
    global _warmer
    _warmer = warmer


def run(database: Database, warmer: Warmer | None = None) -> KeepaliveResult:
    """One keep-alive round. Never raises: each failure is reported in the result."""
    from ..community import boards, roles, seasons, store, webhooks
    from ..delivery import outbox
    from ..platform.db import DatabaseUnavailable

    warmer = warmer if warmer is not None else get_warmer()
    warmed = False
    errors: list[str] = []
    if warmer is not None:
        try:
            warmer(dict(KEEPALIVE_EVENT))
            warmed = True
        except Exception as exc:  # reported as a metric and in the log, not raised
            errors.append(f"warm: {type(exc).__name__}: {exc}"[:200])
    started = time.perf_counter()
    dms_due: int | None = None
    try:
        dms_due = database.run(outbox.due_count)
        healthy = True
    except (DatabaseUnavailable, OSError) as exc:
        healthy = False
        errors.append(f"database: {exc}"[:200])
    database_ms = (time.perf_counter() - started) * 1000
    requested = bool(dms_due) and outbox.request_delivery()
    pruned: int | None = None
    roles_due: int | None = None
    roles_ended: int | None = None
    seasons_due: int | None = None
    tie_blocks: int | None = None
    if healthy:
        try:
            roles_ended = database.run(roles.end_expired_grants)
            database.run(store.expire_due)  # timed role purchases whose time is up: "expired"
            roles_due = database.run(roles.due_count)
        except (DatabaseUnavailable, OSError) as exc:
            errors.append(f"role changes: {exc}"[:200])
        try:
            seasons_due = database.run(seasons.due_count)
        except (DatabaseUnavailable, OSError) as exc:
            errors.append(f"seasons: {exc}"[:200])
        from ..commands.dispatch import prune_replies

        try:
            pruned = database.run(prune_replies)
        except (DatabaseUnavailable, OSError) as exc:
            errors.append(f"prune: {exc}"[:200])
        from ..ledger.ties import refresh_tie_blocks

        try:
            tie_blocks = database.run(refresh_tie_blocks).built
        except (DatabaseUnavailable, OSError) as exc:
            errors.append(f"tie blocks: {exc}"[:200])
        from ..api.gate import prune as prune_api  # Idempotency-Keys past 24 h, old rate windows

        try:
            database.run(prune_api)
            database.run(boards.prune_client_windows)  # the public leaderboard's rate windows
        except (DatabaseUnavailable, OSError) as exc:
            errors.append(f"prune api: {exc}"[:200])
    webhooks_requested = False
    if healthy:
        try:
            webhooks_requested = webhooks.request_if_due(database)
        except (DatabaseUnavailable, OSError) as exc:
            errors.append(f"webhooks: {exc}"[:200])
    roles_requested = bool(roles_due) and roles.request_role_delivery()
    # A season past its end: the worker's "end_seasons" task carries its end steps (resumable).
    season_end_requested = bool(seasons_due) and seasons.request_end_run()
    return KeepaliveResult(
        healthy, round(database_ms, 1), warmed, dms_due, requested, "; ".join(errors) or None, pruned,
        roles_due, roles_requested, roles_ended, seasons_due, season_end_requested, tie_blocks, webhooks_requested,
    )  # fmt: skip
