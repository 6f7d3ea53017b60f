"""A local Label Studio for users, demos and tests: install, start, stop, status.

Label Studio pins its own `label-studio-sdk` and an older `openai`, so it lives in a virtual
environment of its own. A cold start on fresh SQLite runs every migration (35-50 s on two cores);
we run `label-studio init` once into a template folder and copy that per data dir, which makes a
start take a few seconds. The user and token are made non-interactively; the token is rotated
right after each start so that copies of the template never share one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from pydantic import BaseModel

from annotator.errors import LabelStudioError
from annotator.labelstudio import postgres
from annotator.labelstudio.postgres import Cluster
from annotator.processes import child_env, die_with_parent, free_port

VERSION = "1.23.2"
DATABASES = ("sqlite", "postgres")
HOME = Path(os.environ.get("ANNOTATOR_LABELSTUDIO_HOME", Path.home() / ".cache" / "incident-annotator" / "labelstudio"))
DEFAULT_DATA_DIR = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "incident-annotator" / "labelstudio"
STATE_NAME = "annotator-server.json"
_TEMPLATE_META = "annotator-template.json"
# Label Studio's own settings pass (its LABEL_STUDIO_*, Django's and PostgreSQL's), except the
# client-side token and URL meant for push/pull and those that would move it off our port.
_KEEP = ("LABEL_STUDIO_", "DJANGO_", "POSTGRE_", "DATABASE_URL")
_UNSET = ("LABEL_STUDIO_API_KEY", "LABEL_STUDIO_URL", "LABEL_STUDIO_HOST", "LABEL_STUDIO_PORT")


class ServerState(BaseModel):
    pid: int
    port: int
    url: str
    username: str
    password: str
    token: str
    data_dir: str
    log: str
    db: str = "sqlite"
    postgres: Cluster | None = None

    def env_hint(self) -> str:
        return f"export LABEL_STUDIO_URL={self.url}\nexport LABEL_STUDIO_API_KEY={self.token}"


def venv_dir() -> Path:
    return HOME / "venv"


def _ls_bin() -> Path:
    return venv_dir() / "bin" / "label-studio"


def ensure_installed(log=print, db: str = "sqlite") -> Path:
    """Install label-studio==VERSION into its own venv on first use; return the executable.

    With `db="postgres"` its venv also needs a PostgreSQL driver (1.23 depends on psycopg 3; an
    install that lost it gets it back).
    """
    exe = _ls_bin()
    if exe.exists() and list(venv_dir().glob(f"lib/python*/site-packages/label_studio-{VERSION}.dist-info")):
        if db == "postgres":
            _ensure_driver(log)
        return exe
    log(f"installing label-studio {VERSION} into {venv_dir()} (first use, a few minutes)")
    venv_dir().parent.mkdir(parents=True, exist_ok=True)
    try:
        if not (venv_dir() / "bin" / "pip").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv_dir())], check=True)
        # pip's own output is the progress: about 200 packages, several minutes on a fresh machine.
        subprocess.run([str(venv_dir() / "bin" / "pip"), "install", f"label-studio=={VERSION}"], check=True)
    except subprocess.CalledProcessError as exc:
        raise LabelStudioError(f"could not install label-studio {VERSION} into {venv_dir()}: {exc}") from None
    if db == "postgres":
        _ensure_driver(log)
    return exe


def _ensure_driver(log=print) -> None:
    python = str(venv_dir() / "bin" / "python")
    probe = "import importlib.util as u, sys; sys.exit(not (u.find_spec('psycopg') or u.find_spec('psycopg2')))"
    if subprocess.run([python, "-c", probe], capture_output=True).returncode == 0:
        return
    log("installing psycopg[binary] into Label Studio's venv (its PostgreSQL driver)")
    try:
        subprocess.run([python, "-m", "pip", "install", "-q", "psycopg[binary]>=3.2,<4"], check=True)
    except subprocess.CalledProcessError as exc:
        raise LabelStudioError(f"could not install psycopg into {venv_dir()}: {exc}") from None


def _env(data_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = child_env(keep=_KEEP, drop=_UNSET)
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        LATEST_VERSION_CHECK="false",
        COLLECT_ANALYTICS="false",
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
        DJANGO_DB=env.get("DJANGO_DB", "sqlite"),
    )
    env.update(extra or {})
    return env


def template(log=print, db: str = "sqlite") -> Path:
    """A data dir with migrations applied and an admin user: built once per database, copied per server
    (`make labelstudio` builds it ahead, beside the embedded model's build).

    For PostgreSQL the template also holds a stopped cluster (see `postgres.cluster_dir`) whose
    files are copied as they are.
    """
    template = HOME / (f"template-{VERSION}" + ("-postgres" if db == "postgres" else ""))
    if (template / _TEMPLATE_META).exists():
        return template
    exe = ensure_installed(log, db)
    HOME.mkdir(parents=True, exist_ok=True)
    with open(HOME / f".template-{db}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (template / _TEMPLATE_META).exists():
            return template
        log(f"initialising a Label Studio template data dir on {db} (once, 35-90 s)")
        building = HOME / f".template-{db}-{os.getpid()}"
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(mode=0o700)  # it will hold the admin password and token
        meta = {"username": "admin@example.com", "password": secrets.token_urlsafe(12), "token": secrets.token_hex(20), "db": db}
        extra = {
            "LABEL_STUDIO_USERNAME": meta["username"],
            "LABEL_STUDIO_PASSWORD": meta["password"],
            "LABEL_STUDIO_USER_TOKEN": meta["token"],
        }
        cluster = None
        if db == "postgres":
            outside = postgres.cluster_dir(template) != template / "postgres"  # root: see `postgres`
            where = postgres.cluster_dir(template) if outside else building / "postgres"
            meta["postgres_password"] = postgres.init(where, log)
            cluster = postgres.start(where, meta["postgres_password"], building / "postgres.log", tie_to_parent=True)
            postgres.create_database(cluster)
            extra.update(cluster.django_env())
        try:
            code, tail = _run_with_progress([str(exe), "init", "--no-browser", "--enable-legacy-api-token"],
                                            env=_env(building, extra), cwd=building, log=log)
        finally:
            if cluster:
                postgres.stop(cluster)
        if code != 0:
            raise LabelStudioError(f"label-studio init failed: {tail or 'no output'}")
        (building / _TEMPLATE_META).write_text(json.dumps(meta))
        os.chmod(building / _TEMPLATE_META, 0o600)
        shutil.rmtree(template, ignore_errors=True)
        building.rename(template)
    return template


def _run_with_progress(cmd: list[str], *, env: dict[str, str], cwd: Path, log=print, every: float = 10.0) -> tuple[int, str]:
    """Run `cmd`, saying every `every` seconds that it is still at work; (exit code, its last line of output).

    `label-studio init` applies about 200 database migrations without printing anything (it runs
    them at verbosity 0), 35-50 s on two idle cores and minutes on a busy machine: without a sign of
    life a newcomer cannot tell a slow first start from a hung one.
    """
    start = time.monotonic()
    last = [""]
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip():
                last[0] = line.strip()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while reader.is_alive():
        reader.join(every)
        if reader.is_alive():
            log(f"  ... {time.monotonic() - start:.0f} s (creating Label Studio's database)")
    code = proc.wait()
    log(f"  done in {time.monotonic() - start:.0f} s")
    return code, last[0]


def _get(url: str, token: str | None = None, method: str = "GET", timeout: float = 5) -> dict:
    req = urllib.request.Request(url, method=method, headers={"Authorization": f"Token {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"{}")


def healthy(url: str) -> bool:
    try:
        return _get(f"{url}/health", timeout=2).get("status") == "UP"
    except (OSError, ValueError):
        return False


def read_state(data_dir: str | Path | None = None) -> ServerState | None:
    path = Path(data_dir or DEFAULT_DATA_DIR) / STATE_NAME
    if not path.exists():
        return None
    return ServerState.model_validate_json(path.read_text())


def _alive(pid: int) -> bool:
    """Whether `pid` is still a Label Studio process (not a recycled pid of something else)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True  # no /proc (macOS): trust the pid
    return b"label-studio" in cmdline or b"label_studio" in cmdline


def _database_of(data_dir: Path) -> str | None:
    """Which database a data dir made by `up` holds (None: a fresh folder)."""
    if (data_dir / _TEMPLATE_META).exists():
        return json.loads((data_dir / _TEMPLATE_META).read_text()).get("db", "sqlite")
    if (data_dir / "label_studio.sqlite3").exists():
        raise LabelStudioError(
            f"{data_dir} holds a Label Studio database not made by `annotator labelstudio up`: start that server yourself "
            "and set LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY, or pick another --data-dir"
        )
    return None


def start(
    data_dir: str | Path | None = None,
    port: int | None = None,
    timeout: float = 180,
    log=print,
    tie_to_parent: bool = False,
    db: str | None = None,
) -> ServerState:
    """Start a server on 127.0.0.1 (or return the one already running for this data dir).

    `db` is "sqlite" (one person: the default) or "postgres" (a team: a private cluster started
    with it, see `postgres`); a data dir keeps the database it was made with. `tie_to_parent`
    stops the server when the calling process dies (tests); without it the server outlives the
    command that started it (`annotator labelstudio up`).
    """
    data_dir = Path(data_dir or DEFAULT_DATA_DIR).resolve()
    running = read_state(data_dir)
    if running and _alive(running.pid):
        if db and db != running.db:
            raise LabelStudioError(f"{data_dir} holds a Label Studio on {running.db}, not {db}: pick another --data-dir")
        deadline = time.monotonic() + 60  # it may still be starting
        while not healthy(running.url):
            if time.monotonic() > deadline or not _alive(running.pid):
                raise LabelStudioError(
                    f"a Label Studio for {data_dir} (pid {running.pid}) runs but does not answer {running.url}/health: "
                    f"see {running.log}, or stop it with `annotator labelstudio down --data-dir {data_dir}`"
                )
            time.sleep(0.5)
        return running
    if running and running.postgres:  # a server that died: its cluster may still run
        postgres.stop(running.postgres)
    made_with = _database_of(data_dir)
    if db and made_with and db != made_with:
        raise LabelStudioError(f"{data_dir} holds a Label Studio on {made_with}, not {db}: pick another --data-dir")
    db = made_with or db or "sqlite"
    if db not in DATABASES:
        raise LabelStudioError(f"unknown database {db!r}: use one of {', '.join(DATABASES)}")
    template_dir = template(log, db)
    meta = json.loads((template_dir / _TEMPLATE_META).read_text())
    if made_with is None:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(template_dir, data_dir, dirs_exist_ok=True, symlinks=True)
        if db == "postgres" and postgres.cluster_dir(template_dir) != template_dir / "postgres":
            postgres.copy(postgres.cluster_dir(template_dir), postgres.cluster_dir(data_dir))
    else:
        meta = {**meta, **json.loads((data_dir / _TEMPLATE_META).read_text())}
    _private(data_dir)
    log_path = data_dir / "label-studio.log"
    cluster = None
    extra: dict[str, str] = {}
    if db == "postgres":
        ensure_installed(log, db)
        cluster = postgres.start(postgres.cluster_dir(data_dir), meta["postgres_password"], data_dir / "postgres.log", tie_to_parent)
        cluster = postgres.rotate_password(cluster)
        meta["postgres_password"] = cluster.password
        (data_dir / _TEMPLATE_META).write_text(json.dumps(meta))
        os.chmod(data_dir / _TEMPLATE_META, 0o600)
        extra = cluster.django_env()
    try:
        port = port or free_port()
        url = f"http://127.0.0.1:{port}"
        if healthy(url):
            raise LabelStudioError(f"port {port} is already serving something: pick another with --port")
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(
                [str(_ls_bin()), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)],
                env=_env(data_dir, extra),
                cwd=data_dir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped as one, outlives `annotator labelstudio up`
                preexec_fn=die_with_parent if tie_to_parent else None,
            )
        deadline = time.monotonic() + timeout
        while not healthy(url):
            if proc.poll() is not None:
                raise LabelStudioError(f"Label Studio exited with code {proc.returncode} while starting; see {log_path}")
            if time.monotonic() > deadline:
                _kill(proc.pid)
                raise LabelStudioError(f"Label Studio did not answer {url}/health within {timeout:.0f} s; see {log_path}")
            time.sleep(0.5)
        try:
            token = _get(f"{url}/api/current-user/reset-token/", meta["token"], method="POST")["token"]
        except (OSError, KeyError, ValueError) as exc:
            _kill(proc.pid)
            raise LabelStudioError(f"Label Studio started but its admin token was refused ({exc}); see {log_path}") from None
    except BaseException:
        if cluster:
            postgres.stop(cluster)
        raise
    meta["token"] = token
    (data_dir / _TEMPLATE_META).write_text(json.dumps(meta))
    os.chmod(data_dir / _TEMPLATE_META, 0o600)
    state = ServerState(
        pid=proc.pid,
        port=port,
        url=url,
        username=meta["username"],
        password=meta["password"],
        token=token,
        data_dir=str(data_dir),
        log=str(log_path),
        db=db,
        postgres=cluster,
    )
    path = data_dir / STATE_NAME
    path.write_text(state.model_dump_json(indent=2))
    os.chmod(path, 0o600)
    return state


