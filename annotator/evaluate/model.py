"""The eval report as types: `EvalMetrics` is metrics.json, section by section.

Computing (`report.py`, `anchoring.py`, `alt_test.py`, `thresholds.py`) returns these models;
rendering (`render.py`, `render_honest.py`, `svg.py`) and every consumer (the CLI, the demo,
export's data card) take them and read attributes, so "who depends on the report's shape" is an
import anyone can find. metrics.json is `EvalMetrics.model_dump_json()`; its JSON Schema is
`annotator eval --schema` (and `EvalMetrics.model_json_schema()`). In a notebook:

    from annotator.evaluate import load_metrics
    m = load_metrics("report/metrics.json")
    m.fields["classification"].accuracy, m.slices["blind"].fields["classification"].ci95["accuracy"]

Adding to the report (e.g. per-field baselines, selective-accuracy curves, span agreement):
1. a model here for the new section (a `Part` subclass; figures that can be undefined are
   `float | None`, intervals are `Interval`), and a field for it on `EvalMetrics` (or on the
   section it belongs to, e.g. `SingleField`) with a default, so older metrics.json still load;
2. compute it in its own module and set it in `report.evaluate`;
3. render it as a section function in `render.MD_SECTIONS` / `render.HTML_SECTIONS`;
4. add its line to the README's metrics.json layout: `tests/test_eval_schema.py` checks that the
   layout and this schema name the same keys.
Every part forbids unknown keys, so a key written without a model fails the tests, not a reader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# A 95% interval [low, high]; null when it cannot be computed (no data, or an undefined figure).
Interval = tuple[float | None, float | None] | None


class Part(BaseModel):
    """A section of the report: unknown keys are refused, so the schema and the JSON cannot drift apart."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------- header


class TaxonomyRef(Part):
    name: str
    version: str


class Counts(Part):
    drafts: int
    references: int
    skipped: int
    duplicates_replaced: int
    pairs: int
    articles: int
    references_without_draft: int
    drafts_without_reference: int


class Bootstrap(Part):
    resamples: int
    seed: int
    unit: str = "article"
    interval: str = "percentile 2.5-97.5"


class Errors(Part):
    n: int
    value: str
    article_ids: list[str]


# --------------------------------------------------------------------------- per field


class _FieldBase(Part):
    n: int

    def metric(self, name: str) -> float | None:
        """A scalar metric by name (the names thresholds and tables use)."""
        value = getattr(self, name, None)
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None

    def interval(self, name: str) -> Interval:
        return self.ci95.get(name)  # type: ignore[attr-defined]


class Confusion(Part):
    labels: list[str | None]  # rows: review, columns: draft
    matrix: list[list[int]]


class SingleField(_FieldBase):
    kind: Literal["single"] = "single"
    n: int
    accuracy: float | None = None
    cohen_kappa: float | None = None
    krippendorff_alpha: float | None = None
    macro_f1: float | None = None
    gwet_ac1: float | None = None
    pabak: float | None = None
    # what needs no model (evaluate/baselines.py): accuracy of the majority class and of the label prior
    majority_baseline: float | None = None
    prior_baseline: float | None = None
    skill_vs_majority: float | None = None
    skill_vs_prior: float | None = None
    ci95: dict[str, Interval] = Field(default_factory=dict)
    confusion: Confusion
    warnings: list[str] = Field(default_factory=list)


class LabelScores(Part):
    precision: float | None
    recall: float | None
    f1: float | None
    support: int
    ci95: dict[str, Interval]


class MultiField(_FieldBase):
    kind: Literal["multi"] = "multi"
    n: int
    micro_f1: float | None = None
    macro_f1: float | None = None
    jaccard: float | None = None
    exact_match: float | None = None
    krippendorff_alpha_masi: float | None = None
    ci95: dict[str, Interval] = Field(default_factory=dict)
    per_label: dict[str, LabelScores] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)


class TextField(_FieldBase):
    kind: Literal["text"] = "text"
    n: int
    accepted_as_is: float | None = None
    edit_similarity: float | None = None
    ci95: dict[str, Interval] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)


