"""Page numbers from outside (a slash command option, a button's custom id, a query string of
the admin site): one parser that clamps them, so no page number reaches a query as an OFFSET
Postgres cannot hold (a page beyond bigint was a 500, or "something went wrong")."""

from __future__ import annotations

from .errors import InvalidInput

# The slash commands' `page` option allows up to this (commands/catalog.py); 100,000 pages of
# up to 200 rows keep every OFFSET far inside bigint.
MAX_PAGE = 100_000


def page_number(value: object, maximum: int = MAX_PAGE) -> int:
    """A page between 1 and `maximum`: nothing (None, "") is page 1, a number below 1 is page 1,
    a number above `maximum` (however many digits) is `maximum`. Only something that is not a
    whole number at all (text, a float, a bool) is refused, with a plain message."""
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput("The page must be a whole number.")
    if isinstance(value, int):
        return min(max(value, 1), maximum)
    text = value.strip()
    if not text:
        return 1
    negative = text[0] == "-"
    digits = text[1:] if text[0] in "+-" else text
    if not digits.isascii() or not digits.isdigit():
        raise InvalidInput("The page must be a whole number.")
    digits = digits.lstrip("0") or "0"
    if negative or digits == "0":
        return 1
    # Compare lengths first: int() of thousands of digits is refused by Python itself.
    if len(digits) > len(str(maximum)):
        return maximum
    return min(int(digits), maximum)
