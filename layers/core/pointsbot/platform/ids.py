"""Discord snowflakes: BIGINT in Postgres, strings everywhere outside it.

This is the one place that turns outside text into an id and an id into text.
"""

from __future__ import annotations

from .errors import InvalidInput

MAX_SNOWFLAKE = 2**63 - 1


def parse_snowflake(value: object, what: str = "id") -> int:
    """Accept a Discord id as a string of digits (or an int); reject floats, signs, junk."""
    if isinstance(value, bool | float):
        raise InvalidInput(f"{what} must be a Discord id (digits), not {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("<@") and text.endswith(">"):  # a pasted mention: <@123> or <@!123>
            text = text[2:-1].lstrip("!&")
        if not text.isascii() or not text.isdigit() or len(text) > 19:
            raise InvalidInput(f"{what} must be a Discord id (digits), not {value!r}")
        number = int(text)
    else:
        raise InvalidInput(f"{what} must be a Discord id (digits), not {value!r}")
    if not 0 < number <= MAX_SNOWFLAKE:
        raise InvalidInput(f"{what} is out of range for a Discord id")
    return number


def format_snowflake(value: int | None) -> str | None:
    return None if value is None else str(int(value))
