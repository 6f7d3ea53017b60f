"""Tasks by article id: listing them page by page, finding duplicates, removing unreviewed ones.

Label Studio has no unique key on task data, so two pushes of the same drafts at the same moment
can each import an article. Every task carries its article id (in `meta` and `data`); the rule
for which task of an article is *the* task is the same everywhere: the oldest (lowest id). A
duplicate is removed only while it holds no annotation, so reviewed work is never touched, and
two processes applying the rule at once agree on what to keep.

Listing uses the Data Manager API with keyset pages (`id > last`, ordered by id, always page 1):
Label Studio recounts the whole filtered set on every page, so numbered pages over a large
project cost more and more, while a shrinking `id > last` set does not.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from annotator.labelstudio.client import Connection

PAGE = 1000
_COUNTS = "id,meta,total_annotations,cancelled_annotations,total_predictions"


class TaskRef(NamedTuple):
    id: int
    article_id: str | None
    annotations: int  # submitted and skipped
    predictions: int
    story: str | None = None  # the story id push keeps in meta


LOOKUP = 200  # article ids per lookup request: they travel in the query string


def _query(after: int, upto: int | None = None, more: Iterable[dict[str, Any]] = (), newest_first: bool = False) -> str:
    items = [{"filter": "filter:tasks:id", "operator": "greater", "type": "Number", "value": after}]
    if upto is not None:
        items.append({"filter": "filter:tasks:id", "operator": "less_or_equal", "type": "Number", "value": upto})
    items += list(more)
    order = "-tasks:id" if newest_first else "tasks:id"
    return json.dumps({"filters": {"conjunction": "and", "items": items}, "ordering": [order]})


def pages(
    conn: Connection,
    project_id: int,
    *,
    include: str = _COUNTS,
    fields: str = "task_only",
    after: int = 0,
    upto: int | None = None,
    filters: Iterable[dict[str, Any]] = (),
    page_size: int = PAGE,
) -> Iterator[list[dict[str, Any]]]:
    """The project's tasks with id in (after, upto], one page (a list of task dicts) at a time."""
    filters = list(filters)
    while True:
        params = {
            "project": project_id,
            "page": 1,
            "page_size": page_size,
            "fields": fields,
            "query": _query(after, upto, filters),
        }
        if include:
            params["include"] = include
        answer = conn.request("GET", "api/tasks", params=params)
        page = answer.get("tasks") or [] if isinstance(answer, dict) else []
        if not page:
            return
        yield page
        if len(page) < page_size:
            return
        after = page[-1]["id"]


def _ref(t: dict[str, Any]) -> TaskRef:
    aid = (t.get("meta") or {}).get("article_id")
    if aid is None:
        aid = (t.get("data") or {}).get("article_id")
    return TaskRef(
        id=t["id"],
        article_id=None if aid is None else str(aid),
        annotations=(t.get("total_annotations") or 0) + (t.get("cancelled_annotations") or 0),
        predictions=t.get("total_predictions") or 0,
        story=(t.get("meta") or {}).get("story"),
    )


def task_refs(conn: Connection, project_id: int, after: int = 0, upto: int | None = None) -> list[TaskRef]:
    """Every task (id, article id, counts) with id in (after, upto], oldest first.

    The article id sits in task `meta` as well as `data`, so the listing need not carry every
    article text; tasks whose meta lacks it (made by other tools) are looked up in `data`.
    """
    with conn.errors(f"listing the tasks of project {project_id}"):
        return _listed(conn, project_id, after=after, upto=upto)


def _listed(conn: Connection, project_id: int, **where: Any) -> list[TaskRef]:
    """The refs of the tasks `pages(**where)` gives; article ids missing from meta read from data."""
    refs = [_ref(t) for page in pages(conn, project_id, **where) for t in page]
    if any(r.article_id is None for r in refs):
        found = {t["id"]: (t.get("data") or {}).get("article_id") for page in pages(conn, project_id, include="id,data", **where) for t in page}
        refs = [r if r.article_id is not None or found.get(r.id) is None else r._replace(article_id=str(found[r.id])) for r in refs]
    return refs


