"""Slash commands and buttons with input Discord's own checks would stop but a signed payload
can still carry: pages far beyond bigint, text Postgres cannot store."""

from __future__ import annotations

import pytest
from _command_helpers import GUILD_A, admin, click, new_member, run, seed

from pointsbot.community import emails

pytestmark = pytest.mark.integration

HUGE = [4611686018427387904, 2**63, 2**64 + 7, 10**40, -(2**63), 0]


@pytest.fixture(scope="module")
def history_member(db):
    from pointsbot.platform.config import load_settings

    member = new_member()
    for _ in range(3):
        seed(db, load_settings({}), GUILD_A, member, 5)
    db.run(emails.submit, int(GUILD_A), int(member), "pages@example.com")
    return member


@pytest.mark.parametrize("page", HUGE, ids=str)
def test_history_leaderboard_and_pending_emails_clamp_the_page(db, settings, history_member, page):
    # When /history, /leaderboard and /emails pending are asked for a page beyond bigint (or below 1)
    history = run(db, settings, "history", {"page": page}, user_id=history_member)
    board = run(db, settings, "leaderboard", {"page": page}, user_id=history_member)
    pending = admin(db, settings, "emails pending", {"page": page})
    # Then each answers (the last page, or that there are fewer pages), never an error
    for outcome in (history, board, pending):
        assert outcome.status == "ok", outcome.reply.content
    assert "(page 1 of 1)" in history.reply.content or "There is only 1 page" in history.reply.content
    assert "**Leaderboard** (page" in board.reply.content
    assert "pages@example.com" in pending.reply.content or "only" in pending.reply.content


@pytest.mark.parametrize(
    "page", ["4611686018427387904", "18446744073709551623", "9" * 90, "0", "00000000001"]
)
def test_a_leaderboard_button_beyond_bigint_shows_the_last_page(db, settings, history_member, page):
    outcome = click(db, settings, f"leaderboard:{page}:next", user_id=history_member)
    assert outcome.status == "ok" and outcome.reply.update
    assert outcome.reply.content.startswith("**Leaderboard** (page ")


def test_a_page_that_is_not_a_whole_number_is_a_plain_refusal(db, settings, history_member):
    outcome = run(db, settings, "history", {"page": 2.5}, user_id=history_member)
    assert outcome.status == "refused" and outcome.reply.content == "The page must be a whole number."
