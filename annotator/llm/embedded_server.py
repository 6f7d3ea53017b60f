"""The embedded model's server process: llama-cpp-python's OpenAI server, grammar checked after sampling.

`annotator.llm.local` starts `python -m annotator.llm.embedded_server` (the same arguments as
`python -m llama_cpp.server`). Two changes to llama-cpp-python's sampling, both inside this process:

- **The grammar checks one token, not the vocabulary.** llama-cpp-python 0.3.36 puts the grammar
  sampler first in its chain, so every answer token tests all 262,144 Gemma vocabulary entries
  against the JSON grammar (about 17 tokens/s instead of 40-50). llama.cpp's own common sampler
  (`common_sampler_sample`) samples first and checks only the chosen token; only when the grammar
  rejects it does it apply the grammar to the whole vocabulary and sample again. This does the
  same, with one step between: a rejected pick is sampled again among the 40 likeliest tokens the
  grammar allows, and only when it allows none of them over the whole vocabulary. The answer
  still always has the schema's shape, and greedy decoding (temperature 0, the drafts' default)
  gives exactly the stock server's answer (tests/test_embedded_server.py).
- **Log-probabilities of the answer's tokens, at no cost.** The stock server gives them only with
  `logits_all`, which keeps the logits of every prompt token (gigabytes for a 2,500-token prompt).
  The sampler sees each answer token's logits anyway, so it records the token's log-probability
  among the tokens the grammar allows (over the 40 likeliest, or the whole vocabulary when it had
  to re-sample) and the server returns them as OpenAI `logprobs`: the drafts' confidence then
  comes from them instead of four extra label-only answers per article.

Both rely on llama-cpp-python's internals (`Llama._init_sampler`, the sampler's `sample(ctx, idx)`),
hence the exact version pin in pyproject.toml; on another version the stock server runs unchanged
and says so in its log.
"""

from __future__ import annotations

import ctypes
import math
import sys
from typing import Any

import numpy as np

PINNED = "0.3.36"
TOP = 40  # candidates whose grammar-allowed share normalises a token's log-probability


class GrammarLastSampler:
    """Sample with the chain, then check only the chosen token against the grammar (llama.cpp's order).

    `chain` is llama-cpp-python's sampler chain built without the grammar; `grammar` a grammar
    sampler or None. `picked` collects (token, log-probability) per sampled token.
    """

    def __init__(self, llama: Any, chain: Any, grammar: Any | None) -> None:
        import llama_cpp

        self.lib, self.chain, self.grammar = llama_cpp, chain, grammar
        n = llama._n_vocab
        self.n_vocab = n
        # One reusable candidate array (id, logit, p), laid out as llama_token_data.
        self.cur = np.zeros(n, dtype=np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)]))
        self.ids = np.arange(n, dtype=np.int32)
        self.few = np.zeros(TOP + 1, dtype=self.cur.dtype)
        self.picked: list[tuple[int, float]] = []
        self.resampled = 0

    def _array(self, data: np.ndarray) -> Any:
        ptr = data.ctypes.data_as(ctypes.POINTER(self.lib.llama_token_data))
        return self.lib.llama_token_data_array(ptr, len(data), -1, False)

    def _fill(self, logits: np.ndarray) -> Any:
        self.cur["id"], self.cur["logit"], self.cur["p"] = self.ids, logits, 0.0
        return self._array(self.cur)

    def _allowed(self, tokens: np.ndarray) -> np.ndarray:
        """Which of `tokens` the grammar allows next (applying a grammar sampler changes no state)."""
        few = self.few[: len(tokens)]
        few["id"], few["logit"], few["p"] = tokens, 0.0, 0.0
        self.lib.llama_sampler_apply(self.grammar, ctypes.byref(self._array(few)))
        return np.isfinite(few["logit"])

    def sample(self, ctx: Any, idx: int = -1) -> int:
        lib = self.lib
        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx.ctx, idx), shape=(self.n_vocab,))
        arr = self._fill(logits)
        lib.llama_sampler_apply(self.chain.sampler, ctypes.byref(arr))
        token = int(arr.data[arr.selected].id)
        pool = logits  # the tokens the log-probability is normalised over
        if self.grammar is not None:
            # The likeliest by the chain's own scores when it left them in place (greedy: the repeat
            # penalty applied, id order), so a re-sample picks what the whole vocabulary would.
            scores = self.cur["logit"] if arr.size == self.n_vocab and not arr.sorted else logits
            top = np.union1d(np.argpartition(scores, -TOP)[-TOP:], [token]).astype(np.int32)
            ids = top[self._allowed(top)]
            if token not in ids:  # the grammar refuses the pick: sample again among the tokens it allows
                self.resampled += 1
                if len(ids):  # among the likeliest (with greedy decoding the same pick as over the whole vocabulary)
                    few = np.zeros(len(ids), dtype=self.cur.dtype)
                    few["id"], few["logit"] = ids, logits[ids]
                    arr = self._array(few)
                else:  # none of them: the grammar over the whole vocabulary, as llama.cpp does
                    arr = self._fill(logits)
                    lib.llama_sampler_apply(self.grammar, ctypes.byref(arr))
                    ids = self.ids[np.isfinite(self.cur["logit"])]  # in id order: the grammar does not reorder
                lib.llama_sampler_apply(self.chain.sampler, ctypes.byref(arr))
                token = int(arr.data[arr.selected].id)
            pool = logits[ids]
        m = float(pool.max())
        self.picked.append((token, float(logits[token]) - m - math.log(float(np.exp(pool - m).sum()))))
        if self.grammar is not None:
            lib.llama_sampler_accept(self.grammar, token)
        lib.llama_sampler_accept(self.chain.sampler, token)
        return token

    def close(self) -> None:
        if self.grammar is not None:
            self.lib.llama_sampler_free(self.grammar)
            self.grammar = None
        self.chain.close()

    def __del__(self) -> None:
        self.close()