FieldScores = Annotated[SingleField | MultiField | TextField, Field(discriminator="kind")]


class Agreement(Part):
    """Scores of one set of pairs (model–reviewer, or reviewer–reviewer)."""

    n_pairs: int
    n_articles: int
    fields: dict[str, FieldScores]


class Coverage(Part):
    """Blind reviews per class of the primary field, and the classes with too few to conclude."""

    field: str
    n_reviews: int
    reviews_per_class: dict[str, int]
    too_few: list[str]
    min_reviews: int


class Slice(Agreement):
    """`slices.blind` / `slices.assisted`: the pairs of one kind of task, and their reviewer ceiling."""

    human_agreement: Agreement | None = None
    coverage: Coverage | None = None  # blind slice only


class CalibrationBin(Part):
    lower: float
    upper: float
    n: int
    confidence: float | None
    accuracy: float | None


class Calibration(Part):
    n: int
    ece: float | None
    ci95: dict[str, Interval]
    bins: list[CalibrationBin]


# --------------------------------------------------------------------------- compare and gate


class Difference(Part):
    candidate: float | None
    baseline: float | None
    difference: float | None
    ci95: Interval


class McNemar(Part):
    field: str
    n: int
    baseline_only_right: int
    candidate_only_right: int
    p_value: float | None
    test: str = "exact McNemar"


class Compare(Part):
    n_pairs: int
    n_articles: int
    difference: str
    fields: dict[str, dict[str, Difference]]  # field -> metric -> candidate minus baseline
    mcnemar: McNemar


class Check(Part):
    field: str
    metric: str
    minimum: float
    value: float | None
    passed: bool


class Gate(Part):
    passed: bool
    checks: list[Check]


# --------------------------------------------------------------------------- honest agreement


class Anchoring(Part):
    """Assisted minus blind agreement on one field."""

    metric: str  # accuracy (single fields) or micro_f1 (multi fields)
    assisted: float | None
    blind: float | None
    difference: float | None
    ci95: Interval
    p_value: float | None
    n_assisted: int
    n_blind: int
    note: str | None = None


class LeadTime(Part):
    blind_median_s: float | None
    assisted_median_s: float | None
    n_blind: int
    n_assisted: int
    ratio: float | None  # assisted / blind
    ci95: Interval
    missing: str | None = None  # why there is no ratio
    note: str | None = None


class AltReviewer(Part):
    articles: int
    tested: bool
    model_win_rate: float | None = None
    reviewer_win_rate: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    model_wins: bool | None = None


class AltTest(Part):
    """The alternative annotator test on one single field (blind reviews)."""

    epsilon: float
    annotators: int
    winning_rate: float | None
    advantage_probability: float | None
    passed: bool | None
    per_annotator: dict[str, AltReviewer]
    missing: str | None = None  # why it could not run
    note: str | None = None
    model_errors: int = 0


# --------------------------------------------------------------------------- review less (issue: auto-accept)


class CurvePoint(Part):
    threshold: float  # drafts with confidence >= this are accepted
    share: float  # of the drafts with a confidence
    n: int
    accuracy: float | None
    ci95: Interval


class Curve(Part):
    """Selective accuracy of one field against one kind of reference, most confident drafts first."""

    n: int
    without_confidence: int  # pairs whose draft has no confidence for the field (not on the curve)
    points: list[CurvePoint]


class Audit(Part):
    """Auto-accept's promise re-checked on its audit slice: accepted drafts that still went to blind review."""

    fields: list[str]
    threshold: float
    risk: float
    delta: float
    n: int  # audited articles with a blind answer
    errors: int
    error_rate: float | None
    ci95: Interval  # Clopper-Pearson
    exceeded: bool  # the realised error is above the promised risk
    warning: str | None = None


# --------------------------------------------------------------------------- the whole report


