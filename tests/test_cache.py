"""The answer cache's keys: a run after an upgrade still finds the answers paid for before it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from annotator.cache import AnswerCache, cache_key
from annotator.prompt import load_prompt
from annotator.taxonomy import load_taxonomy


def _whole(parts: dict) -> str:
    """The key as it was always computed: sha256 of the sorted JSON of every part."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def test_keys_are_the_hash_of_the_whole_request_however_long_the_system_message():
    system = load_prompt("incident@v1").system_message(load_taxonomy("oecd_aim"))
    assert len(system) > 4096  # long enough to be hashed once and reused
    users = ["id: a1\nA chatbot told a user to stop taking medicine. é ü 中文",
             "id: a2\ntext holding the stand-in \x00system message\x00 and a NUL \x00",
             "id: a3\n" + "long article " * 2000]
    for user in users:
        for seed in (None, 7):
            parts = {"model": "gpt-4o-mini", "endpoint": "https://api.example/v1", "prompt": "p1", "taxonomy": "t1",
                     "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
                     "temperature": 0.0, "seed": seed, "max_tokens": 800}
            assert cache_key(parts) == _whole(parts)
    other = {"model": "m", "endpoint": "e", "prompt": "p", "taxonomy": "t", "temperature": 0.0, "seed": None, "max_tokens": 1,
             "messages": [{"role": "system", "content": system + "!"}, {"role": "user", "content": users[0]}]}
    assert cache_key(other) == _whole(other)
    short = {**other, "messages": [{"role": "system", "content": "Label it."}, {"role": "user", "content": users[0]}]}
    assert cache_key(short) == _whole(short)


def test_an_answer_with_half_an_emoji_is_kept_and_so_is_every_answer_after_it(tmp_path):
    """A lone surrogate (a model's answer cut inside an emoji's escape pair) has no UTF-8 form:
    it once killed the writer thread, and every later answer of the run went unsaved, unsaid."""
    path = tmp_path / "cache.sqlite"
    cache = AnswerCache(path)
    cache.put("half", {"text": "fake faces \ud83d in the feed"})
    cache.put("after", {"text": "an ordinary answer"})
    cache.close()
    reopened = AnswerCache(path)
    assert reopened.get("half") == {"text": "fake faces \ufffd in the feed"}  # as a UTF-8 decoder shows it
    assert reopened.get("after") == {"text": "an ordinary answer"} and len(reopened) == 2
    reopened.close()


def test_a_cache_that_cannot_be_written_is_one_line_naming_it(tmp_path):
    """A full disk (here a file-size limit in a child process) ends the run with one line naming the
    cache, the answers committed before it still readable, not a database traceback."""
    path = tmp_path / "cache.sqlite"
    child = f"""
import resource, signal, sys
from annotator.cache import AnswerCache
from annotator.errors import AnnotatorError
cache = AnswerCache({str(path)!r})
cache.put("first", {{"text": "kept"}})
cache.flush()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
try:
    for i in range(100):
        cache.put(f"k{{i}}", {{"text": "x" * 20_000}})
    cache.close()
except AnnotatorError as exc:
    print(exc)
    sys.exit(3)
"""
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    line = done.stdout.strip()
    assert "\n" not in line and str(path) in line and "could not be written" in line
    reopened = AnswerCache(path)
    assert reopened.get("first") == {"text": "kept"}
    reopened.close()
