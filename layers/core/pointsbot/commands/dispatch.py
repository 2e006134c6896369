"""Running one interaction's command: rights, one transaction, the answer, exactly once.

The same `execute` serves the interactions function (inline, with a short database budget)
and the worker (a deferred interaction). A command that writes claims its interaction id in
`interaction_replies` in the same transaction as its change and stores its answer there, so a
second delivery replays the first answer and changes nothing.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ..community import audit, members
from ..discord.interactions import CHAT_INPUT, Interaction, Reply, picture_of
from ..ledger.guilds import GUILD_ROW, GuildPolicy, policy_from, remember_locale
from ..platform.config import Settings, get_settings
from ..platform.db import Database
from ..platform.errors import DomainError
from ..platform.i18n import translator
from ..platform.ids import parse_snowflake
from ..platform.paging import page_number
from .catalog import is_admin_command, is_ephemeral, option_problem
from .context import _AUTOCOMPLETE, _REGISTRY, CommandSpec, Context
from .context import is_admin as is_admin  # decided per interaction; /help asks it too


@dataclass(frozen=True)
class Outcome:
    """The answer and how it went: ok, refused (a rule said no), denied (no rights), replayed."""

    reply: Reply
    command: str
    status: str
    queued_dms: bool = False
    queued_roles: bool = False


# The module of this package that registers each command, by the command's first word, so an
# interaction imports its own command's code and no other (a cold first /balance does not load
# the admin, store or season code). tests/unit/test_command_modules.py holds it to what each
# module registers.
_MODULE_OF = {
    "points": "admin", "emails": "admin", "member": "admin",
    "balance": "member", "leaderboard": "member", "rank": "member", "history": "member",
    "achievements": "member", "email": "member", "give": "member",
    "profile": "menus", "help": "menus",
    "season": "seasons", "seasons": "seasons",
    "shop": "store", "buy": "store", "purchases": "store", "redemptions": "store",
}  # fmt: skip


def _load_commands(path: str | None = None) -> None:
    """Register the command `path` (its module), or every command (no path, or one not known).

    Importing registers (a repeated import costs a dict lookup). Not at module import: a PING
    should not pay for the command code on a cold start, nor a /balance for the admin's."""
    module = _MODULE_OF.get(path.partition(" ")[0]) if path else None
    if module is not None:
        importlib.import_module(f".{module}", __package__)
        return
    from . import admin, member, menus, seasons, store  # noqa: F401


def _route(interaction: Interaction) -> tuple[str, dict[str, Any], bool]:
    """Command path, options and whether the answer updates a message (buttons).

    A context-menu command runs the slash command it stands for (menus.CONTEXT_MENUS), a modal
    submit the one its custom_id names (menus.modal_route), so every write keeps one code path.
    """
    if interaction.is_modal_submit:
        from .menus import modal_route

        path, options = modal_route(interaction)
        return path, options, False
    if interaction.command_type != CHAT_INPUT:
        from .menus import menu_route

        path, options = menu_route(interaction)
        return path, options, False
    if interaction.is_component:
        kind, _, rest = (interaction.custom_id or "").partition(":")
        page, _, cursor = rest.partition(":")
        if kind == "leaderboard" and page.isascii() and page.isdigit():
            # "leaderboard:<page>:<next|prev>[:<balance>:<user id>]": buttons posted before the
            # keyset carry only the page, and still lead to it (the cursor is checked there).
            return "leaderboard", {"page": page_number(page), "cursor": cursor}, True
        if kind == "shop" and page.isascii() and page.isdigit() and len(page) <= 6:
            return "shop", {"page": page_number(page)}, True  # "shop:<page>:<next|prev>"
        if kind == "purchases" and page.isascii() and page.isdigit() and len(page) <= 6:
            return "purchases", {"page": page_number(page)}, True  # "purchases:<page>:<next|prev>"
        if kind == "standings" and _is_id(page):
            # "standings:<season id>:<page>:<next|prev>": a season's final table, page by page
            number = cursor.partition(":")[0]
            if number.isascii() and number.isdigit() and len(number) <= 6:
                return "season standings", {"season": page, "page": page_number(number)}, True
        if kind == "buy" and _is_id(rest):
            # "buy:<reward id>": a new private answer, not an edit of the shop it was clicked on.
            # Whose reward it is, is checked by the purchase (in the interaction's guild only).
            return "buy", {"reward_id": int(rest)}, False
        return "", {}, True
    return interaction.command, dict(interaction.options), False


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and 0 < len(text) <= 19 and text[0] != "0" and int(text) < 2**63


