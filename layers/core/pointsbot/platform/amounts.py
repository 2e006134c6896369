"""The range every balance and every amount stays in, and the one message for leaving it.

Balances live in [-MAX_BALANCE, MAX_BALANCE] and no single change, daily cap or bonus is
larger than MAX_BALANCE. So a balance plus any change stays far inside Postgres' bigint
(2^63 - 1, about 9.2e18) and inside the integers a JavaScript number holds exactly (2^53 - 1,
about 9.0e15), and the counters that only grow (earned, spent, credited today) are kept below
COUNTER_CEILING by the ledger's statement. sql/032_balance_range.sql holds the same bound as
CHECK constraints, so no path can write past it.
"""

from __future__ import annotations

from .errors import OutOfRange

MAX_BALANCE = 1_000_000_000_000
# Where the ever-growing counters stop: the largest integer JSON consumers read exactly, far
# above any threshold or cap (those are at most MAX_BALANCE), so stopping there changes no rule.
COUNTER_CEILING = 2**53 - 1

OUT_OF_RANGE = (
    f"That is out of range: balances and amounts stay between -{MAX_BALANCE:,} and {MAX_BALANCE:,}."
)


def check_in_range(value: int) -> int:
    """`value` if it is a possible balance or amount; OutOfRange (the plain message) if not."""
    if not -MAX_BALANCE <= value <= MAX_BALANCE:
        raise OutOfRange(OUT_OF_RANGE)
    return value
