"""Push and pull N tasks through Label Studio and compare with the server's own bulk calls.

    .venv/bin/python benchmarks/labelstudio_roundtrip.py [--tasks 5000] [--batch-size 500] [--rounds 2]

Starts a throw-away local server (or uses LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY with --use-env),
builds N synthetic articles and drafts (OECD AIM taxonomy) and prints:
- push: `annotator push` into a new project vs the same tasks in ONE `import_tasks` call (goal <= 1.2x);
- re-push: the idempotent no-op run on the full project;
- pull: `annotator pull` (export + Review records) vs the server's own JSON export of the same project.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures_labelstudio import make_drafts  # noqa: E402

from annotator.labelstudio import server  # noqa: E402
from annotator.labelstudio.client import IMPORT_OPTIONS, connect  # noqa: E402
from annotator.labelstudio.config import label_config, to_result  # noqa: E402
from annotator.labelstudio.pull import pull  # noqa: E402
from annotator.labelstudio.push import model_version, push, score, task_data  # noqa: E402
from annotator.records import Article  # noqa: E402
from annotator.taxonomy import load_taxonomy  # noqa: E402


def articles(n: int, run: str) -> list[Article]:
    rng = random.Random(1)
    words = [
        "model",
        "system",
        "chatbot",
        "camera",
        "police",
        "loan",
        "hospital",
        "deepfake",
        "election",
        "court",
        "data",
        "bias",
        "harm",
    ]
    return [
        Article(
            id=f"{run}-{i:06d}",
            title=f"Article {i}",
            text=" ".join(rng.choice(words) for _ in range(400)),
            url=f"https://news.example.org/{i}",
            source="Example News",
            published_at="2025-05-01",
        )
        for i in range(n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=5000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--use-env", action="store_true", help="use LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY")
    args = ap.parse_args()
    tax = load_taxonomy("oecd_aim")
    config = label_config(tax)
    tmp = None
    if args.use_env:
        conn = connect()
    else:
        tmp = tempfile.mkdtemp(prefix="ls-bench-")
        state = server.start(tmp, log=print)
        conn = connect(state.url, state.token)
    try:
        push_s, bulk_s, repush_s = [], [], []
        for r in range(args.rounds):
            run = uuid.uuid4().hex[:6]
            arts = articles(args.tasks, run)
            by_id = {a.id: a for a in arts}
            drafts = make_drafts(tax, arts, "p1@bench", seed=r)
            # The server's own bulk import gets the same tasks, prepared beforehand (not timed).
            payload = [
                {
                    "data": task_data(by_id[d.article_id], d, list(d.flags), blind=False),
                    "predictions": [
                        {
                            "model_version": model_version(d),
                            "score": score(tax, d),
                            "result": to_result(tax, d.labels, d.rationale, d.confidence),
                        }
                    ],
                }
                for d in drafts
            ]
            project = conn.ls.projects.create(title=f"bench bulk {run}", label_config=config)

            def ours() -> None:
                t = time.perf_counter()
                res = push(conn, drafts, by_id, tax, f"bench push {run}", batch_size=args.batch_size)  # noqa: B023
                push_s.append(time.perf_counter() - t)
                assert res.created == args.tasks, res.describe()

            def theirs() -> None:
                t = time.perf_counter()
                conn.ls.projects.import_tasks(id=project.id, request=payload, request_options=IMPORT_OPTIONS)  # noqa: B023
                bulk_s.append(time.perf_counter() - t)

            for step in (ours, theirs) if r % 2 == 0 else (theirs, ours):  # alternate: the database grows
                step()
            t = time.perf_counter()
            again = push(conn, drafts, by_id, tax, f"bench push {run}", batch_size=args.batch_size)
            repush_s.append(time.perf_counter() - t)
            assert again.created == 0 and again.predictions_added == 0
            print(
                f"round {r + 1}: push {push_s[-1]:.1f} s, bulk import {bulk_s[-1]:.1f} s, re-push {repush_s[-1]:.1f} s",
                flush=True,
            )

        # Pull: a project whose every task has one annotation, imported in bulk (not timed).
        run = uuid.uuid4().hex[:6]
        arts = articles(args.tasks, run)
        by_id = {a.id: a for a in arts}
        drafts = make_drafts(tax, arts, "p1@bench", seed=9)
        title = f"bench pull {run}"
        project = conn.ls.projects.create(title=title, label_config=config)
        annotated = [
            {
                "data": task_data(by_id[d.article_id], d, [], blind=False),
                "annotations": [{"result": to_result(tax, d.labels, d.rationale), "lead_time": 10.0}],
            }
            for d in drafts
        ]
        for i in range(0, len(annotated), 1000):
            conn.ls.projects.import_tasks(id=project.id, request=annotated[i : i + 1000], request_options=IMPORT_OPTIONS)
        t = time.perf_counter()
        raw = b"".join(
            conn.ls.projects.exports.download_sync(id=project.id, export_type="JSON", request_options={"timeout_in_seconds": 900})
        )
        export_s = time.perf_counter() - t
        t = time.perf_counter()
        pulled = pull(conn, tax, title)
        pull_s = time.perf_counter() - t
        assert len(pulled.reviews) == args.tasks, pulled.describe()

        p, b = statistics.median(push_s), statistics.median(bulk_s)
        ratios = sorted(x / y for x, y in zip(push_s, bulk_s, strict=True))
        print(f"\n{args.tasks} tasks, batch size {args.batch_size}, {args.rounds} rounds (push and bulk alternate first)")
        print(
            f"push     {p:6.1f} s   bulk import (one call) {b:6.1f} s   median ratio {statistics.median(ratios):.2f}x "
            f"(per round {', '.join(f'{x:.2f}' for x in ratios)}; best-of {min(push_s) / min(bulk_s):.2f}x; goal <= 1.2x)"
        )
        print(f"re-push  {statistics.median(repush_s):6.1f} s   (nothing to do: listing + model-version check)")
        print(
            f"pull     {pull_s:6.1f} s   JSON export {export_s:6.1f} s ({len(raw) / 1e6:.0f} MB)   ratio {pull_s / export_s:.2f}x"
        )
    finally:
        if tmp:
            server.stop(tmp)


if __name__ == "__main__":
    main()
