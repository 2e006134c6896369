"""The integration API (/api/v1) through its Lambda handler on a real Postgres: the auth matrix on
every endpoint, every error shape, limits, reads, writes, and the Idempotency-Key's semantics
(replay, different body, concurrent same key from separate processes, expiry), checked in SQL."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import pytest
from _api_client import call, call_to_queue

from pointsbot import ledger
from pointsbot.api import gate
from pointsbot.api.app import ENDPOINTS, openapi
from pointsbot.api.schema import check
from pointsbot.community import api_keys
from pointsbot.platform import runtime
from pointsbot.platform.db import Database

GUILD = 880000000000000001
OTHER = 880000000000000002
ALICE = 881000000000000001
BOB = 881000000000000002


@pytest.fixture(scope="module")
def api_db(database_url):
    runtime.reset()
    runtime.set_database(Database(database_url))
    db = runtime.get_database()
    db.run(
        lambda c: c.execute("INSERT INTO guilds (guild_id, name) VALUES (%s, 'A'), (%s, 'B')", (GUILD, OTHER))
    )
    yield db
    runtime.reset()


def _key(db, scopes=("read", "write"), guild=GUILD, name="site"):
    return db.run(
        api_keys.create_key, guild, name=name, scopes=list(scopes), actor_id=None, actor_name="t"
    ).secret


@pytest.fixture(scope="module")
def keys(api_db):
    revoked = _key(api_db, name="old")
    key_id = api_db.run(lambda c: c.execute("SELECT id FROM api_keys WHERE name='old'").fetchone()[0])
    api_db.run(api_keys.revoke_key, GUILD, key_id, actor_id=None, actor_name="t")
    return {"rw": _key(api_db), "read": _key(api_db, ("read",), name="reader"),
            "write": _key(api_db, ("write",), name="writer"), "other": _key(api_db, guild=OTHER, name="theirs"),
            "revoked": revoked}  # fmt: skip


def _sql(db, query, params=()):
    return db.run(lambda c: c.execute(query, params).fetchall())


def _award(key, idem, user=ALICE, amount=10, operation="award", reason="from the website"):
    body = {"user_id": str(user), "operation": operation, "amount": amount, "reason": reason}
    return call("POST", "/api/v1/entries", key=key, body=body, idem=idem)


def _sample_request(ep):
    path = "/api/v1" + ep.path.replace("{user_id}", str(ALICE)).replace("{entry_id}", "1")
    body = None
    if ep.operation_id == "createEntry":
        body = {"user_id": str(ALICE), "operation": "award", "amount": 1, "reason": "x"}
    elif ep.operation_id == "revertEntry":
        body = {"reason": "x"}
    return path, body


PROTECTED = [ep for ep in ENDPOINTS if ep.scope]


@pytest.mark.parametrize("ep", PROTECTED, ids=lambda e: e.operation_id)
@pytest.mark.parametrize("who", ["none", "malformed", "wrong", "revoked", "other_guild", "wrong_scope"])
def test_auth_matrix_on_every_endpoint(api_db, keys, ep, who):
    # Given a request to the endpoint with this caller
    path, body = _sample_request(ep)
    key = {"none": None, "malformed": "", "wrong": "pbk_" + "x" * 43, "revoked": keys["revoked"],
           "other_guild": keys["other"], "wrong_scope": keys["write"] if ep.scope == "read" else keys["read"]}[who]  # fmt: skip
    before = _sql(api_db, "SELECT count(*) FROM transactions")[0][0]
    mine = _sql(api_db, "SELECT count(*) FROM transactions WHERE guild_id=%s", (GUILD,))[0][0]
    headers = {"authorization": "Basic abc"} if who == "malformed" else None
    status, _, answer = call(ep.method, path, key=key if who != "malformed" else None, body=body, idem=f"auth-{who}-{ep.operation_id}",
                             headers=headers)  # fmt: skip
    # Then: 401 without a valid live key, 403 for the wrong scope; another guild's key sees its own guild
    if who == "other_guild":
        assert status in (200, 201, 404), answer  # its own guild: no member, no entry 1 there
        if status == 200 and "balance" in answer:
            assert answer["balance"] == 0
    else:
        assert status == {"wrong_scope": 403}.get(who, 401), answer
        assert set(answer) == {"error"} and set(answer["error"]) == {"code", "message"}
        assert _sql(api_db, "SELECT count(*) FROM transactions")[0][0] == before
    # And never anything in guild A through a key of guild B or a refused key
    assert _sql(api_db, "SELECT count(*) FROM transactions WHERE guild_id=%s", (GUILD,))[0][0] == mine


def test_write_read_and_audit(api_db, keys):
    # When a write key awards Alice 10 with an Idempotency-Key
    status, headers, answer = _award(keys["rw"], "w-1", amount=10)
    # Then the entry is made, with source api and the key's name as actor
    assert status == 201, answer
    assert answer["balance"] == 10 and answer["entries"][0]["source"] == "api"
    assert answer["entries"][0]["actor"] == "api:site" and "idempotent-replayed" not in headers
    # And reads see it: balance and rank, the leaderboard, the entries since a cursor
    status, _, member = call("GET", f"/api/v1/members/{ALICE}", key=keys["read"])
    assert (
        status == 200 and member["balance"] == 10 and member["rank"] == 1 and member["user_id"] == str(ALICE)
    )
    status, _, page = call("GET", "/api/v1/entries?after=0&limit=5", key=keys["read"])
    assert status == 200 and [e["id"] for e in page["entries"]] == [answer["entries"][0]["id"]]
    status, _, page = call("GET", f"/api/v1/entries?after={page['next_cursor']}", key=keys["read"])
    assert status == 200 and page["entries"] == [] and page["next_cursor"] == answer["entries"][0]["id"]
    status, _, mine = call("GET", f"/api/v1/members/{ALICE}/entries", key=keys["read"])
    assert status == 200 and len(mine["entries"]) == 1
    status, _, ach = call("GET", "/api/v1/achievements", key=keys["read"])
    assert status == 200 and ach == {"achievements": []}
    # And every use is in the audit log, with the key
    actions = [
        a for (a,) in _sql(api_db, "SELECT action FROM admin_audit WHERE actor_name='api:site' ORDER BY id")
    ]
    assert "api.createEntry" in actions
    reads = _sql(
        api_db, "SELECT action, after->>'status' FROM admin_audit WHERE actor_name='api:reader' ORDER BY id"
    )
    assert ("api.getMember", "200") in reads and ("api.listEntries", "200") in reads
    assert _sql(api_db, "SELECT last_used_at IS NOT NULL FROM api_keys WHERE name='reader'")[0][0]


def test_leaderboard_pages_by_cursor_to_the_end(api_db, keys):
    for i in range(5):
        _award(keys["rw"], f"lb-{i}", user=882000000000000000 + i, amount=100 + i)
    seen, cursor = [], None
    while True:
        status, _, page = call("GET", "/api/v1/leaderboard?limit=2" + (f"&cursor={cursor}" if cursor else ""),
                               key=keys["read"])  # fmt: skip
        assert status == 200, page
        seen += [(r["rank"], r["user_id"]) for r in page["rows"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [r for r, _ in seen] == sorted(r for r, _ in seen)
    assert len(seen) == len({u for _, u in seen}) == _sql(api_db, "SELECT count(*) FROM points WHERE guild_id=%s",
                                                         (GUILD,))[0][0]  # fmt: skip
    status, _, answer = call("GET", "/api/v1/leaderboard?period=season", key=keys["read"])
    assert status == 404 and answer["error"]["code"] == "not_found"
    status, _, week = call("GET", "/api/v1/leaderboard?period=week&limit=3", key=keys["read"])
    assert status == 200 and week["rows"][0]["balance"] == 104


def test_idempotency_replay_different_body_and_missing_header(api_db, keys):
    status, _, first = _award(keys["rw"], "same-1", user=BOB, amount=7)
    assert status == 201
    # Same key, same body: the stored answer, no second effect
    status, headers, again = _award(keys["rw"], "same-1", user=BOB, amount=7)
    assert status == 201 and again == first and headers["idempotent-replayed"] == "true"
    assert (
        _sql(api_db, "SELECT balance FROM points WHERE guild_id=%s AND user_id=%s", (GUILD, BOB))[0][0] == 7
    )
    # Same key, different body: 422, saying so, nothing written
    status, _, answer = _award(keys["rw"], "same-1", user=BOB, amount=8)
    assert status == 422 and answer["error"]["code"] == "idempotency_key_reused"
    assert "different request" in answer["error"]["message"]
    # The same Idempotency-Key under another API key is another request
    status, _, other = _award(keys["write"], "same-1", user=BOB, amount=7)
    assert status == 201 and other["balance"] == 14
    # Without the header: refused, explaining it
    body = {"user_id": str(BOB), "operation": "award", "amount": 1, "reason": "x"}
    status, _, answer = call("POST", "/api/v1/entries", key=keys["rw"], body=body)
    assert status == 400 and answer["error"]["code"] == "idempotency_key_required"
    assert "Idempotency-Key" in answer["error"]["message"] and "retry" in answer["error"]["message"]
    assert _sql(api_db, "SELECT count(*) FROM transactions WHERE user_id=%s", (BOB,))[0][0] == 2


def test_a_refusal_is_stored_and_replayed_too(api_db, keys):
    status, _, answer = _award(keys["rw"], "too-much", user=BOB, amount=10**9, operation="deduct")
    assert status == 422 and answer["error"]["code"] in ("insufficient_balance", "limit_exceeded")
    status, headers, again = _award(keys["rw"], "too-much", user=BOB, amount=10**9, operation="deduct")
    assert (status, again) == (422, answer) and headers["idempotent-replayed"] == "true"


def test_revert_once(api_db, keys):
    _, _, made = _award(keys["rw"], "to-revert", user=BOB, amount=3)
    entry = made["entries"][0]["id"]
    status, _, reverted = call("POST", f"/api/v1/entries/{entry}/revert", key=keys["rw"], body={"reason": "oops"},
                               idem="rv-1")  # fmt: skip
    assert status == 201 and reverted["entries"][0]["reverts_id"] == entry
    status, _, again = call("POST", f"/api/v1/entries/{entry}/revert", key=keys["rw"], body={"reason": "oops"},
                            idem="rv-2")  # fmt: skip
    assert status == 409 and again["error"]["code"] == "already_reverted"


def test_concurrent_same_key_from_separate_processes_makes_one_effect(api_db, keys, database_url):
    # Given 6 processes (6 containers), released together with the same key and body
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(6)
    body = {"user_id": "883000000000000001", "operation": "award", "amount": 5, "reason": "race"}
    args = ("POST", "/api/v1/entries")
    kwargs = {"key": keys["rw"], "body": body, "idem": "race-1"}
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=call_to_queue, args=(database_url, barrier, queue, args, kwargs)) for _ in range(6)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    # Then one entry, and every answer is that entry (the first's, or its replay), or a 409 to retry
    assert _sql(
        api_db, "SELECT count(*), sum(amount) FROM transactions WHERE user_id=883000000000000001"
    ) == [(1, 5)]
    made = [r for r in results if r[0] == 201]
    assert made and all(r[2] == made[0][2] for r in made)
    assert all(r[0] in (201, 409) for r in results), results
    assert sum(1 for r in made if "idempotent-replayed" not in r[1]) == 1


def test_a_second_request_waits_for_the_first_then_replays_or_gets_409(api_db, keys):
    # Given a first request under key "slow" that holds its claim until released
    caller = api_db.run(gate.admit, keys["rw"], "write", "/t", limit=1000, window_s=60)
    body = {"user_id": str(ALICE), "operation": "award", "amount": 1, "reason": "slow"}
    print_ = gate.fingerprint("POST", "/api/v1/entries", body)
    release = threading.Event()
    holding = threading.Event()
    first_db = Database(api_db.dsn)

    def effect(conn):
        holding.set()
        release.wait(20)
        return gate.Answer(201, {"first": True})

    results = {}

    def first(idem):
        results[idem] = first_db.run(gate.once, caller, idem, print_, "api.createEntry", "/t", effect)

    for idem, hold_s in (("slow-1", 1.0), ("slow-2", 6.0)):
        release.clear()
        holding.clear()
        t = threading.Thread(target=first, args=(idem,))
        t.start()
        assert holding.wait(20)
        threading.Timer(hold_s, release.set).start()
        # When a second request with the same key and body comes while the first is in flight
        status, headers, answer = call("POST", "/api/v1/entries", key=keys["rw"], body=body, idem=idem)
        t.join()
        if hold_s < float(gate.IDEMPOTENCY_WAIT.rstrip("s")):
            # Then it waited, and got the first's answer without a second effect
            assert (status, answer) == (201, {"first": True}) and headers["idempotent-replayed"] == "true"
        else:
            # Then past the wait it is told to come back, and nothing is written for it
            assert status == 409 and answer["error"]["code"] == "idempotency_key_in_use"
    first_db.close()


def test_idempotency_keys_expire_after_24_hours(api_db, keys):
    _award(keys["rw"], "old-key", user=BOB, amount=1)
    # Given the key's answer is 23 hours old: kept
    api_db.run(lambda c: c.execute("UPDATE api_idempotency SET created_at = now() - interval '23 hours' "
                                   "WHERE idem_key='old-key'"))  # fmt: skip
    api_db.run(gate.prune)
    status, headers, _ = _award(keys["rw"], "old-key", user=BOB, amount=1)
    assert headers.get("idempotent-replayed") == "true"
    # Given it is 25 hours old: the API's stored answer is pruned
    api_db.run(lambda c: c.execute("UPDATE api_idempotency SET created_at = now() - interval '25 hours' "
                                   "WHERE idem_key='old-key'"))  # fmt: skip
    assert api_db.run(gate.prune) == 1
    assert _sql(api_db, "SELECT count(*) FROM api_idempotency WHERE idem_key='old-key'")[0][0] == 0
    before = _sql(api_db, "SELECT count(*) FROM transactions WHERE user_id=%s", (BOB,))[0][0]
    # When the same key comes back: the ledger's own operation key (never pruned) still holds, so
    # the answer is rebuilt from the first entry and nothing is paid twice
    status, headers, again = _award(keys["rw"], "old-key", user=BOB, amount=1)
    assert status == 201 and "idempotent-replayed" not in headers and again["entries"][0]["amount"] == 1
    assert _sql(api_db, "SELECT count(*) FROM transactions WHERE user_id=%s", (BOB,))[0][0] == before
    # And with another body it is refused as a reused key
    api_db.run(lambda c: c.execute("DELETE FROM api_idempotency WHERE idem_key='old-key'"))
    status, _, answer = _award(keys["rw"], "old-key", user=BOB, amount=2)
    assert status == 422 and answer["error"]["code"] == "idempotency_conflict"
    assert _sql(api_db, "SELECT count(*) FROM transactions WHERE user_id=%s", (BOB,))[0][0] == before


@pytest.mark.parametrize(
    ("body", "raw", "code"),
    [
        (None, b"{not json", "invalid_input"),
        (None, b"", "invalid_input"),
        ({"user_id": "1x", "operation": "award", "amount": 1, "reason": "r"}, None, "invalid_input"),
        ({"user_id": str(ALICE), "operation": "steal", "amount": 1, "reason": "r"}, None, "invalid_input"),
        ({"user_id": str(ALICE), "operation": "award", "amount": 1.5, "reason": "r"}, None, "invalid_input"),
        ({"user_id": str(ALICE), "operation": "award", "amount": "1", "reason": "r"}, None, "invalid_input"),
        ({"user_id": str(ALICE), "operation": "award", "amount": 1}, None, "invalid_input"),
        ({"user_id": str(ALICE), "operation": "award", "amount": 1, "reason": ""}, None, "invalid_input"),
        (
            {"user_id": str(ALICE), "operation": "award", "amount": 1, "reason": "r", "x": 1},
            None,
            "invalid_input",
        ),
        ({"user_id": str(ALICE), "operation": "award", "amount": -1, "reason": "r"}, None, "invalid_input"),
        (
            {"user_id": str(ALICE), "operation": "award", "amount": 10**12, "reason": "r"},
            None,
            "limit_exceeded",
        ),
        (
            {"user_id": "99999999999999999999", "operation": "award", "amount": 1, "reason": "r"},
            None,
            "invalid_input",
        ),
    ],
)
def test_bad_writes_get_a_plain_json_error_and_write_nothing(api_db, keys, body, raw, code):
    before = _sql(api_db, "SELECT count(*) FROM transactions")[0][0]
    status, headers, answer = call("POST", "/api/v1/entries", key=keys["rw"], body=body, raw=raw,
                                   idem=f"bad-{body}-{raw}"[:200])  # fmt: skip
    assert status in (400, 422), answer
    assert headers["content-type"] == "application/json"
    assert answer["error"]["code"] == code and answer["error"]["message"]
    assert "Traceback" not in str(answer)
    assert _sql(api_db, "SELECT count(*) FROM transactions")[0][0] == before


@pytest.mark.parametrize("target", ["/api/v1/nope", f"/api/v1/members/{ALICE}?period=year",
                                    "/api/v1/members/abc", "/api/v1/entries?limit=0", "/api/v1/leaderboard?cursor=x",
                                    "/api/v1/entries?colour=red"])  # fmt: skip
def test_bad_reads_get_a_plain_json_error(api_db, keys, target):
    status, headers, answer = call("GET", target, key=keys["read"])
    assert status in (400, 404) and headers["content-type"] == "application/json"
    assert set(answer["error"]) == {"code", "message"}


def test_limit_per_key_429_with_retry_after(api_db, keys):
    key = _key(api_db, ("read",), name="busy")
    caller_limit = dict(limit=3, window_s=3600)
    for _ in range(3):
        api_db.run(gate.admit, key, "read", "/t", **caller_limit)
    with pytest.raises(gate.ApiError) as refused:
        api_db.run(gate.admit, key, "read", "/t", **caller_limit)
    assert refused.value.status == 429 and 0 < int(refused.value.headers["Retry-After"]) <= 3600
    # Through the handler with the configured limit (API_RATE_LIMIT): past it, 429 and Retry-After
    os.environ["API_RATE_LIMIT"] = "2"
    from pointsbot.platform import config

    config.reset_settings()
    try:
        other = _key(api_db, ("read",), name="busy2")
        answers = [call("GET", f"/api/v1/members/{ALICE}", key=other) for _ in range(3)]
    finally:
        del os.environ["API_RATE_LIMIT"]
        config.reset_settings()
    assert [a[0] for a in answers] == [200, 200, 429]
    assert answers[2][2]["error"]["code"] == "rate_limited" and int(answers[2][1]["retry-after"]) >= 1


def test_rewards_and_purchases_since_a_cursor(api_db, keys):
    from pointsbot.community import store
    from pointsbot.platform.config import load_settings

    # Given two rewards (one off sale) and purchases by Alice and Bob
    _award(keys["rw"], "shop-money-a", user=ALICE, amount=500)
    _award(keys["rw"], "shop-money-b", user=BOB, amount=500)
    mug = api_db.run(store.create_reward, guild_id=GUILD, actor_id=1, actor_name="admin", kind="item",
                     name="API mug", price=20, stock="5")  # fmt: skip
    api_db.run(store.create_reward, guild_id=GUILD, actor_id=1, actor_name="admin", kind="item", name="API hat",
               price=30, enabled=False)  # fmt: skip
    bought = [api_db.run(store.purchase, guild_id=GUILD, user_id=u, reward_id=mug.id, interaction_id=883000000000 + i,
                         actor_name="buyer", settings=load_settings({})).purchase
              for i, u in enumerate((ALICE, BOB, ALICE))]  # fmt: skip
    api_db.run(
        store.refund, guild_id=GUILD, purchase_id=bought[2].id, reason="broke", actor_id=1, actor_name="adm"
    )
    # When an integration lists the rewards
    status, _, answer = call("GET", "/api/v1/rewards", key=keys["read"])
    # Then it sees both, with whether each is on sale
    assert status == 200
    by_name = {r["name"]: r for r in answer["rewards"]}
    assert by_name["API mug"]["on_sale"] is True and by_name["API mug"]["stock"] == 3  # 5, 3 sold, 1 back
    assert by_name["API hat"]["on_sale"] is False and by_name["API hat"]["price"] == 30
    # And the guild's purchases by cursor, two at a time, oldest first, then nothing new
    seen, cursor = [], "0"
    while True:
        status, _, page = call("GET", f"/api/v1/purchases?after={cursor}&limit=2", key=keys["read"])
        assert status == 200, page
        seen += page["purchases"]
        if not page["purchases"]:
            assert page["next_cursor"] == cursor
            break
        cursor = page["next_cursor"]
    assert [p["id"] for p in seen] == [str(b.id) for b in bought]
    assert [p["state"] for p in seen] == ["pending", "pending", "refunded"] and seen[2]["refund_entry_id"]
    assert seen[0] == store.purchase_json(api_db.run(store.get_purchase, GUILD, bought[0].id))
    # And a member's own purchases
    status, _, mine = call("GET", f"/api/v1/members/{ALICE}/purchases", key=keys["read"])
    assert status == 200 and [p["id"] for p in mine["purchases"]] == [str(bought[0].id), str(bought[2].id)]
    status, _, theirs = call("GET", f"/api/v1/members/{ALICE}/purchases", key=keys["other"])
    assert status == 200 and theirs == {
        "purchases": [],
        "next_cursor": "0",
    }  # another guild's key: its own guild
    status, _, bad = call("GET", "/api/v1/purchases?after=-1", key=keys["read"])
    assert status == 400 and bad["error"]["code"] == "invalid_input"


def test_responses_match_the_openapi_document(api_db, keys):
    # Every endpoint's answer fits the schema the document gives it (the contract, from the code)
    doc = openapi()
    _award(keys["rw"], "contract-1", user=ALICE, amount=2)
    for ep in ENDPOINTS:
        path, body = _sample_request(ep)
        if ep.operation_id == "revertEntry":
            entry = _sql(
                api_db, "SELECT max(id) FROM transactions WHERE guild_id=%s AND kind='award'", (GUILD,)
            )[0][0]
            path = f"/api/v1/entries/{entry}/revert"
        status, _, answer = call(
            ep.method, path, key=keys["rw"], body=body, idem=f"contract-{ep.operation_id}"
        )
        op = doc["paths"][ep.path][ep.method.lower()]
        assert str(status) in op["responses"], (ep.operation_id, status, answer)
        check(answer, op["responses"][str(status)]["content"]["application/json"]["schema"], ep.operation_id)
    status, _, served = call("GET", "/api/v1/openapi.json")
    assert status == 200 and served == doc
    status, headers, page = call("GET", "/api/v1/docs")
    assert (
        status == 200
        and "POST /api/v1/entries" in page
        and "script" not in headers["content-security-policy"]
    )


def test_time_is_not_asserted_but_the_ledger_stays_exact(api_db):
    # The invariant after everything above: every balance is the sum of its entries
    rows = _sql(api_db, "SELECT p.user_id FROM points p WHERE p.balance <> (SELECT coalesce(sum(amount), 0) FROM "
                        "transactions t WHERE t.guild_id=p.guild_id AND t.user_id=p.user_id)")  # fmt: skip
    assert rows == []
    assert ledger.balance is not None and time is not None
