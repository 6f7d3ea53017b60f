"""Pull reviews out of Label Studio: one `Review` per annotation, through the export API.

The blind companion project ("<title> (blind)") is pulled with the main one; its reviews carry
`blind: true`. Values that are no longer in the taxonomy are reported one line each and left out
of the labels, never dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from annotator.errors import LabelStudioError
from annotator.labelstudio.client import Connection, find_project
from annotator.labelstudio.config import from_result, story_request
from annotator.labelstudio.push import BLIND_SUFFIX, _list_tasks
from annotator.records import Review
from annotator.stories import applied_reviews
from annotator.taxonomy import Taxonomy

EXPORT_OPTIONS: dict[str, Any] = {"timeout_in_seconds": 900}
_IDS_PER_EXPORT = 500


class PullResult(BaseModel):
    reviews: list[Review] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        blind = sum(r.blind for r in self.reviews)
        skipped = sum(r.skipped for r in self.reviews)
        return f"{len(self.reviews)} reviews ({blind} blind, {skipped} skipped), {len(self.problems)} problems"


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
    on_problem: Callable[[str], None] | None = None,
) -> Iterable[Review]:
    """Reviews from exported tasks (the JSON export format); pure apart from `on_problem`."""
    for task in tasks:
        data = task.get("data") or {}
        aid = data.get("article_id")
        for ann in task.get("annotations") or []:
            updated = ann.get("updated_at") or ann.get("created_at")
            if since and updated and _when(updated) <= _when(since):
                continue
            who = ann.get("completed_by")
            uid = who.get("id") if isinstance(who, dict) else who
            annotator = (who.get("email") if isinstance(who, dict) else None) or users.get(uid, str(uid))  # type: ignore[arg-type]
            where = f"task {task.get('id')} annotation {ann.get('id')} ({annotator})"
            if aid is None:
                if on_problem:
                    on_problem(f"{where}: task has no article_id in its data, not ours: skipped")
                continue
            labels, rationale, problems = from_result(tax, ann.get("result") or [])
            apply, except_ids = story_request(ann.get("result") or [])
            for p in problems:
                if on_problem:
                    on_problem(f"article {aid!r} {where}: {p}")
            pred = ann.get("prediction") or {}
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
                annotation_id=ann.get("id"),
                project_id=task.get("project"),
                **({"story_apply": True, "story_except": except_ids} if apply and not ann.get("was_cancelled") else {}),
            )


def _changed_task_ids(conn: Connection, project_id: int, since: str) -> list[int]:
    """Ids of tasks updated since `since` (the server bumps a task's updated_at on annotation)."""
    query = {
        "filters": {
            "conjunction": "and",
            "items": [{"filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime", "value": since}],
        }
    }
    with conn.errors(f"listing tasks changed since {since}"):
        pager = conn.ls.tasks.list(project=project_id, include="id", fields="task_only", page_size=1000, query=json.dumps(query))
        return [t.id for t in pager]


def export_tasks(conn: Connection, project_id: int, since: str | None = None) -> list[dict[str, Any]]:
    """The project's annotated tasks in Label Studio's JSON export (with --since: only changed ones)."""
    chunks: list[list[int] | None] = [None]
    if since:
        ids = _changed_task_ids(conn, project_id, since)
        chunks = [ids[i : i + _IDS_PER_EXPORT] for i in range(0, len(ids), _IDS_PER_EXPORT)]
    tasks: list[dict[str, Any]] = []
    for chunk in chunks:
        options = dict(EXPORT_OPTIONS)
        if chunk is not None:  # the SDK's `ids=` is broken against 1.23
            options["additional_query_parameters"] = {"ids[]": chunk}
        with conn.errors(f"exporting project {project_id}"):
            raw = b"".join(conn.ls.projects.exports.download_sync(id=project_id, export_type="JSON", request_options=options))
        try:
            tasks.extend(json.loads(raw))
        except ValueError:
            raise LabelStudioError(f"the export of project {project_id} is not JSON: {raw[:120]!r}") from None
    return tasks


def users_by_id(conn: Connection) -> dict[int, str]:
    with conn.errors("listing users"):
        return {u.id: (u.email or u.username or str(u.id)) for u in conn.ls.users.list()}


def pull(
    conn: Connection,
    tax: Taxonomy,
    title: str,
    *,
    since: str | None = None,
    on_problem: Callable[[str], None] | None = None,
) -> PullResult:
    """Every annotation of the project and of its blind companion, as Review records."""
    if since:  # the format the Data Manager's date filter parses
        since = _when(since).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    project = find_project(conn, title)
    if project is None:
        raise LabelStudioError(f"no project titled {title!r} in Label Studio at {conn.url}")
    blind_project = find_project(conn, title + BLIND_SUFFIX)
    users = users_by_id(conn)
    result = PullResult()

    def problem(msg: str) -> None:
        result.problems.append(msg)
        if on_problem:
            on_problem(msg)

    for p, blind in ((project, False), (blind_project, True)):
        if p is None:
            continue
        tasks = export_tasks(conn, p.id, since)
        result.reviews.extend(reviews_from_export(tax, tasks, users, blind=blind, since=since, on_problem=problem))
    if any((r.model_extra or {}).get("story_apply") for r in result.reviews):
        story_of: dict[str, str] = {}
        task_of, _ = _list_tasks(conn, project.id, story_of)  # assisted tasks only: blind ones are labelled alone
        result.reviews.extend(applied_reviews(result.reviews, story_of, task_of))
    return result
