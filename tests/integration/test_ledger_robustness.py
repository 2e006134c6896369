"""The ledger's edges: the largest Discord id, a killed connection, refusals that leave no trace."""

from __future__ import annotations

import base64
import json
import time

import psycopg
import pytest
from _ledger_checks import award, deduct, revert, set_balance, table_counts, transfer, violations

from pointsbot import ledger
from pointsbot.platform import ids
from pointsbot.platform.db import Database
from pointsbot.platform.errors import (
    AlreadyReverted,
    DailyCapReached,
    IdempotencyConflict,
    InsufficientBalance,
    InvalidInput,
    LimitExceeded,
    NotFound,
    ReasonRequired,
    TransfersDisabled,
)
from pointsbot_local import apigw

pytestmark = pytest.mark.integration

BIGGEST = 2**63 - 1


# -- snowflakes --------------------------------------------------------------------------------
def test_largest_snowflake_round_trips_through_database_and_serialisers(db, settings, sql):
    # Given a guild and a member whose ids are the largest a BIGINT holds
    guild, user = BIGGEST, BIGGEST - 1
    other = BIGGEST - 2
    assert float(BIGGEST) != BIGGEST  # what a float (or a JavaScript number) would make of it

    # When points move between them through the ledger
    award(db, guild, user, 10, settings)
    moved = transfer(db, guild, user, other, 4, settings)

    # Then the database holds the ids exactly
    assert sql("SELECT guild_id, user_id FROM points WHERE guild_id = %s ORDER BY user_id", (guild,)) == [
        (guild, other),
        (guild, user),
    ]
    entry = moved.entry_for(other)
    assert (entry.guild_id, entry.user_id, entry.counterparty_id) == (BIGGEST, BIGGEST - 2, BIGGEST - 1)
    assert db.run(ledger.rank_of, guild, user).balance == 6

    # and the string form survives every serialiser we have
    text = ids.format_snowflake(entry.guild_id)
    assert text == "9223372036854775807"
    assert ids.parse_snowflake(text) == BIGGEST
    assert ids.parse_snowflake(f"<@!{text}>") == BIGGEST
    payload = json.dumps({"guild_id": text, "user_id": ids.format_snowflake(entry.counterparty_id)})
    decoded = json.loads(payload)
    assert ids.parse_snowflake(decoded["guild_id"]) == BIGGEST
    assert ids.parse_snowflake(decoded["user_id"]) == BIGGEST - 1
    # through the API Gateway adapter, both ways (text body and binary body)
    event = apigw.to_event("POST", f"/x?guild={text}", {"content-type": "application/json"}, payload.encode())
    assert json.loads(event["body"]) == decoded
    assert event["queryStringParameters"]["guild"] == text
    binary = apigw.to_event("POST", "/x", {"content-type": "application/octet-stream"}, payload.encode())
    assert json.loads(base64.b64decode(binary["body"])) == decoded
    response = apigw.from_result({"statusCode": 200, "body": payload})
    assert ids.parse_snowflake(json.loads(response.body)["guild_id"]) == BIGGEST
    # and one past the largest is refused, never wrapped
    with pytest.raises(InvalidInput):
        ids.parse_snowflake(str(BIGGEST + 1))
    with pytest.raises(InvalidInput):
        ids.parse_snowflake(float(BIGGEST))


