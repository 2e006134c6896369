"""The admin site answers when the database hangs (issue 16, verify report F4): every request has
a wall-clock deadline (admin_site/app.py, REQUEST_DEADLINE_S), after which it is the 503 page
"The database is not answering right now", and nothing is half-written.

The hung database is a real Postgres behind a proxy that stops passing bytes (as a server whose
processes got SIGSTOP). Here the deadline is shortened to keep the test quick; a request that
does not come back within HANG_S waits for the database (without a deadline it waits as long as
the database is frozen). Timing is not asserted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _admin_browser import Browser

from admin_site import app as site_app
from pointsbot.admin import auth
from pointsbot.platform import runtime
from pointsbot.platform.db import Database
from pointsbot_local.freezable_proxy import FreezableProxy

pytestmark = pytest.mark.integration
GUILD = 773000000000000001
MEMBER = 793000000000000001
NAME, PASSWORD = "deadline-admin", "deadline admin's password"
HANG_S = 10  # far beyond the deadline used here
NOT_ANSWERING = "The database is not answering right now"


@pytest.fixture(scope="module")
def proxy(database_url: str) -> Iterator[FreezableProxy]:
    with FreezableProxy.for_dsn(database_url) as running:
        yield running


@pytest.fixture
def site(proxy, database_url, monkeypatch) -> Iterator[Database]:
    """The admin handler on a database behind the proxy (thawed), with a local admin of GUILD;
    yields a direct connection to check what was written."""
    monkeypatch.delenv("ADMIN_BASE_URL", raising=False)
    monkeypatch.setattr(site_app, "REQUEST_DEADLINE_S", 1.0)
    direct = Database(database_url)
    direct.run(
        lambda conn: conn.execute(
            "INSERT INTO guilds (guild_id) VALUES (%s) ON CONFLICT DO NOTHING", (GUILD,)
        )
    )
    if not direct.fetchone("SELECT 1 FROM admin_accounts WHERE name = %s", (NAME,)):
        direct.run(auth.create_account, NAME, PASSWORD, [GUILD])
    runtime.reset()
    runtime.set_database(Database(proxy.dsn(database_url)))
    yield direct
    proxy.thaw()
    runtime.reset()
    direct.close()


def _within_hang_bound(call: Callable[[], Any]) -> Any:
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.update(result=call()), daemon=True)
    thread.start()
    thread.join(HANG_S)
    assert not thread.is_alive(), f"the admin site still waits for the frozen database after {HANG_S} s"
    return box["result"]


def _entries(direct: Database) -> int:
    return direct.fetchone("SELECT count(*) FROM transactions WHERE guild_id = %s", (GUILD,))[0]


def _until_no_backend_waits(direct: Database) -> None:
    """Wait until the server has ended the sessions the deadline cut (it read end-of-file)."""
    for _ in range(200):
        busy = direct.fetchone(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pointsbot' AND pid <> pg_backend_pid()"
            " AND state <> 'idle'"
        )[0]
        if not busy:
            return
        time.sleep(0.05)


@pytest.mark.parametrize("path", ["/admin/login", f"/admin/g/{GUILD}/", f"/admin/g/{GUILD}/transactions.csv"])
def test_a_page_asked_of_a_hung_database_is_the_503_page(site, proxy, path):
    # Given an admin signed in while the database answered
    admin = Browser("198.51.100.80")
    assert admin.sign_in(NAME, PASSWORD)["statusCode"] == 303
    # When the database hangs and a page is asked for
    proxy.freeze()
    result = _within_hang_bound(lambda: admin.request("GET", path))
    # Then the answer is the plain 503 page, with the site's headers and no trace
    assert result["statusCode"] == 503
    assert NOT_ANSWERING in result["body"] and "Traceback" not in result["body"]
    assert "Content-Security-Policy" in result["headers"]


def test_a_change_posted_while_the_database_hangs_is_a_503_and_writes_nothing_half(site, proxy):
    admin = Browser("198.51.100.81")
    assert admin.sign_in(NAME, PASSWORD)["statusCode"] == 303
    form = {"csrf_token": admin.csrf(f"/admin/g/{GUILD}/points"), "member": str(MEMBER), "operation": "award",
            "amount": "5", "reason": "while hung", "form_token": "deadline-form-1"}  # fmt: skip
    before = _entries(site)
    # When the database hangs under the points form
    proxy.freeze()
    result = _within_hang_bound(lambda: admin.request("POST", f"/admin/g/{GUILD}/points", form))
    assert result["statusCode"] == 503 and NOT_ANSWERING in result["body"]
    # Then, once it is back, nothing of it was written
    proxy.thaw()
    _until_no_backend_waits(site)
    assert _entries(site) == before
    # And the same form sent again is applied once
    again = admin.request("POST", f"/admin/g/{GUILD}/points", form)
    assert again["statusCode"] == 303
    assert _entries(site) == before + 1
    assert (
        site.fetchone("SELECT balance FROM points WHERE guild_id = %s AND user_id = %s", (GUILD, MEMBER))[0]
        == 5
    )
