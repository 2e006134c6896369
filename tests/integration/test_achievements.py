"""Achievements on real Postgres: definitions, the check right after a change (paid once, even
when two changes race), the DMs that go with them, and the sweep (exactly who qualifies,
resumable without paying anybody twice)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator

import psycopg
import pytest

from pointsbot.community import achievements
from pointsbot.community import points as ledger
from pointsbot.delivery import outbox
from pointsbot.ledger.guilds import ensure_guild, update_guild_settings
from pointsbot.platform.db import Database
from pointsbot.platform.errors import DomainError, InvalidInput, NotFound

_ids = itertools.count(1)


def new_guild(db: Database, **overrides) -> int:
    guild = 900_000_000_000_000_000 + next(_ids)

    def make(conn: psycopg.Connection) -> None:
        ensure_guild(conn, guild, f"Guild {guild}")
        if overrides:
            update_guild_settings(conn, guild, overrides)

    db.run(make)
    return guild


def award(db: Database, guild: int, user: int, amount: int, settings, **extra) -> ledger.OperationResult:
    extra.setdefault("idempotency_key", f"t-{next(_ids)}")
    extra.setdefault("source", "admin_site")
    extra.setdefault("reason", "test")
    return db.run(
        ledger.award, guild_id=guild, user_id=user, amount=amount, actor_id=1, settings=settings, **extra
    )


def define(db: Database, guild: int, **fields) -> achievements.AchievementDefinition:
    fields.setdefault("name", f"A{next(_ids)}")
    return db.run(achievements.create_definition, guild, **fields)


def one(db: Database, statement: str, params=None):
    return db.fetchone(statement, params)[0]


def assert_ledger_consistent(db: Database, guild: int) -> None:
    bad = db.fetchall(
        """
        SELECT p.user_id FROM points p
        LEFT JOIN (SELECT user_id, sum(amount) s FROM transactions WHERE guild_id = %s GROUP BY user_id) t
          USING (user_id)
        WHERE p.guild_id = %s AND p.balance <> coalesce(t.s, 0)
        """,
        (guild, guild),
    )
    assert bad == []


# -- definitions --------------------------------------------------------------------------
def test_definitions_are_validated_listed_updated_and_deleted(db: Database) -> None:
    guild = new_guild(db)
    rich = define(db, guild, name="Rich", criterion="balance_at_least", threshold=100, bonus_points=10)
    assert rich.criterion_text == "Balance of at least 100"
    old = define(db, guild, name="Veteran", criterion="member_days", window_days=30, description=" long ")
    assert (old.threshold, old.window_days, old.description) == (0, 30, "long")

    with pytest.raises(InvalidInput, match="exists already"):
        define(db, guild, name="Rich", criterion="top_k", threshold=3)
    with pytest.raises(InvalidInput, match="Choose a rule"):
        define(db, guild, criterion="richest")
    with pytest.raises(InvalidInput, match="balance"):
        define(db, guild, criterion="balance_at_least", threshold=0)
    with pytest.raises(InvalidInput, match="days"):
        define(db, guild, criterion="earned_within_days", threshold=5)
    with pytest.raises(InvalidInput, match="bonus"):
        define(db, guild, criterion="email_approved", bonus_points=-1)
    with pytest.raises(InvalidInput, match="name"):
        define(db, guild, name="  ", criterion="email_approved")

    updated = db.run(achievements.update_definition, guild, rich.id, threshold=200, active=False)
    assert (updated.threshold, updated.active, updated.name) == (200, False, "Rich")
    with pytest.raises(InvalidInput, match="exists already"):
        db.run(achievements.update_definition, guild, old.id, name="Rich")
    with pytest.raises(InvalidInput, match="unknown"):
        db.run(achievements.update_definition, guild, old.id, colour="red")
    other_guild = new_guild(db)
    with pytest.raises(NotFound):
        db.run(achievements.update_definition, other_guild, rich.id, threshold=5)

    assert [d.name for d in db.run(achievements.list_definitions, guild)] == ["Rich", "Veteran"]
    assert [d.name for d in db.run(achievements.list_definitions, guild, include_inactive=False)] == [
        "Veteran"
    ]
    db.run(achievements.delete_definition, guild, old.id)
    assert [d.name for d in db.run(achievements.list_definitions, guild)] == ["Rich"]


def test_a_held_achievement_cannot_be_deleted_and_shows_its_holders(db: Database, settings) -> None:
    guild = new_guild(db)
    first = define(db, guild, name="First", criterion="transactions_at_least", threshold=1, bonus_points=5)
    award(db, guild, 11, 3, settings)
    award(db, guild, 12, 3, settings)
    page = db.run(achievements.holders, guild, first.id)
    assert page.total == 2 and {h.user_id for h in page.holders} == {11, 12}
    assert all(h.transaction_id is not None for h in page.holders)
    with pytest.raises(DomainError, match="deactivate"):
        db.run(achievements.delete_definition, guild, first.id)
    assert db.run(achievements.list_definitions, guild)[0].holders == 2


# -- checked right after a change --------------------------------------------------------------
def test_crossing_a_threshold_pays_the_bonus_once_with_a_stable_key_and_a_dm(db: Database, settings) -> None:
    guild = new_guild(db)
    rich = define(db, guild, name="Rich", criterion="balance_at_least", threshold=100, bonus_points=25)
    award(db, guild, 21, 60, settings)
    assert db.run(achievements.earned_by, guild, 21) == []
    award(db, guild, 21, 60, settings)
    earned = db.run(achievements.earned_by, guild, 21)
    assert [(e.name, e.bonus_paid) for e in earned] == [("Rich", 25)]
    award(db, guild, 21, 60, settings)  # still above: nothing more
    entries = db.fetchall(
        "SELECT t.amount, t.kind, t.source, t.silent, o.idempotency_key FROM transactions t "
        "JOIN operations o ON o.id = t.operation_id WHERE t.guild_id = %s AND t.user_id = 21 ORDER BY t.id",
        (guild,),
    )
    bonus = [e for e in entries if e[1] == "achievement"]
    assert bonus == [(25, "achievement", "achievement", True, f"achievement:{rich.id}:21")]
    assert one(db, "SELECT balance FROM points WHERE guild_id = %s AND user_id = 21", (guild,)) == 205
    dms = db.fetchall(
        "SELECT reason, dedupe_key, content FROM direct_messages WHERE guild_id = %s AND user_id = 21 ORDER BY id",
        (guild,),
    )
    assert [d[0] for d in dms] == ["points", "points", "achievement", "points"]
    assert dms[2][1] == f"achievement:{rich.id}:21" and "Rich" in dms[2][2] and "25 points" in dms[2][2]
    assert "You received **60 points**" in dms[0][2] and "Reason: test" in dms[0][2]
    assert_ledger_consistent(db, guild)


def test_a_bonus_can_earn_the_next_achievement_and_the_chain_ends(db: Database, settings) -> None:
    guild = new_guild(db)
    define(db, guild, name="Hundred", criterion="balance_at_least", threshold=100, bonus_points=100)
    define(db, guild, name="Two hundred", criterion="balance_at_least", threshold=200, bonus_points=100)
    define(db, guild, name="Earner", criterion="earned_at_least", threshold=300, bonus_points=1)
    define(db, guild, name="Busy", criterion="transactions_at_least", threshold=3, bonus_points=0)
    award(db, guild, 31, 100, settings)
    names = {e.name for e in db.run(achievements.earned_by, guild, 31)}
    assert names == {"Hundred", "Two hundred", "Earner", "Busy"}
    assert one(db, "SELECT balance FROM points WHERE guild_id = %s AND user_id = 31", (guild,)) == 301
    # "Busy" pays no bonus: no ledger entry, but the achievement and its DM exist.
    assert (
        one(db, "SELECT count(*) FROM transactions WHERE guild_id = %s AND kind = 'achievement'", (guild,))
        == 3
    )
    assert_ledger_consistent(db, guild)


def test_silent_changes_the_guild_switch_and_the_opt_out_decide_the_automatic_dms(
    db: Database, settings
) -> None:
    guild = new_guild(db)
    award(db, guild, 41, 5, settings, silent=True)
    assert one(db, "SELECT count(*) FROM direct_messages WHERE guild_id = %s", (guild,)) == 0

    db.run(
        lambda c: c.execute(
            "UPDATE members SET dm_opt_out = TRUE WHERE guild_id = %s AND user_id = 41", (guild,)
        )
    )
    award(db, guild, 41, 5, settings)
    assert one(db, "SELECT count(*) FROM direct_messages WHERE guild_id = %s", (guild,)) == 0
    # An admin's own DM is not automatic: the opt-out does not cover it.
    dm_id = db.run(
        outbox.enqueue_dm, guild_id=guild, user_id=41, content="Hello", reason="admin", created_by=1
    )
    assert dm_id is not None

    quiet = new_guild(db, dm_notifications=False)
    define(db, quiet, criterion="balance_at_least", threshold=1, bonus_points=1)
    award(db, quiet, 42, 5, settings)
    assert len(db.run(achievements.earned_by, quiet, 42)) == 1
    assert one(db, "SELECT count(*) FROM direct_messages WHERE guild_id = %s", (quiet,)) == 0


def test_transfers_dm_the_receiver_only_and_check_both_members(db: Database, settings) -> None:
    guild = new_guild(db)
    define(db, guild, name="Active", criterion="transactions_at_least", threshold=2, bonus_points=0)
    award(db, guild, 51, 50, settings)
    award(db, guild, 52, 50, settings)
    db.run(
        ledger.transfer, guild_id=guild, from_user_id=51, to_user_id=52, amount=10, reason="thanks",
        idempotency_key=f"t-{next(_ids)}", settings=settings,
    )  # fmt: skip
    assert {e.name for e in db.run(achievements.earned_by, guild, 51)} == {"Active"}
    assert {e.name for e in db.run(achievements.earned_by, guild, 52)} == {"Active"}
    transfer_dms = db.fetchall(
        "SELECT user_id, content FROM direct_messages WHERE guild_id = %s AND reason = 'points' "
        "AND content LIKE '%%gave you%%'",
        (guild,),
    )
    assert transfer_dms == [(52, f"<@51> gave you **10 points** in **Guild {guild}**.\nReason: thanks\n"
                                 "Your balance is now **60 points**.")]  # fmt: skip


def test_inactive_and_other_guilds_achievements_are_not_granted(db: Database, settings) -> None:
    guild, other = new_guild(db), new_guild(db)
    define(db, guild, criterion="balance_at_least", threshold=1, bonus_points=1, active=False)
    define(db, other, criterion="balance_at_least", threshold=1, bonus_points=1)
    award(db, guild, 61, 10, settings)
    assert db.run(achievements.earned_by, guild, 61) == []


def test_two_changes_at_the_same_moment_pay_the_achievement_once(db: Database, settings) -> None:
    guild = new_guild(db)
    rich = define(db, guild, name="Racer", criterion="balance_at_least", threshold=10, bonus_points=7)
    members = list(range(1000, 1012))
    for user in members:
        award(db, guild, user, 1, settings)
    barrier = threading.Barrier(len(members) * 2)
    errors: list[BaseException] = []

    def change(user: int) -> None:
        try:
            barrier.wait()
            award(db, guild, user, 10, settings)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=change, args=(u,)) for u in members for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = db.fetchall(
        "SELECT user_id, count(*) FROM member_achievements WHERE achievement_id = %s GROUP BY user_id",
        (rich.id,),
    )
    assert sorted(rows) == [(u, 1) for u in members]
    bonuses = db.fetchall(
        "SELECT user_id, count(*), sum(amount) FROM transactions WHERE guild_id = %s AND kind = 'achievement' "
        "GROUP BY user_id",
        (guild,),
    )
    assert sorted(bonuses) == [(u, 1, 7) for u in members]
    assert (
        one(
            db,
            "SELECT count(*) FROM direct_messages WHERE guild_id = %s AND reason = 'achievement'",
            (guild,),
        )
        == 12
    )
    assert_ledger_consistent(db, guild)


# -- the sweep ---------------------------------------------------------------------------------
@pytest.fixture
def fresh_db(make_database: Callable[[], str]) -> Iterator[Database]:
    """A database of its own: the sweep walks every guild's members."""
    database = Database(make_database(), pooled=True, pool_max=8)
    yield database
    database.close()


