"""Self-consistency settings chosen on held-out Spider train, not on dev.

Reads self-consistency run directories (`t2s-bench run ... --samples 8 -S temperature=T` on the held-out
train databases) and scores, on the questions all of them answered, each run's voted answer and the greedy
answer its trace records, with paired McNemar tests. Usage:

    python benchmarks/heldout_self_consistency.py --dataset spider-train --out results/X.json T=RUN_DIR ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import t2s_bench
from t2s_bench.reporting.statistics import mcnemar_exact


def answers(run_dir: Path) -> tuple[dict[int, str], dict[int, str]]:
    """(voted SQL, greedy SQL) per example index, from a run's predictions and their traces."""
    voted, greedy = {}, {}
    for line in (run_dir / "predictions.jsonl").read_text().splitlines():
        p = json.loads(line)
        voted[p["index"]] = p["sql"] or ""
        greedy[p["index"]] = next((s["sql"] for s in p.get("trace") or [] if s["stage"] == "greedy"), None) or ""
    return voted, greedy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="LABEL=RUN_DIR (a self-consistency run)")
    ap.add_argument("--dataset", default="spider-train")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    verdicts: dict[str, dict[int, bool]] = {}
    for spec in args.runs:
        label, run_dir = spec.split("=", 1)
        voted, greedy = answers(Path(run_dir))
        for name, sql in ((f"sc {label}", voted), (f"greedy ({label} run)", greedy)):
            result = t2s_bench.score(sql, args.dataset, workers=2)
            verdicts[name] = {r["index"]: bool(r["exec_match"]) for r in result.records if r["index"] in sql}
    common = sorted(set.intersection(*(set(v) for v in verdicts.values())))
    ex = {name: sum(v[i] for i in common) / len(common) for name, v in verdicts.items()}
    names = list(verdicts)
    paired = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            won = sum(verdicts[a][k] and not verdicts[b][k] for k in common)
            lost = sum(verdicts[b][k] and not verdicts[a][k] for k in common)
            paired[f"{a} vs {b}"] = {"won": won, "lost": lost, "p": mcnemar_exact(won, lost)}
    report = {"n": len(common), "ex": ex, "paired": paired}
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
