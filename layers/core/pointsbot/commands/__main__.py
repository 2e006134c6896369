"""The register-commands CLI: `python -m pointsbot.commands sync [--guild ID] [--dry-run]`.

Reads DISCORD_APPLICATION_ID, DISCORD_BOT_TOKEN and DISCORD_API_BASE_URL from the environment.
Shows the difference first; sends nothing when nothing changed.
"""

from __future__ import annotations

import argparse
import json
import sys

from .catalog import definitions, definitions_hash


def _client_and_app(args: argparse.Namespace):
    from ..discord.rest import DiscordClient
    from ..platform.config import get_settings

    settings = get_settings()
    application_id = args.application_id or settings.discord_application_id
    if not application_id:
        raise SystemExit("DISCORD_APPLICATION_ID is not set (or pass --application-id)")
    return DiscordClient.from_settings(settings), application_id


def _sync(args: argparse.Namespace) -> int:
    from ..discord.rest import DiscordError, DiscordUnavailable, RateLimited
    from .sync import sync_commands

    client, application_id = _client_and_app(args)
    try:
        preview = sync_commands(client, application_id, args.guild, dry_run=True)
        for line in preview.diff:
            print(line)
        if not preview.changed or args.dry_run:
            print(preview.summary())
            return 0
        result = sync_commands(client, application_id, args.guild)
    except (DiscordError, DiscordUnavailable, RateLimited) as exc:
        print(f"registration failed: {exc}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pointsbot.commands", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    sync = sub.add_parser("sync", help="register the commands (bulk overwrite) if they differ")
    sync.add_argument("--guild", help="register for one guild (instant) instead of globally")
    sync.add_argument("--application-id", help="default: DISCORD_APPLICATION_ID")
    sync.add_argument("--dry-run", action="store_true", help="show the difference, change nothing")
    sync.set_defaults(func=_sync)
    show = sub.add_parser("show", help="print the definitions as JSON")
    show.set_defaults(func=lambda _a: print(json.dumps(definitions(), indent=2)) or 0)
    digest = sub.add_parser("hash", help="print the definitions' hash")
    digest.set_defaults(func=lambda _a: print(definitions_hash()) or 0)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
