"""Loading the base model and tokenizer for training and export: HF folders, hub ids or GGUF files.

A GGUF base (`--base model.gguf`) is de-quantized by transformers (`gguf_file=`); such a model
still carries GGUF's `quantization_config`, which `save_pretrained` refuses, so `plain_config`
drops it before anything is saved.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from t2s_bench.files import file_sha256

log = logging.getLogger(__name__)


def resolve_base(base: str, gguf_file: str | None = None) -> tuple[str, str | None]:
    """(folder or hub id, GGUF file name or None). `base` may be a path to a .gguf file or a
    catalog name (`t2s-bench models list`), fetched on first use."""
    from t2s_bench.backends.catalog import CATALOG, resolve_model

    if base in CATALOG:
        base = str(resolve_model(base))
    path = Path(base)
    if gguf_file is None and path.suffix == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"base model {base}: no such GGUF file")
        return str(path.parent), path.name
    return base, gguf_file


def load_tokenizer(base: str, gguf_file: str | None = None):
    from transformers import AutoTokenizer

    where, gguf = resolve_base(base, gguf_file)
    kwargs = {"gguf_file": gguf} if gguf else {}
    tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise ValueError(f"{base}: the tokenizer has no chat template; training renders prompts as chat messages")
    return tokenizer


def plain_config(model) -> None:
    """Forget that weights came from a GGUF file so the model saves as an ordinary HF checkpoint."""
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    for attr in ("hf_quantizer", "quantization_method"):
        if getattr(model, attr, None) is not None:
            setattr(model, attr, None)
    if getattr(model, "is_quantized", False):
        model.is_quantized = False


def load_model(base: str, gguf_file: str | None = None, *, dtype=None, quantization_config=None, device=None,
               attn_implementation: str | None = None):
    import torch
    from transformers import AutoModelForCausalLM

    where, gguf = resolve_base(base, gguf_file)
    kwargs = {"dtype": dtype or torch.float32}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if gguf:
        kwargs["gguf_file"] = gguf
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
        kwargs["device_map"] = {"": device or 0}
    model = AutoModelForCausalLM.from_pretrained(where, **kwargs)
    if gguf:
        plain_config(model)
    if quantization_config is None and device is not None:
        model.to(device)
    return model


def materialize_hf(base: str, gguf_file: str | None, dest: str | Path, *, dtype=None) -> Path:
    """Write a GGUF base as a plain HF folder (needed to re-quantize it for QLoRA); reused if present."""
    dest = Path(dest)
    if (dest / "config.json").is_file():
        return dest
    model = load_model(base, gguf_file, dtype=dtype)
    tokenizer = load_tokenizer(base, gguf_file)
    tmp = dest.with_name(dest.name + ".partial")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(dest)
    return dest


def materialized_base(base: str, gguf_file: str | None, cache_root: str | Path) -> str:
    """`base` itself, or for a GGUF base a plain bf16 HF folder made from it once (keyed by the file's
    sha256) under `cache_root`: later loads take seconds instead of a de-quantization, QLoRA can
    re-quantize it, and evaluation of the adapter loads the same weights."""
    import torch

    where, gguf = resolve_base(base, gguf_file)
    if not gguf:
        return base
    path = Path(where) / gguf
    dest = Path(cache_root) / f"{path.stem}-{file_sha256(path)[:16]}"
    return str(materialize_hf(str(path), None, dest, dtype=torch.bfloat16))


def base_fingerprint(base: str, gguf_file: str | None = None) -> dict:
    """Identity of the base model for train_config.json: path or id, and a content sha256 when local."""
    where, gguf = resolve_base(base, gguf_file)
    out = {"base": base, "gguf_file": gguf}
    path = Path(where)
    files = [path / gguf] if gguf else sorted(path.glob("*.safetensors")) + sorted(path.glob("config.json"))
    files = [f for f in files if f.is_file()]
    if files:
        h = hashlib.sha256()
        for f in files:  # a digest of the files' digests
            h.update(file_sha256(f).encode())
        out["sha256"] = h.hexdigest()
        out["files"] = [f.name for f in files]
    cfg = path / "config.json"
    if cfg.is_file():
        out["model_type"] = json.loads(cfg.read_text()).get("model_type")
    return out
