"""Languages: every member-facing sentence goes through a gettext catalog, chosen per answer.

The catalogs are `pointsbot/locales/<lang>/LC_MESSAGES/pointsbot.po`, compiled to `.mo` beside
them by `scripts/compile-catalogs` (Babel, a dev tool) and committed, so `sam build` ships them
in the layer as plain files and nothing compiles at run time; the standard library's `gettext`
reads them, lazily, once per language and container. English is the source language (its
strings are the msgids), so a missing catalog or msgid reads as English, never as an error.

A `Translator` formats too: `{name}` placeholders are filled after translation, numbers get the
language's digit grouping ("1,234" in English, "1.234" in German; the separator is itself a
catalog entry, so translators own it), and amounts of the guild's currency are said in the
language when the guild kept the default name ("5 Punkte"), as the guild wrote it otherwise.
"""

from __future__ import annotations

import gettext as _gettext
from functools import cache
from pathlib import Path
from typing import Any

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "pointsbot"
SOURCE_LANGUAGE = "en"
# The languages with a complete catalog (tests/unit/test_i18n.py fails when one is not).
LANGUAGES = ("en", "de")
DEFAULT_CURRENCY = "points"


def N_(text: str) -> str:
    """Marks a sentence for the catalogs where it is defined; translated where it is used."""
    return text


def C_(context: str, name: str) -> str:
    """Marks a command or option name for the catalogs (msgctxt "command name"); returns it."""
    return name


def language_of(locale: str | None) -> str:
    """The catalog for a Discord locale: "de" -> de, "en-GB" -> en, anything else -> English."""
    if not locale:
        return SOURCE_LANGUAGE
    lang = locale.split("-", 1)[0].lower()
    return lang if lang in LANGUAGES else SOURCE_LANGUAGE


class Translator:
    """One language's sentences and numbers; get one with `translator(locale)`."""

    def __init__(self, language: str, catalog: _gettext.NullTranslations) -> None:
        self.language = language
        self._catalog = catalog
        self._group = catalog.pgettext("digit grouping", ",")

    def _(self, message: str, /, **values: Any) -> str:
        """The sentence in this language, its {placeholders} filled in."""
        text = self._catalog.gettext(message)
        return text.format(**values) if values else text

    def ngettext(self, singular: str, plural: str, n: int, /, **values: Any) -> str:
        """The form for `n` in this language (`n` is also offered to the text as {n})."""
        text = self._catalog.ngettext(singular, plural, abs(n))  # "-1 point", as wording.py says it
        return text.format(**{"n": self.number(n), **values})

    def pgettext(self, context: str, message: str, /, **values: Any) -> str:
        text = self._catalog.pgettext(context, message)
        return text.format(**values) if values else text

    def number(self, n: int) -> str:
        """An integer with this language's digit grouping."""
        grouped = f"{n:,}"
        return grouped if self._group == "," else grouped.replace(",", self._group)

    def signed(self, n: int) -> str:
        return ("+" if n > 0 else "") + self.number(n)

    def points(self, n: int, currency_name: str = DEFAULT_CURRENCY, currency_one: str = "") -> str:
        """An amount of the guild's currency: "1 point" / "5 Punkte", or "5 rubies" as the guild
        named it (a name of the guild's own is not translated)."""
        if currency_name == DEFAULT_CURRENCY and currency_one in ("", "point"):
            return self.ngettext("{n} point", "{n} points", n)
        from .wording import currency_singular

        one = currency_one or currency_singular(currency_name)
        return f"{self.number(n)} {one if abs(n) == 1 else currency_name}"


class Amount:
    """An amount of a guild's currency as a refusal's value: English where the refusal is
    printed, said in the answer's language where dispatch translates the refusal."""

    def __init__(self, n: int, currency_name: str = DEFAULT_CURRENCY, currency_one: str = "") -> None:
        self.n, self.currency_name, self.currency_one = n, currency_name, currency_one

    def localized(self, tr: Translator) -> str:
        return tr.points(self.n, self.currency_name, self.currency_one)

    def __str__(self) -> str:
        return self.localized(translator())


def localize(values: dict[str, Any], tr: Translator) -> dict[str, Any]:
    """A refusal's values in `tr`'s language (amounts said, numbers grouped)."""
    said = {}
    for name, value in values.items():
        if isinstance(value, Amount):
            said[name] = value.localized(tr)
        elif isinstance(value, int) and not isinstance(value, bool):
            said[name] = tr.number(value)
        else:
            said[name] = value
    return said


@cache
def _translator(language: str) -> Translator:
    catalog: _gettext.NullTranslations
    if language == SOURCE_LANGUAGE:
        catalog = _gettext.NullTranslations()
    else:
        catalog = _gettext.translation(DOMAIN, LOCALES_DIR, languages=[language], fallback=True)
    return Translator(language, catalog)


def translator(locale: str | None = None) -> Translator:
    """The Translator for a Discord locale (English when the language has no catalog)."""
    return _translator(language_of(locale))


def catalog_path(language: str) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def discord_locales(language: str) -> tuple[str, ...]:
    """Discord's locale codes a catalog serves (for name_localizations)."""
    return {"de": ("de",), "es": ("es-ES", "es-419"), "fr": ("fr",)}.get(language, (language,))
