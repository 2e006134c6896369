"""Rewards and Redemptions: the reward store's rewards (create, edit, on/off sale, codes) and the
queue of purchases (fulfil an item, refund, CSV export). Every rule, message and audit entry is
in pointsbot.community.store; this module only shapes the pages."""

from __future__ import annotations

import csv
import io

from aws_lambda_powertools.event_handler import Response

from admin_site import web
from admin_site.sections import Section, int_param, opt_int
from admin_site.sections.roles import check_grantable
from admin_site.sections.roles import guild_roles as kept_roles
from pointsbot.community import roles, store
from pointsbot.delivery import outbox
from pointsbot.platform.errors import InvalidInput
from pointsbot.platform.ids import parse_snowflake

routes = Section()

FIELDS = ("name", "description", "price", "stock", "per_member_limit", "starts_at", "ends_at", "role_id",
          "duration_days")  # fmt: skip
PAGE_SIZE = 25


def field_of(message: str) -> str | None:
    """Which form field a refusal is about, from its words (the message is shown next to it;
    None: above the form)."""
    text = message.lower()
    for words, field in (
        (("stock", "codes"), "stock"),
        (("price",), "price"),
        (("limit per member",), "per_member_limit"),
        (("duration",), "duration_days"),
        (("role",), "role_id"),
        (("the end",), "ends_at"),
        (("the start",), "starts_at"),
        (("description",), "description"),
        (("kind",), "kind"),
        (("name", "called", "rewards"), "name"),
    ):
        if any(w in text for w in words):
            return field
    return None


def guild_roles(req: web.AdminRequest, guild_id: int) -> list[tuple[str, str]] | None:
    """(id, name) of the guild's roles a reward or a prize may grant, highest first, or None when
    Discord never listed them (then the form takes a role id). The roles kept in Postgres (sql/055,
    as the Settings page reads them: roles.guild_roles): a page view asks Discord only when they
    are older than profiles.ROLES_MAX_AGE, once for the page, and shows what was kept when Discord
    cannot be reached."""
    found = kept_roles(req, guild_id)
    if found.roles is None:
        return None
    picked = sorted((r for r in found.choosable if r.id != guild_id), key=lambda r: (-r.position, r.id))
    return [(str(r.id), r.name) for r in picked]


def _values(req: web.AdminRequest) -> dict[str, object]:
    values: dict[str, object] = {k: req.form(k) for k in FIELDS}
    values["enabled"] = req.checkbox("enabled")
    return values


@routes.route("GET", "/g/<guild_id>/rewards")
def rewards_page(req: web.AdminRequest, guild_id: int) -> Response:
    rewards = req.db.run(store.list_rewards, guild_id)
    return web.page(
        req, "rewards.html", rewards=rewards, kinds=store.KINDS, role_choices=guild_roles(req, guild_id)
    )


def _checked_role(req: web.AdminRequest, guild_id: int, kind: str, values: dict) -> None:
    """The role a role reward grants, checked with Discord (after the plain checks)."""
    if kind == "role" and str(values.get("role_id") or "").strip():
        values["role_id"] = str(check_grantable(req, guild_id, str(values["role_id"])))


@routes.route("POST", "/g/<guild_id>/rewards")
def reward_create(req: web.AdminRequest, guild_id: int) -> Response:
    req.back_to(f"/g/{guild_id}/rewards", field_of)
    kind = req.form("kind")
    values = _values(req)
    if kind != "role":
        values.pop("role_id")
        values.pop("duration_days")
    store.check_reward(kind, values)  # plain checks first: a bad form costs no call to Discord
    _checked_role(req, guild_id, kind, values)
    who = req.identity
    reward = req.db.run(store.create_reward, guild_id=guild_id, actor_id=who.user_id, actor_name=who.actor_name,
                        kind=kind, **values)  # fmt: skip
    req.flash(
        "ok", f"Reward “{reward.name}” created" + (" (upload its codes below)." if kind == "code" else ".")
    )
    return web.redirect(req, web.url(f"/g/{guild_id}/rewards/{reward.id}"))


