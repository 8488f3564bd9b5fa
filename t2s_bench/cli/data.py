"""`t2s-bench data fetch|check|stats`: get Spider, check a dataset's health, describe it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from t2s_bench import paths

SPIDER_SPLITS = ["spider-dev", "spider-train"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "data",
        help="fetch Spider, check a dataset, write dataset statistics",
        description="Dataset tools: download and install Spider, check that gold queries execute and that "
        "splits share no database, and describe a dataset (schema sizes, SQL structure, difficulty).",
    )
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])

    from t2s_bench.datasets.fetch import DEFAULT_URL

    f = sub.add_parser(
        "fetch",
        help="download and install a dataset (spider)",
        description="Download the official Spider zip (resumable, with a progress bar), verify its SHA-256 "
        "when given, and unpack it atomically into the cache, where `spider-dev` and `spider-train` find it. "
        "The official file is on Google Drive, which sometimes answers with a web page instead of the zip: "
        "then download spider_data.zip in a browser from https://yale-lily.github.io/spider and pass "
        "--from spider_data.zip, or give a mirror with --url.",
    )
    f.add_argument("name", choices=["spider"], help="dataset to fetch")
    f.add_argument("--dest", help="install folder (default: $T2S_CACHE_DIR/spider, i.e. ~/.cache/t2s-bench/spider)")
    f.add_argument("--url", default=DEFAULT_URL, help="download address of a Spider zip (default: the official "
                   "Google Drive file linked from the Spider site)")
    f.add_argument("--sha256", help="expected SHA-256 of the zip; the install stops on a mismatch")
    f.add_argument("--from", dest="from_path", metavar="PATH",
                   help="install from a local zip or an already-unpacked Spider folder instead of downloading")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    f.set_defaults(func=run_fetch)

    c = sub.add_parser(
        "check",
        help="check that gold queries execute, list missing databases, check split disjointness",
        description="Execute every gold query whose database is present (read-only, time-limited), list the "
        "examples whose database is missing (they are skipped with that reason in runs), and, with --against, "
        "check that the two datasets share no database. Exit code 0 when no problem is found, 1 otherwise.",
    )
    c.add_argument("--dataset", help="dataset name or questions JSON (default: spider-dev when Spider is "
                   "installed, else demo)")
    c.add_argument("--against", metavar="NAME", help="a second dataset that must share no database "
                   "(e.g. spider-train)")
    c.add_argument("--tables", help="tables.json of a questions JSON given as --dataset (default: the one beside it)")
    c.add_argument("--db-dir", help="database folder of a questions JSON given as --dataset (default: database/ beside it)")
    c.add_argument("--json", metavar="OUT", help="also write the report as JSON to OUT")
    c.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    c.add_argument("--timeout", type=float, default=30.0, help="seconds per query (default 30)")
    c.set_defaults(func=run_check)

    s = sub.add_parser(
        "stats",
        help="dataset statistics as Markdown and JSON",
        description="Counts of databases, tables and columns; schema size per database; SQL length in "
        "characters and tokens; join, nesting and set-operation frequencies; Spider difficulty levels. "
        "Without --dataset and with Spider installed, describes spider-dev and spider-train in "
        "reports/spider_dataset_knowledge_base.md and .json; otherwise the named datasets (or the demo) "
        "in <name>_dataset_stats.md and .json.",
    )
    s.add_argument("--dataset", action="append", metavar="NAME",
                   help="dataset name or questions JSON; repeat for several")
    s.add_argument("--out-dir", default="reports", help="output folder (default: reports)")
    s.set_defaults(func=run_stats)

    ln = sub.add_parser(
        "linking",
        help="schema-linking and value-retrieval recall, and prompt tokens saved, as a function of k",
        description="For each question: gold tables and columns parsed from the gold SQL; the linker's pruned "
        "schema (top-k tables + the tables joining them) for each k; strict recall (a dropped gold table is a "
        "miss), schema tokens against the full DDL (Qwen tokenizer when its GGUF is cached), and the share of "
        "the gold string literals stored in the database that value retrieval shows. Prints a table and "
        "writes JSON and Markdown.",
    )
    ln.add_argument("--dataset", default="spider-dev", help="dataset with gold SQL (default spider-dev), or "
                    "spider-train-heldout: the schema-disjoint held-out databases of Spider train (for choosing k)")
    ln.add_argument("--linker", action="append", help="linker name (repeatable; default combined)")
    ln.add_argument("--k", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="tables retrieved (default 1 2 3 4 5)")
    ln.add_argument("--margin", type=float, nargs="*", default=[0.3],
                    help="also: variants keeping any table within MARGIN of the best score, at k=2 (default 0.3: "
                    "the default pruning)")
    ln.add_argument("--columns", type=int, nargs="*", default=[],
                    help="also: variants keeping only the N best columns per table (plus keys), at each k")
    ln.add_argument("--limit", type=int, help="first N questions")
    ln.add_argument("--no-values", action="store_true", help="skip value-retrieval recall")
    ln.add_argument("--out", help="JSON output (default results/linking-<dataset>-<linker>.json; .md beside it)")
    ln.set_defaults(func=run_linking)


def _default_dataset() -> str:
    return "spider-dev" if paths.spider_dir() is not None else "demo"


def run_fetch(args: argparse.Namespace) -> int:
    from t2s_bench.datasets.fetch import FetchError, fetch_spider

    try:
        dest = fetch_spider(args.dest, url=args.url, sha256=args.sha256, from_path=args.from_path,
                            progress=not args.no_progress)
    except FetchError as e:
        print(f"t2s-bench data fetch: error: {e}", file=sys.stderr)
        return 2
    print(f"Spider installed at {dest}")
    if paths.spider_dir() != dest:
        print(f"(spider-dev/spider-train read another copy first; set T2S_SPIDER_DIR={dest} to use this one)")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from t2s_bench.datasets import load_dataset
    from t2s_bench.datasets.check import check_dataset, write_report

    dataset = load_dataset(args.dataset or _default_dataset(), tables=args.tables, db_dir=args.db_dir)
    against = load_dataset(args.against) if args.against else None
    report = check_dataset(dataset, workers=args.workers, against=against, timeout=args.timeout)
    print(report.to_text())
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_report(report, args.json)
        print(f"wrote {args.json}")
    return 0 if report.ok else 1


def run_stats(args: argparse.Namespace) -> int:
    from t2s_bench.datasets import load_dataset
    from t2s_bench.datasets.stats import SPIDER_KB_STEM, dataset_stats, write_stats

    names = args.dataset or (SPIDER_SPLITS if paths.spider_dir() is not None else ["demo"])
    all_stats = [dataset_stats(load_dataset(n)) for n in names]
    if sorted(names) == sorted(SPIDER_SPLITS) or names == ["spider-dev"]:
        stem, title = SPIDER_KB_STEM, "Spider dataset knowledge base"
    else:
        stem = "_".join(Path(n).stem if n.endswith(".json") else n for n in names) + "_dataset_stats"
        title = f"Dataset statistics: {', '.join(names)}"
    md, js = write_stats(all_stats, args.out_dir, stem, title)
    from t2s_bench.reporting.render import render_dataset_report

    html = render_dataset_report(all_stats if len(all_stats) > 1 else all_stats[0], Path(args.out_dir) / f"{stem}.html")
    for s in all_stats:
        c = s["counts"]
        print(f"{s['dataset']}: {c['examples']} examples, {c['databases']} databases, {c['tables']} tables, "
              f"{c['columns']} columns; difficulty: {json.dumps(s['difficulty'])}")
    print(f"wrote {md}, {js} and {html}")
    return 0


def run_linking(args: argparse.Namespace) -> int:
    from t2s_bench.linking.measure import Variant, measure_linking, to_markdown, token_counter, write_result
    from t2s_bench.linking.prune import DEFAULT_K

    dataset = _linking_dataset(args.dataset)
    variants = [Variant(k) for k in args.k]
    variants += [Variant(DEFAULT_K, margin=m) for m in args.margin]
    variants += [Variant(k, columns=c) for c in args.columns for k in args.k]
    counter = token_counter()
    for linker in args.linker or ["combined"]:
        result = measure_linking(dataset, linker, variants, values=not args.no_values, limit=args.limit,
                                 count_tokens=counter)
        print(to_markdown(result))
        out = args.out if args.out and len(args.linker or [1]) == 1 else f"results/linking-{args.dataset}-{linker}.json"
        js, md = write_result(result, out)
        print(f"wrote {js} and {md}")
    return 0


def _linking_dataset(name: str):
    """A dataset by name; `spider-train-heldout` is Spider train's held-out databases (training's split)."""
    from t2s_bench.datasets import load_dataset

    if name != "spider-train-heldout":
        return load_dataset(name)
    from t2s_bench.training.data import held_out_databases

    train = load_dataset("spider-train")
    held = held_out_databases(train)
    data = train.filter(db_ids=held)
    data.name = name
    return data
