"""Leak-free, reproducible train/validation/test splits: story groups placed in splits whole.

Pure functions, plain data in and out. The groups come from `annotator.stories` (articles that
tell one event: copies, retellings, translations), so a story never straddles two splits.

A group is placed in a split as a whole. Groups already placed in an earlier export keep their
split (`previous`); new groups are taken in an order fixed by a hash of the seed and the group's
smallest article id, and each goes to the split of its stratum that is furthest below its quota.
Same input, same seed: same split. More input: old articles stay where they were.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

SPLITS = ("train", "validation", "test")


# --------------------------------------------------------------------------- assignment


def parse_ratios(spec: str) -> dict[str, float]:
    """`80/10/10` (or `0.8/0.1/0.1`) → fractions per split that sum to 1."""
    parts = spec.split("/")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) != len(SPLITS) or any(n < 0 or not math.isfinite(n) for n in numbers) or sum(numbers) <= 0:
        raise ValueError(f"--split {spec!r}: give three non-negative numbers like 80/10/10 (train/validation/test)")
    total = sum(numbers)
    return {name: n / total for name, n in zip(SPLITS, numbers, strict=True)}


def group_order_key(group: Sequence[str], seed: int | str) -> str:
    """A group's place in the assignment order: fixed by the seed and its smallest id only."""
    return hashlib.sha256(f"{seed}\x00{min(group)}".encode()).hexdigest()


def _stratum(group: Sequence[str], strata: Mapping[str, str]) -> str:
    counts = Counter(strata.get(m, "") for m in group)
    return min(counts, key=lambda s: (-counts[s], s))


def _most_common_split(splits: Iterable[str]) -> str:
    counts = Counter(splits)
    return min(counts, key=lambda s: (-counts[s], SPLITS.index(s) if s in SPLITS else len(SPLITS)))


def assign_splits(
    groups: Sequence[Sequence[str]],
    strata: Mapping[str, str],
    ratios: Mapping[str, float],
    seed: int | str,
    previous: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """Split name per article id, and warnings.

    `strata` maps article id → its stratum (the primary label); a group's stratum is its most
    common one. Articles in `previous` keep their split; new members of such a group join the
    split most of its old members are in. A new article that links old articles from different
    splits cannot be placed without moving one: it is not moved, and a warning says so.
    """
    previous = previous or {}
    assignment: dict[str, str] = {}
    warnings: list[str] = []
    count: dict[str, Counter[str]] = defaultdict(Counter)
    total: Counter[str] = Counter()
    fresh: list[tuple[str, str, Sequence[str]]] = []
    for group in groups:
        stratum = _stratum(group, strata)
        total[stratum] += len(group)
        old = {m: previous[m] for m in group if previous.get(m) in SPLITS}
        if not old:
            fresh.append((group_order_key(group, seed), stratum, group))
            continue
        home = _most_common_split(old.values())
        if len(set(old.values())) > 1:
            where = ", ".join(f"{m} in {s}" for m, s in sorted(old.items()))
            warnings.append(f"near-duplicate group of {min(group)} spans splits ({where}): "
                            "new articles linked them; old articles were not moved")
        for m in group:
            assignment[m] = old.get(m, home)
            count[stratum][assignment[m]] += 1
    overall = sum(total.values())
    for _key, stratum, group in sorted(fresh):
        # Furthest below quota in its stratum; on a tie, furthest below quota overall, so that
        # rounding in each stratum does not add up to one split's favour.
        def need(s: str, stratum: str = stratum) -> tuple[float, float, int]:
            everywhere = sum(c[s] for c in count.values())
            # Rounded, so that float noise in the quotas does not decide ties.
            return (round(ratios.get(s, 0.0) * total[stratum] - count[stratum][s], 9),
                    round(ratios.get(s, 0.0) * overall - everywhere, 9), -SPLITS.index(s))

        split = max(SPLITS, key=need)
        for m in group:
            assignment[m] = split
        count[stratum][split] += len(group)
    return assignment, warnings
