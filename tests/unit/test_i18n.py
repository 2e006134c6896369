"""The gettext catalogs: complete in every language, compiled as committed, used per locale."""

from __future__ import annotations

import re
import string

import pytest

from pointsbot.commands import catalog
from pointsbot.platform import i18n
from pointsbot_local import catalogs

pytestmark = pytest.mark.unit

OTHER_LANGUAGES = [language for language in i18n.LANGUAGES if language != i18n.SOURCE_LANGUAGE]
# Discord's rule for the names of slash commands and their options (lower case where a script has it)
CHAT_INPUT_NAME = re.compile(r"^[-_\w]{1,32}$")


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _catalog(language: str):
    from babel.messages.pofile import read_po

    with i18n.catalog_path(language).open("rb") as source:
        return read_po(source, locale=language)


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_every_string_of_the_code_is_translated(language):
    # Given every msgid the code marks (extracted from the source, as scripts/i18n does)
    wanted = {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in catalogs.messages() if m.id}
    # When the language's catalog is read
    found = {(m.context, m.id if isinstance(m.id, str) else m.id[0]): m for m in _catalog(language) if m.id}
    # Then each has a translation, none fuzzy, with the same {placeholders}
    missing = sorted(wanted - {k for k, m in found.items() if m.string and not m.fuzzy
                               and (isinstance(m.string, str) or all(m.string))})  # fmt: skip
    assert missing == [], f"{language}: untranslated (run scripts/i18n extract, translate, compile)"
    for key in wanted:
        message = found[key]
        sources = [message.id] if isinstance(message.id, str) else list(message.id)
        targets = [message.string] if isinstance(message.string, str) else list(message.string)
        for target in targets:
            assert _fields(target) <= set().union(*map(_fields, sources)) | {"n"}, (key, target)
        if not isinstance(message.id, str) and "{n}" in message.id[1]:  # the count shown in every form
            assert all("{n}" in t for t in targets), key


def test_a_missing_translation_is_caught(monkeypatch):
    # The check above can fail: a msgid the code gains before the catalog has it
    template = catalogs.messages()
    template.add("A sentence nobody translated yet.")
    monkeypatch.setattr(catalogs, "messages", lambda: template)
    with pytest.raises(AssertionError, match="untranslated"):
        test_every_string_of_the_code_is_translated(OTHER_LANGUAGES[0])


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_the_shipped_mo_is_the_compiled_po(language):
    shipped = i18n.catalog_path(language).with_suffix(".mo").read_bytes()
    assert shipped == catalogs.compiled(language), "run scripts/i18n compile and commit the .mo"


def test_the_locale_chooses_the_catalog_and_english_is_the_fallback():
    assert i18n.language_of("de") == "de" and i18n.language_of("en-GB") == "en"
    assert i18n.language_of("pt-BR") == "en" and i18n.language_of(None) == "en"
    de, en = i18n.translator("de"), i18n.translator("en-US")
    assert de._("You have {amount}.", amount=de.points(1234)) == "Du hast 1.234 Punkte."
    assert en._("You have {amount}.", amount=en.points(1234)) == "You have 1,234 points."
    assert de.points(1) == "1 Punkt" and en.points(-1) == "-1 point"
    # A guild's own currency name is the guild's word in every language; its number is not
    assert de.points(2500, "rubies", "ruby") == "2.500 rubies"
    assert de.ngettext("{n} member", "{n} members", 1_000_000) == "1.000.000 Mitglieder"


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_command_names_and_descriptions_are_localized_within_discords_rules(language):
    definitions = catalog.definitions()
    locale = i18n.discord_locales(language)[0]

    tr = i18n.translator(language)

    def walk(item, chat_input):
        names = item.get("name_localizations") or {}
        # Every name has its translation (or is the same word in the language, as "start")
        assert locale in names or tr.pgettext(catalog.NAME_CONTEXT, item["name"]) == item["name"], item[
            "name"
        ]
        for name in names.values():
            assert 0 < len(name) <= 32
            if chat_input:
                assert CHAT_INPUT_NAME.match(name) and name == name.lower(), name
        for text in (item.get("description_localizations") or {}).values():
            assert 0 < len(text) <= 100
        if item.get("description"):
            assert locale in (item.get("description_localizations") or {}), item["description"]
        for option in item.get("options") or ():
            walk(option, chat_input)

    for command in definitions:
        walk(command, command["type"] == catalog.CHAT_INPUT)
    menus = [c for c in definitions if c["type"] != catalog.CHAT_INPUT]
    assert {c["name"] for c in menus} == {"Points profile", "Give points", "Award points",
                                          "Award points for this message"}  # fmt: skip
    assert all(c["description"] == "" and locale in c["name_localizations"] for c in menus)


def test_the_definitions_hash_follows_the_translations(monkeypatch):
    before = catalog.definitions_hash()
    monkeypatch.setattr(i18n.Translator, "pgettext", lambda self, context, message, **_: message + "x")
    assert catalog.definitions_hash() != before
