"""A private PostgreSQL cluster for a local Label Studio (`annotator labelstudio up --db postgres`).

SQLite has one writer: reviewers' submits queue behind a large import. A team's Label Studio
runs on PostgreSQL. This module finds Debian's PostgreSQL binaries (installing the package when
they are absent and we may), makes a cluster of its own, starts it on 127.0.0.1 on a free port
with a random password, and stops it. Nothing else on the machine is touched.

PostgreSQL refuses to run as root. As root (CI, containers) the cluster therefore runs as the
`postgres` system user that Debian's package creates, and lives under that user's home
(/var/lib/postgresql/incident-annotator/<hash of the data dir>), because a data dir under /root
or a private /tmp folder cannot be reached by that user. Otherwise it lives in DATA_DIR/postgres.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

from pydantic import BaseModel

from annotator.errors import LabelStudioError
from annotator.processes import die_with_parent, free_port

DATABASE = "labelstudio"
ROLE = "labelstudio"
_ROOT_HOME = Path("/var/lib/postgresql/incident-annotator")


class Cluster(BaseModel):
    """Where a cluster lives and how Label Studio reaches it (kept in the server state file)."""

    dir: str
    port: int
    password: str
    pid: int | None = None

    def django_env(self) -> dict[str, str]:
        """Label Studio's documented variables for PostgreSQL."""
        return {
            "DJANGO_DB": "default",
            "POSTGRE_NAME": DATABASE,
            "POSTGRE_USER": ROLE,
            "POSTGRE_PASSWORD": self.password,
            "POSTGRE_HOST": "127.0.0.1",
            "POSTGRE_PORT": str(self.port),
        }


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def bin_dir() -> Path | None:
    """The newest PostgreSQL server binaries: Debian's versioned folders, else PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def ensure_installed(log=print) -> Path:
    """The binaries folder; as root, Debian's `postgresql` package is installed when absent."""
    found = bin_dir()
    if found:
        return found
    if not (_as_root() and shutil.which("apt-get")):
        raise LabelStudioError(
            "PostgreSQL is not installed: install it (Debian/Ubuntu: `sudo apt-get install postgresql`) or use --db sqlite"
        )
    log("installing Debian's postgresql package (once)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise LabelStudioError(f"could not install PostgreSQL ({' '.join(cmd)}): {tail[0]}")
    found = bin_dir()
    if not found:
        raise LabelStudioError("the postgresql package installed but no initdb was found under /usr/lib/postgresql")
    return found


def cluster_dir(data_dir: Path) -> Path:
    """Where the cluster of a data dir lives (see the module docstring for root)."""
    if _as_root():
        return _ROOT_HOME / hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return data_dir / "postgres"


def _user_kw() -> dict[str, str]:
    return {"user": "postgres", "group": "postgres"} if _as_root() else {}


def _chown_tree(path: Path) -> None:
    if not _as_root():
        return
    shutil.chown(path, "postgres", "postgres")
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            shutil.chown(os.path.join(root, name), "postgres", "postgres")


def init(where: Path, log=print) -> str:
    """A new cluster with a role and database for Label Studio; returns the role's password."""
    bins = ensure_installed(log)
    if _as_root():
        _ROOT_HOME.mkdir(parents=True, exist_ok=True)
        shutil.chown(_ROOT_HOME, "postgres", "postgres")
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True, mode=0o700)
    _chown_tree(where)
    password = secrets.token_urlsafe(24)
    pwfile = where / ".pw"
    pwfile.write_text(password)
    _chown_tree(where)
    proc = subprocess.run(
        [str(bins / "initdb"), "-D", str(where / "data"), "-U", ROLE, f"--pwfile={pwfile}", "--auth=scram-sha-256",
         "-E", "UTF8", "--locale=C"],
        capture_output=True, text=True, **_user_kw(),
    )
    pwfile.unlink()
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise LabelStudioError(f"initdb failed in {where}: {tail[0]}")
    return password


def start(where: Path, password: str, log_path: Path, tie_to_parent: bool = False, timeout: float = 60) -> Cluster:
    """Start the cluster in `where` on 127.0.0.1 and a free port (TCP only, no socket file)."""
    bins = ensure_installed()
    port = free_port()
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            [str(bins / "postgres"), "-D", str(where / "data"), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
             "-c", "unix_socket_directories=", "-c", "max_connections=200"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=die_with_parent if tie_to_parent else None, **_user_kw(),
        )
    cluster = Cluster(dir=str(where), port=port, password=password, pid=proc.pid)
    deadline = time.monotonic() + timeout
    while not _ready(bins, cluster):
        if proc.poll() is not None:
            raise LabelStudioError(f"PostgreSQL exited with code {proc.returncode} while starting; see {log_path}")
        if time.monotonic() > deadline:
            stop(cluster)
            raise LabelStudioError(f"PostgreSQL did not accept connections within {timeout:.0f} s; see {log_path}")
        time.sleep(0.3)
    return cluster


def _ready(bins: Path, cluster: Cluster) -> bool:
    return subprocess.run(
        [str(bins / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(cluster.port)], capture_output=True
    ).returncode == 0


def psql(cluster: Cluster, sql: str, database: str = "postgres") -> None:
    """Run one statement as the cluster's owner role (the password goes through the environment)."""
    bins = ensure_installed()
    proc = subprocess.run(
        [str(bins / "psql"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", ROLE, "-d", database, "-v",
         "ON_ERROR_STOP=1", "-q", "-c", sql],
        env={**os.environ, "PGPASSWORD": cluster.password}, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise LabelStudioError(f"PostgreSQL refused a statement: {(proc.stderr or proc.stdout).strip()[:200]}")


def create_database(cluster: Cluster) -> None:
    psql(cluster, f"CREATE DATABASE {DATABASE}")


def rotate_password(cluster: Cluster) -> Cluster:
    """A new password, so copies of one template never share theirs."""
    new = secrets.token_urlsafe(24)
    psql(cluster, f"ALTER ROLE {ROLE} PASSWORD '{new}'")
    return cluster.model_copy(update={"password": new})


def copy(template: Path, where: Path) -> None:
    """A stopped cluster copied as it is (same binaries, so the files are valid as they are)."""
    shutil.rmtree(where, ignore_errors=True)
    where.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template, where, symlinks=True)
    _chown_tree(where)
    (where / "data" / "postmaster.pid").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"postgres" in cmdline


def stop(cluster: Cluster, grace: float = 30) -> bool:
    """Fast shutdown (SIGINT: open sessions are ended, committed data is kept); False if not running."""
    if not cluster.pid or not _alive(cluster.pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(cluster.pid, signal.SIGINT)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(cluster.pid, os.WNOHANG)
        if not _alive(cluster.pid):
            return True
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(cluster.pid, signal.SIGKILL)
    return True


def remove(where: Path) -> None:
    shutil.rmtree(where, ignore_errors=True)
