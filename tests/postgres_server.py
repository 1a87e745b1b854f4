"""A throwaway PostgreSQL server for tests and benchmarks: Debian's PostgreSQL binaries,
`initdb` and `pg_ctl` run as an unprivileged user (PostgreSQL refuses to run as root) in a
temporary directory, listening on a random 127.0.0.1 port, with `fsync=off` (tests only:
a crash of this server loses nothing anyone needs).

    with ThrowawayPostgres() as server:
        url = server.url  # postgresql://coalition@127.0.0.1:PORT/coalition

`python -m tests.postgres_server` starts one, prints its URL and keeps it until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

USER = "coalition"
DATABASE = "coalition"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's binaries are missing or the server would not start."""


def binaries() -> Path:
    """The directory of Debian's PostgreSQL server binaries (the newest installed)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    raise PostgresUnavailable(
        "PostgreSQL is not installed: `make test` installs Debian's postgresql package "
        "(apt-get install postgresql); without it, run the SQLite suite: "
        "pytest -m 'not postgres'"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _account() -> tuple[int, int] | None:
    """The unprivileged (uid, gid) to run PostgreSQL as; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    raise PostgresUnavailable("running as root, and no unprivileged user to run PostgreSQL")


class ThrowawayPostgres:
    """One PostgreSQL server in a temporary directory, removed on stop."""

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.settings = {
            "listen_addresses": "127.0.0.1",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "128MB",
            **(settings or {}),
        }
        self.port = 0
        self.directory: Path | None = None
        self._account = _account()

    @property
    def url(self) -> str:
        """Where to connect (trust authentication on loopback: no password)."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *command: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix: list[str] = []
        if self._account is not None:
            uid, gid = self._account
            prefix = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]
        return subprocess.run(
            [*prefix, *map(str, command)],
            check=check,
            capture_output=True,
            text=True,
            cwd=self.directory,
            env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
        )

    def start(self) -> ThrowawayPostgres:
        """initdb, start and create the database; PostgresUnavailable naming why not."""
        bin_dir = binaries()
        self.directory = Path(tempfile.mkdtemp(prefix="coalition-pg-"))
        if self._account is not None:
            os.chown(self.directory, *self._account)
        data = self.directory / "data"
        try:
            self._run(
                bin_dir / "initdb", "-D", data, "-U", USER, "--auth=trust", "-E", "UTF8",
                "--no-locale", "--no-sync",
            )  # fmt: skip
            options = " ".join(f"-c {name}={value}" for name, value in self.settings.items())
            for _attempt in range(5):  # the port may be taken between the look and the start
                self.port = free_port()
                started = self._run(
                    bin_dir / "pg_ctl", "-D", data, "-l", self.directory / "server.log", "-w",
                    "-t", "30", "-o", f"-p {self.port} -k {self.directory} {options}", "start",
                    check=False,
                )  # fmt: skip
                if started.returncode == 0:
                    break
            else:
                raise PostgresUnavailable(f"PostgreSQL would not start: {self.log_tail()}")
            self._run(
                bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER,
                DATABASE,
            )  # fmt: skip
        except subprocess.CalledProcessError as error:
            self.stop()
            raise PostgresUnavailable(
                f"{Path(error.cmd[-1] if error.cmd else '?').name} failed: "
                f"{(error.stderr or error.stdout).strip()[-500:]}"
            ) from None
        except BaseException:
            self.stop()
            raise
        return self

    def halt(self) -> None:
        """Stop the server as an administrator's restart would (fast shutdown: sessions are
        cut, open transactions rolled back), keeping its data and port for `resume`."""
        assert self.directory is not None
        self._run(binaries() / "pg_ctl", "-D", self.directory / "data", "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the halted server again, on the same port with the same data."""
        assert self.directory is not None
        options = " ".join(f"-c {name}={value}" for name, value in self.settings.items())
        self._run(
            binaries() / "pg_ctl", "-D", self.directory / "data", "-l",
            self.directory / "server.log", "-w", "-t", "30", "-o",
            f"-p {self.port} -k {self.directory} {options}", "start",
        )  # fmt: skip

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's log."""
        if self.directory is None:
            return ""
        log = self.directory / "server.log"
        if not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server at once and remove its directory (idempotent)."""
        if self.directory is None:
            return
        data = self.directory / "data"
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run(binaries() / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    with ThrowawayPostgres() as server:
        print(server.url, flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
