"""Helpers for the slash command tests: run a command as Discord would send it, count rows."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from pointsbot import commands
from pointsbot.commands.dispatch import Outcome
from pointsbot.community import points as ledger
from pointsbot.delivery import tasks
from pointsbot.delivery.tasks import Task
from pointsbot.discord import interactions
from pointsbot.platform.db import Database
from pointsbot_local.simulate import command_payload, component_payload, snowflake

GUILD_A = "910000000000000001"
GUILD_B = "910000000000000002"
ADMIN = "810000000000000001"
_members = itertools.count(820000000000000001)

# Every table a command can write to: a refusal must leave all of them as they were.
TABLES = ("guilds", "members", "points", "user_stats", "operations", "transactions", "interaction_replies",
          "admin_audit", "email_submissions", "direct_messages", "member_achievements")  # fmt: skip


class RecordingQueue:
    """The task queue interface, keeping what was sent (DM delivery requests, deferrals)."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[Task] = []
        self.fail = fail

    def send(self, task: Task, delay_seconds: int = 0) -> None:
        if self.fail:
            raise ConnectionError("the queue is unreachable")
        self.sent.append(task)


def use_queue(fail: bool = False) -> Iterator[RecordingQueue]:
    """For a fixture: install a recording queue for the test, then remove it."""
    queue = RecordingQueue(fail)
    tasks.set_task_queue(queue)
    yield queue
    tasks.set_task_queue(None)


def new_member() -> str:
    return str(next(_members))


def payload(path: str, options: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("guild_id", GUILD_A)
    return command_payload(path, options, **kwargs)


def run(
    db: Database, settings: Any, path: str, options: dict[str, Any] | None = None, **kwargs: Any
) -> Outcome:
    """Send one command (a new interaction each call unless interaction_id is given)."""
    return commands.execute(db, interactions.parse(payload(path, options, **kwargs)), settings)


def run_payload(db: Database, settings: Any, raw: dict[str, Any]) -> Outcome:
    return commands.execute(db, interactions.parse(raw), settings)


def click(db: Database, settings: Any, custom_id: str, **kwargs: Any) -> Outcome:
    kwargs.setdefault("guild_id", GUILD_A)
    return commands.execute(db, interactions.parse(component_payload(custom_id, **kwargs)), settings)


def admin(
    db: Database, settings: Any, path: str, options: dict[str, Any] | None = None, **kwargs: Any
) -> Outcome:
    return run(db, settings, path, options, user_id=ADMIN, admin=True, **kwargs)


MEDALS = {1: "🥇", 2: "🥈", 3: "🥉"}


def board_rows(reply: Any) -> list[str]:
    """The member lines of a leaderboard card, in order."""
    return [line for line in reply.content.splitlines() if " <@" in line and line.split(" ", 1)[0] in
            (*MEDALS.values(), *(w for w in [line.split(" ", 1)[0]] if w.startswith("`#")))]  # fmt: skip


def row_line(rank: int, member: str, amount: int, asker: str | None = None, unit: str = "points") -> str:
    """A leaderboard card's line for a member, as the card writes it."""
    line = f"{MEDALS.get(rank) or f'`#{rank:,}`'} <@{member}> · **{amount:,} {unit}**"
    return line + " ◀ you" if member == asker else line


def board_page(reply: Any) -> str:
    """ "Page 2 of 3" from a leaderboard card."""
    line = next(line for line in reply.content.splitlines() if line.startswith("Page "))
    return line.split(" · ", 1)[0]


def nav(reply: Any) -> dict[str, dict[str, Any]]:
    """A card's buttons by the direction their custom_id names: first, prev, next, last, me."""
    buttons = [b for row in reply.components if row["type"] == 1 for b in row["components"]]
    return {b["custom_id"].split(":")[2]: b for b in buttons}


def counts(sql: Any) -> dict[str, int]:
    return {table: sql(f"SELECT count(*) FROM {table}")[0][0] for table in TABLES}


def seed(db: Database, settings: Any, guild: str, user: str, amount: int) -> None:
    """Give a member a balance through the ledger (an admin award)."""
    db.run(
        ledger.award, guild_id=int(guild), user_id=int(user), amount=amount, reason="seed", actor_id=1,
        source="system", idempotency_key=f"seed-{snowflake()}", settings=settings,
    )  # fmt: skip


__all__ = ["ADMIN", "GUILD_A", "GUILD_B", "RecordingQueue", "admin", "board_page", "board_rows", "click", "counts",
           "nav", "new_member", "payload", "row_line", "run", "run_payload", "seed", "use_queue"]  # fmt: skip
