"""A small OpenAI-compatible server on 127.0.0.1 for tests, the benchmark and the demo.

It answers `/v1/chat/completions` with a deterministic, VALID answer generated from the request's
JSON schema (seeded by the user message), or with a scripted answer for known article ids, and can
misbehave on purpose: latency, a requests-per-minute limit (a token bucket; 429 with Retry-After,
the refused request counted against the limit as providers count it; OpenAI's x-ratelimit-* and
openai-processing-ms headers on every answer), 500s, dropped
connections, broken or truncated JSON, labels outside the taxonomy, duplicate tags, rejecting
`json_schema` mode (like llama-cpp-python's server) or schema keywords, log-probabilities. It
counts requests so tests can assert that a re-run sent none, and implements enough of
`/v1/files` and `/v1/batches` for the batch path.

Importable (`FakeOpenAIServer`, `Faults`) or run as a script:

    python tests/fake_openai_server.py --port 8765 --latency 0.2 --rpm 600 --error-rate 0.05

Control endpoints (not OpenAI's): `GET /_stats`, `POST /_reset`, `POST /_faults` (JSON body of
`Faults` fields to change while running).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import email.parser
import email.policy
import hashlib
import json
import math
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Scripted answers: a dict is sent as JSON; these strings are special, any other string is sent raw.
VALID, BROKEN, TRUNCATED, BAD_LABEL, DUPLICATE = "valid", "broken", "truncated", "bad_label", "duplicate"
HTTP_500, HTTP_429, HTTP_400, DROP = "http:500", "http:429", "http:400", "drop"


@dataclass
class Faults:
    latency: float = 0.0  # seconds before each chat answer
    rpm: float | None = None  # requests-per-minute limit, enforced as a token bucket
    burst: float | None = None  # bucket size (default: one second's worth, at least 1)
    ratelimit_headers: bool = True  # x-ratelimit-* on every chat answer when rpm is set, as OpenAI sends them
    rejected_count: bool = True  # a 429 takes a token too (OpenAI: unsuccessful requests count against the limit)
    error_rate: float = 0.0  # share of chat requests answered 500
    fail_first: int = 0  # the first N chat requests are answered 500
    rate_limit_first: int = 0  # the first N chat requests are answered 429
    retry_after: float = 0.2  # seconds announced in a 429 injected by rate_limit_first
    retry_after_style: str = "both"  # "seconds" (Retry-After), "ms" (retry-after-ms) or "both"
    drop_first: int = 0  # the first N chat requests get their connection closed without an answer
    broken_rate: float = 0.0  # share of answers that are not JSON
    truncated_rate: float = 0.0  # share of answers cut in half (finish_reason "length")
    bad_label_rate: float = 0.0  # share of answers with a value outside the taxonomy
    duplicate_rate: float = 0.0  # share of answers with a repeated tag
    reject_json_schema: bool = False  # 400 for response_format json_schema (llama-cpp-python style)
    reject_keywords: tuple[str, ...] = ()  # 400 when the schema holds one of these keywords
    logprobs: bool = True  # return token log-probabilities when asked (as OpenAI does)
    api_key: str | None = None  # require "Authorization: Bearer <key>" (401 otherwise)
    model: str = "fake-model"
    seed: int = 0
    scripts: dict[str, list[Any]] = field(default_factory=dict)  # article id -> answers, in order
    fit_scripts: bool = False  # fit a scripted answer to each request's schema (a model answering from gold)
    batch_polls: int = 1  # GETs of a batch answered "in_progress" before it completes
    batch_fail_ids: tuple[str, ...] = ()  # custom_ids whose batch lines go to the error file
    batch_expire_after: int | None = None  # answer only this many lines, then status "expired"
    lazy: str | None = None  # answer like a lazy model: this class for every article (see lazy_answer)
    quote: bool = False  # fill every answer's evidence with real quotes from the article (see real_quotes)
    hang: bool = False  # accept chat requests and never answer (a stuck server or proxy)
    not_chat: str | None = None  # answer chat requests 200 with "html" (a login page) or "json" (another API)
    # A request for the link to a recorded incident (see link_request) is answered: "top" the first
    # incident offered, "none", "bad" an id that was not offered, "random" any offered or none,
    # "fail" with HTTP 500 (the labels' requests are answered as usual); an
    # article in link_scripts gets its scripted answer (an id or "none": a model answering from gold).
    link: str = "top"
    link_scripts: dict[str, str] = field(default_factory=dict)
    # Set the answer's instructions_in_article (when the schema asks for it) to true for articles
    # holding one of these phrases, as a model that noticed them would; false otherwise.
    reports_instructions: tuple[str, ...] = ()


def _default_schema() -> dict[str, Any]:
    """Plain-JSON mode sends no schema; answer in the bundled taxonomy's shape then."""
    try:
        from annotator.taxonomy import json_schema, load_taxonomy

        return json_schema(load_taxonomy("oecd_aim"))
    except Exception:  # pragma: no cover - the server also runs without the package
        return {"type": "object", "properties": {}}


