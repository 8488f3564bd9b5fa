"""What the `t2s` pytest fixture hands a test: the Python API with run reuse, skips and bookkeeping.

    def test_zero_shot(t2s):
        run = t2s.evaluate("zero-shot", "demo", sample=12, model="qwen2.5-coder-0.5b-gguf")
        t2s.assert_accuracy(run, min_ex=0.3)
        t2s.assert_no_regression(run, "baselines/zero-shot.json")

- Runs go to `<runs root>/<dataset>-<system>-<hash of config+selection>` (the API's names), so an
  unchanged case finds its finished run and generates nothing; `--t2s-rerun` regenerates once per
  session.
- A model file, optional dependency or GPU that is absent makes the test skip with the reason.
- Relative baseline and run paths are read from the test file's folder (a benchmark file's folder
  for `*.t2s.yaml` cases); `--t2s-update-baselines` rewrites baseline files from the runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# systems that prompt a model, and whose default model is the catalog's default
PROMPTED_SYSTEMS = {"zero-shot", "few-shot", "rag"}
RUN_KWARGS = {"limit", "sample", "sample_seed", "db", "hardness", "batch_size", "workers", "timeout", "progress"}
RUN_FILES = ("config.json", "predictions.jsonl", "predictions.jsonl.gz", "scores.jsonl", "metrics.json")


@dataclass
class RunRecord:
    """One run a session touched."""

    path: Path
    label: str  # the test that touched it
    new_predictions: int
    seconds: float
    dataset: str
    selection: dict
    ex: float | None = None
    em: float | None = None


@dataclass
class SessionState:
    """Options and bookkeeping of one pytest session (kept on the pytest config)."""

    runs_root: Path
    report_dir: Path | None = None
    rerun: bool = False
    update_baselines: bool = False
    runs: list[RunRecord] = field(default_factory=list)
    baseline_runs: list[Path] = field(default_factory=list)  # run directories used as baselines
    rerun_done: set[Path] = field(default_factory=set)
    updated_baselines: list[Path] = field(default_factory=list)
    reports: list[Path] = field(default_factory=list)

    @property
    def new_predictions(self) -> int:
        return sum(r.new_predictions for r in self.runs)


class T2S:
    """The `t2s` fixture: evaluate / load_run and the assertions, bound to the session's options."""

    def __init__(self, state: SessionState, base_dir: Path, label: str = ""):
        self.state = state
        self.base_dir = Path(base_dir)
        self.label = label

    # ------------------------------------------------------------ running
    def evaluate(self, system: Any = "zero-shot", dataset: Any = "demo", *, out: str | Path | None = None,
                 backend_options: dict | None = None, requires: list[str] | str | None = None,
                 **kwargs: Any):
        """`t2s_bench.evaluate` that reuses finished runs, skips when a model, optional dependency or GPU
        (`requires=["gpu"]`) is absent, and records the run for the session summary and report."""
        from t2s_bench.api import evaluate
        from t2s_bench.datasets import Dataset, load_dataset
        from t2s_bench.runner import RunConfig, config_hash, default_run_dir

        skip_unless_available(requires)
        ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
        run_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in RUN_KWARGS}
        options = kwargs
        name = system if isinstance(system, str) else getattr(system, "name", type(system).__name__)
        if isinstance(system, str):
            reason = missing_model(system, options)
            if reason:
                pytest.skip(reason)
            system = build_system(system, ds.name, options, backend_options)
        if out is None:
            cfg = RunConfig(system=name, dataset=ds.name, limit=run_kwargs.get("limit"),
                            sample=run_kwargs.get("sample"), sample_seed=run_kwargs.get("sample_seed", 0),
                            db_ids=_as_list(run_kwargs.get("db")), hardness=_as_list(run_kwargs.get("hardness")))
            out = self.state.runs_root / default_run_dir(ds.name, cfg, config_hash(system.config())).name
        out = Path(out)
        if self.state.rerun and out.resolve() not in self.state.rerun_done:
            self.state.rerun_done.add(out.resolve())
            for name_ in RUN_FILES:
                (out / name_).unlink(missing_ok=True)
        before = _n_predictions(out)
        start = time.perf_counter()
        result = evaluate(system, ds, out=out, backend_options=backend_options, **run_kwargs, **options)
        seconds = time.perf_counter() - start
        self._record(result, new_predictions=_n_predictions(out) - before, seconds=seconds)
        return result

    def load_run(self, path: str | Path):
        """A finished run directory (relative paths: from the test's folder, else the working directory)."""
        from t2s_bench.api import load_run

        start = time.perf_counter()
        result = load_run(self.resolve(path))
        self._record(result, new_predictions=0, seconds=time.perf_counter() - start)
        return result

    def resolve(self, path: str | Path) -> Path:
        path = Path(path).expanduser()
        if path.is_absolute() or not (self.base_dir / path).exists() and path.exists():
            return path
        return self.base_dir / path

    def _record(self, result: Any, *, new_predictions: int, seconds: float) -> None:
        dataset = result.config.get("dataset", {})
        self.state.runs.append(RunRecord(
            path=result.path, label=self.label, new_predictions=new_predictions, seconds=seconds,
            dataset=str(dataset.get("name") if isinstance(dataset, dict) else dataset),
            selection=result.config.get("selection") or {}, ex=result.ex, em=result.em,
        ))

    # ------------------------------------------------------------ assertions
    def assert_accuracy(self, run: Any, **thresholds: Any) -> dict:
        from t2s_bench.regression.assertions import assert_accuracy

        return assert_accuracy(run, **thresholds)

    def assert_latency(self, run: Any, **bounds: Any) -> dict:
        from t2s_bench.regression.assertions import assert_latency

        return assert_latency(run, **bounds)

    def assert_no_regression(self, run: Any, baseline: Any, *, alpha: float = 0.05, max_drop: float | None = None,
                             metric: str = "exec", show: int = 10):
        """As `t2s_bench.regression.assert_no_regression`; a baseline file path is read from the test's
        folder, rewritten from the run under `--t2s-update-baselines`, and must exist otherwise."""
        from t2s_bench.api import RunResult
        from t2s_bench.regression.assertions import RegressionFailure, assert_no_regression
        from t2s_bench.regression.baseline import load_verdicts, save_baseline

        if isinstance(baseline, (str, Path)):
            baseline = self.resolve(baseline)
            if baseline.is_dir():
                self.state.baseline_runs.append(baseline)
            elif self.state.update_baselines:
                with_sql = baseline.is_file() and load_verdicts(baseline).has_sql
                save_baseline(run, baseline, with_sql=with_sql)
                self.state.updated_baselines.append(baseline)
                return None
            elif not baseline.exists():
                raise RegressionFailure(
                    f"baseline {baseline} not found: write it from this run with `pytest --t2s-update-baselines` "
                    "(or `t2s-bench baseline save RUN --out FILE`) and commit it")
        elif isinstance(baseline, RunResult):
            self.state.baseline_runs.append(baseline.path)
        return assert_no_regression(run, baseline, alpha=alpha, max_drop=max_drop, metric=metric,
                                    report_dir=self.state.report_dir, show=show)


