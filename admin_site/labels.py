"""Words for the admin site's pages instead of internal names: ledger kinds and sources, audit
actions and targets, actors, setting fields. One place, so a new section adds its lines here
(unknown names fall back to a readable form of the name itself, never to nothing)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from markupsafe import Markup

KINDS = {
    "award": "Added",
    "deduct": "Removed",
    "set": "Balance set",
    "transfer_in": "Received from a member",
    "transfer_out": "Given to a member",
    "revert": "Reverted",
    "achievement": "Achievement bonus",
    "email_bonus": "Email bonus",
    "purchase": "Store purchase",
    "purchase_refund": "Store refund",
    "season_reset": "Season reset",
    "season_prize": "Season prize",
}

SOURCES = {
    "slash": "Discord command",
    "admin_site": "Admin site",
    "achievement": "Achievements",
    "system": "The bot",
    "purchase": "Store",
    "purchase_refund": "Store refund",
    "season_reset": "Season reset",
    "season_prize": "Season prize",
    "api": "API",
}

ACTIONS = {
    "points.award": "Points added",
    "points.deduct": "Points removed",
    "points.set": "Balance set",
    "points.revert": "Entry reverted",
    "bulk.award": "Bulk add",
    "bulk.deduct": "Bulk remove",
    "bulk.set": "Bulk set",
    "member.create": "Member added",
    "member.edit": "Profile edited",
    "member.export": "Member data exported",
    "member.erase": "Personal data erased",
    "email.approve": "Email approved",
    "email.reject": "Email rejected",
    "achievement.create": "Achievement created",
    "achievement.edit": "Achievement edited",
    "achievement.check_now": "Achievement check run",
    "dm.send": "DMs sent",
    "dm.retry": "Failed DMs retried",
    "guild.settings": "Settings changed",
    "session.sign_in": "Signed in",
    "session.rights_gone": "Signed out: rights gone",
    "session.rights_narrowed": "Rights narrowed",
    "reward.create": "Reward created",
    "reward.edit": "Reward edited",
    "reward.codes_upload": "Reward codes uploaded",
    "redemption.fulfil": "Redemption fulfilled",
    "redemption.refund": "Redemption refunded",
    "role_threshold.create": "Role threshold added",
    "role_threshold.remove": "Role threshold removed",
    "role_change.acknowledge": "Refused role change seen",
    "season.start": "Season started",
    "season.cancel": "Scheduled season cancelled",
    "season.end_early": "Season ended early",
    "season.rename": "Season renamed",
    "season.reset_reverted": "Season's balance reset reverted",
    "webhook.created": "Webhook added",
    "webhook.edited": "Webhook edited",
    "webhook.enabled": "Webhook switched on",
    "webhook.disabled": "Webhook switched off",
    "webhook.disabled_by_failures": "Webhook switched off after failures",
    "webhook.deleted": "Webhook deleted",
    "webhook.secret_revealed": "Webhook secret revealed",
    "webhook.secret_rolled": "Webhook secret rolled",
    "webhook.resent": "Webhook event resent",
}

# Setting and form fields, as a person reads them (settings page, audit diffs, error messages).
FIELDS = {
    "currency_name": "Currency name",
    "currency_singular": "Currency name for one",
    "max_change": "Largest single change",
    "daily_cap": "Daily cap per member",
    "allow_negative": "Deductions may go below zero",
    "transfers_enabled": "Members may give points",
    "dm_notifications": "DM members when their points change",
    "public_leaderboard": "Public leaderboard page",
    "admin_role_ids": "Admin roles",
    "display_name": "Display name",
    "email": "Email",
    "notes": "Notes",
    "dm_opt_out": "No automatic DMs",
    "name": "Name",
    "description": "Description",
    "criterion": "Rule",
    "threshold": "N",
    "window_days": "Days",
    "bonus_points": "Bonus points",
    "active": "Active",
    "queued": "Queued",
    "content": "Message",
    "operation": "Operation",
    "amount": "Amount",
    "reason": "Reason",
    "rows": "Rows",
    "time_zone": "Time zone",
}


def humanize(name: str) -> str:
    """An internal name as words: "transfer_out" -> "Transfer out"."""
    text = re.sub(r"[._:]+", " ", str(name)).strip()
    return text[:1].upper() + text[1:] if text else ""


def kind(name: str) -> str:
    return KINDS.get(name) or humanize(name)


def source(name: str) -> str:
    return SOURCES.get(name) or humanize(name)


def action(name: str) -> str:
    return ACTIONS.get(name) or humanize(name)


def field(name: str) -> str:
    return FIELDS.get(name) or humanize(name)


def actor(name: str | None) -> str:
    """Who made a change when no Discord id was recorded: a local account, or the bot itself."""
    if not name:
        return "—"
    if name.startswith("local:"):
        return f"{name[6:]} (local account)"
    return {"achievement": "Achievements (automatic)", "system": "The bot", "store": "Store"}.get(name, name)


def target(value: str | None, who: Callable[..., Markup]) -> Markup:
    """An audit target as words: "member:301" is the member (name and avatar), "entry:12"
    "entry #12", "members:5" "5 members", ..."""
    text = str(value or "")
    head, _, rest = text.partition(":")
    if head == "member" and rest.isdigit():
        return who(int(rest))  # already Markup (web.People.mark)
    if head == "members" and rest.isdigit():
        return Markup.escape(f"{int(rest):,} member" + ("" if int(rest) == 1 else "s"))
    words = {"entry": "Entry #", "batch": "Bulk batch #", "achievement": "Achievement #", "reward": "Reward #",
             "redemption": "Redemption #", "purchase": "Purchase #", "threshold": "Role threshold #", "season": "Season #", "webhook": "Webhook #"}  # fmt: skip
    if head in words and rest:
        return Markup.escape(words[head] + rest)
    if head == "guild":
        return Markup.escape("This server")
    return Markup.escape({"sweep": "Every member", "failed": "Failed messages"}.get(text, text))


def register(env: Any) -> None:
    """The template filters: {{ e.kind|kind }}, {{ e.source|source }}, {{ a.action|action }},
    {{ name|field }}, {{ e.actor|actor }}, {{ a.target|target(who) }}."""
    env.filters.update(kind=kind, source=source, action=action, field=field, actor=actor, target=target)
