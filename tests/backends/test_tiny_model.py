import json

import pytest

from t2s_bench.testing.tiny_model import SPECIAL_TOKENS, build_tiny_model, compare_hf_and_gguf, write_qwen2_gguf

MESSAGES = [
    {"role": "system", "content": "You write SQLite. CREATE TABLE singer (singer_id INTEGER, name TEXT);"},
    {"role": "user", "content": "How many singers are older than 30?\nSELECT count(*) FROM singer WHERE age > 30"},
]


def _chat_text(hf_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(hf_dir)
    return tok, tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)


def test_tokenizer_has_chat_specials_and_template(tiny_model):
    tok, text = _chat_text(tiny_model.hf_dir)
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    for special in SPECIAL_TOKENS:
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text


def test_build_is_cached(tiny_model, tmp_path):
    again = build_tiny_model(tiny_model.hf_dir.parent)
    assert again == tiny_model
    stamp = json.loads((tiny_model.hf_dir.parent / "tiny_model.json").read_text())
    assert stamp["gguf_outtype"] == "f32"


def test_hf_and_gguf_agree(tiny_model):
    pytest.importorskip("llama_cpp")
    _, text = _chat_text(tiny_model.hf_dir)
    result = compare_hf_and_gguf(tiny_model.hf_dir, tiny_model.gguf_path, text)
    assert result["tokens_equal"]
    assert result["n_tokens"] > 20
    assert result["max_abs_logit"] > 1.0  # logits are not trivially near zero
    assert result["max_abs_logit_diff"] < 1e-2
    assert result["max_abs_logit_diff_all"] < 2e-2
    assert result["argmax_agreement"] == 1.0


def test_f16_export_is_close(tiny_model, tmp_path):
    pytest.importorskip("llama_cpp")
    path = write_qwen2_gguf(tiny_model.hf_dir, tmp_path / "tiny-f16.gguf", outtype="f16")
    assert path.stat().st_size < tiny_model.gguf_path.stat().st_size
    _, text = _chat_text(tiny_model.hf_dir)
    result = compare_hf_and_gguf(tiny_model.hf_dir, path, text)
    assert result["tokens_equal"] and result["max_abs_logit_diff_all"] < 0.1


def test_export_detects_wrong_weights(tiny_model, tmp_path):
    """A GGUF from another seed must not pass the round-trip check (the check can fail)."""
    pytest.importorskip("llama_cpp")
    other = build_tiny_model(tmp_path / "other", seed=1)
    _, text = _chat_text(tiny_model.hf_dir)
    result = compare_hf_and_gguf(tiny_model.hf_dir, other.gguf_path, text)
    assert result["tokens_equal"]
    assert result["max_abs_logit_diff"] > 0.1


def test_export_rejects_other_architectures(tiny_model, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_model.hf_dir, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["model_type"] = "llama"
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="not qwen2"):
        write_qwen2_gguf(bad, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


@pytest.mark.slow
@pytest.mark.model
def test_real_qwen_hf_to_gguf_round_trip(qwen_gguf, tmp_path):
    """The real 0.5B: de-quantise the GGUF in transformers, save as HF, write f16 GGUF, compare."""
    pytest.importorskip("llama_cpp")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = {"gguf_file": qwen_gguf.name}
    tok = AutoTokenizer.from_pretrained(qwen_gguf.parent, **kw)
    model = AutoModelForCausalLM.from_pretrained(qwen_gguf.parent, dtype=torch.float32, **kw)
    model.hf_quantizer = None  # de-quantised weights are plain tensors; let save_pretrained write them
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp_path / "hf")
    tok.save_pretrained(tmp_path / "hf")
    del model
    gguf_path = write_qwen2_gguf(tmp_path / "hf", tmp_path / "rt-f16.gguf", outtype="f16")
    text = tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    result = compare_hf_and_gguf(tmp_path / "hf", gguf_path, text)
    assert result["tokens_equal"]
    assert result["max_abs_logit_diff"] < 0.1
    assert result["argmax_agreement"] >= 0.95
