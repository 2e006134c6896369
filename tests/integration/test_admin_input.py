"""Hostile input to the admin site's handler: redirect targets with control characters,
CSRF tokens beyond ASCII, huge page numbers, text Postgres cannot store.

In-process requests (tests/integration/_admin_browser.py), so each test sees exactly the
status, headers and cookies the Lambda handler returns."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import urlencode

import pytest
from _admin_browser import Browser, admin_site_database

from admin_site.app import ROUTES
from pointsbot.admin import sessions
from pointsbot.platform import runtime

pytestmark = pytest.mark.integration
GUILD = 770000000000000001
ADMIN_NAME = "input-admin"
ADMIN_PASSWORD = "input admin's password"
_SAMPLE = {"guild_id": str(GUILD), "user_id": "780000000000000003", "batch_id": "1", "submission_id": "1",
           "decision": "approve", "achievement_id": "1", "name": "site.css", "threshold_id": "1",
           "change_id": "1", "reward_id": "1", "purchase_id": "1", "key_id": "1", "webhook_id": "1", "delivery_id": "1",
           "season_id": "1"}  # fmt: skip


def _fill(path: str) -> str:
    return "/admin" + re.sub(r"<(\w+)>", lambda m: _SAMPLE[m.group(1)], path)


@pytest.fixture(scope="module")
def site(database_url):
    """The admin handler on this module's database, with a local admin of GUILD."""
    db = admin_site_database(database_url, GUILD, (ADMIN_NAME, ADMIN_PASSWORD))
    yield db
    runtime.reset()


@pytest.fixture
def admin(site, monkeypatch) -> Browser:
    monkeypatch.delenv("ADMIN_BASE_URL", raising=False)
    browser = Browser()
    assert browser.sign_in(ADMIN_NAME, ADMIN_PASSWORD)["statusCode"] == 303
    return browser


def _all_header_text(result: dict) -> str:
    return "\n".join([f"{k}: {v}" for k, v in result["headers"].items()] + list(result.get("cookies", [])))


# -- 1. redirect targets ---------------------------------------------------------------------
INJECTIONS = ["/admin/%0D%0ASet-Cookie:%20planted=1", "/admin/%0ASet-Cookie:%20planted=1",
              "/admin/%0DSet-Cookie:%20planted=1", "/admin/g/%00planted", "/admin/%09planted",
              "/admin/%7Fplanted", "/admin/%C2%85planted"]  # fmt: skip


@pytest.mark.parametrize("target", INJECTIONS)
def test_a_signed_in_admin_is_not_redirected_to_a_target_with_control_characters(admin, target):
    # Given a signed-in admin; When they open the sign-in page with a poisoned next=
    result = admin.request("GET", f"/admin/login?next={target}")
    # Then they go to the site's home, and no header carries what the link planted
    assert result["statusCode"] == 303
    assert result["headers"]["Location"] == "/admin/"
    assert "planted" not in _all_header_text(result)


@pytest.mark.parametrize(
    "target", ["/admin/\r\nSet-Cookie: planted=1", "/admin/\nplanted", "/admin/\x00planted"]
)
def test_signing_in_with_a_poisoned_next_lands_on_the_home_page(site, monkeypatch, target):
    monkeypatch.delenv("ADMIN_BASE_URL", raising=False)
    result = Browser("198.51.100.31").sign_in(ADMIN_NAME, ADMIN_PASSWORD, next=target)
    assert result["statusCode"] == 303
    assert result["headers"]["Location"] == "/admin/"
    assert "planted" not in _all_header_text(result)


