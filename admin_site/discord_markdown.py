"""Discord's markdown as the admin site shows it (the DM preview and the DM history): the small
subset Discord renders in a message, and nothing else.

Built on markdown-it-py (a maintained CommonMark parser: it escapes every character of text
and attribute itself, and raw HTML is switched off), cut down and bent to Discord's flavour:
bold `**`, italic `*`/`_`, underline `__` (CommonMark's second bold), strike `~~`, inline code,
fenced code blocks, spoilers `||` (a rule of ours), block quotes `>` for one line and `>>>` for
the rest of the message, headers `#` to `###` only, lists, masked links `[text](url)` to http(s)
only, and every line break kept. Not rendered, as in Discord: images, tables, HTML, setext
headers, indented code blocks, reference links, entities (`&amp;` stays as typed). The Python
ports of Discord's markdown on PyPI (discord-markdown, discord-markdown-ast-parser, pymdcord)
are unmaintained since 2020-2023 and know no headers, lists or `>>>`; a CommonMark parser with
these few adjustments is the well-kept part, and the adjustments are tested with hostile input
(tests/unit/test_discord_markdown.py). The HTML has no style attribute and no script: a
spoiler is a span the stylesheet hides until it is hovered or focused (CSP: style-src 'self')."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markupsafe import Markup

_SCHEMES = ("http://", "https://")
MAX_HEADING = 3  # Discord renders #, ## and ###; "####" is text


def _spoiler(state: StateInline, silent: bool) -> bool:
    """`||hidden||`: its inside is parsed like any text (as a link's text is)."""
    start = state.pos
    if not state.src.startswith("||", start):
        return False
    end = state.src.find("||", start + 2)
    if end < 0 or end == start + 2 or end > state.posMax:
        return False
    if not silent:
        old_max = state.posMax
        state.pos, state.posMax = start + 2, end
        state.push("spoiler_open", "span", 1).attrs = {"class": "spoiler", "tabindex": "0"}
        state.md.inline.tokenize(state)
        state.push("spoiler_close", "span", -1)
        state.posMax = old_max
    state.pos = end + 2
    return True


# A bare web address, as Discord links one: the scheme (http or https, not glued to a word before
# it), "//", then anything but space and "<"; the sentence's punctuation after it is not the link's
# (Discord's own rule ends a link on a character other than . , : ; " ' ) ] and space), and
# neither is markdown's (* _ ~ |) closing around it; a ")" stays when the address opened one
# (Wikipedia's "Foo_(bar)").
_SCHEME_BEFORE = re.compile(r"(?<![A-Za-z0-9+.-])(https?)$", re.IGNORECASE)
_URL_REST = re.compile(r"//[^\s<]+")
_NOT_LAST = ".,:;\"')]*_~|!?"


def _trimmed(url: str) -> str:
    while url and url[-1] in _NOT_LAST:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def _bare_url(state: StateInline, silent: bool) -> bool:
    """`https://example.org` without brackets: a link, as Discord makes one. A hand-written rule
    rather than markdown-it's linkify (linkify-it-py): that one also links "example.org" and
    "www.example.org", which Discord leaves as text, and it is one more package. Runs at the ":"
    (a character the text rule stops at), with the scheme in the text just before it."""
    pos = state.pos
    if state.linkLevel > 0 or state.src[pos] != ":":
        return False
    scheme = _SCHEME_BEFORE.search(state.pending)
    if scheme is None:
        return False
    rest = _URL_REST.match(state.src, pos + 1, state.posMax)
    if rest is None:
        return False
    url = _trimmed(scheme.group(1) + ":" + rest.group(0))
    if len(url) <= len(scheme.group(1)) + 3:  # "https://" and nothing after it
        return False
    href = state.md.normalizeLink(url)  # percent-encodes quotes and the rest; escaped again when rendered
    if not state.md.validateLink(href):
        return False
    if not silent:
        state.pending = state.pending[: -len(scheme.group(1))]
        state.push("link_open", "a", 1).attrs = {"href": href}
        state.push("text", "", 0).content = state.md.normalizeLinkText(url)
        state.push("link_close", "a", -1)
    state.pos += len(url) - len(scheme.group(1))
    return True


def _parser() -> MarkdownIt:
    md = MarkdownIt("zero", {"html": False, "breaks": True, "linkify": False, "typographer": False})
    md.enable(["newline", "escape", "backticks", "strikethrough", "emphasis", "link", "autolink",
               "fence", "blockquote", "list", "heading"])  # fmt: skip
    md.inline.ruler.before("emphasis", "spoiler", _spoiler)
    md.inline.add_terminator_char("|")  # the text rule stops at "|", so the spoiler rule sees it
    md.inline.ruler.before("emphasis", "bare_url", _bare_url)
    # Only web links: javascript:, data:, a relative path and the rest stay text as typed.
    md.validateLink = lambda link: link.strip().lower().startswith(_SCHEMES)

    def strong_open(renderer, tokens, idx, options, env):  # "__x__" is underline in Discord
        return "<u>" if tokens[idx].markup == "__" else "<strong>"

    def strong_close(renderer, tokens, idx, options, env):
        return "</u>" if tokens[idx].markup == "__" else "</strong>"

    def link_open(renderer, tokens, idx, options, env):
        tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
        tokens[idx].attrSet("target", "_blank")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("strong_open", strong_open)
    md.add_render_rule("strong_close", strong_close)
    md.add_render_rule("link_open", link_open)
    return md


_MD = _parser()
_QUOTE_REST = re.compile(r"^>>> ?", re.M)
_DEEP_HEADING = re.compile(r"^(#{%d,}) " % (MAX_HEADING + 1), re.M)  # noqa: UP031


def _discord_lines(text: str) -> str:
    """Discord's block rules in CommonMark's terms: `>>>` quotes the rest of the message, `>`
    quotes its own line only (CommonMark would go on into the next line), a header has at most
    three #."""
    match = _QUOTE_REST.search(text)
    if match:
        head, rest = text[: match.start()], text[match.end() :]
        text = head + "\n".join("> " + line for line in rest.split("\n"))
    text = _DEEP_HEADING.sub(lambda m: "\\" + m.group(1) + " ", text)
    lines = text.split("\n")
    out: list[str] = []
    for i, line in enumerate(lines):
        if i and lines[i - 1].startswith(">") and not line.startswith(">") and line.strip():
            out.append("")  # the quote ends with its line
        out.append(line)
    return "\n".join(out)


def render(text: str | None) -> Markup:
    """A message's text as HTML, as Discord would show it."""
    if not text:
        return Markup("")
    html = _MD.render(_discord_lines(str(text)))  # markdown-it escaped every character of the text
    return Markup('<div class="discord-md">{}</div>').format(Markup(html))  # noqa: S704


__all__ = ["render"]
