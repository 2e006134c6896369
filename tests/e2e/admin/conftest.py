"""The admin site in a real browser: the local runtime in this process on a test database,
Debian's chromium driven by Playwright (never a browser Playwright downloads itself).

One runtime and one browser per test module (put away after it, so later tests see the
process as it was); tests share a signed-in page where they can. Screenshots of every page land in test-artifacts/admin/ (gitignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from _admin_e2e import (
    ADMIN_NAME,
    ADMIN_PASSWORD,
    CHROMIUM,
    CHROMIUM_ARGS,
    GUILD_A,
    GUILD_B,
    HttpClient,
    Site,
    sign_in_local,
)

# What the runtime sets in the environment, put back as it was afterwards.
_ENV = ("DATABASE_URL", "DISCORD_API_BASE_URL", "DISCORD_OAUTH_AUTHORIZE_URL", "DISCORD_CLIENT_SECRET",
        "DISCORD_BOT_TOKEN", "DISCORD_APPLICATION_ID", "ADMIN_BASE_URL", "TASK_QUEUE_URL")  # fmt: skip


@pytest.fixture(scope="module")
def site(make_database, tmp_path_factory) -> Iterator[Site]:
    """The local runtime on a database of its own, for one test module; the process's
    environment, database and task queue are put back afterwards for the tests that follow."""
    from pointsbot.admin import auth
    from pointsbot.delivery import tasks
    from pointsbot.platform import runtime
    from pointsbot_local.__main__ import start

    saved = {k: os.environ.get(k) for k in _ENV}
    saved_queue = tasks._queue
    for key in _ENV:
        os.environ.pop(key, None)
    os.environ["DATABASE_URL"] = make_database()
    os.environ["DISCORD_CLIENT_SECRET"] = "e2e-client-secret"
    os.environ["DISCORD_BOT_TOKEN"] = "e2e-bot-token"
    server, _chosen = start(port=0, local_dir=tmp_path_factory.mktemp("local"))
    db = runtime.get_database()
    # Guild A is managed by the local account; guild B exists but is someone else's.
    db.run(lambda conn: conn.execute(
        "INSERT INTO guilds (guild_id, name) VALUES (%s, 'Alpha Guild'), (%s, 'Beta Guild') ON CONFLICT DO NOTHING",
        (GUILD_A, GUILD_B),
    ))  # fmt: skip
    db.run(auth.create_account, ADMIN_NAME, ADMIN_PASSWORD, [GUILD_A])
    # Discord (the stand-in) has the same names: the site refreshes guild names from it
    from pointsbot_local.discord_standin_rest import state as discord_state

    discord_state.set_guild(str(GUILD_A), "Alpha Guild")
    discord_state.set_guild(str(GUILD_B), "Beta Guild")
    try:
        yield Site(server.url, db)
    finally:
        server.stop()
        queue = tasks._queue
        if queue is not saved_queue and hasattr(queue, "drain"):
            queue.drain(timeout=10)
            queue.stop()
        tasks.set_task_queue(saved_queue)
        runtime.reset()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup.d/20-chromium installs it (scripts/test runs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def admin_page(site: Site, browser) -> Iterator[object]:
    """A page signed in with the local account of guild A, shared by the section tests."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in_local(page, site)
    yield page
    context.close()


@pytest.fixture
def http_client(site: Site) -> HttpClient:
    return HttpClient(site)
