"""The committed results reproduce: re-scoring a committed run's predictions and re-running a committed
vote over its member runs give the committed metrics. Needs Spider (the run directories are in
results/runs); skipped without it."""

import json
from pathlib import Path

import pytest

from t2s_bench import paths
from t2s_bench.runner import RunConfig, run

RUNS = Path(__file__).resolve().parent.parent / "results" / "runs"
pytestmark = pytest.mark.spider


@pytest.fixture(scope="module")
def spider_dev():
    if paths.spider_dir() is None:
        pytest.skip("Spider not found (set T2S_SPIDER_DIR)")
    from t2s_bench.datasets import load_dataset

    return load_dataset("spider-dev")


def _exec(metrics_path: Path) -> tuple[int, int]:
    level = json.loads(metrics_path.read_text())["levels"]["all"]
    return level["n_exec_correct"], level["n_scored"]


def test_rescoring_a_committed_run_gives_its_metrics(spider_dev):
    from t2s_bench.runner import load_predictions
    from t2s_bench.scoring import score_predictions, summarize

    committed = RUNS / "spider-dev-h200-few-shot"
    preds = {i: p["sql"] for i, p in load_predictions(committed / "predictions.jsonl").items()}
    records = score_predictions(spider_dev, preds, workers=2)
    level = summarize([r for r in records if r["index"] in preds])["levels"]["all"]
    assert (level["n_exec_correct"], level["n_scored"]) == _exec(committed / "metrics.json")


def test_the_committed_vote_reproduces_from_its_member_runs(spider_dev, tmp_path):
    committed = RUNS / "spider-dev-h200-vote-few-shot-rag"
    members = [m["run"] for m in json.loads((committed / "config.json").read_text())["system"]["members"]]
    root = Path(__file__).resolve().parent.parent
    out = run(RunConfig(system="vote", dataset="spider-dev", batch_size=2000, progress=False, out=str(tmp_path / "v"),
                        system_options={"members": [str(root / m) for m in members]}), dataset=spider_dev)
    assert _exec(out / "metrics.json") == _exec(committed / "metrics.json")
