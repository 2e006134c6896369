"""PgBouncer in transaction mode in front of a Postgres, for the tests and the bench.

The bot is deployed behind transaction-mode poolers (Neon, Supabase's Supavisor, RDS Proxy),
so the tests and the bench run it through one: Debian's `pgbouncer` (installed by
scripts/setup.d/30-pgbouncer), started here on a free port with its own config and auth file
in a folder of its own, never the machine's service or the Postgres server's config.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo


class PgBouncerError(RuntimeError):
    pass


def binary() -> str | None:
    """The pgbouncer program, or None when it is not installed."""
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None
    )


@dataclass
class PgBouncer:
    """A running pgbouncer; `url_for(dsn)` is how a client reaches dsn's database through it."""

    port: int
    workdir: Path
    process: subprocess.Popen
    _tmp: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    def url_for(self, direct_dsn: str) -> str:
        """The same database as `direct_dsn`, through the pooler (which logs in upstream with
        the credentials it was started with, so the client sends none)."""
        params = conninfo_to_dict(direct_dsn)
        return make_conninfo(
            host="127.0.0.1",
            port=str(self.port),
            dbname=params.get("dbname") or "postgres",
            user=params.get("user") or "postgres",
        )

    def log(self) -> str:
        path = self.workdir / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(upstream: dict[str, str], port: int, pool_size: int, max_clients: int, auth_file: Path) -> str:
    # Every database name is forwarded to the same name upstream (the tests create databases
    # as they go), as the one user the pooler logs in with.
    target = {"host": upstream.get("host") or "127.0.0.1", "port": upstream.get("port") or "5432"}
    target["user"] = upstream.get("user") or "postgres"
    if upstream.get("password"):
        target["password"] = upstream["password"]
    line = " ".join(f"{k}={v}" for k, v in target.items())
    return f"""[databases]
* = {line}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {auth_file}
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = {max_clients}
max_db_connections = {pool_size}
listen_backlog = 4096
server_login_retry = 1
query_wait_timeout = 60
server_idle_timeout = 5
log_connections = 0
log_disconnections = 0
"""


def start(
    upstream_dsn: str, *, pool_size: int = 20, max_clients: int = 1000, timeout: float = 15.0
) -> PgBouncer:
    """Start pgbouncer in transaction mode in front of `upstream_dsn`'s server, at most
    `pool_size` server connections per database, on a free port of 127.0.0.1. The caller stops it.

    A server connection idle for 5 s is closed (PgBouncer's default keeps it 10 minutes): the
    tests make a database per module, and each finished module's pool would otherwise hold up
    to `pool_size` idle connections of the server's `max_connections` long after its tests."""
    program = binary()
    if program is None:
        raise PgBouncerError("pgbouncer is not installed (scripts/setup.d/30-pgbouncer installs it)")
    upstream = conninfo_to_dict(upstream_dsn)
    tmp = tempfile.TemporaryDirectory(prefix="pointsbot-pgbouncer-")
    workdir = Path(tmp.name)
    user_args: list[str] = []
    if os.geteuid() == 0:
        # pgbouncer refuses to run as root; it drops to this user, which must read its files
        # and, for a Postgres on a Unix socket (the embedded one), reach the socket's folder.
        user = _socket_owner(upstream.get("host") or "") or (
            "postgres" if _has_user("postgres") else "nobody"
        )
        user_args = ["-u", user]
        workdir.chmod(0o755)
    auth_file = workdir / "userlist.txt"
    auth_file.write_text(f'"{upstream.get("user") or "postgres"}" ""\n')
    last_error = ""
    for _attempt in range(3):  # the free port may be taken between choosing and binding it
        port = _free_port()
        ini = workdir / "pgbouncer.ini"
        ini.write_text(_config(upstream, port, pool_size, max_clients, auth_file))
        for path in (ini, auth_file):
            path.chmod(0o644)
        log = open(workdir / "pgbouncer.log", "ab")  # noqa: SIM115 - the child keeps it
        process = subprocess.Popen(
            [program, *user_args, str(ini)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        bouncer = PgBouncer(port, workdir, process, tmp)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return bouncer
            except OSError:
                time.sleep(0.05)
        last_error = bouncer.log()
        if process.poll() is None:
            process.kill()
            process.wait()
    tmp.cleanup()
    raise PgBouncerError(f"pgbouncer did not start: {last_error.strip()[-500:]}")


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _socket_owner(host: str) -> str | None:
    """The owner of a Unix-socket folder (not root), who can reach the socket in it."""
    if not host.startswith("/"):
        return None
    try:
        uid = os.stat(host).st_uid
        return pwd.getpwuid(uid).pw_name if uid != 0 else None
    except (OSError, KeyError):
        return None