@routes.route("GET", "/g/<guild_id>/rewards/<reward_id>")
def reward_page(req: web.AdminRequest, guild_id: int, reward_id: str) -> Response:
    reward = req.db.run(store.get_reward, guild_id, int_param(reward_id))
    values = {k: ("" if v is None else v) for k, v in reward.editable().items()}
    for key in ("starts_at", "ends_at"):
        values[key] = values[key][:16] if values[key] else ""
    return web.page(req, "reward.html", reward=reward, values=values,
                    role_choices=guild_roles(req, guild_id) if reward.kind == "role" else None)  # fmt: skip


@routes.route("POST", "/g/<guild_id>/rewards/<reward_id>")
def reward_edit(req: web.AdminRequest, guild_id: int, reward_id: str) -> Response:
    rid = int_param(reward_id)
    req.back_to(f"/g/{guild_id}/rewards/{rid}", field_of)
    reward = req.db.run(store.get_reward, guild_id, rid)
    values = _values(req)
    if reward.kind != "role":
        values.pop("role_id")
        values.pop("duration_days")
    if reward.kind == "code":
        values.pop("stock")
    merged = {k: v for k, v in reward.editable().items() if k in FIELDS or k == "enabled"}
    merged.update(values)
    if reward.kind == "code":
        merged.pop("stock", None)
    store.check_reward(reward.kind, merged)
    if reward.kind == "role" and str(values.get("role_id")).strip() != str(reward.role_id):
        _checked_role(req, guild_id, reward.kind, values)
    who = req.identity
    reward = req.db.run(store.edit_reward, guild_id=guild_id, reward_id=rid, actor_id=who.user_id,
                        actor_name=who.actor_name, changes=values)  # fmt: skip
    req.flash("ok", f"Reward “{reward.name}” saved.")
    return web.redirect(req, web.url(f"/g/{guild_id}/rewards/{rid}"))


@routes.route("POST", "/g/<guild_id>/rewards/<reward_id>/enabled")
def reward_enabled(req: web.AdminRequest, guild_id: int, reward_id: str) -> Response:
    rid = int_param(reward_id)
    req.back_to(f"/g/{guild_id}/rewards")
    who = req.identity
    on = req.form("enabled") == "1"
    reward = req.db.run(store.set_enabled, guild_id=guild_id, reward_id=rid, enabled=on, actor_id=who.user_id,
                        actor_name=who.actor_name)  # fmt: skip
    req.flash("ok", f"“{reward.name}” is " + ("on sale." if reward.enabled else "off sale (disabled)."))
    back = f"/g/{guild_id}/rewards/{rid}" if req.form("back") == "reward" else f"/g/{guild_id}/rewards"
    return web.redirect(req, web.url(back))


@routes.route("POST", "/g/<guild_id>/rewards/<reward_id>/codes")
def reward_codes(req: web.AdminRequest, guild_id: int, reward_id: str) -> Response:
    rid = int_param(reward_id)
    req.back_to(f"/g/{guild_id}/rewards/{rid}", lambda message: "codes_text")
    req.form("csrf_token")  # parse the multipart body (the file is kept as bytes)
    data = req._files.get("codes_file", b"")
    if not data.strip():
        data = req.form("codes_text").encode("utf-8")
    who = req.identity
    count = req.db.run(store.upload_codes, guild_id=guild_id, reward_id=rid, data=data, actor_id=who.user_id,
                       actor_name=who.actor_name)  # fmt: skip
    req.flash("ok", f"{count:,} codes added.")
    return web.redirect(req, web.url(f"/g/{guild_id}/rewards/{rid}"))


# -- redemptions ---------------------------------------------------------------------------------
def _filters(req: web.AdminRequest) -> dict[str, object]:
    """The queue's filters from the query; InvalidInput (plain) for a bad one."""
    flt: dict[str, object] = {}
    state, kind = req.query("state").strip(), req.query("kind").strip()
    if state:
        flt["state"] = state
    if kind:
        flt["kind"] = kind
    reward = req.query("reward").strip()
    if reward:
        flt["reward_id"] = opt_int(reward, "The reward")
    member = req.query("member").strip()
    if member:
        flt["user_id"] = parse_snowflake(member, "The member id")
    flagged = req.query("flagged").strip()
    if flagged in ("yes", "no"):
        flt["flagged"] = flagged == "yes"
    return flt


