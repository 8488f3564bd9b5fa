"""What a pytest session tells about its t2s runs: the terminal summary and the `--t2s-report` HTML files."""

from __future__ import annotations

import json
from pathlib import Path

from t2s_bench.regression.fixture import SessionState


def summary_lines(state: SessionState) -> list[str]:
    """One line per run (new predictions or reused, EX/EM, seconds), then the totals."""
    lines = []
    for r in state.runs:
        how = f"{r.new_predictions} new predictions" if r.new_predictions else "reused"
        ex = "n/a" if r.ex is None else f"{100 * r.ex:.1f}%"
        em = "n/a" if r.em is None else f"{100 * r.em:.1f}%"
        lines.append(f"{r.path.name}: EX {ex}, EM {em}, {how}, {r.seconds:.2f} s  ({r.label})")
    reused = sum(1 for r in state.runs if not r.new_predictions)
    lines.append(f"t2s: {len(state.runs)} runs ({reused} reused), {state.new_predictions} new predictions, "
                 f"{sum(r.seconds for r in state.runs):.2f} s in evaluate/load_run; runs in {state.runs_root}")
    for path in state.updated_baselines:
        lines.append(f"t2s: baseline updated: {path}")
    for path in state.reports:
        lines.append(f"t2s: report: {path}")
    return lines


def write_session_reports(state: SessionState) -> list[Path]:
    """One HTML comparison report per (dataset, selection) group of the runs the session touched
    (baseline run directories included), named after the dataset; returns the paths written."""
    from t2s_bench.api import report

    assert state.report_dir is not None
    groups: dict[tuple[str, str], list[Path]] = {}
    for r in state.runs:
        key = (r.dataset, json.dumps(r.selection, sort_keys=True))
        paths = groups.setdefault(key, [])
        if r.path.resolve() not in [p.resolve() for p in paths]:
            paths.append(r.path)
    written = []
    names: dict[str, int] = {}
    for (dataset, _), paths in groups.items():
        for base in state.baseline_runs:
            if base.resolve() not in [p.resolve() for p in paths] and _same_selection(base, paths[0]):
                paths.insert(0, base)
        names[dataset] = names.get(dataset, 0) + 1
        stem = dataset if names[dataset] == 1 else f"{dataset}-{names[dataset]}"
        written.append(report(paths, out=state.report_dir / f"{stem}.html", title=f"t2s regression runs on {dataset}"))
    return written


def _same_selection(a: Path, b: Path) -> bool:
    from t2s_bench.rundir import RunDir

    ca, cb = RunDir(a).read_config(), RunDir(b).read_config()
    return ca.get("selection") == cb.get("selection") and ca.get("dataset", {}).get("name") == cb.get("dataset", {}).get("name")
