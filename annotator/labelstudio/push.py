"""Push drafts into Label Studio: one task per article, each draft a prediction.

Label Studio has no upsert and no unique key, so the article id travels in task data and every
push first reads which of its articles the project holds (looked up by id when they are few next
to the project, else one listing): a re-push creates nothing, a new `model_version` adds
predictions to the tasks it already made, and a push cut off half-way is finished by running it
again. Imports are never retried by the SDK (a retried import is an import applied twice).

A blind slice (anchoring control) lives in a companion project "<title> (blind)" whose tasks carry
no prediction and no draft text, with `maximum_annotations = N` and a 100 % overlap cohort, which
the server enforces: each blind task goes to N different annotators. Which articles are blind is
decided once (hash of article id and seed, stratified by the draft's classification) and then
fixed by which project holds the task.
"""

from __future__ import annotations

import hashlib
import html
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

from label_studio_sdk.label_interface import LabelInterface
from pydantic import BaseModel, Field

from annotator.calibrate import Acceptance
from annotator.errors import LabelStudioError
from annotator.incidents import NONE, parse_candidates
from annotator.labelstudio.client import BLIND_SUFFIX, Connection, find_project, projects_titled
from annotator.labelstudio.config import (
    LINK_OPTIONS,
    label_config,
    link_result,
    normalise_config,
    spans_to_result,
    to_result,
)
from annotator.labelstudio.tasks import TaskRef, by_article, last_task_id, removable, remove_unannotated, task_refs, task_refs_of
from annotator.records import Article, Draft, iter_jsonl
from annotator.stories import story_groups, story_id
from annotator.taxonomy import Taxonomy, validate_labels

SAMPLING = "Uncertainty sampling"  # least confident drafts first; see README to turn off


class PushResult(BaseModel):
    project_id: int
    blind_project_id: int | None = None
    created: int = 0
    blind_created: int = 0
    predictions_added: int = 0
    unchanged: int = 0
    auto_accepted: int = 0  # accepted by a calibrated policy: no task made
    accepted_in_review: int = 0  # accepted, but their task existed already (left as it is)
    duplicates_removed: int = 0  # copies another push made at the same moment, removed
    predictions_resent: int = 0  # predictions Label Studio dropped from an import, sent again
    failed_drafts: int = 0
    problems: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        return (
            f"project {self.project_id}: {self.created} tasks created ({self.blind_created} blind"
            + (f", in project {self.blind_project_id}" if self.blind_project_id else "")
            + f"), {self.predictions_added} predictions added, {self.unchanged} articles unchanged, "
            f"{self.failed_drafts} drafts failed (no prediction, flagged), "
            + (f"{self.duplicates_removed} duplicate tasks removed (another push ran at the same moment), " if self.duplicates_removed else "")
            + (f"{self.predictions_resent} predictions that Label Studio dropped sent again, " if self.predictions_resent else "")
            + f"{len(self.problems)} problems"
            + (f"; {self.auto_accepted} auto-accepted drafts left out of review" if self.auto_accepted else "")
            + (f", {self.accepted_in_review} accepted drafts already had a task" if self.accepted_in_review else "")
        )


# --------------------------------------------------------------------------- pure parts


def model_version(d: Draft) -> str:
    return d.model_version or f"{d.prompt_version}@{d.model}"


def _unit(article_id: str, seed: str) -> float:
    digest = hashlib.sha256(f"{seed}\x00{article_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_blind(
    strata: Mapping[str, str | None],
    placed: Mapping[str, bool],
    share: float,
    seed: str,
) -> set[str]:
    """Which of the not-yet-placed articles go blind.

    `strata` maps every article of this push to its stratum (the draft's classification);
    `placed` maps the articles Label Studio already holds to whether they are blind (those never
    move). Per stratum, the slice is topped up to round(share * n), at least one when share > 0,
    so rare classes are in it; within a stratum the lowest hashes of (seed, article id) go first,
    so the choice is the same on every machine and every re-run.
    """
    if share <= 0:
        return set()
    groups: dict[str | None, list[str]] = defaultdict(list)
    for aid, stratum in strata.items():
        groups[stratum].append(aid)
    blind: set[str] = set()
    for ids in groups.values():
        already = sum(1 for a in ids if placed.get(a))
        target = max(1, round(share * len(ids)))
        fresh = sorted((a for a in ids if a not in placed), key=lambda a: _unit(a, seed))
        blind.update(fresh[: max(0, target - already)])
    return blind


