"""The answer cache's keys: a run after an upgrade still finds the answers paid for before it."""

from __future__ import annotations

import hashlib
import json

from annotator.cache import cache_key
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
