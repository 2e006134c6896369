"""Text Postgres can store, checked in one place for every parameter the bot sends.

Postgres text cannot hold NUL (U+0000), and a str with an unpaired surrogate (JSON can carry
one as an escape) cannot be encoded as UTF-8. Either, in an admin form field, a CSV row or a
slash command option, used to end in a 500 or "something went wrong". Every connection the
bot opens (`db.connection_kwargs`) makes its cursors `CheckedCursor`, which looks at every
parameter (str, JSON, arrays) before psycopg sends it and refuses such text with one plain
message: an `InvalidInput`, so the transaction rolls back and whoever typed it is told,
whatever field it came from. Domain code may call `check_text` first to name the field.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from psycopg.types.json import Json, Jsonb

from .errors import InvalidInput


def check_text(value: str, what: str = "The text") -> str:
    """`value` if Postgres can store it; InvalidInput naming `what` otherwise."""
    if "\x00" in value:
        raise InvalidInput(
            f"{what} contains a NUL character (U+0000), which cannot be stored. Remove it and try again."
        )
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(
                f"{what} contains a broken character (an unpaired surrogate), which cannot be stored. "
                "Remove it and try again."
            ) from None
    return value


# Format characters a one-line name may keep: the zero-width joiner and non-joiner, which emoji
# sequences (a family, a flag with a rainbow) and scripts such as Persian need to be written.
_JOINERS = frozenset("\u200c\u200d")


def check_one_line(value: str, what: str = "The name") -> str:
    """`value` if it can stand on one line wherever it is shown (a bot message, a page, a log);
    InvalidInput naming `what` otherwise. The one check for names an admin types: currency
    names, achievement names, display names. Refused: control characters (Unicode category Cc:
    ESC, CR, LF, tab, ...), line and paragraph separators (Zl, Zp) and invisible format
    characters (Cf: bidi overrides such as U+202E, zero-width spaces, BOM) but the joiners, so a
    name cannot break a message's lines, colour a terminal, or show itself reversed."""
    check_text(value, what)
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") and char not in _JOINERS:
            raise InvalidInput(
                f"{what} contains an invisible or control character (U+{ord(char):04X}), which a "
                "one-line name cannot hold. Remove it and try again."
            )
    return value


def _check_value(value: Any) -> None:
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, Json | Jsonb):
        _check_value(value.obj)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_value(key)
            _check_value(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_value(item)


def check_params(params: Mapping[str, Any] | Iterable[Any] | None) -> None:
    """Refuse the statement's parameters if any text among them cannot be stored."""
    if params is None:
        return
    for value in params.values() if isinstance(params, Mapping) else params:
        # ints, dates and None (most parameters) fall through two isinstance checks
        if value is not None and not isinstance(value, int):
            _check_value(value)


class CheckedCursor(psycopg.Cursor):
    """psycopg's cursor (its C adapters unchanged), checking parameters before sending them."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> CheckedCursor:
        check_params(params)
        return super().execute(query, params, **kwargs)

    def executemany(self, query: Any, params_seq: Iterable[Any], **kwargs: Any) -> None:
        params_seq = list(params_seq)
        for params in params_seq:
            check_params(params)
        return super().executemany(query, params_seq, **kwargs)
