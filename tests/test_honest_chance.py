"""Gwet's AC1 against irrCAC's `gwet()`, and PABAK against its formula, on random data and edge cases."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest
from irrCAC.raw import CAC

from annotator.evaluate.chance import ac1_of_confusion, allowed_answers, gwet_ac1, pabak, pabak_of_confusion
from annotator.taxonomy import Field, Value, load_taxonomy


def irrcac_ac1(pairs: list[tuple[object, object]]) -> float:
    frame = pd.DataFrame(
        {"model": [a if a is not None else math.nan for a, _ in pairs], "reviewer": [b if b is not None else math.nan for _, b in pairs]}
    )
    # categories passed explicitly, as irrCAC would infer them (the values either side used): its own
    # inference sorts `stack()`, which keeps NaN under pandas 3 and then fails to sort.
    used = sorted({x for pair in pairs for x in pair if x is not None})
    return float(CAC(frame, categories=used, digits=15).gwet()["est"]["coefficient_value"])


def random_pairs(rng: random.Random, n: int, classes: list[str], agree: float, missing: float = 0.0) -> list[tuple[object, object]]:
    weights = [rng.random() ** 3 for _ in classes]  # skewed prevalences, as news classes are
    out = []
    for _ in range(n):
        a = rng.choices(classes, weights)[0]
        b = a if rng.random() < agree else rng.choice(classes)
        out.append((None if rng.random() < missing else a, None if rng.random() < missing else b))
    return out


@pytest.mark.parametrize("seed", range(25))
def test_ac1_equals_irrcac_on_random_panels(seed: int) -> None:
    rng = random.Random(seed)
    classes = [f"c{i}" for i in range(rng.randint(2, 6))]
    pairs = random_pairs(rng, rng.randint(5, 300), classes, agree=rng.random(), missing=0.1 if seed % 3 == 0 else 0.0)
    if not any(a is not None and b is not None for a, b in pairs):
        pytest.skip("no complete pair drawn")
    assert gwet_ac1(pairs) == pytest.approx(irrcac_ac1(pairs), abs=1e-12)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # irrCAC's standard error divides by q − 1 = 0 with one class
@pytest.mark.parametrize(
    "pairs",
    [
        [("a", "a")] * 20,  # one class only: irrCAC gives 1
        [("a", "a")] * 19 + [("a", "b")],  # one dominant class, a single disagreement
        [("a", "b"), ("b", "a")] * 5,  # perfect disagreement
        [("a", "a"), ("b", "b"), ("c", "c")],  # perfect agreement, three classes
        [("a", "c"), ("a", "a"), ("b", "a"), ("b", "b")],  # a value the model never uses
        [("a", None), ("a", "a"), (None, "b"), ("b", "b"), ("b", "a")],  # missing ratings on either side
    ],
)
def test_ac1_equals_irrcac_on_edge_cases(pairs: list[tuple[object, object]]) -> None:
    assert gwet_ac1(pairs) == pytest.approx(irrcac_ac1(pairs), abs=1e-12)


def test_ac1_stays_high_where_kappa_collapses() -> None:
    # 95 of 100 articles "unrelated" on both sides, 5 disagreements the other way: the prevalence
    # paradox. Raw agreement 0.95, yet kappa is 0 (pₑ = 1·0.95 = pₒ); AC1 stays near raw agreement:
    # π(unrelated) = 0.975, pₑ = 2·0.975·0.025/1 = 0.04875, AC1 = (0.95 − 0.04875)/(1 − 0.04875) = 0.9474.
    pairs = [("unrelated", "unrelated")] * 95 + [("unrelated", "incident")] * 5
    assert gwet_ac1(pairs) == pytest.approx(irrcac_ac1(pairs), abs=1e-12)
    assert gwet_ac1(pairs) == pytest.approx(0.901250 / 0.95125, abs=1e-9)


def test_ac1_without_a_complete_pair_is_none() -> None:
    assert gwet_ac1([]) is None
    assert gwet_ac1([("a", None), (None, "b")]) is None


def test_pabak_formula_and_k() -> None:
    # pₒ = 3/4 with k = 4: (4·0.75 − 1)/3 = 2/3; k counts allowed answers, not those used.
    pairs = [("a", "a"), ("b", "b"), ("a", "a"), ("a", "b")]
    assert pabak(pairs, 4) == pytest.approx(2 / 3)
    # chance-level raw agreement (1/k) gives 0; full agreement gives 1; pairs with a missing side are left out.
    assert pabak([("a", "a"), ("a", "b")], 2) == pytest.approx(0.0)
    assert pabak([("a", "a"), ("b", None)], 3) == pytest.approx(1.0)
    assert pabak([], 4) is None
    assert pabak([("a", "a")], 1) is None


def test_allowed_answers_counts_null_for_optional_fields() -> None:
    tax = load_taxonomy("oecd_aim")
    required = tax.field(tax.primary)
    assert required.required
    assert allowed_answers(required) == len(required.values)
    optional = next(f for f in tax.single_fields if not f.required)
    assert allowed_answers(optional) == len(optional.values) + 1


def _confusion(pairs: list[tuple[object, object]]) -> np.ndarray:
    labels = sorted({x for pair in pairs for x in pair})
    code = {v: i for i, v in enumerate(labels)}
    conf = np.zeros((len(labels), len(labels)))
    for a, b in pairs:
        conf[code[b], code[a]] += 1  # rows reviewer, columns model, as the eval harness builds them
    return conf


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # irrCAC's standard error with a single class
@pytest.mark.parametrize("seed", range(15))
def test_confusion_forms_match_irrcac_and_the_formula(seed: int) -> None:
    rng = random.Random(100 + seed)
    classes = [f"c{i}" for i in range(rng.randint(1, 5))]
    batch = [random_pairs(rng, rng.randint(3, 200), classes, agree=rng.random()) for _ in range(4)]
    k = len(classes) + 2
    size = max(len(_confusion(p)) for p in batch)
    stacked = np.zeros((len(batch), size, size))
    for i, pairs in enumerate(batch):  # pad with unused categories: they must not count as "used"
        c = _confusion(pairs)
        stacked[i, : len(c), : len(c)] = c
    field = Field(name="f", kind="single", values=tuple(Value(id=f"v{i}") for i in range(k - 1)))  # optional: k answers
    ac1 = ac1_of_confusion(stacked, field)
    pab = pabak_of_confusion(stacked, field)
    for i, pairs in enumerate(batch):
        assert ac1[i] == pytest.approx(irrcac_ac1(pairs), abs=1e-12)
        assert pab[i] == pytest.approx(pabak(pairs, k))


def test_confusion_forms_on_an_empty_matrix_are_undefined() -> None:
    field = Field(name="f", kind="single", required=True, values=(Value(id="a"), Value(id="b")))
    assert np.isnan(ac1_of_confusion(np.zeros((2, 2)), field))
    assert np.isnan(pabak_of_confusion(np.zeros((2, 2)), field))
