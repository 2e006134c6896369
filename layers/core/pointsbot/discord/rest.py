"""The one client for Discord's HTTP API: follow-ups, @original edits, DMs, command registration.

Standard library only (urllib), so the interactions function does not pay for an HTTP stack
on a cold start. Rate limits: per-route buckets learnt from the X-RateLimit-* headers, the
global limit from a 429 with `global: true`; a 429 is waited out with its `retry_after` as long
as the total wait stays under `max_retry_wait`, else `RateLimited` is raised for the caller
(the worker) to try later. Discord's global limit (50 requests per second per bot, all calls
together) is kept by a `pacer` called before every request made with the bot token: the
container's client takes a slot of the bucket every worker shares (`pacing.SharedPacer`).
Interaction webhooks (@original edits, follow-ups) are not paced: Discord does not count them
against the global limit, and a "try again" must get out while the database is away.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

DEFAULT_BASE_URL = "https://discord.com/api/v10"

# Path parameters that make a rate-limit bucket of their own ("major parameters").
_MAJOR = ("channel_id", "guild_id", "webhook_id", "webhook_token")


class DiscordError(Exception):
    """Discord said no: HTTP status, Discord's error code (e.g. 50007) and its message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"Discord {status} (code {code}): {message}")
        self.status = status
        self.code = code
        self.message = message


class CannotDmUser(DiscordError):
    """50007: the member does not accept DMs from the bot (closed DMs, blocked, left)."""


class UnknownWebhook(DiscordError):
    """10015 (and 10062, unknown interaction): the interaction token has expired or never was."""


class DiscordUnavailable(Exception):
    """Discord could not be reached or answered 5xx; trying again later may work."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RateLimited(Exception):
    """A 429 (or an exhausted bucket) that would take longer than `max_retry_wait` to wait out."""

    def __init__(self, retry_after: float, global_: bool = False, route: str = "") -> None:
        super().__init__(f"rate limited for {retry_after:.2f}s on {route or 'the API'}"
                         + (" (global)" if global_ else ""))  # fmt: skip
        self.retry_after = retry_after
        self.global_ = global_
        self.route = route


_CODE_ERRORS: dict[int, type[DiscordError]] = {
    50007: CannotDmUser,
    10015: UnknownWebhook,
    10062: UnknownWebhook,
}


@dataclass
class _Bucket:
    remaining: int
    reset_at: float  # monotonic clock


@dataclass(frozen=True)
class Route:
    """A request's route: the template (what buckets are keyed on) and its filled-in path."""

    method: str
    template: str
    params: dict[str, str]

    @property
    def path(self) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: quote(str(self.params[m.group(1)]), safe="@"), self.template)

    @property
    def key(self) -> str:
        major = ":".join(str(self.params[k]) for k in _MAJOR if k in self.params)
        return f"{self.method} {self.template} {major}"


