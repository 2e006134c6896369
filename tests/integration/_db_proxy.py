"""A TCP proxy in front of the test database that a test can cut and restore: a database
outage of the test's own, without stopping the Postgres others share.

Cut, it closes every connection through it and takes new ones only to close them at once (the
client sees the server go away, as when Postgres is stopped); restored, it forwards again.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import threading
from collections.abc import Iterator

from psycopg.conninfo import conninfo_to_dict, make_conninfo


class DatabaseProxy:
    def __init__(self, dsn: str) -> None:
        params = conninfo_to_dict(dsn)
        host = str(params.get("host") or "127.0.0.1")
        port = int(params.get("port") or 5432)
        if host.startswith("/"):  # a Unix socket (the embedded Postgres)
            self._target: tuple = (socket.AF_UNIX, os.path.join(host, f".s.PGSQL.{port}"))
        else:
            self._target = (socket.AF_INET, (host, port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.dsn = make_conninfo(dsn, host="127.0.0.1", port=str(self.port))
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._stopped = False
        self.connections = 0  # connections forwarded since the start
        threading.Thread(target=self._accept, name="db-proxy", daemon=True).start()

    # -- what tests call ------------------------------------------------------------------
    def cut(self) -> None:
        """The database goes away: every connection through the proxy ends, new ones fail."""
        with self._lock:
            self._cut = True
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._stopped = True
        self.cut()
        self._listener.close()

    # -- forwarding -------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                cut = self._cut
            if cut:
                client.close()
                continue
            try:
                upstream = socket.socket(self._target[0], socket.SOCK_STREAM)
                upstream.connect(self._target[1])
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._cut:
                    client.close()
                    upstream.close()
                    continue
                self._open.update((client, upstream))
                self.connections += 1
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        peer = {a: b, b: a}
        with selectors.DefaultSelector() as selector:
            for sock in (a, b):
                selector.register(sock, selectors.EVENT_READ)
            try:
                while a.fileno() != -1 and b.fileno() != -1:  # cut() closes them under us
                    for key, _ in selector.select(timeout=0.2):
                        data = key.fileobj.recv(65536)
                        if not data:
                            return
                        peer[key.fileobj].sendall(data)
            except (OSError, ValueError):
                return
            finally:
                with self._lock:
                    self._open.discard(a)
                    self._open.discard(b)
                for sock in (a, b):
                    with contextlib.suppress(OSError):
                        sock.close()


@contextlib.contextmanager
def proxy_for(dsn: str) -> Iterator[DatabaseProxy]:
    proxy = DatabaseProxy(dsn)
    try:
        yield proxy
    finally:
        proxy.close()
