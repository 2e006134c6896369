"""Helpers of the admin site's browser and HTTP tests (constants, an HTTP client, screenshots)."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "test-artifacts" / "admin"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]  # fmt: skip

GUILD_A = 710000000000000001
GUILD_B = 720000000000000002
ADMIN_NAME = "alice"
ADMIN_PASSWORD = "correct horse battery staple"


@dataclass
class Site:
    url: str  # http://127.0.0.1:PORT
    db: object  # pointsbot.platform.db.Database

    def admin(self, path: str = "/") -> str:
        return f"{self.url}/admin{path}"


def sign_in_local(page, site: Site, name: str = ADMIN_NAME, password: str = ADMIN_PASSWORD) -> None:
    page.goto(site.admin("/login"))
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("form[action='/admin/login'] button[type=submit]")


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


class HttpClient:
    """A cookie-keeping HTTP client for what a browser is not needed for (status codes)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def request(self, method: str, path: str, data: dict | None = None) -> tuple[int, dict[str, str], str]:
        body = urllib.parse.urlencode(data or {}, doseq=True).encode() if method == "POST" else None
        req = urllib.request.Request(self.site.admin(path), data=body, method=method)  # noqa: S310 - http to the local runtime
        if body is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with self.opener.open(req, timeout=30) as response:
                return (
                    response.status,
                    {k.lower(): v for k, v in response.headers.items()},
                    response.read().decode(),
                )
        except urllib.error.HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode()

    def csrf(self, path: str = "/login") -> str:
        _, _, body = self.request("GET", path)
        match = re.search(r'name="csrf_token" value="([^"]+)"', body)
        assert match, body[:500]
        return match.group(1)

    def sign_in(self, name: str = ADMIN_NAME, password: str = ADMIN_PASSWORD) -> str:
        token = self.csrf("/login")
        status, _, _ = self.request(
            "POST", "/login", {"csrf_token": token, "name": name, "password": password}
        )
        assert status == 303, status
        return self.csrf("/guilds")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # status codes are what these tests look at
        return None
