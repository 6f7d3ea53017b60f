"""Every eval metric against its reference implementation, on random data and on edge cases.

References: scikit-learn (kappa, F1, confusion, Jaccard, subset accuracy), the `krippendorff`
package (nominal alpha), NLTK's agreement module (alpha with MASI distance).
"""

from __future__ import annotations

import gc
import random

import krippendorff
import numpy as np
import pytest
from nltk.metrics.agreement import AnnotationTask
from nltk.metrics.distance import masi_distance
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    jaccard_score,
    precision_recall_fscore_support,
)
from sklearn.preprocessing import MultiLabelBinarizer

from annotator.evaluate import align, evaluate, field_metrics
from annotator.records import Draft, GoldRecord, Review
from annotator.taxonomy import parse_taxonomy

TAX = parse_taxonomy(
    """
name: toy
primary: kind
fields:
  - {name: kind, kind: single, required: true, values: [{id: a}, {id: b}, {id: c}, {id: d}]}
  - {name: grade, kind: single, values: [{id: low}, {id: high}]}
  - {name: tags, kind: multi, values: [{id: t1}, {id: t2}, {id: t3}, {id: t4}, {id: t5}, {id: t6}]}
  - {name: rationale, kind: text}
"""
)
NONE = "<none>"  # how the references see a null single value: one more category


def _random_pairs(seed: int, n: int = 400):
    rng = random.Random(seed)
    drafts, reviews = [], []
    for i in range(n):
        kind_r = rng.choice("abcd")  # the reviewer uses 'd' ...
        kind_d = kind_r if kind_r != "d" and rng.random() < 0.6 else rng.choice("abc")  # ... which the model never does
        grade_r = rng.choice(["low", "high", None])
        grade_d = grade_r if rng.random() < 0.7 else rng.choice(["low", "high", None])
        tags_r = sorted(rng.sample([f"t{j}" for j in range(1, 7)], rng.randint(0, 3)))
        tags_d = sorted({t for t in tags_r if rng.random() < 0.8} | ({rng.choice(["t1", "t2", "t3"])} if rng.random() < 0.3 else set()))
        drafts.append(Draft(article_id=f"x{i}", labels={"kind": kind_d, "grade": grade_d, "tags": tags_d}))
        reviews.append(Review(article_id=f"x{i}", annotator="r1", labels={"kind": kind_r, "grade": grade_r, "tags": tags_r}))
    return drafts, reviews


def _nltk_masi_alpha(ref_sets, cand_sets) -> float:
    data = [(coder, i, frozenset(s)) for i, (r, c) in enumerate(zip(ref_sets, cand_sets, strict=True)) for coder, s in (("ref", r), ("cand", c))]
    task = AnnotationTask(data=data, distance=lambda a, b: 0.0 if not a and not b else masi_distance(a, b))
    return task.alpha()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_field_metrics_match_sklearn_and_krippendorff(seed: int) -> None:
    drafts, reviews = _random_pairs(seed)
    fields = evaluate(drafts, reviews, TAX, n_boot=50).metrics.model_dump(mode="json")["fields"]
    for name in ("kind", "grade"):
        y_rev = [r.labels[name] or NONE for r in reviews]
        y_mod = [d.labels[name] or NONE for d in drafts]
        got = fields[name]
        assert got["n"] == len(reviews)
        assert got["accuracy"] == pytest.approx(accuracy_score(y_rev, y_mod), abs=1e-6)
        assert got["cohen_kappa"] == pytest.approx(cohen_kappa_score(y_rev, y_mod), abs=1e-6)
        assert got["macro_f1"] == pytest.approx(f1_score(y_rev, y_mod, average="macro"), abs=1e-6)
        codes = {v: i for i, v in enumerate(sorted(set(y_rev) | set(y_mod)))}
        ref_alpha = krippendorff.alpha([[codes[v] for v in y_rev], [codes[v] for v in y_mod]], level_of_measurement="nominal")
        assert got["krippendorff_alpha"] == pytest.approx(ref_alpha, abs=1e-6)
        labels = [NONE if v is None else v for v in got["confusion"]["labels"]]
        assert got["confusion"]["matrix"] == confusion_matrix(y_rev, y_mod, labels=labels).tolist()
    # the reviewer's 'd' is a row of the confusion matrix with an empty column: the model never said it
    conf = fields["kind"]["confusion"]
    d = conf["labels"].index("d")
    assert sum(conf["matrix"][d]) > 0 and sum(row[d] for row in conf["matrix"]) == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multi_field_metrics_match_sklearn_and_nltk(seed: int) -> None:
    drafts, reviews = _random_pairs(seed)
    got = evaluate(drafts, reviews, TAX, n_boot=50).metrics.model_dump(mode="json")["fields"]["tags"]
    ref_sets = [r.labels["tags"] for r in reviews]
    cand_sets = [d.labels["tags"] for d in drafts]
    used = sorted({t for s in ref_sets + cand_sets for t in s})
    mlb = MultiLabelBinarizer(classes=used)
    y_rev, y_mod = mlb.fit_transform(ref_sets), mlb.transform(cand_sets)
    assert got["micro_f1"] == pytest.approx(f1_score(y_rev, y_mod, average="micro"), abs=1e-6)
    assert got["macro_f1"] == pytest.approx(f1_score(y_rev, y_mod, average="macro"), abs=1e-6)
    assert got["jaccard"] == pytest.approx(jaccard_score(y_rev, y_mod, average="samples", zero_division=1.0), abs=1e-6)
    assert got["exact_match"] == pytest.approx(accuracy_score(y_rev, y_mod), abs=1e-6)
    assert got["krippendorff_alpha_masi"] == pytest.approx(_nltk_masi_alpha(ref_sets, cand_sets), abs=1e-6)
    p, r, f, s = precision_recall_fscore_support(y_rev, y_mod, labels=list(range(len(used))), zero_division=0)
    for j, v in enumerate(used):
        row = got["per_label"][v]
        assert (row["precision"] or 0.0, row["recall"] or 0.0, row["f1"] or 0.0) == pytest.approx((p[j], r[j], f[j]), abs=1e-6)
        assert row["support"] == s[j]


