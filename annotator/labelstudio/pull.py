"""Pull reviews out of Label Studio: one `Review` per annotation, streamed a page of tasks at a time.

The blind companion project ("<title> (blind)") is pulled with the main one; its reviews carry
`blind: true`. Values that are no longer in the taxonomy are reported one line each and left out
of the labels, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from annotator.errors import LabelStudioError
from annotator.labelstudio.client import Connection, project_and_blind
from annotator.labelstudio.config import from_result, link_choice, spans_from_result, story_request
from annotator.labelstudio.tasks import LOOKUP, by_article, pages, task_refs_of
from annotator.records import Review
from annotator.stories import applied_reviews
from annotator.taxonomy import Taxonomy

PULL_PAGE = 500  # tasks per page: the memory a pull holds
# The fields a review needs; `include` names them at every level (task, annotation, prediction),
# and leaving out the Data Manager's computed columns saves time on every page.
_PULL_FIELDS = (
    "id,project,data,annotations,predictions,result,completed_by,was_cancelled,lead_time,updated_at,created_at,"
    "parent_prediction,model_version"
)


class PullResult(BaseModel):
    reviews: list[Review] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    counted: dict[str, int] = Field(default_factory=dict)  # totals of streamed reviews not kept in `reviews`

    @property
    def ok(self) -> bool:
        return not self.problems

    def count(self, r: Review) -> None:
        for key, yes in (("reviews", True), ("blind", r.blind), ("skipped", r.skipped)):
            self.counted[key] = self.counted.get(key, 0) + int(yes)

    def describe(self) -> str:
        n = self.counted.get("reviews", 0) + len(self.reviews)
        blind = self.counted.get("blind", 0) + sum(r.blind for r in self.reviews)
        skipped = self.counted.get("skipped", 0) + sum(r.skipped for r in self.reviews)
        return f"{n} reviews ({blind} blind, {skipped} skipped), {len(self.problems)} problems"


def _when(stamp: str) -> datetime:
    try:
        t = datetime.fromisoformat(stamp)
    except ValueError:
        raise LabelStudioError(f"not an ISO date-time: {stamp!r} (e.g. 2025-05-01T12:00:00Z)") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def reviews_from_export(
    tax: Taxonomy,
    tasks: Iterable[Mapping[str, Any]],
    users: Mapping[int, str],
    *,
    blind: bool,
    since: str | None = None,
    on_error: Callable[[str], None] | None = None,
) -> Iterable[Review]:
    """Reviews from tasks in the JSON export's shape (or task pages); pure apart from `on_error`."""
    for task in tasks:
        data = task.get("data") or {}
        aid = data.get("article_id")
        # The export gives each annotation a snapshot of its prediction; task pages give the id.
        shown = {p.get("id"): p for p in task.get("predictions") or [] if isinstance(p, dict)}
        for ann in task.get("annotations") or []:
            updated = ann.get("updated_at") or ann.get("created_at")
            if since and updated and _when(updated) <= _when(since):
                continue
            who = ann.get("completed_by")
            uid = who.get("id") if isinstance(who, dict) else who
            annotator = (who.get("email") if isinstance(who, dict) else None) or users.get(uid, str(uid))  # type: ignore[arg-type]
            where = f"task {task.get('id')} annotation {ann.get('id')} ({annotator})"
            if aid is None:
                if on_error:
                    on_error(f"{where}: task has no article_id in its data, not ours: skipped")
                continue
            labels, rationale, problems = from_result(tax, ann.get("result") or [])
            apply, except_ids = story_request(ann.get("result") or [])
            link = link_choice(tax, ann.get("result") or [])
            evidence = spans_from_result(tax, str(data.get("text") or ""), ann.get("result") or [])
            for p in problems:
                if on_error:
                    on_error(f"article {aid!r} {where}: {p}")
            pred = ann.get("prediction") or shown.get(ann.get("parent_prediction")) or {}
            accepted = None
            if pred.get("result") is not None and not ann.get("was_cancelled"):
                p_labels, p_rationale, _ = from_result(tax, pred["result"])
                accepted = (p_labels, p_rationale or None) == (labels, rationale or None)
            yield Review(
                article_id=str(aid),
                task_id=task.get("id"),
                annotator=annotator,
                labels=labels,
                rationale=rationale,
                model_version=pred.get("model_version"),
                accepted_as_is=accepted,
                lead_time_s=ann.get("lead_time"),
                skipped=bool(ann.get("was_cancelled")),
                blind=blind or bool(data.get("blind")),
                updated_at=updated,
                evidence=evidence,
                annotation_id=ann.get("id"),
                project_id=task.get("project"),
                **({"story_apply": True, "story_except": except_ids} if apply and not ann.get("was_cancelled") else {}),
                **({tax.link.name: link} if tax.link is not None and link is not None else {}),
            )


