"""The committed recipes in configs/ parse with the CLI and reproduce the committed results' settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from t2s_bench.cli import build_parser
from t2s_bench.cli.run import build_run_config
from t2s_bench.cli.train import config_from_args

ROOT = Path(__file__).resolve().parents[2]
# each committed recipe and the training run it produced
RECIPES = [("configs/train/qwen2.5-coder-0.5b-lora-syn-pv.yaml", "results/finetune-qwen2.5-coder-0.5b-lora-syn-pv"),
           ("configs/train/qwen2.5-coder-1.5b-lora-syn-pv.yaml", "results/finetune-qwen2.5-coder-1.5b-lora-syn-pv"),
           ("configs/train/qwen2.5-coder-1.5b-lora-syn-pv-2ep.yaml", "results/finetune-qwen2.5-coder-1.5b-lora-syn-pv-2ep")]
# what differs by machine or by call, not by recipe
PER_CALL = {"base", "out", "time_budget_s", "data_cache", "device", "report_to", "resume", "dataloader_workers"}


@pytest.mark.parametrize("recipe,run", RECIPES)
def test_train_recipe_matches_the_committed_run(recipe, run):
    args = build_parser().parse_args(["train", "--config", str(ROOT / recipe), "--base", "b", "--out", "o"])
    config = config_from_args(args)
    committed = json.loads((ROOT / run / "train_config.json").read_text())["config"]
    ours = {k: v for k, v in vars(config).items() if k not in PER_CALL}
    differing = {k: (v, committed.get(k)) for k, v in ours.items()
                 if k in committed and json.loads(json.dumps(v)) != committed[k]}
    assert not differing, differing
    assert config.schema_options == {"schema": "pruned", "values": True}


def test_run_recipe_parses():
    args = build_parser().parse_args(["run", "--config", str(ROOT / "configs/run/finetuned-self-consistency-8.yaml"),
                                      "--adapter", "a", "--model", "m"])
    cfg = build_run_config(args)
    assert cfg.system == "finetuned" and cfg.dataset == "spider-dev"
    assert cfg.system_options["samples"] == 8 and cfg.system_options["backend"] == "transformers"


def test_run_recipe_options_reach_the_system(tmp_path):
    """The temperature of the T=1.0 recipe reaches the system; `system_options:` in a file is not dropped."""
    args = build_parser().parse_args(["run", "--config", str(ROOT / "configs/run/finetuned-self-consistency-8-t1.yaml"),
                                      "--adapter", "a", "--model", "m"])
    assert build_run_config(args).system_options["temperature"] == 1.0
    other = tmp_path / "run.yaml"
    other.write_text("system: zero-shot\nsystem_options: {temperature: 0.3}\noptions: {samples: 4}\n")
    cfg = build_run_config(build_parser().parse_args(["run", "--config", str(other)]))
    assert cfg.system_options["temperature"] == 0.3 and cfg.system_options["samples"] == 4
