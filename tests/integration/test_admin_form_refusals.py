"""Every POST form of the admin site, refused (issue 12, item 4): the route table walked, each
route that takes typed input sent one bad value. The answer is the form's page again (422) with
every field as typed (text, selects, radios, checkboxes; never a password or secret), the message
in words next to the field it concerns (aria-invalid, aria-describedby), a summary at the top
for screen readers, and nothing written to the database (every table's rows, before and after).

In-process requests (tests/integration/_admin_browser.py); the browser side is
tests/e2e/admin/test_admin_form_refusals_browser.py."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser

import pytest
from _admin_browser import Browser, admin_site_database

from admin_site.app import ROUTES
from pointsbot.platform import runtime

pytestmark = pytest.mark.integration
GUILD = 772000000000000001
MEMBER = 782000000000000005
ADMIN_NAME = "refusals-admin"
ADMIN_PASSWORD = "refusals admin's password"
G = f"/g/{GUILD}"

# Routes with no field to type (a button, a token the site wrote): nothing to keep after a
# refusal; their refusal is the page again with the message above the form (the mechanism's
# whole-form message) or a plain page. Every other POST route has a case below.
NO_TYPED_INPUT = {
    "/oauth/start", "/logout", "/g/<guild_id>/bulk/apply", "/g/<guild_id>/bulk/<batch_id>/continue",
    "/g/<guild_id>/members/<user_id>/export.json", "/g/<guild_id>/achievements-check",
    "/g/<guild_id>/achievements-check/confirm", "/g/<guild_id>/roles/thresholds/<threshold_id>/remove",
    "/g/<guild_id>/roles/changes/<change_id>/acknowledge", "/g/<guild_id>/rewards/<reward_id>/enabled",
    "/g/<guild_id>/seasons/<season_id>/end", "/g/<guild_id>/seasons/<season_id>/revert", "/g/<guild_id>/dms/retry",
    "/g/<guild_id>/api/keys/<key_id>/revoke", "/g/<guild_id>/webhooks/<webhook_id>/enable",
    "/g/<guild_id>/webhooks/<webhook_id>/disable", "/g/<guild_id>/webhooks/<webhook_id>/secret",
    "/g/<guild_id>/webhooks/deliveries/<delivery_id>/resend",
}  # fmt: skip


@dataclass(frozen=True)
class Case:
    route: str  # the route table's path
    page: str  # the page the form is on (its ids filled in from the sample data)
    form: str  # the form's name (its hidden _form)
    fields: dict[str, str | list[str]]  # what is typed ({ids} filled in); a list: a multi-valued field
    refused: str  # the field the message is next to ("" : the form as a whole)
    words: str  # a part of the message
    secret: tuple[str, ...] = ()  # fields never echoed back
    post: str = ""  # the POST's path when it is not the route's (ids filled in)
    unlisted: tuple[str, ...] = ()  # typed values no option of a select offers (a crafted POST)


CASES = [
    Case("/login", "/login", "login", {"name": "nobody-here", "password": "the-wrong-one-4711"}, "",
         "name or the password", secret=("password",)),
    Case("/g/<guild_id>/points", "/points", "points-one",
         {"member": "{member}", "operation": "deduct", "amount": "99999999999", "reason": "kept “reason”",
          "silent": "on", "form_token": "refusal-points"}, "amount", "largest single change"),
    Case("/g/<guild_id>/points/revert", "/points", "points-revert",
         {"entry_id": "987654321", "reason": "kept revert reason", "form_token": "refusal-revert", "back": f"{G}/points"}, "entry_id",
         "no entry"),
    Case("/g/<guild_id>/bulk/preview", "/points", "points-bulk",
         {"operation": "award", "csv_text": "", "reason": "kept bulk reason", "form_token": "refusal-bulk"},
         "csv_text", "no rows"),
    Case("/g/<guild_id>/members", "/members", "member-create",
         {"user_id": "not-an-id", "display_name": "Kept Name"}, "user_id", "Discord id"),
    Case("/g/<guild_id>/members/<user_id>", "/members/{member}", "profile",
         {"display_name": "Kept Display", "email": "not an address", "notes": "kept notes", "dm_opt_out": "on"},
         "email", "email"),
    Case("/g/<guild_id>/members/<user_id>/erase", "/members/{member}", "erase", {"confirm": "wrong id"},
         "confirm", "id"),
    Case("/g/<guild_id>/emails/<submission_id>/<decision>", "/emails", "email-{submission}",
         {"bonus": "lots", "note": "kept note"}, "bonus", "whole number"),
    Case("/g/<guild_id>/achievements", "/achievements", "achievement",
         {"name": "Kept achievement", "description": "kept description", "criterion": "earned_within_days",
          "threshold": "10", "window_days": "ten", "bonus_points": "5", "active": "on"}, "window_days",
         "whole number"),
    Case("/g/<guild_id>/achievements/<achievement_id>", "/achievements/{achievement}", "achievement",
         {"name": "Renamed achievement", "description": "kept", "criterion": "balance_at_least",
          "threshold": "many", "bonus_points": "0"}, "threshold", "whole number"),
    Case("/g/<guild_id>/roles/thresholds", "/roles", "threshold",
         {"points": "a hundred", "role_id": "783000000000000001", "on_drop": "keep"}, "points", "whole number"),
    Case("/g/<guild_id>/rewards", "/rewards", "reward",
         {"kind": "item", "name": "Kept reward", "description": "kept", "price": "free", "stock": "3",
          "enabled": "on"}, "price", "price"),
    Case("/g/<guild_id>/rewards/<reward_id>", "/rewards/{reward}", "reward",
         {"name": "Kept reward edit", "description": "kept", "price": "0", "stock": "3"}, "price", "price"),
    Case("/g/<guild_id>/rewards/<reward_id>/codes", "/rewards/{code_reward}", "codes", {"codes_text": "   "},
         "codes_text", "code", post="/rewards/{code_reward}/codes"),
    Case("/g/<guild_id>/redemptions/<purchase_id>/fulfil", "/redemptions", "fulfil-{purchase}",
         {"note": "n" * 5000}, "note", "note"),
    Case("/g/<guild_id>/redemptions/<purchase_id>/refund", "/redemptions", "refund-{purchase}",
         {"reason": "  "}, "reason", "reason"),
    Case("/g/<guild_id>/seasons", "/seasons", "season",
         {"name": "Kept cup", "starts_at": "", "ends_at": "2026-02-30T10:00", "prize_places": "3",
          "prize_points": "50", "prize_role_id": "", "reset_balances": "on", "post_channel_id": ""}, "ends_at",
         "real date"),
    Case("/g/<guild_id>/seasons/time-zone", "/seasons", "season-zone", {"time_zone": "Mars/Olympus"},
         "time_zone", "time zone"),
    Case("/g/<guild_id>/seasons/<season_id>/rename", "/seasons/{season}", "season-rename",
         {"name": "x" * 150}, "name", "characters"),
    Case("/g/<guild_id>/dms/preview", "/dms", "dm-compose",
         {"audience": "one", "to": "someone", "content": "Line one\n**two**"}, "to", "member"),
    Case("/g/<guild_id>/dms/send", "/dms", "dm-compose",
         {"audience": "one", "to": "someone", "content": "Line one\n**two**"}, "to", "nobody"),
    Case("/g/<guild_id>/api/keys", "/api", "api-key", {"name": "Kept key"}, "scope", "Choose what"),
    Case("/g/<guild_id>/webhooks", "/webhooks", "webhook",
         {"url": "http://example.org/kept", "description": "kept hook", "event": ["entry.reverted"]}, "url",
         "https://"),
    Case("/g/<guild_id>/webhooks/<webhook_id>", "/webhooks/{webhook}", "webhook",
         {"url": "https://10.0.0.1/kept", "description": "kept edit", "event": ["entry.created", "purchase.created"]},
         "url", "private address"),
    Case("/g/<guild_id>/webhooks/<webhook_id>/delete", "/webhooks/{webhook}", "webhook-delete", {}, "confirm",
         "Yes, delete it"),
    Case("/g/<guild_id>/settings", "/settings", "settings",
         {"currency_name": "gems", "currency_singular": "gem", "accent_color": "#12ab34", "max_change": "0",
          "daily_cap": "-5", "allow_negative": "on", "admin_roles_shown": "text",
          "admin_role_ids_text": "783000000000000009", "time_zone": "Europe/Berlin", "counting_shown": "1",
          "counted_sources": ["slash", "admin_site"], "counted_kinds": ["award"]}, "max_change", "above zero"),
    Case("/g/<guild_id>/preferences", "/preferences", "preferences", {"time_zone": ""}, "time_zone",
         "choose a time zone", unlisted=("time_zone",)),
]  # fmt: skip


# -- the page as a browser would read it ---------------------------------------------------------
@dataclass
class FormState:
    """What a browser shows in one form: each field's value(s), by name."""

    values: dict[str, list[str]] = field(default_factory=dict)
    described: dict[str, dict[str, str]] = field(
        default_factory=dict
    )  # aria-describedby: the element's attrs


