"""Discord permission bit sets: the bits the bot checks, and the one strict parser of the
decimal strings Discord sends them as (interaction members, OAuth2 guild lists)."""

from __future__ import annotations

ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
MANAGE_ROLES = 1 << 28
# Discord's bit sets fit in 64 bits; anything wider is not one of them.
_MAX_BITS = 2**64 - 1


def parse_permissions(value: object) -> int:
    """The bit set in a string of ASCII digits; anything else (a sign, a number that is not a
    string, junk, a value wider than 64 bits) is no rights at all (0), never a negative int
    whose bits would all be set."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 20:
        return 0
    bits = int(value)
    return bits if bits <= _MAX_BITS else 0