class FieldBaseline(Part):
    """A field's score beside two baselines that need no model, and skill scores against them
    (evaluate/baselines.py): skill = (candidate - baseline) / (1 - baseline)."""

    metric: str  # accuracy (single fields) or micro_f1 (multi fields)
    n: int
    candidate: float | None
    majority_baseline: float | None
    prior_baseline: float | None
    skill_vs_majority: float | None
    skill_vs_prior: float | None
    ci95: dict[str, Interval] = Field(default_factory=dict)
    majority_set: list[str] | None = None  # multi fields: the tags more than half of the references carry


class FlagShare(Part):
    n: int
    share: float


class FlagShares(Part):
    drafts: int  # drafts that did not fail
    flags: dict[str, FlagShare] = Field(default_factory=dict)


class RuleSide(Part):
    n: int
    breaking: int
    examples: list[str] = Field(default_factory=list)


class RuleCounts(Part):
    rules: int
    drafts: RuleSide
    references: RuleSide


class SpanScores(Part):
    precision: float | None
    recall: float | None
    f1: float | None


class SpanAgreement(SpanScores):
    n_pairs: int
    unit: str
    kinds: dict[str, SpanScores] = Field(default_factory=dict)


class DraftChecks(Part):
    """What the draft checks found (evaluate/draft_checks.py): flag shares, broken rules, span agreement."""

    flags: FlagShares
    rules: RuleCounts
    evidence: SpanAgreement | None = None


class LinkScores(Part):
    """The link to a recorded incident (evaluate/links.py): accuracy, and the share of references
    naming an incident whose incident was among the candidates offered."""

    field: str
    n: int
    accuracy: float | None
    ci95: Interval = None
    naming_an_incident: int = 0
    among_candidates: float | None = None
    among_ci95: Interval = None


class EvalMetrics(Part):
    """metrics.json. `anchoring`, `lead_time` and `alt_test` are null for a gold-file eval (no reviews)."""

    taxonomy: TaxonomyRef
    counts: Counts
    bootstrap: Bootstrap
    errors: Errors
    fields: dict[str, FieldScores]
    baselines: dict[str, FieldBaseline] = Field(default_factory=dict)
    lazy: list[str] = Field(default_factory=list)  # warnings that name a lazy model; the summary opens with them
    draft_checks: DraftChecks | None = None
    human_agreement: Agreement | None = None
    calibration: dict[str, Calibration] = Field(default_factory=dict)
    slices: dict[Literal["blind", "assisted"], Slice] = Field(default_factory=dict)
    compare: Compare | None = None
    thresholds: Gate | None = None
    warnings: list[str] = Field(default_factory=list)
    anchoring: dict[str, Anchoring] | None = None
    lead_time: LeadTime | None = None
    alt_test: dict[str, AltTest] | None = None
    selective: dict[str, dict[Literal["blind", "assisted", "gold"], Curve]] = Field(default_factory=dict)
    audit: list[Audit] = Field(default_factory=list)
    link: LinkScores | None = None  # the taxonomy's link to a recorded incident, when drafted and referenced

    @property
    def passed(self) -> bool:
        """False when a threshold was given and missed."""
        return self.thresholds is None or self.thresholds.passed

    def blind(self) -> Slice | None:
        return self.slices.get("blind")


class FieldRow(Part):
    field: str
    draft: Any
    review: Any
    agree: bool


class Disagreement(Part):
    """One of the worst disagreements, for report.html (not in metrics.json: it quotes articles)."""

    article_id: str
    title: str
    reviewer: str | None
    score: float
    fields: list[FieldRow]
    draft_rationale: str | None
    review_rationale: str | None


class EvalReport(BaseModel):
    """What `evaluate` returns: the metrics (metrics.json) and the examples report.html shows."""

    metrics: EvalMetrics
    examples: list[Disagreement] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.metrics.passed


def metrics_json(metrics: EvalMetrics) -> str:
    """metrics.json's text."""
    return metrics.model_dump_json(indent=2) + "\n"


def load_metrics(path: str | Path) -> EvalMetrics:
    """A metrics.json read back into the model (raises `pydantic.ValidationError` if it is not one)."""
    return EvalMetrics.model_validate_json(Path(path).read_text(encoding="utf-8"))


def schema() -> dict[str, Any]:
    """metrics.json's JSON Schema."""
    return EvalMetrics.model_json_schema()
