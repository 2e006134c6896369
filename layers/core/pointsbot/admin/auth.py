"""Who may use the admin site: local accounts (scrypt), sign-in throttling, Discord OAuth2.

A Discord user may manage a guild they own or hold ADMINISTRATOR or MANAGE_GUILD in, and
only guilds the bot serves (the guild has a row in `guilds`). That is decided here, on the
server, from what Discord's API says, never from anything the browser sends.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import urllib.parse
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING

import psycopg

from ..community import audit
from ..discord.permissions import ADMINISTRATOR, MANAGE_GUILD, parse_permissions
from ..platform.errors import DomainError, InvalidInput
from ..platform.observability import logger
from . import sessions
from .sessions import Identity, Session

if TYPE_CHECKING:
    from ..platform.config import Settings
    from ..platform.db import Database

THROTTLE_WINDOW = timedelta(minutes=15)
# scrypt's cost: 2**15 * 8 * 128 bytes = 32 MiB and about 0.1 s per check, a fair price
# for a sign-in and a high one for guessing.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024
MIN_PASSWORD = 12


class SignInRefused(DomainError):
    """Wrong name or password, or a disabled account: one message for all, on purpose."""

    code = "sign_in_refused"


class TooManyAttempts(DomainError):
    code = "too_many_attempts"


class OAuthFailed(DomainError):
    code = "oauth_failed"


class DiscordUnreachable(OAuthFailed):
    """Discord could not be asked (network, 5xx, rate limit): no answer, not a refusal."""


# -- passwords -------------------------------------------------------------------------------
def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, maxmem=_SCRYPT_MAXMEM
    )
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
            maxmem=_SCRYPT_MAXMEM, dklen=len(expected),
        )  # fmt: skip
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


# A real hash to check against when the name is unknown, so both cases cost the same time.
_DUMMY_HASH: str | None = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
    return _DUMMY_HASH


# -- local accounts --------------------------------------------------------------------------
@dataclass(frozen=True)
class LocalAccount:
    id: int
    name: str
    guild_ids: tuple[int, ...]
    disabled: bool


def _check_name(name: str) -> str:
    text = (name or "").strip()
    if not 1 <= len(text) <= 64 or not all(c.isalnum() or c in "._-@" for c in text):
        raise InvalidInput("An account name is 1 to 64 letters, digits, dots, dashes, underscores or @.")
    return text


def create_account(conn: psycopg.Connection, name: str, password: str, guild_ids: list[int]) -> LocalAccount:
    name = _check_name(name)
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"The password must be at least {MIN_PASSWORD} characters.")
    if not guild_ids:
        raise InvalidInput("An account manages at least one guild (--guild ID).")
    from ..ledger.guilds import ensure_guild

    for guild_id in guild_ids:
        ensure_guild(conn, guild_id)
    row = conn.execute(
        "INSERT INTO admin_accounts (name, password_hash, guild_ids) VALUES (%s, %s, %s) "
        "ON CONFLICT DO NOTHING RETURNING id",
        (name, hash_password(password), list(guild_ids)),
    ).fetchone()
    if row is None:
        raise InvalidInput(f"There is already an account named {name!r}.")
    return LocalAccount(row[0], name, tuple(guild_ids), False)


def set_password(conn: psycopg.Connection, name: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"The password must be at least {MIN_PASSWORD} characters.")
    done = conn.execute(
        "UPDATE admin_accounts SET password_hash = %s, updated_at = now() WHERE lower(name) = lower(%s)",
        (hash_password(password), name),
    ).rowcount
    if not done:
        raise InvalidInput(f"There is no account named {name!r}.")


def set_disabled(conn: psycopg.Connection, name: str, disabled: bool) -> None:
    done = conn.execute(
        "UPDATE admin_accounts SET disabled = %s, updated_at = now() WHERE lower(name) = lower(%s)",
        (disabled, name),
    ).rowcount
    if not done:
        raise InvalidInput(f"There is no account named {name!r}.")
    if disabled:  # a disabled account's open sessions end too
        conn.execute(
            "DELETE FROM admin_sessions WHERE identity->>'kind' = 'local' AND lower(identity->>'name') = lower(%s)",
            (name,),
        )


def list_accounts(conn: psycopg.Connection) -> list[LocalAccount]:
    rows = conn.execute(
        "SELECT id, name, guild_ids, disabled FROM admin_accounts ORDER BY lower(name)"
    ).fetchall()
    return [LocalAccount(r[0], r[1], tuple(r[2]), r[3]) for r in rows]


def _throttle_keys(name: str, address: str) -> list[tuple[str, int]]:
    """(key, multiple of the limit). A name is throttled per client address, so a stranger
    guessing an admin's password locks out only their own address; one address guessing many
    names meets the address limit; guessing one name from many addresses meets a per-name
    limit far above what one address may try, which only a spread-out attack reaches. That
    name-wide limit would lock the admin out too, were it not for the device cookie below."""
    name = name.strip().lower()
    return [(f"name-addr:{name}|{address}", 1), (f"addr:{address}", 4), (f"name:{name}", 20)]


# -- device cookies (OWASP, "Slow Down Online Guessing Attacks with Device Cookies") ---------------
# A browser that has signed in as a name gets a device cookie for that name. A sign-in that
# brings a valid one is limited per device only (ADMIN_LOGIN_MAX_FAILURES in the window), never
# by the name-wide or address limits, so however many addresses a stranger guesses from, the
# admin's own browser still gets in. Without one (a new browser, a stranger) every limit applies.
# The cookie is `<name>.<nonce>.<mac>`: the MAC is an HMAC-SHA256 of the name and nonce under a
# key derived from the account's password hash, which never leaves the database. So no key to
# manage, a stranger cannot make one, and a password change (or a deleted account) voids every
# device cookie of that name.
DEVICE_COOKIE_DAYS = 90


def _device_mac(name: str, nonce: str, password_hash: str) -> str:
    key = hashlib.sha256(b"pointsbot admin device cookie|" + password_hash.encode()).digest()
    mac = hmac.new(key, f"{name.strip().lower()}|{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _password_hash(conn: psycopg.Connection, name: str) -> str | None:
    row = conn.execute(
        "SELECT password_hash FROM admin_accounts WHERE lower(name) = lower(%s) AND NOT disabled",
        ((name or "").strip(),),
    ).fetchone()
    return row[0] if row else None


def issue_device_cookie(conn: psycopg.Connection, name: str) -> str | None:
    """A new device cookie value for an account that has just signed in (None if it has not)."""
    stored = _password_hash(conn, name)
    if stored is None:
        return None
    label = base64.urlsafe_b64encode(name.strip().lower().encode()).decode().rstrip("=")
    nonce = secrets.token_urlsafe(16)
    return f"{label}.{nonce}.{_device_mac(name, nonce, stored)}"


def trusted_device(conn: psycopg.Connection, name: str, cookie: str | None) -> str | None:
    """The device's throttle key when `cookie` is a valid device cookie for `name`, else None."""
    if not cookie or not cookie.isascii() or cookie.count(".") != 2:
        return None
    label, nonce, mac = cookie.split(".")
    try:
        cookie_name = base64.urlsafe_b64decode(label + "=" * (-len(label) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if cookie_name != (name or "").strip().lower():
        return None
    stored = _password_hash(conn, name)
    if stored is None or not hmac.compare_digest(_device_mac(name, nonce, stored).encode(), mac.encode()):
        return None
    return f"device:{nonce}"


def _failures(conn: psycopg.Connection, key: str) -> int:
    return conn.execute(
        "SELECT count(*) FROM admin_login_failures WHERE throttle_key = %s AND failed_at > now() - %s",
        (key, THROTTLE_WINDOW),
    ).fetchone()[0]


def check_throttle(
    conn: psycopg.Connection, name: str, address: str, max_failures: int, device: str | None = None
) -> None:
    """TooManyAttempts when this attempt is over its limits: the trusted device's own (`device`,
    from `trusted_device`), or else the name-and-address, address and name-wide ones."""
    keys = [(device, 1)] if device else _throttle_keys(name, address)
    for key, factor in keys:
        if _failures(conn, key) >= max_failures * factor:
            raise TooManyAttempts("Too many failed sign-ins. Wait 15 minutes and try again.")


def record_failure(
    conn: psycopg.Connection, name: str, address: str, device_cookie: str | None = None
) -> None:
    """Count a failed sign-in: against the device alone when it brought a valid device cookie
    for the name, else against the name-and-address, the address and the name."""
    device = trusted_device(conn, name, device_cookie)
    for key, _ in [(device, 1)] if device else _throttle_keys(name, address):
        conn.execute("INSERT INTO admin_login_failures (throttle_key) VALUES (%s)", (key,))
    conn.execute("DELETE FROM admin_login_failures WHERE failed_at < now() - %s", (THROTTLE_WINDOW * 4,))


def authenticate_local(conn: psycopg.Connection, name: str, password: str) -> Identity:
    """The identity for a right name and password; SignInRefused otherwise (same message)."""
    row = conn.execute(
        "SELECT name, password_hash, guild_ids, disabled FROM admin_accounts WHERE lower(name) = lower(%s)",
        ((name or "").strip(),),
    ).fetchone()
    stored = row[1] if row else _dummy_hash()
    good = verify_password(password or "", stored)
    if row is None or not good or row[3]:
        raise SignInRefused("The name or the password is wrong.")
    return Identity(kind="local", name=row[0], guild_ids=tuple(row[2]), user_id=None)


# -- Discord OAuth2 --------------------------------------------------------------------------
@dataclass(frozen=True)
class DiscordGuildGrant:
    """One guild from GET /users/@me/guilds, as far as the admin site cares."""

    guild_id: int
    name: str
    owner: bool
    permissions: int
    icon: str | None = None  # the icon's hash, for the admin site's header

    @property
    def can_manage(self) -> bool:
        return self.owner or bool(self.permissions & (ADMINISTRATOR | MANAGE_GUILD))


def authorize_url(authorize_base: str, client_id: str, redirect_uri: str, state: str) -> str:
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "scope": "identify guilds",
            "redirect_uri": redirect_uri,
            "state": state,
            "prompt": "none",
        }
    )
    return f"{authorize_base}?{query}"


