"""annotator.toml is read by every command: [defaults] names the taxonomy and prompt a command uses
when its arguments name none; the command line still wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotator.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_taxonomy_is_used_by_commands_that_name_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    Path("annotator.toml").write_text('[defaults]\ntaxonomy = "disarm"\n')
    assert main(["label-config", "-o", "lc.xml"]) == 0
    assert Path("lc.xml").read_text() == (ROOT / "label_config" / "disarm.xml").read_text()
    assert main(["taxonomy", "show"]) == 0
    assert "T0145.002" in capsys.readouterr().out
    # the command line wins over the file
    assert main(["label-config", "--taxonomy", "oecd_aim", "-o", "oecd.xml"]) == 0
    assert Path("oecd.xml").read_text() == (ROOT / "label_config" / "oecd_aim.xml").read_text()


def test_an_unknown_default_is_refused_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    Path("annotator.toml").write_text('[defaults]\ntaxonomi = "disarm"\n')
    assert main(["label-config", "-o", "lc.xml"]) == 2
    err = capsys.readouterr().err
    assert "annotator.toml [defaults] taxonomi" in err and len(err.strip().splitlines()) == 1
    assert not Path("lc.xml").exists()