def score(tax: Taxonomy, d: Draft) -> float | None:
    """The prediction score that uncertainty sampling orders by: the primary field's confidence."""
    c = d.confidence.get(tax.primary)
    if c is None:
        known = [v for v in d.confidence.values() if v is not None]
        c = min(known) if known else None
    return c


def _link(url: str | None, text: str | None = None) -> str:
    """An escaped link that opens in a new tab, for http(s) URLs only; else the escaped text."""
    url = url or ""
    if not url.startswith(("http://", "https://")):
        return html.escape(text or "")
    safe = html.escape(url, quote=True)
    return f'<a href="{safe}" target="_blank" rel="noopener noreferrer nofollow">{html.escape(text) if text else safe}</a>'


class StoryContext(BaseModel):
    """The story an article belongs to, as a task shows it: its id and the other articles."""

    id: str
    others: list[Article] = Field(default_factory=list)


STORY_LIST_MAX = 20  # other articles listed in a task; the Data Manager filter by story shows them all


def story_html(story: StoryContext | None) -> str:
    """The story panel of a task: the other articles' titles (linked), sources and dates, escaped."""
    if story is None or not story.others:
        return ""
    others = sorted(story.others, key=lambda a: (a.published_at or "", a.id))
    items = "".join(
        f"<li>{_link(a.url, a.title or a.id)} — {html.escape(' · '.join(p for p in (a.source, (a.published_at or '')[:10]) if p))}"
        f" <code>{html.escape(a.id)}</code></li>"
        for a in others[:STORY_LIST_MAX])
    more = f"<li>and {len(others) - STORY_LIST_MAX} more (filter the Data Manager by story_id)</li>" if len(others) > STORY_LIST_MAX else ""
    return (f"<b>Story {html.escape(story.id)}</b>: {len(others)} other article{'s' if len(others) != 1 else ''} "
            f"tell{'s' if len(others) == 1 else ''} the same event<ul>{items}{more}</ul>")


NO_INCIDENT = "none of these: a new incident, another event, or no incident"


def link_options(tax: Taxonomy, draft: Draft | None) -> list[dict[str, str]] | None:
    """The choices a task offers for the taxonomy's link: the recorded incidents retrieved for the
    article (title linked to the incident's page, first date, id), then "none". None without a link."""
    if tax.link is None:
        return None
    options = []
    for c in parse_candidates((draft.model_extra or {}).get("incident_candidates") if draft else None):
        shown = f"{_link(c.url, c.title)} — {html.escape(c.date or 'no date')} <code>{html.escape(c.id)}</code>"
        options.append({"value": c.id, "html": shown})
    return [*options, {"value": NONE, "html": html.escape(NO_INCIDENT)}]


def drafted_link(tax: Taxonomy, draft: Draft) -> str | None:
    """The draft's link when it is one of the incidents it offered (or none): what a task pre-selects."""
    if tax.link is None:
        return None
    extra = draft.model_extra or {}
    value = extra.get(tax.link.name)
    offered = {c.id for c in parse_candidates(extra.get("incident_candidates"))} | {NONE}
    return value if value in offered else None


