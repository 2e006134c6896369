"""What every database session is opened with (no I/O: the arguments only)."""

from __future__ import annotations

import pytest

from pointsbot.platform.db import connection_kwargs

pytestmark = pytest.mark.unit


def test_timeouts_and_dead_peer_detection():
    kwargs = connection_kwargs(statement_timeout_ms=1500, connect_timeout_s=2, prepare_threshold=5)
    assert kwargs["autocommit"] is True  # Database.run opens the transactions
    assert kwargs["connect_timeout"] == 2
    assert kwargs["options"] == "-c statement_timeout=1500"
    # unacknowledged bytes give up after as long as a connect may take, not the kernel's minutes
    assert kwargs["tcp_user_timeout"] == 2000
    assert kwargs["keepalives"] == 1 and kwargs["keepalives_idle"] > 0
    assert kwargs["prepare_threshold"] == 5


def test_prepared_statements_can_be_switched_off_for_pgbouncer():
    assert connection_kwargs(prepare_threshold=-1)["prepare_threshold"] is None


def test_behind_a_pooler_no_startup_options_are_sent():
    # PgBouncer answers "unsupported startup parameter: options"; the timeout is then set per
    # transaction by Database.run (tests/integration/test_pooler.py).
    assert "options" not in connection_kwargs(statement_timeout_ms=1500, prepare_threshold=-1)
