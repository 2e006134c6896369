"""Slash commands and buttons with input Discord's own checks would stop but a signed payload
can still carry: pages far beyond bigint, text Postgres cannot store."""

from __future__ import annotations

import pytest
from _command_helpers import GUILD_A, admin, click, counts, new_member, run, seed, use_queue

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
    assert "Page 1 of 1" in history.reply.content or "There is only 1 page" in history.reply.content
    assert "### 🏆 Leaderboard\nPage " in board.reply.content
    assert "pages@example.com" in pending.reply.content or "only" in pending.reply.content


@pytest.mark.parametrize(
    # 80 nines: custom_id, at most 100 characters in Discord, holds no longer page number
    "page",
    ["4611686018427387904", "18446744073709551623", "9" * 80, "0", "00000000001"],
)
def test_a_leaderboard_button_beyond_bigint_shows_the_last_page(db, settings, history_member, page):
    outcome = click(db, settings, f"leaderboard:{page}:next", user_id=history_member)
    assert outcome.status == "ok" and outcome.reply.update
    assert outcome.reply.content.startswith("### 🏆 Leaderboard\nPage ")


def test_a_page_that_is_not_a_whole_number_is_a_plain_refusal(db, settings, history_member):
    outcome = run(db, settings, "history", {"page": 2.5}, user_id=history_member)
    assert outcome.status == "refused" and outcome.reply.content == "The page must be a whole number."


# -- 7. text Postgres cannot store -----------------------------------------------------------
NUL_TEXT = ["thanks\x00", "\x00", "a\x00b" * 3, "broken \ud800 surrogate"]


@pytest.fixture
def task_queue():
    yield from use_queue()


@pytest.mark.parametrize("text", NUL_TEXT, ids=repr)
def test_every_text_option_with_a_nul_is_a_plain_refusal_that_changes_nothing(
    db, settings, sql, task_queue, text
):
    # Given a member with points and a pending email
    member = new_member()
    seed(db, settings, GUILD_A, member, 100)
    run(db, settings, "email submit", {"address": f"{member}@example.com"}, user_id=member)
    before = counts(sql)
    # When each command with a free-text option gets text Postgres cannot store
    outcomes = [
        admin(db, settings, "points add", {"member": member, "amount": 5, "reason": text}),
        admin(db, settings, "points remove", {"member": member, "amount": 5, "reason": text}),
        admin(db, settings, "points set", {"member": member, "amount": 5, "reason": text}),
        run(db, settings, "give", {"member": new_member(), "amount": 5, "reason": text}, user_id=member),
        run(db, settings, "email submit", {"address": f"x{text}@example.com"}, user_id=new_member()),
        admin(db, settings, "emails approve", {"member": member, "note": text}),
        admin(db, settings, "emails reject", {"member": member, "note": text}),
    ]
    # Then each is a private, plain refusal naming the problem, never "something went wrong"
    for outcome in outcomes:
        assert outcome.status == "refused" and outcome.reply.ephemeral, outcome
        assert "cannot be stored. Remove it and try again." in outcome.reply.content or (
            "email address" in outcome.reply.content.lower()
        ), outcome.reply.content
    # And nothing was written
    assert counts(sql) == before
