"""Deferred work for the worker: a task is a kind and a JSON payload, carried by SQS.

In AWS the queue is SQS (`TASK_QUEUE_URL`); the local runtime installs an in-process queue
that feeds the same worker handler with SQS-shaped events (see pointsbot_local.queue).
"""

from __future__ import annotations

import json
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Task:
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "payload": self.payload}, separators=(",", ":"))

    @classmethod
    def from_json(cls, body: str) -> Task:
        data = json.loads(body)
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
            raise ValueError("a task is a JSON object with a string 'kind'")
        payload = data.get("payload") or {}
        if not isinstance(payload, dict):
            raise ValueError("a task's payload is a JSON object")
        return cls(data["kind"], payload)


class TaskQueue(Protocol):
    def send(self, task: Task, delay_seconds: int = 0) -> None: ...


class SqsTaskQueue:
    """SQS behind the TaskQueue interface; the boto3 client is made on first send."""

    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self._client = client

    def send(self, task: Task, delay_seconds: int = 0) -> None:
        if self._client is None:
            import boto3  # in the Lambda runtime already; imported late to keep cold starts short

            self._client = boto3.client("sqs")
        self._client.send_message(
            QueueUrl=self.queue_url, MessageBody=task.to_json(), DelaySeconds=max(0, min(900, delay_seconds))
        )


_queue: TaskQueue | None = None


def get_task_queue() -> TaskQueue:
    global _queue
    if _queue is None:
        from ..platform.config import get_settings

        url = get_settings().task_queue_url
        if not url:
            raise RuntimeError("TASK_QUEUE_URL is not set and no local queue was installed")
        _queue = SqsTaskQueue(url)
    return _queue


def set_task_queue(queue: TaskQueue | None) -> None:
    """Install a queue for this process (the local runtime, tests)."""
    global _queue
    _queue = queue


# The worker's invocation: when it must be done (monotonic clock), so a long task (DM delivery)
# stops in time and hands the rest on instead of being killed by Lambda's timeout. A context
# variable, so the local runtime's worker threads each have their own.
_deadline: ContextVar[float | None] = ContextVar("worker_deadline", default=None)


def set_deadline(remaining_ms: int | None) -> None:
    """Called by the worker handler with the invocation's remaining time (None: no limit)."""
    _deadline.set(None if remaining_ms is None else time.monotonic() + remaining_ms / 1000)


def time_left_s() -> float | None:
    """Seconds left in the current invocation, or None outside one."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()