@pytest.mark.parametrize(
    "target", ["/admin/..%2f..%2fdiscord-api/_inspect", "/admin/..%252f..%252fdiscord-api/_inspect",
               "/admin/%252e%252e/%252e%252e/discord-api/_inspect", "/admin/../../discord-api/_inspect"],
)  # fmt: skip
def test_a_next_with_dot_segments_does_not_leave_the_site(admin, site, monkeypatch, target):
    # Signed in (GET /login) and signing in (POST /login): both land on the site's home
    assert admin.request("GET", f"/admin/login?next={target}")["headers"]["Location"] == "/admin/"
    monkeypatch.delenv("ADMIN_BASE_URL", raising=False)
    decoded = target.replace("%252", "%2").replace("%2f", "/")
    result = Browser("198.51.100.34").sign_in(ADMIN_NAME, ADMIN_PASSWORD, next=decoded)
    assert result["statusCode"] == 303 and result["headers"]["Location"] == "/admin/"


def test_a_target_beyond_ascii_is_followed_percent_encoded(admin):
    result = admin.request("GET", f"/admin/login?next=/admin/g/{GUILD}/members%3Fq%3DJos%C3%A9")
    assert result["headers"]["Location"] == f"/admin/g/{GUILD}/members?q=Jos%C3%A9"


# -- 5. CSRF tokens ---------------------------------------------------------------------------
POST_ROUTES = [r for r in ROUTES if r.method == "POST"]


def test_the_post_routes_walked_are_the_apps():
    assert len(POST_ROUTES) >= 20 and {"/login", "/g/<guild_id>/points"} <= {r.path for r in POST_ROUTES}


@pytest.mark.parametrize("route", POST_ROUTES, ids=lambda r: r.path)
def test_a_csrf_token_beyond_ascii_is_a_403_on_every_post_route(admin, site, route):
    # Given a signed-in admin (and so a session for the public forms too) and its real token
    real = admin.csrf(f"/admin/g/{GUILD}/points")
    before = site.run(lambda conn: conn.execute(
        "SELECT (SELECT count(*) FROM transactions), (SELECT count(*) FROM admin_audit),"
        " (SELECT count(*) FROM direct_messages), (SELECT count(*) FROM members)").fetchone())  # fmt: skip
    for token in ("é", real[:-1] + "é", "🔑" * len(real), real + "\u00a0", real.upper() + "x"):
        # When a form comes with a token that is not the session's (beyond ASCII or not)
        form = {"csrf_token": token, "member": "780000000000000003", "amount": "5", "reason": "x",
                "operation": "award", "form_token": "t", "name": ADMIN_NAME, "password": ADMIN_PASSWORD}  # fmt: skip
        result = admin.request("POST", _fill(route.path), form)
        # Then it is refused as not from this site: a 403, never a 500
        assert result["statusCode"] == 403, (token, result["body"][:300])
        assert "did not come from this site" in result["body"]
    after = site.run(lambda conn: conn.execute(
        "SELECT (SELECT count(*) FROM transactions), (SELECT count(*) FROM admin_audit),"
        " (SELECT count(*) FROM direct_messages), (SELECT count(*) FROM members)").fetchone())  # fmt: skip
    assert after == before


