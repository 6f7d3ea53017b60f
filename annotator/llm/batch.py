"""The OpenAI Batch API, wire side: request files, upload, create, poll, download.

Half the price and no rate-limit pressure, answers within the completion window. What to ask and
what to do with the answers is the caller's (`annotator.draft`); this module only speaks the format.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from annotator.llm.client import ChatClient, Completion

ENDPOINT = "/v1/chat/completions"
PENDING = ("validating", "in_progress", "finalizing", "cancelling")


class BatchResult(BaseModel):
    status: str
    answers: dict[str, Completion] = Field(default_factory=dict)  # custom_id -> answer
    failed: dict[str, str] = Field(default_factory=dict)  # custom_id -> why (re-queue these)

    @property
    def pending(self) -> bool:
        return self.status in PENDING


def request_file(client: ChatClient, requests: Sequence[tuple[str, dict[str, Any]]]) -> bytes:
    """JSONL of (custom_id, chat request body) lines, as the Batch API takes them."""
    return "".join(json.dumps({"custom_id": cid, "method": "POST", "url": ENDPOINT, "body": body}, ensure_ascii=False) + "\n"
                   for cid, body in requests).encode()


async def submit(client: ChatClient, requests: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """Upload the requests and create a batch; returns its id."""
    upload = await client.raw.files.create(file=("drafts-batch.jsonl", io.BytesIO(request_file(client, requests))),
                                           purpose="batch")
    batch = await client.raw.batches.create(input_file_id=upload.id, endpoint=ENDPOINT, completion_window="24h")
    return str(batch.id)


async def collect(client: ChatClient, batch_id: str, mode: str) -> BatchResult:
    """The batch's state, and when it is over, its answers and the ids that got none."""
    batch = await client.raw.batches.retrieve(batch_id)
    result = BatchResult(status=str(batch.status))
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
