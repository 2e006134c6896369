"""The forms that had their own error display, on the one form mechanism (issue 12, item 4), in
chromium at 390 and 1366 px: Settings, a season's start, the seasons' time zone, a season's
rename, a webhook added, edited and deleted, and the admin's own time zone. For each: type,
submit a bad value, and the page comes back with every field as typed (selects and checkboxes
included), the message in words next to its field (aria-describedby, in the same label or
fieldset), a summary at the top for screen readers, nothing written to the database, and no
page wider than the screen. Screenshots in test-artifacts/admin/refused-*.

The same refusals without a browser, one per POST route: tests/integration/test_admin_form_refusals.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from _admin_e2e import GUILD_A, shot, sign_in_local

pytestmark = pytest.mark.e2e

G = f"/g/{GUILD_A}"
WIDTHS = (390, 1366)
# Tables a refused form may touch: the session, names and roles a page caches, the Discord
# client's pacing; every other table is compared row by row.
NOT_COMPARED = ("admin_sessions", "admin_login_failures", "discord_users", "schema_migrations", "dm_pacer")
CACHE_COLUMNS = ["profile_checked_at", "profile_requested_at", "roles", "roles_checked_at", "name", "icon",
                 "member_count", "username", "avatar"]  # fmt: skip


def every_row(site) -> dict[str, str]:
    def read(conn):
        tables = [r[0] for r in conn.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()]  # fmt: skip
        return {
            t: conn.execute(f"SELECT md5(coalesce(string_agg(j::text, ',' ORDER BY j::text), '')) "
                            f"FROM (SELECT to_jsonb(x) - %s::text[] AS j FROM {t} x) s", (CACHE_COLUMNS,)).fetchone()[0]
            for t in tables if t not in NOT_COMPARED
        }  # fmt: skip

    return site.db.run(read)


def _overflow(page) -> int:
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - window.innerWidth"
    )


def _message_next_to(page, field: str) -> str:
    """The message the field is described by (aria-describedby), which sits in the same label or
    fieldset as the field, and is visible."""
    target = page.locator(field)
    described = target.get_attribute("aria-describedby")
    assert described and target.get_attribute("aria-invalid") == "true", field
    message = page.locator(f"#{described}")
    assert message.is_visible()
    same = page.evaluate(
        "([f, m]) => document.querySelector(f).closest('label, fieldset') === "
        "document.getElementById(m).closest('label, fieldset')",
        [field, described],
    )
    assert same, field
    return message.inner_text()


def _summary_links_to(page, message_ids: list[str], form: str) -> None:
    """The summary at the top: announced (role=alert), above the form, one link per message."""
    summary = page.locator("#form-summary")
    assert summary.is_visible() and summary.get_attribute("role") == "alert"
    assert "Nothing was changed" in summary.inner_text()
    hrefs = summary.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hrefs == [f"#{m}" for m in message_ids], hrefs
    above = page.evaluate(
        "([s, f]) => document.querySelector(s).getBoundingClientRect().top < "
        "document.querySelector(f).getBoundingClientRect().top",
        ["#form-summary", form],
    )
    assert above


@dataclass(frozen=True)
class Step:
    """One thing typed: ("fill", selector, text), ("check"/"uncheck", selector) or ("select",
    selector, the option's label). After the refusal the field must show it still."""

    how: str
    selector: str
    value: str = ""


@dataclass(frozen=True)
class Refusal:
    name: str
    page: str  # inside the guild
    form: str  # the form's selector
    steps: tuple[Step, ...]
    fields: tuple[tuple[str, str], ...]  # (the refused field's selector, words of its message)
    forge: str = ""  # a script run before submitting (a choice the page does not offer)


def _refusals(sample: dict[str, str]) -> list[Refusal]:
    hook, season = sample["webhook"], sample["season"]
    s, sf, wf = "#settings-form", "#season-form", "#webhook-form"
    return [
        Refusal("settings", "/settings", s, (
            Step("fill", f"{s} input[name=currency_name]", "gems"),
            Step("fill", f"{s} input[name=currency_singular]", "gem"),
            Step("fill", f"{s} input[name=max_change]", "0"),
            Step("fill", f"{s} input[name=daily_cap]", "-5"),
            Step("check", f"{s} input[name=allow_negative]"),
            Step("uncheck", f"{s} input[name=dm_notifications]"),
            Step("check", "#settings-admins label:has-text('Kept Role') input"),
            Step("fill", f"{s} input[name=time_zone]", "Europe/Lisbon"),
            Step("uncheck", f"{s} input[name=counted_sources][value=achievement]"),
        ), ((f"{s} input[name=max_change]", "above zero"), (f"{s} input[name=daily_cap]", "daily cap"))),
        Refusal("season-start", "/seasons", sf, (
            Step("fill", f"{sf} input[name=name]", "Kept “cup” <b>"),
            Step("fill", f"{sf} input[name=starts_at]", "2099-03-10T10:00"),
            Step("fill", f"{sf} input[name=ends_at]", "2099-03-01T10:00"),
            Step("fill", f"{sf} input[name=prize_places]", "3"),
            Step("fill", f"{sf} input[name=prize_points]", "150"),
            Step("select", f"{sf} select[name=prize_role_id]", "Kept Role"),
            Step("check", f"{sf} input[name=reset_balances]"),
            Step("select", f"{sf} select[name=post_channel_id]", "#kept-results"),
        ), ((f"{sf} input[name=ends_at]", "end after it starts"),)),
        Refusal("season-zone", "/seasons", "#zone-form", (
            Step("fill", "#zone-form input[name=time_zone]", "Moon/Tranquility"),
        ), (("#zone-form input[name=time_zone]", "not a time zone"),)),
        Refusal("season-rename", f"/seasons/{season}", "#rename-form", (
            Step("fill", "#rename-form input[name=name]", sample["other_name"].upper()),
        ), (("#rename-form input[name=name]", "already a season called"),)),
        Refusal("webhook-add", "/webhooks", wf, (
            Step("fill", f"{wf} input[name=url]", "http://example.org/kept"),
            Step("fill", f"{wf} input[name=description]", "kept “hook” <i>"),
            Step("uncheck", f"{wf} input[name=event][value='entry.created']"),
            Step("check", f"{wf} input[name=event][value='purchase.created']"),
        ), ((f"{wf} input[name=url]", "https://"),)),
        Refusal("webhook-edit", f"/webhooks/{hook}", "#webhook-edit", (
            Step("fill", "#webhook-edit input[name=url]", "https://10.0.0.1/kept"),
            Step("fill", "#webhook-edit input[name=description]", "kept edit"),
            Step("check", "#webhook-edit input[name=event][value='entry.reverted']"),
        ), (("#webhook-edit input[name=url]", "private address"),)),
        Refusal("webhook-delete", f"/webhooks/{hook}", "#webhook-delete", (),
                (("#webhook-delete input[name=confirm]", "Yes, delete it"),)),
        Refusal("preferences", "/preferences", "#preferences-form", (),
                (("#preferences-form select[name=time_zone]", "not a time zone"),),
                forge="() => { const s = document.querySelector('#preferences-form select[name=time_zone]'); "
                      "s.add(new Option('Mars/Olympus', 'Mars/Olympus')); s.value = 'Mars/Olympus'; }"),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def sample(site) -> dict[str, str]:
    """A role and a channel in Discord (the stand-in), two scheduled seasons and a webhook."""
    from pointsbot.community import seasons, webhooks
    from pointsbot_local.discord_standin_rest import state as discord_state

    discord_state.add_role(str(GUILD_A), "Kept Role", position=3)
    discord_state.add_channel(str(GUILD_A), "kept-results", position=1)
    start = datetime.now(UTC) + timedelta(days=400)

    def start_one(conn, n: int):
        return seasons.start_season(conn, GUILD_A, name=f"Refused cup {n}", starts_at=start + timedelta(days=40 * n),
                                    ends_at=start + timedelta(days=40 * n + 30), actor_id=None, actor_name="t")  # fmt: skip

    made = [site.db.run(start_one, n) for n in range(2)]
    hook, _ = site.db.run(lambda conn: webhooks.create_webhook(
        conn, guild_id=GUILD_A, url="https://hooks.example.org/in", events=["entry.created"], actor_id=None,
        actor_name="t", resolve=lambda host, port: ["93.184.216.34"]))  # fmt: skip
    return {"season": str(made[0].id), "other_season": str(made[1].id), "other_name": made[1].name,
            "webhook": str(hook.id)}  # fmt: skip


@pytest.fixture
def page_at(site, browser, request):
    context = browser.new_context(viewport={"width": request.param, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in_local(page, site)
    yield page
    context.close()


NAMES = ("settings", "season-start", "season-zone", "season-rename", "webhook-add", "webhook-edit",
         "webhook-delete", "preferences")  # fmt: skip


@pytest.mark.parametrize("page_at", WIDTHS, indirect=True)
@pytest.mark.parametrize("name", NAMES)
def test_a_refused_form_keeps_what_was_typed_with_the_message_next_to_its_field(site, sample, page_at, name):
    page = page_at
    width = page.viewport_size["width"]
    case = next(r for r in _refusals(sample) if r.name == name)
    # Given the form's page, and the database as it is
    page.goto(site.admin(G + case.page))
    before = every_row(site)
    # When the admin types, with one value the site refuses, and submits
    act: dict[str, Callable] = {
        "fill": lambda s, v: page.fill(s, v), "check": lambda s, v: page.check(s),
        "uncheck": lambda s, v: page.uncheck(s), "select": lambda s, v: page.select_option(s, label=v),
    }  # fmt: skip
    for step in case.steps:
        act[step.how](step.selector, step.value)
    if case.forge:
        page.evaluate(case.forge)
    with page.expect_navigation() as sent:
        page.click(f"{case.form} button[type=submit]")
    shot(page, f"refused-{name}-{width}")
    # Then the page is back (422), every field as typed
    assert sent.value is not None and sent.value.status == 422
    for step in case.steps:
        if step.how == "fill":
            assert page.input_value(step.selector) == step.value, step
        elif step.how in ("check", "uncheck"):
            assert page.is_checked(step.selector) == (step.how == "check"), step
        else:
            assert page.locator(f"{step.selector} option:checked").inner_text() == step.value, step
    # And each message is next to its field, in words, the keyboard on the first
    ids = []
    for selector, words in case.fields:
        message = _message_next_to(page, selector)
        assert words.lower() in message.lower(), message
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", message) and "{" not in message, (
            message
        )  # no internal name, JSON
        ids.append(page.locator(selector).get_attribute("aria-describedby"))
    assert page.evaluate("document.activeElement.getAttribute('aria-describedby')") == ids[0]
    # And the summary at the top says so, linked to each message
    _summary_links_to(page, ids, case.form)
    # And nothing was written; the page fits the screen
    after = every_row(site)
    assert {t for t in before if before[t] != after.get(t)} == set()
    assert _overflow(page) <= 0
