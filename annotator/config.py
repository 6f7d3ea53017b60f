"""One configuration object: `annotator.toml`, read by every command.

Tables: `[defaults]` (the taxonomy and prompt every command uses when none is named on the
command line), `[llm]` (the model endpoint, `annotator.llm.config`) and `[draft]` (drafting
options). The precedence everywhere: the command line, then `annotator.toml`, then the defaults
written here, which are the only place the default taxonomy and prompt are named.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from annotator.errors import ConfigError

CONFIG_FILE = "annotator.toml"
DEFAULT_TAXONOMY = "oecd_aim"
DEFAULT_PROMPT = "incident@v1"


class Defaults(BaseModel):
    """`[defaults]`: what a command uses when its arguments name no taxonomy or prompt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    taxonomy: str = DEFAULT_TAXONOMY
    prompt: str = DEFAULT_PROMPT


def read_config(path: str | Path | None = None) -> dict[str, Any]:
    """The whole `annotator.toml` (empty if absent)."""
    path = Path(path or CONFIG_FILE)
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def defaults(config: dict[str, Any] | None = None) -> Defaults:
    """`[defaults]` of `config` (read from ./annotator.toml when not given)."""
    section = (read_config() if config is None else config).get("defaults", {})
    try:
        return Defaults.model_validate(section)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{CONFIG_FILE} [defaults] {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
