"""End to end on CPU: prepare demo data, train the tiny model with LoRA, validate by execution,
resume, merge, export to GGUF (f32 and Q8_0) and load it in llama-cpp-python."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")


def _llama_cpp_or_skip():
    try:
        import llama_cpp  # noqa: F401
    except ImportError as e:
        pytest.skip(f"llama-cpp-python not importable ({e}); GGUF loading not checked")


@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory):
    import t2s_bench.scoring as scoring

    if not hasattr(scoring, "score_predictions"):
        pytest.skip("t2s_bench.scoring.score_predictions is not built yet: validation by execution needs it")
    from t2s_bench.training import TrainConfig, train

    root = tmp_path_factory.mktemp("train")
    config = TrainConfig(
        base=str(tiny_model.hf_dir), out=str(root / "adapter"), builder="lora", train="demo", val="demo",
        train_db_ids=["school", "store"], val_db_ids=["flights"], val_size=4, schema_formats=("compact",),
        max_steps=4, batch_size=8, grad_accum=1, eval_every=2, patience=5, lr=1e-3, max_new_tokens=16,
        gen_batch_size=4, exec_workers=1, log_every=1, data_cache=str(root / "prep"),
    )
    return config, train(config)


def test_training_writes_adapter_curves_and_reproducibility_record(trained):
    config, out = trained
    for name in ("adapter_config.json", "adapter_model.safetensors", "curves.json", "curves.csv", "curves.png",
                 "train_config.json"):
        assert (out / name).is_file(), name
    assert (out / "checkpoints").is_dir() and (out / "validation" / "step-000004" / "metrics.json").is_file()
    curves = json.loads((out / "curves.json").read_text())
    evals = [r for r in curves if r.get("val_exec_acc") is not None]
    assert [r["step"] for r in evals] == [0, 2, 4]  # the base model, then every 2 steps
    assert all(0.0 <= r["val_exec_acc"] <= 1.0 and r["val_loss"] > 0 for r in evals)
    losses = [r["train_loss"] for r in curves if r.get("train_loss") is not None]
    assert len(losses) == 4 and all(loss == loss for loss in losses)
    info = json.loads((out / "train_config.json").read_text())
    assert info["template"]["version"] == "v1.0" and len(info["template"]["sha256"]) == 64
    assert info["seed"] == 42 and info["data"]["hash"] and info["packages"]["torch"]
    assert len(info["base_model"]["sha256"]) == 64
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 4 and summary["skipped_nonfinite_steps"] == 0
    assert summary["n_validation"] == 4 and 0 < summary["trainable_params"] < summary["total_params"]
    assert summary["best_val_exec_acc"] == max(r["val_exec_acc"] for r in evals)


def test_rerun_resumes_from_the_checkpoint_instead_of_training_again(trained):
    from t2s_bench.training import train

    config, out = trained
    before = (out / "adapter_model.safetensors").read_bytes()
    train(config)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 4 and (out / "adapter_model.safetensors").read_bytes() == before


def test_merge_matches_the_adapter_and_gguf_round_trips(trained, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from t2s_bench.training import export_adapter

    config, out = trained
    _llama_cpp_or_skip()
    summary = export_adapter(out, tmp_path / "ft.gguf", quant="f32")
    ids = torch.tensor([[5, 17, 42, 99, 3, 250]])
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(config.base, dtype=torch.float32)
        with_adapter = PeftModel.from_pretrained(base, str(out)).eval()(ids).logits
        merged = AutoModelForCausalLM.from_pretrained(summary["merged_hf"], dtype=torch.float32).eval()(ids).logits
    assert torch.allclose(with_adapter, merged, atol=1e-4)
    sidecar = json.loads((tmp_path / "ft.export.json").read_text())
    assert sidecar["prompt"]["template"] == config.template  # `run --system finetuned --model ft.gguf` reads it
    assert sidecar["prompt"]["schema_formats"] == list(config.schema_formats)
    check = summary["verify"]
    assert check["tokens_equal"] and check["max_abs_logit_diff_all"] < 1e-3 * max(1.0, check["max_abs_logit"])
    # an f32 GGUF keeps all of what fine-tuning changed...
    kept = summary["fine_tuning_kept"]
    assert kept["kl_base"] > 1e-6 and kept["kl_gguf"] < 1e-3 * kept["kl_base"] and kept["kept"] > 0.99


def test_fine_tuning_kept_is_zero_for_a_gguf_of_the_base_model(trained, tiny_model, tmp_path):
    """...and the base model's own GGUF keeps none of it: what a 4-bit export that rounds the adapter
    away looks like."""
    from t2s_bench.training import fine_tuning_kept, merge_adapter

    config, out = trained
    _llama_cpp_or_skip()
    merged = merge_adapter(out, tmp_path / "merged", dtype="float32")
    kept = fine_tuning_kept(merged, tiny_model.gguf_path, config.base)
    assert kept["kl_base"] > 1e-6 and abs(kept["kept"]) < 0.05


def test_q8_0_gguf_holds_the_merged_weights_to_8_bit_precision(trained, tmp_path):
    """Q8_0 (llama.cpp's quantizer when llama-cpp-python is installed, else gguf.quants); checked by
    de-quantizing."""
    import gguf
    import numpy as np

    from t2s_bench.training import export_gguf, merge_adapter

    _, out = trained
    merged = merge_adapter(out, tmp_path / "merged", dtype="float32")
    f32 = {t.name: np.array(t.data) for t in gguf.GGUFReader(str(export_gguf(merged, tmp_path / "a.gguf",
                                                                             quant="f32"))).tensors}
    q8 = gguf.GGUFReader(str(export_gguf(merged, tmp_path / "ft-q8_0.gguf", quant="q8_0")))
    types = {t.name: t.tensor_type for t in q8.tensors}
    assert types["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert types["blk.0.attn_norm.weight"] == gguf.GGMLQuantizationType.F32
    assert q8.fields["tokenizer.ggml.tokens"].contents()[:5] == \
        gguf.GGUFReader(str(tmp_path / "a.gguf")).fields["tokenizer.ggml.tokens"].contents()[:5]
    for t in q8.tensors:
        ref = f32[t.name]
        if t.tensor_type == gguf.GGMLQuantizationType.Q8_0:
            back = gguf.quants.dequantize(np.array(t.data), t.tensor_type).reshape(ref.shape)
            assert np.abs(back - ref).max() <= np.abs(ref).max() / 127 + 1e-3, t.name  # one 8-bit step
        else:
            assert np.array_equal(np.array(t.data), ref), t.name


def test_merge_from_a_gguf_base_drops_the_gguf_quantization_config(trained, tiny_model, tmp_path):
    from t2s_bench.training import merge_adapter

    _, out = trained
    merged = merge_adapter(out, tmp_path / "merged", base=str(tiny_model.gguf_path), dtype="float32")
    cfg = json.loads((merged / "config.json").read_text())
    assert "quantization_config" not in cfg and (merged / "model.safetensors").is_file()


def test_unknown_quant_type_is_a_clear_error(tmp_path):
    from t2s_bench.training import export_gguf

    with pytest.raises(ValueError, match="quant must be one of"):
        export_gguf(tmp_path, tmp_path / "x.gguf", quant="q3_xs")


def test_q4_k_m_export_runs_in_llama_cpp(trained, tmp_path):
    """The RTX 3050 path: merged model -> f16 GGUF -> llama.cpp Q4_K_M -> loads and generates."""
    _llama_cpp_or_skip()
    import gguf

    from t2s_bench.backends.llama_cpp import load_llama
    from t2s_bench.training import export_gguf, merge_adapter

    _, out = trained
    merged = merge_adapter(out, tmp_path / "merged", dtype="float32")
    path = export_gguf(merged, tmp_path / "ft-q4_k_m.gguf", quant="q4_k_m")
    reader = gguf.GGUFReader(str(path))
    quantised = {t.tensor_type for t in reader.tensors} - {gguf.GGMLQuantizationType.F32}
    assert quantised and gguf.GGMLQuantizationType.F16 not in quantised  # every matrix quantised
    assert path.stat().st_size < (tmp_path / "merged" / "model.safetensors").stat().st_size / 2
    llm = load_llama(path, n_ctx=128, verbose=False)
    try:
        out_text = llm.create_completion("SELECT", max_tokens=4, temperature=0.0)["choices"][0]["text"]
    finally:
        llm.close()
    assert isinstance(out_text, str)


def test_lora_gguf_on_the_unchanged_base_matches_the_adapter(trained, tiny_model, tmp_path):
    """`train export --lora-gguf`: llama.cpp applies the GGUF LoRA to the base GGUF at run time and gives
    the PEFT model's logits; the finetuned system runs it on the llama-cpp backend."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from t2s_bench.runner import RunConfig, run
    from t2s_bench.testing.tiny_model import gguf_logits
    from t2s_bench.training import export_lora_gguf

    config, out = trained
    _llama_cpp_or_skip()
    lora = export_lora_gguf(out, out / "adapter-lora-f16.gguf")
    assert json.loads((out / "adapter-lora-f16.export.json").read_text())["prompt"]["template"] == config.template
    ids = [5, 17, 42, 99, 3, 250]
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(config.base, dtype=torch.float32)
        tuned = PeftModel.from_pretrained(base, str(out)).eval()(torch.tensor([ids])).logits[0].numpy()
    plain = gguf_logits(tiny_model.gguf_path, ids)
    with_lora = gguf_logits(tiny_model.gguf_path, ids, lora_path=lora)
    n = tuned.shape[1]
    error, moved = abs(with_lora[:, :n] - tuned).max(), abs(plain[:, :n] - tuned).max()
    assert moved > 1e-3 and error < 0.05 * moved  # f16 adapter weights: small against what training moved
    result = run(RunConfig(system="finetuned", dataset="demo", limit=4, out=str(tmp_path / "run"), progress=False,
                           system_options={"adapter": str(out), "model": str(tiny_model.gguf_path),
                                           "backend": "llama-cpp", "max_new_tokens": 8}))
    recorded = json.loads((result / "config.json").read_text())
    assert "adapter-lora-f16.gguf" in json.dumps(recorded)
    assert len((result / "predictions.jsonl").read_text().splitlines()) == 4
