"""Discord markdown in the admin site's DM preview and history (issue 12, item 7): the subset
Discord renders, everything escaped first, no link but http(s), no style or script."""

from __future__ import annotations

import re

import pytest

from admin_site.discord_markdown import render

pytestmark = pytest.mark.unit


def _inner(text: str) -> str:
    html = str(render(text))
    assert html.startswith('<div class="discord-md">') and html.endswith("</div>")
    return html[len('<div class="discord-md">') : -len("</div>")].strip()


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("**bold**", "<p><strong>bold</strong></p>"),
        ("*it* _it_", "<p><em>it</em> <em>it</em></p>"),
        ("__under__", "<p><u>under</u></p>"),
        ("~~gone~~", "<p><s>gone</s></p>"),
        ("`x < 1`", "<p><code>x &lt; 1</code></p>"),
        ("||secret||", '<p><span class="spoiler" tabindex="0">secret</span></p>'),
        ("***both*** __*ui*__", "<p><em><strong>both</strong></em> <u><em>ui</em></u></p>"),
        ("# Big\n## Mid\n### Small", "<h1>Big</h1>\n<h2>Mid</h2>\n<h3>Small</h3>"),
        ("#### not a header", "<p>#### not a header</p>"),
        ("- a\n- b", "<ul>\n<li>a</li>\n<li>b</li>\n</ul>"),
        ("1. one\n2. two", "<ol>\n<li>one</li>\n<li>two</li>\n</ol>"),
        ("one\ntwo", "<p>one<br>\ntwo</p>"),
        ("> quoted\nnot quoted", "<blockquote>\n<p>quoted</p>\n</blockquote>\n<p>not quoted</p>"),
        (">>> all\nof it", "<blockquote>\n<p>all<br>\nof it</p>\n</blockquote>"),
        ("snake_case_name", "<p>snake_case_name</p>"),
        ("&amp; stays", "<p>&amp;amp; stays</p>"),
    ],
)
def test_discord_markdown_renders_as_discord_does(text, html):
    assert _inner(text) == html


def test_a_code_block_keeps_its_lines_and_renders_nothing_inside():
    assert _inner('```py\nprint("**<b>**")\nx = 1\n```') == (
        '<pre><code class="language-py">print(&quot;**&lt;b&gt;**&quot;)\nx = 1\n</code></pre>'
    )


def test_a_masked_link_to_the_web_is_a_link_that_opens_apart():
    assert _inner("[our site](https://example.org/a?b=1&c=2)") == (
        '<p><a href="https://example.org/a?b=1&amp;c=2" rel="noopener noreferrer nofollow" '
        'target="_blank">our site</a></p>'
    )


HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](  javascript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](vbscript:msgbox(1))",
    "[click](//evil.example/x)",
    "[click](/admin/logout)",
    '[x](https://ok.example/"onmouseover="alert(1))',
    "[x](https://ok.example/) <a href=javascript:alert(1)>y</a>",
    "<https://ok.example/> <javascript:alert(1)>",
    "![img](https://evil.example/track.png)",
    "||**__~~`nested <b>`~~__**||",
    "**__*~~||unclosed",
    "||<style>body{display:none}</style>||",
    "```\n</code></pre><script>alert(1)</script>\n```",
    "> <iframe src=https://evil.example>\n>>> <svg onload=alert(1)>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "[a](https://ok.example/\x00) \x00 \u202e",
    "*" * 5000 + "_" * 5000,
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_text(text):
    html = str(render(text))
    # No element but the subset's, no attribute that runs or styles anything
    tags = set(re.findall(r"<\s*/?\s*([a-zA-Z0-9]+)", html))
    assert tags <= {"div", "p", "br", "strong", "em", "u", "s", "code", "pre", "span", "blockquote", "h1", "h2",
                    "h3", "ul", "ol", "li", "a"}, tags  # fmt: skip
    # (every "<" of the text is escaped, so each "<" left opens an element the renderer made)
    for attrs in re.findall(r"<[a-z0-9]+([^>]*)>", html):
        assert set(re.findall(r'\s([a-z-]+)="', attrs)) <= {"class", "tabindex", "href", "rel", "target"}, (
            attrs
        )
    for href in re.findall(r'href="([^"]*)"', html):
        assert href.lower().startswith(("http://", "https://")), href
    assert "<script" not in html.lower() and "javascript:" not in " ".join(re.findall(r'href="[^"]*"', html))


def test_nothing_renders_as_nothing():
    assert str(render("")) == "" and str(render(None)) == ""


# -- bare URLs, linked as Discord links them (issue 12) --------------------------------------------
A = '<a href="{}" rel="noopener noreferrer nofollow" target="_blank">{}</a>'


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("see https://example.org", "<p>see " + A.format("https://example.org", "https://example.org") + "</p>"),
        ("http://example.org/a?b=1&c=2", "<p>" + A.format("http://example.org/a?b=1&amp;c=2",
                                                          "http://example.org/a?b=1&amp;c=2") + "</p>"),
        # the sentence's punctuation is not the link's
        ("go to https://example.org/x.", "<p>go to " + A.format("https://example.org/x", "https://example.org/x")
         + ".</p>"),
        ("(https://example.org/x), then", "<p>(" + A.format("https://example.org/x", "https://example.org/x")
         + "), then</p>"),
        ("https://en.wikipedia.org/wiki/Foo_(bar)", "<p>" + A.format("https://en.wikipedia.org/wiki/Foo_(bar)",
                                                                    "https://en.wikipedia.org/wiki/Foo_(bar)") + "</p>"),
        ("https://example.org/snake_case_path", "<p>" + A.format("https://example.org/snake_case_path",
                                                                "https://example.org/snake_case_path") + "</p>"),
        # markdown around it stays markdown
        ("**https://example.org**", "<p><strong>" + A.format("https://example.org", "https://example.org")
         + "</strong></p>"),
        ("||https://example.org||", '<p><span class="spoiler" tabindex="0">'
         + A.format("https://example.org", "https://example.org") + "</span></p>"),
        ("`https://example.org`", "<p><code>https://example.org</code></p>"),
        # a masked link is one link, not two
        ("[site](https://example.org)", "<p>" + A.format("https://example.org", "site") + "</p>"),
        # no scheme, another scheme, or a scheme glued to a word: text, as in Discord
        ("example.org www.example.org", "<p>example.org www.example.org</p>"),
        ("ftp://example.org mailto:a@example.org", "<p>ftp://example.org mailto:a@example.org</p>"),
        ("xhttps://example.org", "<p>xhttps://example.org</p>"),
        ("https://", "<p>https://</p>"),
    ],
)  # fmt: skip
def test_a_bare_web_address_is_a_link_as_in_discord(text, html):
    assert _inner(text) == html


BARE_HOSTILE = [
    "javascript:alert(1)",
    "JavaScript://%0aalert(1)",
    "javascript:https://example.org",
    'https://ok.example/"onmouseover="alert(1)',
    "https://ok.example/'onmouseover='alert(1)'",
    "https://ok.example/<script>alert(1)</script>",
    "https://ok.example/><img src=x onerror=alert(1)>",
    "https://ok.example/\x00\u202e",
    "data:text/html,https://x",
    "https://" + "a" * 5000,
]


@pytest.mark.parametrize("text", BARE_HOSTILE)
def test_a_hostile_bare_address_is_text_or_a_harmless_link(text):
    test_hostile_text_is_text(text)
    html = str(render(text))
    for href in re.findall(r'href="([^"]*)"', html):
        # in double quotes, with no '"', '<', '>' or space in it: nothing leaves the attribute
        assert not re.search(r'["<>\s]', href), href