# ---------------------------------------------------------------- availability


def skip_unless_available(requires: list[str] | str | None) -> None:
    for need in _as_list(requires) or []:
        if need != "gpu":
            raise ValueError(f"unknown requirement {need!r}: t2s cases know `gpu`")
        try:
            import torch
        except ImportError:
            pytest.skip("needs a GPU: torch is not installed")
        if not torch.cuda.is_available():
            pytest.skip("needs a GPU: CUDA is not available here")


def missing_model(system: str, options: dict) -> str | None:
    """Why the model a case names is absent locally (None when it is here, or served over HTTP)."""
    from t2s_bench.backends.catalog import CATALOG, resolve_model_offline

    adapter = options.get("adapter")
    if adapter is not None and not Path(str(adapter)).expanduser().exists():
        return f"adapter {adapter} not found"
    if options.get("base_url") or options.get("backend") == "openai":
        return None
    model = options.get("model")
    if model is None:
        if system not in PROMPTED_SYSTEMS:
            return None
        from t2s_bench.backends.catalog import default_model

        model = default_model()
    if Path(str(model)).expanduser().exists():
        return None
    if str(model) in CATALOG:
        if resolve_model_offline(str(model)) is None:
            return (f"model {model} is not available locally (`t2s-bench models fetch {model}`, "
                    "or set T2S_MODEL_DIR to a folder holding it)")
        return None
    return f"model file {model} not found"


def build_system(name: str, dataset_name: str, options: dict, backend_options: dict | None):
    """The registered system with its options, as the runner builds it; an absent model file or
    optional dependency is a skip."""
    from t2s_bench.backends.catalog import ModelNotFound
    from t2s_bench.cli import OPTIONAL_EXTRAS
    from t2s_bench.systems.base import get_system

    opts = dict(options)
    if backend_options:
        opts["backend_options"] = dict(backend_options)
    try:
        return get_system(name, dataset_name=dataset_name, **opts)
    except ModelNotFound as e:
        pytest.skip(f"model not available: {e}")
    except ModuleNotFoundError as e:
        extra = OPTIONAL_EXTRAS.get((e.name or "").split(".")[0])
        if extra is None:
            raise
        pytest.skip(f"{name} needs {e.name}, which is not installed (pip install 't2s-bench[{extra}]')")


def _as_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _n_predictions(out: Path) -> int:
    from t2s_bench.rundir import RunDir

    return len(RunDir(out).read_predictions()) if out.is_dir() else 0