class DiscordClient:
    """Thread-safe; one per container is enough (`from_settings`)."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        token: str = "",
        *,
        bot_url: str = "https://github.com/pointsbot/pointsbot",
        version: str | None = None,
        timeout: float = 10.0,
        max_retry_wait: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        pacer: Callable[[], None] | None = None,
    ) -> None:
        if version is None:
            from .. import __version__ as version
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.user_agent = f"DiscordBot ({bot_url}, {version})"
        self.timeout = timeout
        self.max_retry_wait = max_retry_wait
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._bucket_ids: dict[str, str] = {}  # route key -> Discord's bucket hash + major params
        self._buckets: dict[str, _Bucket] = {}
        self._global_until = 0.0
        self.pacer = pacer

    def with_pacer(self, pacer: Callable[[], None]) -> DiscordClient:
        """This client (sharing what it learnt of the buckets) with its bot calls paced by `pacer`."""
        clone = copy.copy(self)
        clone.pacer = pacer
        return clone

    def with_limits(self, timeout: float, max_retry_wait: float) -> DiscordClient:
        """This client (sharing its buckets and pacer) giving up sooner: for a page a person
        waits for, which shows what it has rather than wait out a slow Discord."""
        clone = copy.copy(self)
        clone.timeout, clone.max_retry_wait = timeout, max_retry_wait
        return clone

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> DiscordClient:
        return cls(
            settings.discord_api_base_url or DEFAULT_BASE_URL,
            settings.discord_bot_token,
            bot_url=settings.bot_url,
            **kwargs,
        )

    # -- the endpoints the bot uses -------------------------------------------------------
    def create_dm(self, user_id: str | int) -> str:
        """The DM channel id with a user (Discord returns the existing one if there is one)."""
        channel = self.request("POST", "/users/@me/channels", json_body={"recipient_id": str(user_id)})
        return str(channel["id"])

    def send_message(self, channel_id: str | int, payload: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/channels/{channel_id}/messages", {"channel_id": str(channel_id)},
                            json_body=payload)  # fmt: skip

    def edit_original(self, application_id: str, token: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Edit an interaction's first answer (how a deferred interaction gets its result)."""
        return self.request(
            "PATCH",
            "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
            {"webhook_id": str(application_id), "webhook_token": token},
            json_body=payload,
            auth=False,
        )

    def get_original(self, application_id: str, token: str) -> dict[str, Any]:
        return self.request(
            "GET",
            "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
            {"webhook_id": str(application_id), "webhook_token": token},
            auth=False,
        )

    def followup(self, application_id: str, token: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A further message on an interaction (`wait=true` so Discord returns the message)."""
        return self.request(
            "POST",
            "/webhooks/{webhook_id}/{webhook_token}",
            {"webhook_id": str(application_id), "webhook_token": token},
            json_body=payload,
            query={"wait": "true"},
            auth=False,
        )

    # -- guild roles -----------------------------------------------------------------------
    def add_member_role(
        self, guild_id: str | int, user_id: str | int, role_id: str | int, reason: str = ""
    ) -> None:
        """Give a member a role (Discord answers 204; a role the member has already is no error)."""
        self._member_role("PUT", guild_id, user_id, role_id, reason)

    def remove_member_role(
        self, guild_id: str | int, user_id: str | int, role_id: str | int, reason: str = ""
    ) -> None:
        """Take a role from a member (204; a role the member does not have is no error)."""
        self._member_role("DELETE", guild_id, user_id, role_id, reason)

    def _member_role(self, method: str, guild_id, user_id, role_id, reason: str) -> None:
        self.request(
            method,
            "/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
            {"guild_id": str(guild_id), "user_id": str(user_id), "role_id": str(role_id)},
            headers=audit_log_reason(reason),
        )

    def guild_roles(self, guild_id: str | int) -> list[dict[str, Any]]:
        return self.request("GET", "/guilds/{guild_id}/roles", {"guild_id": str(guild_id)}) or []

    def guild_channels(self, guild_id: str | int) -> list[dict[str, Any]]:
        """GET /guilds/{guild_id}/channels: the guild's channels (for the admin site's pickers)."""
        return self.request("GET", "/guilds/{guild_id}/channels", {"guild_id": str(guild_id)}) or []

    def guild(self, guild_id: str | int) -> dict[str, Any]:
        """GET /guilds/{guild_id}: the guild's name and icon (for the admin site's header)."""
        return self.request("GET", "/guilds/{guild_id}", {"guild_id": str(guild_id)}) or {}

    def guild_member(self, guild_id: str | int, user_id: str | int) -> dict[str, Any]:
        return self.request(
            "GET",
            "/guilds/{guild_id}/members/{user_id}",
            {"guild_id": str(guild_id), "user_id": str(user_id)},
        )

    def _commands_route(self, application_id: str, guild_id: str | int | None) -> tuple[str, dict[str, str]]:
        if guild_id is None:
            return "/applications/{application_id}/commands", {"application_id": str(application_id)}
        return (
            "/applications/{application_id}/guilds/{guild_id}/commands",
            {"application_id": str(application_id), "guild_id": str(guild_id)},
        )

    def get_commands(self, application_id: str, guild_id: str | int | None = None) -> list[dict[str, Any]]:
        template, params = self._commands_route(application_id, guild_id)
        # Without the flag Discord leaves out name/description localizations, which sync compares.
        return self.request("GET", template, params, query={"with_localizations": "true"}) or []

    def bulk_overwrite_commands(
        self, application_id: str, commands: list[dict[str, Any]], guild_id: str | int | None = None
    ) -> list[dict[str, Any]]:
        template, params = self._commands_route(application_id, guild_id)
        return self.request("PUT", template, params, json_body=commands) or []

    # -- the machinery ----------------------------------------------------------------------
    def request(
        self,
        method: str,
        template: str,
        params: dict[str, str] | None = None,
        *,
        json_body: Any = None,
        query: dict[str, str] | None = None,
        auth: bool = True,
        form_body: dict[str, str] | None = None,
        authorization: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One call to Discord. `authorization` replaces the bot token (OAuth2's Basic and
        Bearer credentials); `form_body` is sent url-encoded, as the OAuth2 token endpoint wants;
        `headers` are sent as well (X-Audit-Log-Reason)."""
        route = Route(method.upper(), template, params or {})
        # Only calls with the bot token count against the bot's global limit.
        paced = self.pacer is not None and auth and authorization is None
        waited = 0.0
        while True:
            waited = self._wait_for_bucket(route, waited)
            if paced:
                self.pacer()
            status, answer_headers, body = self._send(
                route, json_body, query, auth, form_body, authorization, headers
            )
            self._learn(route, answer_headers)
            if status == 429:
                retry_after, global_ = self._retry_after(answer_headers, body)
                if global_:
                    with self._lock:
                        self._global_until = max(self._global_until, self._clock() + retry_after)
                if waited + retry_after > self.max_retry_wait:
                    raise RateLimited(retry_after, global_, route.template)
                self._sleep(retry_after)
                waited += retry_after
                continue
            return self._result(route, status, body)

    def _wait_for_bucket(self, route: Route, waited: float) -> float:
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._global_until - now)
            global_ = wait > 0
            bucket = self._buckets.get(self._bucket_ids.get(route.key, route.key))
            if bucket is not None and bucket.remaining <= 0 and bucket.reset_at > now:
                if bucket.reset_at - now > wait:
                    wait, global_ = bucket.reset_at - now, False
            elif bucket is not None and bucket.reset_at <= now:
                del self._buckets[self._bucket_ids.get(route.key, route.key)]
        if wait <= 0:
            return waited
        if waited + wait > self.max_retry_wait:
            raise RateLimited(wait, global_, route.template)
        self._sleep(wait)
        return waited + wait

    def _learn(self, route: Route, headers: dict[str, str]) -> None:
        """Keep what the X-RateLimit-* headers say about this route's bucket."""
        remaining = headers.get("x-ratelimit-remaining")
        reset_after = headers.get("x-ratelimit-reset-after")
        if remaining is None or reset_after is None:
            return
        try:
            bucket = _Bucket(int(remaining), self._clock() + float(reset_after))
        except ValueError:
            return
        with self._lock:
            if "x-ratelimit-bucket" in headers:
                major = route.key.rsplit(" ", 1)[-1]
                self._bucket_ids[route.key] = f"{headers['x-ratelimit-bucket']} {major}"
            self._buckets[self._bucket_ids.get(route.key, route.key)] = bucket

    @staticmethod
    def _retry_after(headers: dict[str, str], body: bytes) -> tuple[float, bool]:
        data: Any = None
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = None
        retry_after: float | None = None
        global_ = headers.get("x-ratelimit-global", "").lower() == "true"
        if isinstance(data, dict):
            if isinstance(data.get("retry_after"), int | float):
                retry_after = float(data["retry_after"])
            global_ = global_ or bool(data.get("global"))
        if retry_after is None:
            try:
                retry_after = float(headers.get("retry-after", "1"))
            except ValueError:
                retry_after = 1.0
        return max(0.0, retry_after), global_

    def _send(
        self,
        route: Route,
        json_body: Any,
        query: dict[str, str] | None,
        auth: bool,
        form_body: dict[str, str] | None = None,
        authorization: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        url = self.base_url + route.path + (f"?{urlencode(query)}" if query else "")
        headers = {"User-Agent": self.user_agent, "Accept": "application/json", **(extra_headers or {})}
        if authorization:
            headers["Authorization"] = authorization
        elif auth and self.token:
            headers["Authorization"] = f"Bot {self.token}"
        data = None
        if json_body is not None:
            data = json.dumps(json_body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        elif form_body is not None:
            data = urlencode(form_body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(url, data=data, headers=headers, method=route.method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - base URL is configuration
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                body = exc.read()
            return exc.code, {k.lower(): v for k, v in (exc.headers or {}).items()}, body
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            raise DiscordUnavailable(f"{route.method} {route.template}: {exc}") from exc

    @staticmethod
    def _result(route: Route, status: int, body: bytes) -> Any:
        if 200 <= status < 300:
            if status == 204 or not body:
                return None
            try:
                return json.loads(body)
            except ValueError as exc:
                raise DiscordUnavailable(
                    f"{route.method} {route.template}: unreadable answer", status
                ) from exc
        if status >= 500:
            raise DiscordUnavailable(f"{route.method} {route.template}: HTTP {status}", status)
        code, message = 0, body.decode("utf-8", "replace")[:200]
        try:
            data = json.loads(body)
            if isinstance(data, dict):
                code, message = int(data.get("code") or 0), str(data.get("message") or message)
        except ValueError:
            pass
        raise _CODE_ERRORS.get(code, DiscordError)(status, code, message)


# Discord keeps at most 512 characters of an audit-log reason.
MAX_AUDIT_REASON = 512


def audit_log_reason(reason: str) -> dict[str, str]:
    """The X-Audit-Log-Reason header for `reason` (none when empty): Discord takes it URL-encoded,
    so any text (accents, emoji, line breaks) arrives as written and a header stays one line."""
    text = " ".join(reason.split())[:MAX_AUDIT_REASON]
    return {"X-Audit-Log-Reason": quote(text, safe=" ")} if text else {}


_client: DiscordClient | None = None
_made_here = False


def get_client() -> DiscordClient:
    """The container's client, made from the settings on first use."""
    global _client, _made_here
    from ..platform.config import get_settings

    settings = get_settings()
    if (
        _client is None
        or _client.base_url != (settings.discord_api_base_url or DEFAULT_BASE_URL).rstrip("/")
        # A rotated token (pointsbot/platform/secrets.py reads it again): only for a client made here,
        # not one given by set_client.
        or (_made_here and _client.token != settings.discord_bot_token)
    ):
        from .pacing import SharedPacer

        # Every bot call of the container draws on the budget all workers share.
        _client, _made_here = DiscordClient.from_settings(settings, pacer=SharedPacer()), True
    return _client


def set_client(client: DiscordClient | None) -> None:
    """Use this client in the process (tests)."""
    global _client, _made_here
    _client, _made_here = client, False
