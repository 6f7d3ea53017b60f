"""Annotators as Label Studio users, and posting reviews as them (the demo and the tests).

The community edition adds a user to the organisation through its invite link, a browser-style
sign-up form; that also yields the user's own token, which `/api/projects/{id}/next` needs (the
server picks the next task per user). An admin may then post annotations for any member with
`completed_by`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

import httpx
from pydantic import BaseModel

from annotator.errors import LabelStudioError
from annotator.labelstudio.client import Connection, project_and_blind
from annotator.labelstudio.config import to_result
from annotator.labelstudio.push import existing_tasks
from annotator.records import Review
from annotator.taxonomy import Taxonomy


class Annotator(BaseModel):
    id: int
    email: str
    token: str | None = None  # only known for users made here
    password: str | None = None


def ensure_annotator(conn: Connection, email: str) -> Annotator:
    """The organisation member with this email, signed up through the invite link if new."""
    if "@" not in email:
        raise LabelStudioError(f"annotator {email!r}: Label Studio users are emails (e.g. {email}@example.org)")
    with conn.errors("listing users"):
        for u in conn.ls.users.list():
            if u.email == email:
                return Annotator(id=u.id, email=email)
    invite = conn.request("GET", "api/invite")["invite_url"]
    password = secrets.token_urlsafe(12)
    with httpx.Client(base_url=conn.url, follow_redirects=True, timeout=60) as web, conn.errors(f"signing up {email}"):
        page = web.get(invite)
        page.raise_for_status()
        form = {"email": email, "password": password, "csrfmiddlewaretoken": web.cookies.get("csrftoken", "")}
        web.post(str(page.url), data=form, headers={"Referer": str(page.url)}).raise_for_status()
        me = web.get("/api/current-user/whoami")
        if me.status_code != 200 or me.json().get("email") != email:
            raise LabelStudioError(f"could not sign up annotator {email} through the invite link (HTTP {me.status_code})")
        token = web.get("/api/current-user/token").json()["token"]
        return Annotator(id=me.json()["id"], email=email, token=token, password=password)


def annotation_payload(tax: Taxonomy, review: Review, user_id: int, parent_prediction: int | None) -> dict[str, Any]:
    return {
        "result": [] if review.skipped else to_result(tax, review.labels, review.rationale),
        "completed_by": user_id,
        "was_cancelled": review.skipped,
        "lead_time": review.lead_time_s,
        "parent_prediction": parent_prediction,
    }


def post_reviews(conn: Connection, tax: Taxonomy, title: str, reviews: Iterable[Review]) -> list[int]:
    """Post each review as an annotation by its annotator (made a member if needed); annotation ids.

    The task is found by article id in the project or its blind companion; an assisted review
    with a `model_version` starts from that prediction (`parent_prediction`), as a Submit in the
    browser would.
    """
    project, blind_project = project_and_blind(conn, title)
    tasks = existing_tasks(conn, project.id)
    blind_tasks = existing_tasks(conn, blind_project.id) if blind_project else {}
    users: dict[str, Annotator] = {}
    predictions: dict[tuple[int, str], int] = {}
    for p in conn.request("GET", "api/predictions/", params={"project": project.id}):
        predictions[(p["task"], p["model_version"])] = p["id"]
    ids = []
    for r in reviews:
        task_id = blind_tasks.get(r.article_id) or tasks.get(r.article_id)
        if task_id is None:
            raise LabelStudioError(f"article {r.article_id!r}: no task in project {title!r}")
        if r.annotator not in users:
            users[r.annotator] = ensure_annotator(conn, r.annotator)
        parent = None if r.article_id in blind_tasks else predictions.get((task_id, r.model_version or ""))
        body = annotation_payload(tax, r, users[r.annotator].id, parent)
        ids.append(conn.request("POST", f"api/tasks/{task_id}/annotations/", json=body)["id"])
    return ids
