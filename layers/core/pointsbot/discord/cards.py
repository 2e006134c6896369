"""Answers as Discord Components V2 cards: the one builder every command, DM and stand-in uses.

A card is one Container (the guild's accent colour) holding a header Section (title and lines
beside a Thumbnail of the member's avatar), TextDisplays, Separators and action rows of buttons.
`Card.build()` returns plain dicts in the shape of Discord's request schemas (checked against
../shared/discord/openapi.json in tests/contract) and a plain-text rendering of the same card
(logs, tests, the text of a stored answer). Discord's own limits are kept here, once: at most
40 components in a message (nested ones count), 4000 characters of text over all TextDisplays,
custom ids of at most 100 characters, labels of at most 80.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

IS_COMPONENTS_V2 = 1 << 15  # message flag: the message is made of components only (no content)

ACTION_ROW, BUTTON, TEXT_INPUT, SECTION, TEXT_DISPLAY, THUMBNAIL, SEPARATOR, CONTAINER, LABEL = (
    1, 2, 4, 9, 10, 11, 14, 17, 18,
)  # fmt: skip
CHECKBOX = 23
PRIMARY, SECONDARY, SUCCESS, DANGER, LINK = 1, 2, 3, 4, 5
SHORT, PARAGRAPH = 1, 2  # text input styles

MAX_COMPONENTS = 40
MAX_TEXT = 4000
MAX_CUSTOM_ID = 100
MAX_LABEL = 80
MAX_BUTTONS_PER_ROW = 5
MAX_SECTION_TEXTS = 3
DEFAULT_ACCENT = 0x5865F2  # Discord's blurple, for a guild that has chosen none

CDN = "https://cdn.discordapp.com"
_AVATAR_HASH = re.compile(r"^(a_)?[0-9a-f]{32}$")


class CardTooLarge(ValueError):
    """A card would break one of Discord's limits (a bug in its caller, never the member's)."""


def avatar_url(
    user_id: int | str,
    avatar: str | None = None,
    discriminator: str | None = None,
    *,
    guild_id: int | str | None = None,
    member_avatar: str | None = None,
    size: int = 128,
) -> str:
    """The member's avatar on Discord's CDN: their server avatar, else their own, else the
    default one. Discord's rule for the default: `embed/avatars/{(id >> 22) % 6}.png` for users
    on the new username system (discriminator "0" or none), `{discriminator % 5}` for the rest.
    A hash that is not Discord's shape (32 hex digits, "a_" when animated) counts as none."""
    if member_avatar and guild_id and _AVATAR_HASH.match(member_avatar):
        return f"{CDN}/guilds/{guild_id}/users/{user_id}/avatars/{member_avatar}.png?size={size}"
    if avatar and _AVATAR_HASH.match(avatar):
        return f"{CDN}/avatars/{user_id}/{avatar}.png?size={size}"
    return default_avatar_url(user_id, discriminator)


def default_avatar_url(user_id: int | str, discriminator: str | None = None) -> str:
    legacy = discriminator not in (None, "", "0", "0000") and str(discriminator).isdigit()
    index = int(str(discriminator)) % 5 if legacy else (int(user_id) >> 22) % 6
    return f"{CDN}/embed/avatars/{index}.png"


def guild_icon_url(icon: str, size: int = 128) -> str | None:
    """A server's icon on Discord's CDN from its stored path ("icons/<guild>/<hash>") or None."""
    parts = icon.split("/")
    if len(parts) != 3 or parts[0] != "icons" or not parts[1].isdigit() or not _AVATAR_HASH.match(parts[2]):
        return None
    return f"{CDN}/{icon}.png?size={size}"


_MARKDOWN = re.compile(r"([\\*_~`|>#\[\]()<:@-])")


def escape_markdown(value: str) -> str:
    """Text of someone else's making (a server's name) shown as it is, never as Discord markdown
    or a mention: each markdown character gets a backslash."""
    return _MARKDOWN.sub(r"\\\1", value)


# -- single components -------------------------------------------------------------------------
def text(content: str) -> dict[str, Any]:
    return {"type": TEXT_DISPLAY, "content": content or "\u200b"}


def separator(divider: bool = True, large: bool = False) -> dict[str, Any]:
    return {"type": SEPARATOR, "divider": divider, "spacing": 2 if large else 1}