@routes.route("GET", "/g/<guild_id>/redemptions")
def redemptions_page(req: web.AdminRequest, guild_id: int) -> Response:
    error = None
    try:
        flt = _filters(req)
        page_no = opt_int(req.query("page"), "The page") or 1
        after, before = (int_param(req.query(k)) if req.query(k) else None for k in ("after", "before"))
        page = req.db.run(store.list_redemptions, guild_id, **flt, page=page_no, page_size=PAGE_SIZE,
                          after=after, before=None if after is not None else before)  # fmt: skip
    except InvalidInput as exc:
        error = exc.message
        page = req.db.run(store.list_redemptions, guild_id, page=1, page_size=PAGE_SIZE)
    rewards = req.db.run(store.list_rewards, guild_id)
    return web.page(req, "redemptions.html", status=400 if error else 200, page=page, rewards=rewards,
                    q=req.query_dict, error=error, states=store.STATE_LABELS, kinds=store.KINDS)  # fmt: skip


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A cell a spreadsheet will not run: text starting with = + - @ (or a tab/CR) gets a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


CSV_COLUMNS = ("id", "created_at", "user_id", "reward_id", "reward_name", "kind", "price", "state", "flag", "note",
               "code", "role_id", "role_state", "expires_at", "handled_by_name", "updated_at")  # fmt: skip


@routes.route("GET", "/g/<guild_id>/redemptions.csv")
def redemptions_csv(req: web.AdminRequest, guild_id: int) -> Response:
    flt = _filters(req)

    def rows(conn):
        out, page_no = [], 1
        while True:
            page = store.list_redemptions(conn, guild_id, **flt, page=page_no, page_size=500)
            out.extend(page.rows)
            if page.page >= page.pages:
                return out
            page_no += 1

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for p in req.db.run(rows):
        data = p.as_dict()
        writer.writerow([csv_cell(data[c]) for c in CSV_COLUMNS])
    return web.respond(req, 200, buf.getvalue(), "text/csv; charset=utf-8",
                       headers={"Content-Disposition": f'attachment; filename="redemptions-{guild_id}.csv"'})  # fmt: skip


def _back_to_queue(req: web.AdminRequest, guild_id: int) -> str:
    back = req.form("back")
    return (
        back
        if back.startswith(web.url(f"/g/{guild_id}/redemptions"))
        else web.url(f"/g/{guild_id}/redemptions")
    )


@routes.route("POST", "/g/<guild_id>/redemptions/<purchase_id>/fulfil")
def redemption_fulfil(req: web.AdminRequest, guild_id: int, purchase_id: str) -> Response:
    pid = int_param(purchase_id)
    req.back = _back_to_queue(req, guild_id)
    req.fields_by_error = {"note": "note"}
    who = req.identity
    done = req.db.run(store.fulfil, guild_id=guild_id, purchase_id=pid, note=req.form("note"),
                      actor_id=who.user_id, actor_name=who.actor_name)  # fmt: skip
    outbox.request_delivery()
    req.flash("ok", f"Purchase #{done.id} ({done.reward_name}) fulfilled; the member gets a DM.")
    return web.redirect(req, req.back)


@routes.route("POST", "/g/<guild_id>/redemptions/<purchase_id>/refund")
def redemption_refund(req: web.AdminRequest, guild_id: int, purchase_id: str) -> Response:
    pid = int_param(purchase_id)
    req.back = _back_to_queue(req, guild_id)
    req.fields_by_error = {"reason": "reason"}
    reason = req.form("reason")
    if not reason.strip():
        raise InvalidInput("Give a reason for the refund (the member sees it).", field="reason")
    who = req.identity
    done = req.db.run(store.refund, guild_id=guild_id, purchase_id=pid, reason=reason, actor_id=who.user_id,
                      actor_name=who.actor_name)  # fmt: skip
    outbox.request_delivery()
    if done.kind == "role":
        roles.request_role_delivery()
    req.flash("ok", f"Purchase #{done.id} ({done.reward_name}) refunded: {done.price:,} points back.")
    return web.redirect(req, req.back)


__all__ = ["csv_cell", "field_of", "routes"]
