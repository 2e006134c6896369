"""The local runtime's stand-in for EventBridge schedules: one thread that calls the scheduled
functions' handlers (achievement sweep, keep-alive) on their rates, in-process."""

from __future__ import annotations

import re
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from .apigw import LambdaContext

_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def parse_rate(expression: str) -> float:
    """Seconds between runs of an EventBridge `rate(N unit)` expression.

    cron(...) is not understood here; it raises ValueError so the caller can choose a rate.
    """
    match = re.fullmatch(r"\s*rate\(\s*(\d+)\s+([a-z]+)\s*\)\s*", expression or "")
    if not match or match.group(2) not in _UNITS or int(match.group(1)) < 1:
        raise ValueError(f"not an EventBridge rate expression: {expression!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def scheduled_event(rule: str) -> dict:
    """What EventBridge hands a function on a schedule (the fields the handlers may read)."""
    return {
        "version": "0",
        "id": f"local-{time.time_ns()}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "local",
        "resources": [f"arn:aws:events:local:000000000000:rule/{rule}"],
        "detail": {},
    }


@dataclass
class Job:
    name: str
    every_s: float
    run: Callable[[], object]
    timeout_s: float = 900.0
    next_at: float = 0.0
    runs: int = 0
    last_error: str | None = None
    history: list[float] = field(default_factory=list)


class Scheduler:
    """Runs each job every `every_s` seconds (first run after one period, like a new rule)."""

    def __init__(self, jobs: list[Job], *, first_run_after_s: float | None = None) -> None:
        now = time.monotonic()
        for job in jobs:
            job.next_at = now + (job.every_s if first_run_after_s is None else first_run_after_s)
        self.jobs = jobs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="local-scheduler", daemon=True)

    def start(self) -> Scheduler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for job in self.jobs:
                if now >= job.next_at:
                    job.next_at = now + job.every_s
                    try:
                        job.run()
                        job.last_error = None
                    except Exception as exc:  # a failed run is logged; the schedule goes on, as in AWS
                        job.last_error = f"{type(exc).__name__}: {exc}"
                        traceback.print_exc()
                    job.runs += 1
                    job.history.append(time.monotonic())
            wait = min(job.next_at for job in self.jobs) - time.monotonic() if self.jobs else 1.0
            self._stop.wait(max(0.05, min(wait, 1.0)))


def handler_job(name: str, function: str, every_s: float, timeout_s: float) -> Job:
    """A job that invokes functions/<function>/app.py the way an EventBridge rule does."""
    from . import handlers

    def run() -> object:
        return handlers.load(function)(scheduled_event(name), LambdaContext(function, timeout_s=timeout_s))

    return Job(name, every_s, run, timeout_s)


def default_jobs(sweep_schedule: str) -> list[Job]:
    """The schedules of template.yaml: the sweep on ACHIEVEMENT_SWEEP_SCHEDULE, the keep-alive
    every 5 minutes."""
    from . import handlers

    jobs: list[Job] = []
    if handlers.available("achievements"):
        try:
            every = parse_rate(sweep_schedule)
        except ValueError:
            every = 3600.0  # a cron() schedule: hourly locally
        jobs.append(handler_job("achievements-sweep", "achievements", every, timeout_s=120))
    if handlers.available("keepalive"):
        jobs.append(handler_job("keepalive", "keepalive", 300, timeout_s=30))
    return jobs
