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

from annotator.errors import AnnotatorError, NotBuiltYet, TaxonomyError

Handler = Callable[[argparse.Namespace], int]


TAXONOMY_HELP = "bundled taxonomy name or path to a .yaml file (default: [defaults] taxonomy in annotator.toml, else oecd_aim)"


def _err(message: str) -> None:
    print(f"annotator: {message}", file=sys.stderr)


def _taxonomy(args: argparse.Namespace) -> str:
    """The taxonomy the command line names, else annotator.toml's default."""
    from annotator.config import defaults

    return getattr(args, "taxonomy", None) or defaults().taxonomy


# --------------------------------------------------------------------------- taxonomy


def cmd_taxonomy(args: argparse.Namespace) -> int:
    from annotator import taxonomy

    if args.action == "import-stix":
        from annotator.stix import import_stix_file

        if not args.name:
            raise TaxonomyError("import-stix needs the STIX bundle to read: annotator taxonomy import-stix BUNDLE -o FILE.yaml")
        written = import_stix_file(args.name, args.output, name=args.as_name, subject=args.subject, version=args.version,
                                   source=args.source)
        print(f"{args.output}: {written}")
        return 0
    if args.action == "list":
        for name in taxonomy.available_taxonomies():
            tax = taxonomy.load_taxonomy(name)
            print(f"{name}\tv{tax.version}\t{tax.title}")
        return 0
    tax = taxonomy.load_taxonomy(args.name or _taxonomy(args))
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


# --------------------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> int:
    from annotator.demo import run_demo, stop_demo

    if args.down:
        stop_demo(args.labelstudio_dir)
        return 0
    summary = run_demo(
        args.out, simulate_review=args.simulate_review, project=args.project, labelstudio_dir=args.labelstudio_dir,
        inputs=args.input,
        blind_share=args.blind_share, blind_reviewers=args.blind_reviewers, model=args.model,
        base_url=args.base_url, config=args.config, strict=args.strict, on_error=lambda msg: print(msg, file=sys.stderr),
    )
    return summary.exit_code


def _add_demo_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="the whole loop on the bundled sample articles: ingest, draft, Label Studio, eval, export")
    p.add_argument("--out", default="out", help="folder for the demo's files (default: out)")
    p.add_argument("--simulate-review", action="store_true",
                   help="play the reviewers (simulated from the samples' gold labels) so every stage runs")
    p.add_argument("--project", default="incident-annotator demo", help="Label Studio project title (default: %(default)s)")
    p.add_argument("--labelstudio-dir", help="data folder of the local Label Studio to start or reuse (default: "
                                             ".annotator/labelstudio; without it LABEL_STUDIO_URL/LABEL_STUDIO_API_KEY win when set)")
    p.add_argument("--blind-share", type=float, default=0.1, help="share of articles reviewed blind (default: 0.1)")
    p.add_argument("--blind-reviewers", type=int, default=3, help="reviewers per blind task (default: 3)")
    p.add_argument("--model", help="model name (default: as `annotator draft`)")
    p.add_argument("--base-url", help="OpenAI-compatible endpoint (default: OPENAI_BASE_URL; with no key and no URL, "
                                      "the embedded local model)")
    p.add_argument("--config", default="annotator.toml", help="config file (default annotator.toml)")
    p.add_argument("--input", action="append", help="a file or folder of articles to use instead of the bundled samples "
                                                      "(repeatable; simulated reviewers review only the samples)")
    p.add_argument("--strict", action="store_true", help="exit 1 when any article's draft failed, too (for CI); by default "
                                                         "only a stage that rejected input exits 1")
    p.add_argument("--down", action="store_true", help="stop what the demo started (Label Studio, a leftover model server)")
    p.set_defaults(func=cmd_demo)


# --------------------------------------------------------------------------- incidents


def cmd_incidents(args: argparse.Namespace) -> int:
    from annotator.incidents import import_incidents

    summary = import_incidents(args.files, args.output, on_error=lambda msg: print(msg, file=sys.stderr))
    print(summary.describe())
    return 0 if summary.ok else 1


def _add_incidents_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("incidents", help="known incidents: import OECD AIM records or JSONL {id, title, summary, date}")
    p.add_argument("action", choices=["import"])
    p.add_argument("files", nargs="+", help="AIM record files (.txt/.md, or folders of them) and .jsonl files")
    p.add_argument("-o", "--output", default="incidents.jsonl",
                   help="incidents file to merge into, by id (default: incidents.jsonl)")
    p.set_defaults(func=cmd_incidents)


