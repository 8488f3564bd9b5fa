"""The harness: run a system over a dataset into a resumable run directory, then score it.

Run directory (see docs/ARCHITECTURE.md):
  config.json        resolved config, its hash, template version and hash, package versions, machine
  predictions.jsonl  one prediction per line, appended and fsynced per batch: the resume log
  scores.jsonl       one score record per example (skipped ones included)
  metrics.json       accuracy per hardness, throughput and latency

The cache key is the hash of everything that changes predictions (system config incl. backend,
model file, template hash). Re-running the same command on the same directory resumes where it
stopped, whatever killed it: completed lines are kept, a torn last line is dropped and redone.
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
from t2s_bench.systems import Prediction, Task, get_system

log = logging.getLogger(__name__)


@dataclass
class RunConfig:
    system: str = "zero-shot"
    dataset: str = "demo"
    system_options: dict = field(default_factory=dict)
    limit: int | None = None
    sample: int | None = None  # a seeded random sample of N examples (after the filters)
    sample_seed: int = 0
    db_ids: list[str] | None = None
    hardness: list[str] | None = None
    batch_size: int = 8
    workers: int = 2  # scoring worker processes
    timeout: float = 30.0  # per-query execution timeout (s)
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


def load_predictions(path: Path) -> dict[int, dict]:
    """Completed predictions of a (possibly killed) run; a torn last line is ignored."""
    done: dict[int, dict] = {}
    if not path.is_file():
        return done
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # torn write from a kill: redo that example
            done.setdefault(rec["index"], rec)
    return done


def _append(path: Path, preds: list[Prediction]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        for p in preds:
            f.write(json.dumps(p.to_json(), ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _repair_tail(path: Path) -> None:
    """Cut a torn last line so new appends start on a fresh line."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def run(cfg: RunConfig, system=None, dataset: Dataset | None = None) -> Path:
    """Run (or resume) and score; returns the run directory."""
    from t2s_bench.scoring import score_predictions, summarize

    dataset = dataset or load_dataset(cfg.dataset)
    data = select_examples(dataset, cfg)
    system = system or get_system(cfg.system, dataset_name=dataset.name, **cfg.system_options)
    sys_config = system.config()
    key = config_hash(sys_config)
    out = Path(cfg.out or Path("runs") / f"{dataset.name}-{cfg.system}-{key[:8]}")
    out.mkdir(parents=True, exist_ok=True)

    config_path = out / "config.json"
    if config_path.is_file():
        previous = json.loads(config_path.read_text())
        if previous.get("config_hash") != key:
            raise ValueError(
                f"{out} holds a run with another configuration (hash {previous.get('config_hash')} != {key}); "
                "choose another --out"
            )
    config_path.write_text(json.dumps({
        "config_hash": key,
        "run": asdict(cfg),
        "dataset": {"name": dataset.name, "n_selected": len(data)},
        "system": sys_config,
        "environment": environment(),
    }, indent=2, default=str))

    pred_path = out / "predictions.jsonl"
    _repair_tail(pred_path)
    done = load_predictions(pred_path)
    tasks = [
        Task(ex, data.schema(ex.db_id), data.db_path(ex.db_id))
        for ex in data.examples
        if ex.index not in done and data.db_path(ex.db_id) is not None
    ]
    tasks.sort(key=lambda t: (t.example.db_id, t.example.index))  # shared schema prefix, KV reuse
    n_missing = sum(1 for ex in data.examples if data.db_path(ex.db_id) is None)
    if done:
        log.info("resuming %s: %d predictions done, %d to go", out, len(done), len(tasks))
    if n_missing:
        log.warning("%d examples have no database file: they are scored as skipped", n_missing)

    if hasattr(getattr(system, "examples", None), "prefetch"):
        system.examples.prefetch(tasks)

    correct = total = 0
    gen_time = 0.0
    bar = tqdm(total=len(tasks), desc=f"{cfg.system}", unit="q", disable=not cfg.progress)
    for start in range(0, len(tasks), cfg.batch_size):
        batch = tasks[start : start + cfg.batch_size]
        t0 = time.perf_counter()
        preds = system.predict(batch)
        gen_time += time.perf_counter() - t0
        _append(pred_path, preds)
        for p in preds:
            done[p.index] = p.to_json()
        # running execution accuracy on this batch (in-process; gold results come from the cache)
        sub = data.filter(indices=[p.index for p in preds])
        recs = score_predictions(sub, {p.index: p.sql for p in preds}, workers=1, timeout=cfg.timeout)
        correct += sum(bool(r["exec_match"]) for r in recs)
        total += len(recs)
        bar.update(len(batch))
        bar.set_postfix(exec_acc=f"{correct / max(total, 1):.3f}")
    bar.close()

    predictions = {i: rec["sql"] for i, rec in done.items() if i in {e.index for e in data.examples}}
    records = score_predictions(data, predictions, workers=cfg.workers, timeout=cfg.timeout)
    for r in records:  # not predicted (missing database): skipped for exact match too
        if r["index"] not in predictions:
            r["exact_match"] = None
    by_index = {i: done[i] for i in predictions}
    for r in records:
        p = by_index.get(r["index"])
        if p and p.get("error") and not r.get("pred_error"):
            r["pred_error"] = p["error"]
    with open(out / "scores.jsonl", "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")

    metrics = summarize(records)
    lat = [p["latency_s"] for p in by_index.values() if p.get("latency_s")]
    metrics["system"] = cfg.system
    metrics["dataset"] = dataset.name
    metrics["config_hash"] = key
    metrics["throughput"] = {
        "n_predicted": len(by_index),
        "generation_seconds_this_session": round(gen_time, 2),
        "questions_per_second_this_session": round(len(tasks) / gen_time, 3) if gen_time else None,
        "latency_mean_s": round(statistics.fmean(lat), 3) if lat else None,
        "latency_p50_s": round(statistics.median(lat), 3) if lat else None,
        "latency_p95_s": round(sorted(lat)[int(0.95 * (len(lat) - 1))], 3) if lat else None,
        "prompt_tokens": sum(p.get("prompt_tokens", 0) for p in by_index.values()),
        "completion_tokens": sum(p.get("completion_tokens", 0) for p in by_index.values()),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return out
