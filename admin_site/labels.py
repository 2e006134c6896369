"""Words for the admin site's pages instead of internal names: ledger kinds and sources, audit
actions and targets, actors, setting fields. One place, so a new section adds its lines here
(unknown names fall back to a readable form of the name itself, never to nothing)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
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
    "api_key.create": "API key made",
    "api_key.revoke": "API key revoked",
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
    "balance": "Balance",
    "entry_id": "Entry",
    "entries": "New entries",
    "user_id": "Member",
    "silent": "Silent (no DM)",
    "net_change": "Net change",
    "skipped_invalid": "Rows refused",
    "skipped_unchanged": "Rows unchanged",
    "status": "Status",
    "note": "Note",
    "bonus_entry_id": "Bonus entry",
    "members_checked": "Members checked",
    "awards": "Achievements awarded",
    "finished": "Finished",
    "requeued": "Queued again",
    "points": "Points",
    "role_id": "Role",
    "on_drop": "When the balance drops below",
    "scopes": "May",
    "prefix": "Key starts with",
    "key_id": "API key",
    "guilds": "Servers",
    "why": "Why",
    "price": "Price",
    "stock": "Stock",
    "per_member_limit": "Limit per member",
    "starts_at": "On sale from",
    "ends_at": "On sale until",
    "duration_days": "For how many days",
    "enabled": "On sale",
    "kind": "Kind",
    "codes": "Codes",
    "via": "Through",
    "interaction": "Discord interaction",
    "recipients": "Recipients",
    "bonus": "Bonus",
}


# Why a DM was sent (direct_messages.reason) and what a reward is (rewards.kind).
DM_REASONS = {
    "admin": "Admin's message",
    "points": "Points change",
    "email": "Email review",
    "achievement": "Achievement",
    "store": "Store",
    "season": "Season",
}

REWARD_KINDS = {"item": "Item", "role": "Role", "code": "Code"}


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


def dm_reason(name: str) -> str:
    return DM_REASONS.get(name) or humanize(name)


def reward_kind(name: str) -> str:
    return REWARD_KINDS.get(name) or humanize(name)


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
             "redemption": "Redemption #", "purchase": "Purchase #", "threshold": "Role threshold #",
             "season": "Season #", "webhook": "Webhook #", "submission": "Email submission #",
             "api_key": "API key #", "role_change": "Role change #"}  # fmt: skip
    if head in words and rest:
        return Markup.escape(words[head] + rest)
    if head == "guild":
        return Markup.escape("This server")
    return Markup.escape({"sweep": "Every member", "failed": "Failed messages"}.get(text, text))


# -- the audit log's before/after, as a list of changes ----------------------------------------
@dataclass(frozen=True)
class Change:
    """One line of an audit entry: a field's label, what it was and what it became (None: the
    entry does not say, e.g. a creation has no "before")."""

    label: str
    old: Markup | None
    new: Markup | None


_ID_KEYS = ("user_id", "actor_id")


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """A JSON object as one level of `key -> value` ("a.b" for nested objects); anything else is
    one value under its prefix (or "value")."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flat(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix or "value": value}


def _label(key: str) -> str:
    return " \u203a ".join(field(part) for part in key.split("."))


def audit_value(key: str, value: Any, who: Callable[..., Markup]) -> Markup:
    """A value of an audit entry in words: yes/no, grouped digits, a person for a member id,
    lists joined, an empty value as a dash."""
    last = key.rsplit(".", 1)[-1]
    if value is None or value == "" or value == []:
        return Markup("—")
    if isinstance(value, bool):
        return Markup.escape("yes" if value else "no")
    if last in _ID_KEYS and str(value).isdigit():
        return who(int(value), link=False)
    if last.endswith("_id") or last.endswith("_ids") or last == "id":
        if isinstance(value, list):
            return Markup(", ").join(Markup.escape(str(v)) for v in value)
        return Markup.escape(f"#{value}" if last.endswith("entry_id") or last == "id" else str(value))
    if last in ("amount", "net_change") and isinstance(value, int):
        return Markup.escape(f"{value:+,}")
    if last == "kind" and isinstance(value, str):
        return Markup.escape(kind(value))
    if isinstance(value, int):
        return Markup.escape(f"{value:,}")
    if isinstance(value, list):
        if all(isinstance(v, dict) for v in value):
            return Markup("; ").join(
                Markup(", ").join(
                    Markup("{}: {}").format(field(k), audit_value(k, v, who)) for k, v in item.items()
                )
                for item in value
            )
        return Markup(", ").join(audit_value(last, v, who) for v in value)
    return Markup.escape(str(value))


def audit_changes(before: Any, after: Any, who: Callable[..., Markup]) -> list[Change]:
    """An audit entry's before and after as lines "label: old → new": with both, the fields that
    differ (in the order the entry lists them) and those one side alone has; a creation lists
    what was made, a removal what was there. No JSON reaches the page."""
    old = _flat(before) if before is not None else {}
    new = _flat(after) if after is not None else {}
    lines = []
    for key in list(new) + [k for k in old if k not in new]:
        in_old, in_new = key in old, key in new
        if in_old and in_new and old[key] == new[key]:
            continue
        lines.append(
            Change(
                _label(key),
                audit_value(key, old[key], who) if in_old else None,
                audit_value(key, new[key], who) if in_new else None,
            )
        )
    return lines


def register(env: Any) -> None:
    """The template filters: {{ e.kind|kind }}, {{ e.source|source }}, {{ a.action|action }},
    {{ name|field }}, {{ e.actor|actor }}, {{ a.target|target(who) }}."""
    env.filters.update(kind=kind, source=source, action=action, field=field, actor=actor, target=target,
                       dm_reason=dm_reason, reward_kind=reward_kind)  # fmt: skip
    env.globals["audit_changes"] = audit_changes