def test_masi_alpha_with_many_distinct_sets_matches_nltk_and_has_a_sane_interval() -> None:
    """Past 512 distinct label sets the resamples use a first-order expansion; the point stays exact."""
    values = [f"v{j}" for j in range(16)]
    tax = parse_taxonomy("name: wide\nprimary: k\nfields:\n  - {name: k, kind: single, values: [{id: x}]}\n"
                         f"  - {{name: tags, kind: multi, values: [{', '.join('{id: ' + v + '}' for v in values)}]}}\n")
    rng = random.Random(5)
    drafts, reviews = [], []
    for i in range(700):
        truth = sorted(rng.sample(values, rng.randint(0, 5)))
        guess = sorted({t for t in truth if rng.random() < 0.8} | set(rng.sample(values, rng.randint(0, 2))))
        drafts.append(Draft(article_id=str(i), labels={"k": "x", "tags": guess}))
        reviews.append(Review(article_id=str(i), labels={"k": "x", "tags": truth}))
    assert len({tuple(r.labels["tags"]) for r in reviews} | {tuple(d.labels["tags"]) for d in drafts}) > 512
    got = field_metrics(align(drafts, reviews).pairs, tax, n_boot=300)["tags"].model_dump(mode="json")
    alpha = got["krippendorff_alpha_masi"]
    assert alpha == pytest.approx(_nltk_masi_alpha([r.labels["tags"] for r in reviews], [d.labels["tags"] for d in drafts]), abs=1e-6)
    lo, hi = got["ci95"]["krippendorff_alpha_masi"]
    assert lo < alpha < hi and hi - lo < 0.1


def test_bootstrap_interval_is_the_percentile_interval_of_article_resamples() -> None:
    """Rebuild the interval by hand: resample articles (both reviews of an article go together)
    with the documented draws, score with scikit-learn, take percentiles."""
    drafts, reviews = _random_pairs(3, n=120)
    reviews += [Review(article_id=r.article_id, annotator="r2", labels=r.labels) for r in reviews[:30]]
    n_boot, seed = 200, 11
    got = evaluate(drafts, reviews, TAX, n_boot=n_boot, seed=seed).metrics.model_dump(mode="json")["fields"]["kind"]
    pairs = align(drafts, reviews).pairs
    articles = list(dict.fromkeys(p.article_id for p in pairs))
    by_article = {a: [p for p in pairs if p.article_id == a] for a in articles}
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(articles), len(articles)) for _ in range(n_boot)]
    kappas, accs = [], []
    for row in draws:
        sample = [p for i in row for p in by_article[articles[i]]]
        y_rev = [p.reference.labels["kind"] for p in sample]
        y_mod = [p.candidate.labels["kind"] for p in sample]
        accs.append(accuracy_score(y_rev, y_mod))
        kappas.append(cohen_kappa_score(y_rev, y_mod))
    assert got["ci95"]["accuracy"] == pytest.approx(list(np.percentile(accs, [2.5, 97.5])), abs=1e-6)
    assert got["ci95"]["cohen_kappa"] == pytest.approx(list(np.percentile(kappas, [2.5, 97.5])), abs=1e-6)


