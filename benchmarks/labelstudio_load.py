"""A team's load on a local Label Studio: a large push while annotators submit, and a first pull.

    .venv/bin/python benchmarks/labelstudio_load.py --db sqlite|postgres [--tasks 20000]
        [--annotators 20] [--think 1.0] [--pull-tasks 100000] [--batch-size 500] [--import-timeout 600] [--load-seconds 3600]
        [--lookup-tasks 5000 20000] [--skip push load rawload lookup pull]

Starts a throw-away server on the chosen database and prints:
- raw import: the N tasks (with predictions) in ONE import call into an empty project, nobody else
  working; push: `annotator push` of N other articles into a project of its own, nobody else
  working (the issue's goal: <= 1.2x the raw import);
- under load: `--annotators` users each take their next task (`/api/projects/ID/next`, their own
  token) and submit an annotation, pausing `--think` seconds between submits, in a project of
  2,000 pushed tasks, while N more tasks go into that project: first one raw import call (its own
  project), then `annotator push` (another such project). Printed for each: seconds, submits/s,
  p50/p95 submit latency, failed submits (any error or non-2xx answer; the goal is 0); and push
  against the raw import under the same load, and against the raw import with nobody working.
  A call still running after `--import-timeout` seconds counts as not finished;
- lookup: what push reads of a project before importing, at each of `--lookup-tasks`: the whole
  listing against looking up 100-5,000 of its article ids;
- pull: `annotator pull` (a child process) of a project whose every task holds one annotation,
  at a tenth of `--pull-tasks` and (the same project grown) at `--pull-tasks`: wall time, the
  child's peak RSS and its RSS along the way, to show that memory does not grow with the project.
Articles are 400 words for the push and 60 for the pull project (to keep building it short).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures_labelstudio import make_drafts  # noqa: E402

from annotator.errors import LabelStudioError  # noqa: E402
from annotator.labelstudio import server  # noqa: E402
from annotator.labelstudio.annotators import ensure_annotator  # noqa: E402
from annotator.labelstudio.client import connect  # noqa: E402
from annotator.labelstudio.config import label_config, to_result  # noqa: E402
from annotator.labelstudio.push import model_version, push, score, task_data  # noqa: E402
from annotator.labelstudio.tasks import task_refs, task_refs_of  # noqa: E402
from annotator.records import Article  # noqa: E402
from annotator.taxonomy import load_taxonomy  # noqa: E402

WORDS = ["model", "system", "chatbot", "camera", "police", "loan", "hospital", "deepfake", "election", "court", "bias"]
TAX = load_taxonomy("oecd_aim")
IMPORT = 10000  # tasks per import when building a large project


def articles(n: int, run: str, words: int) -> list[Article]:
    rng = random.Random(run)
    return [
        Article(id=f"{run}-{i:06d}", title=f"Article {i}", text=" ".join(rng.choice(WORDS) for _ in range(words)),
                url=f"https://news.example.org/{run}/{i}", source="Example News", published_at="2025-05-01")
        for i in range(n)
    ]


def payload(arts: list[Article], annotated: bool = False) -> list[dict]:
    drafts = make_drafts(TAX, arts, "p1@bench", seed=len(arts))
    out = []
    for a, d in zip(arts, drafts, strict=True):
        task = {"data": task_data(a, d, [], blind=False), "meta": {"article_id": a.id}}
        if annotated:
            task["annotations"] = [{"result": to_result(TAX, d.labels, d.rationale), "lead_time": 10.0}]
        else:
            task["predictions"] = [{"model_version": model_version(d), "score": score(TAX, d),
                                    "result": to_result(TAX, d.labels, d.rationale, d.confidence)}]
        out.append(task)
    return out


class Annotators:
    """Users who each take their next task and submit, until told to stop."""

    def __init__(self, url: str, project_id: int, tokens: list[str], think: float) -> None:
        self.url, self.project_id, self.tokens, self.think = url, project_id, tokens, think
        self.latencies: list[float] = []
        self.failed: list[str] = []
        self.failed_next: list[str] = []  # a user asked for their next task and got an error
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.result = to_result(TAX, make_drafts(TAX, articles(1, "x", 5))[0].labels, "reviewed")

    def work(self, token: str) -> None:
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Token {token}"}, timeout=300) as web:
            while not self.stop.is_set():
                try:
                    nxt = web.get(f"/api/projects/{self.project_id}/next")
                    if nxt.status_code == 404:  # nothing left for this user
                        time.sleep(self.think)
                        continue
                    if nxt.status_code >= 300:  # no task to submit: counted apart from failed submits
                        with self.lock:
                            self.failed_next.append(f"HTTP {nxt.status_code}: {nxt.text[:120]}")
                        self.stop.wait(self.think)
                        continue
                    t = time.perf_counter()
                    sub = web.post(f"/api/tasks/{nxt.json()['id']}/annotations/",
                                   json={"result": self.result, "lead_time": self.think})
                    took = time.perf_counter() - t
                    with self.lock:
                        if sub.status_code >= 300:
                            self.failed.append(f"HTTP {sub.status_code}: {sub.text[:120]}")
                        else:
                            self.latencies.append(took)
                except httpx.HTTPError as exc:
                    with self.lock:
                        self.failed.append(f"{type(exc).__name__}: {exc}")
                self.stop.wait(self.think)

    def __enter__(self) -> Annotators:
        self.threads = [threading.Thread(target=self.work, args=(tok,), daemon=True) for tok in self.tokens]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


def rss_mb(pid: int) -> tuple[float, float]:
    """The process's (RSS now, peak RSS so far) in MB (VmRSS, VmHWM); zeros when it has gone."""
    try:
        status = dict(x.split(":", 1) for x in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in x)
        return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return 0.0, 0.0


