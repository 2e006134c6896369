"""The gettext catalogs' maintenance (development only; Babel is a dev dependency): extract the
English msgids from the domain package, merge them into each language's .po, compile the .mo.

`python -m pointsbot_local.catalogs extract|compile|check` (scripts/i18n). `messages()` is what
tests/unit/test_i18n.py compares the catalogs with.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract as extract_file
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from pointsbot.platform.i18n import DOMAIN, LANGUAGES, LOCALES_DIR, SOURCE_LANGUAGE, catalog_path

PACKAGE = LOCALES_DIR.parent
# Translatable calls: the Translator's methods, the catalog's markers (commands/catalog.py) and
# the domain's refusals, whose fixed sentences reach members as they are (dispatch translates
# them by msgid; a sentence with values in it stays English and is not extracted).
KEYWORDS = {
    "_": None,
    "N_": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "C_": ((1, "c"), 2),
}
REFUSALS = {
    "InvalidInput": None,
    "DomainError": None,
    "LimitExceeded": None,
    "InsufficientBalance": None,
    "TransfersDisabled": None,
    "NotFound": None,
    "AlreadyReverted": None,
    "DailyCapReached": None,
    "OutOfRange": None,
    "ReasonRequired": None,
    "PurchaseLimitReached": None,
    "SoldOut": None,
    "NotOnSale": None,
}
# Pieces of sentences joined with values at run time (f-strings), which no msgid can match.
FRAGMENTS = frozenset({"Choose one of the criteria: , .", "one-line name cannot hold. Remove it and try again.",
                       "Remove it and try again.", "(/redemptions refund or the admin site's Redemptions).",
                       "The state must be one of , ."})  # fmt: skip
# Folders whose sentences reach members or admins in Discord (the admin site is English only).
SOURCES = ("commands", "community", "ledger", "delivery", "platform", "discord")
# Where the refusals a slash command can meet are raised: the ledger's rules, the points and
# email flows, paging and stored text. (The admin site's own refusals stay English.)
REFUSAL_SOURCES = (
    "ledger",
    "platform",
    "community/points.py",
    "community/emails.py",
    "community/store.py",
    "community/seasons.py",
)


def messages() -> Catalog:
    """Every msgid of the code, as a template catalog."""
    template = Catalog(project="pointsbot", domain=DOMAIN)
    passes = [(folder, KEYWORDS) for folder in SOURCES] + [(source, REFUSALS) for source in REFUSAL_SOURCES]
    for source, keywords in passes:
        for filename, lineno, message, comments, context in _extract(PACKAGE / source, keywords):
            if not message or message in FRAGMENTS:
                continue
            where = f"{source}/{filename}" if filename else source
            template.add(message, locations=[(where, lineno)], auto_comments=comments, context=context)
    return template


def _extract(path: Path, keywords: dict) -> list[tuple]:
    if path.is_dir():
        return list(extract_from_dir(path, method_map=[("**.py", "python")], keywords=keywords,
                                     comment_tags=("TRANSLATORS:",)))  # fmt: skip
    with path.open("rb") as source:
        return [("", lineno, message, comments, context) for lineno, message, comments, context in
                extract_file("python", source, keywords=keywords, comment_tags=("TRANSLATORS:",))]  # fmt: skip


def extract() -> None:
    template = messages()
    with (LOCALES_DIR / f"{DOMAIN}.pot").open("wb") as out:
        write_po(out, template, omit_header=False, sort_output=True, width=100)
    for language in LANGUAGES:
        if language == SOURCE_LANGUAGE:
            continue
        path = catalog_path(language)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open("rb") as source:
                catalog = read_po(source, locale=language)
        else:
            catalog = Catalog(locale=language, domain=DOMAIN, project="pointsbot")
        catalog.update(template, no_fuzzy_matching=True)
        with path.open("wb") as out:
            write_po(out, catalog, sort_output=True, width=100, ignore_obsolete=True)


def compiled(language: str) -> bytes:
    with catalog_path(language).open("rb") as source:
        catalog = read_po(source, locale=language)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def compile_all() -> None:
    for language in LANGUAGES:
        if language != SOURCE_LANGUAGE:
            catalog_path(language).with_suffix(".mo").write_bytes(compiled(language))


def main(argv: list[str]) -> int:
    if argv[:1] == ["extract"]:
        extract()
    elif argv[:1] == ["compile"]:
        compile_all()
    else:
        print("usage: scripts/i18n extract|compile", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
