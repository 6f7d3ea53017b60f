"""Connecting to Label Studio and turning its failures into one-line `LabelStudioError`s."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from annotator.errors import LabelStudioError
from annotator.records import utf8_json

IMPORT_OPTIONS: dict[str, Any] = {"max_retries": 0, "timeout_in_seconds": 600}  # an import retried is an import applied twice
# A project's blind slice (anchoring control) lives in a companion project with this title suffix.
BLIND_SUFFIX = " (blind)"


@contextlib.contextmanager
def errors(url: str, doing: str) -> Iterator[None]:
    """Translate SDK and transport errors into a message that says what to do."""
    try:
        yield
    except ApiError as exc:
        if exc.status_code in (401, 403):
            raise LabelStudioError(
                f"Label Studio at {url} refused the API key while {doing}: check LABEL_STUDIO_API_KEY"
            ) from None
        body = exc.body if isinstance(exc.body, str | dict) else ""
        detail = (body.get("detail") or body.get("validation_errors") or body) if isinstance(body, dict) else body
        raise LabelStudioError(f"Label Studio answered {exc.status_code} while {doing}: {str(detail)[:300]}") from None
    except httpx.TimeoutException:
        raise LabelStudioError(
            f"Label Studio at {url} timed out while {doing}; what was done so far is kept, run the same command again to finish"
        ) from None
    except httpx.TransportError as exc:
        raise LabelStudioError(
            f"cannot reach Label Studio at {url} while {doing} ({type(exc).__name__}): is it running? (`annotator labelstudio up`)"
        ) from None


class Connection:
    """An SDK client plus the URL, so messages can name the server."""

    def __init__(self, url: str, api_key: str, timeout: float = 120) -> None:
        self.url = url.rstrip("/")
        self.ls = LabelStudio(base_url=self.url, api_key=api_key, timeout=timeout)
        self.api_key = api_key

    def errors(self, doing: str) -> contextlib.AbstractContextManager[None]:
        return errors(self.url, doing)

    def request(self, method: str, path: str, **kw: Any) -> Any:
        """A raw REST call for what the SDK does not cover (or covers wrongly)."""
        with self.errors(f"{method} {path}"):
            resp = self.ls._client_wrapper.httpx_client.request(path.lstrip("/"), method=method, **kw)
            if resp.status_code >= 400:
                raise ApiError(status_code=resp.status_code, body=_body(resp), headers=dict(resp.headers))
            return _body(resp)

    def post_json(self, path: str, payload: Any, params: dict[str, Any] | None = None, timeout: float = 600) -> Any:
        """POST pre-encoded JSON, never retried: for imports, where a retry applies it twice.

        The SDK's typed import walks every value through its generic encoder, which costs as much
        client time as the server spends on a large batch; plain `json.dumps` does not.
        """
        with self.errors(f"POST {path}"):
            resp = self.ls._client_wrapper.httpx_client.request(
                path.lstrip("/"),
                method="POST",
                params=params,
                content=utf8_json(payload).encode(),  # a lone surrogate as U+FFFD: it has no UTF-8 form
                headers={"Content-Type": "application/json"},
                request_options={**IMPORT_OPTIONS, "timeout_in_seconds": timeout},
            )
            if resp.status_code >= 400:
                raise ApiError(status_code=resp.status_code, body=_body(resp), headers=dict(resp.headers))
            return _body(resp)


def _body(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text


def connect(url: str | None = None, api_key: str | None = None) -> Connection:
    """A checked connection: from arguments, else LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY."""
    url = url or os.environ.get("LABEL_STUDIO_URL")
    api_key = api_key or os.environ.get("LABEL_STUDIO_API_KEY")
    if not url or not api_key:
        raise LabelStudioError(
            "set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY (a local server: `annotator labelstudio up` prints both)"
        )
    conn = Connection(url, api_key)
    with conn.errors("checking the API key"):
        conn.ls.users.whoami()
    return conn


def projects_titled(conn: Connection, title: str) -> list[Any]:
    """Every project with exactly this title, oldest (lowest id) first."""
    with conn.errors(f"looking up project {title!r}"):
        found = [p for p in conn.ls.projects.list(title=title, page_size=100) if p.title == title]
    return sorted(found, key=lambda p: p.id)


def find_project(conn: Connection, title: str) -> Any | None:
    """The project with this exact title, or None.

    Label Studio does not keep titles unique. When several share one, the oldest is the project
    (push resolves a creation race the same way, see `push.ensure_project`) as long as the
    others hold no task; otherwise it is an error that says how to see and repair it.
    """
    found = projects_titled(conn, title)
    if any(p.task_number for p in found[1:]):
        ids = ", ".join(f"{p.id} ({p.task_number or 0} tasks)" for p in found)
        raise LabelStudioError(
            f"{len(found)} projects are titled {title!r} (ids {ids}): keep one (rename or delete the others in Label Studio); "
            f"`annotator labelstudio check --project {title!r}` shows them"
        )
    return found[0] if found else None


def project_and_blind(conn: Connection, title: str) -> tuple[Any, Any | None]:
    """The project titled `title` and its blind companion ("<title> (blind)"; None until a push
    first makes a blind task). A project that does not exist is an error naming the server."""
    project = find_project(conn, title)
    if project is None:
        raise LabelStudioError(f"no project titled {title!r} in Label Studio at {conn.url}")
    return project, find_project(conn, title + BLIND_SUFFIX)