def thumbnail(url: str, description: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": THUMBNAIL, "media": {"url": url}}
    if description:
        item["description"] = description[:1024]
    return item


def button(
    label: str, custom_id: str, *, style: int = SECONDARY, disabled: bool = False, emoji: str | None = None
) -> dict[str, Any]:
    if not custom_id or len(custom_id) > MAX_CUSTOM_ID:
        raise CardTooLarge(f"a custom_id is 1 to {MAX_CUSTOM_ID} characters: {custom_id[:120]!r}")
    item: dict[str, Any] = {"type": BUTTON, "style": style, "label": _label(label), "custom_id": custom_id}
    if disabled:
        item["disabled"] = True
    if emoji:
        item["emoji"] = {"name": emoji}
    return item


def link_button(label: str, url: str) -> dict[str, Any]:
    return {"type": BUTTON, "style": LINK, "label": _label(label), "url": url}


def row(*buttons: dict[str, Any]) -> dict[str, Any]:
    if not 0 < len(buttons) <= MAX_BUTTONS_PER_ROW:
        raise CardTooLarge(f"an action row holds 1 to {MAX_BUTTONS_PER_ROW} buttons")
    return {"type": ACTION_ROW, "components": list(buttons)}


def _label(label: str) -> str:
    label = label.strip() or "-"
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


# -- the card ------------------------------------------------------------------------------------
@dataclass
class Card:
    """Build a card top to bottom; `build()` checks Discord's limits and returns the components.

    Text that would pass the 4000 characters is cut at a line end with "…" (a long history is a
    page, not an error); more than 40 components is a bug and raises CardTooLarge.
    """

    accent: int | None = DEFAULT_ACCENT
    _items: list[dict[str, Any]] = field(default_factory=list)
    _rows: list[dict[str, Any]] = field(default_factory=list)

    def header(self, title: str, *lines: str, avatar: str | None = None, alt: str | None = None) -> Card:
        """The title (and up to two more lines) beside the member's avatar, when one is given."""
        texts = [t for t in (title, *lines) if t][:MAX_SECTION_TEXTS]
        if avatar:
            self._items.append(
                {"type": SECTION, "components": [text(t) for t in texts], "accessory": thumbnail(avatar, alt)}
            )
        else:
            self._items.extend(text(t) for t in texts)
        return self

    def section(self, *texts: str, accessory: dict[str, Any]) -> Card:
        """One to three texts beside an accessory: a button (a reward and its Buy button) or a
        thumbnail."""
        shown = [t for t in texts if t][:MAX_SECTION_TEXTS] or ["\u200b"]
        self._items.append({"type": SECTION, "components": [text(t) for t in shown], "accessory": accessory})
        return self

    def text(self, content: str) -> Card:
        if content:
            self._items.append(text(content))
        return self

    def separator(self, divider: bool = True, large: bool = False) -> Card:
        self._items.append(separator(divider, large))
        return self

    def buttons(self, *items: dict[str, Any]) -> Card:
        """One action row (1 to 5 buttons), placed after the card's other parts."""
        if items:
            self._rows.append(row(*items))
        return self

    def build(self) -> tuple[tuple[dict[str, Any], ...], str]:
        """(components for the message, the card as plain text)."""
        items = _fit_text([dict(i) for i in self._items])
        container: dict[str, Any] = {"type": CONTAINER, "components": items or [text("\u200b")]}
        if self.accent is not None:
            container["accent_color"] = max(0, min(int(self.accent), 0xFFFFFF))
        components = (container, *self._rows)
        if count_components(components) > MAX_COMPONENTS:
            raise CardTooLarge(f"a message holds at most {MAX_COMPONENTS} components")
        return components, plain_text(components)


def _texts_of(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for item in items:
        if item.get("type") == TEXT_DISPLAY:
            found.append(item)
        found += _texts_of(item.get("components") or [])
    return found


def _fit_text(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cut TextDisplays so all of them together stay within MAX_TEXT characters."""
    for item in items:
        if item.get("type") == SECTION:
            item["components"] = [dict(c) for c in item["components"]]
    left = MAX_TEXT
    for display in _texts_of(items):
        content = display["content"]
        if len(content) > left:
            cut = content[: max(left - 1, 0)]
            cut = cut[: cut.rfind("\n")] if "\n" in cut else cut
            content = (cut + "…") if left > 0 else "…"
        display["content"] = content
        left = max(left - len(content), 0)
    return items


def count_components(components: Any) -> int:
    """Every component in a message, nested ones (and a Section's accessory) included."""
    total = 0
    for item in components or ():
        total += 1 + count_components(item.get("components"))
        if isinstance(item.get("accessory"), dict):
            total += 1
        if isinstance(item.get("component"), dict):
            total += 1
    return total


def plain_text(components: Any) -> str:
    """The text of a card, TextDisplays in order, one per line (what a reader would see)."""
    return "\n".join(d["content"] for d in _texts_of(list(components or ())) if d["content"] != "\u200b")


# -- modals --------------------------------------------------------------------------------------
def text_input(
    custom_id: str,
    label: str,
    *,
    paragraph: bool = False,
    required: bool = True,
    value: str | None = None,
    placeholder: str | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """A text field of a modal, inside a Label (Discord's current modal layout)."""
    field_: dict[str, Any] = {"type": TEXT_INPUT, "custom_id": custom_id, "style": PARAGRAPH if paragraph else SHORT,
                              "required": required}  # fmt: skip
    if value:
        field_["value"] = value[: max_length or 4000]
    if placeholder:
        field_["placeholder"] = placeholder[:100]
    if min_length is not None:
        field_["min_length"] = min_length
    if max_length is not None:
        field_["max_length"] = max_length
    label_: dict[str, Any] = {"type": LABEL, "label": label[:45], "component": field_}
    if description:
        label_["description"] = description[:100]
    return label_


def modal(custom_id: str, title: str, *fields: dict[str, Any]) -> dict[str, Any]:
    """The data of a MODAL callback (type 9)."""
    if not custom_id or len(custom_id) > MAX_CUSTOM_ID:
        raise CardTooLarge(f"a modal's custom_id is 1 to {MAX_CUSTOM_ID} characters")
    return {"custom_id": custom_id, "title": title[:45], "components": list(fields)}


def checkbox(
    custom_id: str, label: str, *, default: bool = False, description: str | None = None
) -> dict[str, Any]:
    """A yes/no field of a modal (a Checkbox inside a Label)."""
    label_: dict[str, Any] = {"type": LABEL, "label": label[:45],
                              "component": {"type": CHECKBOX, "custom_id": custom_id, "default": default}}  # fmt: skip
    if description:
        label_["description"] = description[:100]
    return label_
