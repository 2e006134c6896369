"""Local admin accounts from the command line (first set-up and local runs).

    python -m admin_site.accounts create NAME --guild ID [--guild ID ...]   (asks for the password)
    python -m admin_site.accounts password NAME
    python -m admin_site.accounts disable NAME | enable NAME
    python -m admin_site.accounts list

Uses DATABASE_URL; with none set it uses the local runtime's embedded Postgres (as `make run`).
The password may come from ADMIN_PASSWORD instead of the prompt (scripts, tests).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from pointsbot.admin import auth
from pointsbot.platform.config import get_settings
from pointsbot.platform.db import Database
from pointsbot.platform.errors import DomainError
from pointsbot.platform.ids import format_snowflake, parse_snowflake


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from pointsbot_local.__main__ import prepare_environment  # development only

    prepare_environment()
    from pointsbot.platform.migrate import migrate

    migrate(os.environ["DATABASE_URL"], log=lambda _m: None)
    return os.environ["DATABASE_URL"]


def _password(confirm: bool = True) -> str:
    given = os.environ.get("ADMIN_PASSWORD")
    if given:
        return given
    first = getpass.getpass("Password (12 characters or more): ")
    if confirm and getpass.getpass("Again: ") != first:
        raise DomainError("The two passwords differ.")
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m admin_site.accounts", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create an account that manages the given guilds")
    create.add_argument("name")
    create.add_argument("--guild", action="append", required=True, help="a guild id (repeat for several)")
    for name in ("password", "disable", "enable"):
        sub.add_parser(name).add_argument("name")
    sub.add_parser("list")
    args = parser.parse_args(argv)
    try:
        db = Database(_database_url(), statement_timeout_ms=get_settings().db_statement_timeout_ms)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