def _backdate(db: Database, guild: int, user: int, days: int) -> None:
    """Move a member's join date and ledger entries into the past (tests only: the ledger's
    append-only trigger is lifted for the moment)."""

    def run(conn: psycopg.Connection) -> None:
        conn.execute(
            "UPDATE members SET joined_at = now() - make_interval(days => %s) WHERE guild_id = %s AND user_id = %s",
            (days, guild, user),
        )
        conn.execute("ALTER TABLE transactions DISABLE TRIGGER transactions_no_update_or_delete")
        conn.execute(
            "UPDATE transactions SET created_at = created_at - make_interval(days => %s) "
            "WHERE guild_id = %s AND user_id = %s",
            (days, guild, user),
        )
        conn.execute("ALTER TABLE transactions ENABLE TRIGGER transactions_no_update_or_delete")

    db.run(run)


def test_the_sweep_finds_exactly_the_members_who_qualify(fresh_db: Database, settings) -> None:
    db = fresh_db
    guild, other = new_guild(db), new_guild(db)
    # 1: an old member with old earnings; 2 and 3 tie for second place and earned 300 this
    # week; 4 earned 60 this week; 5 has an approved email; 6 is one short of the week's 50
    # and was rejected; 7 never had a change.
    award(db, guild, 1, 500, settings)
    _backdate(db, guild, 1, 40)
    award(db, guild, 2, 300, settings)
    award(db, guild, 3, 300, settings)
    award(db, guild, 4, 30, settings)
    award(db, guild, 4, 30, settings)
    award(db, guild, 5, 10, settings)
    award(db, guild, 6, 49, settings)
    db.run(lambda c: c.execute("INSERT INTO members (guild_id, user_id) VALUES (%s, 7)", (guild,)))
    db.run(
        lambda c: c.execute(
            "INSERT INTO email_submissions (guild_id, user_id, email, status) VALUES "
            "(%s, 5, 'five@example.org', 'approved'), (%s, 6, 'six@example.org', 'rejected'), "
            "(%s, 2, 'two@example.org', 'pending')",
            (guild, guild, guild),
        )
    )
    # Another guild whose member would qualify for everything, but it has no achievements.
    award(db, other, 1, 5000, settings)
    _backdate(db, other, 1, 400)
    # Defined after the changes, so only the sweep can find who qualifies.
    veteran = define(db, guild, name="Veteran", criterion="member_days", window_days=30, bonus_points=3)
    top = define(db, guild, name="Top 2", criterion="top_k", threshold=2, bonus_points=0)
    mail = define(db, guild, name="Mail", criterion="email_approved", bonus_points=2)
    week = define(db, guild, name="Good week", criterion="earned_within_days", threshold=50, window_days=7)
    big = define(db, guild, name="Big", criterion="balance_at_least", threshold=1000, bonus_points=0)
    define(db, guild, name="Off", criterion="member_days", window_days=1, active=False)

    report = achievements.run_sweep(db, batch_size=3, settings=settings)
    assert report.finished and report.members_checked == 8
    got = set(
        db.fetchall("SELECT user_id, achievement_id FROM member_achievements WHERE guild_id = %s", (guild,))
    )
    assert got == {
        (1, veteran.id),
        (1, top.id),
        (2, top.id),
        (3, top.id),
        (5, mail.id),
        (2, week.id),
        (3, week.id),
        (4, week.id),
    }
    assert big.id not in {a for _, a in got}
    assert one(db, "SELECT count(*) FROM member_achievements WHERE guild_id = %s", (other,)) == 0
    assert report.awards == 8
    assert sorted(db.fetchall("SELECT user_id, amount FROM transactions WHERE kind = 'achievement'")) == [
        (1, 3),
        (5, 2),
    ]
    assert_ledger_consistent(db, guild)

    # A second sweep finds nothing new.
    again = achievements.run_sweep(db, batch_size=100, settings=settings)
    assert again.finished and again.awards == 0 and again.sweep_id != report.sweep_id


