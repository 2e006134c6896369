"""The reward store: rewards a guild sells for points, purchases, codes, fulfilment, refunds.

Every rule lives here, for the slash commands and the admin site alike: what a reward may be
(`create_reward`, `edit_reward`, `set_enabled`, `upload_codes` check their input and say no in
a plain sentence, writing nothing), and the purchase itself, one transaction on the ledger:

    lock the member's balance row (so the per-member limit and the balance are decided one
    purchase of that member at a time) -> replay if this interaction already bought
    -> the limit and the balance -> the `purchase` ledger entry (ledger.purchase_debit)
    -> the stock taken by one conditional UPDATE (no oversold stock, whoever else is buying)
    -> the purchase row -> a code assigned (FOR UPDATE SKIP LOCKED, unique per purchase) and
    its DM queued -> for a role, the role change requested (community/roles.py).

A refusal (too few points, sold out, over the limit, outside the dates, disabled) raises a
DomainError before COMMIT, so nothing of it is written. A refund is a linked ledger entry
(`purchase_refund`), never a delete; each purchase can be refunded once.

Locks are always taken in the same order (member's balance row, then the reward row, then a
code row; a refund takes the purchase row first, which no purchase holds), so purchases,
refunds, uploads and edits cannot deadlock one another.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from .. import ledger
from ..delivery import outbox
from ..ledger.guilds import GuildPolicy, ensure_guild, guild_policy
from ..ledger.statement import ensure_member
from ..platform.config import Settings, get_settings
from ..platform.errors import DomainError, InsufficientBalance, InvalidInput, LimitExceeded, NotFound
from ..platform.i18n import N_, Amount, Translator, translator
from ..platform.ids import format_snowflake
from ..platform.observability import logger
from ..platform.storable import check_one_line, check_text
from . import audit, points, roles

KINDS = ("role", "item", "code")
STATES = ("granted", "pending", "fulfilled", "refunded", "expired")
STATE_LABELS = {
    "granted": "granted",
    "pending": "pending fulfilment",
    "fulfilled": "fulfilled",
    "refunded": "refunded",
    "expired": "expired",
}
MAX_NAME = 100
MAX_DESCRIPTION = 1000
MAX_NOTE = 500
MAX_PRICE = 1_000_000_000  # what a slash command's integer carries exactly (catalog.MAX_AMOUNT)
MAX_STOCK = 1_000_000_000
MAX_LIMIT = 1_000_000
MAX_DURATION_DAYS = 3650
MAX_REWARDS_PER_GUILD = 500
# A codes upload: at most this many bytes and codes, each code one line of at most MAX_CODE.
MAX_CODES_BYTES = 1_000_000
MAX_CODES = 10_000
MAX_CODE = 200
AUTOCOMPLETE_CHOICES = 25  # Discord's own limit
STORE_ACTOR = "store"  # who a refund is by when no person made it (Discord refused a role)


class SoldOut(DomainError):
    code = "sold_out"


class NotOnSale(DomainError):
    code = "not_on_sale"


class PurchaseLimitReached(LimitExceeded):
    code = "purchase_limit"


# -- records -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reward:
    id: int
    guild_id: int
    kind: str
    name: str
    description: str
    price: int
    stock: int | None  # left to sell; None: unlimited
    per_member_limit: int | None
    starts_at: datetime | None
    ends_at: datetime | None
    enabled: bool
    role_id: int | None
    duration_days: int | None
    created_at: datetime
    updated_at: datetime

    def unavailable(self, now: datetime) -> str | None:
        """Why it cannot be bought at `now` (a sentence), or None when it is on sale."""
        why = self.unavailable_reason(now)
        return None if why is None else why[0].format(**why[1])

    def unavailable_reason(self, now: datetime) -> tuple[str, dict[str, Any]] | None:
        """The same as an English template and its values (for a refusal said in the asker's
        language), or None when it is on sale."""
        name = {"reward": self.name}
        if not self.enabled:
            return N_("**{reward}** is not on sale right now."), name
        if self.starts_at is not None and now < self.starts_at:
            return N_("**{reward}** goes on sale {when}."), {
                **name,
                "when": f"<t:{int(self.starts_at.timestamp())}:R>",
            }
        if self.ends_at is not None and now >= self.ends_at:
            return N_("**{reward}** is no longer on sale (the sale ended {when})."), {
                **name, "when": f"<t:{int(self.ends_at.timestamp())}:R>"}  # fmt: skip
        if self.stock == 0:
            return N_("**{reward}** is sold out."), name
        return None

    def editable(self) -> dict[str, Any]:
        """The fields an admin sets, JSON-ready (for the audit log and forms)."""
        data = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("created_at", "updated_at")
        }
        for key in ("starts_at", "ends_at"):
            data[key] = data[key].isoformat() if data[key] else None
        for key in ("id", "guild_id", "role_id"):
            data[key] = format_snowflake(data[key]) if data[key] is not None else None
        return data


_REWARD_COLUMNS = (
    "id, guild_id, kind, name, description, price, stock, per_member_limit, starts_at, ends_at, enabled, "
    "role_id, duration_days, created_at, updated_at"
)


@dataclass(frozen=True)
class Purchase:
    id: int
    guild_id: int
    user_id: int
    reward_id: int
    kind: str
    reward_name: str
    price: int
    state: str
    interaction_id: int
    operation_id: int
    entry_id: int
    refund_entry_id: int | None
    role_id: int | None
    expires_at: datetime | None
    note: str
    flag: str | None
    handled_by: int | None
    handled_by_name: str
    created_at: datetime
    updated_at: datetime
    code: str | None  # the code handed to it (code rewards)
    role_state: str | None  # the role grant's state (role rewards): pending, sending, done, refused, failed

    @property
    def state_label(self) -> str:
        return STATE_LABELS.get(self.state, self.state)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (ids as strings), for exports and the audit log."""
        data = asdict(self)
        for key in ("id", "guild_id", "user_id", "reward_id", "interaction_id", "operation_id", "entry_id",
                    "refund_entry_id", "role_id", "handled_by"):  # fmt: skip
            data[key] = format_snowflake(data[key]) if data[key] is not None else None
        for key in ("expires_at", "created_at", "updated_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


_PURCHASE_COLUMNS = (
    "p.id, p.guild_id, p.user_id, p.reward_id, p.kind, p.reward_name, p.price, p.state, p.interaction_id, "
    "p.operation_id, p.entry_id, p.refund_entry_id, p.role_id, p.expires_at, p.note, p.flag, p.handled_by, "
    "p.handled_by_name, p.created_at, p.updated_at, (SELECT c.code FROM reward_codes c WHERE c.purchase_id = p.id), "
    "(SELECT rc.state FROM role_changes rc WHERE p.kind = 'role' AND rc.guild_id = p.guild_id "
    "AND rc.source = 'purchase' AND rc.source_ref = p.id::text AND rc.action = 'add')"
)


@dataclass(frozen=True)
class PurchaseResult:
    purchase: Purchase
    balance: int  # the member's balance after paying
    replayed: bool  # this interaction had bought already; nothing changed now


# -- input checks (one place for the slash commands and the admin site) -------------------------
def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _whole(value: object, what: str, *, minimum: int, maximum: int, optional: bool = False) -> int | None:
    """A whole number from a form (text) or a command (int), in [minimum, maximum]."""
    if _blank(value):
        if optional:
            return None
        raise InvalidInput(f"{what} is required.")
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be a whole number.")
    if isinstance(value, str):
        text = value.strip().replace(",", "").replace("_", "")
        body = text[1:] if text[:1] in "+-" else text
        if not body.isascii() or not body.isdigit() or len(body) > 18:
            raise InvalidInput(f"{what} must be a whole number.")
        value = int(text)
    if not isinstance(value, int):
        raise InvalidInput(f"{what} must be a whole number.")
    if value < minimum:
        raise InvalidInput(
            f"{what} must be at least {minimum:,}." if minimum != 1 else f"{what} must be above zero."
        )
    if value > maximum:
        raise InvalidInput(f"{what} can be at most {maximum:,}.")
    return value


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("The reward needs a name.")
    name = " ".join(value.split())
    if len(name) > MAX_NAME:
        raise InvalidInput(f"The name is too long (at most {MAX_NAME} characters).")
    return check_one_line(name, "The name")


def _text(value: object, what: str, maximum: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text.")
    text = value.strip()
    if len(text) > maximum:
        raise InvalidInput(f"{what} is too long (at most {maximum:,} characters).")
    return check_text(text, what)


def _when(value: object, what: str) -> datetime | None:
    """A moment from a form ("2026-12-24T18:00", UTC unless it says otherwise) or a datetime."""
    if _blank(value):
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(f"{what} must be a date and time, such as 2026-12-24T18:00.") from None
    if not isinstance(value, datetime):
        raise InvalidInput(f"{what} must be a date and time.")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not 2000 <= value.year <= 9000:
        raise InvalidInput(f"{what} must be a date between the years 2000 and 9000.")
    return value


def _role_id(value: object) -> int:
    text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if text.startswith("<@&") and text.endswith(">"):
        text = text[3:-1]
    if not (
        text.isascii() and text.isdigit() and 0 < len(text) <= 19 and text[0] != "0" and int(text) < 2**63
    ):
        raise InvalidInput("The role must be a Discord role id (a number, as Discord shows it).")
    return int(text)


def _bool(value: object, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "on", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("", "0", "false", "off", "no"):
        return False
    raise InvalidInput(f"{what} must be yes or no.")


_EDITABLE = ("name", "description", "price", "stock", "per_member_limit", "starts_at", "ends_at", "enabled",
             "role_id", "duration_days")  # fmt: skip


def check_reward(kind: object, values: dict[str, Any]) -> dict[str, Any]:
    """The columns of a reward of `kind` from raw values (a form's text or typed values), or
    InvalidInput with one plain sentence. Keys not given keep their defaults."""
    if kind not in KINDS:
        raise InvalidInput("The kind of reward must be role, item or code.")
    unknown = set(values) - set(_EDITABLE)
    if unknown:
        raise InvalidInput(f"A reward has no field called {sorted(unknown)[0][:40]!r}.")
    clean: dict[str, Any] = {"kind": kind}
    clean["name"] = _name(values.get("name"))
    clean["description"] = _text(values.get("description"), "The description", MAX_DESCRIPTION)
    clean["price"] = _whole(values.get("price"), "The price", minimum=1, maximum=MAX_PRICE)
    if kind == "code":
        if not _blank(values.get("stock")):
            raise InvalidInput("A code reward's stock is its codes: upload codes instead of setting a stock.")
        clean["stock"] = None  # set from the codes
    else:
        clean["stock"] = _whole(values.get("stock"), "The stock", minimum=0, maximum=MAX_STOCK, optional=True)
    clean["per_member_limit"] = _whole(values.get("per_member_limit"), "The limit per member", minimum=1,
                                       maximum=MAX_LIMIT, optional=True)  # fmt: skip
    clean["starts_at"] = _when(values.get("starts_at"), "The start")
    clean["ends_at"] = _when(values.get("ends_at"), "The end")
    if clean["starts_at"] and clean["ends_at"] and clean["ends_at"] <= clean["starts_at"]:
        raise InvalidInput("The end must come after the start.")
    clean["enabled"] = _bool(values.get("enabled", True), "Enabled")
    if kind == "role":
        if _blank(values.get("role_id")):
            raise InvalidInput("A role reward needs the role it grants.")
        clean["role_id"] = _role_id(values.get("role_id"))
        clean["duration_days"] = _whole(values.get("duration_days"), "The duration (days)", minimum=1,
                                        maximum=MAX_DURATION_DAYS, optional=True)  # fmt: skip
    else:
        if not _blank(values.get("role_id")) or not _blank(values.get("duration_days")):
            raise InvalidInput("Only a role reward has a role and a duration.")
        clean["role_id"] = None
        clean["duration_days"] = None
    return clean


# -- rewards: reads --------------------------------------------------------------------------------
def get_reward(conn: psycopg.Connection, guild_id: int, reward_id: int, *, lock: bool = False) -> Reward:
    row = conn.execute(
        f"SELECT {_REWARD_COLUMNS} FROM rewards WHERE guild_id = %s AND id = %s"
        + (" FOR UPDATE" if lock else ""),
        (guild_id, reward_id),
    ).fetchone()
    if row is None:
        raise NotFound("That reward does not exist in this server (any more).")
    return Reward(*row)


def reward_by_name(conn: psycopg.Connection, guild_id: int, name: str) -> Reward | None:
    """The guild's reward called `name`, whatever its case (the unique index's lookup)."""
    row = conn.execute(
        f"SELECT {_REWARD_COLUMNS} FROM rewards WHERE guild_id = %s AND lower(name) = lower(%s)",
        (guild_id, " ".join(name.split())),
    ).fetchone()
    return None if row is None else Reward(*row)


def list_rewards(conn: psycopg.Connection, guild_id: int) -> list[Reward]:
    """Every reward of the guild, on sale or not (the admin site's list)."""
    rows = conn.execute(
        f"SELECT {_REWARD_COLUMNS} FROM rewards WHERE guild_id = %s ORDER BY lower(name)", (guild_id,)
    ).fetchall()
    return [Reward(*r) for r in rows]


def _on_sale(alias: str = "") -> str:
    """SQL: the reward row (`alias.`) is on sale now (the dates and the switch; not the stock)."""
    a = f"{alias}." if alias else ""
    return f"{a}enabled AND ({a}starts_at IS NULL OR {a}starts_at <= now()) AND ({a}ends_at IS NULL OR {a}ends_at > now())"


_ON_SALE = _on_sale()


def _like_prefix(text: str) -> str:
    return text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_rewards(
    conn: psycopg.Connection, guild_id: int, typed: str, limit: int = AUTOCOMPLETE_CHOICES
) -> list[Reward]:
    """Rewards on sale whose name starts with `typed` (the index on lower(name)), then those
    that contain it, at most `limit`: /buy's autocomplete."""
    typed = " ".join(str(typed).split())[:MAX_NAME]
    rows = conn.execute(
        f"""
        (SELECT {_REWARD_COLUMNS}, 0 AS rank FROM rewards
         WHERE guild_id = %(g)s AND lower(name) LIKE %(prefix)s AND {_ON_SALE}
         ORDER BY lower(name) LIMIT %(limit)s)
        UNION ALL
        (SELECT {_REWARD_COLUMNS}, 1 FROM rewards
         WHERE guild_id = %(g)s AND %(typed)s <> '' AND strpos(lower(name), lower(%(typed)s)) > 1 AND {_ON_SALE}
         ORDER BY lower(name) LIMIT %(limit)s)
        ORDER BY rank, 4 LIMIT %(limit)s
        """,
        {"g": guild_id, "prefix": _like_prefix(typed), "typed": typed, "limit": limit},
    ).fetchall()
    return [Reward(*r[:-1]) for r in rows]


@dataclass(frozen=True)
class ShopRow:
    reward: Reward
    bought: int  # by this member, not refunded
    left_for_member: int | None  # None: no per-member limit


@dataclass(frozen=True)
class ShopPage:
    rows: tuple[ShopRow, ...]
    page: int
    pages: int
    total: int


def shop_page(conn: psycopg.Connection, guild_id: int, user_id: int, page: int, page_size: int) -> ShopPage:
    """The rewards on sale (cheapest first), with what this member may still buy of each."""
    total = conn.execute(
        f"SELECT count(*) FROM rewards WHERE guild_id = %s AND {_ON_SALE}", (guild_id,)
    ).fetchone()[0]
    pages = max(1, -(-total // page_size))
    page = min(max(page, 1), pages)
    rows = conn.execute(
        f"""
        SELECT {", ".join("r." + c.strip() for c in _REWARD_COLUMNS.split(","))},
               (SELECT count(*) FROM purchases p
                WHERE p.reward_id = r.id AND p.user_id = %(u)s AND p.state <> 'refunded')
        FROM rewards r
        WHERE r.guild_id = %(g)s AND {_on_sale("r")}
        ORDER BY r.price, lower(r.name), r.id
        LIMIT %(n)s OFFSET %(o)s
        """,
        {"g": guild_id, "u": user_id, "n": page_size, "o": (page - 1) * page_size},
    ).fetchall()
    out = []
    for row in rows:
        reward, bought = Reward(*row[:-1]), row[-1]
        left = None if reward.per_member_limit is None else max(reward.per_member_limit - bought, 0)
        out.append(ShopRow(reward, bought, left))
    return ShopPage(tuple(out), page, pages, total)


# -- rewards: admin writes (each audited in the same transaction) ----------------------------------
def create_reward(
    conn: psycopg.Connection,
    *,
    guild_id: int,
    actor_id: int | None,
    actor_name: str,
    kind: str,
    **values: Any,
) -> Reward:
    """A new reward from an admin's input (see check_reward); InvalidInput writes nothing."""
    clean = check_reward(kind, values)
    count = conn.execute("SELECT count(*) FROM rewards WHERE guild_id = %s", (guild_id,)).fetchone()[0]
    if count >= MAX_REWARDS_PER_GUILD:
        raise InvalidInput(f"A server can have at most {MAX_REWARDS_PER_GUILD} rewards; remove or reuse one.")
    if clean["kind"] == "code":
        clean["stock"] = 0
    if reward_by_name(conn, guild_id, clean["name"]) is not None:
        raise InvalidInput(f"There is already a reward called {clean['name']!r}.")
    ensure_guild(conn, guild_id)
    columns = ", ".join(clean)
    try:
        with conn.transaction():
            row = conn.execute(
                f"INSERT INTO rewards (guild_id, {columns}) VALUES (%(guild_id)s, "
                + ", ".join(f"%({k})s" for k in clean)
                + f") RETURNING {_REWARD_COLUMNS}",
                {"guild_id": guild_id, **clean},
            ).fetchone()
    except psycopg.errors.UniqueViolation:  # a concurrent create of the same name
        raise InvalidInput(f"There is already a reward called {clean['name']!r}.") from None
    reward = Reward(*row)
    audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name, action="reward.create",
                 target=f"reward:{reward.id}", after=reward.editable())  # fmt: skip
    return reward


def edit_reward(
    conn: psycopg.Connection, *, guild_id: int, reward_id: int, actor_id: int | None, actor_name: str,
    changes: dict[str, Any],
) -> Reward:  # fmt: skip
    """Change some fields of a reward (its kind stays). The whole result is checked as a new
    reward would be; nothing changed is not audited."""
    before = get_reward(conn, guild_id, reward_id, lock=True)
    merged = {k: v for k, v in before.editable().items() if k in _EDITABLE}
    if before.kind == "code":
        merged.pop("stock")
        if "stock" in changes and not _blank(changes["stock"]) and changes["stock"] != before.stock:
            raise InvalidInput("A code reward's stock is its codes: upload codes instead of setting a stock.")
        changes = {k: v for k, v in changes.items() if k != "stock"}
    merged.update(changes)
    clean = check_reward(before.kind, merged)
    clean.pop("kind")
    if before.kind == "code":
        clean.pop("stock")
    if (
        clean["name"].lower() != before.name.lower()
        and reward_by_name(conn, guild_id, clean["name"]) is not None
    ):
        raise InvalidInput(f"There is already a reward called {clean['name']!r}.")
    if all(getattr(before, k) == v for k, v in clean.items()):
        return before
    try:
        with conn.transaction():
            row = conn.execute(
                "UPDATE rewards SET "
                + ", ".join(f"{k} = %({k})s" for k in clean)
                + f", updated_at = now() WHERE guild_id = %(guild_id)s AND id = %(id)s RETURNING {_REWARD_COLUMNS}",
                {**clean, "guild_id": guild_id, "id": reward_id},
            ).fetchone()
    except psycopg.errors.UniqueViolation:
        raise InvalidInput(f"There is already a reward called {clean['name']!r}.") from None
    after = Reward(*row)
    audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name, action="reward.edit",
                 target=f"reward:{reward_id}", before=before.editable(), after=after.editable())  # fmt: skip
    return after


def set_enabled(
    conn: psycopg.Connection,
    *,
    guild_id: int,
    reward_id: int,
    enabled: bool,
    actor_id: int | None,
    actor_name: str,
) -> Reward:
    """Put a reward on sale or take it off (disable). Purchases made stay as they are."""
    return edit_reward(conn, guild_id=guild_id, reward_id=reward_id, actor_id=actor_id, actor_name=actor_name,
                       changes={"enabled": bool(enabled)})  # fmt: skip


def parse_codes(data: bytes | str) -> list[str]:
    """The codes of an upload: one per line, blank lines skipped, surrounding spaces removed.
    InvalidInput (plain) for an empty, too big or non-UTF-8 file, a code that is too long or
    not one line, or the same code twice."""
    if isinstance(data, bytes):
        if len(data) > MAX_CODES_BYTES:
            raise InvalidInput(f"The codes file is too big (at most {MAX_CODES_BYTES // 1000:,} KB).")
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput(
                "The codes file is not UTF-8 text. Save it as UTF-8 and upload it again."
            ) from None
    if not isinstance(data, str):
        raise InvalidInput("The codes must be text, one per line.")
    if len(data.encode("utf-8", "surrogatepass")) > MAX_CODES_BYTES:
        raise InvalidInput(f"The codes file is too big (at most {MAX_CODES_BYTES // 1000:,} KB).")
    codes = [line.strip() for line in data.splitlines() if line.strip()]
    if not codes:
        raise InvalidInput("The codes file is empty: put one code per line.")
    if len(codes) > MAX_CODES:
        raise InvalidInput(f"That is {len(codes):,} codes; upload at most {MAX_CODES:,} at a time.")
    seen: set[str] = set()
    for number, code in enumerate(codes, 1):
        if len(code) > MAX_CODE:
            raise InvalidInput(f"Code number {number:,} is too long (at most {MAX_CODE} characters).")
        check_one_line(code, f"Code number {number:,}")
        if code in seen:
            raise InvalidInput(
                f"The code {code[:40]!r} is in the file twice; each code can be handed out once."
            )
        seen.add(code)
    return codes


def upload_codes(
    conn: psycopg.Connection, *, guild_id: int, reward_id: int, data: bytes | str, actor_id: int | None,
    actor_name: str,
) -> int:  # fmt: skip
    """Add codes to a code reward's pool (its stock grows by as many); returns how many.
    All or nothing: one code already in this server's pools refuses the whole upload."""
    codes = parse_codes(data)
    reward = get_reward(conn, guild_id, reward_id, lock=True)
    if reward.kind != "code":
        raise InvalidInput(f"**{reward.name}** is not a code reward; codes go to code rewards.")
    taken = conn.execute(
        "SELECT code FROM reward_codes WHERE guild_id = %s AND code = ANY(%s) LIMIT 1", (guild_id, codes)
    ).fetchone()
    if taken is not None:
        raise InvalidInput(
            f"The code {taken[0][:40]!r} was uploaded before; each code can be handed out once."
        )
    try:
        with conn.transaction():
            added = conn.execute(
                "INSERT INTO reward_codes (guild_id, reward_id, code) SELECT %s, %s, unnest(%s::text[])",
                (guild_id, reward_id, codes),
            ).rowcount
    except psycopg.errors.UniqueViolation:  # a concurrent upload of one of these codes
        raise InvalidInput("Some of these codes were uploaded at the same moment by someone else.") from None
    conn.execute("UPDATE rewards SET stock = stock + %s WHERE id = %s", (added, reward_id))
    audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name, action="reward.codes_upload",
                 target=f"reward:{reward_id}", after={"codes_added": added, "stock": reward.stock + added})  # fmt: skip
    return added


# -- the purchase ---------------------------------------------------------------------------------
def _purchase_where(conn: psycopg.Connection, where: str, params: tuple) -> Purchase | None:
    row = conn.execute(f"SELECT {_PURCHASE_COLUMNS} FROM purchases p WHERE {where}", params).fetchone()
    return None if row is None else Purchase(*row)


def get_purchase(conn: psycopg.Connection, guild_id: int, purchase_id: int) -> Purchase:
    found = _purchase_where(conn, "p.guild_id = %s AND p.id = %s", (guild_id, purchase_id))
    if found is None:
        raise NotFound(f"There is no purchase #{purchase_id} in this server.")
    return found


def _replay(
    conn: psycopg.Connection, found: Purchase, guild_id: int, user_id: int, reward_id: int
) -> PurchaseResult:
    if (found.guild_id, found.user_id, found.reward_id) != (guild_id, user_id, reward_id):
        raise ledger_conflict()
    return PurchaseResult(found, ledger.balance(conn, guild_id, user_id), replayed=True)


def ledger_conflict() -> DomainError:
    from ..platform.errors import IdempotencyConflict

    return IdempotencyConflict("This request was already made with different details.")


def purchase(
    conn: psycopg.Connection,
    *,
    guild_id: int,
    user_id: int,
    reward_id: int,
    interaction_id: int,
    actor_name: str = "",
    settings: Settings | None = None,
    policy: GuildPolicy | None = None,
) -> PurchaseResult:
    """Buy one of a reward for a member, in the caller's transaction (see the module's text).
    The interaction id makes it idempotent: a second delivery returns the first purchase."""
    reward = get_reward(conn, guild_id, reward_id)
    now = conn.execute("SELECT now()").fetchone()[0]
    found = _purchase_where(conn, "p.interaction_id = %s", (interaction_id,))
    if found is not None:
        return _replay(conn, found, guild_id, user_id, reward_id)
    why = reward.unavailable_reason(now)
    if why is not None:  # a cheap first answer; the stock UPDATE below decides under contention
        raise (
            SoldOut(why[0], **why[1]) if reward.stock == 0 and reward.enabled else NotOnSale(why[0], **why[1])
        )
    policy = policy or guild_policy(conn, settings or get_settings(), guild_id)
    ensure_member(conn, guild_id, user_id)
    # One purchase of this member at a time: the limit and the balance hold until COMMIT.
    balance = conn.execute(
        "SELECT balance FROM points WHERE guild_id = %s AND user_id = %s FOR UPDATE", (guild_id, user_id)
    ).fetchone()[0]
    found = _purchase_where(conn, "p.interaction_id = %s", (interaction_id,))  # a twin committed meanwhile
    if found is not None:
        return _replay(conn, found, guild_id, user_id, reward_id)
    if reward.per_member_limit is not None:
        bought = conn.execute(
            "SELECT count(*) FROM purchases WHERE reward_id = %s AND user_id = %s AND state <> 'refunded'",
            (reward_id, user_id),
        ).fetchone()[0]
        if bought >= reward.per_member_limit:
            raise PurchaseLimitReached(
                "You have bought **{reward}** as often as one member may ({count} of {limit}).",
                reward=reward.name,
                count=bought,
                limit=reward.per_member_limit,
            )
    if balance < reward.price:
        raise InsufficientBalance(
            "**{reward}** costs **{price}**; you have **{balance}**.",
            reward=reward.name,
            price=Amount(reward.price, policy.currency_name, policy.currency_one),
            balance=Amount(balance, policy.currency_name, policy.currency_one),
        )
    paid = ledger.purchase_debit(
        conn, guild_id=guild_id, user_id=user_id, price=reward.price, reason=f"Bought {reward.name}",
        idempotency_key=f"purchase:{interaction_id}", actor_name=actor_name, policy=policy,
    )  # fmt: skip
    if paid.replayed:  # the ledger saw this key committed by a twin: return its purchase
        found = _purchase_where(conn, "p.operation_id = %s", (paid.operation_id,))
        if found is None:
            raise ledger_conflict()
        return _replay(conn, found, guild_id, user_id, reward_id)
    # What follows any change of a balance: balance-threshold roles, achievements (no points
    # DM: the member made it, and the entry is silent).
    points.after_change(conn, paid, policy)
    expires_at = now + timedelta(days=reward.duration_days) if reward.duration_days else None
    state = "pending" if reward.kind == "item" else "granted"
    purchase_id = conn.execute(
        """
        INSERT INTO purchases (guild_id, user_id, reward_id, kind, reward_name, price, state, interaction_id,
                               operation_id, entry_id, role_id, expires_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id
        """,
        (guild_id, user_id, reward_id, reward.kind, reward.name, reward.price, state, interaction_id,
         paid.operation_id, paid.entry.id, reward.role_id, expires_at),
    ).fetchone()[0]  # fmt: skip
    if reward.kind == "role":
        _request_role(conn, guild_id, user_id, reward, purchase_id, expires_at)
    # The stock last: its row lock is held until COMMIT, and every buyer of this reward waits
    # for it, so as little as possible comes after it.
    if reward.stock is not None:
        taken = conn.execute(
            f"UPDATE rewards SET stock = stock - 1 WHERE id = %s AND stock > 0 AND {_ON_SALE} RETURNING stock",
            (reward_id,),
        ).fetchone()
        if taken is None:  # sold out (or taken off sale) while we were paying: roll it all back
            latest = get_reward(conn, guild_id, reward_id)
            template, values = latest.unavailable_reason(now) or (
                N_("**{reward}** is sold out."),
                {"reward": reward.name},
            )
            raise SoldOut(template, **values)
    code = None
    if reward.kind == "code":
        code = _assign_code(conn, reward_id, purchase_id)
        tr = _translator(conn, guild_id, policy)
        outbox.enqueue_dm(
            conn, guild_id=guild_id, user_id=user_id, reason="store", dedupe_key=f"purchase:{purchase_id}:code",
            content=tr._("Thanks for buying **{reward}** in **{server}**. Your code:", reward=reward.name,
                         server=_guild_name(conn, guild_id, tr)) + f"\n```\n{code}\n```",
        )  # fmt: skip
    made = Purchase(
        id=purchase_id, guild_id=guild_id, user_id=user_id, reward_id=reward_id, kind=reward.kind,
        reward_name=reward.name, price=reward.price, state=state, interaction_id=interaction_id,
        operation_id=paid.operation_id, entry_id=paid.entry.id, refund_entry_id=None, role_id=reward.role_id,
        expires_at=expires_at, note="", flag=None, handled_by=None, handled_by_name="", created_at=now,
        updated_at=now, code=code, role_state="pending" if reward.kind == "role" else None,
    )  # fmt: skip
    return PurchaseResult(made, paid.balance, replayed=False)


def _assign_code(conn: psycopg.Connection, reward_id: int, purchase_id: int) -> str:
    """Hand the purchase one free code. The stock taken under the reward's row lock guarantees
    one is free; SKIP LOCKED and the unique purchase_id make two purchases never share one."""
    row = conn.execute(
        """
        UPDATE reward_codes SET purchase_id = %(p)s, assigned_at = now()
        WHERE id = (SELECT id FROM reward_codes WHERE reward_id = %(r)s AND purchase_id IS NULL
                    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING code
        """,
        {"p": purchase_id, "r": reward_id},
    ).fetchone()
    if row is None:  # stock said one was left; the pool disagrees: refuse rather than sell nothing
        raise SoldOut("This reward has run out of codes.")
    return row[0]


def _request_role(
    conn: psycopg.Connection, guild_id: int, user_id: int, reward: Reward, purchase_id: int,
    expires_at: datetime | None,
) -> None:  # fmt: skip
    """The grant, made by the role worker after COMMIT (the caller wakes it with
    roles.request_role_delivery()); if Discord refuses it, `_role_refused` refunds."""
    days = f" for {reward.duration_days} days" if reward.duration_days else ""
    roles.request_role_change(
        conn, guild_id=guild_id, user_id=user_id, role_id=reward.role_id, action="add", source="purchase",
        source_ref=str(purchase_id), reason=f"Bought « {reward.name} »{days} in the reward store (purchase #{purchase_id})",
        expires_at=expires_at,
    )  # fmt: skip


def _role_refused(conn: psycopg.Connection, change: roles.RoleChange, reason: str) -> None:
    """The role worker's refusal handler for source 'purchase', in its transaction: Discord
    refused (or kept failing) the grant, so the purchase is refunded by a linked entry, flagged
    for the admins and the member DMed. A refused removal (an admin's refund took the role back)
    only flags the purchase. Never raises for a purchase it cannot find (nothing to undo)."""
    if not change.source_ref.isascii() or not change.source_ref.isdigit() or len(change.source_ref) > 18:
        logger.warning("role refusal for a purchase reference that is not a purchase id",
                       extra={"role_change_id": change.id})  # fmt: skip
        return
    found = _purchase_where(conn, "p.guild_id = %s AND p.id = %s", (change.guild_id, int(change.source_ref)))
    if found is None:
        logger.warning("role refusal for a purchase that does not exist", extra={"role_change_id": change.id})
        return
    if change.action == "remove":
        conn.execute(
            "UPDATE purchases SET flag = %s, updated_at = now() WHERE id = %s",
            (f"The role could not be taken back: {reason}"[:500], found.id),
        )
        return
    if found.state == "refunded":
        return
    refund(conn, guild_id=found.guild_id, purchase_id=found.id, reason=reason, actor_id=None,
           actor_name=STORE_ACTOR, flag=reason[:500], remove_role=False)  # fmt: skip


roles.register_refusal_handler("purchase", _role_refused)


def _guild_name(conn: psycopg.Connection, guild_id: int, tr: Translator) -> str:
    row = conn.execute("SELECT name FROM guilds WHERE guild_id = %s", (guild_id,)).fetchone()
    return (row[0] if row else "") or tr._("this server")


def _translator(conn: psycopg.Connection, guild_id: int, policy: GuildPolicy | None = None) -> Translator:
    """The server's language, for its members' DMs (the policy's, else read from the guild)."""
    if policy is not None:
        return translator(policy.locale)
    row = conn.execute("SELECT settings ->> 'locale' FROM guilds WHERE guild_id = %s", (guild_id,)).fetchone()
    return translator(row[0] if row else None)


# -- after the purchase: fulfil, refund, expire ---------------------------------------------------
def _locked_purchase(conn: psycopg.Connection, guild_id: int, purchase_id: int) -> Purchase:
    conn.execute(
        "SELECT 1 FROM purchases WHERE guild_id = %s AND id = %s FOR UPDATE", (guild_id, purchase_id)
    )
    return get_purchase(conn, guild_id, purchase_id)


def fulfil(
    conn: psycopg.Connection,
    *,
    guild_id: int,
    purchase_id: int,
    note: str,
    actor_id: int | None,
    actor_name: str,
) -> Purchase:
    """An admin has handed over an item: pending -> fulfilled, the member DMed with the note."""
    note = _text(note, "The note", MAX_NOTE)
    before = _locked_purchase(conn, guild_id, purchase_id)
    if before.kind != "item":
        raise InvalidInput(
            f"Purchase #{purchase_id} is a {before.kind} reward; the bot delivers those itself."
        )
    if before.state != "pending":
        raise InvalidInput(f"Purchase #{purchase_id} is {before.state_label}, not waiting for fulfilment.")
    conn.execute(
        "UPDATE purchases SET state = 'fulfilled', note = %s, handled_by = %s, handled_by_name = %s, "
        "updated_at = now() WHERE id = %s",
        (note, actor_id, actor_name, purchase_id),
    )
    after = get_purchase(conn, guild_id, purchase_id)
    tr = _translator(conn, guild_id)
    text = tr._("Your **{reward}** from **{server}** has been handed over.", reward=before.reward_name,
                server=_guild_name(conn, guild_id, tr))  # fmt: skip
    outbox.enqueue_dm(conn, guild_id=guild_id, user_id=before.user_id, reason="store",
                      dedupe_key=f"purchase:{purchase_id}:fulfilled",
                      content=text + ("\n" + tr._("Note: {note}", note=note) if note else ""))  # fmt: skip
    audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name, action="redemption.fulfil",
                 target=f"purchase:{purchase_id}", before={"state": before.state},
                 after={"state": after.state, "note": note})  # fmt: skip
    return after


def refund(
    conn: psycopg.Connection,
    *,
    guild_id: int,
    purchase_id: int,
    reason: str,
    actor_id: int | None,
    actor_name: str,
    flag: str | None = None,
    settings: Settings | None = None,
    remove_role: bool = True,
) -> Purchase:
    """Give a purchase's points back with a linked `purchase_refund` entry, mark it refunded,
    put a role's or an item's unit back in stock (a code stays handed out: it was shown) and DM
    the member. Once per purchase: a second refund says it was refunded already."""
    reason = _text(reason, "The reason", MAX_NOTE)
    before = _locked_purchase(conn, guild_id, purchase_id)
    if before.state == "refunded":
        raise InvalidInput(f"Purchase #{purchase_id} was refunded already.")
    policy = guild_policy(conn, settings or get_settings(), guild_id)
    back = ledger.purchase_refund(
        conn, guild_id=guild_id, purchase_entry_id=before.entry_id,
        reason=f"Refund of {before.reward_name}" + (f": {reason}" if reason else ""),
        idempotency_key=f"purchase_refund:{purchase_id}", actor_id=actor_id, actor_name=actor_name, policy=policy,
    )  # fmt: skip
    points.after_change(conn, back, policy)  # thresholds and achievements; the refund's DM is below
    conn.execute(
        "UPDATE purchases SET state = 'refunded', refund_operation_id = %s, refund_entry_id = %s, note = %s, "
        "flag = coalesce(%s, flag), handled_by = %s, handled_by_name = %s, updated_at = now() WHERE id = %s",
        (back.operation_id, back.entry.id, reason, flag, actor_id, actor_name, purchase_id),
    )
    if before.kind in ("role", "item"):
        conn.execute(
            "UPDATE rewards SET stock = stock + 1 WHERE id = %s AND stock IS NOT NULL", (before.reward_id,)
        )
    if before.kind == "role" and remove_role and before.state == "granted" and before.role_id is not None:
        _take_role_back(conn, before)
    after = get_purchase(conn, guild_id, purchase_id)
    tr = _translator(conn, guild_id, policy)
    text = tr._(
        "Your purchase of **{reward}** in **{server}** was refunded: **{amount}** back, your balance is now "
        "**{balance}**.", reward=before.reward_name, server=_guild_name(conn, guild_id, tr),
        amount=tr.points(before.price, policy.currency_name, policy.currency_one),
        balance=tr.points(back.balance, policy.currency_name, policy.currency_one),
    )  # fmt: skip
    outbox.enqueue_dm(conn, guild_id=guild_id, user_id=before.user_id, reason="store",
                      dedupe_key=f"purchase:{purchase_id}:refund",
                      content=text + ("\n" + tr._("Reason: {reason}", reason=reason) if reason else ""))  # fmt: skip
    audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name, action="redemption.refund",
                 target=f"purchase:{purchase_id}", before={"state": before.state},
                 after={"state": after.state, "reason": reason, "refund_entry_id": str(back.entry.id),
                        "flag": after.flag})  # fmt: skip
    return after


