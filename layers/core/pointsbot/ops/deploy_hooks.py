"""What `sam deploy` runs inside AWS: CloudFormation custom resources for the schema and the commands.

`Custom::SchemaMigrations` applies pending SQL migrations (shipped in the layer); a failure
fails the deploy, because new code must not run on an old schema. `Custom::DiscordCommands`
syncs the slash commands (pointsbot.commands.sync_commands: compare, bulk-overwrite) when their
definitions changed since the last deploy (hash-gated); a Discord failure does not fail the deploy (docs/deploy.md says why), it is
logged, counted in the `CommandSyncFailed` metric (an alarm) and retried on the next deploy.
CloudFormation is always answered - on error, on Discord failure, and before the Lambda
timeout - or it would wait an hour for an answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

SUCCESS = "SUCCESS"
FAILED = "FAILED"
SCHEMA_RESOURCE = "Custom::SchemaMigrations"
COMMANDS_RESOURCE = "Custom::DiscordCommands"
SYNC_FAILED_METRIC = "CommandSyncFailed"
# Answer CloudFormation this long before Lambda would stop the function.
SAFETY_MARGIN_S = 10.0
_REASON_MAX = 900  # CloudFormation's whole response must stay under 4 KB


@dataclass(frozen=True)
class HookResult:
    """What the custom resource tells CloudFormation."""

    status: str
    physical_resource_id: str
    reason: str = ""
    data: dict[str, str] = field(default_factory=dict)


class HashStore(Protocol):
    """Where the hash of the last registered command definitions is kept between deploys."""

    def get(self) -> str | None: ...

    def put(self, value: str) -> None: ...


class SsmHashStore:
    """An SSM String parameter created by template.yaml (COMMANDS_HASH_PARAMETER)."""

    def __init__(self, name: str, client: Any = None) -> None:
        self.name = name
        self._client = client

    def _ssm(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("ssm")
        return self._client

    def get(self) -> str | None:
        try:
            return self._ssm().get_parameter(Name=self.name)["Parameter"]["Value"]
        except self._ssm().exceptions.ParameterNotFound:
            return None

    def put(self, value: str) -> None:
        self._ssm().put_parameter(Name=self.name, Value=value, Type="String", Overwrite=True)


def definitions_hash(definitions: list[dict[str, Any]]) -> str:
    """SHA-256 of the definitions in a canonical JSON form (key order and spacing do not count)."""
    canonical = json.dumps(definitions, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def load_definitions() -> list[dict[str, Any]]:
    """The slash command definitions, as Discord's bulk-overwrite endpoint takes them."""
    from .. import commands  # the slash commands' own package owns their definitions

    return commands.command_definitions()


def sync_with_discord(client: Any, application_id: str) -> Any:
    """Make Discord's global commands equal to the definitions (pointsbot.commands.sync_commands)."""
    from .. import commands

    return commands.sync_commands(client, application_id)


# ------------------------------------------------------------------------------ the hooks
@dataclass
class Hooks:
    """The hooks' collaborators, replaceable in tests."""

    definitions: Callable[[], list[dict[str, Any]]] | None = None
    sync: Callable[[Any, str], Any] | None = None  # (client, application_id) -> a SyncResult
    discord: Callable[[], Any] | None = None  # -> a DiscordClient
    store: Callable[[], HashStore] | None = None
    migrate: Callable[[], list[Any]] | None = None
    schema_version: Callable[[], int | None] | None = None

    def command_definitions(self) -> list[dict[str, Any]]:
        return self.definitions() if self.definitions is not None else load_definitions()

    def sync_commands(self, client: Any, application_id: str) -> Any:
        return (self.sync or sync_with_discord)(client, application_id)

    def discord_client(self) -> Any:
        if self.discord is not None:
            return self.discord()
        from ..discord.rest import DiscordClient
        from ..platform.config import get_settings

        # Bounded waits: the whole hook must finish well inside the function's timeout.
        return DiscordClient.from_settings(get_settings(), timeout=15.0, max_retry_wait=30.0)

    def hash_store(self) -> HashStore:
        if self.store is not None:
            return self.store()
        name = os.environ.get("COMMANDS_HASH_PARAMETER", "")
        if not name:
            raise RuntimeError("COMMANDS_HASH_PARAMETER is not set")
        return SsmHashStore(name)

    def run_migrations(self) -> tuple[int, int | None]:
        if self.migrate is not None:
            applied = self.migrate()
            return len(applied), (self.schema_version() if self.schema_version else None)
        from ..platform import runtime
        from ..platform.config import get_settings
        from ..platform.migrate import default_migrations_dir, migrate, schema_version
        from ..platform.observability import logger

        applied = migrate(get_settings().database_url, default_migrations_dir(), log=logger.info)
        return len(applied), runtime.get_database().run(schema_version)


