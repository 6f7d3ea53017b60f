"""The local servers the workbench starts as child processes (Label Studio, the embedded model).

Both need a free loopback port, must not outlive the process that started them, even when that
process is killed outright, and must not see the secrets of the shell that started them (an
`OPENAI_API_KEY` in Label Studio's environment is one log line or one debug page away from a
leak): one copy of each rule, here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Iterable, Mapping

# What any process needs to run in this user's locale and find its libraries; nothing else passes by default.
_BASE_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_", "TZ", "TMPDIR", "LD_LIBRARY_PATH", "SSL_CERT_FILE",
             "SSL_CERT_DIR")


def child_env(keep: Iterable[str] = (), drop: Iterable[str] = (), extra: Mapping[str, str] | None = None,
              environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child server: the basics, the variables `keep` names (a name, or a
    prefix ending in `_`), minus the exact names in `drop`, plus `extra`. An allowlist, so a key
    added to the shell tomorrow is not passed on either."""
    wanted = (*_BASE_ENV, *keep)
    dropped = set(drop)
    source = os.environ if environ is None else environ
    env = {k: v for k, v in source.items()
           if k not in dropped and any(k == w or (w.endswith("_") and k.startswith(w)) for w in wanted)}
    env.update(extra or {})
    return env


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
