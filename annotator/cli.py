"""The `annotator` command: parses arguments, calls the library, turns results into exit codes.

Nothing here computes anything; every command has a function in the library behind it. Exit
codes: 0 everything succeeded, 1 the job ran but something was rejected or failed (the output
says what), 2 the command could not run (bad arguments, configuration, a planned command).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from annotator.errors import AnnotatorError, NotBuiltYet

Handler = Callable[[argparse.Namespace], int]


def _err(message: str) -> None:
    print(f"annotator: {message}", file=sys.stderr)


# --------------------------------------------------------------------------- taxonomy


def cmd_taxonomy(args: argparse.Namespace) -> int:
    from annotator import taxonomy

    if args.action == "list":
        for name in taxonomy.available_taxonomies():
            tax = taxonomy.load_taxonomy(name)
            print(f"{name}\tv{tax.version}\t{tax.title}")
        return 0
    tax = taxonomy.load_taxonomy(args.name)
    if args.action == "schema":
        print(json.dumps(taxonomy.json_schema(tax), indent=2, ensure_ascii=False))
    else:
        print(taxonomy.label_guide(tax), end="")
    return 0


# --------------------------------------------------------------------------- ingest


def cmd_ingest(args: argparse.Namespace) -> int:
    from annotator.ingest import ingest

    summary = ingest(args.inputs, args.output, on_error=lambda msg: print(msg, file=sys.stderr))
    print(summary.describe())
    return 0 if summary.ok else 1


# --------------------------------------------------------------------------- planned commands


def _planned(issue: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        raise NotBuiltYet(f"'{args.command}' is planned ({issue}) and not built yet")

    return handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="annotator", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("taxonomy", help="list taxonomies, show one's fields and values, print its JSON schema")
    p.add_argument("action", choices=["list", "show", "schema"])
    p.add_argument("name", nargs="?", default="oecd_aim", help="bundled taxonomy name or path to a .yaml file")
    p.set_defaults(func=cmd_taxonomy)

    p = sub.add_parser("ingest", help="read articles from JSONL, CSV, Markdown, .txt or .html files and folders")
    p.add_argument("inputs", nargs="+", help="files or folders")
    p.add_argument("-o", "--output", default="articles.jsonl", help="articles file to append to (default: articles.jsonl)")
    p.set_defaults(func=cmd_ingest)

    for name, issue, help_text in [
        ("draft", "drafting", "draft labels for articles with an LLM"),
        ("push", "Label Studio", "push drafts to Label Studio as predictions"),
        ("pull", "Label Studio", "pull reviews from Label Studio"),
        ("label-config", "Label Studio", "generate the Label Studio labeling config"),
        ("labelstudio", "Label Studio", "start, stop or check a local Label Studio"),
        ("eval", "eval harness", "measure model-reviewer agreement"),
        ("export", "export", "export reviewed labels as gold data"),
        ("demo", "newcomer demo", "run the whole loop on bundled samples"),
    ]:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        p.set_defaults(func=_planned(f"the {issue} issue"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except NotBuiltYet as exc:
        _err(str(exc))
        return 2
    except AnnotatorError as exc:
        _err(str(exc))
        return 2
    except KeyboardInterrupt:
        _err("interrupted; what was written so far is kept, run the same command again to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
