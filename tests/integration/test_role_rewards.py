"""Role rewards without spending, on real Postgres: balance thresholds reached and left (keep or
remove), once per crossing under concurrency and replays; achievements that grant a role; timed
grants ended by the keep-alive; and the admin site's Roles section, member page and flag, with
the bot's rights checked against the Discord stand-in over HTTP."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
from _admin_browser import Browser, admin_site_database
from _dm_fixtures import RecordingQueue, discord_fixture, fresh_db_fixture, new_guild, new_member

from pointsbot.community import achievements, members, role_rewards, roles
from pointsbot.community import points as ledger
from pointsbot.delivery import tasks
from pointsbot.discord import rest as discord_rest
from pointsbot.ledger.guilds import guild_policy
from pointsbot.platform import config, runtime
from pointsbot.platform.db import Database
from pointsbot.platform.errors import InvalidInput, NotFound
from pointsbot_local import discord_standin_rest

# Fixtures used by name in this module.
__all__ = ["discord_fixture", "fresh_db_fixture"]

state = discord_standin_rest.state


@pytest.fixture
def queue() -> RecordingQueue:
    recording = RecordingQueue([])
    tasks.set_task_queue(recording)
    yield recording
    tasks.set_task_queue(None)


def threshold(db: Database, guild: int, points: int, role: int | str, on_drop: str = "keep") -> int:
    made = db.run(role_rewards.create_threshold, guild, points=points, role_id=int(role), on_drop=on_drop,
                  actor_id=1, actor_name="test")  # fmt: skip
    return made.id


def change(db: Database, settings, guild: int, user: int, amount: int, key: str):
    operation = ledger.award if amount > 0 else ledger.deduct
    return db.run(operation, guild_id=guild, user_id=user, amount=abs(amount), reason="test", actor_id=1,
                  source="admin_site", idempotency_key=key, settings=settings)  # fmt: skip


def role_changes(db: Database, guild: int, user: int | None = None) -> list[tuple]:
    return db.fetchall(
        "SELECT action, source, source_ref, role_id FROM role_changes WHERE guild_id = %s "
        "AND (%s::bigint IS NULL OR user_id = %s) ORDER BY id",
        (guild, user, user),
    )


# -- thresholds ------------------------------------------------------------------------------------
def test_reaching_and_leaving_a_threshold_that_removes_the_role(db: Database, settings) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    tid = threshold(db, guild, 1000, 555, "remove")
    change(db, settings, guild, user, 600, "a")
    assert role_changes(db, guild) == []  # not there yet
    change(db, settings, guild, user, 600, "b")  # 1,200: reached
    change(db, settings, guild, user, 50, "c")  # still above: nothing new
    change(db, settings, guild, user, -300, "d")  # 950: left
    change(db, settings, guild, user, -300, "d")  # the same change again: a replay, nothing
    change(db, settings, guild, user, 100, "e")  # 1,050: reached a second time
    assert role_changes(db, guild) == [
        ("add", "threshold", f"{tid}:{user}:1", 555),
        ("remove", "threshold", f"{tid}:{user}:1", 555),
        ("add", "threshold", f"{tid}:{user}:2", 555),
    ]
    reason = db.fetchone("SELECT reason FROM role_changes ORDER BY id LIMIT 1")[0]
    assert reason == "Reached 1,000 points"
    # The member's data export has them, ids as text.
    exported = db.run(members.export, guild, user)["role_changes"]
    assert [(c["action"], c["role_id"], c["state"]) for c in exported] == [
        ("add", "555", "pending"), ("remove", "555", "pending"), ("add", "555", "pending"),
    ]  # fmt: skip


def test_a_threshold_that_keeps_the_role_grants_once(db: Database, settings) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    tid = threshold(db, guild, 500, 556)
    for n, amount in enumerate((500, -400, 400, -10, 900)):
        change(db, settings, guild, user, amount, f"k{n}")
    assert role_changes(db, guild) == [("add", "threshold", f"{tid}:{user}:1", 556)]


def test_one_change_can_cross_several_thresholds_and_a_set_crosses_too(db: Database, settings) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    threshold(db, guild, 100, 601, "remove")
    threshold(db, guild, 1000, 602, "remove")
    change(db, settings, guild, user, 5000, "up")
    db.run(ledger.set_balance, guild_id=guild, user_id=user, target=0, reason="reset", actor_id=1,
           source="admin_site", idempotency_key="set", settings=settings)  # fmt: skip
    assert [(a, r) for a, _, _, r in role_changes(db, guild)] == [
        ("add", 601), ("add", 602), ("remove", 601), ("remove", 602),
    ]  # fmt: skip


def test_a_role_held_through_a_purchase_is_not_removed_by_leaving_a_threshold(db: Database, settings) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    threshold(db, guild, 100, 700, "remove")
    change(db, settings, guild, user, 200, "up")
    db.run(roles.request_role_change, guild_id=guild, user_id=user, role_id=700, action="add",
           source="purchase", source_ref="p1", reason="bought")  # fmt: skip
    change(db, settings, guild, user, -150, "down")
    assert [a for a, *_ in role_changes(db, guild)] == ["add", "add"]


def test_concurrent_changes_of_one_member_cross_once(db: Database, settings) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    tid = threshold(db, guild, 1000, 800, "remove")
    barrier = threading.Barrier(20)

    def give(n: int) -> None:
        barrier.wait()
        change(db, settings, guild, user, 100, f"c{n}")

    threads = [threading.Thread(target=give, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (
        db.fetchone("SELECT balance FROM points WHERE guild_id = %s AND user_id = %s", (guild, user))[0]
        == 2000
    )
    assert role_changes(db, guild) == [("add", "threshold", f"{tid}:{user}:1", 800)]


def test_no_threshold_no_query(db: Database, settings) -> None:
    guild = new_guild(db)
    policy = db.run(guild_policy, settings, guild)
    assert policy.role_thresholds == ()
    entry = change(db, settings, guild, new_member(db, guild), 10, "x").entry
    # The connection is never touched when the guild has no thresholds, or none is crossed.
    assert role_rewards.after_balance_change(None, policy, [entry]) == 0
    threshold(db, guild, 5000, 901)
    policy = db.run(guild_policy, settings, guild)
    assert policy.role_thresholds == (5000,)
    assert role_rewards.after_balance_change(None, policy, [entry]) == 0


def test_threshold_input_is_checked_and_bad_input_writes_nothing(db: Database) -> None:
    guild = new_guild(db)
    for points, role, on_drop, message in (
        (0, 5, "keep", "above zero"),
        (-5, 5, "keep", "above zero"),
        (10, "abc", "keep", "Discord id"),
        (10, 5, "explode", "keep the role or remove it"),
        (10**19, 5, "keep", "at most"),
    ):
        with pytest.raises(InvalidInput, match=message):
            db.run(role_rewards.create_threshold, guild, points=points, role_id=role, on_drop=on_drop,
                   actor_id=1, actor_name="t")  # fmt: skip
    threshold(db, guild, 10, 5)
    with pytest.raises(InvalidInput, match="already has a threshold"):
        threshold(db, guild, 20, 5)
    assert db.fetchone("SELECT count(*) FROM role_thresholds WHERE guild_id = %s", (guild,))[0] == 1
    (only,) = db.run(role_rewards.list_thresholds, guild)
    db.run(role_rewards.remove_threshold, guild, only.id, actor_id=1, actor_name="t")
    with pytest.raises(NotFound):
        db.run(role_rewards.remove_threshold, guild, only.id, actor_id=1, actor_name="t")
    assert (
        db.fetchone("SELECT settings->'role_thresholds' FROM guilds WHERE guild_id = %s", (guild,))[0] == []
    )


# -- achievements -----------------------------------------------------------------------------------
def test_an_achievement_grants_its_role_and_its_bonus_crosses_thresholds(db: Database, settings) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    tid = threshold(db, guild, 1000, 901)
    badge = db.run(achievements.create_definition, guild, name="Big spender", criterion="balance_at_least",
                   threshold=500, bonus_points=600, role_id="902")  # fmt: skip
    role_only = db.run(achievements.create_definition, guild, name="Regular", criterion="balance_at_least",
                       threshold=500, bonus_points=0, role_id=903)  # fmt: skip
    assert badge.role_id == 902
    change(db, settings, guild, user, 500, "earn")  # 500: both achievements; the bonus makes 1,100
    assert sorted(role_changes(db, guild)) == sorted([
        ("add", "achievement", f"{badge.id}:{user}", 902),
        ("add", "achievement", f"{role_only.id}:{user}", 903),
        ("add", "threshold", f"{tid}:{user}:1", 901),
    ])  # fmt: skip
    with pytest.raises(InvalidInput):
        db.run(achievements.create_definition, guild, name="Bad", criterion="balance_at_least", threshold=1,
               role_id="not a role")  # fmt: skip


# -- timed grants ---------------------------------------------------------------------------------------
def test_a_timed_grant_is_removed_once_after_its_end(db: Database, queue) -> None:
    guild = new_guild(db)
    user, other = new_member(db, guild), new_member(db, guild)

    def grant(who: int, ref: str, ends: datetime | None, role: int = 42) -> int:
        return db.run(roles.request_role_change, guild_id=guild, user_id=who, role_id=role, action="add",
                      source="purchase", source_ref=ref, reason="Bought VIP", expires_at=ends)  # fmt: skip

    past = datetime.now(UTC) - timedelta(minutes=1)
    ended = grant(user, "p1", past)
    grant(user, "p2", datetime.now(UTC) + timedelta(days=3), role=43)  # not ended yet
    covered = grant(other, "p3", past)
    grant(other, "p4", None)  # the same role for good: the timed one ends without a removal
    assert db.run(roles.end_expired_grants) == 1
    assert db.run(roles.end_expired_grants) == 0  # once only
    assert role_changes(db, guild, user)[-1] == ("remove", "expiry", str(ended), 42)
    # A grant that ends while another of the same role still runs takes nothing away.
    covered_too = grant(user, "p6", past, role=43)
    assert db.run(roles.end_expired_grants) == 0
    assert db.fetchone("SELECT removal_id FROM role_changes WHERE id = %s", (covered_too,))[0] == covered_too
    assert [a for a, *_ in role_changes(db, guild, other)] == ["add", "add"]
    assert db.fetchone("SELECT removal_id FROM role_changes WHERE id = %s", (covered,))[0] == covered
    # The keep-alive does it every five minutes, and asks for the removal to be made.
    from pointsbot.ops import keepalive

    grant(user, "p5", past)
    result = keepalive.run(db, warmer=lambda event: None)
    assert result.timed_roles_ended == 1  # p1's removal came after it: nothing else covers the role
    assert result.role_changes_due and result.role_delivery_requested


def test_a_threshold_reached_ends_with_the_role_on_discord(db: Database, discord, settings, queue) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    role = state.add_role(str(guild), "Thousand club", position=4)
    threshold(db, guild, 1000, role, "remove")
    change(db, settings, guild, user, 1000, "in")
    fast = settings.with_overrides(dm_rate_per_second=500)
    assert roles.apply_due(db, discord, settings=fast).done == 1
    assert state.member_roles(str(guild), str(user)) == [role]
    assert state.audit_log[-1]["reason"] == "Reached 1,000 points"
    change(db, settings, guild, user, -1, "out")
    roles.apply_due(db, discord, settings=fast)
    assert state.member_roles(str(guild), str(user)) == []


# -- the admin site ----------------------------------------------------------------------------------------
GUILD = 760000000000000077
_accounts = itertools.count(1)


@pytest.fixture
def site(database_url, standin_url, monkeypatch):
    monkeypatch.delenv("ADMIN_BASE_URL", raising=False)
    monkeypatch.setenv("DISCORD_API_BASE_URL", standin_url)
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "site-token")
    monkeypatch.setenv("DISCORD_APPLICATION_ID", "100000000000000001")
    config.reset_settings()
    discord_rest.set_client(None)
    discord_standin_rest.reset()
    name = f"roles-admin-{next(_accounts)}"
    db = admin_site_database(database_url, GUILD, (name, "roles admin password"))
    browser = Browser()
    browser.sign_in(name, "roles admin password")
    yield db, browser
    runtime.reset()
    discord_rest.set_client(None)
    config.reset_settings()
    discord_standin_rest.reset()


def _flash_after(browser: Browser, answer: dict) -> str:
    """The page after a form: the redirect's target when it was done, the page shown again in
    the answer (422) when it was refused."""
    if answer["statusCode"] == 422:
        return answer["body"]
    assert answer["statusCode"] == 303, answer.get("body", "")[:500]
    return browser.request("GET", answer["headers"]["Location"])["body"]


def test_an_admin_adds_a_threshold_and_gets_plain_refusals(site) -> None:
    db, browser = site
    fine = state.add_role(str(GUILD), "Supporter", position=2)
    above = state.add_role(str(GUILD), "Staff", position=15)
    page = f"/admin/g/{GUILD}/roles"
    token = browser.csrf(page)

    def post(points: str, role: str, on_drop: str = "remove") -> str:
        form = {"csrf_token": token, "points": points, "role_id": role, "on_drop": on_drop}
        return _flash_after(browser, browser.request("POST", f"{page}/thresholds", form))

    assert "is at or above the bot" in post("1,000", above)
    assert "no role with id 123456" in post("1000", "123456")
    assert "above zero" in post("0", fine)
    assert "above zero" in post("-5", fine)
    assert "Give the id of the role" in post("1000", "")
    assert db.fetchone("SELECT count(*) FROM role_thresholds")[0] == 0
    body = post("1,000", fine)
    assert "from their next change" in body and "Traceback" not in body
    (made,) = db.run(role_rewards.list_thresholds, GUILD)
    assert (made.points, str(made.role_id), made.on_drop) == (1000, fine, "remove")
    assert db.fetchone("SELECT count(*) FROM admin_audit WHERE action = 'role_threshold.create'")[0] == 1
    assert "1,000" in browser.request("GET", page)["body"]
    body = _flash_after(browser, browser.request("POST", f"{page}/thresholds/{made.id}/remove",
                                                 {"csrf_token": token}))  # fmt: skip
    assert "Threshold removed" in body and db.run(role_rewards.list_thresholds, GUILD) == []


def test_refused_changes_are_flagged_shown_on_the_member_page_and_acknowledged(site, settings) -> None:
    db, browser = site
    user = 700000000000000555
    db.run(lambda conn: ledger.ensure_member(conn, GUILD, user))
    role = state.add_role(str(GUILD), "Too high", position=30)
    change_id = db.run(roles.request_role_change, guild_id=GUILD, user_id=user, role_id=int(role), action="add",
                       source="admin", source_ref="x1", reason="by hand")  # fmt: skip
    roles.apply_due(db, settings=settings.with_overrides(dm_rate_per_second=500))
    dashboard = browser.request("GET", f"/admin/g/{GUILD}/")["body"]
    assert (
        'id="refused-roles-flag"' in dashboard
        and ">1<" in dashboard.split('id="refused-roles-flag"')[1][:300]
    )
    member = browser.request("GET", f"/admin/g/{GUILD}/members/{user}")["body"]
    assert "Roles granted and removed" in member and "refused" in member and role in member
    page = browser.request("GET", f"/admin/g/{GUILD}/roles")["body"]
    assert "50013" in page and "1 to look at" in page
    token = browser.csrf(f"/admin/g/{GUILD}/roles")
    body = _flash_after(browser, browser.request("POST", f"/admin/g/{GUILD}/roles/changes/{change_id}/acknowledge",
                                                 {"csrf_token": token}))  # fmt: skip
    assert "Marked as seen" in body and "Nothing refused" in body


def test_an_achievement_with_a_role_the_bot_cannot_grant_is_refused_plainly(site) -> None:
    db, browser = site
    above = state.add_role(str(GUILD), "Owner club", position=40)
    fine = state.add_role(str(GUILD), "Achiever", position=1)
    page = f"/admin/g/{GUILD}/achievements"
    token = browser.csrf(page)
    form = {"csrf_token": token, "name": "Rich", "criterion": "balance_at_least", "threshold": "100",
            "bonus_points": "0", "active": "on"}  # fmt: skip
    body = _flash_after(browser, browser.request("POST", page, {**form, "role_id": above}))
    assert "drag the bot" in body
    assert db.fetchone("SELECT count(*) FROM achievements WHERE guild_id = %s", (GUILD,))[0] == 0
    _flash_after(browser, browser.request("POST", page, {**form, "role_id": fine}))
    assert db.fetchone("SELECT role_id FROM achievements WHERE guild_id = %s", (GUILD,))[0] == int(fine)


def test_the_sweep_brings_members_in_step_with_thresholds_made_later_or_bypassed(
    db: Database, settings
) -> None:
    from pointsbot import ledger as bare_ledger

    guild = new_guild(db)
    rich, poor = new_member(db, guild), new_member(db, guild)
    change(db, settings, guild, rich, 2000, "before")  # above 1,000 before the threshold exists
    change(db, settings, guild, poor, 10, "poor")
    tid = threshold(db, guild, 1000, 990, "remove")
    assert role_changes(db, guild) == []
    achievements.run_sweep(db, guild_id=guild, settings=settings)
    assert role_changes(db, guild) == [("add", "threshold", f"{tid}:{rich}:1", 990)]
    achievements.run_sweep(db, guild_id=guild, settings=settings)
    assert len(role_changes(db, guild)) == 1  # in step now: nothing more
    # A change written with the bare ledger (no after_change) takes the balance below: the next
    # check removes the role.
    db.run(bare_ledger.deduct, guild_id=guild, user_id=rich, amount=1500, reason="bypass", actor_id=1,
           source="admin_site", idempotency_key="bare", settings=settings)  # fmt: skip
    achievements.run_sweep(db, guild_id=guild, settings=settings)
    assert role_changes(db, guild)[-1] == ("remove", "threshold", f"{tid}:{rich}:1", 990)
