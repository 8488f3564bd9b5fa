"""Export a trained adapter: merge into the base model, write GGUF, check the round trip.

- `merge_adapter`: base + LoRA -> a plain HF folder (float16 or float32). A GGUF-loaded base is
  de-quantized first and its GGUF `quantization_config` dropped, or `save_pretrained` refuses it.
- `export_gguf`: the merged folder -> GGUF `f32`, `f16`, or `q8_0` (Q8_0 with the `gguf` package's
  own quantizer, `gguf.quants.quantize`). Q4_K_M and other k-quants need llama.cpp's
  `llama-quantize` tool: `llama-quantize merged-f16.gguf out-q4_k_m.gguf Q4_K_M`.
- `verify_gguf`: the same text through transformers and llama-cpp-python: same tokens, near logits.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

GGUF_TYPES = ("f32", "f16", "q8_0", "q4_k_m", "q5_k_m", "q6_k")
# quantised types written by llama.cpp's own quantizer (through llama-cpp-python's C API)
LLAMA_CPP_FTYPES = {"q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
                    "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M", "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K"}
KEPT_WARNING = 0.25  # warn when a GGUF keeps less than this share of the fine-tuning (see fine_tuning_kept)
PROMPT_FIELDS = ("template", "schema_formats", "schema_options")  # what a trained model's prompt depends on
VERIFY_TEXT = "<|im_start|>user\nHow many singers are there?<|im_end|>\n<|im_start|>assistant\nSELECT count(*) FROM singer"


def _base_of(adapter_dir: Path) -> tuple[str, str | None]:
    """The base model an adapter was trained on: train_config.json, else adapter_config.json."""
    info = adapter_dir / "train_config.json"
    if info.is_file():
        cfg = json.loads(info.read_text())["config"]
        return cfg["base"], cfg.get("gguf_file")
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    return cfg["base_model_name_or_path"], None


def _training_prompt(adapter_dir: Path) -> dict:
    """The prompt settings the adapter was trained with, kept beside the GGUF so that
    `t2s-bench run --system finetuned --model X.gguf` tests it with the same prompt."""
    info = adapter_dir / "train_config.json"
    if not info.is_file():
        return {}
    cfg = json.loads(info.read_text())["config"]
    return {k: cfg[k] for k in PROMPT_FIELDS if k in cfg}


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path, *, dtype: str = "float16",
                  base: str | None = None, gguf_file: str | None = None) -> Path:
    """Merge a LoRA adapter into its base model and save a plain HF folder (weights + tokenizer)."""
    import torch
    from peft import PeftModel

    from t2s_bench.training.models import load_model, load_tokenizer, plain_config

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter_dir}: not a PEFT adapter folder (no adapter_config.json)")
    if base is None:
        base, gguf_file = _base_of(adapter_dir)
    torch_dtype = {"float16": torch.float16, "float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    model = load_model(base, gguf_file, dtype=torch.float32)  # merge in float32, cast after
    model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    plain_config(model)
    model = model.to(torch_dtype)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    load_tokenizer(base, gguf_file).save_pretrained(tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


def quantize_gguf(src: str | Path, dst: str | Path, qtype: str = "q8_0") -> Path:
    """Re-write a float GGUF with its 2-D weight matrices in `qtype` (q8_0); metadata copied unchanged."""
    import gguf
    import numpy as np

    target = {"q8_0": gguf.GGMLQuantizationType.Q8_0}.get(qtype)
    if target is None:
        raise ValueError(f"quantize_gguf supports q8_0; for {qtype} use llama.cpp's llama-quantize tool")
    reader = gguf.GGUFReader(str(src))
    arch = reader.fields["general.architecture"].contents()
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".partial")
    writer = gguf.GGUFWriter(str(tmp), arch)
    for name, fld in reader.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "general.file_type"):
            continue
        vtype = fld.types[0]
        sub = fld.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, fld.contents(), vtype, sub_type=sub)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    block = gguf.GGML_QUANT_SIZES[target][0]
    for t in reader.tensors:
        data = np.asarray(t.data)
        if t.tensor_type == gguf.GGMLQuantizationType.F16:
            data = data.astype(np.float32)
        elif t.tensor_type != gguf.GGMLQuantizationType.F32:
            raise ValueError(f"{src}: tensor {t.name} is already quantized ({t.tensor_type.name})")
        shape = [int(x) for x in reversed(t.shape)]  # GGUF lists dims fastest-first
        data = data.reshape(shape)
        if data.ndim == 2 and shape[-1] % block == 0:
            writer.add_tensor(t.name, gguf.quants.quantize(data, target), raw_dtype=target)
        else:  # norms, biases: kept in float32, as llama.cpp does
            writer.add_tensor(t.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(dst)
    return dst


def quantize_with_llama_cpp(src: str | Path, dst: str | Path, qtype: str = "q4_k_m", threads: int = 0) -> Path:
    """Quantise a float GGUF with llama.cpp's own quantizer (the `llama-quantize` code path)."""
    import ctypes

    import llama_cpp

    if qtype not in LLAMA_CPP_FTYPES:
        raise ValueError(f"llama.cpp quantisation supports {sorted(LLAMA_CPP_FTYPES)}, not {qtype!r}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, LLAMA_CPP_FTYPES[qtype])
    params.nthread = threads
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".partial")
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params))
    if rc != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"llama.cpp quantisation of {src} to {qtype} failed (code {rc})")
    tmp.replace(dst)
    return dst


