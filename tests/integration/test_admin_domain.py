"""The admin site's domain logic on a real Postgres: sessions, sign-in, members, bulk, monitor,
dashboard figures. The pages themselves are tested in a browser (tests/e2e/admin)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pointsbot import ledger
from pointsbot.admin import auth, bulk, monitor, sessions, stats
from pointsbot.admin.sessions import Identity
from pointsbot.community import members
from pointsbot.platform.errors import InvalidInput

pytestmark = pytest.mark.integration
GUILD = 880_000_000_000_000_001
OTHER = 880_000_000_000_000_002
ADMIN = Identity("local", "tester", (GUILD,))


@pytest.fixture(scope="module", autouse=True)
def guilds(db):
    db.run(lambda conn: conn.execute(
        "INSERT INTO guilds (guild_id, name) VALUES (%s, 'Main'), (%s, 'Other')", (GUILD, OTHER)))  # fmt: skip


def _award(db, settings, user, amount, token, **extra):
    return db.run(bulk.change_points, ADMIN, guild_id=GUILD, user_id=user, operation="award", amount=amount,
                  reason="test", silent=True, form_token=token, settings=settings, **extra)  # fmt: skip


# -- sessions ------------------------------------------------------------------------------------
def test_session_idle_and_absolute_timeouts(db, sql):
    # Given a signed-in session
    session = db.run(sessions.create, identity=ADMIN, max_age=timedelta(hours=1))
    assert db.run(sessions.load, session.token, idle=timedelta(minutes=30)).identity == ADMIN
    # When it has been idle longer than allowed, it is gone
    sql("UPDATE admin_sessions SET last_seen_at = now() - interval '31 minutes'")
    assert db.run(sessions.load, session.token, idle=timedelta(minutes=30)) is None
    # And past its absolute lifetime it is gone however active
    other = db.run(sessions.create, identity=ADMIN, max_age=timedelta(hours=1))
    sql("UPDATE admin_sessions SET expires_at = now() - interval '1 second', last_seen_at = now()")
    assert db.run(sessions.load, other.token, idle=timedelta(minutes=30)) is None


def test_sign_in_replaces_the_anonymous_session_and_stores_no_token(db, sql):
    anonymous = db.run(sessions.create, identity=None, max_age=sessions.ANONYMOUS_LIFETIME)
    signed = db.run(sessions.sign_in, anonymous.token, ADMIN, max_age=timedelta(hours=1))
    assert signed.token != anonymous.token and signed.csrf_token != anonymous.csrf_token
    assert db.run(sessions.load, anonymous.token, idle=timedelta(hours=1)) is None
    stored = [r[0] for r in sql("SELECT token_hash FROM admin_sessions")]
    assert signed.token not in stored and all(len(h) == 64 for h in stored)
    assert (
        signed.csrf_ok(signed.csrf_token)
        and not signed.csrf_ok("")
        and not signed.csrf_ok(anonymous.csrf_token)
    )


# -- local accounts and Discord grants -------------------------------------------------------
def test_local_account_password_is_scrypt_and_checked(db, sql):
    db.run(auth.create_account, "Keeper", "a long enough password", [GUILD])
    stored = sql("SELECT password_hash FROM admin_accounts WHERE name = 'Keeper'")[0][0]
    assert stored.startswith("scrypt$") and "a long enough password" not in stored
    identity = db.run(auth.authenticate_local, "keeper", "a long enough password")
    assert identity.guild_ids == (GUILD,) and identity.actor_name == "local:Keeper"
    with pytest.raises(auth.SignInRefused):
        db.run(auth.authenticate_local, "keeper", "a long enough passworD")
    with pytest.raises(auth.SignInRefused):
        db.run(auth.authenticate_local, "nobody", "a long enough password")
    with pytest.raises(InvalidInput):
        db.run(auth.create_account, "short", "tooshort", [GUILD])
    db.run(auth.set_disabled, "Keeper", True)
    with pytest.raises(auth.SignInRefused):
        db.run(auth.authenticate_local, "keeper", "a long enough password")


def test_discord_grants_need_rights_and_a_guild_the_bot_serves(db):
    grants = [
        auth.DiscordGuildGrant(GUILD, "Main", owner=False, permissions=auth.MANAGE_GUILD),
        auth.DiscordGuildGrant(OTHER, "Other", owner=False, permissions=1 << 11),  # SEND_MESSAGES only
        auth.DiscordGuildGrant(990_000_000_000_000_009, "Not served", owner=True, permissions=0),
    ]
    identity = db.run(auth.discord_identity, 42, "Dora", grants)
    assert identity.guild_ids == (GUILD,) and identity.user_id == 42
    owner = db.run(auth.discord_identity, 43, "Olga", [auth.DiscordGuildGrant(OTHER, "Other", True, 0)])
    assert owner.guild_ids == (OTHER,)
    admin = db.run(
        auth.discord_identity, 44, "Ada", [auth.DiscordGuildGrant(OTHER, "Other", False, auth.ADMINISTRATOR)]
    )
    assert admin.guild_ids == (OTHER,)
    with pytest.raises(auth.OAuthFailed):
        db.run(auth.discord_identity, 45, "Nobody", grants[1:2])


# -- points and bulk ------------------------------------------------------------------------
def test_single_change_is_idempotent_on_the_form_token_and_audited(db, settings, sql):
    first = _award(db, settings, 1001, 30, "form-a")
    again = _award(db, settings, 1001, 30, "form-a")
    assert again.result.replayed and db.run(ledger.balance, GUILD, 1001) == 30
    audits = sql("SELECT action, before, after FROM admin_audit WHERE target = 'member:1001'")
    assert len(audits) == 1
    assert audits[0][0] == "points.award" and audits[0][1] == {"balance": 0}
    assert audits[0][2]["entry_id"] == first.result.entry.id


def test_bulk_csv_parse_check_and_apply_once(db, settings, sql):
    # Given a CSV with a header, a bad id, a bad amount, a duplicate and a missing reason
    rows = bulk.parse_csv(
        'user_id,amount,reason\n2001,10,one\nabc,5,x\n2002,ten,x\n2001,3,dup\n2003,4,\n2004,7,"a, b"\n'
    )
    preview = db.run(bulk.check_rows, GUILD, "award", rows, default_reason="", settings=settings)
    errors = {r.line: r.error for r in preview.invalid}
    assert set(errors) == {3, 4, 5, 6}
    assert "Discord id" in errors[3] and "whole number" in errors[4] and "already in the batch" in errors[5]
    assert "reason is required" in errors[6]
    assert [r.user_id for r in preview.valid] == [2001, 2004] and preview.valid[1].reason == "a, b"
    assert sql("SELECT count(*) FROM transactions WHERE user_id IN (2001, 2004)") == [(0,)]  # a dry run
    # When it is applied in small chunks, twice with the same form token
    batch = db.run(bulk.start_batch, ADMIN, GUILD, preview, "bulk-form-1")
    done = bulk.continue_batch(db.run, GUILD, batch.id, chunk=1, settings=settings)
    assert done.finished and (done.done, done.failed) == (2, 0)
    again = db.run(bulk.start_batch, ADMIN, GUILD, preview, "bulk-form-1")
    assert again.id == batch.id
    bulk.continue_batch(db.run, GUILD, again.id, settings=settings)
    # Then each row was applied exactly once
    assert db.run(ledger.balance, GUILD, 2001) == 10 and db.run(ledger.balance, GUILD, 2004) == 7
    assert sql("SELECT count(*) FROM transactions WHERE user_id IN (2001, 2004)") == [(2,)]


def test_bulk_rows_refused_while_applying_are_reported_not_fatal(db, settings):
    _award(db, settings, 2101, 5, "seed-2101")
    preview = db.run(
        bulk.check_rows, GUILD, "deduct", bulk.parse_csv("2101,5,a\n2102,1,b\n"), settings=settings
    )
    assert [r.ok for r in preview.rows] == [True, False]  # 2102 has nothing to remove
    # The balance moves between the dry run and the apply: the row is refused, the batch goes on
    _award(db, settings, 2101, 1, "seed-2101b")
    db.run(lambda conn: ledger.deduct(conn, guild_id=GUILD, user_id=2101, amount=6, reason="x", actor_id=None, actor_name="local:drain",
                                      source="admin_site", idempotency_key="drain", settings=settings))  # fmt: skip
    batch = db.run(bulk.start_batch, ADMIN, GUILD, preview, "bulk-form-2")
    done = bulk.continue_batch(db.run, GUILD, batch.id, settings=settings)
    assert done.finished and (done.done, done.failed) == (0, 1)
    assert "Not enough" in done.errors[0]["error"]


# -- members ------------------------------------------------------------------------------------
def test_search_by_prefix_id_email_balance_and_status(db, settings):
    def setup(conn):
        members.remember(conn, GUILD, 3001, "zed_one", "Zed <One>")
        members.remember(conn, GUILD, 3002, "zed_two", "Zed Two")
        members.remember(conn, OTHER, 3003, "zed_other", "Zed Other")  # another guild: never listed
        members.update_profile(conn, GUILD, 3002, {"email": "zed@example.org"})

    db.run(setup)
    _award(db, settings, 3001, 50, "s-3001")
    found = db.run(members.search, GUILD, members.MemberQuery(text="zed"))
    assert [r.user_id for r in found.rows] == [3001, 3002]  # by balance, highest first
    assert [r.user_id for r in db.run(members.search, GUILD, members.MemberQuery(text="ZED_T")).rows] == [
        3002
    ]
    assert [r.user_id for r in db.run(members.search, GUILD, members.MemberQuery(text="3002")).rows] == [3002]
    assert [r.user_id for r in db.run(members.search, GUILD, members.MemberQuery(text="zed@")).rows] == [3002]
    assert db.run(members.search, GUILD, members.MemberQuery(text="z%")).rows == ()  # LIKE wildcards are text
    ranged = db.run(members.search, GUILD, members.MemberQuery(text="zed", min_balance=1, max_balance=50))
    assert [r.user_id for r in ranged.rows] == [3001]
    approved = db.run(members.search, GUILD, members.MemberQuery(text="zed", email_status="approved"))
    assert [r.user_id for r in approved.rows] == [3002]
    with pytest.raises(InvalidInput):
        db.run(members.search, GUILD, members.MemberQuery(email_status="maybe"))


def test_create_edit_export_and_erase_keep_the_ledger(db, settings, sql):
    db.run(members.create, GUILD, 4001, "Newbie")
    with pytest.raises(InvalidInput):
        db.run(members.create, GUILD, 4001)
    before, after = db.run(
        members.update_profile, GUILD, 4001, {"email": " new@example.org ", "notes": "vip"}
    )
    assert before["email"] is None and after["email"] == "new@example.org"
    with pytest.raises(InvalidInput):
        db.run(members.update_profile, GUILD, 4001, {"email": "nope"})
    _award(db, settings, 4001, 12, "e-4001")
    exported = db.run(members.export, GUILD, 4001)
    assert exported["member"]["user_id"] == "4001" and exported["balance"] == 12
    assert exported["transactions"][0]["amount"] == 12 and exported["member"]["notes"] == "vip"
    db.run(members.erase, GUILD, 4001)
    row = sql(
        "SELECT username, display_name, email, notes, erased_at IS NOT NULL FROM members WHERE user_id = 4001"
    )
    assert row == [(None, None, None, "", True)]
    assert db.run(ledger.balance, GUILD, 4001) == 12
    assert sql("SELECT sum(amount) FROM transactions WHERE guild_id = %s AND user_id = 4001", (GUILD,)) == [
        (12,)
    ]
    with pytest.raises(InvalidInput):
        db.run(members.erase, GUILD, 4001)


# -- monitor, CSV, dashboard -----------------------------------------------------------------
def test_monitor_keyset_pages_cover_every_entry_once(db, settings):
    for i in range(23):
        _award(db, settings, 5001, 1 + i, f"m-{i}")
    flt = monitor.TransactionFilter(user_id=5001)
    seen, before = [], None
    while True:
        page = db.run(monitor.transactions_page, GUILD, flt, before, 10)
        seen += [r.entry.id for r in page.rows]
        if page.next_before is None:
            break
        before = page.next_before
    assert len(seen) == 23 and seen == sorted(seen, reverse=True)
    big = db.run(monitor.transactions_page, GUILD, monitor.TransactionFilter(user_id=5001, min_amount=20))
    assert [r.entry.amount for r in big.rows] == [23, 22, 21, 20]
    with pytest.raises(InvalidInput):
        monitor.TransactionFilter.from_form({"kind": "gift"})
    with pytest.raises(InvalidInput):
        monitor.TransactionFilter.from_form({"from": "yesterday"})


def test_csv_export_keeps_ids_as_text_and_defuses_formulas(db, settings):
    db.run(bulk.change_points, ADMIN, guild_id=GUILD, user_id=880_000_000_000_000_777, operation="award", amount=3,
           reason="=HYPERLINK(\"http://x\")", silent=True, form_token="csv-1", settings=settings)  # fmt: skip
    with db.connection() as conn:
        text = "".join(
            monitor.export_csv(conn, GUILD, monitor.TransactionFilter(user_id=880_000_000_000_000_777))
        )
    line = text.splitlines()[1]
    assert ",880000000000000777," in line and "'=HYPERLINK" in line


def test_dashboard_figures_and_daily_series_cache_closed_days(db, settings, sql):
    _award(db, settings, 6001, 100, "d-1")
    db.run(lambda conn: ledger.deduct(conn, guild_id=GUILD, user_id=6001, amount=40, reason="x", actor_id=None, actor_name="local:d",
                                      source="admin_site", idempotency_key="d-2", settings=settings))  # fmt: skip
    figures = db.run(stats.figures, GUILD)
    assert figures.transactions_today == figures.transactions_7d >= 2
    series = db.run(stats.daily_series, GUILD)
    assert len(series) == 30
    today = series[-1]
    assert today.issued >= 100 and today.removed >= 40
    # Closed days are kept; today never is (it is still changing)
    cached = sql(
        "SELECT count(*), max(day) < (now() AT TIME ZONE 'UTC')::date FROM admin_daily_totals WHERE guild_id = %s",
        (GUILD,),
    )
    assert cached == [(29, True)]
    active = sql("SELECT count(DISTINCT user_id) FROM transactions WHERE guild_id = %s AND created_at >= "
                 "date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'", (GUILD,))[0][0]  # fmt: skip
    assert today.active_members == active >= 1 and len(db.run(stats.daily_series, GUILD, 90)) == 90


def test_figures_match_the_exact_totals_while_and_after_days_are_kept(db, settings, sql, monkeypatch):
    # Given a guild with 90 days of history (entries written with past dates, as an import would)
    guild = 880_000_000_000_000_003
    sql("INSERT INTO guilds (guild_id, name) VALUES (%s, 'History')", (guild,))
    for user in (7001, 7002, 7003):
        db.run(members.remember, guild, user)
    op = sql("INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) VALUES (%s, 'hist', 'x', 'award') "
             "RETURNING id", (guild,))[0][0]  # fmt: skip
    sql(
        "INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, source, created_at) "
        "SELECT %s, %s, 7001 + (d %% 3), CASE WHEN d %% 4 = 0 THEN -2 ELSE 5 END, 0, "
        "CASE WHEN d %% 4 = 0 THEN 'deduct' ELSE 'award' END, 'system', now() - make_interval(days => d) "
        "FROM generate_series(1, 90) d",
        (op, guild),
    )
    sql("UPDATE points p SET balance = s.total FROM (SELECT user_id, sum(amount) total FROM transactions "
        "WHERE guild_id = %s GROUP BY user_id) s WHERE p.guild_id = %s AND p.user_id = s.user_id", (guild, guild))  # fmt: skip
    _award_in = lambda user, amount, key: db.run(  # noqa: E731 - a one-line helper
        bulk.change_points, ADMIN.__class__("local", "t", (guild,)), guild_id=guild, user_id=user,
        operation="award", amount=amount, reason="today", silent=True, form_token=key, settings=settings)  # fmt: skip
    _award_in(7001, 11, "today-1")
    exact = sql("SELECT count(*), sum(balance) FROM points WHERE guild_id = %s", (guild,))[0]
    # When the figures are asked for with only 40 days summed per call
    monkeypatch.setattr(stats, "FILL_DAYS_PER_CALL", 40)
    seen = []
    for _ in range(4):
        figures = db.run(stats.figures, guild)
        seen.append((figures.members, figures.points_in_circulation))
    # Then every answer is exact, before and after all days are kept
    assert seen == [exact] * 4
    assert sql("SELECT count(*) FROM admin_daily_totals WHERE guild_id = %s", (guild,))[0][0] >= 90
    # And a change today shows at once
    _award_in(7002, 4, "today-2")
    assert db.run(stats.figures, guild).points_in_circulation == exact[1] + 4
    week = sql("SELECT count(*) FROM transactions WHERE guild_id = %s AND created_at >= "
               "date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '6 days'", (guild,))[0][0]  # fmt: skip
    assert db.run(stats.figures, guild).transactions_7d == week


def test_monitor_date_range_returns_exactly_the_entries_of_those_days(db, sql):
    # Given a guild with two entries per day over the last 6 days (written in time order)
    guild = 880_000_000_000_000_004
    sql("INSERT INTO guilds (guild_id, name) VALUES (%s, 'Dated')", (guild,))
    db.run(members.remember, guild, 8001)
    op = sql("INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) VALUES (%s, 'dated', 'x', "
             "'award') RETURNING id", (guild,))[0][0]  # fmt: skip
    sql(
        "INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, source, created_at) "
        "SELECT %s, %s, 8001, d * 10 + h, 0, 'award', 'system', "
        "date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - make_interval(days => d, hours => -h * 6) "
        "FROM generate_series(6, 1, -1) d, generate_series(1, 2) h ORDER BY d DESC, h",
        (op, guild),
    )
    days = sql("SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date FROM transactions WHERE guild_id = %s "
               "ORDER BY 1", (guild,))  # fmt: skip
    first, last = days[2][0], days[3][0]
    # When the monitor is filtered on two of those days
    flt = monitor.TransactionFilter.from_form({"from": first.isoformat(), "to": last.isoformat()})
    page = db.run(monitor.transactions_page, guild, flt)
    # Then it shows exactly their four entries, newest first
    assert sorted(r.entry.amount for r in page.rows) == [31, 32, 41, 42]
    assert [r.entry.id for r in page.rows] == sorted((r.entry.id for r in page.rows), reverse=True)
    only_first = db.run(monitor.transactions_page, guild, monitor.TransactionFilter(date_from=last))
    assert sorted(r.entry.amount for r in only_first.rows) == [11, 12, 21, 22, 31, 32]


def test_a_large_batch_goes_on_chunk_by_chunk_with_its_progress_stored(db, settings):
    rows = bulk.parse_csv("".join(f"{9000 + i},1,chunked\n" for i in range(5)))
    preview = db.run(bulk.check_rows, GUILD, "award", rows, settings=settings)
    batch = db.run(bulk.start_batch, ADMIN, GUILD, preview, "bulk-form-chunks")
    # With no time budget, each call applies one chunk and reports where it is
    states = []
    while not batch.finished:
        batch = bulk.continue_batch(db.run, GUILD, batch.id, budget_s=0, chunk=2, settings=settings)
        states.append((batch.done, batch.percent, batch.finished))
    assert states == [(2, 40, False), (4, 80, False), (5, 100, True)]
    assert db.run(bulk.get_batch, GUILD, token_or_id=batch.id).done == 5
    assert all(db.run(ledger.balance, GUILD, 9000 + i) == 1 for i in range(5))


def test_failed_dms_figure_is_the_failed_ones_without_a_retry(db, sql):
    # Given failed and sent DMs, some failed ones retried (one of them twice), a retry key that
    # names no DM of this guild, and another guild's failures
    guild, other = 880_000_000_000_000_021, 880_000_000_000_000_022
    sql("INSERT INTO guilds (guild_id, name) VALUES (%s, 'Mail'), (%s, 'Other mail')", (guild, other))
    for g in (guild, other):
        for user in (7101, 7102):
            db.run(members.remember, g, user)
    ids = [
        r[0]
        for r in sql(
            "INSERT INTO direct_messages (guild_id, user_id, content, status) "
            "SELECT g, 7101 + (i %% 2), 'hi', CASE WHEN i %% 3 = 0 THEN 'sent' ELSE 'failed' END "
            "FROM (VALUES (%s::bigint), (%s::bigint)) v(g), generate_series(1, 12) i RETURNING id",
            (guild, other),
        )
    ]
    failed = [
        r[0]
        for r in sql(
            "SELECT id FROM direct_messages WHERE guild_id = %s AND status = 'failed' ORDER BY id", (guild,)
        )
    ]
    assert db.run(monitor.retry_failed_dms, guild, failed[:3], created_by=None) == 3
    assert db.run(monitor.retry_failed_dms, guild, failed[:1], created_by=None) == 0
    sql("INSERT INTO direct_messages (guild_id, user_id, content, status, dedupe_key) VALUES "
        "(%s, 7101, 'x', 'sent', 'retry:not-a-number'), (%s, 7101, 'x', 'sent', %s)",
        (guild, guild, f"retry:{max(ids) + 1000}"))  # fmt: skip
    # Then the figure is exactly the failed ones of the guild with no retry naming them
    naive = sql(
        "SELECT count(*) FROM direct_messages d WHERE d.guild_id = %s AND d.status = 'failed' "
        "AND NOT EXISTS (SELECT 1 FROM direct_messages r WHERE r.guild_id = d.guild_id "
        "AND r.dedupe_key = 'retry:' || d.id)",
        (guild,),
    )[0][0]
    figures = db.run(stats.figures, guild)
    assert figures.failed_dms == naive == len(failed) - 3
    assert figures.queued_dms == 3
