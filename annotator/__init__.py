"""incident-annotator: LLM drafts of AI-incident labels, reviewed in Label Studio, measured and exported.

The library is the product; `annotator` (the CLI) is a thin layer over it. Start with
`annotator.taxonomy.load_taxonomy`, `annotator.ingest.ingest` and `annotator.records`.
"""

__version__ = "0.1.0"