def updates_message(interaction: Interaction) -> bool:
    """Whether a button's answer edits the message it is on (else it is a new message)."""
    try:
        return _route(interaction)[2]
    except DomainError:  # a modal's field that is no number: answered at once, never deferred
        return False


def autocomplete(database: Database, interaction: Interaction) -> list[tuple[str, str]]:
    """The choices for an autocomplete interaction: read-only, no claim, nothing written.
    An option without autocomplete, or outside a server, gets no choices."""
    _load_commands(interaction.command)
    fn = _AUTOCOMPLETE.get(interaction.command)
    if fn is None or interaction.guild_id is None or interaction.focused is None:
        return []
    typed = interaction.options.get(interaction.focused)
    guild_id = parse_snowflake(interaction.guild_id, "guild_id")
    user_id = parse_snowflake(interaction.user_id, "user_id")
    return database.run(fn, guild_id, user_id, typed if isinstance(typed, str) else str(typed or ""))


def _policy(conn: psycopg.Connection, settings: Settings, guild_id: int) -> GuildPolicy:
    """The guild's policy without writing anything (a refusal must leave no trace), with the
    guild's name and achievement count, so a change the command makes reads the row no more."""
    row = conn.execute(GUILD_ROW, {"guild_id": guild_id}).fetchone()
    return policy_from(settings, *row) if row else policy_from(settings, None)


# For a command that writes: the guild row (as `_policy` reads it) and the claim of the
# interaction id, in one round trip. `claimed` is false when the id was claimed before: a second
# delivery, which gets the first answer back (a concurrent twin waits on the INSERT until the
# first commits, then finds its answer).
_POLICY_AND_CLAIM = f"""
WITH g AS ({GUILD_ROW}), c AS (
    INSERT INTO interaction_replies (interaction_id, guild_id, user_id, command)
    VALUES (%(id)s, %(guild_id)s, %(user_id)s, %(command)s)
    ON CONFLICT (interaction_id) DO NOTHING RETURNING interaction_id
)
SELECT g.settings, g.name, g.active_achievements, EXISTS (SELECT 1 FROM c) AS claimed
FROM (SELECT) AS one LEFT JOIN g ON true
"""


def _policy_and_claim(conn: psycopg.Connection, ctx: Context) -> bool:
    """Set ctx.policy and claim the interaction id; whether it was claimed now."""
    settings, name, achievements, claimed = conn.execute(
        _POLICY_AND_CLAIM,
        {
            "guild_id": ctx.guild_id,
            "id": int(ctx.interaction.id),
            "user_id": ctx.user_id,
            "command": ctx.path,
        },
    ).fetchone()
    ctx.policy = policy_from(ctx.settings, settings, name, achievements)
    return bool(claimed)


def _first_answer(conn: psycopg.Connection, ctx: Context) -> Reply:
    """The answer stored by the first delivery of this interaction id."""
    row = conn.execute(
        "SELECT reply FROM interaction_replies WHERE interaction_id = %s", (int(ctx.interaction.id),)
    ).fetchone()
    if row is None or row[0] is None:
        raise DomainError("This command is already being handled.")
    return Reply.from_json(row[0])


# The answer stored for a replay, the command's audit rows, and whether this transaction queued
# a DM or asked for a role change (rows made in it carry its start time, now()), in one round trip.
_STORE_REPLY = (
    "WITH audited AS (" + audit.INSERT_PENDING + ")"
    + """
UPDATE interaction_replies SET reply = %(reply)s WHERE interaction_id = %(id)s
RETURNING EXISTS (SELECT 1 FROM direct_messages WHERE guild_id = %(guild_id)s AND status = 'queued'
                  AND created_at = now()),
          EXISTS (SELECT 1 FROM role_changes WHERE guild_id = %(guild_id)s AND state = 'pending'
                  AND created_at = now())
"""
)  # fmt: skip


