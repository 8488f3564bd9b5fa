"""`t2s-bench baseline save RUN --out FILE`: the compact baseline file of a run, to commit.

The file holds per-question verdicts (execution and exact match, error class), the run's config
hash, dataset and selection (see t2s_bench/regression/baseline.py); `t2s-bench compare` and the
pytest plugin's `assert_no_regression` compare later runs with it.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("baseline", help="save a run's per-question verdicts as a small baseline file",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    save = actions.add_parser("save", help="write the baseline file of a scored run directory")
    save.add_argument("run", metavar="RUN", help="run directory (a packed run is scored first)")
    save.add_argument("--out", "-o", required=True, metavar="FILE", help="baseline file to write (JSON)")
    save.add_argument("--with-sql", action="store_true",
                      help="also keep each predicted SQL (shown beside the new SQL when a question flips)")
    save.set_defaults(func=run_save)


def run_save(args: argparse.Namespace) -> int:
    from t2s_bench.regression.baseline import Verdicts

    verdicts = Verdicts.from_run(args.run)
    path = verdicts.save(args.out, with_sql=args.with_sql)
    ex, em = verdicts.accuracy("exec"), verdicts.accuracy("exact")
    print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB): {len(verdicts.questions)} questions of "
          f"{verdicts.dataset}, {verdicts.system}, EX {_pct(ex)}, EM {_pct(em)}")
    return 0


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"
