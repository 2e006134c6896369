"""The Leaderboard page and the public page in chromium at a phone's 390 px and a laptop's
1366 px: names and avatars shown, never wider than the screen, the period kept by the switcher
and across Next; the public page switched on in Settings, then served without sign-in, and off
again it is the 404 page. Screenshots land in test-artifacts/admin/leaderboard-*."""

from __future__ import annotations

import pytest
from _admin_e2e import GUILD_A, shot, sign_in_local

from pointsbot_local.discord_standin_rest import state as discord_state

pytestmark = pytest.mark.e2e

G = f"/g/{GUILD_A}"
LONG_NAME = "Averyveryverylongleaderboardnamewithoutanyspaces_" + "y" * 30
PEOPLE = [(782000000000000000 + i, f"Player {i:02d}", 100 - i % 7) for i in range(1, 31)]


@pytest.fixture(scope="module")
def board(site):
    from pointsbot import ledger
    from pointsbot.community import members

    def seed(conn):
        members.remember(
            conn, GUILD_A, 782000000000000099, "long", LONG_NAME, f"avatars/782000000000000099/{'d' * 32}"
        )
        ledger.award(conn, guild_id=GUILD_A, user_id=782000000000000099, amount=500, reason="a private reason",
                     actor_id=None, actor_name="local:alice", source="admin_site", idempotency_key="lb-long")  # fmt: skip
        for user, name, amount in PEOPLE:
            members.remember(conn, GUILD_A, user, name.lower().replace(" ", ""), name)
            ledger.award(conn, guild_id=GUILD_A, user_id=user, amount=amount, reason="a private reason",
                         actor_id=None, actor_name="local:alice", source="admin_site", idempotency_key=f"lb-{user}")  # fmt: skip

    site.db.run(seed)
    # Discord (the stand-in) knows them by the same names: the page's refresh keeps them
    discord_state.set_user("782000000000000099", "long", avatar="d" * 32)
    discord_state.set_member(str(GUILD_A), "782000000000000099", nick=LONG_NAME)
    for user, name, _ in PEOPLE:
        discord_state.set_user(str(user), name.lower().replace(" ", ""))
        discord_state.set_member(str(GUILD_A), str(user), nick=name)
    return site


def _overflow(page) -> int:
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - window.innerWidth"
    )


@pytest.mark.parametrize("width", (390, 1366))
def test_the_admin_leaderboard_shows_names_fits_and_keeps_the_period(board, browser, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in_local(page, board)
    # When the admin opens the Leaderboard from the menu's address
    page.goto(board.admin(f"{G}/leaderboard"))
    table = page.locator("#board-table")
    # Then names (and the picture of the one who has one) are shown, not ids, and it fits
    assert LONG_NAME in table.inner_text() and "Player 01" in table.inner_text()
    assert "782000000000000099" not in table.inner_text()
    assert (
        table.locator("img.avatar")
        .first.get_attribute("src")
        .startswith("https://cdn.discordapp.com/avatars/")
    )
    assert page.locator("#board-table tbody tr").first.locator("td").first.inner_text().endswith("#1")
    shot(page, f"leaderboard-admin-{width}")
    assert _overflow(page) == 0
    # When the month is chosen and Next followed
    page.select_option("#board-period select[name=period]", index=2)
    with page.expect_navigation():
        page.click("#board-period button[type=submit]")
    title = page.locator("#board-title").inner_text()
    with page.expect_navigation():
        page.click("#board-next")
    # Then page 2 of the same month's board, the switcher still on it
    assert page.locator("#board-title").inner_text() == title
    assert "Page 2 of 2" in page.locator("#board-summary").inner_text()
    assert (
        page.locator("#board-period select[name=period] option:checked").inner_text().startswith("This month")
    )
    # And the jump to a page keeps it too
    page.fill("#board-jump input[name=page]", "1")
    with page.expect_navigation():
        page.click("#board-jump button[type=submit]")
    assert page.locator("#board-title").inner_text() == title and "Page 1 of 2" in page.inner_text(
        "#board-summary"
    )
    assert _overflow(page) == 0
    context.close()


def test_the_public_page_switched_on_in_settings_is_served_without_sign_in(board, browser):
    # Given the admin switches the public page on in Settings
    admin = browser.new_context(viewport={"width": 1366, "height": 900})
    page = admin.new_page()
    sign_in_local(page, board)
    page.goto(board.admin(f"{G}/settings"))
    page.check("input[name=public_leaderboard]")
    with page.expect_navigation():
        page.click("#settings-form button[type=submit]")
    public_url = page.locator("#public-board-link").get_attribute("href")
    assert public_url == f"/admin/leaderboard/{GUILD_A}"
    for width in (390, 1366):
        # When someone who is not signed in opens the link on a phone and a laptop
        visitor = browser.new_context(viewport={"width": width, "height": 900})
        public = visitor.new_page()
        response = public.goto(board.url + public_url)
        # Then the board is there with names and pictures, no private data, and it fits
        assert response.status == 200 and response.headers["etag"].startswith('"')
        text = public.locator("#board-table").inner_text()
        assert LONG_NAME in text and "Player 27" not in text  # page 1 of 2
        assert "Alpha Guild" in public.locator("header.top").inner_text()
        assert "a private reason" not in public.content() and "Sign out" not in public.content()
        assert _overflow(public) == 0
        shot(public, f"leaderboard-public-{width}")
        with public.expect_navigation():
            public.click("#board-next")
        assert "Player 27" in public.locator("#board-table").inner_text() and _overflow(public) == 0
        visitor.close()
    # When the admin switches it off again; Then the link is the 404 page
    page.goto(board.admin(f"{G}/settings"))
    page.uncheck("input[name=public_leaderboard]")
    with page.expect_navigation():
        page.click("#settings-form button[type=submit]")
    visitor = browser.new_context()
    gone = visitor.new_page().goto(board.url + public_url)
    assert gone.status == 404
    visitor.close()
    admin.close()
