"""`t2s-bench report RUN_DIR [RUN_DIR ...] --out reports/NAME.html`: compare scored runs."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="HTML/Markdown/JSON report over one or more scored run directories",
        description="Summarise scored run directories: accuracy per difficulty with bootstrap CIs, paired "
        "tests against a baseline, error classes, breakdowns, case studies and an example browser.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories holding scores.jsonl")
    p.add_argument("--out", "-o", help="output file (default: reports/<first run>.<format>)")
    p.add_argument("--format", "-f", choices=["html", "md", "json"], default=None,
                   help="output format (default: from --out's suffix, else html)")
    p.add_argument("--baseline", help="run (its directory or directory name) to compare the others against (default: first)")
    p.add_argument("--title", help="report title")
    p.add_argument("--dataset", help="dataset name whose schemas to use (default: from the runs' config.json)")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from t2s_bench.api import report

    path = report(args.runs, out=args.out, baseline=args.baseline, fmt=args.format, title=args.title,
                  dataset=args.dataset, n_resamples=args.resamples, seed=args.seed)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0
