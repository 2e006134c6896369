"""Leaderboard pages and ranks against a model: competition ranks, ties by user id."""

from __future__ import annotations

import itertools

import pytest
from _ledger_checks import set_balance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pointsbot import ledger
from pointsbot.ledger import guilds

pytestmark = pytest.mark.integration

_guilds = itertools.count(940_000_000_000_000_001)


def _expected_ranks(balances: dict[int, int]) -> list[tuple[int, int, int]]:
    ordered = sorted(balances.items(), key=lambda item: (-item[1], item[0]))
    return [(1 + sum(1 for b in balances.values() if b > bal), user, bal) for user, bal in ordered]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    balances=st.lists(st.sampled_from([0, 5, 5, 10, 40, 1000]), min_size=0, max_size=12),
    page_size=st.integers(min_value=1, max_value=5),
)
def test_pages_and_ranks_match_the_model(db, settings, balances, page_size):
    guild = next(_guilds)
    members = {guild + 10 * (i + 1): bal for i, bal in enumerate(balances)}
    db.run(guilds.ensure_guild, guild)
    for user, bal in members.items():
        db.run(ledger.ensure_member, guild, user)  # a set to 0 alone changes nothing, so makes no member
        set_balance(db, guild, user, bal, settings)
    expected = _expected_ranks(members)

    pages = -(-len(expected) // page_size) or 1
    listed = []
    for page in range(1, pages + 2):  # one past the end is an empty page
        board = db.run(ledger.leaderboard_page, guild, page, page_size)
        assert board.total_members == len(members) and board.pages == pages
        listed.extend((row.rank, row.user_id, row.balance) for row in board.rows)
    assert listed == expected

    for rank, user, bal in expected:
        info = db.run(ledger.rank_of, guild, user)
        assert (info.rank, info.balance, info.total_members) == (rank, bal, len(members))
    # someone never seen ranks as a zero balance
    stranger = db.run(ledger.rank_of, guild, guild + 999_999)
    assert stranger.balance == 0 and stranger.total_members == len(members)
    assert stranger.rank == 1 + sum(1 for b in members.values() if b > 0)