def test_one_class_only_reports_kappa_and_alpha_as_undefined_and_warns() -> None:
    drafts = [Draft(article_id=str(i), labels={"kind": "a", "grade": None, "tags": []}) for i in range(40)]
    reviews = [Review(article_id=str(i), labels={"kind": "a", "grade": None, "tags": []}) for i in range(40)]
    report = evaluate(drafts, reviews, TAX, n_boot=20)
    kind = report.metrics.model_dump(mode="json")["fields"]["kind"]
    assert (kind["accuracy"], kind["macro_f1"]) == (1.0, 1.0)
    assert kind["cohen_kappa"] is None and kind["krippendorff_alpha"] is None  # sklearn gives nan, krippendorff raises
    assert any("kappa misleads" in w for w in report.metrics.warnings)
    tags = report.metrics.model_dump(mode="json")["fields"]["tags"]  # empty sets on both sides: agreement, with no positives to score F1 on
    assert (tags["jaccard"], tags["exact_match"]) == (1.0, 1.0)
    assert tags["micro_f1"] is None and tags["macro_f1"] is None and tags["krippendorff_alpha_masi"] is None


def test_dominant_class_warning_names_the_class_when_kappa_is_low_but_accuracy_high() -> None:
    rng = random.Random(0)
    drafts, reviews = [], []
    for i in range(300):
        truth = "a" if i >= 12 else "b"
        drafts.append(Draft(article_id=str(i), labels={"kind": "a" if rng.random() < 0.97 else "b"}))
        reviews.append(Review(article_id=str(i), labels={"kind": truth}))
    m = evaluate(drafts, reviews, TAX, n_boot=20).metrics.model_dump(mode="json")
    assert m["fields"]["kind"]["accuracy"] > 0.9 and m["fields"]["kind"]["cohen_kappa"] < 0.3
    assert any("'a' covers" in w for w in m["fields"]["kind"]["warnings"])


def test_error_drafts_disagree_on_every_field_and_are_listed() -> None:
    drafts = [Draft(article_id="ok", labels={"kind": "a", "grade": "low", "tags": ["t1"]}, rationale="same"),
              Draft(article_id="bad", error="timeout")]
    reviews = [Review(article_id=a, labels={"kind": "a", "grade": None, "tags": []}, rationale="same") for a in ("ok", "bad")]
    m = evaluate(drafts, reviews, TAX, n_boot=20).metrics.model_dump(mode="json")
    assert m["errors"]["n"] == 1 and m["errors"]["article_ids"] == ["bad"]
    assert m["fields"]["kind"]["accuracy"] == 0.5  # the error is not an agreeing 'a'
    assert m["fields"]["grade"]["accuracy"] == 0.0  # nor an agreeing null
    assert m["fields"]["tags"]["jaccard"] == 0.0  # nor an agreeing empty set
    assert m["fields"]["tags"]["exact_match"] == 0.0
    assert m["fields"]["rationale"]["accepted_as_is"] == 0.5
    assert "(draft error)" in m["fields"]["kind"]["confusion"]["labels"]


def test_missing_reviews_skipped_reviews_and_missing_drafts_are_counted_not_scored() -> None:
    drafts = [Draft(article_id=str(i), labels={"kind": "a"}) for i in range(5)]
    reviews = [
        Review(article_id="0", labels={"kind": "a"}),
        Review(article_id="1", labels={"kind": "b"}, skipped=True),
        Review(article_id="99", labels={"kind": "a"}),
    ]
    m = evaluate(drafts, reviews, TAX, n_boot=20).metrics.model_dump(mode="json")
    assert m["counts"]["pairs"] == 1 and m["counts"]["skipped"] == 1
    assert m["counts"]["drafts_without_reference"] == 4  # 1..4 have no completed review
    assert m["counts"]["references_without_draft"] == 1
    assert m["fields"]["kind"]["n"] == 1 and m["fields"]["kind"]["accuracy"] == 1.0
    assert any("no draft" in w for w in m["warnings"])


def test_gold_records_lacking_a_field_are_not_scored_for_it() -> None:
    drafts = [Draft(article_id=str(i), labels={"kind": "a", "grade": "low", "tags": ["t1"]}) for i in range(4)]
    gold = [GoldRecord(article_id="0", labels={"kind": "a"}), GoldRecord(article_id="1", labels={"kind": "b", "grade": "low"}),
            GoldRecord(article_id="2", labels={"kind": "a", "tags": []})]
    m = evaluate(drafts, gold, TAX, n_boot=20).metrics.model_dump(mode="json")["fields"]
    assert (m["kind"]["n"], m["grade"]["n"], m["tags"]["n"], m["rationale"]["n"]) == (3, 1, 1, 0)
    assert m["grade"]["accuracy"] == 1.0 and m["tags"]["jaccard"] == 0.0
    assert m["rationale"]["accepted_as_is"] is None


