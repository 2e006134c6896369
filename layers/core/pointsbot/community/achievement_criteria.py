"""What an achievement can ask of a member (its criterion), and the SQL that judges it.

One qualifying expression serves the check on change (one member) and the sweep (a batch of
members, every criterion), so the two can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Criterion:
    kind: str
    label: str  # for the admin site's form, with {n} and {d}
    threshold_label: str | None  # None: the criterion takes no number N
    uses_window: bool  # takes a number of days D
    on_change: bool  # a balance change can make it true (checked right after the change)


CRITERIA: dict[str, Criterion] = {
    c.kind: c
    for c in (
        Criterion("balance_at_least", "Balance of at least {n}", "balance", False, True),
        Criterion("earned_at_least", "Earned at least {n} in total", "points earned", False, True),
        Criterion("transactions_at_least", "At least {n} transactions", "transactions", False, True),
        Criterion("earned_within_days", "Earned at least {n} within {d} days", "points earned", True, True),
        Criterion("top_k", "In the top {n} of the leaderboard", "places", False, True),
        Criterion("email_approved", "Email address approved", None, False, False),
        Criterion("member_days", "Member for at least {d} days", None, True, False),
    )
}
# What a change of a balance can make true; the rest only the sweep checks (time passes,
# other members' balances move, an email is approved).
CHANGE_KINDS: tuple[str, ...] = tuple(k for k, c in CRITERIA.items() if c.on_change)
ALL_KINDS: tuple[str, ...] = tuple(CRITERIA)


# -- qualifying ----------------------------------------------------------------------------
# Whether member m (with points p and user_stats s, either may be missing) meets achievement a,
# with {now} as the present (now() for a change; the sweep's start for the sweep).
# `a.cutoff` is the balance of the K-th place for top_k (NULL: fewer than K members), so
# "rank <= K" (competition rank: 1 + how many have strictly more) is "balance >= cutoff".
# The arms are ANDed with the criterion first so only the matching arm's subquery runs.
# `balance`, `earned`, `count`, `email_approved` and `earned_within` say where the member's
# balance, counters, approved email and earnings of the window are read (the sweep reads them
# once per member, or per member and window, over its batch's keys).
_EMAIL_APPROVED = """EXISTS (
        SELECT 1 FROM email_submissions e
        WHERE e.guild_id = m.guild_id AND e.user_id = m.user_id AND e.status = 'approved')"""
# What an entry t adds to "earned", as user_stats counts it: credits, less reverted credits.
WINDOW_EARNED = "CASE WHEN t.kind = 'revert' THEN least(t.amount, 0) ELSE greatest(t.amount, 0) END"


def _earned_within(now: str) -> str:
    return f"""(
        SELECT coalesce(sum({WINDOW_EARNED}), 0)
        FROM transactions t
        WHERE t.guild_id = m.guild_id AND t.user_id = m.user_id
          AND t.created_at >= {now} - make_interval(days => a.window_days))"""


def qualifies(
    now: str,
    balance: str = "p.balance",
    earned: str = "s.total_earned",
    count: str = "s.transaction_count",
    email_approved: str = _EMAIL_APPROVED,
    earned_within: str | None = None,
) -> str:
    return f"""
(
    (a.criterion = 'balance_at_least' AND coalesce({balance}, 0) >= a.threshold)
 OR (a.criterion = 'earned_at_least' AND coalesce({earned}, 0) >= a.threshold)
 OR (a.criterion = 'transactions_at_least' AND coalesce({count}, 0) >= a.threshold)
 OR (a.criterion = 'top_k' AND coalesce({balance}, 0) > 0
     AND (a.cutoff IS NULL OR {balance} >= a.cutoff))
 OR (a.criterion = 'member_days' AND m.joined_at <= {now} - make_interval(days => a.window_days))
 OR (a.criterion = 'email_approved' AND {email_approved})
 OR (a.criterion = 'earned_within_days' AND {earned_within or _earned_within(now)} >= a.threshold)
)
"""


# The balance of the K-th place of top-K achievement `a` (NULL: fewer than K members).
CUTOFF = """(
    SELECT p2.balance FROM points p2 WHERE p2.guild_id = a.guild_id
    ORDER BY p2.balance DESC, p2.user_id OFFSET greatest(a.threshold, 1) - 1 LIMIT 1)"""

ACTIVE = f"""
SELECT a.id, a.guild_id, a.name, a.bonus_points, a.criterion, a.threshold, a.window_days,
       CASE WHEN a.criterion = 'top_k' THEN {CUTOFF} END AS cutoff
FROM achievements a
WHERE a.active AND a.criterion = ANY(%(kinds)s)
"""
