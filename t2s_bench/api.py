"""The Python API; the `t2s-bench` CLI is a thin layer over these functions.

    import t2s_bench as t
    r = t.evaluate("zero-shot", dataset="demo", limit=8)   # keyword names as the CLI's flags
    r.metrics["levels"]["all"]["exec"]; r.records.head()
    base = t.load_run("runs/demo-zero-shot-1a2b3c4d")
    r.compare(base)                                       # paired: McNemar exact on common questions
    t.report([base, r], out="reports/ab.html")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from t2s_bench.datasets import Dataset, load_dataset
from t2s_bench.records import ScoreRecord
from t2s_bench.rundir import RunDir

__all__ = ["RunResult", "ScoreResult", "build_suite", "evaluate", "load_run", "report", "score"]


class _Summary:
    """Accessors over a `summarize` dict, shared by RunResult and ScoreResult."""

    metrics: dict

    @property
    def ex(self) -> float | None:
        """Execution accuracy over the scored examples."""
        return self.metrics["levels"]["all"]["exec"]

    @property
    def em(self) -> float | None:
        """Exact-set match over the examples whose gold Spider's grammar covers."""
        return self.metrics["levels"]["all"]["exact"]

    def table(self, *, partial: bool = False) -> str:
        """The official evaluator's table layout (`partial`: with the partial-match table)."""
        from t2s_bench.scoring import format_table

        return format_table(self.metrics, tables=partial)


@dataclass
class RunResult(_Summary):
    """A finished, scored run directory."""

    path: Path
    config: dict = field(repr=False)
    metrics: dict = field(repr=False)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def system(self) -> str:
        return self.config.get("run", {}).get("system") or self.metrics.get("system", "?")

    @cached_property
    def records(self) -> pd.DataFrame:
        """One row per example (score record fields), indexed by example index."""
        return _records_frame(RunDir(self.path).read_scores())

    @cached_property
    def predictions(self) -> dict[int, dict]:
        return RunDir(self.path).read_predictions()

    def compare(self, baseline: RunResult | str | Path, *, metric: str = "exec", n_resamples: int = 2000,
                seed: int = 0) -> dict:
        """This run against `baseline` on the questions both scored: difference, bootstrap CI,
        wins/losses and McNemar's exact p-value (see reporting.statistics)."""
        from t2s_bench.reporting.analysis import compare_columns, metric_fields

        other = baseline if isinstance(baseline, RunResult) else load_run(baseline)
        field_name = metric_fields().get(metric, metric)
        a, b = other.records[field_name], self.records[field_name]
        out = compare_columns(a, b, n_resamples=n_resamples, seed=seed)
        out.update(metric=metric, system=self.name, baseline=other.name,
                   n_only_here=int(len(b.index.difference(a.index))), n_only_baseline=int(len(a.index.difference(b.index))))
        return out

    def report(self, out: str | Path | None = None, *, fmt: str = "html") -> Path:
        return report([self], out=out, fmt=fmt)


@dataclass
class ScoreResult(_Summary):
    """Scored predictions that are not a run directory (official files, a dict of SQL)."""

    records: list[ScoreRecord] = field(repr=False)
    metrics: dict = field(repr=False)

    @cached_property
    def frame(self) -> pd.DataFrame:
        return _records_frame(self.records)


def evaluate(system: Any = "zero-shot", dataset: str | Dataset = "demo", *, limit: int | None = None,
             sample: int | None = None, sample_seed: int = 0, db: list[str] | str | None = None,
             hardness: list[str] | str | None = None, out: str | Path | None = None, batch_size: int = 8,
             workers: int = 2, timeout: float = 30.0, progress: bool = False,
             backend_options: dict | None = None, suite: str | Path | None = None, plug_value: bool = False,
             **options: Any) -> RunResult:
    """Run a system over a dataset (or resume the same run), score it, return the result.

    `system` is a registered name ("zero-shot", "few-shot", "rag", "finetuned", "oracle", "vote", or a
    plugin's) or a System object; `options` are the system's and its backend's options, with the
    CLI's names (`model`, `backend`, `k`, `template`, `n_ctx`, ...); an unknown one is an OptionError.
    `suite`: a test-suite folder (`t2s-bench suite build`): adds test-suite execution accuracy (exec_suite).
    `plug_value`: execute each prediction with the gold query's values (official --plug_value).
    """
    from t2s_bench.runner import RunConfig, run

    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    name = system if isinstance(system, str) else getattr(system, "name", type(system).__name__)
    cfg = RunConfig(
        system=name, dataset=ds.name, system_options=options, backend_options=dict(backend_options or {}),
        limit=limit, sample=sample, sample_seed=sample_seed, db_ids=[db] if isinstance(db, str) else db,
        hardness=[hardness] if isinstance(hardness, str) else hardness, batch_size=batch_size, workers=workers,
        timeout=timeout, out=str(out) if out is not None else None, progress=progress,
        suite=_suite_path(suite), plug_value=plug_value,
    )
    path = run(cfg, system=None if isinstance(system, str) else system, dataset=ds)
    return load_run(path)