def test_human_agreement_is_scored_like_the_model_on_reviewer_pairs() -> None:
    drafts, reviews = _random_pairs(4, n=200)
    rng = random.Random(9)
    second = [Review(article_id=r.article_id, annotator="r2",
                     labels={**r.labels, "kind": r.labels["kind"] if rng.random() < 0.8 else rng.choice("abcd")}) for r in reviews[:120]]
    m = evaluate(drafts, reviews + second, TAX, n_boot=20).metrics.model_dump(mode="json")
    h = m["human_agreement"]
    assert (h["n_pairs"], h["n_articles"]) == (120, 120)
    y1 = [r.labels["kind"] for r in reviews[:120]]
    y2 = [r.labels["kind"] for r in second]
    assert h["fields"]["kind"]["cohen_kappa"] == pytest.approx(cohen_kappa_score(y1, y2), abs=1e-6)
    assert set(h["fields"]) == set(m["fields"])  # same shape as the model's


def test_calibration_ece_matches_a_direct_computation() -> None:
    rng = random.Random(2)
    drafts, reviews, conf, right = [], [], [], []
    for i in range(500):
        c = rng.random()
        ok = rng.random() < c * 0.8
        drafts.append(Draft(article_id=str(i), labels={"kind": "a" if ok else "b"}, confidence={"kind": c}))
        reviews.append(Review(article_id=str(i), labels={"kind": "a"}))
        conf.append(c)
        right.append(ok)
    cal = evaluate(drafts, reviews, TAX, n_boot=50).metrics.model_dump(mode="json")["calibration"]["kind"]
    conf_a, right_a = np.array(conf), np.array(right, dtype=float)
    bins = np.minimum((conf_a * 10).astype(int), 9)
    ece = sum(abs(right_a[bins == b].mean() - conf_a[bins == b].mean()) * (bins == b).mean() for b in range(10) if (bins == b).any())
    assert cal["ece"] == pytest.approx(ece, abs=1e-6)
    assert cal["n"] == 500 and sum(b["n"] for b in cal["bins"]) == 500
    assert cal["ci95"]["ece"][0] <= cal["ece"] <= cal["ci95"]["ece"][1]


def test_rationale_accepted_and_edit_similarity() -> None:
    drafts = [Draft(article_id="1", rationale="An AI system  misidentified a man."), Draft(article_id="2", rationale="one two three four")]
    reviews = [Review(article_id="1", rationale="An AI system misidentified a man."), Review(article_id="2", rationale="one two five four")]
    text = evaluate(drafts, reviews, TAX, n_boot=20).metrics.model_dump(mode="json")["fields"]["rationale"]
    assert text["accepted_as_is"] == 0.5  # whitespace differences do not count as an edit
    assert text["edit_similarity"] == pytest.approx((1 + 0.75) / 2)  # 2*LCS/total words: 2*3/8


def test_intervals_do_not_depend_on_the_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resamples are drawn in chunks to bound memory; the chunking must not change a single draw."""
    from annotator.evaluate import bootstrap

    drafts, reviews = _random_pairs(6, n=150)
    whole = evaluate(drafts, reviews, TAX, n_boot=120, seed=4).metrics.model_dump(mode="json")["fields"]
    monkeypatch.setattr(bootstrap, "CHUNK_ELEMENTS", 150 * 7)  # 7 resamples per chunk
    chunked = evaluate(drafts, reviews, TAX, n_boot=120, seed=4).metrics.model_dump(mode="json")["fields"]
    assert chunked == whole
    assert gc.isenabled()  # scoring pauses the garbage collector, and switches it back on


def test_baselines_and_skill_scores_from_the_confusion_matrix() -> None:
    import numpy as np

    from annotator.evaluate.baselines import majority_baseline, prior_baseline, skill_vs_majority, skill_vs_prior

    # 30 of 40 references are class 0; the candidate answers class 0 for everything.
    lazy = np.array([[30, 0], [10, 0]], dtype=float)
    assert majority_baseline(lazy) == 0.75 and prior_baseline(lazy) == 0.75**2 + 0.25**2
    assert skill_vs_majority(lazy) == 0.0 and skill_vs_prior(lazy) > 0
    good = np.array([[29, 1], [2, 8]], dtype=float)
    assert skill_vs_majority(good) == pytest.approx((37 / 40 - 0.75) / 0.25)
    assert skill_vs_majority(np.stack([lazy, good])).shape == (2,)  # batched, as the bootstrap calls it
