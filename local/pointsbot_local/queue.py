"""An in-process stand-in for SQS: tasks go to the real worker handler on a background thread,
wrapped in SQS-shaped events, with redelivery of failed items like SQS's visibility timeout."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable

from pointsbot.delivery.tasks import Task

from .apigw import LambdaContext

WorkerHandler = Callable[[dict, object], object]


class InProcessTaskQueue:
    def __init__(self, handler: WorkerHandler, *, max_receives: int = 5, retry_delay_s: float = 0.5) -> None:
        self._handler = handler
        self._items: queue.Queue[tuple[float, str, str, int]] = queue.Queue()
        self._max_receives = max_receives
        self._retry_delay_s = retry_delay_s
        self._pending = 0
        self._idle = threading.Condition()
        self.dead_letters: list[Task] = []
        self._thread = threading.Thread(target=self._loop, name="local-worker", daemon=True)
        self._stop = threading.Event()
        self._thread.start()

    def send(self, task: Task, delay_seconds: int = 0) -> None:
        with self._idle:
            self._pending += 1
        self._items.put((time.monotonic() + delay_seconds, uuid.uuid4().hex, task.to_json(), 1))

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every task sent so far is done (or dead-lettered)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def stop(self) -> None:
        self._stop.set()

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                due, message_id, body, receives = self._items.get(timeout=0.2)
            except queue.Empty:
                continue
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, 0.05))
                self._items.put((due, message_id, body, receives))
                continue
            event = {
                "Records": [
                    {
                        "messageId": message_id,
                        "receiptHandle": message_id,
                        "body": body,
                        "attributes": {"ApproximateReceiveCount": str(receives)},
                        "messageAttributes": {},
                        "eventSource": "aws:sqs",
                        "eventSourceARN": "arn:aws:sqs:local:000000000000:pointsbot-tasks",
                        "awsRegion": "local",
                    }
                ]
            }
            try:
                result = self._handler(event, LambdaContext("worker", timeout_s=60))
                failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
            except Exception:  # the whole batch failed, as Lambda would report it
                import traceback

                traceback.print_exc()
                failed = {message_id}
            if message_id in failed:
                if receives >= self._max_receives:
                    self.dead_letters.append(Task.from_json(body))
                    self._done()
                else:
                    self._items.put((time.monotonic() + self._retry_delay_s, message_id, body, receives + 1))
            else:
                self._done()
