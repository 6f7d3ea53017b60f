"""Gold records from reviewed labels: adjudication, story groups and splits, output formats, data card.

- `adjudicate`: one article's reviews → a decision or a conflict for a lead (pure)
- `splits`: near-duplicate story groups and their train/validation/test assignment (pure)
- `formats`: gold records, CSV/Parquet columns, chat examples (the prompt comes in as data)
- `card`: the data card `gold/README.md` (pure, from the manifest and the eval report)
- `job`: `export`, the I/O edge that reads reviews and articles and writes `gold/`
"""

from annotator.export.adjudicate import POLICIES, Conflict, Decision, adjudicate
from annotator.export.formats import FORMATS, ChatPrompt
from annotator.export.job import ExportSummary, export

__all__ = ["FORMATS", "POLICIES", "ChatPrompt", "Conflict", "Decision", "ExportSummary", "adjudicate", "export"]
