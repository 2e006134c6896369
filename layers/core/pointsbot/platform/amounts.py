"""The range every balance and every amount stays in, and the one message for leaving it.

Balances live in [-MAX_BALANCE, MAX_BALANCE] and no single change, daily cap or bonus is
larger than MAX_BALANCE. So a balance plus any change stays far inside Postgres' bigint
(2^63 - 1, about 9.2e18) and inside the integers a JavaScript number holds exactly (2^53 - 1,
about 9.0e15), and the counters that only grow (earned, spent, credited today) are kept below
COUNTER_CEILING by the ledger's statement. sql/032_balance_range.sql holds the same bound as
CHECK constraints, so no path can write past it.
"""

from __future__ import annotations

import re

from .errors import InvalidInput, OutOfRange

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


# A sign and the digits 0-9, nothing else: Python's int() also reads other scripts' digits
# (Arabic-Indic U+0661 U+0660, full-width U+FF11 U+FF10) and would take them silently for 10.
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


def parse_whole_number(text: str, what: str) -> int:
    """A whole number typed by a person (a form field, a query, a CSV cell): a sign and the
    digits 0-9, with "," or "_" as thousands separators. Anything else, digits of other
    scripts included, is InvalidInput with one plain message naming `what`. The range is the
    caller's to check (`check_in_range` for amounts)."""
    clean = text.strip().replace(",", "").replace("_", "")
    if not _WHOLE_NUMBER.fullmatch(clean):
        raise InvalidInput(f"{what} must be a whole number, written with the digits 0-9.")
    try:
        return int(clean)
    except ValueError:  # thousands of digits: past what int() reads, and past every range
        raise OutOfRange(OUT_OF_RANGE) from None
