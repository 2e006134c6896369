"""Webhooks: the guild's outbound endpoints (add, edit, switch off and on, delete, reveal or roll
the signing secret) and each one's delivery log with "Resend". Every rule, check (the URL's
SSRF check included) and audit entry is in pointsbot.community.webhooks; this module only
shapes the pages."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from admin_site import web
from admin_site.sections import Section, int_param
from pointsbot.community import webhooks
from pointsbot.delivery.webhook_http import UnsafeURL
from pointsbot.platform.errors import InvalidInput

routes = Section()
LOG_PAGE = 50
# Which field of a webhook form a refusal is about (web.AdminRequest.back_to): the URL's checks,
# then by words; the limit on webhooks is about the form as a whole.
WEBHOOK_FIELDS = {UnsafeURL: "url", "event": "event", "description": "description"}
NEW_EVENTS = ("entry.created", "entry.reverted")  # ticked on the form for a new webhook


def _values(req: web.AdminRequest) -> dict[str, object]:
    return {"url": req.form("url"), "description": req.form("description"), "events": req.form_list("event")}


def _list_page(req: web.AdminRequest, guild_id: int, *, new_secret=None, made=None) -> Response:
    hooks = req.db.run(webhooks.list_webhooks, guild_id)
    form = {"url": "", "description": "", "events": list(NEW_EVENTS)}
    return web.page(req, "webhooks.html", hooks=hooks, values=form, events=webhooks.EVENTS,
                    new_secret=new_secret, made=made, max_webhooks=webhooks.MAX_WEBHOOKS)  # fmt: skip


@routes.route("GET", "/g/<guild_id>/webhooks")
def webhooks_page(req: web.AdminRequest, guild_id: int) -> Response:
    return _list_page(req, guild_id)


@routes.route("POST", "/g/<guild_id>/webhooks")
def webhook_create(req: web.AdminRequest, guild_id: int) -> Response:
    # A refusal: this page again (422), the form as typed, the message next to its field.
    req.back_to(f"/g/{guild_id}/webhooks", WEBHOOK_FIELDS)
    who = req.identity
    values = _values(req)
    made, secret = req.db.run(webhooks.create_webhook, guild_id=guild_id, url=values["url"],
                              events=values["events"], description=values["description"],
                              actor_id=who.user_id, actor_name=who.actor_name)  # fmt: skip
    # The secret is on this answer (no redirect: a flash would store it); "Reveal" shows it again.
    return _list_page(req, guild_id, new_secret=secret, made=made)


def _hook_page(req: web.AdminRequest, guild_id: int, webhook_id: int, *, secret=None) -> Response:
    before = req.query("before")
    before_id = int_param(before) if before else None

    def load(conn):
        hook = webhooks.get_webhook(conn, guild_id, webhook_id)
        log = webhooks.list_deliveries(conn, guild_id, webhook_id, before=before_id, limit=LOG_PAGE + 1)
        bodies = {d.id: webhooks.delivery_body(conn, guild_id, d.id) for d in log[:LOG_PAGE]}
        return hook, log, bodies

    hook, log, bodies = req.db.run(load)
    form = {"url": hook.url, "description": hook.description, "events": list(hook.events)}
    more = log[LOG_PAGE - 1].id if len(log) > LOG_PAGE else None
    return web.page(req, "webhook.html", hook=hook, log=log[:LOG_PAGE], bodies=bodies, values=form,
                    events=webhooks.EVENTS, secret=secret, more=more, paged=before_id is not None)  # fmt: skip


@routes.route("GET", "/g/<guild_id>/webhooks/<webhook_id>")
def webhook_page(req: web.AdminRequest, guild_id: int, webhook_id: str) -> Response:
    return _hook_page(req, guild_id, int_param(webhook_id))


@routes.route("POST", "/g/<guild_id>/webhooks/<webhook_id>")
def webhook_edit(req: web.AdminRequest, guild_id: int, webhook_id: str) -> Response:
    hook_id = int_param(webhook_id)
    req.db.run(webhooks.get_webhook, guild_id, hook_id)  # none such: the site's page for a NotFound
    # A refusal: the webhook's page again (422), the form as typed, the message next to its field.
    req.back_to(f"/g/{guild_id}/webhooks/{hook_id}", WEBHOOK_FIELDS)
    who = req.identity
    values = _values(req)
    req.db.run(webhooks.edit_webhook, guild_id=guild_id, webhook_id=hook_id, url=values["url"],
               events=values["events"], description=values["description"], actor_id=who.user_id,
               actor_name=who.actor_name)  # fmt: skip
    req.flash("ok", "Webhook saved.")
    return web.redirect(req, web.url(f"/g/{guild_id}/webhooks/{hook_id}"))


@routes.route("POST", "/g/<guild_id>/webhooks/<webhook_id>/enable")
def webhook_enable(req: web.AdminRequest, guild_id: int, webhook_id: str) -> Response:
    return _switch(req, guild_id, int_param(webhook_id), True)


@routes.route("POST", "/g/<guild_id>/webhooks/<webhook_id>/disable")
def webhook_disable(req: web.AdminRequest, guild_id: int, webhook_id: str) -> Response:
    return _switch(req, guild_id, int_param(webhook_id), False)


def _switch(req: web.AdminRequest, guild_id: int, hook_id: int, enabled: bool) -> Response:
    req.back_to(f"/g/{guild_id}/webhooks")
    who = req.identity
    req.db.run(webhooks.set_enabled, guild_id=guild_id, webhook_id=hook_id, enabled=enabled, actor_id=who.user_id,
               actor_name=who.actor_name)  # fmt: skip
    if enabled:
        webhooks.request_delivery()  # what waited while it was off
    req.flash("ok", "Webhook switched on: waiting deliveries go out now." if enabled
              else "Webhook switched off: no events are queued for it until it is switched on.")  # fmt: skip
    return web.redirect(req, web.url(f"/g/{guild_id}/webhooks/{hook_id}"))


@routes.route("POST", "/g/<guild_id>/webhooks/<webhook_id>/delete")
def webhook_delete(req: web.AdminRequest, guild_id: int, webhook_id: str) -> Response:
    who = req.identity
    hook_id = int_param(webhook_id)
    req.back_to(f"/g/{guild_id}/webhooks/{hook_id}")
    if req.form("confirm") != "yes":
        raise InvalidInput(
            "Tick “Yes, delete it” to delete the webhook and its delivery log.", field="confirm"
        )
    req.db.run(webhooks.delete_webhook, guild_id=guild_id, webhook_id=hook_id, actor_id=who.user_id,
               actor_name=who.actor_name)  # fmt: skip
    req.flash("ok", "Webhook deleted, with its delivery log.")
    return web.redirect(req, web.url(f"/g/{guild_id}/webhooks"))


@routes.route("POST", "/g/<guild_id>/webhooks/<webhook_id>/secret")
def webhook_secret(req: web.AdminRequest, guild_id: int, webhook_id: str) -> Response:
    req.back_to(f"/g/{guild_id}/webhooks")
    who = req.identity
    hook_id = int_param(webhook_id)
    roll = req.form("roll") == "yes"
    secret = req.db.run(webhooks.roll_secret if roll else webhooks.reveal_secret, guild_id=guild_id,
                        webhook_id=hook_id, actor_id=who.user_id, actor_name=who.actor_name)  # fmt: skip
    return _hook_page(req, guild_id, hook_id, secret=secret)


@routes.route("POST", "/g/<guild_id>/webhooks/deliveries/<delivery_id>/resend")
def delivery_resend(req: web.AdminRequest, guild_id: int, delivery_id: str) -> Response:
    req.back_to(f"/g/{guild_id}/webhooks")
    who = req.identity
    original = req.db.run(webhooks.get_delivery, guild_id, int_param(delivery_id))
    req.db.run(webhooks.resend, guild_id=guild_id, delivery_id=original.id, actor_id=who.user_id,
               actor_name=who.actor_name)  # fmt: skip
    webhooks.request_delivery()
    req.flash("ok", f"Event {original.event_id} queued again; it goes out in a moment.")
    return web.redirect(req, web.url(f"/g/{guild_id}/webhooks/{original.webhook_id}"))
