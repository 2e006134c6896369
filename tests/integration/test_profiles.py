"""Names and avatars for the admin site (community/profiles.py): recorded from what an
interaction carries, looked up for a page in one query, stale ones claimed once and refreshed
by the worker from the Discord stand-in (GET /guilds/{g}, GET /guilds/{g}/members/{u}),
erased members never refilled."""

from __future__ import annotations

import pytest
from _dm_fixtures import RecordingQueue, discord_fixture, fresh_db_fixture, new_guild, new_member

from pointsbot.community import members, profiles
from pointsbot.delivery import tasks
from pointsbot.delivery.tasks import Task
from pointsbot.discord.interactions import avatar_path
from pointsbot.platform.db import Database
from pointsbot_local import discord_standin_rest
from pointsbot_local.discord_standin import standin

pytestmark = pytest.mark.integration

__all__ = ["discord_fixture", "fresh_db_fixture"]

state = discord_standin_rest.state
HASH = "a" * 32
OTHER_HASH = "b" * 32


def _row(db: Database, guild: int, user: int) -> tuple:
    return db.fetchone(
        "SELECT username, display_name, avatar, profile_checked_at IS NOT NULL FROM members "
        "WHERE guild_id = %s AND user_id = %s",
        (guild, user),
    )


def test_what_an_interaction_carries_is_kept_in_the_one_update(db: Database) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    # When a member's interaction arrives with names and a server avatar
    picture = avatar_path(user, HASH, guild, OTHER_HASH)
    db.run(members.remember, guild, user, "dora", "Dora", picture)
    # Then the names and the server avatar's CDN path are kept
    assert _row(db, guild, user) == (
        "dora",
        "Dora",
        f"guilds/{guild}/users/{user}/avatars/{OTHER_HASH}",
        False,
    )
    # A hash Discord would not make is ignored, never refused
    assert avatar_path(user, "../../evil", guild, None) is None
    assert avatar_path(user, HASH) == f"avatars/{user}/{HASH}"


def test_a_page_looks_everyone_up_at_once_and_claims_stale_ones_once(db: Database) -> None:
    guild = new_guild(db)
    known, unknown_name = new_member(db, guild), new_member(db, guild)
    db.run(members.remember, guild, known, "eve", "Eve", None)
    stranger = 999_000_000_000_000_001  # in an audit row, never a member here
    db.run(profiles.record_user, {"id": str(stranger), "username": "admin1", "global_name": "The Admin",
                                  "avatar": HASH})  # fmt: skip
    found = db.run(profiles.people, guild, [known, unknown_name, stranger, 5])
    assert found[known].label == "Eve" and found[known].member
    assert found[unknown_name].label == str(unknown_name)
    assert found[stranger].label == "The Admin" and not found[stranger].member
    assert found[stranger].avatar_url == f"{profiles.CDN}/avatars/{stranger}/{HASH}.png?size=64"
    assert found[5].label == "5"
    # The members shown are claimed for a refresh once; a second page soon after claims nothing
    assert db.run(profiles.claim_stale, guild, [known, unknown_name, stranger]) == sorted(
        [known, unknown_name]
    )
    assert db.run(profiles.claim_stale, guild, [known, unknown_name]) == []


def test_the_worker_refreshes_from_discord_and_never_refills_an_erased_member(db: Database, discord) -> None:
    guild = new_guild(db)
    named, left, erased = new_member(db, guild), new_member(db, guild), new_member(db, guild)
    state.set_guild(str(guild), "Alpha Guild", icon=HASH)
    state.set_user(str(named), "frank", global_name="Frank", avatar=HASH)
    state.set_member(str(guild), str(named), nick="Franky")
    state.leave(str(guild), str(left))
    db.run(lambda c: c.execute("UPDATE members SET erased_at = now() WHERE guild_id = %s AND user_id = %s",
                               (guild, erased)))  # fmt: skip
    # When the worker refreshes the guild and three members
    done = profiles.refresh(db, discord, guild, [named, left, erased], guild=True)
    # Then it asked Discord once per thing, and kept what Discord said
    assert [e.route for e in standin.sent("GET")] == ["/guilds/{guild_id}"] + [
        "/guilds/{guild_id}/members/{user_id}"
    ] * 3
    profile, claimed = db.run(profiles.guild_profile, guild)
    assert (profile.label, profile.icon, claimed) == ("Alpha Guild", f"icons/{guild}/{HASH}", False)
    assert _row(db, guild, named) == ("frank", "Franky", f"avatars/{named}/{HASH}", True)
    assert _row(db, guild, left)[3] is True  # checked: asked again only after PROFILE_MAX_AGE
    assert _row(db, guild, erased) == (None, None, None, False)  # nothing written back
    assert done == 2


def test_a_page_asks_the_worker_with_one_task(db: Database, monkeypatch) -> None:
    queue = RecordingQueue([])
    monkeypatch.setattr(tasks, "_queue", queue)
    assert profiles.request_refresh(123, [1, 2], guild=True)
    assert queue.sent == [
        (Task("refresh_profiles", {"guild_id": "123", "user_ids": ["1", "2"], "guild": True}), 0)
    ]
    assert not profiles.request_refresh(123, [], guild=False)
