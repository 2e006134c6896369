"""The local runtime's command line: `python -m pointsbot_local run` (what `make run` does)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from . import keys, pg
from .handlers import ROOT

LOCAL_DIR = ROOT / ".local"


def default_local_dir() -> Path:
    """Where local state lives: LOCAL_DIR, else .local in the checkout."""
    return Path(os.environ.get("LOCAL_DIR") or LOCAL_DIR)


def embedded_database(local_dir: Path) -> tuple[str, pg.EmbeddedPostgres]:
    """The URL of the local database in `local_dir`'s embedded Postgres (started, or joined
    when one already runs there) and this process's hold on that server, to release."""
    postgres = pg.start_embedded(local_dir / "pgdata")
    return pg.ensure_database(postgres.url, "pointsbot"), postgres


def prepare_environment(local_dir: Path | None = None) -> dict[str, str]:
    """Fill in what a local run needs and the operator did not give: a database, a key pair.

    Returns what was chosen, for the start-up banner.
    """
    local_dir = local_dir or default_local_dir()
    chosen: dict[str, str] = {}
    if not os.environ.get("DATABASE_URL"):
        # pg keeps this process's hold on the server; the run's shutdown releases it.
        os.environ["DATABASE_URL"] = embedded_database(local_dir)[0]
        chosen["database"] = f"embedded Postgres in {local_dir / 'pgdata'}"
    else:
        chosen["database"] = "DATABASE_URL from the environment"
    if not os.environ.get("DISCORD_PUBLIC_KEY"):
        pair = keys.load_or_create(local_dir / "discord-keys.json")
        os.environ["DISCORD_PUBLIC_KEY"] = pair.public_hex
        chosen["keys"] = f"local key pair in {local_dir / 'discord-keys.json'}"
    else:
        chosen["keys"] = "DISCORD_PUBLIC_KEY from the environment"
    os.environ.setdefault("DISCORD_APPLICATION_ID", "100000000000000001")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "PointsBotLocal")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    return chosen


def start(host: str = "127.0.0.1", port: int = 8787, local_dir: Path | None = None, verbose: bool = False):
    """Everything `run` starts, returned so tests can start the same stack in-process."""
    from pointsbot.delivery import tasks
    from pointsbot.platform import runtime
    from pointsbot.platform.config import get_settings
    from pointsbot.platform.db import Database
    from pointsbot.platform.migrate import migrate

    from . import handlers
    from .discord_standin import PREFIX, standin
    from .queue import InProcessTaskQueue
    from .server import LocalServer, mount, observe

    chosen = prepare_environment(local_dir)
    server = LocalServer(host, port, verbose=verbose)
    mount("/discord-api", standin)
    from . import discord_standin_rest  # the REST endpoints register themselves on `standin`

    mount(discord_standin_rest.INSPECT_PREFIX, discord_standin_rest.inspect_app)
    observe("interactions", discord_standin_rest.record_interaction)  # inline answers on its page
    from . import discord_standin_oauth  # the OAuth2 side (admin sign-in) registers itself too

    if not os.environ.get("DISCORD_API_BASE_URL"):
        os.environ["DISCORD_API_BASE_URL"] = server.url + PREFIX
        # The stand-in, like Discord, refuses bot routes without a token: any token will do.
        if not os.environ.get("DISCORD_BOT_TOKEN"):
            os.environ["DISCORD_BOT_TOKEN"] = "local-stand-in-token"  # noqa: S105 - not a secret
        chosen["discord"] = f"the local stand-in at {server.url + PREFIX}"
        # Admin sign-in with Discord goes through the stand-in's OAuth2 pages as well.
        os.environ["DISCORD_OAUTH_AUTHORIZE_URL"] = server.url + PREFIX + "/oauth2/authorize"
        os.environ.setdefault("DISCORD_CLIENT_SECRET", "local-stand-in-secret")
        chosen["oauth"] = discord_standin_oauth.__name__
    else:
        chosen["discord"] = (
            f"DISCORD_API_BASE_URL from the environment ({os.environ['DISCORD_API_BASE_URL']})"
        )
    runtime.reset()
    migrate(os.environ["DATABASE_URL"], log=lambda msg: print(f"  migrate: {msg}"))
    runtime.set_database(Database.from_settings(get_settings(), pooled=True))
    if not get_settings().task_queue_url and handlers.available("worker"):
        # The worker handler is loaded on first task, like a Lambda cold start.
        tasks.set_task_queue(InProcessTaskQueue(lambda event, ctx: handlers.load("worker")(event, ctx)))
        chosen["queue"] = "in-process queue feeding functions/worker"
    from pointsbot.ops import keepalive

    from .apigw import LambdaContext
    from .scheduler import Scheduler, default_jobs

    # The keep-alive warms the interactions handler in-process instead of a Lambda invoke.
    keepalive.set_warmer(lambda event: handlers.load("interactions")(event, LambdaContext("interactions", 3)))
    jobs = default_jobs(get_settings().achievement_sweep_schedule)
    if jobs and os.environ.get("LOCAL_SCHEDULES", "on").lower() not in ("0", "off", "false", "no"):
        # The achievement sweep and the keep-alive on their schedules (LOCAL_SCHEDULES=off: not).
        scheduler = Scheduler(jobs).start()
        stop_server = server.stop

        def stop() -> None:  # the schedules end with the server (tests start many)
            scheduler.stop()
            stop_server()

        server.scheduler, server.stop = scheduler, stop
        chosen["schedules"] = ", ".join(f"{job.name} every {job.every_s:g}s" for job in jobs)
    _start_webhook_receiver(server, chosen)
    server.start()
    return server, chosen


