"""Counts in words people read: "1 point", "2 points", "There is only 1 page".

English only for now, and kept to two small functions on purpose: `ngettext` has gettext's
signature and meaning, so when translations arrive it is swapped for gettext's own and the
callers stay as they are.
"""

from __future__ import annotations


def ngettext(singular: str, plural: str, count: int) -> str:
    """The form of a phrase for `count` (English: exactly one, or minus one, is singular)."""
    return singular if abs(count) == 1 else plural


def count(number: int, singular: str, plural: str | None = None) -> str:
    """`number` with its noun: "1 page", "1,000 pages", "2 entries" (plural given when not +s)."""
    return f"{number:,} {ngettext(singular, plural or singular + 's', number)}"


def currency_singular(name: str) -> str:
    """What one of a currency is called when the guild has not said: the name less a plural
    ending ("points" -> "point", "rubies" -> "ruby"); names that are not plurals, such as
    "XP", "gold" or "karma", stay as they are. A guild whose currency breaks the rule sets its
    singular on the Settings page."""
    lower = name.lower()
    if lower.endswith("ies") and len(name) > 3:
        return name[:-3] + ("Y" if name[-1].isupper() else "y")
    if lower.endswith("s") and not lower.endswith(("ss", "us", "is", "os")) and len(name) > 1:
        return name[:-1]
    return name


def points(number: int, currency_name: str, singular: str = "") -> str:
    """An amount of the guild's currency: "1 point", "-1 point", "1,000 points", "5 XP"."""
    one = singular or currency_singular(currency_name)
    return f"{number:,} {ngettext(one, currency_name, number)}"