def test_largest_snowflake_through_the_other_serialisers(db, settings):
    # The interaction parser, the task queue's JSON, the member export and the ledger's CSV.
    import csv
    import io

    from pointsbot.admin import bulk, monitor
    from pointsbot.community import members
    from pointsbot.delivery.tasks import Task
    from pointsbot.discord import interactions

    guild, user, other = BIGGEST, BIGGEST - 5, BIGGEST - 6  # members of their own in this test
    text = str(BIGGEST)
    award(db, guild, user, 3, settings, actor_id=other)
    payload = {
        "id": text, "application_id": text, "type": interactions.APPLICATION_COMMAND, "token": "t",
        "guild_id": text, "channel_id": text,
        "member": {"user": {"id": str(user), "username": "max"}, "permissions": "0", "roles": [text]},
        "data": {"name": "balance", "options": [{"name": "member", "type": 6, "value": str(other)}],
                 "resolved": {"users": {str(other): {"id": str(other), "username": "o"}}}},
    }  # fmt: skip
    parsed = interactions.parse(json.loads(json.dumps(payload)))
    assert (parsed.id, parsed.guild_id, parsed.user_id, parsed.roles) == (text, text, str(user), (text,))
    assert parsed.options["member"] == str(other) and str(other) in parsed.users
    assert ids.parse_snowflake(parsed.guild_id) == BIGGEST
    task = Task.from_json(Task("interaction", {"interaction": payload}).to_json())
    assert task.payload["interaction"]["guild_id"] == text

    exported = json.loads(json.dumps(db.run(members.export, guild, user)))
    assert exported["member"]["guild_id"] == text and exported["member"]["user_id"] == str(user)
    assert exported["transactions"][0]["actor_id"] == str(other)

    lines = "".join(db.run(lambda conn: list(monitor.export_csv(conn, guild, monitor.TransactionFilter()))))
    rows = [r for r in csv.DictReader(io.StringIO(lines)) if r["user_id"] == str(user)]
    assert [r["actor_id"] for r in rows] == [str(other)]

    (row,) = bulk.parse_csv(f"user_id,amount,reason\n{text},5,thanks\n")
    assert ids.parse_snowflake(row.user_id) == BIGGEST