def pull_child(url: str, token: str, title: str, out: Path) -> tuple[float, float, int, list[float]]:
    """(seconds, peak RSS in MB, reviews, RSS at 25/50/75/100 % of its time) of `annotator pull`
    run as a child process.

    Memory is read from /proc while the child runs: the child's rusage would count the
    benchmark's own memory, which the forked child holds until it execs."""
    env = {**os.environ, "LABEL_STUDIO_URL": url, "LABEL_STUDIO_API_KEY": token}
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "annotator", "pull", "--project", title, "-o", str(out)],
                            env=env, stdout=subprocess.DEVNULL)
    peak, trace = 0.0, []
    while proc.poll() is None:
        now, hwm = rss_mb(proc.pid)
        if now:
            peak = max(peak, hwm)
            trace.append((time.perf_counter() - t, now))
        time.sleep(0.5)
    took = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"pull failed with status {proc.returncode}")
    quarters = [next((m for s, m in reversed(trace) if s <= q * took), 0.0) for q in (0.25, 0.5, 0.75, 1.0)]
    return took, peak, sum(1 for _ in out.open()), quarters


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--annotators", type=int, default=20)
    ap.add_argument("--think", type=float, default=1.0, help="seconds an annotator pauses between submits")
    ap.add_argument("--pull-tasks", type=int, default=100000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--import-timeout", type=float, default=600, help="seconds an import call under load may take")
    ap.add_argument("--load-seconds", type=float, default=3600, help="seconds a push or raw import under load may take in all")
    ap.add_argument("--lookup-tasks", type=int, nargs="*", default=[5000, 20000], help="project sizes for the lookup phase")
    ap.add_argument("--skip", nargs="*", default=[], choices=["push", "load", "rawload", "pull", "lookup"], help="phases to leave out")
    args = ap.parse_args()
    print(f"load before: {os.getloadavg()[0]:.1f} (1-min load average, {os.cpu_count()} cores)", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="ls-load-"))
    state = server.start(tmp / "ls", db=args.db, log=print)
    conn = connect(state.url, state.token)
    config = label_config(TAX)
    run = uuid.uuid4().hex[:6]
    try:
        raw_s = float("nan")
        if "push" not in args.skip:
            raw_s = quiet_push(conn, config, run, args)
        if "load" not in args.skip:
            under_load(conn, state, run, args, raw_s)
        if "lookup" not in args.skip:
            lookup(conn, config, run, args)
        if "pull" not in args.skip:
            first_pull(conn, state, config, run, args, tmp)
        print(f"load after: {os.getloadavg()[0]:.1f}")
    finally:
        server.stop(tmp / "ls", remove_database=True)


