"""The local servers the workbench starts as child processes (Label Studio, the embedded model).

Both need a free loopback port and must not outlive the process that started them, even when
that process is killed outright: one copy of each rule, here.
"""

from __future__ import annotations

import contextlib
import signal
import socket


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:
    """`preexec_fn` for a child server: SIGTERM it when its parent dies, even by SIGKILL (Linux only;
    elsewhere a no-op, and the callers' pid files and teardown still stop it)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