# -- a connection killed between two calls ------------------------------------------------------
def _kill(admin_dsn: str, pids: list[int]) -> None:
    """pg_terminate_backend from another connection, then wait until the sessions are gone."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        for pid in pids:
            assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        deadline = time.monotonic() + 10
        while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)).fetchone()[
            0
        ]:
            assert time.monotonic() < deadline, "the killed sessions did not go away"
            time.sleep(0.02)


def _backend_pids(database_url: str) -> list[int]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'pointsbot' AND pid <> pg_backend_pid()"
            ).fetchall()
        ]


@pytest.mark.parametrize("pooled", [False, True], ids=["single-connection", "pooled"])
def test_next_call_works_after_the_connection_was_killed(database_url, settings, pooled):
    guild = 930_000_000_000_000_001 + int(pooled)
    database = Database(database_url, pooled=pooled, pool_max=2)
    try:
        first_pid = database.run(lambda conn: conn.execute("SELECT pg_backend_pid()").fetchone()[0])
        award(database, guild, guild + 1, 5, settings)
        # When the server ends the session while it sits idle (a restart, a failover, a timeout)
        pids = _backend_pids(database_url)
        assert first_pid in pids
        _kill(database_url, pids)

        # Then the next read works, on a new session
        assert database.run(ledger.balance, guild, guild + 1) == 5
        assert database.run(lambda conn: conn.execute("SELECT pg_backend_pid()").fetchone()[0]) not in pids
        # and so does the next write, applied once
        _kill(database_url, _backend_pids(database_url))
        assert award(database, guild, guild + 1, 7, settings).balance == 12
        with database.connection() as conn:
            assert (
                conn.execute("SELECT count(*) FROM transactions WHERE guild_id = %s", (guild,)).fetchone()[0]
                == 2
            )
            assert violations(conn, guild) == []
    finally:
        database.close()


@pytest.mark.parametrize("pooled", [False, True], ids=["single-connection", "pooled"])
def test_connection_killed_inside_a_transaction_is_retried_once_and_applied_once(
    database_url, settings, pooled
):
    guild = 930_000_000_000_000_011 + int(pooled)
    database = Database(database_url, pooled=pooled, pool_max=2)
    attempts = []

    def body(conn: psycopg.Connection) -> ledger.OperationResult:
        result = ledger.award(
            conn, guild_id=guild, user_id=guild + 1, amount=3, reason="r", actor_id=1, source="system",
            idempotency_key="killed-once", settings=settings,
        )  # fmt: skip
        attempts.append(conn.info.backend_pid)
        if len(attempts) == 1:  # the session dies before COMMIT: the server rolls it back
            _kill(database_url, [conn.info.backend_pid])
        conn.execute("SELECT 1")
        return result

    try:
        result = database.run(body)
        assert len(attempts) == 2 and attempts[0] != attempts[1]
        assert result.balance == 3 and not result.replayed
        assert database.run(ledger.balance, guild, guild + 1) == 3
    finally:
        database.close()


# -- refusals leave no trace ---------------------------------------------------------------------
def test_rejected_operations_leave_no_trace(db, settings, sql):
    guild = 930_000_000_000_000_021
    a, b = guild + 1, guild + 2
    award(db, guild, a, 100, settings, idempotency_key="seed-a")
    moved = transfer(db, guild, a, b, 30, settings)
    revert(db, guild, moved.entry_for(b).id, settings)
    capped = settings.with_overrides(daily_cap=150)
    no_transfers = settings.with_overrides(transfers_enabled=False)
    with db.connection() as conn:
        before = table_counts(conn), conn.execute("SELECT * FROM points ORDER BY 1, 2").fetchall()
    new_guild = guild + 1_000

    refusals = [
        (InsufficientBalance, lambda: deduct(db, guild, a, 101, settings)),
        (InsufficientBalance, lambda: transfer(db, guild, b, a, 1, settings)),
        (InsufficientBalance, lambda: deduct(db, new_guild, guild + 9, 1, settings)),  # unseen guild, member
        (LimitExceeded, lambda: award(db, guild, a, settings.max_change + 1, settings)),
        (LimitExceeded, lambda: set_balance(db, guild, a, settings.max_change + 101, settings)),
        (DailyCapReached, lambda: award(db, guild, a, 51, capped)),
        (IdempotencyConflict, lambda: award(db, guild, a, 99, settings, idempotency_key="seed-a")),
        (NotFound, lambda: revert(db, guild, 10**15, settings)),
        (AlreadyReverted, lambda: revert(db, guild, moved.entry_for(a).id, settings)),
        (TransfersDisabled, lambda: transfer(db, guild, a, b, 1, no_transfers)),
        (InvalidInput, lambda: transfer(db, guild, a, a, 1, settings)),
        (InvalidInput, lambda: award(db, guild, a, 0, settings)),
        (InvalidInput, lambda: set_balance(db, guild, a, -1, settings)),
        (ReasonRequired, lambda: award(db, guild, a, 1, settings, source="slash", reason=" ")),
    ]
    for expected, attempt in refusals:
        with pytest.raises(expected) as caught:
            attempt()
        # a sentence for the member, not a stack trace
        assert caught.value.message and "Traceback" not in caught.value.message

    with db.connection() as conn:
        after = table_counts(conn), conn.execute("SELECT * FROM points ORDER BY 1, 2").fetchall()
        assert after == before
        assert (
            conn.execute("SELECT count(*) FROM guilds WHERE guild_id = %s", (new_guild,)).fetchone()[0] == 0
        )
        assert violations(conn, guild) == []
    # and the key of a refused operation is still free to use
    assert deduct(db, guild, a, 5, settings, idempotency_key="refused-then-fine").balance == 95


def test_ledger_is_append_only(db, settings, sql):
    guild = 930_000_000_000_000_031
    entry = award(db, guild, guild + 1, 5, settings).entry
    for statement in (
        "UPDATE transactions SET amount = 500 WHERE id = %s",
        "DELETE FROM transactions WHERE id = %s",
    ):
        with pytest.raises(psycopg.errors.RestrictViolation):
            sql(statement, (entry.id,))
    with pytest.raises(psycopg.errors.RestrictViolation):
        sql("TRUNCATE transactions CASCADE")
    assert sql("SELECT amount FROM transactions WHERE id = %s", (entry.id,)) == [(5,)]