# --------------------------------------------------------------------------- export


def cmd_export(args: argparse.Namespace) -> int:
    from annotator.config import defaults
    from annotator.export import export
    from annotator.prompt import load_prompt

    formats = [x.strip() for x in args.format.split(",") if x.strip()]
    summary = export(
        args.reviews, args.articles, args.output,
        taxonomy=_taxonomy(args), policy=args.policy, leads=[x.strip() for x in args.leads.split(",") if x.strip()],
        split=args.split, seed=args.seed, formats=formats,
        prompt=load_prompt(args.prompt or defaults().prompt) if "chat" in formats else None, eval_path=args.eval, on_error=lambda msg: print(msg, file=sys.stderr),
        include_auto=args.include_auto,
    )
    print(summary.describe())
    return 0 if summary.ok else 1


def _add_export_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("export", help="export reviewed labels as gold data: splits, jsonl/csv/parquet/chat, data card")
    p.add_argument("reviews", help="reviews file (from `annotator pull`)")
    p.add_argument("--articles", required=True, help="articles file the reviews refer to (article text comes from here)")
    p.add_argument("-o", "--output", default="gold", help="output folder (default: gold); its manifest.json keeps splits stable")
    p.add_argument("--policy", default="majority",
                   help="latest, majority or lead: how several reviews of one article are decided (default: majority)")
    p.add_argument("--leads", default="", help="comma-separated annotators whose reviews win under --policy lead")
    p.add_argument("--split", default="80/10/10", help="train/validation/test proportions (default: 80/10/10)")
    p.add_argument("--seed", type=int, default=0, help="split seed (default: 0)")
    p.add_argument("--format", default="jsonl,csv,parquet,chat", help="any of jsonl,csv,parquet,chat (default: all)")
    p.add_argument("--taxonomy", help=TAXONOMY_HELP)
    p.add_argument("--prompt", help="prompt version for the chat format's system and user messages (default: [defaults] prompt in annotator.toml, else incident@v1)")
    p.add_argument("--eval", default=None, help="eval report metrics.json whose agreement figures go into the data card")
    p.add_argument("--include-auto", action="store_true",
                   help="also export drafts accepted without review (source auto_accepted in the reviews file; "
                        "column label_source says which, auto_guarantee states the promise they were accepted under)")
    p.set_defaults(func=cmd_export)


# --------------------------------------------------------------------------- draft


def cmd_draft(args: argparse.Namespace) -> int:
    from annotator.draft import run_draft

    summary = run_draft(
        args.articles, args.output, config=args.config, batch=args.batch, progress=not args.quiet,
        model=args.model, base_url=args.base_url, output_mode=args.output_mode, embedded_threads=args.embedded_threads,
        concurrency=args.concurrency,
        prompt=args.prompt, taxonomy=args.taxonomy, cache=args.cache, samples=args.samples, examples=args.examples,
        shots=args.shots, max_article_tokens=args.max_article_tokens, confidence_samples=args.confidence_samples,
        incidents=args.incidents,
        two_step=args.two_step,
    )
    print(summary.describe())
    return 0 if summary.ok else 1


# --------------------------------------------------------------------------- eval