def token_logprobs(llama: Any, picked: list[tuple[int, float]], text: str) -> dict[str, Any] | None:
    """The completion's `logprobs` block for `text` from the sampled tokens; None if they do not spell it.

    A character split across tokens becomes one piece whose log-probability is the tokens' sum."""
    tokens, lps, pending, lp, done = [], [], b"", 0.0, b""
    for i, (_, token_lp) in enumerate(picked):
        whole = llama.detokenize([t for t, _ in picked[: i + 1]])
        pending, lp, done = pending + whole[len(done):], lp + token_lp, whole
        try:
            piece = pending.decode("utf-8")
        except UnicodeDecodeError:
            continue
        tokens.append(piece)
        lps.append(lp)
        pending, lp = b"", 0.0
        if len("".join(tokens)) >= len(text):
            break
    if "".join(tokens) != text:
        return None
    offsets = [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    return {"tokens": tokens, "token_logprobs": lps, "top_logprobs": [{} for _ in tokens], "text_offset": offsets}


def install() -> bool:
    """Put the grammar-last sampler and its log-probabilities into llama-cpp-python's Llama; False if not the pinned version."""
    import llama_cpp
    from llama_cpp import Llama

    if llama_cpp.__version__ != PINNED:
        print(f"embedded_server: llama-cpp-python {llama_cpp.__version__} is not {PINNED}: stock sampling "
              "(grammar over the whole vocabulary), no log-probabilities", file=sys.stderr)
        return False
    stock_init, stock_completion = Llama._init_sampler, Llama.create_completion

    def init_sampler(self: Any, *args: Any, grammar: Any = None, **kwargs: Any) -> GrammarLastSampler:
        chain = stock_init(self, *args, grammar=None, **kwargs)
        g = None
        if grammar is not None:
            g = llama_cpp.llama_sampler_init_grammar(self._model.vocab, grammar._grammar.encode("utf-8"),
                                                     grammar._root.encode("utf-8"))
            if not g:  # llama.cpp could not parse it (it says why in the log): no answer beats an unchecked one
                raise ValueError("the answer's grammar could not be parsed; see the server log")
        sampler = GrammarLastSampler(self, chain, g)
        self._annotator_sampler = sampler  # the last request's sampler: its tokens become the logprobs
        return sampler

    def create_completion(self: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["logprobs"] = None  # the stock path refuses logprobs without logits_all; these come from the sampler
        out = stock_completion(self, *args, **kwargs)
        sampler = getattr(self, "_annotator_sampler", None)
        if kwargs.get("stream") or sampler is None or not isinstance(out, dict):
            return out
        choice = out["choices"][0]
        choice["logprobs"] = token_logprobs(self, sampler.picked, choice["text"])
        if self.verbose:
            print(f"embedded_server: {len(sampler.picked)} tokens sampled, {sampler.resampled} re-sampled "
                  "after the grammar refused the first pick", file=sys.stderr)
        return out

    Llama._init_sampler = init_sampler  # type: ignore[method-assign]
    Llama.create_completion = create_completion  # type: ignore[method-assign]
    return True


def main() -> None:
    install()
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
