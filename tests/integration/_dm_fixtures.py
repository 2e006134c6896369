"""Fixtures for the DM tests: the project's Discord stand-in served over real HTTP, a client
for it, guilds and members to DM. Imported by test_outbox*.py and test_worker*.py."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pointsbot import ledger
from pointsbot.delivery import outbox
from pointsbot.delivery.tasks import Task
from pointsbot.discord import cards
from pointsbot.discord.rest import DiscordClient
from pointsbot.ledger.guilds import ensure_guild
from pointsbot.platform.db import Database
from pointsbot_local import discord_standin_rest

_ids = itertools.count(1)


@pytest.fixture(name="db")
def fresh_db_fixture(make_database, route_to, prepare_threshold) -> Iterator[Database]:
    """A database of each test's own: delivery takes every due DM, whoever queued it (through
    the pooler in a module marked `through_pgbouncer`)."""
    database = Database(
        route_to(make_database()), pooled=True, pool_max=10, prepare_threshold=prepare_threshold
    )
    yield database
    database.close()


@pytest.fixture(name="discord")
def discord_fixture(standin_url: str) -> Iterator[DiscordClient]:
    """A client of the stand-in, which starts each test with nothing recorded."""
    discord_standin_rest.reset()
    # The stand-in's default for opening DM channels (10 per 10 s) would make tests with many
    # members slow; the tests about limits set their own.
    discord_standin_rest.limiter.configure("POST", "/users/@me/channels", 1000, 1.0)
    yield DiscordClient(standin_url, "test-token", max_retry_wait=5.0)
    discord_standin_rest.reset()


@dataclass
class RecordingQueue:
    """A TaskQueue that keeps what was sent (for checking what delivery asks for next)."""

    sent: list[tuple[Task, int]]

    def send(self, task: Task, delay_seconds: int = 0) -> None:
        self.sent.append((task, delay_seconds))


def new_guild(db: Database) -> int:
    guild = 800_000_000_000_000_000 + next(_ids) * 1000
    db.run(lambda conn: ensure_guild(conn, guild, f"Guild {guild}"))
    return guild


def new_member(db: Database, guild: int) -> int:
    user = 700_000_000_000_000_000 + next(_ids)
    db.run(ledger.ensure_member, guild, user)
    return user


def queue_dm(db: Database, guild: int, user: int, content: str = "Hello", reason: str = "admin") -> int:
    dm_id = db.run(outbox.enqueue_dm, guild_id=guild, user_id=user, content=content, reason=reason)
    assert dm_id is not None
    return dm_id


def dm_row(db: Database, dm_id: int) -> dict:
    row = db.fetchone(
        "SELECT status, attempts, last_error, discord_message_id, next_attempt_at > now(), sent_at IS NOT NULL "
        "FROM direct_messages WHERE id = %s",
        (dm_id,),
    )
    keys = ("status", "attempts", "last_error", "message_id", "later", "sent")
    return dict(zip(keys, row, strict=True))


def make_due(db: Database) -> None:
    """Let time pass for every waiting DM (instead of sleeping through a backoff)."""
    db.run(
        lambda conn: conn.execute(
            "UPDATE direct_messages SET next_attempt_at = now() WHERE status IN ('queued', 'sending')"
        )
    )


def messages_to(user: int) -> list[dict]:
    """The DMs the stand-in got for `user`, each with "content" set to the text the outbox
    stored (a DM is a card, outbox.dm_body: Discord's own "content" of it is empty)."""
    return [{**m, "content": dm_text(m)} for m in discord_standin_rest.state.dms_to(str(user))]


def dm_text(message: dict) -> str:
    """The stored text of a DM card: the header's second text (beside the server's icon or not)."""
    assert message["flags"] & cards.IS_COMPONENTS_V2 and not message["content"], message
    items = message["components"][0]["components"]
    header = items[0]["components"] if items[0]["type"] == cards.SECTION else items
    return header[1]["content"]
