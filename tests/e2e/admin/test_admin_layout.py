"""Every page of the admin site at a phone's 390 px and a laptop's 1366 px, in chromium: the page
is never wider than the screen (tables scroll inside themselves), the menu folds behind a button
on the phone and "Sign out" stays on screen. Screenshots land in test-artifacts/admin/layout-*.

The pages walked are the app's own route table (every GET page), so a new section is walked too
once it is given sample values below.
"""

from __future__ import annotations

import re

import pytest
from _admin_e2e import GUILD_A, shot, sign_in_local

from admin_site.app import ROUTES
from pointsbot_local.discord_standin_rest import state as discord_state

pytestmark = pytest.mark.e2e

G = f"/g/{GUILD_A}"
LONG_NAME = "Averyveryverylongdisplaynamewithoutanyspacesatall_" + "x" * 30
LONG_REASON = "A reason that goes on " * 12 + "andendswithaverylongwordwithoutanybreakpointsinside" * 2
MEMBERS = (781000000000000001, 781000000000000002, 781000000000000003)
WIDTHS = (390, 1366)

# Routes that are not pages (files, JSON, CSV, a redirect back from Discord), and the public
# leaderboard (no sign-in, no menu; off by default: test_admin_leaderboard.py walks it).
NOT_PAGES = re.compile(r"/static/|\.json$|\.csv$|/oauth/callback$|^/leaderboard/")


@pytest.fixture(scope="module")
def sample(site) -> dict[str, str]:
    """Data on every page (long names and reasons included), and the ids the pages need."""
    from pointsbot.admin import actions, bulk
    from pointsbot.admin.sessions import Identity
    from pointsbot.community import emails
    from pointsbot.community import members as members_mod

    who = Identity("local", "alice", (GUILD_A,))

    def people(conn):
        members_mod.remember(conn, GUILD_A, MEMBERS[0], "longname", LONG_NAME)
        members_mod.remember(conn, GUILD_A, MEMBERS[1], "bob", "Bob")
        members_mod.remember(conn, GUILD_A, MEMBERS[2], "carol", "Carol")

    site.db.run(people)
    for user, username, nick in zip(
        MEMBERS, ("longname", "bob", "carol"), (LONG_NAME, "Bob", "Carol"), strict=True
    ):
        discord_state.set_user(str(user), username)
        discord_state.set_member(str(GUILD_A), str(user), nick=nick)
    for i, user in enumerate(MEMBERS):
        site.db.run(bulk.change_points, who, guild_id=GUILD_A, user_id=user, operation="award", amount=1000 + i,
                    reason=LONG_REASON, silent=True, form_token=f"layout-{i}")  # fmt: skip
    achievement = site.db.run(actions.create_achievement, who, GUILD_A, {
        "name": "Collector " + "of many things " * 4, "description": LONG_REASON, "criterion": "balance_at_least",
        "threshold": 10, "window_days": None, "bonus_points": 5, "active": True})  # fmt: skip
    site.db.run(emails.submit, GUILD_A, MEMBERS[0], "averyveryverylongaddress.with.dots@example-domain.org")
    site.db.run(actions.send_dms, who, GUILD_A, [MEMBERS[1]], LONG_REASON, "layout-dm")
    preview = site.db.run(bulk.check_rows, GUILD_A, "award",
                          bulk.parse_csv(f"{MEMBERS[1]},5,{LONG_REASON}\n"), silent=True)  # fmt: skip
    batch = site.db.run(bulk.start_batch, who, GUILD_A, preview, "layout-batch")
    bulk.continue_batch(site.db.run, GUILD_A, batch.id)
    from pointsbot.community import store

    reward = site.db.run(lambda conn: store.reward_by_name(conn, GUILD_A, "Layout mug")) or site.db.run(
        lambda conn: store.create_reward(conn, guild_id=GUILD_A, actor_id=None, actor_name="local:alice", kind="item",
                                         name="Layout mug", description=LONG_REASON, price=10, stock=""))  # fmt: skip
    from datetime import timedelta

    from pointsbot.community import seasons

    season = site.db.run(lambda conn: seasons.current_season(conn, GUILD_A)) or site.db.run(
        lambda conn: seasons.start_season(conn, GUILD_A, name="Layout season " + "with a long name " * 4,
                                          starts_at=None, ends_at=conn.execute("SELECT now()").fetchone()[0]
                                          + timedelta(days=30), actor_id=None, actor_name="local:alice",
                                          prize_places=3, prize_points=100))  # fmt: skip
    from pointsbot.community import webhooks
    from pointsbot_local import webhook_receiver

    hook = site.db.run(webhooks.list_webhooks, GUILD_A) or [
        site.db.run(
            webhooks.create_webhook,
            guild_id=GUILD_A,
            url=webhook_receiver.current.url + "/a-long-path" * 12,
            events=list(webhooks.EVENTS),
            description=LONG_REASON[:200],
            actor_id=None,
            actor_name="local:alice",
        )[0]
    ]
    from pointsbot.community import points

    site.db.run(
        points.award,
        guild_id=GUILD_A,
        user_id=MEMBERS[2],
        amount=1,
        reason=LONG_REASON,
        actor_id=None,
        actor_name="local:alice",
        source="admin_site",
        idempotency_key="layout-webhook",
    )  # its log
    return {"guild_id": str(GUILD_A), "user_id": str(MEMBERS[0]), "batch_id": str(batch.id),
            "achievement_id": str(achievement.id), "reward_id": str(reward.id), "season_id": str(season.id),
            "webhook_id": str(hook[0].id)}  # fmt: skip


