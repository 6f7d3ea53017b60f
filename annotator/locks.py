"""One run at a time per output: an advisory lock file beside each file a stage writes.

Two people running `annotator draft` on one drafts file or one answer cache at once is normal use
on a shared folder. Without a lock both runs read "nothing done yet", both pay for every article
and both append every draft. With it, the second run waits: it says once who holds the lock, and
when the first run ends it starts, finds the first run's drafts and cached answers, and pays for
nothing twice. Waiting (not refusing) is the choice because overlapping scheduled runs are the
common case, and the second one then finishes the job instead of failing it.

`flock` locks belong to the open file, so a run killed outright (SIGKILL, a crash) releases them
at once; no stale lock is ever left to clear by hand. The lock file holds who took it (pid, host,
command, time) for the waiting message, nothing else. It is never deleted: deleting a lock file
while another process waits on it would let a third take a different file and run beside it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path


def lock_path(path: str | Path) -> Path:
    """The lock file guarding `path`, a file or a folder: `NAME.lock` beside it (never inside a folder
    whose files others read, such as a gold export)."""
    p = Path(path).resolve()
    return p.with_name(p.name + ".lock")


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return "another run"
    since = time.strftime("%H:%M:%S", time.localtime(info.get("since", 0)))
    return f"`annotator {info.get('command', '?')}` (pid {info.get('pid', '?')} on {info.get('host', '?')}, since {since})"


@contextlib.contextmanager
def hold(paths: Iterable[str | Path], command: str, on_wait: Callable[[str], None]) -> Iterator[None]:
    """Hold the locks of `paths` for the block, waiting for any other holder; `on_wait` gets one line per wait.

    Locks are taken in a fixed (sorted) order, so two runs that share two files cannot deadlock.
    """
    given = {lock_path(p): str(p) for p in paths}
    fds: list[int] = []
    try:
        for path in sorted(given):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            fds.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                on_wait(f"annotator: {given[path]} is in use by {_holder(fd)}; waiting for it to finish "
                        "(Ctrl-C to stop; nothing it did is redone)")
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                                      "since": time.time()}).encode(), 0)
        yield
    finally:
        for fd in reversed(fds):
            os.close(fd)  # closing releases the lock