@pytest.mark.parametrize("returned", ["état-inconnu", "state-of-this-sessioN", ""])
def test_the_oauth_callback_compares_the_state_in_constant_time_and_refuses_a_wrong_one(
    site, monkeypatch, returned
):
    # Given a browser whose session started a Discord sign-in, and a spy on the comparison
    monkeypatch.delenv("ADMIN_BASE_URL", raising=False)
    browser = Browser("198.51.100.32")
    browser.request("GET", "/admin/login")
    site.run(sessions.set_oauth_state, sessions.Session(browser.cookie, "", None), "state-of-this-session")
    compared = []
    real = sessions.hmac.compare_digest
    monkeypatch.setattr(sessions.hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    # When Discord's callback comes back with another state
    result = browser.request("GET", f"/admin/oauth/callback?{urlencode({'state': returned, 'code': 'c'})}")
    # Then it is refused (403, not a 500), by a constant-time comparison of bytes
    assert result["statusCode"] == 403 and "not from this browser" in result["body"]
    assert returned == "" or compared == [(b"state-of-this-session", returned.encode())]


# -- 6. page numbers ---------------------------------------------------------------------------
HUGE_PAGES = ["4611686018427387904", "9223372036854775808", "9" * 5000, "-4611686018427387904", "0", "100001"]
MEMBER = 790000000000000001


@pytest.fixture(scope="module")
def paged_data(site):
    """A member with history and a pending email, and an achievement they hold."""
    from pointsbot import ledger
    from pointsbot.community import achievements, emails, members

    site.run(members.remember, GUILD, MEMBER, "paged", "Paged Member")
    for n in range(3):
        site.run(lambda conn, k=n: ledger.award(conn, guild_id=GUILD, user_id=MEMBER, amount=5, reason="paging",
                 actor_id=None, actor_name="local:input-admin", source="admin_site", idempotency_key=f"paged-{k}"))  # fmt: skip
    site.run(emails.submit, GUILD, MEMBER, "paged@example.com")
    definition = site.run(lambda conn: achievements.create_definition(conn, GUILD, name="Paged", criterion="balance_at_least",
                                                                        threshold=1, bonus_points=0, active=True))  # fmt: skip
    site.run(lambda conn: conn.execute(
        "INSERT INTO member_achievements (guild_id, user_id, achievement_id) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (GUILD, MEMBER, definition.id)))  # fmt: skip
    return definition.id


def _paged_pages(achievement_id: int) -> list[str]:
    return [f"/admin/g/{GUILD}/members", f"/admin/g/{GUILD}/members/{MEMBER}", f"/admin/g/{GUILD}/emails",
            f"/admin/g/{GUILD}/achievements/{achievement_id}", f"/admin/g/{GUILD}/leaderboard",
            f"/admin/leaderboard/{GUILD}"]  # fmt: skip


@pytest.mark.parametrize("page", HUGE_PAGES, ids=lambda p: p[:24])
def test_every_paged_admin_page_clamps_the_page_number(admin, paged_data, public_board, page):
    # Given every admin page that takes ?page=
    for path in _paged_pages(paged_data):
        # When it is asked for a page far beyond bigint (or below 1)
        result = admin.request("GET", f"{path}?page={page}")
        # Then it answers with a page, not a 500
        assert result["statusCode"] == 200, (path, result["body"][:300])
        assert "Something went wrong" not in result["body"]


def test_a_page_that_is_not_a_number_is_a_plain_refusal(admin, paged_data, public_board):
    for path in _paged_pages(paged_data):
        result = admin.request("GET", f"{path}?page=1e9")
        assert result["statusCode"] in (200, 400), path
        assert "The page must be a whole number." in result["body"]


@pytest.mark.parametrize(
    "key", ["garbage", "1:", "5:x", "99999999999999999999:1", "1:99999999999999999999999"]
)
@pytest.mark.parametrize("which", ["after", "before"])
def test_a_member_search_page_link_the_site_did_not_write_is_a_plain_message(admin, paged_data, key, which):
    result = admin.request("GET", f"/admin/g/{GUILD}/members?page=2&{which}={key}")
    assert result["statusCode"] == 200 and "Something went wrong" not in result["body"]
    assert "This page link is not one the site wrote; search again from the form." in result["body"]


def test_the_member_search_next_link_carries_the_keyset_and_leads_on(admin, paged_data):
    from pointsbot.community import members

    first = admin.request("GET", f"/admin/g/{GUILD}/members")["body"]
    balance = members.parse_after(f"15:{MEMBER}")
    result = admin.request("GET", f"/admin/g/{GUILD}/members?page=2&after={balance[0]}:{balance[1]}")
    assert result["statusCode"] == 200 and str(MEMBER) in first
    assert str(MEMBER) not in result["body"].split('id="member-results"', 1)[-1].split("</table>", 1)[0]


@pytest.fixture
def public_board(site, paged_data):
    """GUILD's public leaderboard switched on for the test."""
    from pointsbot.ledger import guilds

    site.run(guilds.update_guild_settings, GUILD, {"public_leaderboard": True})
    yield
    site.run(guilds.update_guild_settings, GUILD, {"public_leaderboard": False})


LEADERBOARD_QUERIES = ["period=%0D%0Aplanted", "period=week%00", "period=season:99999999999999999999",
                       "period=week:0000-01-01", "period=" + "x" * 3000, "after=garbage&page=2",
                       "before=1:99999999999999999999999&page=2", "after=-99999999999999:1&page=2",
                       "page=99999999999999999999999999"]  # fmt: skip


@pytest.mark.parametrize("query", LEADERBOARD_QUERIES, ids=lambda q: q[:30])
def test_leaderboard_pages_answer_hostile_queries_plainly(admin, public_board, query):
    # Given the admin leaderboard and the public one; When a crafted query comes
    for path in (f"/admin/g/{GUILD}/leaderboard", f"/admin/leaderboard/{GUILD}"):
        result = admin.request("GET", f"{path}?{query}")
        # Then a page or a plain refusal, never a 500, and nothing planted in a header
        assert result["statusCode"] in (200, 400, 404), (path, query, result["body"][:300])
        assert "Something went wrong" not in result["body"] and "planted" not in _all_header_text(result)


# -- 7. text Postgres cannot store ------------------------------------------------------------
def _counts(site) -> tuple:
    return site.run(lambda conn: conn.execute(
        "SELECT (SELECT count(*) FROM transactions), (SELECT count(*) FROM direct_messages),"
        " (SELECT count(*) FROM achievements), (SELECT count(*) FROM admin_bulk_batches),"
        " (SELECT count(*) FROM email_submissions WHERE status <> 'pending'),"
        " (SELECT string_agg(coalesce(display_name, '') || coalesce(notes, '') || coalesce(email, ''), ',') FROM members),"
        " (SELECT string_agg(settings::text, ',') FROM guilds)").fetchone())  # fmt: skip


def _nul_form(csrf: str, text: str) -> dict[str, str]:
    """Every field the site's forms read, ids and numbers valid, every free text poisoned."""
    return {"csrf_token": csrf, "member": str(MEMBER), "user_id": str(MEMBER), "to": str(MEMBER),
            "recipient": str(MEMBER), "amount": "5", "operation": "award", "form_token": "nul-form",
            "reason": text, "csv_text": f"{MEMBER},5,{text}", "content": text, "audience": "one",
            "display_name": text, "email": f"a{text}@example.com", "notes": text, "note": text,
            "name": text, "description": text, "criterion": "balance_at_least", "threshold": "1",
            "bonus_points": "0", "active": "on", "currency_name": text, "max_change": "1000",
            "daily_cap": "0", "confirm": str(MEMBER) + text, "entry_id": "1", "q": text, "password": text}  # fmt: skip


@pytest.mark.parametrize("route", [r for r in POST_ROUTES if r.path != "/logout"], ids=lambda r: r.path)
def test_text_with_a_nul_in_any_form_field_is_never_a_500_and_changes_nothing(admin, site, paged_data, route):
    # Given a signed-in admin and the data as it is
    csrf = admin.csrf(f"/admin/g/{GUILD}/points")
    before = _counts(site)
    for text in ("x\x00y", "\x00"):
        # When a form arrives with NUL in every free-text field
        result = admin.request("POST", _fill(route.path), _nul_form(csrf, text))
        # Then no 500: a redirect back with the refusal, or a plain page
        assert result["statusCode"] != 500, result["body"][:400]
        assert "Something went wrong" not in result["body"]
    # And nothing of the text was stored anywhere
    assert _counts(site) == before


@pytest.mark.parametrize(
    ("path", "fields", "message"),
    [("/points", {"reason": "thanks\x00"}, "The reason contains a NUL character"),
     ("/dms/preview", {"content": "hello\x00"}, "The message contains a NUL character"),
     ("/dms/send", {"content": "hello\x00"}, "The message contains a NUL character"),
     (f"/members/{MEMBER}", {"notes": "n\x00"}, "contains a NUL character"),
     ("/achievements", {"name": "Nul\x00"}, "contains a NUL character"),
     ("/settings", {"currency_name": "pts\x00"}, "contains a NUL character"),
     ("/emails/{sid}/approve", {"note": "ok\x00"}, "contains a NUL character")],
)  # fmt: skip
def test_a_nul_in_a_form_comes_back_as_a_plain_message(admin, site, paged_data, path, fields, message):
    sid = site.run(lambda conn: conn.execute(
        "SELECT id FROM email_submissions WHERE guild_id = %s AND user_id = %s", (GUILD, MEMBER)).fetchone()[0])  # fmt: skip
    csrf = admin.csrf(f"/admin/g/{GUILD}/points")
    form = {"csrf_token": csrf, "member": str(MEMBER), "to": str(MEMBER), "recipient": str(MEMBER), "amount": "5",
            "operation": "award", "form_token": "nul-plain", "reason": "fine", "content": "fine", "audience": "one",
            "name": "fine", "criterion": "balance_at_least", "threshold": "1", "currency_name": "points",
            "max_change": "1000", "daily_cap": "0", **fields}  # fmt: skip
    result = admin.request("POST", f"/admin/g/{GUILD}" + path.format(sid=sid), form)
    assert result["statusCode"] in (303, 400, 422), result["body"][:300]
    shown = (
        admin.request("GET", result["headers"]["Location"])["body"]
        if result["statusCode"] == 303
        else result["body"]
    )
    assert message in shown and "Remove it and try again." in shown


def test_a_nul_in_a_csv_row_is_that_rows_refusal_in_the_dry_run(admin, paged_data):
    csrf = admin.csrf(f"/admin/g/{GUILD}/points")
    form = {"csrf_token": csrf, "operation": "award", "form_token": "nul-csv",
            "csv_text": f"{MEMBER},5,fine\n{MEMBER + 1},5,bad\x00reason"}  # fmt: skip
    result = admin.request("POST", f"/admin/g/{GUILD}/bulk/preview", form)
    assert result["statusCode"] == 200
    assert "the reason contains a NUL character" in result["body"]


# -- CSV export ---------------------------------------------------------------------------------
FORMULAS = ["=1+1", " =1+1", "\u3000=1+1", "\u00a0@SUM(A1)", "\u200b=1", "\t=1", "\r=1", "\n=1",
            "\uff1dHYPERLINK(\"http://x\")", "\uff0b1", "\uff0d1", "\uff20SUM(A1)", "\ufe66 1", "  -1", "+1", "@x"]  # fmt: skip
PLAIN = ["thanks", "a=b", "5 points", "Zoë", "x-1"]


def test_the_csv_export_defuses_every_formula_start(site, monkeypatch):
    # Given entries whose reason and member name start like a formula in any of its disguises
    from pointsbot import ledger
    from pointsbot.community import members

    monkeypatch.delenv("ADMIN_BASE_URL", raising=False)
    texts = FORMULAS + PLAIN
    for n, text in enumerate(texts):
        user = 790000000000000100 + n
        site.run(members.remember, GUILD, user, None, text)
        site.run(lambda conn, u=user, t=text, k=n: ledger.award(conn, guild_id=GUILD, user_id=u, amount=1, reason=t,
                 actor_id=None, actor_name="local:input-admin", source="admin_site", idempotency_key=f"csv-formula-{k}"))  # fmt: skip
    browser = Browser("198.51.100.33")
    browser.sign_in(ADMIN_NAME, ADMIN_PASSWORD)
    # When the admin exports the ledger
    result = browser.request("GET", f"/admin/g/{GUILD}/transactions.csv")
    assert result["statusCode"] == 200
    rows = {r["user_id"]: r for r in csv.DictReader(io.StringIO(result["body"]))}
    # Then every formula-looking cell starts with a quote, and plain text is left alone
    for n, text in enumerate(texts):
        row = rows[str(790000000000000100 + n)]
        for cell in (row["member"], row["reason"]):
            if text in FORMULAS:
                assert cell.startswith("'"), (text, cell)
            else:
                assert cell == text


# -- seasons ------------------------------------------------------------------------------------
def _season_counts(site) -> tuple:
    return site.run(lambda conn: conn.execute(
        "SELECT (SELECT count(*) FROM seasons), (SELECT count(*) FROM admin_audit),"
        " (SELECT string_agg(settings::text, ',') FROM guilds)").fetchone())  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"name": "Cup\x00"}, "contains a NUL character"),
     ({"name": "x" * 5000}, "1 to 100 characters"),
     ({"ends_at": "9999-99-99T99:99"}, "is not a real date"),
     ({"ends_at": "2026-02-30T10:00"}, "is not a real date"),
     ({"ends_at": "2026-12-01T10:00'; DROP TABLE seasons; --"}, "is not a date I can read"),
     ({"ends_at": ""}, "Give the date the season ends."),
     ({"starts_at": "\x00"}, "is not a date I can read"),
     ({"prize_places": "1e9"}, "whole number"),
     ({"prize_places": "101", "prize_points": "5"}, "from 0 to 100"),
     ({"prize_places": "3", "prize_points": "9" * 40}, "prize points"),
     ({"prize_places": "3", "prize_role_id": "-5"}, "role id"),
     ({"post_channel_id": "general"}, "channel id")],
)  # fmt: skip
def test_hostile_input_to_the_season_form_is_a_plain_message_and_writes_nothing(admin, site, fields, message):
    csrf = admin.csrf(f"/admin/g/{GUILD}/seasons")
    before = _season_counts(site)
    form = {
        "csrf_token": csrf,
        "name": "Hostile cup",
        "starts_at": "",
        "ends_at": "2099-01-01T10:00",
        **fields,
    }
    result = admin.request("POST", f"/admin/g/{GUILD}/seasons", form)
    assert result["statusCode"] == 422, result["body"][:300]  # the page again, the form as typed
    assert message in result["body"] and "Something went wrong" not in result["body"]
    assert _season_counts(site) == before