def _take_role_back(conn: psycopg.Connection, refunded: Purchase) -> None:
    """An admin refunded a role purchase: the role is removed again (after the grant, in the
    order asked), unless another live purchase of the member holds the same role."""
    other = conn.execute(
        "SELECT 1 FROM purchases WHERE guild_id = %s AND user_id = %s AND role_id = %s AND id <> %s "
        "AND state = 'granted' AND (expires_at IS NULL OR expires_at > now()) LIMIT 1",
        (refunded.guild_id, refunded.user_id, refunded.role_id, refunded.id),
    ).fetchone()
    if other is not None:
        return
    roles.request_role_change(
        conn, guild_id=refunded.guild_id, user_id=refunded.user_id, role_id=refunded.role_id, action="remove",
        source="purchase", source_ref=str(refunded.id), reason=f"Refund of purchase #{refunded.id}",
    )  # fmt: skip


def expire_due(conn: psycopg.Connection, limit: int = 1000) -> int:
    """Mark granted purchases whose time is up as expired (the role's removal is the role
    worker's, requested with the grant); for a schedule. Returns how many."""
    return conn.execute(
        "UPDATE purchases SET state = 'expired', updated_at = now() WHERE id IN ("
        "SELECT id FROM purchases WHERE state = 'granted' AND expires_at <= now() LIMIT %s)",
        (limit,),
    ).rowcount


