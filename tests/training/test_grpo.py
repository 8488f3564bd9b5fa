"""GRPO with an execution reward: the reward on real SQLite databases (demo and Spider train), a few GRPO steps
on the tiny random model from an SFT adapter and from scratch (CPU), resume after a time-budget stop, the CLI."""

from __future__ import annotations

import json

import pytest

from t2s_bench.training.grpo import ExecutionReward, GRPOSettings, check_prompt_settings, grpo_defaults

TRAIN_DBS, VAL_DBS = ["school", "store"], ["flights"]
COUNT = "SELECT count(*) FROM student"
SLOW = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


@pytest.fixture(scope="module")
def demo():
    from t2s_bench.datasets import load_dataset

    return load_dataset("demo")


@pytest.fixture
def reward(tmp_path):
    from t2s_bench.execution import GoldCache

    cache = GoldCache(tmp_path / "gold.sqlite")
    r = ExecutionReward(timeout=0.5, workers=2, gold_cache=cache)
    yield r
    r.close()
    cache.close()


def test_reward_is_one_for_the_gold_result_a_tenth_for_other_executable_sql_zero_otherwise(demo, reward):
    db = str(demo.db_path("school"))
    completions = [
        "```sql\nSELECT COUNT(*) FROM student;\n```",  # same result, other spelling, in a fence
        "SELECT count(*) FROM student WHERE age > 200",  # executes, different result
        "SELEC count(* FROM student",  # syntax error
        "I cannot answer that.",  # no SQL
        "",
        "SELECT count(*) FROM no_such_table",  # execution error
    ]
    assert reward(completions=completions, gold=[COUNT] * 6, db_path=[db] * 6) == [1.0, 0.1, 0.0, 0.0, 0.0, 0.0]


def test_reward_uses_the_scorers_comparison(demo, reward):
    db = str(demo.db_path("school"))
    gold = "SELECT first_name , last_name FROM student WHERE age > 23"
    by_salary = "SELECT name FROM teacher ORDER BY salary DESC"
    got = reward(completions=["SELECT last_name, first_name FROM student WHERE age > 23",  # columns permuted
                              "SELECT DISTINCT first_name, last_name FROM student WHERE age > 23",  # DISTINCT removed
                              "SELECT name FROM teacher ORDER BY salary ASC",  # gold orders: order compared
                              "SELECT name FROM teacher ORDER BY salary ASC"],  # gold does not order
                 gold=[gold, gold, by_salary, "SELECT name FROM teacher"], db_path=[db] * 4)
    assert got == [1.0, 1.0, 0.1, 1.0]


def test_a_slow_query_is_stopped_by_the_timeout_and_scores_zero(demo, reward):
    import time

    db = str(demo.db_path("school"))
    t0 = time.monotonic()
    assert reward(completions=[SLOW, COUNT], gold=[COUNT, COUNT], db_path=[db, db]) == [0.0, 1.0]
    assert time.monotonic() - t0 < 10


def test_gold_results_are_cached_in_memory_and_on_disk(demo, reward):
    db = str(demo.db_path("school"))
    reward(completions=[COUNT] * 4, gold=[COUNT] * 4, db_path=[db] * 4)
    assert reward.gold_executions == 1  # one gold for four completions
    reward(completions=["SELECT 1"] * 2, gold=[COUNT] * 2, db_path=[db] * 2)
    assert reward.gold_executions == 1  # the second call reads memory
    assert reward._disk().get(db, COUNT).rows == [(40,)]
    fresh = ExecutionReward(timeout=0.5, workers=1, gold_cache=reward._disk())
    assert fresh.score([COUNT], [COUNT], [db]) == [1.0]  # a new process-lifetime cache reads the disk
    assert fresh.gold_executions == 1 and fresh._gold


