"""A member's page in chromium at 390 and 1366 px: name and avatar, balance and rank, the balance
drawn as a server-rendered SVG line (no style attribute, nothing the CSP blocks), purchases,
the season's place, role changes by the role's name, DMs; never wider than the screen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from _admin_e2e import GUILD_A, shot, sign_in_local

pytestmark = pytest.mark.e2e

G = f"/g/{GUILD_A}"
MEMBER = 730000000000000991
RIVAL = 730000000000000992


def _overflow(page) -> int:
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - window.innerWidth"
    )


@pytest.fixture(scope="module")
def member(site):
    from pointsbot import ledger
    from pointsbot.community import members, profiles, roles, seasons, store
    from pointsbot.platform.config import get_settings
    from pointsbot_local.discord_standin_rest import state as discord_state

    settings = get_settings()
    site.db.run(members.remember, GUILD_A, MEMBER, "dana", "Dana the Collector")
    discord_state.set_user(str(MEMBER), "dana")
    discord_state.set_member(str(GUILD_A), str(MEMBER), nick="Dana the Collector")
    if not site.db.run(lambda conn: seasons.current_season(conn, GUILD_A)):
        site.db.run(seasons.start_season, GUILD_A, name="Member page cup", starts_at=None,
                    ends_at=datetime.now(UTC) + timedelta(days=7), actor_id=1, actor_name="test")  # fmt: skip
    for i, amount in enumerate((500, 250, 125)):
        site.db.run(ledger.award, guild_id=GUILD_A, user_id=MEMBER, amount=amount, reason=f"helped {i}", actor_id=1,
                    source="admin_site", idempotency_key=f"member-page-{i}", settings=settings)  # fmt: skip
    site.db.run(ledger.award, guild_id=GUILD_A, user_id=RIVAL, amount=5_000, reason="top", actor_id=1,
                source="admin_site", idempotency_key="member-page-rival", settings=settings)  # fmt: skip
    reward = site.db.run(lambda conn: store.create_reward(conn, guild_id=GUILD_A, actor_id=None, actor_name="local:alice",
                                                         kind="item", name="Member page mug", price=100, stock=""))  # fmt: skip
    site.db.run(store.purchase, guild_id=GUILD_A, user_id=MEMBER, reward_id=reward.id, interaction_id=991991,
                actor_name="dana", settings=settings)  # fmt: skip
    role_id = discord_state.add_role(str(GUILD_A), "Regulars", position=2)
    site.db.run(roles.request_role_change, guild_id=GUILD_A, user_id=MEMBER, role_id=int(role_id), action="add",
                source="threshold", source_ref="member-page", reason="reached 500")  # fmt: skip
    site.db.run(profiles.record_roles, GUILD_A, [{"id": role_id, "name": "Regulars", "position": 2}])
    return MEMBER


@pytest.mark.parametrize("width", [390, 1366])
def test_one_place_for_what_happened_to_the_points(site, browser, member, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    sign_in_local(page, site)
    try:
        page.goto(site.admin(f"{G}/members/{member}"))
        # name and avatar, balance and rank
        assert "Dana the Collector" in page.locator("h1.member-title").inner_text()
        assert page.locator("#member-balance").inner_text() == "775"
        assert page.locator("#member-rank").inner_text() == "#2"
        # the balance over time: an inline SVG, one step per change, said in words too
        svg = page.locator("#member-trail svg.sparkline")
        assert svg.count() == 1 and svg.get_attribute("style") is None
        assert page.locator("#member-trail svg path.line").get_attribute("d").count("V") == 4
        assert "from 0 to 775" in page.locator("#member-trail figcaption").inner_text()
        box = svg.bounding_box()
        assert box["width"] > 100 and box["height"] > 10  # drawn, styled by the site's CSS
        # purchases, season place, role changes by name
        assert "Member page mug" in page.locator("#member-purchases").inner_text()
        seasons_text = page.locator("#member-seasons").inner_text()
        assert "place" in seasons_text and "875 points" in seasons_text
        assert "Regulars" in page.locator("#member-roles").inner_text()
        assert page.locator("#member-roles td span[title^='Role id']").count() == 1
        assert _overflow(page) <= 0 and blocked == []
        shot(page, f"member-page-{width}")
    finally:
        context.close()