@pytest.mark.parametrize(
    "zone", ["../../../etc/passwd", "Europe/Berlin\x00", "x" * 5000, "Europe/Bérlin", "posix/../UTC", ""]
)
def test_a_hostile_time_zone_is_a_plain_message_and_writes_nothing(admin, site, zone):
    csrf = admin.csrf(f"/admin/g/{GUILD}/seasons")
    before = _season_counts(site)
    result = admin.request(
        "POST", f"/admin/g/{GUILD}/seasons/time-zone", {"csrf_token": csrf, "time_zone": zone}
    )
    assert result["statusCode"] == 422, result["body"][:300]
    assert "is not a time zone I know" in result["body"]
    assert _season_counts(site) == before


@pytest.mark.parametrize("page", HUGE_PAGES, ids=lambda p: p[:24])
def test_a_past_seasons_standings_clamp_the_page_number(admin, site, paged_data, page):
    from datetime import timedelta

    from pointsbot.community import seasons

    def start(conn):
        found = conn.execute(
            "SELECT id FROM seasons WHERE guild_id = %s AND name = 'Paged season'", (GUILD,)
        ).fetchone()
        if found:
            return found[0]
        now = conn.execute("SELECT now()").fetchone()[0]
        return seasons.start_season(conn, GUILD, name="Paged season", starts_at=None, ends_at=now + timedelta(days=1),
                                    actor_id=None, actor_name="local:input-admin").id  # fmt: skip

    season_id = site.run(start)
    site.run(
        lambda conn: conn.execute(
            "UPDATE seasons SET ends_at = now() WHERE id = %s AND end_step = 0", (season_id,)
        )
    )
    seasons.run_end(site, season_id, client=object())
    result = admin.request("GET", f"/admin/g/{GUILD}/seasons/{season_id}?page={page}")
    assert result["statusCode"] == 200, result["body"][:300]
    assert "Final standings" in result["body"] and "Something went wrong" not in result["body"]
