"""Training on transformers' Trainer end to end (tiny random model, demo data, CPU): validation through the
harness, best checkpoint, resume after a time-budget stop, the non-finite guard, early stopping, the full
builder, tracker integrations."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from t2s_bench.training import NonFiniteTrainingError, TrainConfig, train  # noqa: E402

TRAIN_DBS, VAL_DBS = ["school", "store"], ["flights"]


def tiny_config(tiny_model, root, **overrides) -> TrainConfig:
    values = dict(
        base=str(tiny_model.hf_dir), out=str(root / "adapter"), builder="lora", train="demo", val="demo",
        train_db_ids=TRAIN_DBS, val_db_ids=VAL_DBS, val_size=3, schema_formats=("compact",), max_steps=3,
        batch_size=4, grad_accum=1, eval_every=0, eval_at_start=False, lr=1e-3, max_new_tokens=8, gen_batch_size=4,
        exec_workers=1, log_every=1, data_cache=str(root / "prep"),
    )
    values.update(overrides)
    return TrainConfig(**values)


def summary(out) -> dict:
    return json.loads((out / "train_summary.json").read_text())


def test_lora_validates_through_the_harness_and_keeps_the_best_adapter(tiny_model, tmp_path):
    import t2s_bench as t

    out = train(tiny_config(tiny_model, tmp_path, max_steps=4, eval_every=2, eval_at_start=True, grad_accum=2,
                            batch_size=2))
    s = summary(out)
    assert s["steps"] == 4 and s["stopped"] == "completed" and s["skipped_nonfinite_steps"] == 0
    assert 0 < s["trainable_params"] < s["total_params"] and s["n_validation"] == 3
    for name in ("adapter_config.json", "adapter_model.safetensors", "curves.json", "curves.csv", "train_config.json",
                 "data_stats.json"):
        assert (out / name).is_file(), name
    runs = sorted(p.name for p in (out / "validation").iterdir())
    assert runs == ["step-000000", "step-000002", "step-000004"]
    curves = json.loads((out / "curves.json").read_text())
    evals = [r for r in curves if r.get("val_exec_acc") is not None]
    assert [r["step"] for r in evals] == [0, 2, 4] and all(math.isfinite(r["val_loss"]) for r in evals)
    assert sum(r.get("train_loss") is not None for r in curves) == 4
    for name in runs:  # each validation is an ordinary run directory, scored by the core scorer
        run = t.load_run(out / "validation" / name)
        assert len(run.records) == 3 and set(run.records["db_id"]) == {"flights"}
        assert run.config["system"]["backend"]["step"] == int(name.split("-")[1])
        preds = run.predictions
        assert all(not p.get("error") for p in preds.values()), preds  # the backend answered every question
    best = t.load_run(out / "validation" / f"step-{s['best_step']:06d}")
    assert s["best_val_exec_acc"] == pytest.approx(best.ex)
    record = json.loads((out / "train_config.json").read_text())
    assert record["config"]["base"] == str(tiny_model.hf_dir) and record["data"]["validation_db_ids"] == VAL_DBS


def test_the_saved_adapter_reproduces_its_validation_through_t2s_bench_run(tiny_model, tmp_path):
    import t2s_bench as t
    from t2s_bench.datasets import load_dataset

    out = train(tiny_config(tiny_model, tmp_path, max_steps=2))
    s = summary(out)
    assert s["best_step"] == 2
    validation = t.load_run(out / "validation" / "step-000002")
    questions = load_dataset("demo").filter(indices=list(validation.predictions))
    rerun = t.evaluate("finetuned", adapter=str(out), dataset=questions, backend="transformers", max_new_tokens=8,
                       out=tmp_path / "rerun")
    assert {i: p["sql"] for i, p in rerun.predictions.items()} == \
        {i: p["sql"] for i, p in validation.predictions.items()}


def test_a_time_budget_stop_resumes_from_the_trainer_checkpoint(tiny_model, tmp_path):
    config = tiny_config(tiny_model, tmp_path, time_budget_s=1e-6)  # stops after the first step
    out = train(config)
    first = summary(out)
    assert first["steps"] == 1 and first["stopped"].startswith("time budget")
    assert (out / "checkpoints" / "checkpoint-1").is_dir()
    config.time_budget_s = 3600.0  # the rerun's budget is the one that counts
    train(config)
    second = summary(out)
    assert second["steps"] == 3 and second["stopped"] == "completed" and second["time_budget_s"] == 3600.0
    curves = json.loads((out / "curves.json").read_text())
    assert [r["step"] for r in curves if r.get("train_loss") is not None] == [1, 2, 3]  # history kept across calls
    config.time_budget_s = 1e-6  # a completed run stays completed
    train(config)
    assert summary(out)["steps"] == 3
    config.resume = False  # --no-resume: from step 0 again
    config.out = str(tmp_path / "fresh")
    train(config)
    assert summary(tmp_path / "fresh")["steps"] == 1
    other = tiny_config(tiny_model, tmp_path, schema_formats=("ddl", "compact"), max_length=4096)
    with pytest.raises(ValueError, match="trained on other data"):
        train(other)  # same folder, other prepared data


def test_guard_skips_non_finite_steps_and_stops_after_n_in_a_row(tiny_model, tmp_path):
    def nan_at_step_1(step, loss):
        return loss * float("nan") if step == 1 else loss

    out = train(tiny_config(tiny_model, tmp_path, max_steps=3), loss_hook=nan_at_step_1)
    s = summary(out)
    assert s["steps"] == 3 and s["skipped_nonfinite_steps"] == 1 and s["stopped"] == "completed"
    lines = [json.loads(x) for x in (out / "nonfinite_steps.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2] and lines[0]["loss"] == "nan"
    curves = json.loads((out / "curves.json").read_text())
    assert all(math.isfinite(r["train_loss"]) for r in curves if r.get("train_loss") is not None)

    with pytest.raises(NonFiniteTrainingError, match="2 consecutive"):
        train(tiny_config(tiny_model, tmp_path / "always", max_steps=5, max_consecutive_nonfinite=2),
              loss_hook=lambda step, loss: loss + float("inf"))
    s = summary(tmp_path / "always" / "adapter")
    assert s["steps"] == 2 and s["skipped_nonfinite_steps"] == 2 and s["stopped"].startswith("non-finite")


def test_early_stopping_on_validation_execution_accuracy(tiny_model, tmp_path):
    # lr 0: the accuracy never improves, so the run stops `patience` evaluations after the first
    out = train(tiny_config(tiny_model, tmp_path, max_steps=8, eval_every=1, lr=0.0, patience=1))
    s = summary(out)
    assert s["stopped"].startswith("early stop") and s["steps"] == 2


def test_full_fine_tuning_writes_a_model_folder_the_harness_loads(tiny_model, tmp_path):
    import t2s_bench as t

    out = train(tiny_config(tiny_model, tmp_path, builder="full", max_steps=2, lr=1e-4))
    s = summary(out)
    assert s["trainable_params"] == s["total_params"] and s["steps"] == 2
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert (out / "tokenizer.json").is_file() and not (out / "adapter_config.json").exists()
    run = t.evaluate("finetuned", model=str(out), backend="transformers", dataset="demo", db="flights", limit=2,
                     max_new_tokens=8, out=tmp_path / "run")
    assert len(run.records) == 2
    # the folder is tested with the prompt it was trained on (here: the compact schema format)
    from t2s_bench.systems import get_system

    assert (out / "train_config.json").is_file()
    assert get_system("finetuned", model=str(out), backend="transformers").schema_format == "compact"


@pytest.mark.parametrize("tracker", ["tensorboard", "mlflow", "wandb"])
def test_report_to_writes_the_trackers_own_files(tiny_model, tmp_path, monkeypatch, tracker):
    pytest.importorskip({"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}[tracker])
    for var in ("TENSORBOARD_LOGGING_DIR", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "WANDB_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = train(tiny_config(tiny_model, tmp_path, max_steps=2, report_to=tracker))
    if tracker == "tensorboard":
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = list((out / "tensorboard").rglob("events.out.tfevents.*"))
        assert events
        acc = EventAccumulator(str(events[0].parent))
        acc.Reload()
        assert "train/loss" in acc.Tags()["scalars"] and "eval/exec_acc" in acc.Tags()["scalars"]
        assert len(acc.Scalars("train/loss")) == 2
    elif tracker == "mlflow":
        import mlflow

        client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{(out / 'mlflow.db').resolve()}")
        exp = client.get_experiment_by_name("t2s-bench")
        run = client.search_runs([exp.experiment_id])[0]
        assert len(client.get_metric_history(run.info.run_id, "loss")) == 2
        assert client.get_metric_history(run.info.run_id, "eval_exec_acc")
    else:
        assert list((out / "wandb").glob("offline-run-*/run-*.wandb"))


def test_cli_flags_map_onto_the_config():
    import argparse

    from t2s_bench.cli.train import add_parser, config_from_args

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["train", "--base", "b", "--out", "o", "--augment", "spider-syn", "--schema-option",
                              "schema=pruned", "--schema-option", "values=true", "--schema-option", "sample_rows=3",
                              "--padding-free", "--attn", "flex_attention", "--sdpa-kernels", "default",
                              "--report-to", "mlflow", "--builder", "full"])
    config = config_from_args(args)
    assert config.builder == "full" and config.val == "held-out" and config.augment == ("spider-syn",)
    assert config.schema_options == {"schema": "pruned", "values": True, "sample_rows": 3}
    assert config.padding_free is True and config.attn_implementation == "flex_attention"
    assert config.sdpa_kernels is None and config.report_to == "mlflow"
    default = config_from_args(parser.parse_args(["train", "--base", "b", "--out", "o"]))
    assert default.builder == "lora" and default.padding_free is False and default.eval_at_start is True


def test_torch_compile_flag_reaches_the_trainer(tmp_path):
    import torch

    from t2s_bench.cli import build_parser
    from t2s_bench.cli.train import config_from_args
    from t2s_bench.training.trainer import training_arguments

    parser = build_parser()
    on = config_from_args(parser.parse_args(["train", "--base", "b", "--out", str(tmp_path), "--torch-compile"]))
    off = config_from_args(parser.parse_args(["train", "--base", "b", "--out", str(tmp_path)]))
    assert on.torch_compile is True and off.torch_compile is False
    assert training_arguments(on, tmp_path, torch.device("cpu"), 10).torch_compile is True
    assert training_arguments(off, tmp_path, torch.device("cpu"), 10).torch_compile is False