def load_run(path: str | Path) -> RunResult:
    """A run directory as a RunResult; a packed run (no scores) is scored first."""
    rundir = RunDir(path)
    if not rundir.is_run():
        raise FileNotFoundError(f"{rundir.path}: not a run directory (no config.json)")
    if not rundir.is_scored():
        from t2s_bench.runner import score_run

        score_run(rundir.path)
    return RunResult(path=rundir.path, config=rundir.read_config(), metrics=rundir.read_metrics())


def score(predictions: dict[int, str] | str | Path, dataset: str | Dataset = "demo", *, workers: int = 2,
          timeout: float = 30.0, keep_distinct: bool = False, float_tolerance: float | None = None,
          out: str | Path | None = None, suite: str | Path | None = None,
          plug_value: bool = False) -> ScoreResult | RunResult:
    """Score predictions: a dict (example index -> SQL) against `dataset`, or a run directory
    (re-scored from its predictions). `out` writes the score records as JSONL; `suite` (a test-suite
    folder) adds test-suite execution accuracy (exec_suite); `plug_value` executes each prediction with
    the gold query's values (the official --plug_value)."""
    from t2s_bench.scoring import ExecMatchOptions, score_predictions, summarize

    if isinstance(predictions, (str, Path)):
        from t2s_bench.runner import score_run

        ds = dataset if isinstance(dataset, Dataset) else None
        return load_run(score_run(predictions, ds, workers=workers, timeout=timeout, suite=_suite_path(suite),
                                  plug_value=plug_value or None))
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    records = score_predictions(ds, predictions, workers=workers, timeout=timeout,
                                options=ExecMatchOptions(float_tolerance=float_tolerance, keep_distinct=keep_distinct),
                                suite=_suite_path(suite), plug_value=plug_value)
    if out is not None:
        from t2s_bench.rundir import write_records

        write_records(out, records)
    return ScoreResult(records=records, metrics={**summarize(records), "plug_value": plug_value})


def build_suite(dataset: str | Dataset, out: str | Path, *, size: int = 40, seed: int = 0, candidates: int = 400,
                workers: int = 2, timeout: float = 5.0, keep_distinct: bool = False, keep_unique: bool = False,
                db_ids: list[str] | None = None, tables: str | None = None, db_dir: str | None = None) -> dict:
    """Build a test suite of databases for `dataset` in `out` (see t2s_bench/suites/build.py); returns
    its manifest (also written as `out/suite.json`). Score with it: `score(..., suite=out)`."""
    from t2s_bench.suites.build import build_suite as build

    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset, tables=tables, db_dir=db_dir)
    return build(ds, out, size=size, seed=seed, candidates=candidates, workers=workers, timeout=timeout,
                 keep_distinct=keep_distinct, keep_unique=keep_unique, db_ids=db_ids)


def report(runs: list[RunResult | str | Path], out: str | Path | None = None, *, baseline: str | None = None,
           fmt: str | None = None, title: str | None = None, dataset: str | None = None,
           n_resamples: int = 2000, seed: int = 0) -> Path:
    """Write an HTML (or Markdown / JSON) comparison report of run directories; returns its path.
    `fmt` defaults to the suffix of `out`, else html; `baseline` names a run (default: the first)."""
    from t2s_bench.reporting.analysis import load_runs
    from t2s_bench.reporting.render import render_report

    paths = [r.path if isinstance(r, RunResult) else Path(r) for r in runs]
    for p in paths:
        if not p.is_dir():
            raise FileNotFoundError(f"run directory not found: {p}")
    if fmt is None:
        suffix = Path(out).suffix.lstrip(".").lower() if out else ""
        fmt = {"md": "md", "markdown": "md", "json": "json"}.get(suffix, "html")
    loaded = load_runs(paths, dataset=dataset)
    target = Path(out) if out else Path("reports") / f"{loaded[0].name}.{fmt}"
    if baseline and Path(baseline).is_dir():  # a run directory path names the run by its folder
        baseline = Path(baseline).resolve().name
    return render_report(loaded, target, baseline=baseline, fmt=fmt, title=title, n_resamples=n_resamples, seed=seed)


def _suite_path(suite: str | Path | None) -> str | None:
    from t2s_bench.suites.execute import resolve_suite_dir

    return resolve_suite_dir(suite)


def _records_frame(records: list) -> pd.DataFrame:
    df = pd.DataFrame.from_records(list(records))
    if not df.empty:
        df = df.set_index("index", drop=False).sort_index()
        df.index.name = None
    return df
