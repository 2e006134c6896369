"""Approving an email: the bonus, the DM and the "email approved" achievement, in one go."""

from __future__ import annotations

import pytest

from pointsbot import ledger
from pointsbot.community import achievements, emails
from pointsbot.ledger.guilds import ensure_guild

pytestmark = pytest.mark.integration
GUILD = 900_000_000_000_000_888
MEMBER = 4_242


def test_approval_pays_bonus_and_achievement_at_once_with_one_dm_about_the_email(db, settings, sql):
    # Given a guild with an "email approved" achievement worth 7 and a member's pending submission
    def given(conn):
        ensure_guild(conn, GUILD)
        achievements.create_definition(
            conn,
            GUILD,
            name="Verified",
            criterion="email_approved",
            bonus_points=7,
            description="Email approved",
        )
        return emails.submit(conn, GUILD, MEMBER, "member@example.org")

    submission = db.run(given)

    # When an admin approves it with a bonus of 20
    db.run(
        emails.approve, guild_id=GUILD, submission_id=submission.id, reviewer_id=1, note="welcome",
        bonus_points=20, idempotency_key="approve-1", source="admin_site", settings=settings,
    )  # fmt: skip

    # Then the bonus and the achievement are both paid now, not at the next sweep
    assert db.run(ledger.balance, GUILD, MEMBER) == 27
    assert [a.name for a in db.run(achievements.earned_by, GUILD, MEMBER)] == ["Verified"]
    # and the email DM is the only DM about the bonus (the bonus itself is silent)
    dms = sql(
        "SELECT reason, content FROM direct_messages WHERE guild_id = %s AND user_id = %s ORDER BY id",
        (GUILD, MEMBER),
    )
    email_dms = [content for reason, content in dms if reason == "email"]
    points_dms = [content for reason, content in dms if reason == "points"]
    assert len(email_dms) == 1 and "20" in email_dms[0]
    assert points_dms == []
