"""The reference handler: the least a Discord interactions endpoint can be. PyNaCl verifies the
signature, PING gets PONG, and /balance is one psycopg connection and one SELECT (DATABASE_URL
in the environment: no secret to read, no logging, no metrics, no tracing)."""

import json
import os

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

_key = VerifyKey(bytes.fromhex(os.environ["DISCORD_PUBLIC_KEY"]))


def lambda_handler(event, context):
    headers = event["headers"]
    body = event["body"].encode()
    try:
        _key.verify(
            headers["x-signature-timestamp"].encode() + body, bytes.fromhex(headers["x-signature-ed25519"])
        )
    except BadSignatureError:
        return {"statusCode": 401, "body": '{"error":"invalid request signature"}'}
    interaction = json.loads(body)
    if interaction["type"] == 1:
        answer = {"type": 1}
    else:
        import psycopg

        with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
            row = conn.execute(
                "SELECT balance FROM points WHERE guild_id = %s AND user_id = %s",
                (int(interaction["guild_id"]), int(interaction["member"]["user"]["id"])),
            ).fetchone()
        answer = {"type": 4, "data": {"content": f"You have {row[0] if row else 0} points.", "flags": 64}}
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(answer)}
