"""The admin site's Seasons section through its Lambda handler (in-process, real Postgres): a
reset larger than one request's share is reverted in steps the Continue button resumes, each
member once, audited once; the end and revert buttons of a season they do not fit refuse in
plain words and write nothing. (The pages in a browser: tests/e2e/admin/test_admin_seasons.py;
this file's name differs from it because pytest needs unique basenames across test folders.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
from _admin_browser import Browser, admin_site_database

from pointsbot import ledger
from pointsbot.community import seasons
from pointsbot.platform import runtime
from pointsbot.platform.config import get_settings

pytestmark = pytest.mark.integration
GUILD = 775000000000000001
ADMIN = ("seasons-admin", "seasons admin's password")
MEMBERS = [776000000000000000 + n for n in range(1, 8)]  # 7 members: 4 steps of 2


@pytest.fixture(scope="module")
def site(database_url):
    db = admin_site_database(database_url, GUILD, ADMIN)
    yield db
    runtime.reset()


@pytest.fixture
def admin(site, monkeypatch) -> Browser:
    monkeypatch.delenv("ADMIN_BASE_URL", raising=False)
    browser = Browser("198.51.100.61")
    assert browser.sign_in(*ADMIN)["statusCode"] == 303
    return browser


def _sql(site, query, params=()):
    return site.run(lambda conn: conn.execute(query, params).fetchall())


def _ended_season(site, name: str, *, reset: bool) -> int:
    """A season with scores, ended and its end run (archive, reset if chosen)."""

    def start(conn):
        now = conn.execute("SELECT now()").fetchone()[0]
        return seasons.start_season(conn, GUILD, name=name, starts_at=None, ends_at=now + timedelta(days=7),
                                    actor_id=None, actor_name="local:seasons-admin", reset_balances=reset).id  # fmt: skip

    season_id = site.run(start)
    for n, user in enumerate(MEMBERS):
        site.run(ledger.award, guild_id=GUILD, user_id=user, amount=10 * (n + 1), reason="play", actor_id=1,
                 source="system", idempotency_key=f"{name}-{n}", settings=get_settings())  # fmt: skip
    site.run(lambda conn: conn.execute("UPDATE seasons SET ends_at = now() WHERE id = %s", (season_id,)))
    assert seasons.run_end(site, season_id, client=object()).finished
    return season_id


def _balances(site) -> dict[int, int]:
    return dict(_sql(site, "SELECT user_id, balance FROM points WHERE guild_id = %s", (GUILD,)))


def test_a_large_reset_is_reverted_in_steps_continue_resumes(site, admin, monkeypatch):
    from admin_site.sections import seasons as section

    # Given a season whose end reset 7 balances, and a site that reverts 2 members a request
    season_id = _ended_season(site, "Steps", reset=True)
    assert set(_balances(site).values()) == {0}
    before_reset = {u: -a for u, a in _sql(site, "SELECT user_id, amount FROM transactions WHERE guild_id = %s "
                                                  "AND kind = 'season_reset'", (GUILD,))}  # fmt: skip
    monkeypatch.setattr(section, "REVERT_BATCH", 2)
    monkeypatch.setattr(section, "_revert_budget", lambda: 0.0)
    page = f"/admin/g/{GUILD}/seasons/{season_id}/revert"
    # When the admin confirms, then presses Continue until it is done
    assert "from <strong>7 members</strong>" in admin.request("GET", page)["body"]
    steps, location = 0, page
    while location.endswith("/revert"):
        result = admin.request("POST", page, {"csrf_token": admin.csrf(page)})
        assert result["statusCode"] == 303, result["body"][:300]
        location = result["headers"]["Location"]
        steps += 1
        if location.endswith("/revert"):
            shown = admin.request("GET", location)["body"]
            # Then each step says how far it got, and offers to go on
            assert f"{min(2 * steps, 7)} of 7 restored so far" in shown and ">Continue<" in shown
        assert steps < 10
    # Then 4 steps of 2 members, the last ending on the last member done without one more press
    # that finds nobody left; every balance back to before the reset, each member once
    assert steps == 4
    assert _balances(site) == before_reset
    reverts = _sql(site, "SELECT count(*), count(DISTINCT reverts_id) FROM transactions WHERE guild_id = %s "
                         "AND kind = 'revert' AND source = 'season_reset'", (GUILD,))[0]  # fmt: skip
    assert reverts == (7, 7)
    assert _sql(site, "SELECT actor_name FROM admin_audit WHERE action = 'season.reset_reverted' AND target = %s",
                (f"season:{season_id}",)) == [("local:seasons-admin",)]  # fmt: skip
    sums = dict(_sql(site, "SELECT user_id, sum(amount) FROM transactions WHERE guild_id = %s GROUP BY user_id",
                     (GUILD,)))  # fmt: skip
    assert sums == _balances(site)
    # And one more press changes nothing
    result = admin.request("POST", page, {"csrf_token": admin.csrf(page)})
    assert "reverted already" in admin.request("GET", result["headers"]["Location"])["body"]
    assert (
        _sql(site, "SELECT count(*) FROM transactions WHERE guild_id = %s AND kind = 'revert'", (GUILD,))[0][
            0
        ]
        == 7
    )


def test_end_and_revert_of_a_season_they_do_not_fit_are_plain_refusals(site, admin):
    # Given an ended season without a reset
    season_id = _ended_season(site, "No reset", reset=False)
    counts = "SELECT (SELECT count(*) FROM transactions), (SELECT count(*) FROM admin_audit), (SELECT count(*) FROM seasons)"
    before = _sql(site, counts)
    base = f"/admin/g/{GUILD}/seasons/{season_id}"
    for path, words in (
        (f"{base}/revert", "has no balance reset to revert"),
        (f"{base}/end", "has already ended"),
    ):
        # When its revert or end is posted anyway
        result = admin.request("POST", path, {"csrf_token": admin.csrf(base)})
        # Then a page with the reason in words (the refused form shown again with 422, or
        # back to the season's page), and nothing written
        assert result["statusCode"] in (303, 422), result["body"][:300]
        page = (result["body"] if result["statusCode"] == 422
                else admin.request("GET", result["headers"]["Location"])["body"])  # fmt: skip
        assert words in page
        assert _sql(site, counts) == before
    # And the confirmation pages say so too (no button)
    assert "has no balance reset to revert" in admin.request("GET", f"{base}/revert")["body"]
    ended = admin.request("GET", f"{base}/end")["body"]
    assert "has ended already" in ended and "End the season now" not in ended
