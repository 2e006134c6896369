"""The stand-in's /discord-api/_inspect page in a real browser (Debian's chromium, Playwright):
what `make run` shows a person. Real signed interactions through the local runtime; their
answers (cards, buttons, a modal) and the DMs the worker sent are drawn as Discord would,
hostile text stays text, the page runs under its Content-Security-Policy with nothing refused,
and fits 1366 and 390 px without horizontal overflow. Screenshots: test-artifacts/inspect/."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest
from test_interactions_e2e import Stack, stack  # noqa: F401 - the local stack fixture, shared

from pointsbot.delivery import tasks
from pointsbot_local import discord_standin_rest
from pointsbot_local.simulate import command_payload, component_payload, menu_payload

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "inspect"
GUILD = "960000000000000001"
ADMIN = "860000000000000001"
MEMBER = "860000000000000002"
HOSTILE = "<script>window.pwned=1</script> <img src=x onerror=alert(1)> **bold** </div>"


def _fill(stack: Stack) -> None:  # noqa: F811
    discord_standin_rest.reset()
    admin = dict(user_id=ADMIN, guild_id=GUILD, admin=True)
    member = dict(user_id=MEMBER, guild_id=GUILD, username="ada")
    for raw in (
        command_payload("points add", {"member": MEMBER, "amount": 120, "reason": HOSTILE}, **admin),
        command_payload("balance", **member),
        command_payload("leaderboard", **member),
        component_payload("leaderboard:1:me", user_id=MEMBER, guild_id=GUILD),
        command_payload("history", **member),
        command_payload("help", **admin),
        menu_payload("Give points", ADMIN, user_id=MEMBER, guild_id=GUILD),
        command_payload("balance", locale="de", guild_locale="de", **member),
    ):
        status, answer = stack.send(raw)
        assert status == 200 and answer["type"] in (4, 7, 9), answer
    tasks.get_task_queue().drain(timeout=20)  # the points DM, delivered by the worker
    deadline = time.monotonic() + 20
    while not discord_standin_rest.state.dms_to(MEMBER) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert discord_standin_rest.state.dms_to(MEMBER), stack.sql(
        "SELECT status, last_error FROM direct_messages"
    )


def test_the_inspect_page_draws_what_the_bot_sent(stack: Stack) -> None:  # noqa: F811
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup.d/20-chromium installs it (scripts/test runs it)")
    from playwright.sync_api import sync_playwright

    _fill(stack)
    url = stack.url + "/discord-api/_inspect"
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - the local runtime
        policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and "unsafe-inline" not in policy
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for width in (1366, 390):
                context = browser.new_context(viewport={"width": width, "height": 900})
                page = context.new_page()
                refused: list[str] = []
                page.on("console", lambda m, refused=refused: refused.append(m.text)
                        if "Content Security Policy" in m.text else None)  # fmt: skip
                page.goto(url)
                # Cards: containers with the accent bar, sections with the avatar beside them
                assert page.locator(".container").count() >= 6
                bar = page.locator(".container").first.evaluate("e => getComputedStyle(e).borderLeftColor")
                assert bar == "rgb(88, 101, 242)"  # the default accent, Discord's blurple
                assert page.locator(".section .accessory img.thumbnail").count() >= 4
                assert page.locator("span.h3", has_text="Leaderboard").count() >= 2
                assert page.locator("span.h3", has_text="Punktestand").count() == 1  # the German answer
                # Buttons as Discord draws them, disabled where they are
                assert page.locator("button.button", has_text="Next").count() >= 1
                assert page.locator("button.button[disabled]", has_text="First").count() >= 1
                # The modal of "Give points", with its fields
                dialog = page.locator(".modal")
                assert dialog.count() == 1 and "Give points" in dialog.locator(".modal-title").inner_text()
                assert dialog.locator("label.field").count() >= 2
                # The DM the worker sent, naming the server it comes from
                assert page.locator(".meta", has_text="Message to channel").count() >= 1
                # Markdown drawn, hostile text left as text: no script ran, no image was injected
                assert page.locator("strong").count() > 0
                assert page.evaluate("() => window.pwned") is None
                assert page.locator("img[src='x']").count() == 0
                assert page.locator(".text", has_text="<script>window.pwned=1</script>").count() >= 1
                # Fits the width; the page's own style applied under the policy, nothing refused
                overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 0, f"{overflow}px of horizontal overflow at {width}px"
                assert refused == [], refused
                page.screenshot(path=str(ARTIFACTS / f"inspect-{width}.png"), full_page=True)
                dialog.screenshot(path=str(ARTIFACTS / f"inspect-modal-{width}.png"))
                context.close()
        finally:
            browser.close()