def test_a_sweep_stopped_half_way_continues_and_pays_nobody_twice(
    fresh_db: Database, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = fresh_db
    guild = new_guild(db)
    veteran = define(db, guild, name="Veteran", criterion="member_days", window_days=10, bonus_points=5)
    members = list(range(100, 130))
    for user in members:
        award(db, guild, user, 1, settings, silent=True)
        _backdate(db, guild, user, 11)

    first = achievements.run_sweep(db, batch_size=7, settings=settings, max_batches=2)
    assert not first.finished and first.members_checked == 14 and first.awards == 14

    # The next batch dies half way (a crash after its grants were written, before its cursor
    # moved): its transaction is rolled back.
    real_grant_many = achievements.grant_many

    def dying_grant_many(*args, **kwargs):
        real_grant_many(*args, **kwargs)
        raise RuntimeError("killed")

    monkeypatch.setattr(achievements, "grant_many", dying_grant_many)
    with pytest.raises(RuntimeError, match="killed"):
        achievements.run_sweep(db, batch_size=7, settings=settings)
    monkeypatch.setattr(achievements, "grant_many", real_grant_many)
    assert one(db, "SELECT count(*) FROM member_achievements WHERE achievement_id = %s", (veteran.id,)) == 14

    rest = achievements.run_sweep(db, batch_size=7, settings=settings)
    assert rest.finished and rest.sweep_id == first.sweep_id and rest.awards == 16
    held = db.fetchall(
        "SELECT user_id, count(*) FROM member_achievements WHERE achievement_id = %s GROUP BY user_id",
        (veteran.id,),
    )
    assert sorted(held) == [(u, 1) for u in members]
    paid = db.fetchall(
        "SELECT user_id, count(*) FROM transactions WHERE kind = 'achievement' GROUP BY user_id ORDER BY user_id"
    )
    assert paid == [(u, 1) for u in members]
    sweep = db.fetchone("SELECT members_checked, awards, finished_at IS NOT NULL FROM achievement_sweeps")
    assert sweep == (30, 30, True)
    assert_ledger_consistent(db, guild)


def test_two_sweepers_at_once_share_the_work_and_pay_once(fresh_db: Database, settings) -> None:
    db = fresh_db
    guild = new_guild(db)
    define(db, guild, name="Veteran", criterion="member_days", window_days=1, bonus_points=2)
    members = list(range(200, 240))
    for user in members:
        db.run(ledger.ensure_member, guild, user)
    db.run(
        lambda c: c.execute(
            "UPDATE members SET joined_at = now() - interval '2 days' WHERE guild_id = %s", (guild,)
        )
    )
    reports = []
    threads = [
        threading.Thread(
            target=lambda: reports.append(achievements.run_sweep(db, batch_size=4, settings=settings))
        )
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reports) == 2
    assert sum(r.awards for r in reports) == 40
    paid = db.fetchall(
        "SELECT user_id, count(*) FROM transactions WHERE kind = 'achievement' GROUP BY user_id"
    )
    assert sorted(paid) == [(u, 1) for u in members]


def test_the_sweep_stops_in_time_and_the_next_run_continues(fresh_db: Database, settings) -> None:
    db = fresh_db
    guild = new_guild(db)
    for user in range(300, 320):
        db.run(ledger.ensure_member, guild, user)
    left = iter([60.0, 60.0, 60.0, 1.0])
    first = achievements.run_sweep(db, batch_size=5, settings=settings, time_left_s=lambda: next(left))
    assert (first.batches, first.members_checked, first.finished) == (3, 15, False)
    second = achievements.run_sweep(db, batch_size=5, settings=settings, time_left_s=lambda: 60.0)
    assert second.sweep_id == first.sweep_id and second.finished and second.members_checked == 5


def test_checking_one_guild_now_leaves_others_and_the_scheduled_sweep_alone(
    fresh_db: Database, settings
) -> None:
    db = fresh_db
    first, second = new_guild(db), new_guild(db)
    for guild in (first, second):
        define(db, guild, name="Veteran", criterion="member_days", window_days=1, bonus_points=1)
        for user in range(400, 407):
            db.run(ledger.ensure_member, guild, user)
    db.run(lambda c: c.execute("UPDATE members SET joined_at = now() - interval '2 days'"))
    report = achievements.run_sweep(db, batch_size=3, settings=settings, guild_id=second)
    assert report.finished and report.members_checked == 7 and report.awards == 7 and report.sweep_id is None
    held = db.fetchall("SELECT DISTINCT guild_id FROM member_achievements")
    assert held == [(second,)]
    assert one(db, "SELECT count(*) FROM achievement_sweeps") == 0
    # The scheduled sweep then finds the other guild's members only.
    assert achievements.run_sweep(db, batch_size=100, settings=settings).awards == 7


# -- what a sweep qualifies members by: the leaderboard and the clock as of its start -----------
def qualifying_as_of(db: Database, guild: int, as_of) -> set[tuple[int, int]]:
    """(member, achievement) pairs that met an active achievement at `as_of` and were not held
    then, counted apart from the sweep's query: balances rebuilt from the ledger entries made
    before that moment, places by rank()."""
    rows = db.fetchall(
        """
        WITH balance AS (SELECT user_id, sum(amount) AS balance FROM transactions
                         WHERE guild_id = %(g)s AND created_at < %(t)s GROUP BY user_id),
             ranked AS (SELECT user_id, balance, rank() OVER (ORDER BY balance DESC) AS place FROM balance)
        SELECT m.user_id, a.id
        FROM members m
        JOIN achievements a ON a.guild_id = m.guild_id AND a.active
        LEFT JOIN ranked r ON r.user_id = m.user_id
        WHERE m.guild_id = %(g)s
          AND NOT EXISTS (SELECT 1 FROM member_achievements ma WHERE ma.guild_id = m.guild_id
                          AND ma.user_id = m.user_id AND ma.achievement_id = a.id AND ma.earned_at < %(t)s)
          AND ((a.criterion = 'top_k' AND r.balance > 0 AND r.place <= a.threshold)
            OR (a.criterion = 'balance_at_least' AND coalesce(r.balance, 0) >= a.threshold)
            OR (a.criterion = 'member_days' AND m.joined_at <= %(t)s - make_interval(days => a.window_days)))
        """,
        {"g": guild, "t": as_of},
    )
    return set(rows)


@pytest.mark.parametrize("one_guild", [False, True], ids=["scheduled sweep", "check one guild now"])
def test_bonuses_paid_mid_sweep_do_not_move_later_batches_out_of_the_top_k(
    fresh_db: Database, settings, one_guild: bool
) -> None:
    # Given the top 5 (members 20-24) sit in later batches, and members 1-6 of the first batches
    # are veterans whose bonus lifts them above everyone
    db = fresh_db
    guild = new_guild(db)
    for user in range(1, 7):
        award(db, guild, user, 100, settings, silent=True)
        _backdate(db, guild, user, 40)
    for place, user in enumerate(range(20, 25)):
        award(db, guild, user, 500 + 10 * place, settings, silent=True)
    for user in range(30, 36):
        award(db, guild, user, 50, settings, silent=True)
    top = define(db, guild, name="Top 5", criterion="top_k", threshold=5, bonus_points=7)
    veteran = define(db, guild, name="Veteran", criterion="member_days", window_days=30, bonus_points=1000)

    for sweep in range(2):
        # When a sweep runs in batches of 3
        before = one(db, "SELECT now()")
        report = achievements.run_sweep(
            db, batch_size=3, settings=settings, guild_id=guild if one_guild else None
        )

        # Then it paid exactly who qualified as of its start, counted independently
        assert report.finished
        if one_guild:
            as_of = before  # nobody is near a line in time: any moment before the check will do
        else:
            as_of = one(db, "SELECT started_at FROM achievement_sweeps WHERE id = %s", (report.sweep_id,))
        expected = qualifying_as_of(db, guild, as_of)
        paid = set(
            db.fetchall(
                "SELECT user_id, achievement_id FROM member_achievements WHERE guild_id = %s AND earned_at >= %s",
                (guild, as_of),
            )
        )
        assert paid == expected
        assert report.awards == len(expected)
        if sweep == 0:
            assert expected == {(u, veteran.id) for u in range(1, 7)} | {(u, top.id) for u in range(20, 25)}
        else:
            # The bonuses of the first sweep put members 1-6 at the top (a tie: all six are
            # first); the next sweep sees them.
            assert expected == {(u, top.id) for u in range(1, 7)}
    assert one(db, "SELECT count(*) FROM achievement_sweep_cutoffs") == 0
    assert_ledger_consistent(db, guild)


def test_a_continued_sweep_keeps_the_leaderboard_and_clock_of_its_start(fresh_db: Database, settings) -> None:
    # Given members 8 and 9 are the top 2, and 6 and 7 are about to be members for 30 days
    db = fresh_db
    guild = new_guild(db)
    award(db, guild, 1, 10, settings, silent=True)
    for user in range(2, 8):
        award(db, guild, user, 1, settings, silent=True)
    award(db, guild, 8, 50, settings, silent=True)
    award(db, guild, 9, 40, settings, silent=True)
    top = define(db, guild, name="Top 2", criterion="top_k", threshold=2)
    veteran = define(db, guild, name="Veteran", criterion="member_days", window_days=30)

    # When one batch of the sweep runs (one Lambda invocation), then member 1 (checked already)
    # jumps to first place, member 7 turns out to have joined exactly 30 days before the
    # sweep's start and member 6 a millisecond later
    first = achievements.run_sweep(db, batch_size=2, settings=settings, max_batches=1)
    assert not first.finished and first.awards == 0
    as_of = one(db, "SELECT started_at FROM achievement_sweeps WHERE id = %s", (first.sweep_id,))
    award(db, guild, 1, 100, settings, silent=True)  # gets Top 2 at once, from the check on change
    db.run(
        lambda c: c.execute(
            "UPDATE members SET joined_at = CASE user_id WHEN 7 THEN %(t)s - interval '30 days' "
            "ELSE %(t)s - interval '30 days' + interval '1 millisecond' END "
            "WHERE guild_id = %(g)s AND user_id IN (6, 7)",
            {"t": as_of, "g": guild},
        )
    )
    rest = achievements.run_sweep(db, batch_size=2, settings=settings)

    # Then the next invocation judged by the same leaderboard and clock: 9 was second when the
    # sweep started, 6 was not yet a member for 30 days then
    assert rest.finished and rest.sweep_id == first.sweep_id
    expected = qualifying_as_of(db, guild, as_of)
    assert expected == {(8, top.id), (9, top.id), (7, veteran.id)}
    held = set(
        db.fetchall("SELECT user_id, achievement_id FROM member_achievements WHERE guild_id = %s", (guild,))
    )
    assert held == expected | {(1, top.id)}
    assert one(db, "SELECT awards FROM achievement_sweeps WHERE id = %s", (first.sweep_id,)) == len(expected)


# -- many grants at once (the sweep's way) ---------------------------------------------------
def _granted_state(db: Database, guild: int, ach_index: dict[int, int]) -> dict:
    """What a set of grants wrote in `guild`, with the guild's own ids replaced by positions."""

    def key(text: str) -> str:
        _, ach, user = text.split(":")
        return f"achievement:{ach_index[int(ach)]}:{user}"

    return {
        "entries": db.fetchall(
            "SELECT user_id, amount, balance_after, kind, reason, actor_id, actor_name, source, silent "
            "FROM transactions WHERE guild_id = %s AND kind = 'achievement' ORDER BY id",
            (guild,),
        ),
        "operations": sorted(
            (key(k), f, kind)
            for k, f, kind in db.fetchall(
                "SELECT idempotency_key, fingerprint, kind FROM operations "
                "WHERE guild_id = %s AND idempotency_key LIKE 'achievement:%%'",
                (guild,),
            )
        ),
        "held": sorted(
            (u, ach_index[a], paid)
            for u, a, paid in db.fetchall(
                "SELECT ma.user_id, ma.achievement_id, t.amount FROM member_achievements ma "
                "LEFT JOIN transactions t ON t.id = ma.transaction_id WHERE ma.guild_id = %s",
                (guild,),
            )
        ),
        "points": db.fetchall(
            "SELECT user_id, balance FROM points WHERE guild_id = %s ORDER BY user_id", (guild,)
        ),
        "role changes": sorted(
            db.fetchall(
                "SELECT user_id, role_id, action, source FROM role_changes WHERE guild_id = %s", (guild,)
            )
        ),
        "thresholds reached": db.fetchall(
            "SELECT user_id, held, crossings FROM member_role_thresholds WHERE guild_id = %s ORDER BY user_id",
            (guild,),
        ),
        "stats": db.fetchall(
            "SELECT user_id, transaction_count, total_earned, total_spent FROM user_stats "
            "WHERE guild_id = %s ORDER BY user_id",
            (guild,),
        ),
        "dms": sorted(
            (u, content.replace(str(guild), "G"), reason, key(k))
            for u, content, reason, k in db.fetchall(
                "SELECT user_id, content, reason, dedupe_key FROM direct_messages WHERE guild_id = %s",
                (guild,),
            )
        ),
    }


@pytest.mark.parametrize("replayed_key", [False, True])
def test_grant_many_writes_exactly_what_grant_writes_one_by_one(
    db: Database, settings, replayed_key: bool
) -> None:
    """The sweep grants a batch with grant_many; each guild below gets the same pairs, one by
    grant() and one by grant_many: the same entries (bonus clamped at the top of the balance
    range, balance_after chained per member), operations and fingerprints, rows, counters,
    roles (a threshold the bonuses cross, an achievement that grants a role) and DMs (none to
    a member who opted out), and the same answers. With `replayed_key`, one key already has its
    operation (grant's replay case: nothing paid again)."""
    from pointsbot.community import role_rewards
    from pointsbot.ledger.guilds import guild_policy
    from pointsbot.platform.amounts import MAX_BALANCE

    states, answers = [], []
    for way in ("one by one", "many"):
        guild = new_guild(db, max_change=MAX_BALANCE)
        for user in (11, 12, 13, 14):
            award(db, guild, user, 3, settings, silent=True)
        award(db, guild, 12, MAX_BALANCE - 3 - 9, settings, silent=True)  # room for 9 more points
        db.run(
            lambda c, g=guild: c.execute(
                "UPDATE members SET dm_opt_out = true WHERE guild_id = %s AND user_id = 13", (g,)
            )
        )
        # Defined after the awards, so no change has earned them yet.
        defs = [
            define(db, guild, name="Big", criterion="balance_at_least", threshold=1, bonus_points=7),
            define(
                db,
                guild,
                name="Small",
                criterion="balance_at_least",
                threshold=1,
                bonus_points=5,
                role_id=777,
            ),
            define(db, guild, name="No bonus", criterion="balance_at_least", threshold=1, bonus_points=0),
        ]
        ach_index = {d.id: i for i, d in enumerate(defs)}
        db.run(role_rewards.create_threshold, guild, points=8, role_id=888, on_drop="keep", actor_id=1,
               actor_name="test")  # fmt: skip
        if replayed_key:  # paid before, its row removed since: the bonus is not paid again
            got = db.run(
                lambda c, g=guild, d=defs[0]: achievements.grant(
                    c,
                    g,
                    14,
                    d.id,
                    d.name,
                    d.bonus_points,
                    policy=guild_policy(c, settings, g),
                    settings=settings,
                )
            )
            db.run(lambda c, g=guild: c.execute(
                "DELETE FROM member_achievements WHERE guild_id = %s AND user_id = 14", (g,)))  # fmt: skip
            assert got is not None and got.bonus_points == 7
        due = [(guild, u, d.id, d.name, d.bonus_points) for u in (11, 12, 13, 14) for d in defs]
        due.append((guild, 11, defs[0].id, defs[0].name, defs[0].bonus_points))  # held by then

        def run(conn: psycopg.Connection, due=due, guild=guild, way=way) -> list:
            policy = guild_policy(conn, settings, guild)
            name = conn.execute("SELECT name FROM guilds WHERE guild_id = %s", (guild,)).fetchone()[0]
            if way == "many":
                return achievements.grant_many(conn, due, policies={guild: (policy, name)}, settings=settings)
            got = [
                achievements.grant(conn, g, u, a, n, b, policy=policy, settings=settings, guild_name=name)
                for g, u, a, n, b in due
            ]
            return [x for x in got if x is not None]

        granted = db.run(run)
        answers.append(
            [(g.user_id, ach_index[g.achievement_id], g.bonus_points, g.transaction_id is not None,
              g.dm_id is not None, g.role_change_id is not None) for g in granted]
        )  # fmt: skip
        states.append(_granted_state(db, guild, ach_index))
        assert_ledger_consistent(db, guild)
    assert answers[0] == answers[1]
    assert states[0] == states[1]
    assert [b for u, _, b, *_ in answers[1] if u == 12] == [7, 2, 0]  # clamped at the range's top
    assert len(states[1]["dms"]) == 9  # member 13 opted out
    assert len(states[1]["thresholds reached"]) == 3 and len(states[1]["role changes"]) == 3 + 4


def test_grant_many_skips_a_pair_held_already_and_pays_nobody_for_it(db: Database, settings) -> None:
    """grant_many writes the member_achievements row last, with its entry. A pair found held by
    then is granted as grant() would: not again, and its bonus not paid (here it was earned
    with a bonus of 0, and the bonus raised since, so no key of it exists to stop the payment:
    only the row does)."""
    from pointsbot.ledger.guilds import guild_policy

    guild = new_guild(db)
    for user in (21, 22):
        award(db, guild, user, 10, settings, silent=True)
    free = define(db, guild, name="Free", criterion="balance_at_least", threshold=1, bonus_points=0)
    paid = define(db, guild, name="Paid", criterion="balance_at_least", threshold=1, bonus_points=4)

    def grant_one(conn: psycopg.Connection) -> None:
        policy = guild_policy(conn, settings, guild)
        assert achievements.grant(conn, guild, 21, free.id, free.name, 0, policy=policy, settings=settings)

    db.run(grant_one)
    db.run(achievements.update_definition, guild, free.id, bonus_points=6)
    due = [(guild, u, d.id, d.name, b) for u in (21, 22) for d, b in ((free, 6), (paid, 4))]

    def run(conn: psycopg.Connection) -> list:
        policy = guild_policy(conn, settings, guild)
        return achievements.grant_many(conn, due, policies={guild: (policy, "G")}, settings=settings)

    granted = db.run(run)
    assert sorted((g.user_id, g.achievement_id, g.bonus_points) for g in granted) == [
        (21, paid.id, 4),
        (22, free.id, 6),
        (22, paid.id, 4),
    ]
    assert db.fetchall(
        "SELECT user_id, balance FROM points WHERE guild_id = %s ORDER BY user_id", (guild,)
    ) == [(21, 14), (22, 20)]
    held = db.fetchall(
        "SELECT ma.user_id, ma.achievement_id, t.amount FROM member_achievements ma "
        "LEFT JOIN transactions t ON t.id = ma.transaction_id WHERE ma.guild_id = %s ORDER BY 1, 2",
        (guild,),
    )
    assert held == [(21, free.id, None), (21, paid.id, 4), (22, free.id, 6), (22, paid.id, 4)]
    assert_ledger_consistent(db, guild)


def test_the_sweep_pays_members_the_ledger_has_never_seen(fresh_db: Database, settings) -> None:
    """A member with no points or user_stats row yet (only a members row) who qualifies gets
    both rows with the bonus, beside a member who has them (the batch writes first contact only
    for the members who need it)."""
    db = fresh_db
    guild = new_guild(db)
    award(db, guild, 31, 5, settings, silent=True)
    db.run(lambda c: c.execute("INSERT INTO members (guild_id, user_id) VALUES (%s, 32)", (guild,)))
    db.run(
        lambda c: c.execute(
            "UPDATE members SET joined_at = now() - interval '3 days' WHERE guild_id = %s", (guild,)
        )
    )
    assert one(db, "SELECT count(*) FROM points WHERE guild_id = %s AND user_id = 32", (guild,)) == 0
    veteran = define(db, guild, name="Veteran", criterion="member_days", window_days=2, bonus_points=4)
    report = achievements.run_sweep(db, batch_size=10, settings=settings)
    assert report.finished and report.awards == 2
    assert db.fetchall(
        "SELECT user_id, balance FROM points WHERE guild_id = %s ORDER BY user_id", (guild,)
    ) == [(31, 9), (32, 4)]
    assert db.fetchall(
        "SELECT user_id, transaction_count, total_earned FROM user_stats WHERE guild_id = %s ORDER BY user_id",
        (guild,),
    ) == [(31, 2, 9), (32, 1, 4)]
    assert one(db, "SELECT count(*) FROM member_achievements WHERE achievement_id = %s", (veteran.id,)) == 2
    assert_ledger_consistent(db, guild)


def test_a_sweep_and_changes_of_the_same_members_at_once_pay_each_achievement_once(
    fresh_db: Database, settings
) -> None:
    """The sweep writes the member_achievements row after the bonus (grant_many); changes of the
    batch's members racing it (each checking the same achievement right after it) still pay it
    once per member, with no deadlock and the ledger in step."""
    db = fresh_db
    guild = new_guild(db)
    members = list(range(500, 560))
    for user in members:
        award(db, guild, user, 20, settings, silent=True)
    rich = define(db, guild, name="Rich", criterion="balance_at_least", threshold=10, bonus_points=3)
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []
    reports = []

    def sweep() -> None:
        try:
            barrier.wait()
            reports.append(achievements.run_sweep(db, batch_size=4, settings=settings))
        except BaseException as exc:
            errors.append(exc)

    def changes(order: list[int]) -> None:
        try:
            barrier.wait()
            for user in order:
                award(db, guild, user, 1, settings, silent=True)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=sweep),
        threading.Thread(target=changes, args=(members,)),
        threading.Thread(target=changes, args=(members[::-1],)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert reports[0].finished
    held = db.fetchall(
        "SELECT user_id, count(*) FROM member_achievements WHERE achievement_id = %s GROUP BY user_id",
        (rich.id,),
    )
    assert sorted(held) == [(u, 1) for u in members]
    paid = db.fetchall(
        "SELECT user_id, count(*), sum(amount) FROM transactions WHERE guild_id = %s AND kind = 'achievement' "
        "GROUP BY user_id",
        (guild,),
    )
    assert sorted(paid) == [(u, 1, 3) for u in members]
    assert db.fetchall(
        "SELECT count(*) FROM member_achievements ma JOIN transactions t ON t.id = ma.transaction_id "
        "WHERE ma.achievement_id = %s",
        (rich.id,),
    ) == [(len(members),)]
    assert_ledger_consistent(db, guild)
