"""`annotator labelstudio check`: what is wrong with a project, and repairing what is safe to repair.

Reports articles with more than one task, assisted tasks without the prediction they should
carry (a failed or invalid draft is flagged and carries none on purpose), blind tasks that carry
a prediction (their reviews would no longer be blind), articles in both the project and its
blind companion, and projects sharing a title. `fix` removes only duplicate tasks that hold no
annotation (the oldest task of an article stays, see `tasks`); annotated work is never touched.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from annotator.labelstudio.client import BLIND_SUFFIX, Connection, projects_titled
from annotator.labelstudio.tasks import by_article, pages, removable, remove_unannotated, task_refs

_NO_DRAFT_ON_PURPOSE = ("draft failed", "draft invalid")


class ProjectCheck(BaseModel):
    project_id: int
    title: str
    blind: bool
    tasks: int = 0
    duplicates: dict[str, list[int]] = Field(default_factory=dict)  # article -> its task ids, oldest first
    missing_prediction: list[str] = Field(default_factory=list)  # article ids
    blind_with_prediction: list[str] = Field(default_factory=list)
    removed: list[int] = Field(default_factory=list)  # by fix
    kept_annotated: dict[str, list[int]] = Field(default_factory=dict)  # annotated duplicates, never removed

    def where(self) -> str:
        return f"project {self.project_id} {self.title!r}"

    def left(self) -> list[str]:
        """Articles that still have more than one task (after a fix, if there was one)."""
        gone = set(self.removed)
        return [a for a, ids in self.duplicates.items() if len([i for i in ids if i not in gone]) > 1]


class CheckReport(BaseModel):
    title: str
    projects: list[ProjectCheck] = Field(default_factory=list)
    shared_titles: dict[str, list[int]] = Field(default_factory=dict)  # title -> project ids
    in_both: list[str] = Field(default_factory=list)  # articles in the project and its blind companion

    @property
    def ok(self) -> bool:
        """Nothing left to repair (after a fix: what the fix removed no longer counts)."""
        return not (
            self.shared_titles
            or self.in_both
            or any(p.missing_prediction or p.blind_with_prediction or p.kept_annotated for p in self.projects)
            or any(p.left() for p in self.projects)
        )

    def lines(self) -> list[str]:
        """One line per finding, the articles named (the first ten of a long list)."""
        out = []
        for title, ids in self.shared_titles.items():
            out.append(f"{len(ids)} projects are titled {title!r} (ids {', '.join(map(str, ids))}): keep one")
        for p in self.projects:
            where = p.where()
            out.append(f"{where}: {p.tasks} tasks")
            if p.duplicates:
                left = p.left()
                out.append(f"{where}: {len(p.duplicates)} articles have more than one task: {_some(p.duplicates)}")
                if p.removed:
                    out.append(f"{where}: removed {len(p.removed)} duplicate tasks that held no annotation; {len(left)} articles still have more than one")
                elif left:
                    out.append(f"{where}: `--fix` removes the copies that hold no annotation")
            for aid, ids in p.kept_annotated.items():
                out.append(f"{where}: article {aid!r}: annotated copies {ids[1:]} of task {ids[0]} are kept: decide which task counts, then delete the others")
            if p.missing_prediction:
                out.append(f"{where}: {len(p.missing_prediction)} tasks lack their draft's prediction: {_some(p.missing_prediction)} (push the drafts again to add it)")
            if p.blind_with_prediction:
                out.append(f"{where}: {len(p.blind_with_prediction)} blind tasks carry a prediction: {_some(p.blind_with_prediction)} (their reviews are not blind)")
        if self.in_both:
            out.append(f"{len(self.in_both)} articles are in both {self.title!r} and its blind companion: {_some(self.in_both)}")
        return out


def _some(items) -> str:
    items = list(items)
    return ", ".join(repr(a) for a in items[:10]) + (f" and {len(items) - 10} more" if len(items) > 10 else "")


def _flags_of_unpredicted(conn: Connection, project_id: int) -> dict[int, tuple[str | None, str]]:
    """task id -> (article id, flags) of the tasks with no prediction (their data says why)."""
    none = [{"filter": "filter:tasks:total_predictions", "operator": "equal", "type": "Number", "value": 0}]
    with conn.errors(f"listing the tasks of project {project_id} without a prediction"):
        return {
            t["id"]: ((t.get("data") or {}).get("article_id"), str((t.get("data") or {}).get("flags") or ""))
            for page in pages(conn, project_id, include="id,data", filters=none)
            for t in page
        }


def check(conn: Connection, title: str, fix: bool = False) -> CheckReport:
    """Check the project titled `title` and its blind companion; with `fix`, remove unannotated duplicates."""
    report = CheckReport(title=title)
    articles: dict[bool, set[str]] = {False: set(), True: set()}
    for name, blind in ((title, False), (title + BLIND_SUFFIX, True)):
        found = projects_titled(conn, name)
        if len(found) > 1:
            report.shared_titles[name] = [p.id for p in found]
        for project in found:
            refs = task_refs(conn, project.id)
            groups = by_article(refs)
            articles[blind] |= set(groups)
            pc = ProjectCheck(project_id=project.id, title=name, blind=blind, tasks=len(refs))
            pc.duplicates = {aid: [t.id for t in ts] for aid, ts in groups.items() if len(ts) > 1}
            if blind:
                pc.blind_with_prediction = sorted({r.article_id or str(r.id) for r in refs if r.predictions})
            elif any(not r.predictions for r in refs):
                unpredicted = _flags_of_unpredicted(conn, project.id)
                pc.missing_prediction = sorted(
                    str(aid or tid) for tid, (aid, flags) in unpredicted.items() if not any(f in flags for f in _NO_DRAFT_ON_PURPOSE)
                )
            remove, pc.kept_annotated = removable(groups)
            if fix:
                pc.removed = remove_unannotated(conn, project.id, remove)[0]
            report.projects.append(pc)
    report.in_both = sorted(articles[False] & articles[True])
    return report