def quiet_push(conn, config, run, args) -> float:  # type: ignore[no-untyped-def]
    """1. One raw import, and a push of the same number of other articles, nobody else working."""
    arts = articles(args.tasks, f"{run}r", 400)
    raw = payload(arts)
    project = conn.ls.projects.create(title=f"raw {run}", label_config=config)
    t = time.perf_counter()
    conn.post_json(f"api/projects/{project.id}/import", raw, params={"commit_to_project": "true"}, timeout=7200)
    raw_s = time.perf_counter() - t
    del raw
    print(f"raw import   {raw_s:7.1f} s  ({args.tasks} tasks in one call)", flush=True)
    arts = articles(args.tasks, f"{run}q", 400)
    drafts = make_drafts(TAX, arts, "p1@bench", seed=2)
    t = time.perf_counter()
    res = push(conn, drafts, {a.id: a for a in arts}, TAX, f"quiet {run}", batch_size=args.batch_size)
    push_s = time.perf_counter() - t
    assert res.ok and res.created == args.tasks, res.describe()
    print(f"push         {push_s:7.1f} s  ({push_s / raw_s:.2f}x the raw import; goal <= 1.2x)", flush=True)
    return raw_s


def team_project(conn, title, args) -> int:  # type: ignore[no-untyped-def]
    """A project of max(2,000, 100 per annotator) pushed tasks for the annotators to work in."""
    seed = articles(max(2000, args.annotators * 100), f"{title}-s", 400)
    push(conn, make_drafts(TAX, seed, "p1@bench"), {a.id: a for a in seed}, TAX, title, batch_size=args.batch_size)
    return next(p.id for p in conn.ls.projects.list(title=title) if p.title == title)


def with_crowd(conn, state, team_id: int, tokens: list[str], args, what: str, work) -> float:  # type: ignore[no-untyped-def]
    """Run `work` while the annotators submit in project `team_id`; print and return its seconds."""
    def run() -> None:
        try:
            work()
        except (LabelStudioError, httpx.HTTPError) as exc:  # a step that cannot finish is a result
            print(f"{what} did not finish: {exc}")

    with Annotators(state.url, team_id, tokens, args.think) as crowd:
        t = time.perf_counter()
        worker = threading.Thread(target=run, daemon=True)  # left behind after --load-seconds
        worker.start()
        worker.join(args.load_seconds)
        took = time.perf_counter() - t
        if worker.is_alive():
            print(f"{what} did not finish within --load-seconds {args.load_seconds:.0f}: the project holds "
                  f"{conn.ls.projects.get(id=team_id).task_number} tasks ({args.tasks} sent on top of the team's)")
    lat = sorted(crowd.latencies)
    p50 = statistics.median(lat) if lat else float("nan")
    p95 = lat[int(0.95 * (len(lat) - 1))] if lat else float("nan")
    print(f"{what} {took:7.1f} s with {args.annotators} annotators (think {args.think} s): {len(lat)} submits, "
          f"{len(lat) / took:.1f}/s, p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, failed {len(crowd.failed)} "
          f"(and {len(crowd.failed_next)} next-task calls failed; load {os.getloadavg()[0]:.1f})", flush=True)
    for f in crowd.failed[:5]:
        print("  failed:", f)
    return took