def task_refs_of(conn: Connection, project_id: int, ids: Iterable[str], chunk: int = LOOKUP, by: str = "article_id") -> list[TaskRef]:
    """The tasks (id, article id, counts) whose `data.article_id` (or `data.<by>`, e.g. `story_id`) is
    one of `ids`, oldest first.

    One Data Manager request per `chunk` ids (the `in_list` filter), so a push of a few hundred
    drafts into a project of 100,000 tasks does not list the 100,000: the server still reads
    every task's data to filter (no index on it), but sends back only the matches.
    """
    wanted = sorted(set(ids))
    refs: list[TaskRef] = []
    with conn.errors(f"looking up {len(wanted)} {by.replace('_', ' ')}s in project {project_id}"):
        for i in range(0, len(wanted), chunk):
            match = {"filter": f"filter:tasks:data.{by}", "operator": "in_list", "type": "String", "value": wanted[i : i + chunk]}
            refs += _listed(conn, project_id, filters=[match])
    return sorted(refs, key=lambda r: r.id)


def last_task_id(conn: Connection, project_id: int) -> int:
    """The highest task id of the project (0 when empty): tasks made later have higher ids."""
    params = {"project": project_id, "page": 1, "page_size": 1, "fields": "task_only", "include": "id",
              "query": _query(0, newest_first=True)}
    with conn.errors(f"reading the newest task of project {project_id}"):
        answer = conn.request("GET", "api/tasks", params=params)
    page = answer.get("tasks") or [] if isinstance(answer, dict) else []
    return int(page[0]["id"]) if page else 0


def by_article(refs: Iterable[TaskRef]) -> dict[str, list[TaskRef]]:
    """article id -> its tasks, oldest first (tasks without an article id are left out)."""
    out: dict[str, list[TaskRef]] = defaultdict(list)
    for r in sorted(refs, key=lambda r: r.id):
        if r.article_id is not None:
            out[r.article_id].append(r)
    return dict(out)


def removable(groups: dict[str, list[TaskRef]]) -> tuple[list[int], dict[str, list[int]]]:
    """(tasks to remove, article -> [oldest task, annotated copies kept]) under the oldest-task rule.

    The oldest task of an article is kept; a younger one is removed when it holds no annotation.
    Annotated duplicates are kept and reported: someone has to decide which review counts.
    """
    remove: list[int] = []
    kept: dict[str, list[int]] = {}
    for aid, tasks in groups.items():
        if len(tasks) < 2:
            continue
        for t in tasks[1:]:
            if t.annotations:
                kept.setdefault(aid, [tasks[0].id]).append(t.id)
            else:
                remove.append(t.id)
    return remove, kept


def remove_unannotated(conn: Connection, project_id: int, ids: list[int]) -> tuple[list[int], int]:
    """Delete these tasks unless one got an annotation meanwhile (re-read right before).

    Returns (the ids asked to be removed, how many the server removed): two processes removing
    the same duplicate at once each ask, and only one removes it.
    """
    if not ids:
        return [], 0
    wanted = set(ids)
    lo, hi = min(ids) - 1, max(ids)
    with conn.errors(f"re-reading tasks of project {project_id} before removing duplicates"):
        fresh = [_ref(t) for page in pages(conn, project_id, after=lo, upto=hi) for t in page]
    ids = sorted(r.id for r in fresh if r.id in wanted and not r.annotations)
    done = 0
    for i in range(0, len(ids), PAGE):
        chunk = ids[i : i + PAGE]
        with conn.errors(f"removing {len(chunk)} duplicate tasks from project {project_id}"):
            answer = conn.request(
                "POST",
                "api/dm/actions",
                params={"id": "delete_tasks", "project": project_id},
                json={"project": project_id, "selectedItems": {"all": False, "included": chunk}},
            )
        done += int(answer.get("processed_items") or 0) if isinstance(answer, dict) else 0
    return ids, done