def _start_webhook_receiver(server: Any, chosen: dict[str, str]) -> None:
    """The recording webhook receiver (HTTPS on 127.0.0.1, LOCAL_WEBHOOK_PORT or a free port)
    and the one exception to webhooks' public-addresses-only rule that lets deliveries reach it;
    both end with the server."""
    from pointsbot.delivery import webhook_http

    from . import webhook_receiver

    receiver = webhook_receiver.WebhookReceiver(int(os.environ.get("LOCAL_WEBHOOK_PORT") or 0)).start()
    webhook_receiver.current = receiver
    webhook_http.set_address_policy(receiver.address_policy())
    stop_server = server.stop

    def stop() -> None:
        stop_server()
        webhook_http.set_address_policy(None)
        webhook_receiver.current = None
        receiver.stop()

    server.stop = stop
    server.webhook_receiver = receiver
    chosen["webhooks"] = f"{receiver.url}  (deliveries: GET {receiver.url}/_inspect)"


def _interrupt(signum: int, _frame: object) -> None:
    # SIGTERM (kill, a process manager, CI) ends the run exactly as Ctrl-C does.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _run(args: argparse.Namespace) -> int:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    server = None
    try:
        server, chosen = start(args.host, args.port, local_dir=args.local_dir, verbose=args.verbose)
        _banner(server.url, chosen)
        threading.Event().wait()  # until a signal
    except KeyboardInterrupt as stop:
        print(f"stopping ({stop.args[0] if stop.args else 'SIGINT'})", flush=True)
    finally:
        # A second signal must not cut the shutdown short and leave the database running.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        _shut_down(server)
    return 0


def _shut_down(server: Any) -> None:
    from pointsbot.platform import runtime

    if server is not None:
        server.stop()
    runtime.reset()  # the pool's connections end before the server they are on
    for datadir, stopped in pg.release_all():
        state = "stopped" if stopped else "left running: another process still uses it"
        print(f"embedded Postgres in {datadir} {state}", flush=True)
    print("pointsbot local runtime stopped", flush=True)


def _banner(url: str, chosen: dict[str, str]) -> None:
    print("pointsbot local runtime")
    print(f"  database       {chosen['database']}")
    print(f"  discord keys   {chosen['keys']}")
    print(f"  interactions   POST {url}/interactions")
    print(f"  health         GET  {url}/health   and   {url}/health/deep")
    print(f"  admin site     {url}/admin")
    print(f"  API            {url}/api/v1  (reference: {url}/api/v1/docs; keys: admin site > API)")
    print(
        "                 sign in with a local account: python -m admin_site.accounts create NAME --guild ID"
    )
    if "oauth" in chosen:
        print("                 or 'Sign in with Discord' (the stand-in's authorize page can add a user)")
    print(f"  discord API    {chosen['discord']}")
    if "queue" in chosen:
        print(f"  worker queue   {chosen['queue']}")
    if "schedules" in chosen:
        print(f"  schedules      {chosen['schedules']}")
    if "webhooks" in chosen:
        print(f"  webhook sink   {chosen['webhooks']}")
        print("                 add it on the admin site > Webhooks to see deliveries")
    print("Ctrl-C (or SIGTERM) stops it, and the embedded Postgres with it.", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pointsbot_local")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="serve the bot on localhost")
    run.add_argument("--host", default=os.environ.get("LOCAL_HOST", "127.0.0.1"))
    run.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_PORT", "8787")))
    run.add_argument("--verbose", action="store_true")
    run.add_argument(
        "--local-dir", type=Path, default=default_local_dir(),
        help="where the embedded Postgres and the local key pair live (default .local); --port 0 picks a free port",
    )  # fmt: skip
    run.set_defaults(func=_run)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
