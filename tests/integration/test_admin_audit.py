"""The audit log as an admin reads it (issue 12, item 5): the filter lists the actions the
guild's log holds (a loose index scan, checked by EXPLAIN ANALYZE), a filtered page is keyset
paged, and before/after are shown as "field: old → new" in words, never JSON."""

from __future__ import annotations

import json
import re

import pytest
from _admin_browser import Browser, admin_site_database

from pointsbot.admin import monitor
from pointsbot.platform import runtime

pytestmark = pytest.mark.integration
GUILD = 772000000000000001
OTHER = 772000000000000002
ADMIN_NAME = "audit-admin"
ADMIN_PASSWORD = "audit admin's password"
API_CALLS = 20_000  # one action with many rows (an API key's every use is audited)


@pytest.fixture(scope="module")
def site(database_url):
    db = admin_site_database(database_url, GUILD, (ADMIN_NAME, ADMIN_PASSWORD))

    def seed(conn):
        conn.execute(
            "INSERT INTO admin_audit (guild_id, actor_name, action, target, after) "
            "SELECT %s, 'api:site', 'api.balance', 'member:1', '{\"status\": 200}' FROM generate_series(1, %s)",
            (GUILD, API_CALLS),
        )
        conn.execute(
            "INSERT INTO admin_audit (guild_id, actor_name, action, target, before, after) VALUES "
            "(%s, 'local:x', 'guild.settings', 'guild:1', %s, %s), (%s, 'local:x', 'member.edit', 'member:5', NULL, NULL),"
            "(%s, 'local:y', 'reward.create', 'reward:1', NULL, NULL)",
            (GUILD, json.dumps({"max_change": 1000, "transfers_enabled": True, "currency_name": "points"}),
             json.dumps({"max_change": 500, "transfers_enabled": False, "currency_name": "points"}),
             GUILD, OTHER),
        )  # fmt: skip
        conn.execute("ANALYZE admin_audit")

    db.run(seed)
    yield db
    runtime.reset()


@pytest.fixture
def admin(site, monkeypatch) -> Browser:
    monkeypatch.delenv("ADMIN_BASE_URL", raising=False)
    browser = Browser()
    assert browser.sign_in(ADMIN_NAME, ADMIN_PASSWORD)["statusCode"] == 303
    return browser


def _scanned(node: dict) -> int:
    """Rows the plan's scans of admin_audit produced, over all their loops."""
    own = 0
    if node.get("Relation Name") == "admin_audit" or "admin_audit" in str(node.get("Index Name", "")):
        own = int(node["Actual Rows"]) * int(node["Actual Loops"])
    return own + sum(_scanned(child) for child in node.get("Plans", []))


def test_the_action_list_is_one_index_probe_per_action_however_many_rows(site):
    # Given a guild whose log has 20,000 rows of one action and a few of others
    def explain(conn):
        return conn.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + monitor.AUDIT_ACTIONS, {"g": GUILD}
        ).fetchone()[0]

    plan = site.run(explain)[0]["Plan"]
    text = json.dumps(plan)
    # Then the list reads the (guild, action) index, never the table, and touches a row per action
    assert "admin_audit_guild_action_idx" in text and "Seq Scan" not in text
    assert _scanned(plan) <= 2 * 4
    # And it is the guild's own actions, in order
    assert site.run(monitor.audit_actions, GUILD) == ["api.balance", "guild.settings", "member.edit"]


def test_a_filtered_page_is_a_range_of_the_action_index(site):
    def explain(conn):
        return conn.execute(
            "EXPLAIN (FORMAT JSON) SELECT id FROM admin_audit WHERE guild_id = %(g)s AND action = %(a)s "
            "AND id < %(b)s ORDER BY id DESC LIMIT 51",
            {"g": GUILD, "a": "guild.settings", "b": 10**12},
        ).fetchone()[0]

    assert "admin_audit_guild_action_idx" in json.dumps(site.run(explain))


def test_the_audit_page_filters_from_a_list_and_shows_changes_in_words(admin):
    # When the admin opens the audit log
    body = admin.request("GET", f"/admin/g/{GUILD}/audit")["body"]
    # Then the filter is a list of the actions there are, by their names
    select = body.split('<select name="action">', 1)[1].split("</select>", 1)[0]
    assert '<option value="guild.settings">Settings changed</option>' in select
    assert "reward.create" not in select  # another guild's
    # When they pick "Settings changed"
    result = admin.request("GET", f"/admin/g/{GUILD}/audit?action=guild.settings")
    table = result["body"].split('id="audit-table"', 1)[1].split("</table>", 1)[0]
    # Then only that action is listed, and its changes are lines of words, no JSON
    assert table.count("<tr>") == 2  # the head and the one entry
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", table))
    assert "Largest single change: 1,000 → 500" in text
    assert "Members may give points: yes" in text and "no" in text
    assert "Currency name" not in text  # unchanged: not listed
    assert "{" not in text and "max_change" not in text and "transfers_enabled" not in text


def test_keyset_pages_of_one_action_lead_on_without_repeats(admin):
    first = admin.request("GET", f"/admin/g/{GUILD}/audit?action=api.balance")["body"]
    older = re.search(r'href="(/admin/g/\d+/audit\?before=\d+&amp;action=api.balance)"', first)
    assert older
    second = admin.request("GET", older.group(1).replace("&amp;", "&"))["body"]
    ids = lambda body: re.findall(r"<tr>", body)  # noqa: E731
    assert len(ids(first)) == len(ids(second)) == monitor.PAGE + 1
