"""A private PostgreSQL server for the registry's store tests, started from the installed binaries.

Looks for ``initdb``/``pg_ctl`` on PATH, then in Debian's ``/usr/lib/postgresql/<major>/bin``
(test.sh installs Debian's ``postgresql`` package when neither is there). PostgreSQL refuses to
run as root, so under root the cluster belongs to the ``postgres`` user (created by that package)
or ``nobody``. The server listens on 127.0.0.1 on a free port, trusts local connections, and is
stopped (``-m immediate``) and deleted at the end of the session.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def find_bin_dir() -> Path | None:
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
                        if p.parent.parent.name.isdigit() else 0)
    return candidates[-1].parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="catopt-pg-"))
        self.data = self.root / "data"
        self.user: str | None = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    pw = pwd.getpwnam(name)
                except KeyError:
                    continue
                self.user = name
                os.chown(self.root, pw.pw_uid, pw.pw_gid)
                break
            else:
                raise RuntimeError("running as root and no `postgres` or `nobody` user to run PostgreSQL as")
        self.port = 0
        self._databases = 0

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), user=self.user, capture_output=True, text=True, timeout=timeout,
                              cwd=self.root, check=False)

    def start(self) -> None:
        out = self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "catopt", "-E", "UTF8",
                        "--no-sync", "--no-locale")
        if out.returncode != 0:
            raise RuntimeError(f"initdb failed: {out.stderr[-2000:]}")
        for _attempt in range(3):
            self.port = _free_port()
            opts = f"-F -k {self.root} -p {self.port} -c listen_addresses=127.0.0.1 -c max_connections=200"
            out = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"),
                            "-w", "-t", "60", "start")
            if out.returncode == 0:
                return
            time.sleep(0.5)
        log = (self.root / "log").read_text(errors="replace")[-2000:] if (self.root / "log").exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {out.stderr[-1000:]} {log}")

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://catopt@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        self._databases += 1
        name = f"registry_{self._databases}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.dsn(name)

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
