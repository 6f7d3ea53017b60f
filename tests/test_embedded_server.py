"""The embedded model's server (annotator.llm.embedded_server) against llama-cpp-python's own.

Greedy decoding picks the likeliest token the grammar allows whichever order the grammar and the
sampler run in, so the two servers must give the very same answer; ours also returns the answer's
log-probabilities, which the stock server gives only with logits for the whole prompt.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from annotator.draft import field_confidence
from annotator.llm import ChatClient, load_settings, local
from annotator.taxonomy import json_schema, load_taxonomy

pytestmark = [pytest.mark.slow, pytest.mark.embedded,
              pytest.mark.skipif(not local.available(), reason="the embedded model needs the [local] extra (make test installs it)")]

TAX = load_taxonomy("oecd_aim")
ARTICLE = ("Classify this news article. A delivery robot operated by a start-up drove into a crowd at a street market "
           "in Austin on Saturday after its vision system misread a barrier; two people were injured.")


def _answer(module: str, log: Path) -> dict:
    # The same answer threads for both: the threads change the order of the sums, and so may the answer
    # (chosen from the load, the second server could get another number than the first).
    with local.local_server(log, module, threads=1) as (url, name):
        client = ChatClient(local.local_settings(load_settings({}), url, name))
        body = client.body([{"role": "user", "content": ARTICLE}], json_schema(TAX), mode="json_object", temperature=0.0)
        body["max_tokens"] = 250
        req = urllib.request.Request(f"{url}/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=900) as resp:
            return json.load(resp)["choices"][0]


def test_grammar_after_sampling_gives_the_stock_answer_and_its_logprobs(tmp_path: Path) -> None:
    ours = _answer(local.SERVER_MODULE, tmp_path / "ours.log")
    stock = _answer("llama_cpp.server", tmp_path / "stock.log")
    text = ours["message"]["content"]
    assert text == stock["message"]["content"]
    assert stock["logprobs"] is None
    tokens = [(t["token"], t["logprob"]) for t in ours["logprobs"]["content"]]
    assert "".join(t for t, _ in tokens) == text and all(lp <= 0 for _, lp in tokens)
    assert "re-sampled after the grammar refused" in (tmp_path / "ours.log").read_text()
    if ours["finish_reason"] == "stop":  # a whole answer: the schema's shape, and a confidence per label field
        answer = json.loads(text)
        assert set(answer) == set(json_schema(TAX)["properties"])
        assert answer[TAX.primary] in TAX.field(TAX.primary).value_ids
        assert all(0 < c <= 1 for c in field_confidence(TAX, text, tokens).values() if c is not None)