def task_data(article: Article, draft: Draft | None, flags: list[str], blind: bool,
              story: StoryContext | None = None, options: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """Task data: the article, the flags, its story, the link's options (a taxonomy with a link)
    and (assisted tasks only) which draft is shown."""
    link = _link(article.url)
    info = ""
    if draft is not None and not blind:
        conf = ", ".join(f"{k} {v:.2f}" for k, v in draft.confidence.items() if v is not None)
        info = f"Draft {model_version(draft)}" + (f" — confidence: {conf}" if conf else "")
    return {
        "article_id": article.id,
        "title": article.title or article.id,
        "meta": " · ".join(p for p in (article.source, article.published_at, article.language) if p),
        "link": link,
        "text": article.text,
        "flags": ("⚠ " + "; ".join(flags)) if flags else "",
        "draft_info": info,
        "blind": blind,
        "story_id": story.id if story else "",
        "story": story_html(story),
        **({LINK_OPTIONS: options} if options is not None else {}),
    }


def task_meta(article_id: str, story: StoryContext | None) -> dict[str, str]:
    return {"article_id": article_id, **({"story": story.id} if story else {})}


def story_contexts(groups: Mapping[str, Sequence[str]], articles: Mapping[str, Article],
                   known: Mapping[str, str]) -> dict[str, StoryContext]:
    """Each article's story: the id its group already has in Label Studio (`known`: article id ->
    story id of tasks pushed earlier; the smallest if several), else `story_id` of the group, so
    a story keeps its id when new articles join it; and the group's other articles."""
    out: dict[str, StoryContext] = {}
    for aid, group in groups.items():
        if aid in out or aid not in articles:
            continue
        earlier = sorted({known[m] for m in group if m in known})
        sid = earlier[0] if earlier else story_id(group)
        present = [m for m in group if m in articles]
        for m in present:
            out[m] = StoryContext(id=sid, others=[articles[o] for o in present if o != m])
    return out


# --------------------------------------------------------------------------- I/O


SETTLE_S = 1.0  # how long a project creation may take to become visible to another push


def ensure_project(conn: Connection, title: str, config: str, update_config: bool, **settings: Any) -> Any:
    """The project with this title, created if there is none: exactly one even when pushes race.

    Two pushes that both find no project both create one. Each then looks again (after a moment,
    so that a creation still being committed is seen) and keeps the oldest project with the
    title; the one that made a younger project deletes it before putting anything in it.
    `find_project` applies the same rule, so a third process never picks the younger one.
    """
    project = find_project(conn, title)
    if project is None:
        with conn.errors(f"creating project {title!r}"):
            made = conn.ls.projects.create(title=title, label_config=config, **settings)
        time.sleep(SETTLE_S)
        oldest = projects_titled(conn, title)[0]
        if oldest.id == made.id:
            return made
        with conn.errors(f"removing project {made.id}, a second {title!r} made by a push that raced another"):
            conn.ls.projects.delete(id=made.id)
        project = oldest
    with conn.errors(f"reading project {title!r}"):
        current = conn.ls.projects.get(id=project.id)
    if normalise_config(current.label_config or "") != normalise_config(config):
        if not update_config:
            raise LabelStudioError(
                f"project {title!r} (id {project.id}) has a labeling config that no longer matches the taxonomy: "
                "re-run with --update-config to replace it"
            )
        with conn.errors(f"updating the labeling config of project {title!r}"):
            conn.ls.projects.update(id=project.id, label_config=config)
    return current


LOOKUP_SHARE = 0.25  # look the articles up when they are at most this share of the project's tasks


class Holdings(NamedTuple):
    """What a push needs to know of a project before importing: the tasks of its articles, and the
    task count and highest task id, read first, so that a task another push makes meanwhile has a
    higher id (or shows in the count) and is looked for after the import."""

    refs: Sequence[TaskRef] = ()
    count: int = 0
    last_id: int = 0


def _holdings(conn: Connection, project: Any, article_ids: set[str]) -> Holdings:
    """A few articles in a large project are looked up by id (a filtered request per 200 ids);
    otherwise the project is listed once (ids and counts only), which is then cheaper."""
    count = project.task_number or 0
    last_id = last_task_id(conn, project.id) if count else 0
    if len(article_ids) <= LOOKUP_SHARE * count:
        refs = task_refs_of(conn, project.id, article_ids)
    else:
        refs = [r for r in task_refs(conn, project.id) if r.article_id in article_ids]
    return Holdings(refs, count, last_id)


def existing_tasks(conn: Connection, project_id: int) -> dict[str, int]:
    """article id -> task id (the oldest task of the article) of a project."""
    return {aid: ts[0].id for aid, ts in by_article(task_refs(conn, project_id)).items()}


def _existing_predictions(conn: Connection, project_id: int, versions: set[str], n_tasks: int) -> set[tuple[int, str]] | None:
    """(task id, model version) pairs already in the project for these versions; None: all tasks have all.

    A push adds at most one prediction per task and version, so a version counted once per task
    is on every task and needs no listing (the common re-push).
    """
    with conn.errors(f"reading the model versions of project {project_id}"):
        counts = conn.request("GET", f"api/projects/{project_id}/model-versions") or {}
    if not versions & set(counts):
        return set()
    if all(counts.get(v) == n_tasks for v in versions):
        return None
    with conn.errors(f"listing the predictions of project {project_id}"):
        preds = conn.request("GET", "api/predictions/", params={"project": project_id})
    return {(p["task"], p["model_version"]) for p in preds if p.get("model_version") in versions}


def _validate(interface: LabelInterface, pred: dict[str, Any], checked: dict[str, list[str]]) -> list[str]:
    """LabelInterface's check of a prediction, one result item at a time, each distinct item once.

    Label values repeat across thousands of drafts, so each choice (or taxonomy path) is checked
    on its own, once; free text differs every time but is checked for shape only.
    """
    errors: list[str] = []
    for item in pred["result"]:
        if item["type"] == "labels":  # an evidence highlight: its label is checked, once per label
            value = {"start": 0, "end": 1, "text": "x", "labels": item["value"]["labels"]}
            key = json.dumps([item["from_name"], value["labels"]])
            if key not in checked:
                probe = {"model_version": pred["model_version"], "score": pred["score"], "result": [{**item, "value": value}]}
                checked[key] = interface.validate_prediction(probe, return_errors=True)
            errors += checked[key]
            continue
        (kind, values), *more = item["value"].items()
        if more or not isinstance(values, list) or not values:
            return [f"{item['from_name']}: unexpected value {item['value']!r}"]
        parts = [["…"]] if kind == "text" else [[v] for v in values]  # each choice / path on its own
        for part in parts:
            value = {kind: part}
            key = json.dumps([item["from_name"], item["type"], value])
            if key not in checked:
                probe = {"model_version": pred["model_version"], "score": pred["score"], "result": [{**item, "value": value}]}
                checked[key] = interface.validate_prediction(probe, return_errors=True)
            errors += checked[key]
    return errors


def _import(conn: Connection, project_id: int, batch: list[dict[str, Any]], timeout: float, where: str) -> dict[int, str]:
    """Import one batch; returns the tasks whose predictions the server dropped (task id -> article id).

    Label Studio answers with how many tasks and predictions it made. A task count that differs
    is an error (re-running reconciles). A prediction count that differs means the server
    dropped predictions without saying so: the new tasks are listed to find which. Label Studio
    1.23 on SQLite does this when its bulk create meets "database is locked": it retries the
    create, but the first attempt has already taken the predictions out of the tasks, so the
    retry makes the tasks without them and answers 201 (tests/test_labelstudio_faults.py).
    """
    with conn.errors(f"importing {len(batch)} tasks into project {where}"):
        answer = conn.post_json(
            f"api/projects/{project_id}/import",
            batch,
            params={"return_task_ids": "true", "commit_to_project": "true"},
            timeout=timeout,
        )
    if not isinstance(answer, dict) or answer.get("task_count") != len(batch):
        made = answer.get("task_count") if isinstance(answer, dict) else None
        raise LabelStudioError(f"project {where}: the server made {made} tasks of {len(batch)} sent; re-run to reconcile")
    sent = [len(t.get("predictions") or []) for t in batch]
    if answer.get("prediction_count") == sum(sent):
        return {}
    ids = answer.get("task_ids") or []
    counts = {r.id: r.predictions for r in task_refs(conn, project_id, after=min(ids) - 1, upto=max(ids))} if ids else {}
    return {task_id: t["meta"]["article_id"] for t, task_id, n in zip(batch, ids, sent, strict=False) if counts.get(task_id, 0) < n}


def dropped_message(where: str, aids: list[str]) -> str:
    named = ", ".join(repr(a) for a in aids[:10]) + (f" and {len(aids) - 10} more" if len(aids) > 10 else "")
    return (
        f"project {where}: Label Studio dropped the predictions of {len(aids)} new tasks and did not take them when "
        f"sent again; articles without their draft: {named} (run the same push again to add them)"
    )


def _batches(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def push(
    conn: Connection,
    drafts: Iterable[Draft],
    articles: Mapping[str, Article],
    tax: Taxonomy,
    title: str,
    *,
    update_config: bool = False,
    batch_size: int = 500,
    blind_share: float = 0.0,
    blind_reviewers: int = 3,
    seed: str = "0",
    import_timeout: float = 600,
    stories: Mapping[str, Sequence[str]] | None = None,
    on_error: Callable[[str], None] | None = None,
    accepted: Mapping[str, bool] | None = None,
) -> PushResult:
    """Push drafts as tasks with predictions; see the module docstring for the guarantees.

    `stories` maps article ids to their story group (`annotator.stories`); the articles of a group
    found in `articles` are listed in each other's tasks. `accepted` (article id -> in the audit
    slice, from `annotator accept`): drafts accepted by a calibrated policy get no task, except the
    audit slice, which goes to blind review.
    """
    if not 3 <= len(title) <= 50 - len(BLIND_SUFFIX):
        raise LabelStudioError(
            f"project title {title!r}: use 3 to {50 - len(BLIND_SUFFIX)} characters (Label Studio allows 50, the blind companion adds {BLIND_SUFFIX!r})"
        )
    config = label_config(tax)
    interface = LabelInterface(config)
    problems: list[str] = []

    def problem(msg: str) -> None:
        problems.append(msg)
        if on_error:
            on_error(msg)

    # Latest draft per (article, model version); order of first appearance kept.
    versions_of: dict[str, dict[str, Draft]] = {}
    current_version = None
    for d in drafts:
        if d.article_id not in articles:
            problem(f"article {d.article_id!r}: not in the articles file, draft not pushed")
            continue
        versions_of.setdefault(d.article_id, {})[model_version(d)] = d
        current_version = model_version(d)

    project = ensure_project(
        conn, title, config, update_config, sampling=SAMPLING, show_collab_predictions=True, maximum_annotations=1
    )
    result = PushResult(project_id=project.id)
    blind_title = title + BLIND_SUFFIX
    blind_project = find_project(conn, blind_title)
    if blind_project is not None:
        blind_project = ensure_project(conn, blind_title, config, update_config)
        result.blind_project_id = blind_project.id
    # The tasks of this push's articles (and of their stories' other articles) as they are now.
    wanted = set(versions_of) | {m for aid in versions_of for m in (stories or {}).get(aid, ()) if m in articles}
    listed = {project.id: _holdings(conn, project, wanted)}
    if blind_project:
        listed[blind_project.id] = _holdings(conn, blind_project, wanted)
    known = {pid: by_article(h.refs) for pid, h in listed.items()}
    for pid, groups in known.items():
        twice = sum(1 for ts in groups.values() if len(ts) > 1)
        if twice:
            problem(
                f"project {pid}: {twice} of the articles pushed have more than one task (made before this push): "
                f"`annotator labelstudio check --project {title!r} --fix` removes the unreviewed copies"
            )
    assisted_tasks = {aid: ts[0].id for aid, ts in known[project.id].items()}
    n_assisted = listed[project.id].count
    blind_tasks = {aid: ts[0].id for aid, ts in known.get(blind_project.id if blind_project else -1, {}).items()}
    known_stories = {r.article_id: r.story for h in listed.values() for r in h.refs if r.article_id is not None and r.story}
    contexts = story_contexts(stories or {}, articles, known_stories)

    # Predictions: validated here, because the server accepts values that are not in the config.
    # Prepared lazily, batch by batch, so that preparing one batch overlaps importing the last.
    predictions: dict[str, list[dict[str, Any]]] = {}
    checked: dict[str, list[str]] = {}
    latest = {aid: list(versions.values())[-1] for aid, versions in versions_of.items()}
    flags = {aid: list(d.flags) + (["draft failed"] if d.error else []) for aid, d in latest.items()}
    result.failed_drafts = sum(1 for versions in versions_of.values() for d in versions.values() if d.error)

    def prepare(aid: str) -> list[dict[str, Any]]:
        if aid not in predictions:
            predictions[aid] = []
            for mv, d in versions_of[aid].items():
                if d.error:
                    continue
                bad = validate_labels(tax, d.labels)
                pred = {
                    "model_version": mv,
                    "score": score(tax, d),
                    "result": to_result(tax, d.labels, d.rationale, d.confidence)
                    + spans_to_result(tax, articles[aid].text, d.evidence),
                }
                bad += [] if bad else _validate(interface, pred, checked)
                # The link's choices differ per task (dynamic), so it is checked against the draft's own offer.
                pred["result"] += link_result(tax, drafted_link(tax, d))
                if bad:
                    problem(f"article {aid!r}, model {mv}: draft not pushed as a prediction: {bad[0]}")
                    flags[aid].append("draft invalid")
                    continue
                predictions[aid].append(pred)
        return predictions[aid]

    placed = {aid: False for aid in assisted_tasks} | {aid: True for aid in blind_tasks}
    accepted = accepted or {}
    skip = {aid for aid, audit in accepted.items() if not audit and aid in versions_of}
    result.auto_accepted = len(skip - placed.keys())
    result.accepted_in_review = len(skip & placed.keys())
    strata = {aid: (d.labels.get(tax.primary) if not d.error else None) for aid, d in latest.items() if aid not in skip}
    go_blind = assign_blind(strata, placed, blind_share, seed)  # type: ignore[arg-type]
    go_blind |= {aid for aid, audit in accepted.items() if audit and aid in versions_of}
    fresh = [aid for aid in versions_of if aid not in placed and aid not in skip]
    new_assisted = [aid for aid in fresh if aid not in go_blind]
    new_blind = [aid for aid in fresh if aid in go_blind]

    def assisted_task(aid: str) -> dict[str, Any]:
        preds = prepare(aid)
        return {
            "data": task_data(articles[aid], latest[aid], flags[aid], blind=False, story=contexts.get(aid),
                              options=link_options(tax, latest[aid])),
            "meta": task_meta(aid, contexts.get(aid)),
            "predictions": preds,
        }

    def blind_task(aid: str) -> dict[str, Any]:
        # Blind means blind: no flag at all (every flag was computed from, or about, the draft).
        # The incidents offered were retrieved, not chosen by the model: a blind task offers them too.
        return {"data": task_data(articles[aid], None, [], blind=True, story=contexts.get(aid),
                                  options=link_options(tax, latest[aid])),
                "meta": task_meta(aid, contexts.get(aid))}

    def run_imports(project_id: int, where: str, aids: list[str], build: Callable[[str], dict[str, Any]]) -> None:
        """Import in batches, building the next batch while the server imports the last; then
        remove the copies a push running at the same moment made of the same articles."""
        if not aids:
            return
        before = listed.get(project_id, Holdings())
        dropped: dict[int, str] = {}
        with ThreadPoolExecutor(max_workers=1) as pool:  # one import in flight: SQLite takes one writer
            pending = None
            for chunk in _batches(aids, batch_size):
                batch = [build(aid) for aid in chunk]
                if pending is not None:
                    dropped |= pending.result()
                pending = pool.submit(_import, conn, project_id, batch, import_timeout, where)
                result.created += len(batch)
            if pending is not None:
                dropped |= pending.result()
        with conn.errors(f"counting the tasks of project {where}"):
            now = conn.ls.projects.get(id=project_id).task_number
        if now == before.count + len(aids) and not dropped:
            return  # nobody else imported meanwhile: no copies to look for
        made = task_refs(conn, project_id, after=before.last_id)
        # The tasks read before the import may have been made after the mark too: one ref per id.
        older = {ts[0].id: ts[0] for ts in known.get(project_id, {}).values()}
        groups = by_article((older | {r.id: r for r in made}).values())
        remove, kept = removable(groups)
        result.duplicates_removed += remove_unannotated(conn, project_id, remove)[1]
        for aid, ids in kept.items():
            problem(f"article {aid!r}: annotated copies {ids[1:]} of task {ids[0]} in project {where} are kept: decide which counts")
        if dropped:
            repair_dropped(project_id, where, dropped, set(remove))

    def repair_dropped(project_id: int, where: str, dropped: dict[int, str], removed: set[int]) -> None:
        """Send the dropped predictions again to the tasks that are still there; name what still lacks one."""
        lo, hi = min(dropped) - 1, max(dropped)
        bare = {r.id for r in task_refs(conn, project_id, after=lo, upto=hi) if r.id in dropped and not r.predictions}
        again = [{**p, "task": tid} for tid in sorted(bare - removed) for p in predictions.get(dropped[tid], [])]
        if again:
            with conn.errors(f"adding {len(again)} dropped predictions again in project {where}"):
                conn.post_json(f"api/projects/{project_id}/import/predictions", again, timeout=import_timeout)
            result.predictions_resent += len(again)
            still = [r for r in task_refs(conn, project_id, after=lo, upto=hi) if r.id in bare and not r.predictions]
            if still:
                problem(dropped_message(where, sorted(dropped[r.id] for r in still)))

    run_imports(project.id, repr(title), new_assisted, assisted_task)
    if new_blind:
        if blind_project is None:
            blind_project = ensure_project(
                conn,
                blind_title,
                config,
                update_config,
                maximum_annotations=blind_reviewers,
                overlap_cohort_percentage=100,
                show_collab_predictions=False,
                sampling="Sequential sampling",
                show_overlap_first=True,
            )
            result.blind_project_id = blind_project.id
        before = result.created
        run_imports(blind_project.id, repr(blind_title), new_blind, blind_task)
        result.blind_created = result.created - before

    # New model versions on tasks that exist already (never on blind ones).
    for aid in versions_of:
        if aid in assisted_tasks:
            prepare(aid)
    versions = {p["model_version"] for ps in predictions.values() for p in ps}
    have = _existing_predictions(conn, project.id, versions, n_assisted) if assisted_tasks else set()
    extra = [
        {**p, "task": assisted_tasks[aid]}
        for aid, ps in predictions.items()
        if aid in assisted_tasks and have is not None
        for p in ps
        if (assisted_tasks[aid], p["model_version"]) not in have
    ]
    for batch in _batches(extra, batch_size):
        with conn.errors(f"adding {len(batch)} predictions to project {title!r}"):
            conn.post_json(f"api/projects/{project.id}/import/predictions", batch, timeout=import_timeout)
        result.predictions_added += len(batch)
    touched = {p["task"] for p in extra}
    result.unchanged = sum(1 for aid in versions_of if aid in placed and assisted_tasks.get(aid) not in touched)

    if current_version and (new_assisted or extra) and project.model_version != current_version:
        with conn.errors(f"setting the model version of project {title!r}"):
            conn.ls.projects.update(id=project.id, model_version=current_version)
    result.problems = problems
    return result


def push_files(
    conn: Connection,
    drafts_path: str | Path,
    articles_path: str | Path | None,
    tax: Taxonomy,
    title: str,
    on_error: Callable[[str], None] | None = None,
    accepted_path: str | Path | None = None,
    *,
    update_config: bool = False,
    batch_size: int = 500,
    blind_share: float = 0.0,
    blind_reviewers: int = 3,
    seed: str = "0",
    import_timeout: float = 600,
) -> PushResult:
    """`push` from files: the articles file defaults to articles.jsonl next to the drafts; the
    accepted file (from `annotator accept`), when given, takes accepted drafts out of review.
    The keyword options are `push`'s.

    Bad lines are reported (FILE:LINE) and skipped; the rest is pushed.
    """
    drafts_path = Path(drafts_path)
    articles_path = Path(articles_path) if articles_path else drafts_path.with_name("articles.jsonl")
    if not articles_path.is_file():
        raise LabelStudioError(f"{articles_path}: no articles file (drafts hold only article ids; give --articles)")
    bad: list[str] = []

    def report(exc: Exception) -> None:
        bad.append(str(exc))
        if on_error:
            on_error(str(exc))

    drafts = list(iter_jsonl(drafts_path, Draft, on_error=report))
    wanted = {d.article_id for d in drafts}
    # Stories over the whole articles file (one pass; its bad lines are reported by the next pass).
    groups = story_groups(iter_jsonl(articles_path, Article, on_error=lambda exc: None)).groups
    stories = {m: g for g in groups if wanted.intersection(g) for m in g}
    articles = {a.id: a for a in iter_jsonl(articles_path, Article, on_error=report) if a.id in stories}
    accepted = None
    if accepted_path:
        accepted = {a.article_id: a.audit for a in iter_jsonl(accepted_path, Acceptance, on_error=report)}
    result = push(
        conn, drafts, articles, tax, title, on_error=on_error, stories=stories, accepted=accepted,
        update_config=update_config, batch_size=batch_size, blind_share=blind_share,
        blind_reviewers=blind_reviewers, seed=seed, import_timeout=import_timeout,
    )
    result.problems = bad + result.problems
    return result