def annotated_pages(
    conn: Connection, project_id: int, since: str | None = None, page_size: int = PULL_PAGE,
    articles: Sequence[str] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """The project's tasks that hold an annotation (or a skip), a page at a time, oldest first.

    The Data Manager's task pages carry each task's annotations in the export's shape (the
    annotator, the result, the prediction it started from), so a pull holds one page in memory
    however large the project is; Label Studio's JSON export would build the whole file first.
    With `since`, only tasks updated after it (an annotation added or edited bumps the task).
    With `articles`, only the tasks of these article ids (looked up `LOOKUP` ids a request).
    """
    changed = [{"filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime", "value": since}] if since else []
    submitted = {"filter": "filter:tasks:total_annotations", "operator": "greater", "type": "Number", "value": 0}
    only_skipped = [
        {"filter": "filter:tasks:total_annotations", "operator": "equal", "type": "Number", "value": 0},
        {"filter": "filter:tasks:cancelled_annotations", "operator": "greater", "type": "Number", "value": 0},
    ]
    wanted = sorted(set(articles)) if articles is not None else None
    chunks = [[]] if wanted is None else [
        [{"filter": "filter:tasks:data.article_id", "operator": "in_list", "type": "String", "value": wanted[i : i + LOOKUP]}]
        for i in range(0, len(wanted), LOOKUP)]
    with conn.errors(f"reading the annotated tasks of project {project_id}"):
        for match in chunks:
            for filters in ([*changed, *match, submitted], [*changed, *match, *only_skipped]):
                yield from pages(conn, project_id, include=_PULL_FIELDS, fields="all", filters=filters, page_size=page_size)


def users_by_id(conn: Connection) -> dict[int, str]:
    with conn.errors("listing users"):
        return {u.id: (u.email or u.username or str(u.id)) for u in conn.ls.users.list()}


def iter_pull(
    conn: Connection,
    tax: Taxonomy,
    title: str,
    *,
    since: str | None = None,
    on_error: Callable[[str], None] | None = None,
    page_size: int = PULL_PAGE,
) -> Iterator[Review]:
    """Every annotation of the project and of its blind companion, as Review records, streamed."""
    if since:  # the format the Data Manager's date filter parses
        since = _when(since).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    project, blind_project = project_and_blind(conn, title)
    users = users_by_id(conn)
    projects = [(p, blind) for p, blind in ((project, False), (blind_project, True)) if p is not None]
    # Story-wide reviews are kept to the end (what they apply needs the whole story); nothing
    # else is, so the memory a pull holds stays about a page whatever the project's size.
    # Blind and skipped reviews apply nothing (`applied_reviews`).
    story_wide: list[Review] = []
    for p, blind in projects:
        for page in annotated_pages(conn, p.id, since, page_size):
            for r in reviews_from_export(tax, page, users, blind=blind, since=since, on_error=on_error):
                if (r.model_extra or {}).get("story_apply") and not (r.blind or r.skipped):
                    story_wide.append(r)
                yield r
    if story_wide:
        # Their stories' tasks, looked up by id, not by listing the project: the stories of the
        # reviewed articles, then every task of those stories (assisted tasks only: blind ones are
        # labelled alone).
        stories = {t.story for t in task_refs_of(conn, project.id, {r.article_id for r in story_wide}) if t.story}
        tasks = by_article(task_refs_of(conn, project.id, stories, by="story_id"))
        task_of = {aid: ts[0].id for aid, ts in tasks.items()}
        story_of = {aid: ts[0].story for aid, ts in tasks.items() if ts[0].story}
        members = list(story_of)
        # A reviewer's own review of a story's article wins over one applied to it: read again
        # the reviews of those articles only (a second, filtered pass over the same tasks).
        reviewed = {(r.annotator, r.article_id)
                    for p, blind in projects
                    for page in annotated_pages(conn, p.id, since, page_size, articles=members)
                    for r in reviews_from_export(tax, page, users, blind=blind, since=since)}
        yield from applied_reviews(story_wide, story_of, task_of, reviewed=reviewed)


def pull(
    conn: Connection,
    tax: Taxonomy,
    title: str,
    *,
    since: str | None = None,
    on_error: Callable[[str], None] | None = None,
    page_size: int = PULL_PAGE,
) -> PullResult:
    """`iter_pull` collected in memory (for callers that want the list; the CLI streams)."""
    result = PullResult()

    def problem(msg: str) -> None:
        result.problems.append(msg)
        if on_error:
            on_error(msg)

    result.reviews.extend(iter_pull(conn, tax, title, since=since, on_error=problem, page_size=page_size))
    return result
