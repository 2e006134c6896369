"""The admin site's Lambda handler on its own: what it answers when the database is away."""

from __future__ import annotations

import pytest

from pointsbot.platform import runtime
from pointsbot.platform.db import Database
from pointsbot_local import apigw

pytestmark = pytest.mark.integration


@pytest.fixture
def database_away():
    # Nothing listens on port 1: every connection is refused at once.
    runtime.set_database(Database("postgresql://postgres@127.0.0.1:1/none", connect_timeout_s=1))
    yield
    runtime.reset()


def test_database_away_is_a_503_page_not_a_stack_trace(database_away):
    from admin_site.app import lambda_handler

    # Given a browser with a session cookie, and no database
    event = apigw.to_event("GET", "/admin/g/1/members", {"cookie": "pointsbot_admin=abc", "host": "x"}, b"")
    # When it asks for a page
    result = lambda_handler(event, apigw.LambdaContext("admin_site"))
    # Then it gets a plain 503 page saying so
    assert result["statusCode"] == 503
    assert "The database is not answering right now" in result["body"]
    assert "Traceback" not in result["body"] and "psycopg" not in result["body"]
    assert "Content-Security-Policy" in result["headers"]


def test_unknown_paths_are_a_404_page(database_away):
    from admin_site.app import lambda_handler

    result = lambda_handler(
        apigw.to_event("GET", "/admin/nowhere", {}, b""), apigw.LambdaContext("admin_site")
    )
    assert result["statusCode"] == 404 and "There is no such page." in result["body"]
