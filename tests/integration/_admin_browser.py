"""A browser against the admin site's Lambda handler, in-process: keeps the session cookie and
sends forms from one client address (any address, unlike a real socket)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from pointsbot.admin import auth
from pointsbot.platform import runtime
from pointsbot.platform.db import Database
from pointsbot_local import apigw


def admin_site_database(database_url: str, guild_id: int, account: tuple[str, str] | None = None) -> Database:
    """Point the admin handler at this test module's database, with the guild known and, when
    given, a local admin account (name, password) of it. Callers `runtime.reset()` when done."""
    runtime.reset()
    runtime.set_database(Database(database_url))
    db = runtime.get_database()
    db.run(
        lambda conn: conn.execute(
            "INSERT INTO guilds (guild_id) VALUES (%s) ON CONFLICT DO NOTHING", (guild_id,)
        )
    )
    if account is not None:
        db.run(auth.create_account, account[0], account[1], [guild_id])
    return db


class Browser:
    """Keeps the session cookie like a browser and sends requests from one client address."""

    def __init__(self, address: str = "198.51.100.7") -> None:
        self.address = address
        self.cookie: str | None = None  # the session's
        self.others: dict[str, str] = {}  # any other cookie the site set (the device cookie)

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> dict:
        from admin_site.app import lambda_handler

        headers = {"host": "admin.test"}
        jar = {**self.others, **({"pointsbot_admin": self.cookie} if self.cookie else {})}
        if jar:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        body = b""
        if form is not None:
            headers["content-type"] = "application/x-www-form-urlencoded"
            body = urlencode(form).encode()
        event = apigw.to_event(method, path, headers, body, source_ip=self.address)
        result = lambda_handler(event, apigw.LambdaContext("admin_site"))
        for cookie in result.get("cookies", []):
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if name == "pointsbot_admin":
                self.cookie = value or None
            elif value:
                self.others[name] = value
            else:
                self.others.pop(name, None)
        return result

    def csrf(self, path: str = "/admin/login") -> str:
        body = self.request("GET", path)["body"]
        match = re.search(r'name="csrf_token" value="([^"]+)"', body)
        assert match, body[:300]
        return match.group(1)

    def sign_in(self, name: str, password: str, **extra: str) -> dict:
        form = {"csrf_token": self.csrf(), "name": name, "password": password, **extra}
        return self.request("POST", "/admin/login", form)
