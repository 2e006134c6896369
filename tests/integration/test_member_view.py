"""The admin member page's loader on real Postgres: the balance trail is the ledger's own balances
in order (led by the balance before), bounded; the page holds rank, purchases, season places and
role changes by name from the kept list; and the trail's plan is the one balance_trail's
docstring claims (one range of transactions_member_idx under the LIMIT, no sort, no
scan of the guild), checked with EXPLAIN on an analyzed guild of 200,000 entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from admin_site.sparkline import sparkline
from pointsbot import ledger
from pointsbot.admin import member_view
from pointsbot.community import profiles, roles, seasons
from pointsbot.ledger import queries

pytestmark = pytest.mark.integration

GUILD = 795000000000000001
MEMBER, OTHER = 795100000000000001, 795100000000000002
ROLE = 795200000000000001


def _award(db, settings, user, amount, key, **extra):
    return db.run(ledger.award, guild_id=GUILD, user_id=user, amount=amount, reason="test", actor_id=1,
                  source="admin_site", idempotency_key=key, settings=settings, **extra)  # fmt: skip


def test_the_page_answers_what_happened_to_the_points(db, settings):
    # Given a member with changes of several kinds, another member above them, a season, a role change
    _award(db, settings, MEMBER, 100, "mv-1")
    db.run(ledger.deduct, guild_id=GUILD, user_id=MEMBER, amount=30, reason="oops", actor_id=1,
           source="admin_site", idempotency_key="mv-2", settings=settings)  # fmt: skip
    db.run(ledger.set_balance, guild_id=GUILD, user_id=MEMBER, target=250, reason="fix", actor_id=1,
           source="admin_site", idempotency_key="mv-3", settings=settings)  # fmt: skip
    _award(db, settings, OTHER, 1000, "mv-4")
    db.run(seasons.start_season, GUILD, name="Winter", starts_at=None,
           ends_at=datetime.now(UTC) + timedelta(days=7), actor_id=1, actor_name="test")  # fmt: skip
    _award(db, settings, MEMBER, 5, "mv-5")  # counted in the running season
    db.run(roles.request_role_change, guild_id=GUILD, user_id=MEMBER, role_id=ROLE, action="add",
           source="threshold", source_ref="mv", reason="threshold")  # fmt: skip
    db.run(profiles.record_roles, GUILD, [{"id": str(ROLE), "name": "Regulars", "position": 1}])
    # When the page is loaded
    view = db.run(member_view.member_view, GUILD, MEMBER)
    # Then the trail is the ledger's balances in order, from the balance before the first change
    assert [p.balance for p in view.trail] == [0, 100, 70, 250, 255]
    assert [p.at for p in view.trail] == sorted(p.at for p in view.trail)
    assert view.stats.balance == view.trail[-1].balance == 255
    # And the rank, the season's place and the role by its name
    assert (view.rank.rank, view.rank.total_members) == (2, 2)
    ((place,),) = [[p for p in view.season_places if p.season.name == "Winter"]]
    assert place.standing is not None and place.standing.score == 5 and place.standing.place == 1
    assert view.role_names == {ROLE: "Regulars"}
    assert view.purchases.total == 0
    # And the sparkline says the same in words (and draws one step per change, ending at now)
    spark = sparkline(view.trail)
    assert "from 0 to 255, lowest 0, highest 255" in spark.summary and "last 4 changes" in spark.summary
    assert str(spark.svg).count("V") == 4 and "style=" not in str(spark.svg)


def test_the_trail_is_bounded_to_the_latest_entries(db, settings):
    for i in range(8):
        _award(db, settings, MEMBER + 10, i + 1, f"mv-b{i}")
    trail = db.run(ledger.balance_trail, GUILD, MEMBER + 10, 3)
    # the balance before the 6th entry, then after the 6th, 7th and 8th
    assert [p.balance for p in trail] == [15, 21, 28, 36]
    assert db.run(ledger.balance_trail, GUILD, 1) == ()
    with pytest.raises(ValueError):
        db.run(ledger.balance_trail, GUILD, MEMBER, 100_000)


@pytest.fixture(scope="module")
def big_guild(make_database):
    """200,000 entries over 2,000 members (one of them with 20,000), analyzed, as bench_admin
    loads its 10M (foreign keys off for the load)."""
    dsn = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("INSERT INTO guilds (guild_id) VALUES (%s)", (GUILD,))
        conn.execute(
            "INSERT INTO members (guild_id, user_id) SELECT %s, i FROM generate_series(1, 2000) i", (GUILD,)
        )
        op = conn.execute("INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) "
                          "VALUES (%s, 'load', 'load', 'award') RETURNING id", (GUILD,)).fetchone()[0]  # fmt: skip
        conn.execute(
            "INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, source, "
            "actor_id) SELECT %s, %s, CASE WHEN i %% 10 = 0 THEN 1 ELSE 1 + i %% 2000 END, 1, i, 'award', "
            "'admin_site', 1 FROM generate_series(1, 200000) i",
            (op, GUILD),
        )
        conn.execute("VACUUM ANALYZE transactions")
    return dsn


@pytest.mark.parametrize("user", [1, 77, 5000])  # the busiest member, a usual one, one with no entries
def test_the_trail_reads_one_range_of_the_member_index(big_guild, user):
    with psycopg.connect(big_guild) as conn:
        plan = "\n".join(
            r[0]
            for r in conn.execute("EXPLAIN " + queries._TRAIL, {"g": GUILD, "u": user, "n": 120}).fetchall()
        )
    assert plan.lstrip().startswith("Limit"), plan
    assert "Index Scan using transactions_member_idx on transactions" in plan, plan
    assert "Seq Scan" not in plan and "Sort" not in plan and "Bitmap" not in plan, plan
