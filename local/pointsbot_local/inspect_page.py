"""The stand-in's /discord-api/_inspect page: what the bot sent, drawn roughly as Discord would.

Answers to interactions (inline, recorded by the local server), edits of @original, follow-ups,
DMs and channel posts are drawn as messages: Components V2 cards (a container with its accent
bar, sections with their thumbnail or button, text displays with Discord's markdown, separators,
action rows of buttons) or plain content with the old action rows, and modals as a dialog. Every
other request is listed with its JSON. Nothing of what was received is trusted: all of it is
HTML-escaped before the few markdown rules make tags of their own, and the page runs under a
Content-Security-Policy with no script at all and one inline style allowed by its hash (the
accent colours are classes of that style, never style attributes).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

V2 = 1 << 15
EPHEMERAL = 1 << 6
ACTION_ROW, BUTTON, STRING_SELECT, TEXT_INPUT = 1, 2, 3, 4
SECTION, TEXT_DISPLAY, THUMBNAIL, MEDIA_GALLERY, SEPARATOR, CONTAINER, LABEL, CHECKBOX = (
    9,
    10,
    11,
    12,
    14,
    17,
    18,
    23,
)
BUTTON_STYLES = {1: "primary", 2: "secondary", 3: "success", 4: "danger", 5: "link", 6: "premium"}
MAX_SHOWN = 200  # the newest this many of each kind


@dataclass(frozen=True)
class Shown:
    """One thing drawn on the page."""

    at: float
    title: str  # what it is ("Answer to /balance", "DM", ...), plain text
    status: int | None
    message: dict[str, Any] | None  # a message body (content, components, flags) to draw
    modal: dict[str, Any] | None
    raw: Any  # the JSON shown under "raw"


# -- Discord markdown ------------------------------------------------------------------------------
_PLACEHOLDER = "\ue000{}\ue001"
_BULLET = re.compile(r"^\s*[-*] ")
_PLACEHOLDERS = re.compile("\ue000(\\d+)\ue001")


def markdown(text: str) -> str:
    """Discord's markdown as HTML: escaped first, then headings, subtext, lists, bold, italics,
    underline, strike-through, inline code and code blocks, mentions, timestamps and backslash
    escapes. What it does not know stays as the escaped text it is."""
    kept: list[str] = []

    def keep(fragment: str) -> str:
        kept.append(fragment)
        return _PLACEHOLDER.format(len(kept) - 1)

    text = str(text)
    # Code first (nothing inside is formatted), then backslash escapes
    text = re.sub(r"```(?:[a-z0-9]*\n)?(.*?)```", lambda m: keep(f"<pre class='code'>{html.escape(m.group(1))}</pre>"),
                  text, flags=re.S)  # fmt: skip
    text = re.sub(r"`([^`\n]+)`", lambda m: keep(f"<code>{html.escape(m.group(1))}</code>"), text)
    text = re.sub(r"\\([^\w\s])", lambda m: keep(html.escape(m.group(1))), text)
    text = html.escape(text, quote=True)
    text = re.sub(r"&lt;@!?(\d{1,20})&gt;", lambda m: keep(f"<span class='mention'>@user {m.group(1)[-4:]}</span>"),
                  text)  # fmt: skip
    text = re.sub(r"&lt;@&amp;(\d{1,20})&gt;", lambda m: keep(f"<span class='mention role'>@role {m.group(1)[-4:]}</span>"),
                  text)  # fmt: skip
    text = re.sub(r"&lt;#(\d{1,20})&gt;", lambda m: keep(f"<span class='mention'>#channel {m.group(1)[-4:]}</span>"),
                  text)  # fmt: skip
    text = re.sub(r"&lt;t:(-?\d{1,12})(?::([tTdDfFR]))?&gt;", lambda m: keep(_timestamp(int(m.group(1)), m.group(2))),
                  text)  # fmt: skip
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"__(.+?)__", r"<u>\1</u>", text)
    text = re.sub(r"~~(.+?)~~", r"<s>\1</s>", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", text)
    text = re.sub(r"(?<![\w_])_(?!\s)(.+?)(?<!\s)_(?![\w_])", r"<em>\1</em>", text)
    lines = []
    for line in text.split("\n"):
        heading = re.match(r"^(#{1,3}) (.+)$", line)
        if heading:
            level = len(heading.group(1))
            lines.append(f"<span class='h{level}'>{heading.group(2)}</span>")
        elif line.startswith("&gt; "):
            lines.append(f"<span class='quote'>{line[5:]}</span>")
        elif line.startswith("-# "):
            lines.append(f"<span class='subtext'>{line[3:]}</span>")
        elif _BULLET.match(line):
            lines.append("<span class='bullet'>• " + _BULLET.sub("", line) + "</span>")
        else:
            lines.append(line)
    text = "<br>".join(lines)
    for _ in range(3):  # kept fragments may hold kept fragments (a mention's own escapes)
        text = _PLACEHOLDERS.sub(lambda m: kept[int(m.group(1))], text)
    return text


def _timestamp(seconds: int, style: str | None) -> str:
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return html.escape(str(seconds))
    shown = moment.strftime("%Y-%m-%d" if style in ("d", "D") else "%Y-%m-%d %H:%M UTC")
    if style == "R":
        shown = "(relative) " + shown
    return f"<time class='stamp' datetime='{moment.isoformat()}'>{shown}</time>"


# -- components ------------------------------------------------------------------------------------
class _Styles:
    """The accent colours a page uses, as classes of its one inline style."""

    def __init__(self) -> None:
        self.colours: set[int] = set()

    def accent(self, value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFFFF:
            self.colours.add(value)
            return f" accent-{value:06x}"
        return ""

    def css(self) -> str:
        return "".join(f".accent-{c:06x}{{border-left-color:#{c:06x}}}" for c in sorted(self.colours))


def _image(url: Any, alt: Any, css: str) -> str:
    link = str(url or "")
    if not link.startswith("https://"):
        return f"<span class='{css} noimage'>{html.escape(str(alt or ''))[:40]}</span>"
    return (f"<img class='{css}' src='{html.escape(link, quote=True)}' alt='{html.escape(str(alt or 'image'), quote=True)}'"
            " referrerpolicy='no-referrer'>")  # fmt: skip


def _button(item: dict[str, Any]) -> str:
    style = BUTTON_STYLES.get(item.get("style"), "secondary")
    emoji = (item.get("emoji") or {}).get("name") if isinstance(item.get("emoji"), dict) else None
    label = html.escape(" ".join(str(p) for p in (emoji, item.get("label")) if p))
    disabled = " disabled" if item.get("disabled") else ""
    if style == "link":
        return f"<a class='button link' href='{html.escape(str(item.get('url') or '#'), quote=True)}' rel='noopener noreferrer'>{label} ↗</a>"
    custom = html.escape(str(item.get("custom_id") or ""), quote=True)
    return f"<button class='button {style}' type='button' title='{custom}'{disabled}>{label}</button>"


def components(items: Any, styles: _Styles) -> str:
    """Components (V2 or the old action rows) as HTML."""
    out = []
    for item in items or ():
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == CONTAINER:
            out.append(f"<div class='container{styles.accent(item.get('accent_color'))}'>"
                       f"{components(item.get('components'), styles)}</div>")  # fmt: skip
        elif kind == SECTION:
            accessory = item.get("accessory") if isinstance(item.get("accessory"), dict) else {}
            if accessory.get("type") == THUMBNAIL:
                side = _image(
                    (accessory.get("media") or {}).get("url"), accessory.get("description"), "thumbnail"
                )
            elif accessory.get("type") == BUTTON:
                side = _button(accessory)
            else:
                side = ""
            out.append(f"<div class='section'><div class='section-text'>{components(item.get('components'), styles)}"
                       f"</div><div class='accessory'>{side}</div></div>")  # fmt: skip
        elif kind == TEXT_DISPLAY:
            out.append(f"<div class='text'>{markdown(item.get('content') or '')}</div>")
        elif kind == SEPARATOR:
            css = (
                "separator"
                + (" divider" if item.get("divider", True) else "")
                + (" large" if item.get("spacing") == 2 else "")
            )
            out.append(f"<hr class='{css}'>")
        elif kind == ACTION_ROW:
            out.append(f"<div class='row'>{components(item.get('components'), styles)}</div>")
        elif kind == BUTTON:
            out.append(_button(item))
        elif kind == THUMBNAIL:
            out.append(_image((item.get("media") or {}).get("url"), item.get("description"), "thumbnail"))
        elif kind == MEDIA_GALLERY:
            out.append("<div class='gallery'>" + "".join(
                _image((m.get("media") or {}).get("url"), m.get("description"), "media")
                for m in item.get("items") or () if isinstance(m, dict)) + "</div>")  # fmt: skip
        elif kind == LABEL:
            field = item.get("component") if isinstance(item.get("component"), dict) else {}
            about = (
                f"<span class='about'>{html.escape(str(item.get('description') or ''))}</span>"
                if item.get("description")
                else ""
            )
            out.append(f"<label class='field'><span class='label'>{html.escape(str(item.get('label') or ''))}</span>"
                       f"{about}{_field(field)}</label>")  # fmt: skip
        elif kind == TEXT_INPUT:  # an old-style modal field, directly in an action row
            out.append(f"<label class='field'><span class='label'>{html.escape(str(item.get('label') or ''))}</span>"
                       f"{_field(item)}</label>")  # fmt: skip
        else:
            out.append(f"<div class='unknown'>component type {html.escape(str(kind))}</div>")
    return "".join(out)


def _field(item: dict[str, Any]) -> str:
    if item.get("type") == CHECKBOX:
        checked = " checked" if item.get("default") else ""
        return f"<input type='checkbox' disabled{checked}>"
    value = html.escape(str(item.get("value") or ""))
    placeholder = html.escape(str(item.get("placeholder") or ""), quote=True)
    if item.get("style") == 2:
        return f"<textarea readonly placeholder='{placeholder}'>{value}</textarea>"
    return f"<input type='text' readonly value='{html.escape(str(item.get('value') or ''), quote=True)}' placeholder='{placeholder}'>"


def message(body: dict[str, Any], styles: _Styles) -> str:
    flags = body.get("flags") if isinstance(body.get("flags"), int) else 0
    badges = []
    if flags & EPHEMERAL:
        badges.append("<span class='badge'>Only you can see this</span>")
    if flags & V2:
        badges.append("<span class='badge v2'>Components V2</span>")
    content = body.get("content")
    text = f"<div class='content'>{markdown(content)}</div>" if isinstance(content, str) and content else ""
    return (f"<div class='message'><div class='author'><span class='bot'>APP</span> pointsbot {''.join(badges)}</div>"
            f"{text}{components(body.get('components'), styles)}</div>")  # fmt: skip


def modal(data: dict[str, Any], styles: _Styles) -> str:
    return (f"<div class='modal'><div class='modal-title'>{html.escape(str(data.get('title') or ''))}</div>"
            f"{components(data.get('components'), styles)}"
            "<div class='row end'><button class='button secondary' type='button' disabled>Cancel</button>"
            "<button class='button primary' type='button' disabled>Submit</button></div></div>")  # fmt: skip


# -- the page -----------------------------------------------------------------------------------------
STYLE = """
body{margin:0;background:#313338;color:#dbdee1;font:15px/1.375 "gg sans","Noto Sans",Helvetica,Arial,sans-serif}
header{padding:12px 16px;background:#2b2d31;border-bottom:1px solid #1f2023}
h1{font-size:18px;margin:0 0 4px;color:#f2f3f5}header p{margin:0;color:#b5bac1;font-size:13px}
header a{color:#00a8fc}main{padding:8px 16px;max-width:900px}
.entry{border-bottom:1px solid #3f4147;padding:10px 0;min-width:0}
.meta{font-size:12px;color:#949ba4;margin-bottom:4px;overflow-wrap:anywhere}
.meta .status{margin-left:6px;padding:0 4px;border-radius:3px;background:#4e5058}
.meta .status.bad{background:#da373c;color:#fff}
.message{max-width:100%;overflow-wrap:anywhere}
.author{font-weight:600;color:#f2f3f5;margin-bottom:4px}
.bot{background:#5865f2;color:#fff;font-size:10px;padding:1px 4px;border-radius:3px;margin-right:4px}
.badge{font-weight:400;font-size:11px;color:#949ba4;margin-left:6px}
.container{background:#2b2d31;border:1px solid #3f4147;border-left:4px solid #4e5058;border-radius:8px;padding:12px 14px;
 max-width:600px;margin:4px 0;box-sizing:border-box}
.section{display:flex;gap:12px;align-items:flex-start;justify-content:space-between}
.section-text{min-width:0;flex:1}.accessory{flex:none}
.thumbnail{width:64px;height:64px;border-radius:8px;object-fit:cover;background:#4e5058;display:block}
.noimage{display:flex;align-items:center;justify-content:center;font-size:10px;overflow:hidden}
.text{margin:2px 0;white-space:normal}.content{margin:2px 0}
.h1{font-size:24px;font-weight:700;color:#f2f3f5}.h2{font-size:20px;font-weight:700;color:#f2f3f5}
.h3{font-size:16px;font-weight:700;color:#f2f3f5}.subtext{font-size:12px;color:#949ba4}
.separator{border:0;margin:6px 0}.separator.divider{border-top:1px solid #3f4147}.separator.large{margin:14px 0}
.row{display:flex;flex-wrap:wrap;gap:8px;margin:6px 0}.row.end{justify-content:flex-end}
.button{border:0;border-radius:4px;padding:4px 14px;min-height:32px;font:inherit;font-size:14px;color:#fff;
 background:#4e5058;text-decoration:none;display:inline-flex;align-items:center;max-width:100%;overflow-wrap:anywhere}
.button.primary{background:#5865f2}.button.success{background:#248046}.button.danger{background:#da373c}
.button[disabled]{opacity:.5}
code{background:#1e1f22;border-radius:3px;padding:0 3px;font-size:85%}
.code{background:#1e1f22;border:1px solid #1f2023;border-radius:4px;padding:6px;white-space:pre-wrap;margin:4px 0}
.mention{background:rgba(88,101,242,.3);color:#c9cdfb;border-radius:3px;padding:0 2px}
.stamp{background:#1e1f22;border-radius:3px;padding:0 2px}
.modal{background:#313338;border:1px solid #1f2023;border-radius:8px;padding:16px;max-width:440px;box-shadow:0 8px 16px rgba(0,0,0,.24)}
.modal-title{font-size:20px;font-weight:700;color:#f2f3f5;margin-bottom:10px}
.field{display:block;margin:10px 0}.label{display:block;font-size:12px;font-weight:700;text-transform:uppercase;color:#b5bac1}
.about{display:block;font-size:12px;color:#949ba4}
.field input[type=text],.field textarea{width:100%;box-sizing:border-box;background:#1e1f22;color:#dbdee1;border:0;
 border-radius:4px;padding:8px;font:inherit}
details{margin-top:4px}summary{cursor:pointer;color:#949ba4;font-size:12px}
pre.raw{white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px;background:#1e1f22;padding:6px;border-radius:4px;max-height:24em;overflow:auto}
.unknown{color:#949ba4;font-style:italic}
.quote{display:block;border-left:4px solid #4e5058;padding-left:8px}
"""


def _describe(exchange: Any) -> tuple[str, dict[str, Any] | None]:
    """What a REST request was, and the message it carried (None: not a message)."""
    path, method, body = exchange.path, exchange.method, exchange.body
    body = body if isinstance(body, dict) else None
    if path.endswith("/messages/@original") and method == "PATCH":
        return "Edit of the interaction's answer (@original)", body
    if path.startswith("/webhooks/") and method == "POST":
        return "Follow-up message", body
    if re.fullmatch(r"/channels/\d+/messages", path) and method == "POST":
        return (
            f"Message to channel {path.split('/')[2]} (a DM channel when opened by /users/@me/channels)",
            body,
        )
    return f"{method} {path}", None


def interaction_title(request: dict[str, Any]) -> str:
    data = request.get("data") if isinstance(request.get("data"), dict) else {}
    member = request.get("member") if isinstance(request.get("member"), dict) else {}
    user = member.get("user") or request.get("user") or {}
    user = user if isinstance(user, dict) else {}
    who = str(user.get("global_name") or user.get("username") or user.get("id") or "someone")[:40]
    kind = request.get("type")
    if kind == 2:
        name, options = str(data.get("name") or ""), data.get("options") or []
        while options and isinstance(options[0], dict) and options[0].get("type") in (1, 2):
            name += " " + str(options[0].get("name"))
            options = options[0].get("options") or []
        what = f"/{name}" if data.get("type", 1) == 1 else f"“{name}” (context menu)"
    elif kind == 3:
        what = f"button {data.get('custom_id')}"
    elif kind == 5:
        what = f"modal {data.get('custom_id')}"
    elif kind == 4:
        what = f"autocomplete of /{data.get('name')}"
    else:
        what = f"interaction type {kind}"
    return f"Answer to {what} by {who} (locale {request.get('locale') or '-'})"


def shown_items(exchanges: list[Any], interactions: list[Any]) -> list[Shown]:
    items = []
    for recorded in interactions[-MAX_SHOWN:]:
        answer = recorded.answer if isinstance(recorded.answer, dict) else {}
        data = answer.get("data") if isinstance(answer.get("data"), dict) else None
        is_modal = answer.get("type") == 9
        title = interaction_title(recorded.request) + {5: " - deferred (thinking…)", 6: " - deferred update",
                                                       7: " - updates its message", 8: " - choices"}.get(answer.get("type"), "")  # fmt: skip
        items.append(Shown(recorded.at, title, recorded.status, None if is_modal or answer.get("type") in (5, 6, 8) else data,
                           data if is_modal else None, {"interaction": recorded.request, "answer": recorded.answer}))  # fmt: skip
    for exchange in exchanges[-MAX_SHOWN:]:
        title, body = _describe(exchange)
        if not title.startswith(exchange.method):
            title = f"{title} · {exchange.method} {exchange.path}"
        items.append(Shown(exchange.at, title, exchange.status, body if exchange.status < 400 else None, None,
                           {"request": exchange.body, "answer": exchange.response}))  # fmt: skip
    return sorted(items, key=lambda item: item.at, reverse=True)


def page(exchanges: list[Any], interactions: list[Any]) -> tuple[str, str]:
    """(the HTML page, its Content-Security-Policy)."""
    styles = _Styles()
    entries = []
    for item in shown_items(exchanges, interactions):
        stamp = datetime.fromtimestamp(item.at, UTC).strftime("%H:%M:%S")
        bad = " bad" if item.status is not None and item.status >= 400 else ""
        status = f"<span class='status{bad}'>{item.status}</span>" if item.status is not None else ""
        drawn = ""
        if item.modal is not None:
            drawn = modal(item.modal, styles)
        elif item.message is not None:
            drawn = message(item.message, styles)
        raw = html.escape(json.dumps(item.raw, indent=1, ensure_ascii=False)[:20_000])
        entries.append(f"<article class='entry'><div class='meta'>{stamp} · {html.escape(item.title)}{status}</div>"
                       f"{drawn}<details><summary>raw JSON</summary><pre class='raw'>{raw}</pre></details></article>")  # fmt: skip
    css = STYLE + styles.css()
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    policy = (f"default-src 'none'; style-src 'sha256-{digest}'; img-src https://cdn.discordapp.com; "
              "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")  # fmt: skip
    body = (
        "".join(entries)
        or "<p>Nothing received yet. Send an interaction (python -m pointsbot_local send ...).</p>"
    )
    document = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Discord stand-in</title><style>{css}</style></head><body>"
        "<header><h1>Discord stand-in: what the bot sent</h1>"
        "<p>Newest first, drawn roughly as Discord shows it; each with its raw JSON. "
        "Machine-readable: <a href='?format=json'>?format=json</a>.</p></header>"
        f"<main>{body}</main></body></html>"
    )
    return document, policy