def test_reward_on_spider_train_databases():
    from t2s_bench import paths

    if paths.spider_dir() is None or not (paths.spider_dir() / "train_spider.json").is_file():
        pytest.skip("Spider not found (set T2S_SPIDER_DIR)")
    from t2s_bench.datasets import load_dataset

    train = load_dataset("spider-train")
    examples = [e for e in train.examples[:40] if train.db_path(e.db_id) is not None][:8]
    r = ExecutionReward(timeout=2.0, workers=2, gold_cache=False)
    golds = [e.query for e in examples]
    dbs = [str(train.db_path(e.db_id)) for e in examples]
    assert r.score(golds, golds, dbs) == [1.0] * len(examples)
    wrong = [f"SELECT count(*) FROM ({g}) AS sub WHERE 0" for g in golds]  # executes, answers 0 rows' count
    assert all(x in (0.1, 1.0) for x in r.score(wrong, golds, dbs))
    assert 0.1 in r.score(wrong, golds, dbs)


# ---------------------------------------------------------------- GRPO on the tiny model


@pytest.fixture
def one_thread():
    """Tiny matrices on a shared 2-core CPU: one torch thread is several times faster than two contending."""
    torch = pytest.importorskip("torch")
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def _config(tiny_model, root, **overrides):
    from t2s_bench.training import TrainConfig

    values = dict(base=str(tiny_model.hf_dir), builder="lora", train="demo", val="demo", train_db_ids=TRAIN_DBS,
                  val_db_ids=VAL_DBS, val_size=2, schema_formats=("compact",), max_steps=2, batch_size=4,
                  grad_accum=1, eval_every=0, eval_at_start=False, lr=1e-3, max_new_tokens=8, gen_batch_size=4,
                  exec_workers=1, log_every=1, data_cache=str(root / "prep"))
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def sft_adapter(tiny_model, tmp_path_factory):
    pytest.importorskip("trl")
    import torch

    from t2s_bench.training import train

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        root = tmp_path_factory.mktemp("sft")
        return train(_config(tiny_model, root, out=str(root / "adapter"), max_steps=1, data_cache=str(root / "prep")))
    finally:
        torch.set_num_threads(saved)


def _summary(out) -> dict:
    return json.loads((out / "train_summary.json").read_text())


def test_grpo_from_an_sft_adapter_resumes_after_a_time_budget_stop(tiny_model, sft_adapter, tmp_path, one_thread):
    from t2s_bench.training.grpo import train_grpo

    settings = GRPOSettings(init_adapter=str(sft_adapter), num_generations=2, reward_workers=2)
    config = _config(tiny_model, tmp_path, out=str(tmp_path / "grpo"), time_budget_s=1e-6, lr=1e-4)
    out = train_grpo(config, settings)
    s = _summary(out)
    assert s["stopped"].startswith("time budget") and s["steps"] == 1 and s["method"] == "grpo"
    out = train_grpo(_config(tiny_model, tmp_path, out=str(tmp_path / "grpo"), lr=1e-4), settings)
    s = _summary(out)
    assert s["stopped"] == "completed" and s["steps"] == 2 and s["init_adapter"] == str(sft_adapter)
    for name in ("adapter_config.json", "adapter_model.safetensors", "curves.json", "curves.csv", "train_config.json"):
        assert (out / name).is_file(), name
    assert not (out / "ref").exists()  # TRL's frozen reference copy is not part of the adapter
    curves = json.loads((out / "curves.json").read_text())
    rewards = [r for r in curves if r.get("reward") is not None]
    # step 1 from the first call (kept in the checkpoint's log history), step 2 from the resumed one
    assert [r["step"] for r in rewards] == [1, 2] and all(0.0 <= r["reward"] <= 1.0 for r in rewards)
    assert all(r["kl"] is not None and r["exec_correct"] is not None for r in rewards)
    assert any(r.get("val_exec_acc") is not None for r in curves)
    record = json.loads((out / "train_config.json").read_text())
    assert record["method"] == "grpo" and record["grpo"]["num_generations"] == 2 and record["grpo"]["beta"] == 0.04
    assert record["packages"]["trl"] and record["init_adapter"]["sha256"]
    assert record["data"]["validation_db_ids"] == VAL_DBS and not set(VAL_DBS) & set(record["data"]["train_db_ids"])
    trained = json.loads((sft_adapter / "train_config.json").read_text())["config"]
    for key in ("template", "schema_formats", "schema_options", "max_length"):
        assert record["config"][key] == trained[key]


