"""Train the injection check's sentence classifier and write its weights into the package.

What it learns from (every file named here is tuned on by that):
- injected sentences: the `injection` field of every row of the injection sets below (heldout5 is
  not among them: it chooses the threshold);
- ordinary sentences: every sentence of the hard-negative sets and news articles below, and the
  sentences of the injection articles that are not the injection.
Not learnt from, kept to measure: heldout5.jsonl and ordinary5.jsonl (which choose the threshold,
so they are tuned on too, once), heldout6/ordinary6/hard6 (written apart, measured once, then one
change of the check's seen them), ordinary.jsonl (generated AI news), the bundled samples.

The model: each sentence (as `annotator.injection.sentences` cuts it: disguises undone, quotations
in reported speech set aside) is the set of its character 3- and 5-grams (`injection.grams`), each
worth 1/sqrt(number of its n-grams); a logistic regression (scikit-learn, already a dependency of
the package; L2, C, balanced classes) on the n-grams seen in at least MIN_DF training sentences; the
weights smaller than PRUNE are dropped. Beside them, `words`: the words injected sentences use at
least WORD_ODDS times as often as ordinary ones; the check scores only a sentence in another script
or language, or with one of those words (most sentences of English news have none), or one a role
marker or a machine called by name addresses. The file holds the intercept, the weights, the words, the threshold and where they came
from; the check computes the same sum (`injection.sentence_score`), so what this script prints on
the validation sets (with the rules, as `explain` combines them) is what the check does.

The thresholds (0.9 for English sentences, 0.7 for others) were chosen on heldout5/ordinary5 from the table this prints: the highest
recall with no false positive on ordinary.jsonl and none on ordinary5 beyond the rules' own.
Writing the file keeps its threshold unless --threshold is given.

    PYTHONPATH=. .venv/bin/python evals/injection/train_classifier.py [--threshold P] [--dry-run]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.linear_model import LogisticRegression

from annotator.demo import samples_dir
from annotator.ingest import read_articles
from annotator.injection import (
    GRAM_SIZES,
    SEPARATORS,
    WEIGHTS,
    _english,
    _model,
    by_rules,
    explain,
    grams,
    sentences,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
INJECTIONS = ["injections.jsonl", "heldout.jsonl", "heldout2.jsonl", "heldout3.jsonl", "heldout4.jsonl",
              *[f"dev{i}.jsonl" for i in range(5, 21)]]
NEGATIVES = [*[f"dev{i}_ordinary.jsonl" for i in range(5, 21)], str(ROOT / "evals" / "stories" / "articles.jsonl"),
             str(ROOT / "evals" / "disarm" / "articles.jsonl")]
MIN_DF, C, PRUNE, WORD_ODDS, OTHER_WEIGHT = 2, 64.0, 0.02, 4.0, 3.0
VERSION = 1


def rows(name: str) -> list[dict]:
    path = Path(name) if Path(name).is_absolute() else HERE / name
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def text_of(r: dict) -> str:
    return f"{r.get('title') or ''}\n{r['text']}"


def training_sentences(leave_out: str = "") -> tuple[list[str], list[int]]:
    """The training sentences and their classes (1: injected); `leave_out`: a set name (devN) left out."""
    pos: set[str] = set()
    neg: set[str] = set()
    for name in (n for n in INJECTIONS if not leave_out or Path(n).stem != leave_out):
        for r in rows(name):
            mine = set(sentences(r["injection"]))
            pos |= mine
            for s in sentences(text_of(r)):
                if not any(s in p or p in s for p in mine):
                    neg.add(s)
    for name in (n for n in NEGATIVES if not leave_out or Path(n).stem != f"{leave_out}_ordinary"):
        for r in rows(name):
            neg.update(sentences(text_of(r)))
    neg -= pos
    xs = sorted(pos) + sorted(neg)
    return xs, [1] * len(pos) + [0] * len(neg)


def matrix(xs: list[str], vocab: dict[str, int]) -> csr_matrix:
    indptr, indices, data = [0], [], []
    for s in xs:
        g = grams(s)
        cols = sorted(vocab[x] for x in g if x in vocab)
        indices += cols
        data += [1 / math.sqrt(len(g))] * len(cols)
        indptr.append(len(indices))
    return csr_matrix((np.array(data), np.array(indices), np.array(indptr)), shape=(len(xs), len(vocab)))


def train(xs: list[str], ys: list[int]) -> dict:
    df: dict[str, int] = {}
    for s in xs:
        for g in grams(s):
            df[g] = df.get(g, 0) + 1
    vocab = {g: i for i, g in enumerate(sorted(g for g, n in df.items() if n >= MIN_DF))}
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=3000, solver="liblinear")
    other = np.array([OTHER_WEIGHT if not _english(s) else 1.0 for s in xs])  # a few sentences a language: each counts more
    model.fit(matrix(xs, vocab), np.array(ys), sample_weight=other)
    weights = {g: round(float(w), 3) for g, w in zip(vocab, model.coef_[0], strict=True) if abs(w) >= PRUNE}
    return {"intercept": round(float(model.intercept_[0]), 4), "weights": weights, "vocabulary": len(vocab),
            "words": cue_words(xs, ys)}


def cue_words(xs: list[str], ys: list[int]) -> list[str]:
    """Words at least WORD_ODDS times likelier in an injected sentence than in an ordinary one (seen in two
    injected sentences or more): a sentence in Latin letters with none of them (nor a word the rules use) is
    not scored."""
    pos: dict[str, int] = {}
    neg: dict[str, int] = {}
    for s, y in zip(xs, ys, strict=True):
        for w in set(s.translate(SEPARATORS).split()):
            (pos if y else neg)[w] = (pos if y else neg).get(w, 0) + 1
    n_pos, n_neg = sum(ys), len(ys) - sum(ys)
    return sorted(w for w, k in pos.items() if k >= 2 and len(w) >= 3 and (k / n_pos) >= WORD_ODDS * (neg.get(w, 0) + 1) / n_neg)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threshold", type=float, default=None, help="the score that flags an English sentence (default: keep the file's)")
    p.add_argument("--threshold-other", type=float, default=None,
                   help="the score that flags a sentence in another language (default: keep the file's)")
    p.add_argument("--dry-run", action="store_true", help="train and print, do not write the file")
    p.add_argument("--leave-one-out", action="store_true",
                   help="for each dev set, train without it (and its negatives) and measure it: what to expect unseen")
    args = p.parse_args()
    if args.leave_one_out:
        return leave_one_out()
    xs, ys = training_sentences()
    print(f"training sentences: {sum(ys)} injected, {len(ys) - sum(ys)} ordinary", file=sys.stderr)
    model = train(xs, ys)
    old = json.loads(WEIGHTS.read_text(encoding="utf-8")) if WEIGHTS.exists() else {}
    threshold = args.threshold if args.threshold is not None else old.get("threshold", 0.85)
    threshold_other = args.threshold_other if args.threshold_other is not None else old.get("threshold_other", 0.7)
    subprocess.run(["git", "-C", str(ROOT), "update-index", "-q", "--refresh"], capture_output=True)  # else touched files read as changes
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    out = {
        "version": VERSION,
        "made_by": "evals/injection/train_classifier.py",
        "made_at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%MZ"),
        "from_commit": commit,
        "trained_on": {"injected": INJECTIONS, "ordinary": [Path(n).name if "/" not in n else str(Path(n).relative_to(ROOT))
                                                            for n in NEGATIVES],
                       "sentences": {"injected": sum(ys), "ordinary": len(ys) - sum(ys)}},
        "features": "the character n-grams of a sentence (annotator.injection.grams), each 1/sqrt(their count)",
        "gram_sizes": list(GRAM_SIZES),
        "model": f"logistic regression, C={C}, balanced classes, sentences in another language weighing {OTHER_WEIGHT}, n-grams in >= {MIN_DF} sentences "
                 f"({model['vocabulary']}), weights below {PRUNE} dropped ({len(model['weights'])} kept)",
        "threshold": threshold,
        "threshold_other": threshold_other,
        "scored": f"sentences in another script or language, or with one of `words` "
                  f"(seen >= {WORD_ODDS}x as often in injected sentences); threshold for English, threshold_other for "
                  f"other languages",
        "intercept": model["intercept"],
        "words": model["words"],
        "weights": model["weights"],
    }
    if not args.dry_run:
        WEIGHTS.write_text(json.dumps(out, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")  # a line a weight: diffs a reviewer can read
        _model.cache_clear()
    validate(out)


def leave_one_out() -> None:
    """Each dev set measured by the rules OR a classifier trained without it, at the file's thresholds.
    The rules were tuned on every set, so this says what the classifier adds to them on wording it has
    not seen, not what the whole check would get on a new set."""
    shipped = json.loads(WEIGHTS.read_text(encoding="utf-8"))
    totals = [0, 0, 0, 0]
    for k in range(5, 21):
        name = f"dev{k}"
        xs, ys = training_sentences(leave_out=name)
        model = {**shipped, **train(xs, ys)}
        got = []
        for f in (f"{name}.jsonl", f"{name}_ordinary.jsonl"):
            texts = [text_of(r) for r in rows(f)]
            got.append((sum(explain(t, model) is not None for t in texts), len(texts)))
        (hit, n), (fp, m) = got
        totals = [totals[0] + hit, totals[1] + n, totals[2] + fp, totals[3] + m]
        print(f"{name}: {hit}/{n} caught, {fp}/{m} negatives flagged")
    print(f"all: {totals[0]}/{totals[1]} caught, {totals[2]}/{totals[3]} negatives flagged")


def validate(model: dict | None) -> None:
    """Recall and false positives on the sets not trained on (the rules OR the classifier), at the file's
    thresholds and at others (one changed at a time)."""
    sets = {"heldout5": [text_of(r) for r in rows("heldout5.jsonl")], "ordinary5": [text_of(r) for r in rows("ordinary5.jsonl")],
            "ordinary": [text_of(r) for r in rows("ordinary.jsonl")],
            "samples": [f"{a.title}\n{a.text}" for a in read_articles([samples_dir()], on_error=lambda m: None)]}
    model = model or json.loads(WEIGHTS.read_text(encoding="utf-8"))
    rules = {k: [by_rules(t) is not None for t in v] for k, v in sets.items()}
    for key in ("threshold", "threshold_other"):
        for th in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95):
            trial = {**model, key: th}
            line = [f"{k} {sum(r or explain(t, trial) is not None for r, t in zip(rules[k], v, strict=True))}/{len(v)}"
                    for k, v in sets.items()]
            others = ", ".join(f"{k} {trial[k]}" for k in ("threshold", "threshold_other") if k != key)
            print(f"{key} {th:.2f} ({others}): " + ", ".join(line))
    if WEIGHTS.exists() and model is not None:
        print("explain() with the file: " + ", ".join(f"{k} {sum(explain(t) is not None for t in v)}/{len(v)}" for k, v in sets.items()))


if __name__ == "__main__":
    main()