class _Forms(HTMLParser):
    """The page's forms by their _form name."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: dict[str, FormState] = {}
        self._form: FormState | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = FormState()
            return
        if self._form is None:
            return
        if "aria-describedby" in a:
            self._form.described[a["aria-describedby"]] = a
        name = a.get("name")
        if tag == "input" and name:
            if name == "_form":
                self.forms[a.get("value", "")] = self._form
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                self._form.values.setdefault(name, [])
                if "checked" in a:
                    self._form.values[name].append(a.get("value", "on"))
            elif kind not in ("submit", "file"):
                self._form.values.setdefault(name, []).append(a.get("value", ""))
        elif tag == "select" and name:
            self._select = name
            self._form.values.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in a:
            self._form.values[self._select].append(a.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea = name
            self._form.values.setdefault(name, []).append("")

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea and self._form is not None:
            self._form.values[self._textarea][-1] += data


def read_forms(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    parser.close()
    return parser


# -- the data the forms act on, and every table's rows ------------------------------------------
@pytest.fixture(scope="module")
def site(database_url):
    db = admin_site_database(database_url, GUILD, (ADMIN_NAME, ADMIN_PASSWORD))
    yield db
    runtime.reset()


@pytest.fixture(scope="module")
def sample(site) -> dict[str, str]:
    """A member with points and a pending email, an achievement, an item and a code reward, a
    pending purchase, a scheduled season and a webhook: every form has something to act on."""
    from pointsbot import ledger
    from pointsbot.community import achievements, emails, members, seasons, store, webhooks

    site.run(members.remember, GUILD, MEMBER, "kept", "Kept Member")
    site.run(lambda conn: ledger.award(conn, guild_id=GUILD, user_id=MEMBER, amount=500, reason="seed",
                                       actor_id=None, actor_name="t", source="admin_site", idempotency_key="refusals-1"))  # fmt: skip
    submission = site.run(emails.submit, GUILD, MEMBER, "kept@example.com")
    definition = site.run(lambda conn: achievements.create_definition(
        conn, GUILD, name="Refusals", criterion="balance_at_least", threshold=1, bonus_points=0, active=True))  # fmt: skip
    item = site.run(lambda conn: store.create_reward(conn, guild_id=GUILD, actor_id=None, actor_name="t", kind="item",
                                                    name="Sticker", price="10", enabled=True))  # fmt: skip
    codes = site.run(lambda conn: store.create_reward(conn, guild_id=GUILD, actor_id=None, actor_name="t",
                                                     kind="code", name="Game key", price="10", enabled=True))  # fmt: skip
    bought = site.run(lambda conn: store.purchase(conn, guild_id=GUILD, user_id=MEMBER, reward_id=item.id,
                                                 interaction_id=772000000000000900))  # fmt: skip
    season = site.run(lambda conn: seasons.start_season(
        conn, GUILD, name="Refusals cup", starts_at=datetime.now(UTC) + timedelta(days=30),
        ends_at=datetime.now(UTC) + timedelta(days=60), actor_id=None, actor_name="t"))  # fmt: skip
    hook, _ = site.run(lambda conn: webhooks.create_webhook(
        conn, guild_id=GUILD, url="https://hooks.example.org/in", events=["entry.created"], actor_id=None,
        actor_name="t", resolve=lambda host, port: ["93.184.216.34"]))  # fmt: skip
    purchase_id = bought.purchase.id
    return {"member": str(MEMBER), "submission": str(submission.id), "achievement": str(definition.id),
            "reward": str(item.id), "code_reward": str(codes.id), "purchase": str(purchase_id),
            "season": str(season.id), "webhook": str(hook.id)}  # fmt: skip


# Tables a refused form may touch: the session (its flashes), the sign-in limiter, and the
# caches of names and roles a page refreshes. Every other table is compared row by row.
# The Discord client's shared pacing (`dm_pacer`) takes a slot when a page asks Discord.
NOT_COMPARED = ("admin_sessions", "admin_login_failures", "discord_users", "schema_migrations", "dm_pacer")
CACHE_COLUMNS = ["profile_checked_at", "profile_requested_at", "roles", "roles_checked_at", "name", "icon",
                 "member_count", "username", "avatar"]  # fmt: skip


def every_row(site) -> dict[str, str]:
    """A digest of every table's rows (the caches' columns aside)."""

    def read(conn):
        tables = [r[0] for r in conn.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()]  # fmt: skip
        out = {}
        for table in tables:
            if table in NOT_COMPARED:
                continue
            out[table] = conn.execute(
                f"SELECT md5(coalesce(string_agg(j::text, ',' ORDER BY j::text), '')) "
                f"FROM (SELECT to_jsonb(t) - %s::text[] AS j FROM {table} t) s",
                (CACHE_COLUMNS,),
            ).fetchone()[0]
        return out

    return site.run(read)


# The path's ids of a POST route, from the sample data.
PATH_IDS = {"guild_id": str(GUILD), "user_id": "{member}", "submission_id": "{submission}", "decision": "approve",
            "achievement_id": "{achievement}", "reward_id": "{reward}", "purchase_id": "{purchase}",
            "season_id": "{season}", "webhook_id": "{webhook}"}  # fmt: skip


def _fill(text: str, sample: dict[str, str]) -> str:
    return text.format(**sample) if "{" in text else text


def _browser(site, monkeypatch, case: Case) -> Browser:
    monkeypatch.delenv("ADMIN_BASE_URL", raising=False)
    browser = Browser("198.51.100.90")
    if case.route != "/login":
        assert browser.sign_in(ADMIN_NAME, ADMIN_PASSWORD)["statusCode"] == 303
    return browser


# -- the walk -------------------------------------------------------------------------------------
def test_every_post_route_is_either_a_form_case_or_has_no_typed_input():
    posts = {r.path for r in ROUTES if r.method == "POST"}
    cased = {c.route for c in CASES}
    assert cased <= posts, cased - posts
    assert posts >= NO_TYPED_INPUT, NO_TYPED_INPUT - posts
    assert posts - cased - NO_TYPED_INPUT == set(), (
        "a POST route neither walked here nor listed as button-only"
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.route)
def test_a_refused_form_keeps_what_was_typed_says_why_next_to_the_field_and_writes_nothing(
    site, sample, monkeypatch, case
):
    browser = _browser(site, monkeypatch, case)
    page = "/admin" + (case.page if case.page == "/login" else G + _fill(case.page, sample))
    csrf = browser.csrf(page)
    form_name = _fill(case.form, sample)
    typed = {k: ([_fill(x, sample) for x in v] if isinstance(v, list) else _fill(v, sample))
             for k, v in case.fields.items()}  # fmt: skip
    before = every_row(site)
    # When the form is sent with one bad value
    body: list[tuple[str, str]] = [("csrf_token", csrf), ("_form", form_name)]
    for key, value in typed.items():
        body += [(key, v) for v in value] if isinstance(value, list) else [(key, value)]
    post = case.post or re.sub(r"<(\w+)>", lambda m: PATH_IDS[m.group(1)], case.route).removeprefix(G)
    post = "/admin" + (post if case.route == "/login" else G + _fill(post, sample))
    result = browser.request("POST", post, body)  # type: ignore[arg-type]  # pairs: a name may repeat
    html = result["body"]
    # Then the form's page is back in the answer, 422
    assert result["statusCode"] == 422, (
        result["statusCode"],
        result.get("headers", {}).get("Location"),
        html[:300],
    )
    forms = read_forms(html)
    assert form_name in forms.forms, sorted(forms.forms)
    state = forms.forms[form_name]
    # And every field holds what was typed (selects, radios and checkboxes as chosen); no secret
    for key, value in typed.items():
        if key in case.secret or key in case.unlisted or key == "form_token":
            continue
        if key not in state.values:  # a field this page shows in another way (a hidden group marker)
            continue
        expected = value if isinstance(value, list) else [value]
        got = state.values[key]
        if key in ("operation", "kind", "criterion", "audience", "on_drop", "time_zone") or isinstance(
            value, list
        ):
            assert sorted(got) == sorted(expected), (key, got, expected)
        elif value == "on":
            assert got == ["on"], (key, got)
        else:
            assert got[:1] == expected, (key, got, expected)
    for key in case.secret:
        assert typed[key] not in html and state.values.get(key, [""]) == [""]
    # And the message is next to its field, in words, the field marked and described by it
    error_id = f"error-{form_name}-{case.refused or 'form'}"
    found = re.search(rf'<(span|p) class="[^"]*" id="{error_id}">([^<]*)</\1>', html)
    assert found, (error_id, re.findall(r'id="(error-[^"]*)"', html))
    message = unescape(found.group(2))
    assert case.words.lower() in message.lower(), message
    # no internal name (max_change, csv_text); a CSV's header line is the file's own words
    assert not re.search(r"\b[a-z]+_[a-z_]+\b", message.replace("user_id,amount,reason", "")), message
    assert "{" not in message and "}" not in message, message  # no raw JSON
    if case.refused:
        marked = state.described.get(error_id)
        assert marked is not None and marked.get("aria-invalid") == "true", (error_id, state.described)
    # And a summary at the top says it, linked to the message, for a screen reader (role=alert)
    summary = re.search(r'<div class="flash flash-error form-summary" id="form-summary" role="alert">(.*?)</div>',
                        html, flags=re.S)  # fmt: skip
    assert summary and f'href="#{error_id}"' in summary.group(1), html[
        html.find("<main>") : html.find("<main>") + 600
    ]
    assert html.find('id="form-summary"') < html.find(f'id="{error_id}"')
    # And nothing was written
    after = every_row(site)
    assert {t for t in before if before[t] != after.get(t)} == set()
