"""Thresholds that gate a prompt or model change: TOML, field -> metric -> minimum.

Names are checked against the taxonomy and the metrics the harness reports, so a typo fails
loudly instead of gating nothing.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from annotator.errors import ConfigError
from annotator.evaluate.metrics import metric_names, scored_fields
from annotator.evaluate.model import Check, FieldScores
from annotator.taxonomy import Taxonomy

Thresholds = dict[str, dict[str, float]]


def parse_thresholds(raw: Mapping[str, Any], tax: Taxonomy, source: str = "thresholds") -> Thresholds:
    fields = {f.name: f for f in scored_fields(tax)}
    out: Thresholds = {}
    for name, metrics in raw.items():
        if name not in fields:
            raise ConfigError(f"{source}: unknown field {name!r} (taxonomy {tax.name} scores: {', '.join(fields)})")
        if not isinstance(metrics, Mapping):
            raise ConfigError(f"{source}: [{name}] must be a table of metric = minimum")
        allowed = metric_names(fields[name])
        for metric, minimum in metrics.items():
            if metric not in allowed:
                raise ConfigError(f"{source}: {name}.{metric}: unknown metric for a {fields[name].kind} field (use {', '.join(allowed)})")
            if isinstance(minimum, bool) or not isinstance(minimum, int | float):
                raise ConfigError(f"{source}: {name}.{metric}: the minimum must be a number, got {minimum!r}")
            out.setdefault(name, {})[metric] = float(minimum)
    return out


def load_thresholds(path: str | Path, tax: Taxonomy) -> Thresholds:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such thresholds file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_thresholds(raw, tax, str(path))


def check_thresholds(fields: Mapping[str, FieldScores], thresholds: Thresholds) -> list[Check]:
    """One check per (field, metric); a metric that could not be measured fails its check."""
    checks = []
    for name, metrics in thresholds.items():
        for metric, minimum in metrics.items():
            scored = fields.get(name)
            value = scored.metric(metric) if scored is not None else None
            checks.append(Check(field=name, metric=metric, minimum=minimum, value=value, passed=value is not None and value >= minimum))
    return checks
