"""The harness: run a system over a dataset into a resumable run directory, then score it.

Run directory (see docs/ARCHITECTURE.md):
  config.json        resolved config, its hash, template version and hash, package versions, machine
  predictions.jsonl  one prediction per line, appended and fsynced per batch: the resume log
  scores.jsonl       one score record per example (skipped ones included)
  metrics.json       accuracy per hardness, throughput and latency

The cache key is the hash of everything that changes predictions (system config incl. backend,
model file, template hash). Re-running the same command on the same directory resumes where it
stopped, whatever killed it: completed lines are kept, a torn last line is dropped and redone.
A resumed run gives the predictions of an uninterrupted one: batches are cut from the whole
selection, so the system sees the same batches (tests/core/test_resume_determinism.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from tqdm import tqdm

from t2s_bench.datasets import Dataset, load_dataset
from t2s_bench.records import ScoreRecord, Task
from t2s_bench.rundir import RunDir
from t2s_bench.scoring import score_predictions, summarize
from t2s_bench.scoring.metrics import attach_prediction_facts
from t2s_bench.systems.base import get_system

log = logging.getLogger(__name__)


@dataclass
class RunConfig:
    system: str = "zero-shot"
    dataset: str = "demo"
    system_options: dict = field(default_factory=dict)
    backend_options: dict = field(default_factory=dict)  # -B key=value: passed to the backend's constructor
    limit: int | None = None
    sample: int | None = None  # a seeded random sample of N examples (after the filters)
    sample_seed: int = 0
    db_ids: list[str] | None = None
    hardness: list[str] | None = None
    batch_size: int = 8
    workers: int = 2  # scoring worker processes
    timeout: float = 30.0  # per-query execution timeout (s)
    suite: str | None = None  # test-suite folder: adds test-suite execution accuracy (exec_suite)
    plug_value: bool = False  # execute predictions with the gold query's values (official --plug_value)
    out: str | None = None
    progress: bool = True


def config_hash(system_config: dict) -> str:
    blob = json.dumps(system_config, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def environment() -> dict:
    versions = {}
    for pkg in ("t2s-bench", "sqlglot", "torch", "transformers", "peft", "llama_cpp_python", "datasets", "numpy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    env = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
           "packages": versions}
    try:
        import torch

        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return env


def select_examples(dataset: Dataset, cfg: RunConfig) -> Dataset:
    data = dataset.filter(db_ids=cfg.db_ids)
    if cfg.hardness:
        from t2s_bench.scoring import hardness

        wanted = set(cfg.hardness)
        keep = []
        for ex in data.examples:
            try:
                if hardness(ex.query, data.schema(ex.db_id)) in wanted:
                    keep.append(ex.index)
            except Exception:  # unparsable gold: cannot be placed in a level
                continue
        data = data.filter(indices=keep)
    if cfg.sample is not None and cfg.sample < len(data):
        rng = random.Random(cfg.sample_seed)
        chosen = sorted(rng.sample([e.index for e in data.examples], cfg.sample))
        data = data.filter(indices=chosen)
    return data.filter(limit=cfg.limit)


def selection(cfg: RunConfig) -> dict:
    """The settings that choose which examples a run covers (part of its directory name)."""
    return {"limit": cfg.limit, "sample": cfg.sample, "sample_seed": cfg.sample_seed if cfg.sample else None,
            "db_ids": sorted(cfg.db_ids) if cfg.db_ids else None,
            "hardness": sorted(cfg.hardness) if cfg.hardness else None}


def check_selection(cfg: RunConfig) -> None:
    for name in ("limit", "sample"):
        value = getattr(cfg, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{name} must be a positive whole number of examples, got {value!r}")
    if cfg.batch_size < 1 or cfg.workers < 1:
        raise ValueError("batch_size and workers must be at least 1")
    if cfg.timeout <= 0:
        raise ValueError(f"timeout must be positive, got {cfg.timeout}")


def default_run_dir(dataset_name: str, cfg: RunConfig, key: str) -> Path:
    """runs/<dataset>-<system>-<hash of the system config and the selection>: a sample and a full
    run of the same system get different directories."""
    selected = config_hash({"config": key, "selection": selection(cfg)})
    return Path("runs") / f"{dataset_name}-{cfg.system}-{selected[:8]}"


def load_predictions(path: Path) -> dict[int, dict]:
    """Completed predictions in a run directory (or its predictions file)."""
    path = Path(path)
    return RunDir(path if path.is_dir() else path.parent).read_predictions()


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: what was predicted is saved; the same command resumes."""

    def __init__(self, out: Path):
        super().__init__(f"interrupted: predictions so far are saved in {out}; run the same command again to resume")
        self.out = out