# -- listings ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PurchasePage:
    rows: tuple[Purchase, ...]
    page: int
    pages: int
    total: int


def list_redemptions(
    conn: psycopg.Connection,
    guild_id: int,
    *,
    state: str | None = None,
    kind: str | None = None,
    reward_id: int | None = None,
    user_id: int | None = None,
    flagged: bool | None = None,
    page: int = 1,
    page_size: int = 25,
    after: int | None = None,
    before: int | None = None,
) -> PurchasePage:
    """The guild's purchases, newest first, with filters (the queue: state='pending').

    The admin site's Next and Previous links carry the keyset (`after`: the last id shown,
    `before`: the first; `page` is then only the number shown), so a deep page is one range of
    purchases_guild_idx or purchases_guild_state_idx like page 1. A page number alone (a typed
    link) finds its ids by OFFSET over that index alone (index-only) and fetches only the page's
    rows, not every row it skips (EXPLAIN test in tests/integration/test_store_pages.py)."""
    where, params = ["p.guild_id = %(g)s"], {"g": guild_id}
    if state:
        if state not in STATES:
            raise InvalidInput("The state must be one of " + ", ".join(STATES) + ".")
        where.append("p.state = %(state)s")
        params["state"] = state
    if kind:
        if kind not in KINDS:
            raise InvalidInput("The kind must be role, item or code.")
        where.append("p.kind = %(kind)s")
        params["kind"] = kind
    if reward_id is not None:
        where.append("p.reward_id = %(reward)s")
        params["reward"] = reward_id
    if user_id is not None:
        where.append("p.user_id = %(user)s")
        params["user"] = user_id
    if flagged is not None:
        where.append("p.flag IS NOT NULL" if flagged else "p.flag IS NULL")
    clause = " AND ".join(where)
    total = conn.execute(f"SELECT count(*) FROM purchases p WHERE {clause}", params).fetchone()[0]
    pages = max(1, -(-total // page_size))
    page = min(max(page, 1), pages)
    if after is not None or before is not None:
        edge, order = ("<", "DESC") if after is not None else (">", "ASC")
        rows = conn.execute(
            f"SELECT {_PURCHASE_COLUMNS} FROM purchases p WHERE {clause} AND p.id {edge} %(edge)s "
            f"ORDER BY p.id {order} LIMIT %(n)s",
            {**params, "edge": after if after is not None else before, "n": page_size},
        ).fetchall()
        rows.sort(key=lambda r: r[0], reverse=True)
    else:
        rows = conn.execute(_PAGE_BY_NUMBER.format(columns=_PURCHASE_COLUMNS, clause=clause),
                            {**params, "n": page_size, "o": (page - 1) * page_size}).fetchall()  # fmt: skip
    return PurchasePage(tuple(Purchase(*r) for r in rows), page, pages, total)


# A page by number: the page's ids by OFFSET over the index alone (the subquery reads only id and
# the filter's columns), then those rows; the rows skipped are never fetched from the table.
_PAGE_BY_NUMBER = """
SELECT {columns} FROM purchases p
JOIN (SELECT p.id FROM purchases p WHERE {clause} ORDER BY p.id DESC LIMIT %(n)s OFFSET %(o)s) k ON k.id = p.id
ORDER BY p.id DESC
"""


def count_redemptions(conn: psycopg.Connection, guild_id: int, *, state: str) -> int:
    """How many of the guild's purchases are in `state` (the menu's and the dashboard's count of
    purchases to hand over): list_redemptions' total without fetching a page."""
    if state not in STATES:
        raise InvalidInput("The state must be one of " + ", ".join(STATES) + ".")
    return conn.execute(
        "SELECT count(*) FROM purchases p WHERE p.guild_id = %s AND p.state = %s", (guild_id, state)
    ).fetchone()[0]


def member_purchases(
    conn: psycopg.Connection, guild_id: int, user_id: int, page: int, page_size: int
) -> PurchasePage:
    """A member's own purchases, newest first (/purchases)."""
    return list_redemptions(conn, guild_id, user_id=user_id, page=page, page_size=page_size)


def shown_state(purchase: Purchase, now: datetime) -> str:
    """The state as a member should read it: a granted role whose time is up is expired even
    before the schedule has marked it."""
    if purchase.state == "granted" and purchase.expires_at is not None and purchase.expires_at <= now:
        return STATE_LABELS["expired"]
    if purchase.state == "granted" and purchase.role_state in ("pending", "sending"):
        return "granted (the role is on its way)"
    return purchase.state_label


# -- the integration API's and webhooks' shapes ---------------------------------------------------
def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return (value if isinstance(value, datetime) else datetime.fromisoformat(value)).isoformat()


def _sid(value: Any) -> str | None:
    return None if value is None else format_snowflake(int(value))


def purchase_json(row: Any) -> dict[str, Any]:
    """A purchase as the API lists it and webhooks send it (ids as strings; no code: that is the
    member's). `row` is a Purchase or a purchases row as a mapping (a webhook's snapshot)."""
    get = row.get if isinstance(row, dict) else (lambda k, d=None: getattr(row, k, d))
    return {
        "id": _sid(get("id")),
        "user_id": _sid(get("user_id")),
        "reward_id": _sid(get("reward_id")),
        "reward_name": get("reward_name"),
        "kind": get("kind"),
        "price": get("price"),
        "state": get("state"),
        "entry_id": _sid(get("entry_id")),
        "refund_entry_id": _sid(get("refund_entry_id")),
        "note": get("note") or "",
        "expires_at": _iso(get("expires_at")),
        "created_at": _iso(get("created_at")),
        "updated_at": _iso(get("updated_at")),
    }


def reward_json(reward: Reward, now: datetime) -> dict[str, Any]:
    return {
        "id": str(reward.id),
        "name": reward.name,
        "description": reward.description,
        "kind": reward.kind,
        "price": reward.price,
        "stock": reward.stock,
        "per_member_limit": reward.per_member_limit,
        "starts_at": _iso(reward.starts_at),
        "ends_at": _iso(reward.ends_at),
        "enabled": reward.enabled,
        "on_sale": reward.unavailable(now) is None,
        "role_id": _sid(reward.role_id),
        "duration_days": reward.duration_days,
    }


def purchases_after(
    conn: psycopg.Connection, guild_id: int, after: int, limit: int, *, user_id: int | None = None
) -> list[Purchase]:
    """Purchases with an id above `after`, oldest first (a cursor for syncing elsewhere), the
    guild's or one member's."""
    if not 1 <= limit <= 1000:
        raise ValueError("limit must be 1 to 1000")
    if user_id is None:
        where, params = "p.guild_id = %s AND p.id > %s", (guild_id, after, limit)
    else:
        where, params = "p.guild_id = %s AND p.user_id = %s AND p.id > %s", (guild_id, user_id, after, limit)
    rows = conn.execute(
        f"SELECT {_PURCHASE_COLUMNS} FROM purchases p WHERE {where} ORDER BY p.id LIMIT %s", params
    ).fetchall()
    return [Purchase(*r) for r in rows]
