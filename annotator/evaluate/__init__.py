"""The eval harness: how far drafts agree with reviews or gold, with intervals a lead can defend.

`evaluate(drafts, reviews, tax)` returns an `EvalReport` whose `metrics` is an `EvalMetrics`
(the typed metrics.json, `annotator.evaluate.model`); `write_report(report, outdir)` writes
metrics.json, summary.md and report.html; `load_metrics(path)` reads a metrics.json back.
`field_metrics(pairs, tax)` scores any subset of aligned pairs (from `align`) in the shape of
metrics.json's `fields`.
"""

from annotator.evaluate.align import Alignment, Pair, Side, align
from annotator.evaluate.model import EvalMetrics, EvalReport, load_metrics
from annotator.evaluate.render import write_report
from annotator.evaluate.report import agreement_block, evaluate, field_metrics, human_agreement
from annotator.evaluate.thresholds import check_thresholds, load_thresholds, parse_thresholds

__all__ = [
    "Alignment",
    "EvalMetrics",
    "EvalReport",
    "Pair",
    "Side",
    "agreement_block",
    "align",
    "check_thresholds",
    "evaluate",
    "field_metrics",
    "human_agreement",
    "load_metrics",
    "load_thresholds",
    "parse_thresholds",
    "write_report",
]