# Each of a Discord sign-in's three calls gets this long: together they fit inside the admin
# request's deadline (admin_site/app.py), and Discord answers them in well under a second.
SIGN_IN_TIMEOUT_S = 2.0


class DiscordOAuthClient:
    """The three OAuth2 calls of the admin sign-in (token exchange, the user, their guilds),
    made through the bot's one Discord REST client with the user's credentials."""

    def __init__(self, api_base: str, client_id: str, client_secret: str, bot_url: str, timeout: float = 10):
        from ..discord.rest import DiscordClient

        self.client_id = client_id
        self.client_secret = client_secret
        self.user_profile: dict = {}  # GET /users/@me as last answered (current_user)
        # No retry waits in a sign-in: a rate-limited sign-in fails plainly and is tried again.
        self._rest = DiscordClient(api_base, "", bot_url=bot_url, timeout=timeout, max_retry_wait=0)

    def _call(self, method: str, path: str, *, data: dict | None = None, bearer: str | None = None):
        from ..discord.rest import DiscordError, DiscordUnavailable, RateLimited

        if bearer:
            authorization = f"Bearer {bearer}"
        else:
            basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            authorization = f"Basic {basic}"
        try:
            return self._rest.request(method, path, form_body=data, authorization=authorization)
        except DiscordError as exc:
            raise OAuthFailed(f"Discord refused the sign-in ({exc.status}). Please try again.") from exc
        except (DiscordUnavailable, RateLimited) as exc:
            raise DiscordUnreachable(
                "Discord could not be reached for the sign-in. Please try again."
            ) from exc

    def exchange_code(self, code: str, redirect_uri: str) -> str:
        answer = self._call(
            "POST",
            "/oauth2/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
        )
        token = (answer or {}).get("access_token")
        if not token:
            raise OAuthFailed("Discord did not hand out an access token. Please try again.")
        return token

    def current_user(self, access_token: str) -> tuple[int, str]:
        user = self._call("GET", "/users/@me", bearer=access_token) or {}
        self.user_profile = user  # names and avatar, kept at sign-in (profiles.record_user)
        from ..platform.ids import parse_snowflake

        name = user.get("global_name") or user.get("username") or str(user.get("id"))
        return parse_snowflake(user.get("id"), "user id"), name

    def guilds(self, access_token: str) -> list[DiscordGuildGrant]:
        rows = self._call("GET", "/users/@me/guilds", bearer=access_token) or []
        grants = []
        for guild in rows:
            try:
                grants.append(
                    DiscordGuildGrant(
                        int(guild["id"]), str(guild.get("name", "")), bool(guild.get("owner")),
                        parse_permissions(guild.get("permissions")),
                        guild.get("icon") if isinstance(guild.get("icon"), str) else None,
                    )
                )  # fmt: skip
            except (KeyError, TypeError, ValueError):
                continue  # a malformed entry grants nothing
        return grants


