"""The committed results reproduce: committed runs keep config and gzipped predictions only;
re-scoring them gives their committed metrics, and a committed vote re-runs from its member runs.
Needs Spider (the run directories are in results/runs); skipped without it."""

import json
import shutil
from pathlib import Path

import pytest

from t2s_bench import paths
from t2s_bench.runner import RunConfig, run, score_run

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / "results" / "runs"
pytestmark = pytest.mark.spider


@pytest.fixture(scope="module")
def spider_dev():
    if paths.spider_dir() is None:
        pytest.skip("Spider not found (set T2S_SPIDER_DIR)")
    from t2s_bench.datasets import load_dataset

    return load_dataset("spider-dev")


def _exec(metrics: dict) -> tuple[int, int]:
    level = metrics["levels"]["all"]
    return level["n_exec_correct"], level["n_scored"]


def test_committed_runs_are_packed():
    runs = [d for d in RUNS.iterdir() if d.is_dir()]
    assert len(runs) > 30
    for d in runs:
        assert (d / "predictions.jsonl.gz").is_file() and (d / "config.json").is_file(), d
        assert not (d / "scores.jsonl").exists(), f"{d}: scores are regenerated, not committed"


@pytest.mark.parametrize("name", ["spider-dev-h200-few-shot", "spider-dev-finetuned-lora-h100",
                                  "spider-dev-s150-zero-shot-cpu"])
def test_rescoring_a_committed_run_gives_its_metrics(spider_dev, tmp_path, name):
    copy = tmp_path / name
    shutil.copytree(RUNS / name, copy)
    committed = json.loads((copy / "metrics.json").read_text())
    rescored = json.loads((score_run(copy, spider_dev) / "metrics.json").read_text())
    assert _exec(rescored) == _exec(committed)
    assert rescored["levels"]["all"]["n_exact_correct"] == committed["levels"]["all"]["n_exact_correct"]


def test_the_committed_vote_reproduces_from_its_member_runs(spider_dev, tmp_path):
    committed = RUNS / "spider-dev-h200-vote-few-shot-rag"
    members = [m["run"] for m in json.loads((committed / "config.json").read_text())["system"]["members"]]
    out = run(RunConfig(system="vote", dataset="spider-dev", batch_size=2000, progress=False, out=str(tmp_path / "v"),
                        system_options={"members": [str(ROOT / m) for m in members]}), dataset=spider_dev)
    assert _exec(json.loads((out / "metrics.json").read_text())) == _exec(json.loads((committed / "metrics.json").read_text()))