def export_gguf(merged_dir: str | Path, out_path: str | Path, *, quant: str = "f16") -> Path:
    """A merged Qwen2 HF folder -> GGUF: f32/f16 written directly; q8_0, q4_k_m, q5_k_m, q6_k quantised
    from the f16 file by llama.cpp's quantizer (q8_0 falls back to the gguf package without llama-cpp-python)."""
    from t2s_bench.testing.tiny_model import write_qwen2_gguf

    if quant not in GGUF_TYPES:
        raise ValueError(f"quant must be one of {GGUF_TYPES}")
    out_path = Path(out_path)
    if quant in ("f32", "f16"):
        return write_qwen2_gguf(merged_dir, out_path, outtype=quant)
    f16 = out_path.with_name(out_path.stem + ".f16.gguf")
    write_qwen2_gguf(merged_dir, f16, outtype="f16")
    try:
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            if quant != "q8_0":
                raise ValueError(f"{quant} needs llama-cpp-python (pip install 't2s-bench[gguf]')") from None
            return quantize_gguf(f16, out_path, quant)
        return quantize_with_llama_cpp(f16, out_path, quant)
    finally:
        f16.unlink(missing_ok=True)


def verify_gguf(merged_dir: str | Path, gguf_path: str | Path, text: str = VERIFY_TEXT) -> dict:
    """Round trip: same tokens and near-identical logits in transformers and llama-cpp-python."""
    from t2s_bench.testing.tiny_model import compare_hf_and_gguf

    return compare_hf_and_gguf(merged_dir, gguf_path, text)