def run(cfg: RunConfig, system=None, dataset: Dataset | None = None) -> Path:
    """Run (or resume) and score; returns the run directory."""
    check_selection(cfg)
    dataset = dataset or load_dataset(cfg.dataset)
    data = select_examples(dataset, cfg)
    if system is None:
        options = dict(cfg.system_options)
        if cfg.backend_options:
            options["backend_options"] = dict(cfg.backend_options)
        system = get_system(cfg.system, dataset_name=dataset.name, **options)
    sys_config = system.config()
    key = config_hash(sys_config)
    out = Path(cfg.out) if cfg.out else default_run_dir(dataset.name, cfg, key)
    _check_writable(out)
    rundir = RunDir(out)
    with rundir.lock():
        try:
            return _run_locked(cfg, system, dataset, data, rundir, sys_config, key)
        except KeyboardInterrupt:
            raise RunInterrupted(out) from None


def _check_writable(out: Path) -> None:
    """Fail before any work when the run directory cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"cannot create the run directory {out}: {e.strerror}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"the run directory {out} is not writable")


def _run_locked(cfg: RunConfig, system, dataset: Dataset, data: Dataset, rundir: RunDir, sys_config: dict,
                key: str) -> Path:
    previous = rundir.read_config()
    if previous:
        if previous.get("config_hash") != key:
            raise ValueError(
                f"{rundir.path} holds a run with another configuration (hash {previous.get('config_hash')} != {key}); "
                "choose another --out"
            )
        before = previous.get("selection")
        if before is not None and before != selection(cfg):
            raise ValueError(f"{rundir.path} holds a run over another selection of examples ({before}); "
                             "choose another --out")
    rundir.write_config({
        "config_hash": key,
        "run": asdict(cfg),
        "selection": selection(cfg),
        "dataset": {"name": dataset.name, "n_selected": len(data)},
        "system": sys_config,
        "environment": environment(),
    })

    rundir.unpack_predictions()
    rundir.repair_predictions_tail()
    done = rundir.read_predictions()
    selected = {ex.index for ex in data.examples}
    # Batches are cut from the whole selection (done or not), sorted by database (shared schema
    # prefix, KV reuse), so a resumed run sends the backend the same batches as an uninterrupted
    # one: batched decoders give results that depend on what is decoded together. A batch cut short
    # by a kill is generated again whole; only its missing predictions are appended.
    all_tasks = sorted(
        (Task(ex, data.schema(ex.db_id), data.db_path(ex.db_id)) for ex in data.examples
         if data.db_path(ex.db_id) is not None),
        key=lambda t: (t.example.db_id, t.example.index),
    )
    batches = [all_tasks[i : i + cfg.batch_size] for i in range(0, len(all_tasks), cfg.batch_size)]
    batches = [b for b in batches if any(t.example.index not in done for t in b)]
    tasks = [t for b in batches for t in b if t.example.index not in done]
    n_missing = sum(1 for ex in data.examples if data.db_path(ex.db_id) is None)
    if done:
        log.info("resuming %s: %d predictions done, %d to go", rundir.path, len(done.keys() & selected), len(tasks))
    if n_missing:
        log.warning("%d examples have no database file: they are scored as skipped", n_missing)
    if n_missing == len(data.examples) and data.examples:
        raise ValueError(f"none of the {len(data.examples)} selected examples has its database file "
                         f"(looked in {data.db_dir}): nothing to run")

    if hasattr(getattr(system, "examples", None), "prefetch"):
        system.examples.prefetch([t for b in batches for t in b])

    # records scored earlier (a finished run re-run) or batch by batch now: not executed again
    scored: dict[int, ScoreRecord] = _reusable_scores(rundir, done, data)
    if bool(rundir.read_metrics().get("plug_value")) != cfg.plug_value:
        scored = {}  # scored with the other value-plugging setting: score again
    gen_time = 0.0
    bar = tqdm(total=len(tasks), desc=f"{cfg.system}", unit="q", disable=not cfg.progress)
    for batch in batches:
        t0 = time.perf_counter()
        preds = [p for p in system.predict(batch) if p.index not in done]
        batch = [t for t in batch if t.example.index not in done]
        gen_time += time.perf_counter() - t0
        rundir.append_predictions(preds)
        for p in preds:
            done[p.index] = p.to_json()
        sub = data.filter(indices=[p.index for p in preds])
        for rec in score_predictions(sub, {p.index: p.sql for p in preds}, workers=1, timeout=cfg.timeout,
                                     suite=cfg.suite, plug_value=cfg.plug_value):
            scored[rec["index"]] = rec
        bar.update(len(batch))
        correct = sum(bool(r["exec_match"]) for r in scored.values())
        bar.set_postfix(exec_acc=f"{correct / max(len(scored), 1):.3f}")
    bar.close()

    predictions = {i: rec for i, rec in done.items() if i in selected}
    records = _score_selected(data, predictions, scored, cfg)
    rundir.write_scores(records)
    metrics = summarize(records)
    metrics.update(system=cfg.system, dataset=dataset.name, config_hash=key,
                   throughput=throughput(list(predictions.values()), gen_time, len(tasks)))
    if cfg.suite:
        metrics["suite"] = cfg.suite
    metrics["plug_value"] = cfg.plug_value
    rundir.write_metrics(metrics)
    return rundir.path


def _reusable_scores(rundir: RunDir, done: dict[int, dict], data: Dataset) -> dict[int, ScoreRecord]:
    """Score records of an earlier session whose prediction and gold are unchanged."""
    if not rundir.scores_path.is_file():
        return {}
    gold = {ex.index: ex.query for ex in data.examples}
    return {r["index"]: r for r in rundir.read_scores()
            if r["index"] in done and r.get("pred") == done[r["index"]]["sql"] and r.get("gold") == gold.get(r["index"])}


def _score_selected(data: Dataset, predictions: dict[int, dict], scored: dict[int, ScoreRecord],
                    cfg: RunConfig) -> list[ScoreRecord]:
    """Score records of the selection in dataset order, reusing the records scored per batch."""
    todo = [ex.index for ex in data.examples if ex.index not in scored]
    if todo:
        rest = score_predictions(data.filter(indices=todo),
                                 {i: predictions[i]["sql"] for i in todo if i in predictions},
                                 workers=cfg.workers, timeout=cfg.timeout, suite=cfg.suite,
                                 plug_value=cfg.plug_value)
        scored = {**scored, **{r["index"]: r for r in rest}}
    records = [scored[ex.index] for ex in data.examples]
    attach_prediction_facts(records, predictions, data.schema)  # e.g. the pruned schema: linking recall
    for r in records:
        p = predictions.get(r["index"])
        if p is None:  # not predicted (missing database): skipped for exact match too
            r["exact_match"] = None
        elif p.get("error") and not r.get("pred_error"):
            r["pred_error"] = p["error"]
    return records


def throughput(predictions: list[dict], gen_time: float, n_generated: int) -> dict:
    lat = [p["latency_s"] for p in predictions if p.get("latency_s")]
    return {
        "n_predicted": len(predictions),
        "generation_seconds_this_session": round(gen_time, 2),
        "questions_per_second_this_session": round(n_generated / gen_time, 3) if gen_time else None,
        "latency_mean_s": round(statistics.fmean(lat), 3) if lat else None,
        "latency_p50_s": round(statistics.median(lat), 3) if lat else None,
        "latency_p95_s": round(sorted(lat)[int(0.95 * (len(lat) - 1))], 3) if lat else None,
        "prompt_tokens": sum(p.get("prompt_tokens", 0) for p in predictions),
        "completion_tokens": sum(p.get("completion_tokens", 0) for p in predictions),
    }


def score_run(path: str | Path, dataset: Dataset | None = None, *, workers: int = 2, timeout: float | None = None,
              suite: str | Path | None = None, plug_value: bool | None = None) -> Path:
    """(Re)score a run directory from its predictions: scores.jsonl and metrics.json, deterministically.
    Committed runs keep only config and predictions; this regenerates the rest."""
    rundir = RunDir(path)
    config = rundir.read_config()
    if not config:
        raise FileNotFoundError(f"{rundir.path}: no config.json (is this a run directory?)")
    run_cfg = config.get("run", {})
    known = set(RunConfig.__dataclass_fields__)
    cfg = RunConfig(**{k: v for k, v in run_cfg.items() if k in known})
    cfg.workers = workers
    if timeout is not None:
        cfg.timeout = timeout
    if suite is not None:  # a suite given now replaces the recorded one (for this scoring only)
        cfg.suite = str(suite)
    if plug_value is not None:  # likewise value plugging
        cfg.plug_value = plug_value
    if dataset is None:
        ds = config.get("dataset")
        name = ds.get("name") if isinstance(ds, dict) else ds
        dataset = load_dataset(str(name or cfg.dataset))
    data = select_examples(dataset, cfg)
    predictions = {i: p for i, p in rundir.read_predictions().items()}
    selected = {ex.index for ex in data.examples}
    predictions = {i: p for i, p in predictions.items() if i in selected}
    with rundir.lock():
        records = _score_selected(data, predictions, {}, cfg)
        rundir.write_scores(records)
        metrics = summarize(records)
        old = rundir.read_metrics()
        metrics.update(system=cfg.system, dataset=dataset.name, config_hash=config.get("config_hash"),
                       throughput=old.get("throughput") or throughput(list(predictions.values()), 0.0, 0))
        if cfg.suite:
            metrics["suite"] = cfg.suite
        metrics["plug_value"] = cfg.plug_value
        rundir.write_metrics(metrics)
    return rundir.path
