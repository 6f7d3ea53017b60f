"""Evidence quotes are found in the article or flagged; rationales that explain nothing are flagged."""

from __future__ import annotations

from annotator.checks import (
    COPIES_ARTICLE,
    COPIES_PROMPT,
    OTHER_CLASS,
    RESTATES_TITLE,
    TOO_SHORT,
    find_quote,
    locate_evidence,
    prompt_ngrams,
    rationale_flags,
)
from annotator.labelstudio.config import spans_from_result, spans_to_result
from annotator.prompt import load_prompt
from annotator.taxonomy import load_taxonomy

TAX = load_taxonomy("oecd_aim")
CLASSES = TAX.field("classification").value_ids
PROMPT = prompt_ngrams(load_prompt().system_message(TAX))
TITLE = "Chatbot gave wrong dosage advice to hospital patients"
TEXT = ("A hospital in Leeds said on Monday that its “triage assistant”, a chatbot built on a large\n"
        "language model, told   three patients to double their insulin dose. One patient was admitted to\n"
        "intensive care. The hospital has switched the assistant off while regulators investigate the case.")


def test_a_quote_retyped_with_other_spaces_and_quote_marks_is_found_at_the_articles_own_offsets() -> None:
    start, end = find_quote(TEXT, 'its "triage assistant", a chatbot built on a large language model')
    assert TEXT[start:end] == "its “triage assistant”, a chatbot built on a large\nlanguage model"
    assert find_quote(TEXT, "told three patients to double their insulin dose") is not None
    assert find_quote(TEXT, "the chatbot killed three patients") is None


def test_invented_quotes_are_dropped_and_reported() -> None:
    spans, missing = locate_evidence(TEXT, {"ai_system": ["triage assistant"], "harm": ["patients died of an overdose"],
                                            "realised": ["One patient was admitted to intensive care."]})
    assert [(s["kind"], s["text"]) for s in spans] == [("ai_system", "triage assistant"),
                                                       ("realised", "One patient was admitted to\nintensive care.")]
    assert missing == ["patients died of an overdose"]


def test_spans_go_to_label_studio_in_utf16_offsets_and_come_back_in_python_offsets() -> None:
    text = "🤖 robots " + TEXT  # the emoji is two UTF-16 code units
    spans, _ = locate_evidence(text, {"ai_system": ["triage assistant"]})
    items = spans_to_result(TAX, text, spans)
    assert items[0]["value"]["start"] == spans[0]["start"] + 1 and items[0]["value"]["labels"] == ["AI system"]
    assert spans_from_result(TAX, text, items) == spans


def flags(rationale: str | None, chosen: str = "AI incident") -> list[str]:
    return rationale_flags(rationale, TITLE, TEXT, chosen, CLASSES, PROMPT)


def test_an_explaining_rationale_earns_no_flag() -> None:
    good = ("The hospital's triage chatbot, a large language model, advised patients to double their insulin, and "
            "one needed intensive care. Harm to health has happened, so this is an AI incident rather than an AI hazard.")
    assert flags(good) == []


def test_lazy_rationales_are_flagged_each_for_what_it_does() -> None:
    assert flags(None) == [TOO_SHORT] and flags("AI incident.") == [TOO_SHORT]
    assert flags(TITLE + ".") == [RESTATES_TITLE]
    assert COPIES_ARTICLE in flags(" ".join(TEXT.split()[:30]))
    definition = ("An AI hazard is an event in which building, using or a failure of AI systems could plausibly "
                  "lead to such harm, but the harm has not happened (yet).")
    assert flags(definition) == [COPIES_PROMPT, OTHER_CLASS]
    unrelated = "No AI system is involved here; the article reports a chatbot story, so this one is Unrelated to harm."
    assert OTHER_CLASS in flags(unrelated)
