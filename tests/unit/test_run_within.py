"""`run_within` keeps its attempt threads between calls (issue 14, goal 7: a thread start per
interaction was ours to cut), without changing what a caller sees: the result or the error,
the deadline, a fresh context per attempt, an abandoned attempt never delaying the next."""

from __future__ import annotations

import os
import threading
import time
from contextvars import ContextVar

import pytest

from pointsbot.platform.db import DeadlineExceeded, run_within, time_left

_seen: ContextVar[str | None] = ContextVar("test_run_within_seen", default=None)


def test_consecutive_attempts_run_on_one_kept_thread_and_answer_as_before():
    threads = [run_within(2.0, threading.current_thread) for _ in range(5)]
    # Then every attempt ran off the caller's thread, all on the same kept thread
    assert all(t is not threading.current_thread() for t in threads)
    assert all(t is threads[0] for t in threads), threads
    assert run_within(2.0, lambda a, b=0: a + b, 2, b=3) == 5
    with pytest.raises(ValueError, match="refused"):
        run_within(2.0, lambda: (_ for _ in ()).throw(ValueError("refused")))
    # and the attempt sees its deadline
    left = run_within(2.0, time_left)
    assert left is not None and 0 < left <= 2.0


def test_an_abandoned_attempt_does_not_hold_up_the_next():
    release = threading.Event()
    with pytest.raises(DeadlineExceeded):
        run_within(0.05, release.wait, 5)
    # While the abandoned attempt still waits, the next runs at once on another thread
    started = time.monotonic()
    assert run_within(2.0, lambda: "next") == "next"
    assert time.monotonic() - started < 1.0
    release.set()


def test_each_attempt_starts_with_a_fresh_context():
    _seen.set("the caller's")

    def look_and_set() -> str | None:
        before = _seen.get()
        _seen.set("an attempt's")
        return before

    # Neither the caller's context nor an earlier attempt's is seen, as on a new thread
    assert run_within(2.0, look_and_set) is None
    assert run_within(2.0, look_and_set) is None
    assert _seen.get() == "the caller's"
    assert run_within(2.0, time_left) is not None  # the deadline itself is set per attempt


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_child_runs_attempts_on_threads_of_its_own():
    run_within(2.0, lambda: None)  # the parent keeps a thread now
    pid = os.fork()
    if pid == 0:  # the child: the parent's kept thread does not exist here
        try:
            ok = run_within(2.0, lambda: 7) == 7
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
