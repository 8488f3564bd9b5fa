"""`t2s-bench compare RUN BASELINE [--fail-on-regression] [--alpha 0.05] [--max-drop X]`: a run
against a baseline on the questions both scored (paired; McNemar's exact test, as the reports use).

RUN is a run directory (or a baseline file); BASELINE a run directory or a file written by
`t2s-bench baseline save`. A regression is a drop that is significant at --alpha, or larger than
--max-drop (a fraction: 0.05 = 5 points).

Exit codes:
  0  no regression (or --fail-on-regression not given)
  1  regression, with --fail-on-regression: the questions that flipped are printed
  2  bad input: a missing or unreadable run or baseline, another dataset, changed gold SQL,
     no question in common
"""

from __future__ import annotations

import argparse

EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT = 0, 1, 2


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("compare", help="compare a run with a baseline; fail on a significant regression",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN", help="run directory (or baseline file)")
    p.add_argument("baseline", metavar="BASELINE", help="baseline file or run directory")
    p.add_argument("--fail-on-regression", action="store_true", help="exit 1 when the run regressed")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of McNemar's test (default 0.05)")
    p.add_argument("--max-drop", type=float, default=None, metavar="X",
                   help="also a regression: a drop larger than X (a fraction), significant or not")
    p.add_argument("--metric", choices=["exec", "exact"], default="exec",
                   help="execution accuracy (default) or exact-set match")
    p.add_argument("--show", type=int, default=20, help="flipped questions to print (default 20)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from t2s_bench.regression.baseline import compare_verdicts, load_verdicts

    if not 0 < args.alpha < 1:
        raise ValueError(f"--alpha must be between 0 and 1, got {args.alpha}")
    if args.max_drop is not None and not 0 <= args.max_drop <= 1:
        raise ValueError(f"--max-drop is a fraction between 0 and 1, got {args.max_drop}")
    comparison = compare_verdicts(load_verdicts(args.run), load_verdicts(args.baseline), metric=args.metric)
    print(f"{comparison.run.name} against {comparison.baseline.name}")
    print(f"  {comparison.summary()}")
    reasons = comparison.failures(alpha=args.alpha, max_drop=args.max_drop)
    if comparison.regressed:
        print("  questions right in the baseline, wrong now:")
        print(comparison.describe_flips(args.show))
    if not reasons:
        print("no regression" + (f" (alpha {args.alpha:g}" + (f", max drop {args.max_drop:g})" if args.max_drop
                                                             is not None else ")")))
        return EXIT_OK
    print("REGRESSION: " + "; ".join(reasons))
    return EXIT_REGRESSION if args.fail_on_regression else EXIT_OK
