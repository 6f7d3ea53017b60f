"""The OpenAI Batch API, wire side: request files, upload, create, poll, download.

Half the price and no rate-limit pressure, answers within the completion window. What to ask and
what to do with the answers is the caller's (`annotator.draft`); this module only speaks the format.

A batch input file holds at most 50,000 requests and 200 MB (OpenAI's documented limits, the
[llm] settings `batch_max_requests` and `batch_max_bytes`): `split` cuts the work into files
within both. Each batch is created with a `metadata` token the caller saved first, so a run
killed between creating a batch and remembering its id finds it again (`find`) instead of
paying for it twice.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from annotator.llm.client import ChatClient, Completion
from annotator.llm.config import BATCH_MAX_BYTES, BATCH_MAX_REQUESTS

ENDPOINT = "/v1/chat/completions"
PENDING = ("validating", "in_progress", "finalizing", "cancelling")
TOKEN_KEY = "annotator_token"


class BatchResult(BaseModel):
    status: str
    answers: dict[str, Completion] = Field(default_factory=dict)  # custom_id -> answer
    failed: dict[str, str] = Field(default_factory=dict)  # custom_id -> why (re-queue these)
    counts: dict[str, int] = Field(default_factory=dict)  # total, completed, failed: as the provider reports them

    @property
    def pending(self) -> bool:
        return self.status in PENDING


def request_line(custom_id: str, body: dict[str, Any]) -> bytes:
    """One line of a batch input file: a chat request body under its custom_id."""
    return (json.dumps({"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}, ensure_ascii=False)
            + "\n").encode()


def split(lines: Sequence[tuple[str, bytes]], max_requests: int = BATCH_MAX_REQUESTS,
          max_bytes: int = BATCH_MAX_BYTES) -> list[list[tuple[str, bytes]]]:
    """(custom_id, line) pairs cut, in order, into files of at most `max_requests` lines and `max_bytes` bytes."""
    files: list[list[tuple[str, bytes]]] = []
    size = 0
    for cid, line in lines:
        if len(line) > max_bytes:
            raise ValueError(f"the request for {cid} alone is {len(line)} bytes, over the {max_bytes} a batch file may hold")
        if not files or len(files[-1]) >= max_requests or size + len(line) > max_bytes:
            files.append([])
            size = 0
        files[-1].append((cid, line))
        size += len(line)
    return files


async def submit(client: ChatClient, lines: Sequence[tuple[str, bytes]], token: str) -> str:
    """Upload one input file and create its batch, tagged with `token`; returns the batch id."""
    upload = await client.raw.files.create(file=("drafts-batch.jsonl", io.BytesIO(b"".join(line for _, line in lines))),
                                           purpose="batch")
    batch = await client.raw.batches.create(input_file_id=upload.id, endpoint=ENDPOINT, completion_window="24h",
                                            metadata={TOKEN_KEY: token})
    return str(batch.id)


async def find(client: ChatClient, token: str, since: float) -> str | None:
    """The id of the batch created with `token` after `since` (a Unix time), if the provider has one.

    Batches are listed newest first; the search stops at the first one older than `since` minus
    an hour (clocks differ), so an organisation's thousands of old batches are not read.
    """
    async for batch in client.raw.batches.list(limit=100):
        if (batch.metadata or {}).get(TOKEN_KEY) == token:
            return str(batch.id)
        if batch.created_at and batch.created_at < since - 3600:
            break
    return None


async def collect(client: ChatClient, batch_id: str, mode: str) -> BatchResult:
    """The batch's state, and when it is over, its answers and the ids that got none."""
    batch = await client.raw.batches.retrieve(batch_id)
    counts = batch.request_counts
    result = BatchResult(status=str(batch.status),
                         counts={"total": counts.total, "completed": counts.completed, "failed": counts.failed} if counts else {})
    if result.pending:
        return result
    for file_id in (batch.output_file_id, batch.error_file_id):
        if not file_id:
            continue
        content = await client.raw.files.content(file_id)
        for line in content.text.splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            cid, response = row.get("custom_id"), row.get("response") or {}
            if response.get("status_code") == 200 and not row.get("error"):
                result.answers[cid] = client.parse(response["body"], mode, batch=True)
            else:
                result.failed[cid] = str((row.get("error") or {}).get("message") or f"status {response.get('status_code')}")
    return result