def under_load(conn, state, run, args, raw_s) -> None:  # type: ignore[no-untyped-def]
    """2. A raw import, then a push, of N tasks each, while annotators submit in the project it goes
    into. Each gets a team project of its own, alike (the seed push), so both meet the same load."""
    tokens = [ensure_annotator(conn, f"reviewer{i}-{run}@example.org").token for i in range(args.annotators)]
    raw_loaded_s = float("nan")
    if "rawload" not in args.skip:
        raw_team = team_project(conn, f"raw team {run}", args)
        raw = [payload(articles(args.tasks, f"{run}m", 400))]  # built before the clock starts

        def raw_import() -> None:
            conn.post_json(f"api/projects/{raw_team}/import", raw.pop(), params={"commit_to_project": "true"}, timeout=args.import_timeout)

        raw_loaded_s = with_crowd(conn, state, raw_team, tokens, args, "raw import under load", raw_import)
    title = f"team {run}"
    team_id = team_project(conn, title, args)
    arts = articles(args.tasks, f"{run}l", 400)
    drafts = make_drafts(TAX, arts, "p1@bench", seed=3)

    def push_all() -> None:
        res = push(conn, drafts, {a.id: a for a in arts}, TAX, title, batch_size=args.batch_size, import_timeout=args.import_timeout)
        if not res.ok or res.created != args.tasks or res.predictions_resent:
            print(f"  push: {res.describe()}", *res.problems[:3], sep="\n  ")

    loaded_s = with_crowd(conn, state, team_id, tokens, args, "push under load", push_all)
    print(f"push under load: {loaded_s / raw_loaded_s:.2f}x the raw import under the same load; "
          f"{loaded_s / raw_s:.2f}x the raw import with nobody else working", flush=True)


def grow(conn, project_id: int, have: int, size: int, prefix: str, annotated: bool) -> list[str]:  # type: ignore[no-untyped-def]
    """Import tasks (60-word articles) until the project holds `size`, one import per 10,000
    (with their annotation or prediction in the same import); returns the new article ids."""
    ids = []
    for i in range(have, size, IMPORT):
        arts = articles(min(IMPORT, size - i), f"{prefix}-{i}", 60)
        conn.post_json(f"api/projects/{project_id}/import", payload(arts, annotated=annotated),
                       params={"commit_to_project": "true"}, timeout=7200)
        ids += [a.id for a in arts]
    return ids


def first_pull(conn, state, config, run, args, tmp) -> None:  # type: ignore[no-untyped-def]
    """3. First pull of an annotated project at a tenth of the size, then (grown) at the full size."""
    ptitle = f"pull {run}"
    project = conn.ls.projects.create(title=ptitle, label_config=config)
    have = 0
    for size in (max(1, args.pull_tasks // 10), args.pull_tasks):
        t = time.perf_counter()
        grow(conn, project.id, have, size, f"{run}p", annotated=True)
        build_s, have = time.perf_counter() - t, size
        print(f"  ({size} tasks in the project; the imports up to it took {build_s:.0f} s; "
              f"load {os.getloadavg()[0]:.1f})", flush=True)
        took, rss, n, quarters = pull_child(state.url, state.token, ptitle, tmp / f"reviews-{size}.jsonl")
        assert n == size, (n, size)
        print(f"pull {size:7d} annotated tasks: {took:7.1f} s ({took / size * 1000:.2f} ms/task), peak RSS {rss:.0f} MB, "
              f"RSS at 1/4, 1/2, 3/4 and the end of its time {' / '.join(f'{m:.0f}' for m in quarters)} MB "
              f"(load {os.getloadavg()[0]:.1f})", flush=True)


def lookup(conn, config, run, args) -> None:  # type: ignore[no-untyped-def]
    """4. What push reads of a project before importing: its whole listing (ids, meta, counts),
    against looking up only the pushed articles by id (`task_refs_of`), at each project size."""
    project = conn.ls.projects.create(title=f"lookup {run}", label_config=config)
    have, ids = 0, []
    rng = random.Random(run)
    for size in args.lookup_tasks:
        ids += grow(conn, project.id, have, size, f"{run}k", annotated=False)
        have = size
        t = time.perf_counter()
        n = len(task_refs(conn, project.id))
        full_s = time.perf_counter() - t
        assert n == size, (n, size)
        row = [f"project {size}: full listing {full_s:5.1f} s"]
        for k in (100, 500, 2000, 5000):
            if k > size // 2:
                continue
            wanted = rng.sample(ids, k)
            t = time.perf_counter()
            found = task_refs_of(conn, project.id, wanted)
            assert len(found) == k, (len(found), k)
            row.append(f"lookup {k} ids {time.perf_counter() - t:5.1f} s")
        print("; ".join(row) + f" (load {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
