"""Training data preparation, the loss and the numerical guard (tiny model, demo data, CPU)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from t2s_bench.datasets import Example, load_dataset  # noqa: E402
from t2s_bench.training.builders import build_model  # noqa: E402
from t2s_bench.training.config import TrainConfig  # noqa: E402
from t2s_bench.training.data import IGNORE_INDEX, PrepSettings, end_of_turn_id, prepare_training_data  # noqa: E402
from t2s_bench.training.guard import (  # noqa: E402
    NonFiniteGuard,
    NonFiniteTrainingError,
    optimizer_step,
    sft_loss_sum,
)
from t2s_bench.training.trainer import SQLCollator, sql_loss_sum  # noqa: E402

TRAIN_DBS, VAL_DBS = ["school", "store"], ["flights"]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model.hf_dir)


@pytest.fixture(scope="module")
def demo():
    return load_dataset("demo")


@pytest.fixture(scope="module")
def prepared(demo, tokenizer, tmp_path_factory):
    return prepare_training_data(demo, demo, tokenizer, PrepSettings(schema_formats=("compact",)),
                                 cache_root=tmp_path_factory.mktemp("prep"), train_db_ids=TRAIN_DBS,
                                 val_db_ids=VAL_DBS)


def test_labels_cover_only_the_sql_and_end_of_turn(prepared, tokenizer, demo):
    from t2s_bench.training.data import target_sql

    eot = end_of_turn_id(tokenizer)
    assert tokenizer.convert_ids_to_tokens(eot) == "<|im_end|>"
    gold = {e.index: e.query for e in demo.examples}
    for rec in prepared.train.select(range(5)):
        n = rec["n_prompt"]
        assert rec["labels"][:n] == [IGNORE_INDEX] * n
        target = rec["labels"][n:]
        assert target == rec["input_ids"][n:] and target[-1] == eot
        assert tokenizer.decode(target[:-1]) == target_sql(gold[rec["index"]])
        # the prompt is what inference sends: chat template with the generation prompt at the end
        assert tokenizer.decode(rec["input_ids"][:n]).endswith("<|im_start|>assistant\n")
    assert set(prepared.train["db_id"]) == set(TRAIN_DBS)
    assert set(prepared.validation["db_id"]) == set(VAL_DBS)
    stats = prepared.meta["stats"]["train"]
    assert stats["n_kept"] == len(prepared.train) and stats["total_tokens"]["max"] <= 1024


def test_artefact_is_reused_and_keyed_by_settings(prepared, demo, tokenizer):
    root = prepared.path.parent
    stamp = (prepared.path / "meta.json").stat().st_mtime_ns
    again = prepare_training_data(demo, demo, tokenizer, PrepSettings(schema_formats=("compact",)),
                                  cache_root=root, train_db_ids=TRAIN_DBS, val_db_ids=VAL_DBS)
    assert again.path == prepared.path and (again.path / "meta.json").stat().st_mtime_ns == stamp
    assert again.train["input_ids"] == prepared.train["input_ids"]
    other = prepare_training_data(demo, demo, tokenizer, PrepSettings(max_length=900, schema_formats=("compact",)),
                                  cache_root=root, train_db_ids=TRAIN_DBS, val_db_ids=VAL_DBS)
    assert other.path != prepared.path and other.data_hash != prepared.data_hash


def test_over_long_examples_fall_back_to_compact_schema_then_drop(demo, tokenizer, tmp_path):
    both = ("ddl", "compact")
    full = prepare_training_data(demo, demo, tokenizer, PrepSettings(max_length=100_000, schema_formats=("ddl",)),
                                 cache_root=tmp_path, train_db_ids=TRAIN_DBS, val_db_ids=VAL_DBS)
    ddl_lengths = sorted(len(x) for x in full.train["input_ids"])
    cut = ddl_lengths[len(ddl_lengths) // 2]  # half the DDL prompts are too long at this limit
    mixed = prepare_training_data(demo, demo, tokenizer, PrepSettings(max_length=cut, schema_formats=both),
                                  cache_root=tmp_path, train_db_ids=TRAIN_DBS, val_db_ids=VAL_DBS)
    counts = mixed.meta["stats"]["train"]["schema_format_counts"]
    assert counts.get("ddl", 0) > 0 and counts.get("compact", 0) > 0
    assert max(len(x) for x in mixed.train["input_ids"]) <= cut
    with pytest.raises(ValueError, match="longer than max_length"):
        prepare_training_data(demo, demo, tokenizer, PrepSettings(max_length=60, schema_formats=both),
                              cache_root=tmp_path, train_db_ids=TRAIN_DBS, val_db_ids=VAL_DBS)


def test_validation_databases_must_be_disjoint_and_missing_databases_are_counted(demo, tokenizer, tmp_path):
    with pytest.raises(ValueError, match="databases not seen in training"):
        prepare_training_data(demo, demo, tokenizer, cache_root=tmp_path, train_db_ids=["school", "store"],
                              val_db_ids=["store"])
    from t2s_bench.datasets import Dataset

    with_missing = Dataset("demo+missing", demo.examples + [Example(9999, "absent_db", "q?", "SELECT 1")],
                           demo.schemas, demo.db_dir)
    prep = prepare_training_data(
        Dataset("train", [e for e in with_missing.examples if e.db_id != "flights"], demo.schemas, demo.db_dir),
        demo, tokenizer, PrepSettings(schema_formats=("compact",)), cache_root=tmp_path, val_db_ids=VAL_DBS)
    assert prep.meta["stats"]["train"]["n_skipped_missing_database"] == 1
    assert 9999 not in prep.train["index"]


# ---------------------------------------------------------------- loss and guard


@pytest.fixture()
def lora_model(tiny_model, tmp_path):
    torch.manual_seed(0)
    cfg = TrainConfig(base=str(tiny_model.hf_dir), out=str(tmp_path), builder="lora", lora_dropout=0.0)
    model = build_model(cfg, torch.device("cpu"))
    model.train()
    return model


def _trainable(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _batch(prepared, n=2, pad_id=0, all_masked=False):
    recs = [dict(r) for r in prepared.train.select(range(n))]
    if all_masked:  # what truncating an over-long example at max_length leaves: no SQL token
        for r in recs:
            r["labels"] = [IGNORE_INDEX] * len(r["labels"])
    batch = SQLCollator(pad_id, padding_free=False)(recs)
    return {k: batch[k] for k in ("input_ids", "attention_mask", "labels")}


def test_all_masked_labels_give_nan_with_mean_reduction_but_not_here(lora_model, prepared):
    batch = _batch(prepared, all_masked=True)
    logits = lora_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    naive = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(), batch["labels"][:, 1:].reshape(-1),
        ignore_index=IGNORE_INDEX,
    )
    assert math.isnan(float(naive))  # 0/0: the failure mode of a mean over zero label tokens
    loss_sum, n = sft_loss_sum(lora_model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    assert n == 0 and float(loss_sum) == 0.0
    guard = NonFiniteGuard(max_consecutive=5)
    opt = torch.optim.AdamW([p for p in lora_model.parameters() if p.requires_grad], lr=1e-2)
    before = _trainable(lora_model)
    result = optimizer_step(lora_model, opt, [batch], guard=guard, max_grad_norm=1.0, step=0)
    assert not result.applied and guard.skipped == 1
    assert all(torch.equal(before[k], p) for k, p in lora_model.named_parameters() if p.requires_grad)


def test_one_unguarded_nan_step_poisons_every_later_step(lora_model, prepared):
    """Why the old loop 'became NaN and stayed NaN': one NaN update writes NaN into every LoRA weight."""
    batch = _batch(prepared)
    opt = torch.optim.AdamW([p for p in lora_model.parameters() if p.requires_grad], lr=1e-3)
    loss_sum, n = sft_loss_sum(lora_model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    (loss_sum / n * float("nan")).backward()
    opt.step()
    opt.zero_grad()
    later, m = sft_loss_sum(lora_model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    assert math.isnan(float(later))


def test_guard_skips_injected_nan_and_leaves_weights_and_optimizer_unchanged(lora_model, prepared):
    batch = _batch(prepared)
    opt = torch.optim.AdamW([p for p in lora_model.parameters() if p.requires_grad], lr=1e-2)
    guard = NonFiniteGuard(max_consecutive=3)
    first = optimizer_step(lora_model, opt, [batch], guard=guard, max_grad_norm=1.0, step=0)
    assert first.applied and math.isfinite(first.loss) and first.grad_norm > 0
    before, opt_state = _trainable(lora_model), {k: v["step"].clone() for k, v in opt.state.items()}

    def inject_nan(step, micro, loss):
        return loss * float("nan") if step == 1 else loss

    skipped = optimizer_step(lora_model, opt, [batch, batch], guard=guard, max_grad_norm=1.0, step=1,
                             loss_hook=inject_nan)
    assert not skipped.applied and guard.skipped == 1 and guard.consecutive == 1
    for name, p in lora_model.named_parameters():
        if p.requires_grad:
            assert torch.equal(before[name], p), name
            assert p.grad is None
    assert {k: v["step"] for k, v in opt.state.items()} == opt_state
    resumed = optimizer_step(lora_model, opt, [batch], guard=guard, max_grad_norm=1.0, step=2, loss_hook=inject_nan)
    assert resumed.applied and guard.consecutive == 0
    assert any(not torch.equal(before[n], p) for n, p in lora_model.named_parameters() if p.requires_grad)


def test_guard_stops_after_k_consecutive_non_finite_steps(lora_model, prepared):
    batch = _batch(prepared)
    opt = torch.optim.AdamW([p for p in lora_model.parameters() if p.requires_grad], lr=1e-3)
    guard = NonFiniteGuard(max_consecutive=2)
    inf_loss = lambda step, micro, loss: loss + float("inf")  # noqa: E731
    optimizer_step(lora_model, opt, [batch], guard=guard, max_grad_norm=1.0, step=0, loss_hook=inf_loss)
    with pytest.raises(NonFiniteTrainingError, match="2 consecutive"):
        optimizer_step(lora_model, opt, [batch], guard=guard, max_grad_norm=1.0, step=1, loss_hook=inf_loss)


def test_loss_matches_the_models_own_loss(lora_model, prepared):
    batch = _batch(prepared, n=3)
    ours, n = sft_loss_sum(lora_model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    with torch.no_grad():
        ref = lora_model(**batch).loss
    assert n > 0 and abs(float(ours) / n - float(ref)) < 1e-4


def test_padding_free_and_padded_batches_give_the_same_sql_loss(lora_model, prepared):
    """One row of concatenated examples (position_ids restarting) = padded rows: the attention stays inside
    each example, and the LM head at the marked positions sees exactly the SQL tokens."""
    recs = [dict(r) for r in prepared.train.select(range(4))]
    packed = SQLCollator(0, padding_free=True)(recs)
    padded = SQLCollator(0, padding_free=False)(recs)
    assert packed["input_ids"].shape[0] == 1 and "attention_mask" not in packed
    assert packed["n_tokens"] == padded["n_tokens"] == packed["input_ids"].shape[1]
    n_sql = sum(sum(1 for x in r["labels"][1:] if x != IGNORE_INDEX) for r in recs)
    assert int((packed["targets"] != IGNORE_INDEX).sum()) == int((padded["targets"] != IGNORE_INDEX).sum()) == n_sql
    assert packed["keep_positions"].numel() == n_sql  # the LM head runs on SQL positions only
    with torch.no_grad():
        a, _, _ = sql_loss_sum(lora_model, packed)
        b, _, _ = sql_loss_sum(lora_model, padded)
        reference, n = sft_loss_sum(lora_model, padded["input_ids"], padded["attention_mask"], padded["labels"])
    assert n == n_sql
    assert abs(float(a) - float(b)) < 1e-3 * float(b) and abs(float(b) - float(reference)) < 1e-3 * float(b)


def test_qlora_without_cuda_is_a_clear_error(tiny_model, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA present: the CPU error path does not apply")
    cfg = TrainConfig(base=str(tiny_model.hf_dir), out=str(tmp_path), builder="qlora")
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        build_model(cfg, torch.device("cpu"))


def test_config_rejects_unknown_options_and_builders():
    with pytest.raises(ValueError, match="unknown training option"):
        TrainConfig.from_dict({"base": "x", "out": "y", "learning_rate": 1})
    with pytest.raises(ValueError, match="builder must be one of"):
        TrainConfig(base="x", out="y", builder="prefix").validate()
    with pytest.raises(ValueError, match="unknown augmentation"):
        TrainConfig.from_dict({"base": "x", "out": "y", "augment": "backtranslation"}).validate()
    assert TrainConfig.from_dict({"base": "x", "out": "y", "augment": "spider-syn"}).augment == ("spider-syn",)


def test_attention_kernel_restriction_is_validated_and_a_no_op_on_cpu():
    from t2s_bench.training.builders import attention_kernels

    assert TrainConfig(base="x", out="y").sdpa_kernels == ("efficient", "math")
    with attention_kernels(("efficient", "math"), torch.device("cpu")):
        q = torch.randn(1, 2, 4, 8)
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
    with pytest.raises(ValueError, match="unknown SDPA kernel"):
        attention_kernels(("fastest",), torch.device("cpu"))
    cfg = TrainConfig.from_dict({"base": "x", "out": "y", "sdpa_kernels": ["math"]})
    assert cfg.sdpa_kernels == ("math",)


def test_schema_options_reach_the_training_prompt(demo, tokenizer, tmp_path):
    """The seam to the systems' schema options: sample rows shown at inference are shown in training too."""
    plain = prepare_training_data(demo, demo, tokenizer, PrepSettings(schema_formats=("compact",)),
                                  cache_root=tmp_path, train_db_ids=TRAIN_DBS, val_db_ids=VAL_DBS)
    rows = prepare_training_data(
        demo, demo, tokenizer,
        PrepSettings(schema_formats=("compact",), schema_options=PrepSettings.options_tuple({"sample_rows": 2})),
        cache_root=tmp_path, train_db_ids=TRAIN_DBS, val_db_ids=VAL_DBS)
    assert rows.data_hash != plain.data_hash
    assert all(len(b) > len(a) for a, b in zip(plain.train["input_ids"][:5], rows.train["input_ids"][:5]))