def _private(data_dir: Path) -> None:
    """The data dir holds the admin password and token (and the database with every token):
    only its owner may enter it, and the files that name them are the owner's alone."""
    os.chmod(data_dir, 0o700)
    for name in (_TEMPLATE_META, STATE_NAME, "label_studio.sqlite3"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(data_dir / name, 0o600)


def _kill(pid: int, grace: float = 20) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not _alive(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def stop(data_dir: str | Path | None = None, remove_database: bool = False) -> bool:
    """Stop the server of this data dir and its PostgreSQL cluster; False if none was running.

    `remove_database` also deletes a cluster that lives outside the data dir (root's clusters,
    see `postgres`): for throw-away servers (tests, benchmarks).
    """
    data_dir = Path(data_dir or DEFAULT_DATA_DIR).resolve()
    state = read_state(data_dir)
    if state is None:
        return False
    was_running = _alive(state.pid)
    if was_running:
        _kill(state.pid)
    if state.postgres:
        was_running = postgres.stop(state.postgres) or was_running
        if remove_database:
            postgres.remove(Path(state.postgres.dir))
    (data_dir / STATE_NAME).unlink(missing_ok=True)
    return was_running


def status(data_dir: str | Path | None = None) -> tuple[ServerState | None, bool]:
    """(state, healthy): the recorded server of this data dir and whether it answers."""
    state = read_state(data_dir)
    return state, bool(state and _alive(state.pid) and healthy(state.url))
