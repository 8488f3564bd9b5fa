"""`t2s-bench suite`: build test suites of databases (score with them: `t2s-bench score --suite DIR`)."""

from __future__ import annotations

import json

HELP = """Build a test suite of databases for a dataset, as the test-suite paper (Zhong, Yu, Klein, EMNLP 2020)
does: random neighbour databases from each database's schema and the values its gold queries mention, then the
few that tell each gold query apart from its near-miss mutants. Written in the official distilled layout
(OUT/<db_id>/<db_id>.sqlite plus variants) with a manifest OUT/suite.json; deterministic for a seed."""


def add_parser(sub) -> None:
    p = sub.add_parser("suite", help="build test suites of databases (test-suite execution accuracy)", description=HELP)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = actions.add_parser("build", help="build a suite for a dataset", description=HELP)
    b.add_argument("--dataset", required=True, help="dataset name (demo, spider-dev, ...) or questions JSON path")
    b.add_argument("--tables", help="tables.json of a questions JSON given as --dataset")
    b.add_argument("--db-dir", help="database folder of a questions JSON given as --dataset")
    b.add_argument("--out", required=True, help="suite folder to write (its database folders are replaced)")
    b.add_argument("--size", type=int, default=40, help="most variants per database (default 40)")
    b.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    b.add_argument("--candidates", type=int, default=400,
                   help="most neighbour databases generated per database (default 400)")
    b.add_argument("--db", action="append", dest="db_ids", help="only this database (repeatable)")
    b.add_argument("--workers", type=int, default=2, help="databases built in parallel (default 2)")
    b.add_argument("--timeout", type=float, default=5.0, help="seconds per query while building (default 5)")
    b.add_argument("--keep-distinct", action="store_true",
                   help="build for scoring with --keep-distinct (DISTINCT mutants then count)")
    b.add_argument("--keep-unique", action="store_true",
                   help="columns whose values are all distinct in the original stay duplicate-free (a lenient "
                        "suite: GROUP BY name and GROUP BY id then agree when names are unique in the data)")
    b.set_defaults(func=build)


def build(args) -> int:
    from t2s_bench.api import build_suite

    manifest = build_suite(args.dataset, args.out, size=args.size, seed=args.seed, candidates=args.candidates,
                           workers=args.workers, timeout=args.timeout, keep_distinct=args.keep_distinct,
                           keep_unique=args.keep_unique,
                           db_ids=args.db_ids, tables=args.tables, db_dir=args.db_dir)
    t = manifest["totals"]
    rate = f"{100 * t['kill_rate']:.1f}%" if t["kill_rate"] is not None else "-"
    print(json.dumps({k: manifest[k] for k in ("dataset", "size", "seed", "seconds")}))
    print(f"{len(manifest['databases'])} databases, {t['n_variants']} variants, {t['n_queries']} gold queries, "
          f"{t['n_mutants']} mutants: {t['n_killed_by_original']} killed by the original database, "
          f"{t['n_killed_by_suite']} of the {t['n_survivors']} survivors killed by the suite ({rate})")
    print(f"suite: {args.out} (score with: t2s-bench score ... --suite {args.out})")
    return 0