def _types(schema: dict[str, Any]) -> list[str]:
    t = schema.get("type", "object")
    return t if isinstance(t, list) else [t]


def generate(schema: dict[str, Any], rng: random.Random) -> Any:
    """A value valid under `schema` (the subset of JSON schema the taxonomy emits)."""
    types = _types(schema)
    if "enum" in schema:
        values = [v for v in schema["enum"] if v is not None]
        if None in schema["enum"] and rng.random() < 0.3:
            return None
        return rng.choice(values)
    if "object" in types:
        return {k: generate(v, rng) for k, v in schema.get("properties", {}).items()}
    if "array" in types:
        items = schema.get("items", {})
        pool = [v for v in items.get("enum", []) if v is not None]
        if not pool:
            return []
        k = rng.randint(0, min(3, len(pool), schema.get("maxItems", 3)))
        return rng.sample(pool, k)
    if "boolean" in types:
        return False  # the one boolean an answer has is instructions_in_article: an ordinary article holds none
    if "string" in types:
        words = ["The", "article", "reports", "an", "AI", "system", "that", "caused", "harm", "to", "people", "online"]
        text = " ".join(rng.choice(words) for _ in range(rng.randint(8, 30))) + "."
        return text[: schema.get("maxLength", len(text))]
    return None


def obey_rules(answer: dict[str, Any]) -> dict[str, Any]:
    """Bend a generated answer to the bundled taxonomy's rules between fields, as a sound model would
    (its own field names, or `oecd_aim.`-prefixed ones when it is composed with another taxonomy)."""
    try:
        from annotator.taxonomy import load_taxonomy

        rules = load_taxonomy("oecd_aim").rules
    except Exception:  # pragma: no cover - the server also runs without the package
        return answer
    prefix = "oecd_aim." if "oecd_aim.classification" in answer else ""
    for rule in rules:
        if not all(isinstance(answer.get(prefix + k), str) and answer[prefix + k] in v for k, v in rule.when):
            continue
        for name, allowed in rule.then:
            name = prefix + name
            if isinstance(answer.get(name), list):
                answer[name] = [v for v in answer[name] if v in allowed]
            elif name in answer:
                answer[name] = allowed[0] if allowed else None
    return answer


def article_text(user: str) -> str:
    """The article's own text from a user message (inside the article tags, after the metadata)."""
    m = re.search(r"<(article-[0-9a-f]+)>\n(.*)\n</\1>", user, re.DOTALL)
    block = m.group(2) if m else user
    return block.split("\n\n", 1)[1] if "\n\n" in block else block


def real_quotes(schema: dict[str, Any], text: str) -> dict[str, list[str]]:
    """Evidence as a careful model gives it: for each kind, a few words copied from its own sentence."""
    kinds = list(schema.get("properties", {}).get("evidence", {}).get("properties", {}))
    sentences = [s.split() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 4]
    return {k: [" ".join(sentences[i][:10])] if i < len(sentences) else [] for i, k in enumerate(kinds)}