def schema_hook(event: dict[str, Any], hooks: Hooks) -> HookResult:
    physical_id = event.get("PhysicalResourceId") or "pointsbot-schema"
    if event["RequestType"] == "Delete":
        # Never drop data: deleting the stack leaves the database as it is.
        return HookResult(SUCCESS, physical_id, "the database is left as it is")
    count, version = hooks.run_migrations()
    return HookResult(
        SUCCESS,
        physical_id,
        f"{count} migration(s) applied",
        {"Applied": str(count), "SchemaVersion": "" if version is None else str(version)},
    )


def commands_hook(event: dict[str, Any], hooks: Hooks) -> HookResult:
    from ..discord.rest import DiscordError, DiscordUnavailable, RateLimited
    from ..platform.observability import logger

    properties = event.get("ResourceProperties") or {}
    application_id = str(properties.get("ApplicationId") or "")
    # One physical resource per application: a new application id makes CloudFormation replace
    # the resource, and its Delete then clears the old application's commands.
    physical_id = f"discord-commands-{application_id}"
    if event["RequestType"] == "Delete":
        physical_id = event.get("PhysicalResourceId") or physical_id
        if not application_id:
            return HookResult(SUCCESS, physical_id, "no application id, nothing to clear")
        try:
            hooks.discord_client().bulk_overwrite_commands(application_id, [])
        except (DiscordError, DiscordUnavailable, RateLimited) as exc:
            # A stack must always be deletable; stale commands only fail until removed by hand.
            logger.warning("could not clear the slash commands", extra={"error": str(exc)})
            return HookResult(SUCCESS, physical_id, f"commands not cleared: {exc}")
        return HookResult(SUCCESS, physical_id, "commands cleared")
    if not application_id.isdigit():
        return HookResult(FAILED, physical_id, "ApplicationId must be the numeric Discord application id")
    definitions = hooks.command_definitions()
    digest = definitions_hash(definitions)
    marker = f"{application_id}:{digest}"
    store = hooks.hash_store()
    if store.get() == marker:
        return HookResult(SUCCESS, physical_id, "command definitions unchanged",
                          {"Changed": "false", "Hash": digest, "Count": str(len(definitions))})  # fmt: skip
    try:
        outcome = hooks.sync_commands(hooks.discord_client(), application_id)
    except (DiscordError, DiscordUnavailable, RateLimited) as exc:
        _count_sync_failure()
        logger.error("slash commands not registered; the deploy goes on", extra={"error": str(exc)})
        # The hash is not stored, so the next deploy tries again.
        return HookResult(SUCCESS, physical_id, f"commands NOT registered (retried next deploy): {exc}",
                          {"Changed": "false", "Hash": digest, "Error": str(exc)[:200]})  # fmt: skip
    store.put(marker)
    # The sync compares with what Discord has and only overwrites when something differs.
    applied = bool(getattr(outcome, "applied", True))
    summary = (
        outcome.summary() if hasattr(outcome, "summary") else f"{len(definitions)} command(s) registered"
    )
    logger.info("slash commands synced", extra={"summary": summary, "hash": digest})
    return HookResult(SUCCESS, physical_id, summary,
                      {"Changed": "true" if applied else "false", "Hash": digest, "Count": str(len(definitions))})  # fmt: skip