def cmd_eval(args: argparse.Namespace) -> int:
    from annotator.calibrate import is_auto
    from annotator.errors import ConfigError
    from annotator.evaluate import evaluate, load_thresholds, write_report
    from annotator.evaluate.inputs import read_labelled, read_titles, without_applied
    from annotator.evaluate.model import schema
    from annotator.records import Draft, GoldRecord, Review
    from annotator.taxonomy import load_taxonomy

    if args.schema:
        print(json.dumps(schema(), indent=2))
        return 0
    if not args.drafts or not (args.reviews or args.gold):
        raise ConfigError("eval needs --drafts and one of --reviews or --gold (or --schema alone)")
    tax = load_taxonomy(_taxonomy(args))
    thresholds = load_thresholds(args.thresholds, tax) if args.thresholds else None
    bad: list[str] = []

    def report(msg: str) -> None:
        bad.append(msg)
        print(msg, file=sys.stderr)

    drafts = read_labelled(args.drafts, Draft, tax, report)
    references = read_labelled(args.reviews, Review, tax, report) if args.reviews else read_labelled(args.gold, GoldRecord, tax, report)
    references, applied = without_applied(references)
    if applied:
        print(f"{applied} reviews applied from a story (applied_from_story) are not scored; the rest are", file=sys.stderr)
    auto = sum(is_auto(r) for r in references)
    if auto:  # drafts accepted without review are the drafts themselves: scoring them would flatter the model
        references = [r for r in references if not is_auto(r)]
        print(f"{args.reviews or args.gold}: {auto} auto-accepted drafts not scored", file=sys.stderr)
    other = read_labelled(args.compare, Draft, tax, report) if args.compare else None
    titles = read_titles(args.articles, report) if args.articles else None
    result = evaluate(
        drafts, references, tax, compare=other, thresholds=thresholds, n_boot=args.bootstrap, seed=args.seed, titles=titles, alt_epsilon=args.alt_epsilon
    )
    for path in write_report(result, args.output):
        print(path)
    gate = result.metrics.thresholds
    for check in gate.checks if gate else []:
        if not check.passed:
            value = "not measured" if check.value is None else f"{check.value:.3f}"
            print(f"threshold missed: {check.field}.{check.metric} = {value} < {check.minimum:g}", file=sys.stderr)
    if bad:
        print(f"{len(bad)} input line(s) rejected; the eval ran on the rest", file=sys.stderr)
    return 0 if result.passed and not bad else 1


