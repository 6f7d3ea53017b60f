"""Does the auto-accept promise hold? Learn-then-Test calibration over many simulated runs.

    .venv/bin/python benchmarks/calibration_guarantee.py [--runs 1000] [--calibration 200,400,1000]
        [--risk 0.05] [--delta 0.1] [--test 2000]

For each simulated model (a calibrated one and an over-confident one, `annotator.simulate`) and
each calibration size, calibrates `--runs` times on fresh blind-reviewed articles and prints:
how often a threshold was certified, the median threshold, the mean share of drafts accepted
(coverage), the violation rate (runs whose threshold's true error rate exceeds the risk; the
promise is at most delta, up to simulation error, shown as a 95 % upper bound) and the mean
realised error of accepted drafts on `--test` fresh articles per run.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

from annotator.simulate import CALIBRATED, OVERCONFIDENT, calibration_trials
from annotator.taxonomy import load_taxonomy


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--calibration", default="200,400,1000", help="blind-reviewed articles per run, comma-separated")
    ap.add_argument("--risk", type=float, default=0.05)
    ap.add_argument("--delta", type=float, default=0.1)
    ap.add_argument("--test", type=int, default=2000, help="fresh articles per run for the realised error (0: skip)")
    args = ap.parse_args()
    tax = load_taxonomy("oecd_aim")
    print(f"risk {args.risk}, delta {args.delta}, {args.runs} runs per row")
    print("model           n_cal  certified  median_t  coverage  violations (95% upper)  realised_error  true_best")
    for model in (CALIBRATED, OVERCONFIDENT):
        best = min((t for t in model.levels if (model.true_risk(t) or 1) <= args.risk), default=None)
        for n in (int(x) for x in args.calibration.split(",")):
            start = time.process_time()
            trials = calibration_trials(tax, model, runs=args.runs, n_calibration=n, risk=args.risk, delta=args.delta,
                                        n_test=args.test, seed=7)
            cpu = time.process_time() - start
            k = sum(t.violated for t in trials)
            rate = k / args.runs
            upper = rate + 1.96 * math.sqrt(max(rate * (1 - rate), 1 / args.runs) / args.runs)
            certified = [t for t in trials if t.threshold is not None]
            median_t = statistics.median(t.threshold for t in certified) if certified else float("nan")
            realised = [t.realised_error for t in trials if t.realised_error is not None]
            mean_real = statistics.mean(realised) if realised else float("nan")
            print(f"{model.name:15} {n:5}  {len(certified) / args.runs:9.1%}  {median_t:8.2f}  "
                  f"{statistics.mean(t.coverage for t in trials):8.1%}  {rate:10.1%} ({upper:5.1%})        "
                  f"{mean_real:14.3f}  >= {best} ({model.coverage(best):.0%})   [{cpu:.0f} s CPU]", flush=True)


if __name__ == "__main__":
    main()