def discord_identity(
    conn: psycopg.Connection,
    user_id: int,
    name: str,
    grants: list[DiscordGuildGrant],
    profile: dict | None = None,
) -> Identity:
    """The guilds this Discord user may manage: manageable by them and served by the bot.
    `profile` (GET /users/@me) is kept so the site shows the admin's name and avatar."""
    from ..community import profiles

    manageable = [g for g in grants if g.can_manage]
    if not manageable:
        raise OAuthFailed("You do not manage any server (owner, Administrator or Manage Server).")
    served = conn.execute(
        "SELECT guild_id FROM guilds WHERE guild_id = ANY(%s)", ([g.guild_id for g in manageable],)
    ).fetchall()
    served_ids = {r[0] for r in served}
    for grant in manageable:  # keep the names Discord shows, for the guild switcher
        if grant.guild_id in served_ids and grant.name:
            profiles.record_guild(conn, grant.guild_id, grant.name, grant.icon)
    allowed = tuple(g.guild_id for g in manageable if g.guild_id in served_ids)
    if not allowed:
        raise OAuthFailed("The bot is not in any server you manage.")
    if profile:
        profiles.record_user(conn, profile)
    return Identity(kind="discord", name=name, guild_ids=allowed, user_id=user_id)


def guild_names(conn: psycopg.Connection, guild_ids: list[int]) -> list[tuple[int, str]]:
    """(id, name) of the given guilds, by name; a guild without a name shows its id."""
    rows = conn.execute(
        "SELECT guild_id, name FROM guilds WHERE guild_id = ANY(%s) ORDER BY lower(name), guild_id",
        (guild_ids,),
    ).fetchall()
    return [(r[0], r[1] or str(r[0])) for r in rows]