def _add_eval_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("eval", help="measure model-reviewer agreement: metrics.json, summary.md, report.html")
    p.add_argument("--drafts", help="drafts file (from `annotator draft`); required unless --schema")
    ref = p.add_mutually_exclusive_group()
    ref.add_argument("--reviews", help="reviews file (from `annotator pull`)")
    ref.add_argument("--gold", help="gold file (records with article_id, labels, rationale; fields a record lacks are not scored)")
    p.add_argument("-o", "--output", default="report", help="report folder (default: report)")
    p.add_argument("--compare", help="baseline drafts file: paired difference (drafts minus baseline) and McNemar")
    p.add_argument("--thresholds", help="TOML of field -> metric -> minimum; exit 1 when any is missed (e.g. evals/thresholds.toml)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of articles for the 95%% intervals (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.add_argument("--taxonomy", help=TAXONOMY_HELP)
    p.add_argument("--articles", help="articles file, for titles in the worst-disagreement list")
    p.add_argument(
        "--alt-epsilon", type=float, default=0.2,
        help="alternative annotator test margin: 0.2 expert reviewers, 0.15 skilled, 0.1 crowd (default: 0.2; see the README)",
    )
    p.add_argument("--schema", action="store_true", help="print metrics.json's JSON Schema and exit")
    p.set_defaults(func=cmd_eval)


# --------------------------------------------------------------------------- calibrate and accept


def _read_for_calibration(args: argparse.Namespace, bad: list[str]) -> tuple[list, list]:  # type: ignore[type-arg]
    from annotator.evaluate.inputs import read_labelled
    from annotator.records import Draft, Review
    from annotator.taxonomy import load_taxonomy

    def report(msg: str) -> None:
        bad.append(msg)
        print(msg, file=sys.stderr)

    tax = load_taxonomy(_taxonomy(args))
    drafts = read_labelled(args.drafts, Draft, tax, report)
    reviews = read_labelled(args.reviews, Review, tax, report) if getattr(args, "reviews", None) else []
    return drafts, reviews


def cmd_calibrate(args: argparse.Namespace) -> int:
    from annotator.calibrate import calibrate
    from annotator.records import write_text_atomic
    from annotator.taxonomy import load_taxonomy

    bad: list[str] = []
    drafts, reviews = _read_for_calibration(args, bad)
    policy = calibrate(load_taxonomy(_taxonomy(args)), drafts, reviews, args.field, risk=args.risk, delta=args.delta,
                       method=args.method)
    write_text_atomic(args.output, policy.model_dump_json(indent=1) + "\n")
    print(policy.describe())
    print(args.output)
    if bad:
        print(f"{len(bad)} input line(s) rejected; calibrated on the rest", file=sys.stderr)
    return 1 if bad else 0


def cmd_accept(args: argparse.Namespace) -> int:
    from pathlib import Path

    from annotator.calibrate import Calibration, accept
    from annotator.errors import ConfigError
    from annotator.records import write_jsonl

    try:
        policy = Calibration.model_validate_json(Path(args.policy).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{args.policy}: not a calibration policy ({str(exc).splitlines()[0]})") from None
    bad: list[str] = []
    args.taxonomy = policy.taxonomy
    drafts, _ = _read_for_calibration(args, bad)
    accepted, counts = accept(policy, drafts, audit_share=args.audit_share, seed=args.seed)
    write_jsonl(args.output, accepted)
    print(f"{args.output}: {counts['accepted']} drafts accepted without review, {counts['audit']} kept for the blind "
          f"audit slice; left for review: " + (", ".join(f"{v} {k}" for k, v in sorted(counts.items())
                                                     if k not in ("accepted", "audit")) or "none"))
    print(policy.guarantee)
    return 1 if bad else 0


def _add_calibrate_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("calibrate", help="the lowest confidence threshold whose accepted drafts keep an error rate "
                                         "of at most --risk with probability 1 - --delta (blind reviews only)")
    p.add_argument("--field", action="append", required=True,
                   help="label field to calibrate; repeat for several (a draft is wrong when any is)")
    p.add_argument("--risk", type=float, default=0.05, help="highest error rate allowed among accepted drafts (default 0.05)")
    p.add_argument("--delta", type=float, default=0.1, help="chance the promise may fail (default 0.1: 90%% certainty)")
    p.add_argument("--method", choices=["binomial", "hoeffding-bentkus"], default="binomial",
                   help="p-value of each threshold's test (default binomial: exact for right/wrong)")
    p.add_argument("--drafts", required=True, help="drafts file (from `annotator draft`)")
    p.add_argument("--reviews", required=True, help="reviews file (from `annotator pull`); only blind reviews calibrate")
    p.add_argument("--taxonomy", help=TAXONOMY_HELP)
    p.add_argument("-o", "--output", default="calibration.json", help="policy file to write (default calibration.json)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("accept", help="accept drafts at or above a calibrated threshold (a random audit share still "
                                      "goes to blind review)")
    p.add_argument("drafts", help="drafts file (from `annotator draft`)")
    p.add_argument("--policy", required=True, help="calibration.json from `annotator calibrate`")
    p.add_argument("--audit-share", type=float, default=0.05,
                   help="share of accepted drafts still sent to blind review, to re-check the promise (default 0.05)")
    p.add_argument("--seed", default="0", help="seed of the audit selection (default 0)")
    p.add_argument("-o", "--output", default="accepted.jsonl", help="accepted drafts file (default accepted.jsonl)")
    p.set_defaults(func=cmd_accept)


# --------------------------------------------------------------------------- Label Studio


def cmd_label_config(args: argparse.Namespace) -> int:
    from pathlib import Path

    from annotator.labelstudio.config import label_config
    from annotator.taxonomy import load_taxonomy

    xml = label_config(load_taxonomy(_taxonomy(args)))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(xml, encoding="utf-8")
        print(args.output)
    else:
        print(xml, end="")
    return 0


def cmd_labelstudio(args: argparse.Namespace) -> int:
    from annotator.labelstudio import server

    if args.action == "check":
        return cmd_labelstudio_check(args)
    if args.action == "up":
        state = server.start(args.data_dir, port=args.port, log=lambda m: print(m, file=sys.stderr), db=args.db)
        print(f"Label Studio is up at {state.url} (pid {state.pid}, data in {state.data_dir}, database {state.db})")
        print(f"log in as {state.username} / {state.password}")
        print("point the workbench at it:")
        print(state.env_hint())
        return 0
    if args.action == "down":
        print("stopped" if server.stop(args.data_dir) else "not running")
        return 0
    state, up = server.status(args.data_dir)
    if state is None:
        print("not running (no server recorded for this data dir)")
        return 1
    print(f"{'up' if up else 'DOWN'}: {state.url} (pid {state.pid}, data in {state.data_dir}, log {state.log})")
    return 0 if up else 1


def cmd_labelstudio_check(args: argparse.Namespace) -> int:
    from annotator.errors import ConfigError
    from annotator.labelstudio.check import check
    from annotator.labelstudio.client import connect

    if not args.project:
        raise ConfigError("`labelstudio check` needs --project NAME")
    report = check(connect(), args.project, fix=args.fix)
    for line in report.lines():
        print(line)
    print("ok" if report.ok else "problems found" + ("" if args.fix else " (see above; --fix removes unannotated duplicates)"))
    return 0 if report.ok else 1


def cmd_push(args: argparse.Namespace) -> int:
    from annotator.labelstudio.client import connect
    from annotator.labelstudio.push import push_files
    from annotator.taxonomy import load_taxonomy

    result = push_files(
        connect(), args.drafts, args.articles, load_taxonomy(_taxonomy(args)), args.project,
        on_error=lambda msg: print(msg, file=sys.stderr), update_config=args.update_config,
        batch_size=args.batch_size, blind_share=args.blind_share, blind_reviewers=args.blind_reviewers, seed=args.seed,
        accepted_path=args.accepted,
    )
    print(result.describe())
    return 0 if result.ok else 1


def cmd_pull(args: argparse.Namespace) -> int:
    from annotator.labelstudio.client import connect
    from annotator.labelstudio.pull import PullResult, iter_pull
    from annotator.records import write_jsonl
    from annotator.taxonomy import load_taxonomy

    tally = PullResult()  # counts only: the reviews stream to the file a page at a time

    def report(msg: str) -> None:
        tally.problems.append(msg)
        print(msg, file=sys.stderr)

    def counted(reviews):  # type: ignore[no-untyped-def]
        for r in reviews:
            tally.count(r)
            yield r

    reviews = counted(iter_pull(connect(), load_taxonomy(_taxonomy(args)), args.project, since=args.since, on_error=report))
    bad = 0
    if args.accepted:
        from annotator.calibrate import Acceptance, with_acceptances
        from annotator.records import iter_jsonl

        def reject(exc: Exception) -> None:
            nonlocal bad
            bad += 1
            print(exc, file=sys.stderr)

        accepted = list(iter_jsonl(args.accepted, Acceptance, on_error=reject))
        reviews = with_acceptances(list(reviews), accepted)  # joins every review: held in memory
        print(f"{args.output}: {sum(not a.audit for a in accepted)} auto-accepted drafts added (source auto_accepted)")
    write_jsonl(args.output, reviews)
    print(f"{args.output}: {tally.describe()}")
    return 0 if tally.ok and not bad else 1


def _add_labelstudio_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("label-config", help="generate the Label Studio labeling config from a taxonomy")
    p.add_argument("--taxonomy", help=TAXONOMY_HELP)
    p.add_argument("-o", "--output", help="file to write (default: print)")
    p.set_defaults(func=cmd_label_config)

    p = sub.add_parser("labelstudio", help="start, stop or look at a local Label Studio; check a project for duplicates")
    p.add_argument("action", choices=["up", "down", "status", "check"])
    p.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--data-dir", help="Label Studio data folder (default: ~/.local/share/incident-annotator/labelstudio)")
    p.add_argument("--db", choices=["sqlite", "postgres"], help="up: database of a new data dir: sqlite (one person, the "
                   "default) or postgres (a team: a private PostgreSQL cluster, installed from Debian's packages if absent)")
    p.add_argument("--project", help="check: the project title (its blind companion is checked too)")
    p.add_argument("--fix", action="store_true", help="check: remove duplicate tasks that hold no annotation")
    p.set_defaults(func=cmd_labelstudio)

    p = sub.add_parser("push", help="push drafts to Label Studio as predictions (LABEL_STUDIO_URL, LABEL_STUDIO_API_KEY)")
    p.add_argument("drafts", help="drafts file (from `annotator draft`)")
    p.add_argument("--project", required=True, help="project title (created if no project has it)")
    p.add_argument("--articles", help="articles file the drafts refer to (default: articles.jsonl next to the drafts)")
    p.add_argument("--taxonomy", help=TAXONOMY_HELP)
    p.add_argument("--update-config", action="store_true", help="replace the project's labeling config if it drifted")
    p.add_argument("--batch-size", type=int, default=500, help="tasks per import request (default: 500)")
    p.add_argument("--blind-share", type=float, default=0.0, help="share of new articles reviewed blind (default: 0)")
    p.add_argument("--blind-reviewers", type=int, default=3, help="reviewers per blind task (default: 3)")
    p.add_argument("--seed", default="0", help="seed of the blind selection (default: 0)")
    p.add_argument("--accepted", help="accepted.jsonl from `annotator accept`: accepted drafts get no task, their "
                                      "audit slice goes to blind review")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("pull", help="pull reviews from Label Studio into a reviews file")
    p.add_argument("--project", required=True, help="project title (its blind companion is pulled too)")
    p.add_argument("-o", "--output", default="reviews.jsonl", help="reviews file to write (default: reviews.jsonl)")
    p.add_argument("--since", help="only annotations updated after this ISO date-time")
    p.add_argument("--accepted", help="accepted.jsonl from `annotator accept`: its drafts join the reviews as "
                                      "source auto_accepted, and blind reviews of its audit slice are marked")
    p.add_argument("--taxonomy", help=TAXONOMY_HELP)
    p.set_defaults(func=cmd_pull)


# --------------------------------------------------------------------------- planned commands


def _planned(issue: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        raise NotBuiltYet(f"'{args.command}' is planned ({issue}) and not built yet")

    return handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="annotator", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("taxonomy", help="list taxonomies, show one's fields and values, print its JSON schema, "
                                        "import one from a STIX bundle")
    p.add_argument("action", choices=["list", "show", "schema", "import-stix"])
    p.add_argument("name", nargs="?", help=TAXONOMY_HELP + " (import-stix: the STIX 2.1 bundle, e.g. DISARM.json)")
    p.add_argument("-o", "--output", help="import-stix: the taxonomy file to write")
    p.add_argument("--as-name", help="import-stix: the taxonomy's name (default: the output file's name)")
    p.add_argument("--subject", default="influence operation",
                   help="import-stix: what the classification asks about (default: %(default)s)")
    p.add_argument("--version", help="import-stix: version to record (default: the bundle's, else its newest change date)")
    p.add_argument("--source", default="", help="import-stix: where the bundle came from (recorded in the file)")
    p.set_defaults(func=cmd_taxonomy)

    _add_demo_parser(sub)

    p = sub.add_parser("ingest", help="read articles from JSONL, CSV, Markdown, .txt or .html files and folders")
    p.add_argument("inputs", nargs="+", help="files or folders")
    p.add_argument("-o", "--output", default="articles.jsonl", help="articles file to append to (default: articles.jsonl)")
    p.set_defaults(func=cmd_ingest)

    _add_export_parser(sub)
    _add_incidents_parser(sub)

    p = sub.add_parser("draft", help="draft labels for articles with an LLM")
    p.add_argument("articles", help="articles JSONL (from ingest)")
    p.add_argument("-o", "--output", default="drafts.jsonl", help="drafts file to append to (default: drafts.jsonl)")
    p.add_argument("--model", help="model name (default: [llm] model in annotator.toml, else gpt-4o-mini)")
    p.add_argument("--base-url", help="OpenAI-compatible endpoint (default: OPENAI_BASE_URL; with no key and no URL, "
                                      "the embedded local model)")
    p.add_argument("--concurrency", type=int, help="at most this many requests in flight (default 512); below it the "
                                                   "number adapts to the endpoint's rate limit and latency")
    p.add_argument("--prompt", help="prompt template NAME@VERSION (default: [defaults] prompt in annotator.toml, else incident@v1)")
    p.add_argument("--taxonomy", help=TAXONOMY_HELP)
    p.add_argument("--cache", help="answer cache (default .annotator/cache.sqlite)")
    p.add_argument("--samples", type=int, help="answers per article; confidence from their agreement when the "
                                                "endpoint returns no log-probabilities (default 1)")
    p.add_argument("--confidence-samples", type=int,
                   help="short label-only answers per article for confidence when the endpoint returns no "
                        "log-probabilities (the embedded model never does); 0 turns it off (default 4)")
    p.add_argument("--examples", help="gold JSONL to take few-shot examples from")
    p.add_argument("--shots", type=int, help="few-shot examples per article, most similar first (default 3)")
    p.add_argument("--max-article-tokens", type=int, help="cut longer articles to about this many tokens (flag: truncated)")
    p.add_argument("--output-mode", choices=["auto", "json_schema", "json_object", "plain"], help="structured output mode "
                                                                                                  "(default auto)")
    p.add_argument("--embedded-threads", type=int, help="threads for the embedded model's answer (default: [llm] "
                   "embedded_threads, else 2 when the 1-minute load average leaves two cores free, 1 otherwise)")
    p.add_argument("--two-step", choices=["auto", "on", "off"], help="large hierarchical fields (DISARM techniques): "
                   "top-level values first, then the values under them (default auto: fields of more than 60 values)")
    p.add_argument("--batch", action="store_true", help="use the Batch API: submit, or on a later run collect and merge")
    p.add_argument("--incidents", help="recorded incidents (from `annotator incidents import`): also draft the taxonomy's "
                                       "link (follow_up_of), one of the incidents most like each article, or none")
    p.add_argument("--config", default="annotator.toml", help="config file (default annotator.toml)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_draft)

    _add_eval_parser(sub)

    _add_labelstudio_parsers(sub)
    _add_calibrate_parsers(sub)
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