def lazy_answer(schema: dict[str, Any], choice: str, article_text: str) -> dict[str, Any]:
    """What a lazy model answers: one class for everything, the first tags of each list in the
    taxonomy's order, the article's opening as the rationale, and evidence it did not find in the text."""
    out: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        types = _types(prop)
        if "enum" in prop:
            values = [v for v in prop["enum"] if v is not None]
            out[name] = choice if choice in values else values[0]
        elif "array" in types:
            out[name] = [v for v in prop.get("items", {}).get("enum", []) if v is not None][:2]
        elif "object" in types:  # evidence: quotes that are not in the article
            out[name] = {k: ["An AI system caused serious harm to many people."] for k in prop.get("properties", {})}
        elif "boolean" in types:
            out[name] = False
        else:
            out[name] = " ".join(article_text.split()[:40])
    return out


_LINK_ASKED = re.compile(r'Answer with the JSON object only: \{"(\w+)": one of (.*) or none\}')


def link_request(schema: dict[str, Any] | None, user: str) -> tuple[str, list[str]] | None:
    """(field, offered ids) when the request asks which recorded incident an article follows up
    (annotator.incidents): its schema's one property ends its values with "none"; in plain mode,
    which sends no schema, the user message says so."""
    props = (schema or {}).get("properties") or {}
    if len(props) == 1:
        ((name, prop),) = props.items()
        enum = prop.get("enum") or []
        if enum and enum[-1] == "none":
            return name, enum[:-1]
    m = _LINK_ASKED.search(user)
    return (m.group(1), m.group(2).split(", ")) if m else None


def link_answer(faults: Faults, article: str, offered: list[str], rng: random.Random) -> str:
    if article in faults.link_scripts:
        return faults.link_scripts[article]
    if faults.link == "none" or not offered:
        return "none"
    if faults.link == "bad":
        return "inc-not-offered"
    return rng.choice([*offered, "none"]) if faults.link == "random" else offered[0]


def fit(script: dict[str, Any], schema: dict[str, Any], generated: dict[str, Any]) -> dict[str, Any]:
    """A scripted answer in the shape a request asks for: only the schema's keys, list items only
    where the schema allows them, the generated value where the script has none.

    With answers from gold whose hierarchical values come with their ancestors, a request for
    top-level values gets the gold's tactics and a request for the values below them gets its
    techniques: a perfect model, whatever the number of steps, for a sanity floor.
    """
    out = {}
    for key, prop in schema.get("properties", {}).items():
        if key not in script:
            out[key] = generated.get(key)
            continue
        value = script[key]
        allowed = prop.get("items", {}).get("enum") if "array" in _types(prop) else prop.get("enum")
        if isinstance(value, list) and allowed is not None:
            value = [v for v in value if v in allowed]
        elif allowed is not None and value not in allowed:
            value = generated.get(key)
        out[key] = value
    return out