def _count_sync_failure() -> None:
    from aws_lambda_powertools.metrics import MetricUnit

    from ..platform.observability import metrics

    metrics.add_metric(name=SYNC_FAILED_METRIC, unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()


HOOKS: dict[str, Callable[[dict[str, Any], Hooks], HookResult]] = {
    SCHEMA_RESOURCE: schema_hook,
    COMMANDS_RESOURCE: commands_hook,
}


# ------------------------------------------------------------------- CloudFormation's side
def response_body(event: dict[str, Any], result: HookResult) -> dict[str, Any]:
    return {
        "Status": result.status,
        "Reason": result.reason[:_REASON_MAX] or result.status,
        "PhysicalResourceId": result.physical_resource_id,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "NoEcho": False,
        "Data": result.data,
    }


def send_response(url: str, body: dict[str, Any], attempts: int = 4, timeout: float = 10.0) -> None:
    """PUT the answer to CloudFormation's presigned S3 URL, retrying a few times."""
    data = json.dumps(body).encode()
    last: Exception | None = None
    for attempt in range(attempts):
        # The URL is presigned for an empty content type: any other value breaks the signature.
        request = urllib.request.Request(  # noqa: S310 - CloudFormation's own URL
            url, data=data, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(data))}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                response.read()
                return
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            last = exc
            time.sleep(min(2.0**attempt, 5.0))
    raise RuntimeError(f"could not answer CloudFormation: {last}")


class _Responder:
    """Sends exactly one answer, whichever comes first: the hook's result or the deadline."""

    def __init__(self, event: dict[str, Any], send: Callable[[str, dict[str, Any]], None]) -> None:
        self.event = event
        self._send = send
        self._lock = threading.Lock()
        self.sent: dict[str, Any] | None = None

    def answer(self, result: HookResult) -> bool:
        with self._lock:
            if self.sent is not None:
                return False
            self.sent = response_body(self.event, result)
        self._send(self.event["ResponseURL"], self.sent)
        return True


# An operator's direct invoke (no CloudFormation): {"action": "sync-commands"} or {"action": "migrate"}.
ACTIONS = {"sync-commands": COMMANDS_RESOURCE, "migrate": SCHEMA_RESOURCE}


def run_action(event: dict[str, Any], hooks: Hooks | None = None) -> dict[str, Any]:
    """Run a hook by hand (`aws lambda invoke`), e.g. to retry a command sync that Discord refused.

    A manual sync always overwrites: the stored hash is cleared first, so it does not skip.
    """
    hooks = hooks or Hooks()
    action = event.get("action")
    if action not in ACTIONS:
        return {"Status": FAILED, "Reason": f"unknown action {action!r}; use one of {sorted(ACTIONS)}"}
    properties: dict[str, Any] = {}
    if action == "sync-commands":
        from ..platform.config import get_settings

        properties["ApplicationId"] = event.get("application_id") or get_settings().discord_application_id
        hooks.hash_store().put("none")
    result = HOOKS[ACTIONS[action]]({"RequestType": "Update", "ResourceProperties": properties}, hooks)
    return {"Status": result.status, "Reason": result.reason, "Data": result.data}


def handle(
    event: dict[str, Any],
    context: Any,
    hooks: Hooks | None = None,
    send: Callable[[str, dict[str, Any]], None] = send_response,
) -> dict[str, Any]:
    """Run the hook for this custom resource event and answer CloudFormation once; returns the answer."""
    from ..platform.observability import logger

    if "RequestType" not in event and "action" in event:
        return run_action(event, hooks)
    hooks = hooks or Hooks()
    responder = _Responder(event, send)
    request_type = event.get("RequestType", "")
    fallback_id = event.get("PhysicalResourceId") or f"{event.get('LogicalResourceId', 'hook')}-unset"
    timer: threading.Timer | None = None
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is not None:

        def on_deadline() -> None:
            logger.error("deploy hook ran out of time", extra={"request_type": request_type})
            # A Delete that cannot finish must not block the stack's deletion.
            status = SUCCESS if request_type == "Delete" else FAILED
            responder.answer(HookResult(status, fallback_id, "the deploy hook ran out of time"))

        timer = threading.Timer(max(0.0, remaining() / 1000.0 - SAFETY_MARGIN_S), on_deadline)
        timer.daemon = True
        timer.start()
    try:
        hook = HOOKS.get(event.get("ResourceType", ""))
        if hook is None:
            result = HookResult(FAILED, fallback_id, f"unknown resource type {event.get('ResourceType')!r}")
        else:
            result = hook(event, hooks)
    except Exception as exc:
        logger.exception("deploy hook failed", extra={"request_type": request_type})
        status = SUCCESS if request_type == "Delete" else FAILED
        result = HookResult(status, fallback_id, f"{type(exc).__name__}: {exc}")
    finally:
        if timer is not None:
            timer.cancel()
    responder.answer(result)
    return responder.sent or {}