def sign_in_local(
    conn: psycopg.Connection,
    name: str,
    password: str,
    address: str,
    max_failures: int,
    device_cookie: str | None = None,
) -> Identity:
    """Throttle, then check the password (a refusal is recorded by the caller, after rollback).
    `device_cookie` is what the browser's device cookie holds, if anything (see above)."""
    device = trusted_device(conn, name, device_cookie)
    check_throttle(conn, name, address, max_failures, device)
    identity = authenticate_local(conn, name, password)
    # The admin's own typos from this address (and this device) are forgiven; the name's count
    # over all addresses stays, so signing in does not reset what a spread-out guesser has used.
    forgiven = [_throttle_keys(name, address)[0][0], device or ""]
    conn.execute("DELETE FROM admin_login_failures WHERE throttle_key = ANY(%s)", (forgiven,))
    return identity


# -- re-checking a Discord session's rights ----------------------------------------------------
# A re-check happens inside an admin's page request, so Discord gets little time to answer;
# a slow answer counts as unreachable (the grace below), not as a refusal.
RECHECK_TIMEOUT_S = 3.0


def recheck_discord_rights(
    db: Database, session: Session, settings: Settings, client: DiscordOAuthClient | None = None
) -> Session | None:
    """Ask Discord again which guilds a Discord session's user may manage, once the last
    answer is older than ADMIN_RIGHTS_RECHECK_MINUTES. Guilds no longer managed (or no longer
    served) leave the session; with none left, or when Discord refuses the stored token
    (revoked, expired), the session ends and None is returned. While Discord cannot be
    reached the session goes on until ADMIN_RIGHTS_GRACE_MINUTES after the last confirmation,
    then ends: a Discord outage must not sign every admin out mid-task, nor keep rights alive
    unchecked for long. Local accounts are configured here, by whoever runs
    `admin_site.accounts`, so there is nothing in Discord to re-check them against."""
    identity = session.identity
    if identity is None or identity.kind != "discord":
        return session
    age = session.rights_age_s
    if age is not None and age < settings.admin_rights_recheck_minutes * 60:
        return session
    access_token = session.discord_token
    if access_token is None:  # nothing to ask Discord with (a session older than the re-check)
        return _end_session(db, session, "no Discord token to re-check the rights with")
    client = client or DiscordOAuthClient(settings.discord_api_base_url, settings.discord_application_id,
                                          settings.discord_client_secret, settings.bot_url,
                                          timeout=RECHECK_TIMEOUT_S)  # fmt: skip
    try:
        grants = client.guilds(access_token)
    except DiscordUnreachable as exc:
        if age is not None and age < settings.admin_rights_grace_minutes * 60:
            logger.warning("admin rights re-check: Discord unreachable, session kept within the grace",
                           extra={"user_id": identity.user_id, "rights_age_s": round(age), "error": str(exc)})  # fmt: skip
            return session
        return _end_session(db, session, "Discord could not be reached to re-check the rights")
    except OAuthFailed:
        return _end_session(db, session, "Discord refused the session's token")
    try:
        fresh = db.run(discord_identity, identity.user_id, identity.name, grants)
    except OAuthFailed:
        return _end_session(db, session, "no managed guild left")
    # Rights only shrink during a session; a guild gained in Discord comes with the next sign-in.
    kept = tuple(g for g in identity.guild_ids if g in fresh.guild_ids)
    if not kept:
        return _end_session(db, session, "no managed guild left")
    narrowed = replace(identity, guild_ids=kept)

    def confirm(conn: psycopg.Connection) -> None:
        sessions.confirm_rights(conn, session, narrowed)
        if kept != identity.guild_ids:
            audit.record(conn, guild_id=None, actor_id=identity.user_id, actor_name=identity.actor_name,
                         action="session.rights_narrowed", target="discord",
                         before={"guilds": [str(g) for g in identity.guild_ids]},
                         after={"guilds": [str(g) for g in kept]})  # fmt: skip

    db.run(confirm)
    if kept != identity.guild_ids:
        logger.info("admin rights re-check: session narrowed",
                    extra={"user_id": identity.user_id, "guilds_left": len(kept)})  # fmt: skip
    return session


def _end_session(db: Database, session: Session, why: str) -> None:
    identity = session.identity
    assert identity is not None

    def end(conn: psycopg.Connection) -> None:
        sessions.end(conn, session.token)
        audit.record(conn, guild_id=None, actor_id=identity.user_id, actor_name=identity.actor_name,
                     action="session.rights_gone", target="discord", after={"why": why})  # fmt: skip

    db.run(end)
    logger.info("admin rights re-check: session ended", extra={"user_id": identity.user_id, "why": why})
    return None
