"""Child servers see no secrets meant for us; data dirs that hold tokens are their owner's alone."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from annotator.labelstudio import server
from annotator.processes import child_env

SECRETS = {"OPENAI_API_KEY": "sk-test-SECRET-for-openai-123456", "LABEL_STUDIO_API_KEY": "ls-SECRET-token-987654",
           "AWS_SECRET_ACCESS_KEY": "aws-SECRET-abcdef", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}


def test_child_env_is_an_allowlist():
    environ = {**SECRETS, "PATH": "/usr/bin", "HOME": "/home/ana", "LC_ALL": "C.UTF-8", "POSTGRE_PASSWORD": "db",
               "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true", "PYTHONPATH": "/src"}
    assert child_env(environ=environ) == {"PATH": "/usr/bin", "HOME": "/home/ana", "LC_ALL": "C.UTF-8"}
    env = child_env(keep=("LABEL_STUDIO_", "POSTGRE_"), drop=("LABEL_STUDIO_API_KEY",), extra={"X": "1"}, environ=environ)
    assert env == {"PATH": "/usr/bin", "HOME": "/home/ana", "LC_ALL": "C.UTF-8", "POSTGRE_PASSWORD": "db",
                   "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true", "X": "1"}


@pytest.mark.labelstudio
@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/environ")
def test_label_studio_gets_no_api_keys_and_its_data_dir_is_private(tmp_path, monkeypatch):
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    data_dir = tmp_path / "ls"
    state = server.start(data_dir, log=lambda m: None, tie_to_parent=True)
    try:
        environ = Path(f"/proc/{state.pid}/environ").read_bytes()
        for value in SECRETS.values():
            assert value.encode() not in environ
        assert b"PATH=" in environ and f"LABEL_STUDIO_BASE_DATA_DIR={data_dir}".encode() in environ
        assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
        for name in (server.STATE_NAME, "annotator-template.json", "label_studio.sqlite3"):
            assert stat.S_IMODE(os.stat(data_dir / name).st_mode) == 0o600, name
        assert state.token in (data_dir / server.STATE_NAME).read_text()  # the file that must stay private
    finally:
        server.stop(data_dir)