def _run(conn: psycopg.Connection, spec: CommandSpec, ctx: Context) -> Outcome:
    if spec.writes:
        claimed = _policy_and_claim(conn, ctx)
    else:
        ctx.policy = _policy(conn, ctx.settings, ctx.guild_id)
    if is_admin_command(ctx.path) and not is_admin(ctx.interaction, ctx.policy):
        if spec.writes and claimed:  # a refusal leaves no trace: give the id back
            conn.execute(
                "DELETE FROM interaction_replies WHERE interaction_id = %s", (int(ctx.interaction.id),)
            )
        top = ctx.path.split(" ", 1)[0]
        tr = translator(ctx.interaction.locale)
        return Outcome(
            Reply(tr._("Only admins can use /{command} (Manage Server, Administrator, or an admin role of this "
                       "server).", command=top), ephemeral=True),
            ctx.path, "denied",
        )  # fmt: skip
    if spec.writes and not claimed:
        return Outcome(_first_answer(conn, ctx), ctx.path, "replayed")
    people = [(ctx.user_id, ctx.interaction.username, ctx.interaction.display_name,
               picture_of(ctx.interaction.me, ctx.guild_id))]  # fmt: skip
    named = ctx.member(spec.remembers) if spec.remembers else None  # a bad id: the command's own refusal
    if named is not None:
        people.append(ctx.person(named))
    members.remember_people(conn, ctx.guild_id, people)
    server_locale = ctx.interaction.guild_locale
    if server_locale and server_locale != ctx.policy.locale:  # DMs speak the server's language
        remember_locale(conn, ctx.guild_id, server_locale)
    reply = spec.fn(ctx, conn)
    if ctx.update:
        reply = reply.with_update()
    if spec.writes:
        row = conn.execute(
            _STORE_REPLY,
            {"reply": Jsonb(reply.to_json()), "id": int(ctx.interaction.id), "guild_id": ctx.guild_id,
             "audit": audit.pending_param(ctx.audit_rows)},
        ).fetchone()  # fmt: skip
        return Outcome(reply, ctx.path, "ok", bool(row and row[0]), bool(row and row[1]))
    for pending in ctx.audit_rows:  # a command that stores no answer writes its rows itself
        audit.record(conn, **pending)
    return Outcome(reply, ctx.path, "ok")


def execute(database: Database, interaction: Interaction, settings: Settings | None = None) -> Outcome:
    """Answer one command or button. DatabaseUnavailable propagates: the caller defers or retries.

    A rule that says no (DomainError) rolls the transaction back and becomes a private answer.
    """
    settings = settings or get_settings()
    tr = translator(interaction.locale)
    try:
        path, options, update = _route(interaction)
    except DomainError as refusal:  # a modal's field that is no number: nothing read or written
        return Outcome(Reply(refusal.message, ephemeral=True), "modal", "refused")
    _load_commands(path)
    if interaction.guild_id is None:
        return Outcome(Reply(tr._("Use this command in a server."), ephemeral=True), path, "refused")
    from .menus import opens_modal

    modal = opens_modal(interaction, path, options)
    if modal is not None:  # a context menu that asks first: no database, Discord shows the form
        return Outcome(modal, path, "ok" if modal.modal is not None else "refused")
    spec = _REGISTRY.get(path)
    if spec is None:
        return Outcome(
            Reply(tr._("This command is not known (any more)."), ephemeral=True),
            path or "component",
            "refused",
        )
    checked = (
        not interaction.is_component
        and not interaction.is_modal_submit
        and interaction.command_type == CHAT_INPUT
    )
    problem = option_problem(path, options, interaction.option_types, tr) if checked else None
    if problem is not None:  # checked before anything is read or written
        return Outcome(Reply(problem, ephemeral=True), path, "refused")
    try:
        ctx = Context(
            interaction=interaction,
            path=path,
            options=options,
            guild_id=parse_snowflake(interaction.guild_id, "guild_id"),
            user_id=parse_snowflake(interaction.user_id, "user_id"),
            settings=settings,
            policy=policy_from(settings, None),
            update=update,
        )
        outcome = database.run(_run, spec, ctx)
    except DomainError as refusal:
        # The domain's sentences are English msgids; the catalog has the fixed ones.
        if refusal.values:
            from ..platform.i18n import localize

            said = tr._(refusal.template, **localize(refusal.values, tr))
        else:
            said = tr._(refusal.message)
        return Outcome(Reply(said, ephemeral=True), path, "refused")
    if outcome.queued_dms:
        from ..delivery import outbox

        outbox.request_delivery()
    if outcome.queued_roles:
        from ..community import roles

        roles.request_role_delivery()
    return outcome


def answers_privately(interaction: Interaction) -> bool:
    """Whether a deferred answer should be visible to the asker only (a button that answers
    with a new message, such as Buy, answers as its command does)."""
    try:
        path, _options, update = _route(interaction)
    except DomainError:
        return True
    if interaction.is_component:
        return not update and is_ephemeral(path)
    return is_ephemeral(path)


def prune_replies(conn: psycopg.Connection, keep_hours: int = 24) -> int:
    """Forget stored answers older than `keep_hours` (interaction tokens live 15 minutes, so
    nobody can ask for them again). For a schedule, e.g. the keep-alive; returns rows removed."""
    return conn.execute(
        "DELETE FROM interaction_replies WHERE created_at < now() - make_interval(hours => %s)", (keep_hours,)
    ).rowcount