def test_grpo_from_scratch_writes_an_adapter_that_t2s_bench_run_evaluates(tiny_model, tmp_path, one_thread):
    pytest.importorskip("trl")
    import t2s_bench as t
    from t2s_bench.training.grpo import train_grpo

    out = train_grpo(_config(tiny_model, tmp_path, out=str(tmp_path / "grpo")),
                     GRPOSettings(num_generations=2, reward_workers=1))
    s = _summary(out)
    assert s["stopped"] == "completed" and s["steps"] == 2 and s["init_adapter"] is None
    assert s["reward_calls"] == 2 and s["reward_logs"] == 2 and s["gold_executions"] >= 1
    run = t.evaluate("finetuned", adapter=str(out), dataset="demo", limit=2, backend="transformers",
                     max_new_tokens=8, out=tmp_path / "run")
    assert len(run.records) == 2


def test_steps_per_generation_generates_two_steps_of_completions_in_one_call(tiny_model, tmp_path, one_thread):
    pytest.importorskip("trl")
    from t2s_bench.training.grpo import train_grpo

    out = train_grpo(_config(tiny_model, tmp_path, out=str(tmp_path / "grpo")),
                     GRPOSettings(num_generations=2, reward_workers=1, steps_per_generation=2))
    s = _summary(out)
    assert s["stopped"] == "completed" and s["steps"] == 2
    assert s["reward_calls"] == 1  # one generation (and one reward call) served both optimiser steps
    record = json.loads((out / "train_config.json").read_text())
    assert record["grpo"]["steps_per_generation"] == 2


def test_prompt_settings_must_be_the_sft_adapters(tiny_model, sft_adapter, tmp_path):
    defaults = grpo_defaults(str(sft_adapter))
    assert defaults["schema_formats"] == ["compact"] and defaults["base"] == str(tiny_model.hf_dir)
    assert defaults["lr"] == 1e-5
    with pytest.raises(ValueError, match="SFT prompts"):
        check_prompt_settings(_config(tiny_model, tmp_path, out=str(tmp_path / "x"), schema_formats=("ddl",)),
                              str(sft_adapter))
    with pytest.raises(ValueError, match="dev"):
        check_prompt_settings(_config(tiny_model, tmp_path, out=str(tmp_path / "x"), train="spider-dev"), None)


def test_cli_parses_train_method_grpo(tiny_model, sft_adapter, tmp_path):
    import argparse

    from t2s_bench.cli import train as cli

    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["train", "--method", "grpo", "--init-adapter", str(sft_adapter), "--out",
                              str(tmp_path / "o"), "--num-generations", "4", "--beta", "0.02", "--temperature", "0.9",
                              "--max-steps", "5", "--reward-timeout", "3", "--steps-per-generation", "8"])
    config, settings = cli.grpo_from_args(args)
    assert settings.num_generations == 4 and settings.beta == 0.02 and settings.temperature == 0.9
    assert settings.reward_timeout == 3 and settings.init_adapter == str(sft_adapter)
    assert settings.steps_per_generation == 8
    assert config.max_steps == 5 and config.lr == 1e-5 and config.base == str(tiny_model.hf_dir)
    assert list(config.schema_formats) == ["compact"] and config.val_db_ids == VAL_DBS
    with pytest.raises(ValueError, match="--method grpo"):
        cli._train(parser.parse_args(["train", "--init-adapter", str(sft_adapter), "--base", "b", "--out", "o"]))