def _pages(sample: dict[str, str]) -> list[str]:
    paths = []
    for route in ROUTES:
        if route.method != "GET" or NOT_PAGES.search(route.path):
            continue
        paths.append(re.sub(r"<(\w+)>", lambda m: sample[m.group(1)], route.path))
    return paths


def _overflow(page) -> int:
    """How many pixels the page is wider than the screen (0: it fits)."""
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - window.innerWidth"
    )


def _on_screen(page, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    width = page.viewport_size["width"]
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_the_screen(site, browser, sample, width):
    # Given an admin signed in on a screen this wide
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in_local(page, site)
    pages = _pages(sample)
    assert len(pages) >= 12  # every section, the member, achievement and batch pages, sign-in
    wide = {}
    for path in pages:
        # When each page is opened
        response = page.goto(site.admin(path))
        assert response is not None and response.status == 200, (path, response and response.status)
        name = "layout-" + (re.sub(r"[^a-z0-9]+", "-", path.replace(G, "")).strip("-") or "home")
        shot(page, f"{name}-{width}")
        # Then it is no wider than the screen, and "Sign out" is on it
        if _overflow(page) > 0:
            wide[path] = _overflow(page)
        if "/login" not in path:
            assert _on_screen(page, ".signout button"), path
    # the pages a form leads to: the bulk dry run and the DM preview
    page.goto(site.admin(f"{G}/points"))
    page.fill("#bulk-form textarea[name=csv_text]", f"{MEMBERS[0]},5,{LONG_REASON}\nnot-an-id,1,x\n")
    with page.expect_navigation():
        page.click("#bulk-form button[type=submit]")
    shot(page, f"layout-bulk-preview-{width}")
    if _overflow(page) > 0:
        wide["bulk preview"] = _overflow(page)
    page.goto(site.admin(f"{G}/dms?to={MEMBERS[0]}"))
    page.fill("#dm-compose textarea[name=content]", LONG_REASON)
    with page.expect_navigation():
        page.click("#dm-compose button[type=submit]")
    shot(page, f"layout-dm-preview-{width}")
    if _overflow(page) > 0:
        wide["dm preview"] = _overflow(page)
    assert wide == {}, f"pages wider than {width} px (by how many px): {wide}"
    context.close()


def test_on_a_phone_the_menu_folds_behind_a_button(site, browser, sample):
    # Given an admin on a phone
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in_local(page, site)
    page.goto(site.admin(f"{G}/members"))
    # Then the sections are behind "Menu", and Sign out is on screen
    assert page.locator("#site-nav").is_hidden()
    assert _on_screen(page, ".menu-toggle") and _on_screen(page, ".signout button")
    # When the menu is opened, every section is there, one under the other, on screen
    page.click(".menu-toggle")
    assert page.locator(".menu-toggle").get_attribute("aria-expanded") == "true"
    links = page.locator("#site-nav a")
    assert links.count() >= 9
    for i in range(links.count()):
        assert _on_screen(page, f"#site-nav a >> nth={i}")
    assert page.locator("#site-nav a[aria-current=page]").inner_text() == "Members"
    shot(page, "layout-menu-open-390")
    # And a table scrolls inside itself rather than widening the page
    table = page.locator("#member-results")
    assert table.evaluate("t => getComputedStyle(t).overflowX") == "auto"
    assert _overflow(page) <= 0
    context.close()


def test_at_a_laptop_width_the_menu_is_open_and_no_menu_button(site, browser, sample):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    sign_in_local(page, site)
    page.goto(site.admin(f"{G}/transactions"))
    assert page.locator("#site-nav").is_visible() and page.locator(".menu-toggle").is_hidden()
    assert page.locator("#site-nav a[aria-current=page]").inner_text() == "Transactions"
    assert "Transactions" in page.title() and "Alpha Guild" in page.title()
    context.close()


def test_names_and_avatars_instead_of_ids(site, browser, sample):
    from pointsbot.admin import actions
    from pointsbot.admin.sessions import Identity

    # Given a member the site knows only by id, whom Discord (the stand-in) knows by name and picture
    newcomer = 781000000000000009
    avatar = "0123456789abcdef0123456789abcdef"
    discord_state.set_user(str(newcomer), "nova", global_name="Nova Star", avatar=avatar)
    discord_state.set_guild(str(GUILD_A), "Alpha Guild")
    site.db.run(actions.create_member, Identity("local", "alice", (GUILD_A,)), GUILD_A, newcomer, None)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    sign_in_local(page, site)
    # When the admin opens the audit log (the page claims the stale profile; the worker asks Discord)
    page.goto(site.admin(f"{G}/audit"))
    for _ in range(100):
        page.reload()
        if "Nova Star" in page.locator("#audit-table").inner_text():
            break
        page.wait_for_timeout(200)
    # Then the newcomer shows by name with the picture, the id on hover, never as the raw number
    person = page.locator(f"#audit-table .person[title='Discord id {newcomer}']").first
    assert "Nova Star" in person.inner_text()
    assert person.locator("img.avatar").get_attribute("src") == (
        f"https://cdn.discordapp.com/avatars/{newcomer}/{avatar}.png?size=64"
    )
    visible = page.evaluate("() => [...document.querySelectorAll('#audit-table td')].map(td => "
                            "[...td.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join('')).join(' ')")  # fmt: skip
    assert str(newcomer) not in visible
    # And the header names the server, the transactions name members and actors
    assert "Alpha Guild" in page.locator("header.top").inner_text()
    page.goto(site.admin(f"{G}/transactions"))
    table = page.locator("#tx-table").inner_text()
    assert "Bob" in table and "alice (local account)" in table and "local:alice" not in table
    context.close()
