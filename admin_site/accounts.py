"""Local admin accounts from the command line (first set-up and local runs).

    python -m admin_site.accounts create NAME --guild ID [--guild ID ...]   (asks for the password)
    python -m admin_site.accounts password NAME
    python -m admin_site.accounts disable NAME | enable NAME
    python -m admin_site.accounts list

Uses DATABASE_URL; with none set, the local runtime's embedded Postgres in LOCAL_DIR (or
--local-dir; default .local), as `make run` does: the one already running there, else one
started for this command and stopped again at its end.
The password may come from ADMIN_PASSWORD instead of the prompt (scripts, tests).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from pointsbot.admin import auth
from pointsbot.platform.config import get_settings
from pointsbot.platform.db import Database
from pointsbot.platform.errors import DomainError
from pointsbot.platform.ids import format_snowflake, parse_snowflake


def _database(local_dir: Path | None) -> tuple[str, Any]:
    """The database URL, and this command's hold on an embedded Postgres (None if not used)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url, None
    from pointsbot_local.__main__ import default_local_dir, embedded_database  # development only

    url, postgres = embedded_database(local_dir or default_local_dir())
    from pointsbot.platform.migrate import migrate

    migrate(url, log=lambda _m: None)
    return url, postgres


def _password(confirm: bool = True) -> str:
    given = os.environ.get("ADMIN_PASSWORD")
    if given:
        return given
    first = getpass.getpass("Password (12 characters or more): ")
    if confirm and getpass.getpass("Again: ") != first:
        raise DomainError("The two passwords differ.")
    return first


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m admin_site.accounts", description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--local-dir", type=Path, default=None,
        help="the local runtime's folder, whose embedded Postgres is used without DATABASE_URL (default: LOCAL_DIR or .local)",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser(
        "create", parents=[common], help="create an account that manages the given guilds"
    )
    create.add_argument("name")
    create.add_argument("--guild", action="append", required=True, help="a guild id (repeat for several)")
    for name in ("password", "disable", "enable"):
        sub.add_parser(name, parents=[common]).add_argument("name")
    sub.add_parser("list", parents=[common])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    postgres = None
    try:
        url, postgres = _database(args.local_dir)
        settings = get_settings()  # DB_PREPARE_THRESHOLD too: the URL may be a transaction pooler's
        db = Database(
            url,
            statement_timeout_ms=settings.db_statement_timeout_ms,
            prepare_threshold=settings.db_prepare_threshold,
        )
        try:
            if args.command == "create":
                guilds = [parse_snowflake(g, "guild id") for g in args.guild]
                account = db.run(auth.create_account, args.name, _password(), guilds)
                print(
                    f"created {account.name} for guild(s) {', '.join(format_snowflake(g) or '' for g in guilds)}"
                )
            elif args.command == "password":
                db.run(auth.set_password, args.name, _password())
                print("password changed")
            elif args.command in ("disable", "enable"):
                db.run(auth.set_disabled, args.name, args.command == "disable")
                print(f"{args.name} {args.command}d")
            else:
                for account in db.run(auth.list_accounts):
                    state = " (disabled)" if account.disabled else ""
                    print(f"{account.name}{state}: {', '.join(str(g) for g in account.guild_ids)}")
        finally:
            db.close()
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    finally:
        if postgres is not None:  # stops it if this command started it; a running `make run`'s stays
            postgres.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
