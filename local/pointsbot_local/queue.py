"""An in-process stand-in for SQS: tasks go to the real worker handler on background threads,
wrapped in SQS-shaped events, with redelivery of failed items like SQS's visibility timeout
and a dead-letter list after `max_receives` like the template's redrive policy.

Several threads, like Lambda running the worker at a concurrency of more than one, and a heap
ordered by due time: one thread that stepped through a FIFO, putting back every task not yet
due, made a backlog of thousands of delayed retries (a database outage) wait minutes for each
pass, and one task waiting for a connection held up all the others.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import uuid
from collections.abc import Callable

from pointsbot.delivery.tasks import Task
from pointsbot.ops.worker import MAX_RECEIVES

from .apigw import LambdaContext

WorkerHandler = Callable[[dict, object], object]

# The worker's concurrency: the template's ScalingConfig MaximumConcurrency.
WORKERS = 5
# The worker function's timeout in template.yaml.
WORKER_TIMEOUT_S = 60


class InProcessTaskQueue:
    def __init__(
        self,
        handler: WorkerHandler,
        *,
        max_receives: int = MAX_RECEIVES,
        retry_delay_s: float = 0.5,
        workers: int = WORKERS,
    ) -> None:
        self._handler = handler
        # (due on the monotonic clock, order sent, message id, body, receives)
        self._heap: list[tuple[float, int, str, str, int]] = []
        self._order = itertools.count()
        self._max_receives = max_receives
        self._retry_delay_s = retry_delay_s
        self._pending = 0
        self._cond = threading.Condition()
        self.dead_letters: list[Task] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, name=f"local-worker-{n}", daemon=True) for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def send(self, task: Task, delay_seconds: int = 0) -> None:
        self._put(time.monotonic() + delay_seconds, uuid.uuid4().hex, task.to_json(), 1, new=True)

    def _put(self, due: float, message_id: str, body: str, receives: int, *, new: bool = False) -> None:
        with self._cond:
            if new:
                self._pending += 1
            heapq.heappush(self._heap, (due, next(self._order), message_id, body, receives))
            self._cond.notify_all()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every task sent so far is done (or dead-lettered)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    @property
    def pending(self) -> int:
        """Tasks sent and not yet done or dead-lettered (waiting, delayed or running)."""
        with self._cond:
            return self._pending

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def _done(self) -> None:
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()

    def _next(self) -> tuple[float, int, str, str, int] | None:
        """The next due message, waiting for one; None when the queue stops."""
        with self._cond:
            while not self._stop.is_set():
                now = time.monotonic()
                if self._heap and self._heap[0][0] <= now:
                    return heapq.heappop(self._heap)
                wait = self._heap[0][0] - now if self._heap else 0.5
                self._cond.wait(min(wait, 0.5))
        return None

    def _loop(self) -> None:
        while (item := self._next()) is not None:
            _due, _order, message_id, body, receives = item
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
                result = self._handler(event, LambdaContext("worker", timeout_s=WORKER_TIMEOUT_S))
                failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
            except Exception:  # the whole batch failed, as Lambda would report it
                from pointsbot.platform.observability import logger

                logger.exception("the local worker failed as a whole", extra={"message_id": message_id})
                failed = {message_id}
            if message_id not in failed:
                self._done()
            elif receives >= self._max_receives:
                from pointsbot.platform.observability import logger

                task = Task.from_json(body)
                logger.error("task moved to the local dead-letter list",
                             extra={"kind": task.kind, "message_id": message_id, "receives": receives})  # fmt: skip
                self.dead_letters.append(task)
                self._done()
            else:
                self._put(time.monotonic() + self._retry_delay_s, message_id, body, receives + 1)