def _spoil(answer: dict[str, Any], schema: dict[str, Any], how: str) -> str:
    props = schema.get("properties", {})
    text = json.dumps(answer, ensure_ascii=False)
    if how == BROKEN:
        return "Sure! Here is the label: " + text.replace('"', "'", 3)
    if how == TRUNCATED:
        return text[: len(text) // 2]
    singles = [k for k, v in props.items() if "enum" in v]
    multis = [k for k, v in props.items() if "array" in _types(v) and v.get("items", {}).get("enum")]
    if how == BAD_LABEL and singles:
        answer[singles[0]] = "Definitely not a label"
    elif how == DUPLICATE and multis:
        value = props[multis[0]]["items"]["enum"][0]
        answer[multis[0]] = [value, value]
    return json.dumps(answer, ensure_ascii=False)


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+|\s+|[^\w\s]", text) or [text]


class _State:
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.lock = threading.Lock()
        self.closing = threading.Event()  # set when the server stops: hung requests end
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.counts: Counter[str] = Counter()
            self.by_article: Counter[str] = Counter()
            self.events: list[dict[str, Any]] = []
            self.seen_prefixes: set[str] = set()
            self.rng = random.Random(self.faults.seed)
            self.tokens = None
            self.last = time.monotonic()
            self.files: dict[str, dict[str, Any]] = {}
            self.batches: dict[str, dict[str, Any]] = {}
            self.last_request: dict[str, Any] | None = None
            self.last_by_article: dict[str, dict[str, Any]] = {}

    def take_token(self) -> tuple[float, dict[str, str]]:
        """(0 if the request may pass, else seconds until it could; the x-ratelimit-* headers).

        A token bucket of `burst` refilled at rpm/60 a second (OpenAI enforces a per-minute limit
        over shorter periods, so a minute's requests sent in a burst are refused). With
        `rejected_count` a refused request takes its token too, down to one bucket in debt: a
        client that keeps sending into a 429 keeps the bucket empty for itself, as a real
        provider's does. The headers are OpenAI's: the limit per minute, the requests left now,
        the time until the bucket is full again.
        """
        f = self.faults
        if not f.rpm:
            return 0.0, {}
        rate = f.rpm / 60.0
        burst = f.burst or max(1.0, rate)
        now = time.monotonic()
        if self.tokens is None:
            self.tokens = burst
        self.tokens = min(burst, self.tokens + (now - self.last) * rate)
        self.last = now
        wait = 0.0
        if self.tokens >= 1:
            self.tokens -= 1
        else:
            if f.rejected_count:
                self.tokens = max(-burst, self.tokens - 1)
            wait = (1 - self.tokens) / rate
        if not f.ratelimit_headers:
            return wait, {}
        reset = (burst - self.tokens) / rate
        return wait, {"x-ratelimit-limit-requests": str(int(f.rpm)),
                      "x-ratelimit-remaining-requests": str(max(0, int(self.tokens))),
                      "x-ratelimit-reset-requests": f"{reset:.3f}s" if reset < 60 else f"{int(reset // 60)}m{reset % 60:.0f}s"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    # ----------------------------------------------------------------- plumbing

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json" if raw is None else "application/octet-stream", **(headers or {})}
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, {"error": {"message": message, "type": "invalid_request_error", "code": None}}, headers)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _authorised(self) -> bool:
        key = self.server.state.faults.api_key
        sent = self.headers.get("Authorization", "")
        if key and sent != f"Bearer {key}":
            # Echo what was sent, the worst a provider could do: the client must not pass it on.
            self._error(401, f"Incorrect API key provided: {sent.removeprefix('Bearer ')}.")
            return False
        return True

    # ----------------------------------------------------------------- routes

    def do_GET(self) -> None:  # noqa: N802
        st = self.server.state
        if self.path == "/_stats":
            return self._send(200, self.server.stats())
        if not self._authorised():
            return None
        if self.path == "/v1/models":
            return self._send(200, {"object": "list", "data": [{"id": st.faults.model, "object": "model"}]})
        m = re.fullmatch(r"/v1/files/([\w-]+)(/content)?", self.path)
        if m and m.group(1) in st.files:
            f = st.files[m.group(1)]
            if m.group(2):
                return self._send(200, None, raw=f["content"])
            return self._send(200, {k: v for k, v in f.items() if k != "content"})
        if self.path.split("?")[0] == "/v1/batches":  # newest first, as the real API lists them
            with st.lock:
                rows = [{k: v for k, v in b.items() if k != "polls"} for b in reversed(list(st.batches.values()))]
            return self._send(200, {"object": "list", "data": rows, "has_more": False,
                                    "first_id": rows[0]["id"] if rows else None, "last_id": rows[-1]["id"] if rows else None})
        m = re.fullmatch(r"/v1/batches/([\w-]+)", self.path)
        if m and m.group(1) in st.batches:
            return self._send(200, self.server.poll_batch(m.group(1)))
        return self._error(404, f"no route {self.path}")

    def do_POST(self) -> None:  # noqa: N802
        st = self.server.state
        body = self._body()
        if self.path == "/_reset":
            st.reset()
            return self._send(200, {"ok": True})
        if self.path == "/_faults":
            changes = json.loads(body or b"{}")
            for k, v in changes.items():
                setattr(st.faults, k, tuple(v) if isinstance(getattr(st.faults, k), tuple) else v)
            return self._send(200, dataclasses.asdict(st.faults) | {"api_key": None})
        with st.lock:
            st.counts[self.path] += 1
        if not self._authorised():
            return None
        if self.path == "/v1/chat/completions":
            return self._chat(json.loads(body))
        if self.path == "/v1/files":
            return self._upload(body)
        if self.path == "/v1/batches":
            return self._send(200, self.server.create_batch(json.loads(body)))
        return self._error(404, f"no route {self.path}")

    def _upload(self, body: bytes) -> None:
        head = f"Content-Type: {self.headers.get('Content-Type')}\r\n\r\n".encode()
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        fields = {part.get_param("name", header="content-disposition"): part for part in msg.iter_parts()}
        part = fields.get("file")
        if part is None:
            return self._error(400, "no file")
        st = self.server.state
        content = part.get_payload(decode=True) or b""
        with st.lock:
            fid = f"file-{len(st.files) + 1}"
            st.files[fid] = {"id": fid, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                             "filename": part.get_filename() or "upload.jsonl", "purpose": "batch", "content": content}
        return self._send(200, {k: v for k, v in st.files[fid].items() if k != "content"})

    def _chat(self, req: dict[str, Any]) -> None:
        st, f = self.server.state, self.server.state.faults
        if f.hang:
            st.closing.wait(3600)  # until the server stops
            return None
        if f.not_chat == "html":
            page = b"<!DOCTYPE html><html><head><title>Sign in - Corporate Proxy</title></head><body>Please log in</body></html>"
            return self._send(200, None, {"Content-Type": "text/html; charset=utf-8"}, raw=page)
        if f.not_chat == "json":
            return self._send(200, {"status": "ok", "data": [], "message": "welcome to the API gateway"})
        began = time.monotonic()
        status, payload, headers = self.server.answer(req, live=True)
        if status == -1:  # drop the connection
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        if f.latency and status == 200:
            time.sleep(f.latency)
        headers = {**(headers or {}), "openai-processing-ms": str(int((time.monotonic() - began) * 1000))}  # as OpenAI sends it
        with st.lock:
            st.counts[f"status:{status}"] += 1
        if status != 200:
            return self._error(status, payload, headers)
        return self._send(200, payload, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # a real endpoint's listen backlog, not socketserver's 5 (hundreds connect at once)

    def __init__(self, port: int, faults: Faults) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.state = _State(faults)

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):  # clients that gave up
            super().handle_error(request, client_address)

    def stats(self) -> dict[str, Any]:
        st = self.state
        with st.lock:
            return {
                "chat_requests": st.counts["/v1/chat/completions"],
                "answered": st.counts["status:200"],
                "counts": dict(st.counts),
                "by_article": dict(st.by_article),
                "events": list(st.events),
                "last_request": st.last_request,
                "last_by_article": dict(st.last_by_article),
            }

    # ----------------------------------------------------------------- answers

    def answer(self, req: dict[str, Any], live: bool) -> tuple[int, Any, dict[str, str] | None]:
        """(status, payload or error message, headers); status -1 means drop the connection."""
        st, f = self.state, self.state.faults
        messages = req.get("messages") or []
        user = next((m.get("content", "") for m in messages if m.get("role") == "user"), "")
        match = re.search(r"^id: (.+)$", user, re.MULTILINE)
        article = match.group(1).strip() if match else ""
        rf = req.get("response_format") or {}
        schema = (rf.get("json_schema") or {}).get("schema") if rf.get("type") == "json_schema" else rf.get("schema")
        link = link_request(schema, user)
        with st.lock:
            n = st.counts["chat"] = st.counts["chat"] + 1
            st.last_request = req
            if not link:
                st.last_by_article[article] = req
            script = None if link else f.scripts.get(article)  # scripts answer the labels' requests
            step = None
            if script:
                step = script[min(st.by_article[article], len(script) - 1)]
            if not link:
                st.by_article[article] += 1
            roll = st.rng.random()
            roll2 = st.rng.random()
            event = {"n": n, "article": article, "user_sha": hashlib.sha256(user.encode()).hexdigest()[:16],
                     "t": round(time.monotonic(), 4)}
            st.events.append(event)
            wait, limits = st.take_token() if live else (0.0, {})
            if st.tokens is not None:
                event["bucket"] = round(st.tokens, 3)  # tokens left after this request, for benchmarks

        def out(status: int, payload: Any, headers: dict[str, str] | None = None):  # noqa: ANN202
            event["status"] = status
            return status, payload, {**limits, **(headers or {})}

        if rf.get("type") == "json_schema" and f.reject_json_schema:
            return out(400, "response_format type json_schema is not supported; use json_object with a schema")
        for kw in f.reject_keywords:
            if schema and f'"{kw}"' in json.dumps(schema):
                return out(400, f"Invalid schema for response_format 'answer': '{kw}' is not permitted.")
        if live and wait > 0:
            return out(429, "Rate limit reached for requests", self._retry_headers(wait))
        if live and n <= f.rate_limit_first:
            return out(429, "Rate limit reached for requests", self._retry_headers(f.retry_after))
        if live and n <= f.fail_first + f.rate_limit_first:
            return out(500, "The server had an error while processing your request.")
        if live and n <= f.drop_first + f.fail_first + f.rate_limit_first:
            return out(-1, "")
        if step == HTTP_500 or (live and roll < f.error_rate) or (link and f.link == "fail"):
            return out(500, "The server had an error while processing your request.")
        if step == HTTP_400:  # this one request refused, as a content filter refuses an article
            return out(400, "The request was rejected by the content filter.")
        if step == HTTP_429:
            return out(429, "Rate limit reached for requests", self._retry_headers(f.retry_after))
        if step == DROP:
            return out(-1, "")

        schema = schema or _default_schema()
        # Same request, same answer; at temperature > 0 the seed varies it, as sampling would.
        varied = f"{req.get('seed')}" if (req.get("temperature") or 0) > 0 else ""
        rng = random.Random(hashlib.sha256((user + varied).encode()).hexdigest())
        body = article_text(user)
        if link:
            content = json.dumps({link[0]: link_answer(f, article, link[1], rng)})
            return out(200, self._completion(req, messages, content, "stop", rng))
        answer = lazy_answer(schema, f.lazy, body) if f.lazy else obey_rules(generate(schema, rng))
        finish = "stop"
        how = step if isinstance(step, str) else None
        if how is None and step is None:
            thresholds = [(BROKEN, f.broken_rate), (TRUNCATED, f.truncated_rate), (BAD_LABEL, f.bad_label_rate),
                          (DUPLICATE, f.duplicate_rate)]
            acc = 0.0
            for name, rate in thresholds:
                acc += rate
                if roll2 < acc:
                    how = name
                    break
        if "instructions_in_article" in (schema.get("properties") or {}):
            answer["instructions_in_article"] = any(p.lower() in body.lower() for p in f.reports_instructions)
        if f.quote and "evidence" in (schema.get("properties") or {}):
            if isinstance(step, dict):
                step = {**step, "evidence": real_quotes(schema, body)}
            answer["evidence"] = real_quotes(schema, body)
        if isinstance(step, dict):
            content = json.dumps(obey_rules(fit(step, schema, answer)) if f.fit_scripts else step, ensure_ascii=False)
        elif how in (BROKEN, TRUNCATED, BAD_LABEL, DUPLICATE):
            content = _spoil(answer, schema, how)
            finish = "length" if how == TRUNCATED else "stop"
        elif how in (None, VALID):
            content = json.dumps(answer, ensure_ascii=False)
        else:
            content = str(step)
        return out(200, self._completion(req, messages, content, finish, rng))

    def _retry_headers(self, wait: float) -> dict[str, str]:
        style = self.state.faults.retry_after_style
        headers = {}
        if style in ("seconds", "both"):
            headers["Retry-After"] = str(max(1, math.ceil(wait)) if style == "seconds" else math.ceil(wait))
        if style in ("ms", "both"):
            headers["retry-after-ms"] = str(max(1, int(wait * 1000)))
        return headers

    def _completion(self, req: dict[str, Any], messages: list[dict[str, Any]], content: str, finish: str,
                    rng: random.Random) -> dict[str, Any]:
        st, f = self.state, self.state.faults
        system = next((m.get("content", "") for m in messages if m.get("role") == "system"), "")
        prompt_tokens = sum(len(m.get("content") or "") for m in messages) // 4 + 4 * len(messages)
        sys_tokens = len(system) // 4
        key = hashlib.sha256(system.encode()).hexdigest()
        with st.lock:
            cached = (sys_tokens // 128) * 128 if key in st.seen_prefixes and sys_tokens >= 1024 else 0
            st.seen_prefixes.add(key)
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
        if f.logprobs and req.get("logprobs"):
            choice["logprobs"] = {"content": [
                {"token": t, "logprob": -round(rng.uniform(0.0, 0.3), 4) if t.strip() else 0.0, "bytes": list(t.encode()),
                 "top_logprobs": []} for t in _tokens(content)]}
        else:
            choice["logprobs"] = None
        completion_tokens = len(content) // 4 + 1
        return {
            "id": f"chatcmpl-{rng.randrange(1 << 30)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.get("model") or f.model,
            "choices": [choice],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens,
                      "prompt_tokens_details": {"cached_tokens": cached}},
        }

    # ----------------------------------------------------------------- batches

    def create_batch(self, req: dict[str, Any]) -> dict[str, Any]:
        st = self.state
        with st.lock:
            bid = f"batch-{len(st.batches) + 1}"
            st.batches[bid] = {"id": bid, "object": "batch", "endpoint": req.get("endpoint"),
                               "input_file_id": req.get("input_file_id"), "completion_window": req.get("completion_window"),
                               "status": "validating", "created_at": int(time.time()), "output_file_id": None,
                               "error_file_id": None, "polls": 0, "request_counts": {"total": 0, "completed": 0, "failed": 0},
                               "metadata": req.get("metadata")}
            st.counts["batches_created"] += 1
            return {k: v for k, v in st.batches[bid].items() if k != "polls"}

    def poll_batch(self, bid: str) -> dict[str, Any]:
        st, f = self.state, self.state.faults
        with st.lock:
            b = st.batches[bid]
            b["polls"] += 1
            ready = b["status"] in ("validating", "in_progress") and b["polls"] > f.batch_polls
            if b["status"] == "validating":
                b["status"] = "in_progress"
        if ready:
            self._run_batch(b)
        return {k: v for k, v in b.items() if k != "polls"}

    def _run_batch(self, b: dict[str, Any]) -> None:
        st, f = self.state, self.state.faults
        lines = [json.loads(x) for x in st.files[b["input_file_id"]]["content"].decode().splitlines() if x.strip()]
        out, err = [], []
        for i, line in enumerate(lines):
            if f.batch_expire_after is not None and i >= f.batch_expire_after:
                break
            cid = line["custom_id"]
            if cid in f.batch_fail_ids:
                err.append({"id": f"req-{i}", "custom_id": cid, "response": None,
                            "error": {"code": "server_error", "message": "The model failed on this line."}})
                continue
            status, payload, _ = self.answer(line["body"], live=False)
            if status != 200:
                err.append({"id": f"req-{i}", "custom_id": cid, "response": {"status_code": status, "body": {}},
                            "error": {"code": str(status), "message": str(payload)}})
            else:
                out.append({"id": f"req-{i}", "custom_id": cid, "response": {"status_code": 200, "body": payload}, "error": None})
        with st.lock:
            for name, rows in (("output_file_id", out), ("error_file_id", err)):
                if rows:
                    fid = f"file-{len(st.files) + 1}"
                    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
                    st.files[fid] = {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                                     "filename": f"{b['id']}_{name}.jsonl", "purpose": "batch_output", "content": data}
                    b[name] = fid
            expired = f.batch_expire_after is not None and f.batch_expire_after < len(lines)
            b["status"] = "expired" if expired else "completed"
            b["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(err)}


class FakeOpenAIServer:
    """`with FakeOpenAIServer(Faults(latency=0.1)) as srv:` then point the client at `srv.url`."""

    def __init__(self, faults: Faults | None = None, port: int = 0) -> None:
        self.faults = faults or Faults()
        self._server = _Server(port, self.faults)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL the `openai` client takes (ends in /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def stats(self) -> dict[str, Any]:
        return self._server.stats()

    def reset(self) -> None:
        self._server.state.reset()

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.state.closing.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--rpm", type=float)
    p.add_argument("--burst", type=float)
    p.add_argument("--no-ratelimit-headers", action="store_true", help="send no x-ratelimit-* headers (429s only)")
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--fail-first", type=int, default=0, help="answer the first N chat requests 500")
    p.add_argument("--rate-limit-first", type=int, default=0, help="answer the first N chat requests 429")
    p.add_argument("--retry-after", type=float, default=0.2, help="seconds announced by those 429s")
    p.add_argument("--drop-first", type=int, default=0, help="close the connection of the first N chat requests")
    p.add_argument("--batch-polls", type=int, default=1, help="polls a batch answers in_progress before it completes")
    p.add_argument("--broken-rate", type=float, default=0.0)
    p.add_argument("--truncated-rate", type=float, default=0.0)
    p.add_argument("--bad-label-rate", type=float, default=0.0)
    p.add_argument("--duplicate-rate", type=float, default=0.0)
    p.add_argument("--reject-json-schema", action="store_true")
    p.add_argument("--reject-keyword", action="append", default=[], help="schema keyword to refuse (repeatable)")
    p.add_argument("--logprobs", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--api-key", help="require this bearer key")
    p.add_argument("--model", default="fake-model")
    p.add_argument("--scripts", help="JSON file: {article_id: [answer, ...]}")
    p.add_argument("--hang", action="store_true", help="accept chat requests and never answer")
    p.add_argument("--not-chat", choices=["html", "json"], help="answer chat requests 200 with a page or other JSON")
    p.add_argument("--fit-scripts", action="store_true", help="fit scripted answers to each request's schema")
    args = p.parse_args(argv)
    faults = Faults(latency=args.latency, rpm=args.rpm, burst=args.burst, error_rate=args.error_rate,
                    ratelimit_headers=not args.no_ratelimit_headers,
                    broken_rate=args.broken_rate, truncated_rate=args.truncated_rate, bad_label_rate=args.bad_label_rate,
                    duplicate_rate=args.duplicate_rate, reject_json_schema=args.reject_json_schema,
                    reject_keywords=tuple(args.reject_keyword), logprobs=args.logprobs, api_key=args.api_key,
                    model=args.model, fail_first=args.fail_first, rate_limit_first=args.rate_limit_first,
                    retry_after=args.retry_after, drop_first=args.drop_first, batch_polls=args.batch_polls,
                    hang=args.hang, not_chat=args.not_chat, fit_scripts=args.fit_scripts)
    if args.scripts:
        with open(args.scripts, encoding="utf-8") as fh:
            faults.scripts = json.load(fh)
    server = FakeOpenAIServer(faults, port=args.port)
    print(f"fake OpenAI server on {server.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server._server.serve_forever()


if __name__ == "__main__":
    main()
