"""A content-addressed answer cache (SQLite, standard library): never pay twice for one answer.

Keys are hashes of everything that shapes an answer (model, endpoint, prompt and taxonomy hashes,
the messages, sampling parameters), so a changed prompt misses and a re-run hits. API keys are
never part of a key or a value.

Writes leave the caller's thread: `put` hands the answer to a writer thread that commits what has
arrived in one transaction (a few milliseconds apart), so the drafting event loop never waits on
a commit, yet an answer is on disk a moment after it arrives. A run killed outright (SIGKILL)
loses at most the answers handed over in those last milliseconds, the ones still "in flight"; the
drafts file, written line by line as drafts complete, already holds every finished article, so
a re-run pays for nothing it had. `synchronous=NORMAL` in WAL mode: a commit survives the process
being killed (not a power cut), without an fsync per answer.
"""

from __future__ import annotations

import functools
import hashlib
import json
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from annotator.errors import AnnotatorError
from annotator.records import utf8_json

_SCHEMA = "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
_STOP = object()


_HOLE = "\x00system message\x00"  # stands in for a long first message while the rest is encoded
_LONG = 4096


def cache_key(parts: dict[str, Any]) -> str:
    """sha256 of `parts` as sorted JSON. A long first message (the system prompt with the label
    guide, ~10 KB and the same for every article) is encoded and hashed once per run: the hash
    state after it is kept and only the rest (the article) is hashed per request. The key is the
    same as hashing the whole text, so caches written before stay valid."""
    messages = parts.get("messages")
    first = messages[0] if isinstance(messages, list) and messages else None
    if isinstance(first, dict) and first.keys() == {"role", "content"} and len(first["content"]) > _LONG:
        holed = {**parts, "messages": [{"role": first["role"], "content": _HOLE}, *messages[1:]]}
        head, tail = json.dumps(holed, sort_keys=True, ensure_ascii=False).split(json.dumps(_HOLE), 1)
        state = _hashed_head(head, first["content"]).copy()
        state.update(tail.encode())
        return state.hexdigest()
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@functools.lru_cache(maxsize=16)
def _hashed_head(head: str, content: str) -> Any:
    return hashlib.sha256((head + json.dumps(content, ensure_ascii=False)).encode())


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


class AnswerCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = _connect(self.path)
        self._db.execute(_SCHEMA)
        self._db.commit()
        self._pending: dict[str, str] = {}  # handed to the writer, not yet committed: still readable here
        self._queue: queue.Queue[Any] = queue.Queue()
        self._error: BaseException | None = None
        self._writer = threading.Thread(target=self._write_loop, name="answer-cache-writer", daemon=True)
        self._writer.start()

    def get(self, key: str) -> dict[str, Any] | None:
        text = self._pending.get(key)
        if text is None:
            row = self._db.execute("SELECT value FROM answers WHERE key = ?", (key,)).fetchone()
            text = row[0] if row else None
        return json.loads(text) if text is not None else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._raise_stored()
        text = utf8_json(value)  # a lone surrogate, which SQLite cannot take as UTF-8, as U+FFFD
        self._pending[key] = text
        self._queue.put((key, text))

    def _write_loop(self) -> None:
        # Any failure is kept for the next put and for close, and the loop goes on answering the
        # queue: a writer that died would leave every later answer unsaved, unsaid, and flush waiting.
        try:
            db: sqlite3.Connection | None = _connect(self.path)
        except sqlite3.Error as exc:
            db, self._error = None, exc
        try:
            while True:
                item = self._queue.get()
                batch = [item]
                while True:  # everything that arrived meanwhile goes in the same transaction
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                rows = [(k, v, time.time()) for k, v in (b for b in batch if b is not _STOP)]
                if rows and db is not None:
                    try:
                        db.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?, ?)", rows)
                        db.commit()
                    except Exception as exc:  # noqa: BLE001 - reported to the next put and at close
                        self._error = exc
                    for k, v, _ in rows:
                        if self._pending.get(k) is v:
                            del self._pending[k]
                for _ in batch:
                    self._queue.task_done()
                if any(b is _STOP for b in batch):
                    return
        finally:
            if db is not None:
                db.close()

    def flush(self) -> None:
        """Wait until every answer handed over so far is committed."""
        self._queue.join()

    def __len__(self) -> int:
        self.flush()
        return int(self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        if self._writer.is_alive():
            self._queue.put(_STOP)
            self._writer.join()
        self._db.close()
        self._raise_stored()

    def _raise_stored(self) -> None:
        """The writer's failure as one line naming the cache (a full disk, a read-only folder), not a traceback."""
        if self._error is not None:
            raise AnnotatorError(f"{self.path}: the answer cache could not be written: {self._error}") from self._error