def export_lora_gguf(adapter_dir: str | Path, out_path: str | Path) -> Path:
    """A PEFT LoRA adapter of a Qwen2 model -> a GGUF LoRA adapter (f16) for llama.cpp's runtime adapters.

    The base GGUF stays as it is and llama.cpp adds B·A·alpha/r at run time, so nothing is re-rounded:
    the model runs exactly as trained on the de-quantised base. Written with the gguf package
    (llama.cpp's own converter, convert_lora_to_gguf.py, is a repository script, not on PyPI)."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    from t2s_bench.testing.tiny_model import _gguf_tensor_name

    adapter_dir, out_path = Path(adapter_dir), Path(out_path)
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    if cfg.get("peft_type", "LORA") != "LORA" or cfg.get("use_dora") or cfg.get("use_rslora"):
        raise ValueError(f"{adapter_dir}: only plain LoRA adapters convert to a GGUF LoRA (no DoRA, no rsLoRA)")
    if cfg.get("rank_pattern") or cfg.get("alpha_pattern"):
        raise ValueError(f"{adapter_dir}: per-module ranks or alphas do not fit GGUF's single adapter alpha")
    tensors = {}
    for name, value in load_file(str(adapter_dir / "adapter_model.safetensors")).items():
        # base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight -> blk.0.attn_q.weight.lora_a
        module, _, kind = name.removeprefix("base_model.model.").rpartition(".lora_")
        target = _gguf_tensor_name(module + ".weight")
        if target is None or kind not in ("A.weight", "B.weight"):
            raise ValueError(f"{adapter_dir}: no GGUF name for adapter tensor {name}")
        tensors[f"{target}.lora_{kind[0].lower()}"] = value.astype(np.float16)
    tmp = out_path.with_name(out_path.name + ".partial")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(tmp), "qwen2")
    writer.add_string(gguf.Keys.General.TYPE, gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(cfg["lora_alpha"]))
    for name, value in sorted(tensors.items()):
        writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out_path)
    (out_path.with_name(out_path.stem + ".export.json")).write_text(json.dumps(
        {"adapter": str(adapter_dir), "lora_gguf": str(out_path), "gguf_bytes": out_path.stat().st_size,
         "prompt": _training_prompt(adapter_dir)}, indent=1))
    return out_path


def fine_tuning_kept(merged_dir: str | Path, gguf_path: str | Path, base: str, gguf_file: str | None = None,
                     text: str = VERIFY_TEXT, lora_path: str | Path | None = None) -> dict:
    """How much of what fine-tuning changed survives in the GGUF, on `text`.

    Quantising a merged adapter re-rounds every weight, and a LoRA change smaller than a 4-bit step is
    rounded away (measured: Qwen2.5-Coder-1.5B at Q4_K_M kept too little of it and lost 10 points of
    EX). Compares next-token distributions: `kl_base` = mean KL(merged ‖ base model), what fine-tuning
    moved; `kl_gguf` = mean KL(merged ‖ GGUF), what the export lost; `kept` = 1 − kl_gguf / kl_base
    (1: all kept; 0 or less: the GGUF is as far from the fine-tuned model as the base model is).
    llama.cpp's k-quant kernels differ from transformers by themselves (1.5B: KL 0.215 against 0.370 moved by
    fine-tuning), so a 4-bit GGUF that keeps the whole adapter reads about 40% (README, session 6).
    `lora_path`: a GGUF LoRA applied to `gguf_path` at run time (`export_lora_gguf`)."""
    import numpy as np
    import torch
    from transformers import AutoTokenizer

    from t2s_bench.testing.tiny_model import gguf_logits, hf_logits
    from t2s_bench.training.models import load_model

    ids = AutoTokenizer.from_pretrained(merged_dir)(text, add_special_tokens=False)["input_ids"]

    def log_softmax(x):
        x = x - x.max(axis=1, keepdims=True)
        return x - np.log(np.exp(x).sum(axis=1, keepdims=True))

    merged = log_softmax(hf_logits(merged_dir, ids))
    n = merged.shape[1]
    base_lp = log_softmax(hf_logits(load_model(base, gguf_file, dtype=torch.float32), ids)[:, :n])
    gguf_lp = log_softmax(gguf_logits(gguf_path, ids, lora_path=lora_path)[:, :n])

    def kl(q):
        return float((np.exp(merged) * (merged - q)).sum(axis=1).mean())

    kl_base, kl_gguf = kl(base_lp), kl(gguf_lp)
    return {"kl_base": kl_base, "kl_gguf": kl_gguf, "kept": 1.0 - kl_gguf / kl_base if kl_base > 0 else None}


def export_adapter(adapter_dir: str | Path, out_path: str | Path, *, quant: str = "f16", keep_merged: bool = True,
                   verify: bool = True, base: str | None = None, gguf_file: str | None = None) -> dict:
    """Adapter folder -> merged HF folder (beside the GGUF) -> GGUF -> round-trip check; returns a summary."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    merged = merge_adapter(adapter_dir, out_path.with_name(out_path.stem + "-merged-hf"),
                           dtype="float32" if quant == "f32" else "float16", base=base, gguf_file=gguf_file)
    export_gguf(merged, out_path, quant=quant)
    summary = {"adapter": str(adapter_dir), "merged_hf": str(merged), "gguf": str(out_path), "quant": quant,
               "gguf_bytes": out_path.stat().st_size, "prompt": _training_prompt(Path(adapter_dir))}
    if verify:
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            summary["verify"] = "skipped: llama-cpp-python is not installed (pip install 't2s-bench[gguf]')"
        else:
            summary["verify"] = verify_gguf(merged, out_path)
            if base is None:
                base, gguf_file = _base_of(Path(adapter_dir))
            summary["fine_tuning_kept"] = kept = fine_tuning_kept(merged, out_path, base, gguf_file)
            if kept["kept"] is not None and kept["kept"] < KEPT_WARNING:
                log.warning("export: the %s GGUF keeps %.0f%% of what fine-tuning changed (KL to the fine-tuned "
                            "model %.3g against %.3g for the base model): quantisation rounded the adapter away; "
                            "export the adapter alone (--lora-gguf) or --quant q8_0, and score the GGUF before using it",
                            quant, 100 * kept["kept"], kept["kl_gguf"], kept["kl_base"])
    if not keep_merged:
        shutil.rmtree(merged, ignore_errors=True)
        summary["merged_hf"] = None
    (out_path.with_name(out_path.stem + ".export.json")).write_text(json.dumps(summary, indent=1))
    return summary
