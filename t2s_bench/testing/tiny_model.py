"""A tiny random-weight Qwen2 chat model, as an HF folder and as a GGUF file.

It has the real architecture, a byte-level BPE tokenizer with Qwen's pre-tokenizer regex and
chat special tokens, and a Qwen-style chat template, so every backend (transformers,
llama-cpp-python) and the trainer can run end to end in seconds without a real model.

`write_qwen2_gguf` converts any Qwen2 HF folder (the tiny model, or a merged fine-tune) to
GGUF; `compare_hf_and_gguf` checks that both files give the same tokens and logits.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# bump when the recipe changes: a cached folder with another version is rebuilt
TINY_MODEL_VERSION = "1"

# Qwen2's pre-tokenizer split (also llama.cpp's "qwen2" pre-tokenizer)
QWEN2_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# Qwen-style ChatML template (without the tool-calling branches)
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

TINY_CONFIG = dict(
    hidden_size=64,
    intermediate_size=160,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    rope_theta=10000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=False,
)
TINY_BPE_VOCAB = 700  # 256 byte symbols + merges; the 3 special tokens come on top


@dataclass(frozen=True)
class TinyModel:
    hf_dir: Path
    gguf_path: Path


def _corpus() -> list[str]:
    """Deterministic SQL/English text in the style of Spider prompts and answers."""
    tables = {
        "singer": ["singer_id", "name", "country", "age", "song_name"],
        "concert": ["concert_id", "concert_name", "stadium_id", "year"],
        "stadium": ["stadium_id", "location", "name", "capacity", "average"],
        "student": ["stu_id", "last_name", "first_name", "age", "major", "city_code"],
        "department": ["department_id", "name", "budget_in_billions", "num_employees"],
        "employee": ["employee_id", "name", "salary", "department_id", "hire_date"],
    }
    lines = [
        "You are a text-to-SQL assistant. Given the database schema, write one SQLite query "
        "that answers the question. Return only the SQL.",
        "Database schema:",
    ]
    for table, cols in tables.items():
        col_defs = ",\n  ".join(f"{c} {'INTEGER' if c.endswith('id') or c in ('age', 'year') else 'TEXT'}" for c in cols)
        lines.append(f"CREATE TABLE {table} (\n  {col_defs},\n  PRIMARY KEY ({cols[0]})\n);")
        for col in cols[1:]:
            lines += [
                f"SELECT {col} FROM {table}",
                f"SELECT count(*) FROM {table} WHERE {col} = 'value'",
                f"SELECT {cols[0]}, {col} FROM {table} ORDER BY {col} DESC LIMIT 3",
                f"SELECT avg({col}), max({col}), min({col}) FROM {table} GROUP BY {cols[0]}",
                f"What is the {col.replace('_', ' ')} of each {table}?",
                f"How many {table}s have a {col.replace('_', ' ')} greater than 10?",
                f"List the {col.replace('_', ' ')} of all {table}s sorted in descending order.",
            ]
    lines += [
        "SELECT T1.name FROM singer AS T1 JOIN concert AS T2 ON T1.singer_id = T2.concert_id",
        "SELECT name FROM stadium WHERE capacity > (SELECT avg(capacity) FROM stadium)",
        "SELECT country, count(*) FROM singer GROUP BY country HAVING count(*) > 1",
        "SELECT DISTINCT major FROM student EXCEPT SELECT major FROM student WHERE age < 20",
        "SELECT name FROM employee WHERE salary BETWEEN 1000 AND 5000 INTERSECT SELECT name FROM employee",
        "Show the names of the departments with more than 100 employees, and the budget.",
        "Which year had the most concerts? Find the name and location of the stadium.",
        "The quick brown fox jumps over the lazy dog. 0123456789 !?.,;:()[]{}<>=+-*/'\"",
    ]
    return lines


def build_tokenizer():
    """A byte-level BPE tokenizer trained on the corpus, with Qwen's specials and chat template."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False, trim_offsets=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_BPE_VOCAB,
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    tok.add_special_tokens(SPECIAL_TOKENS)  # appended after the BPE vocabulary, as in Qwen
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
        model_max_length=TINY_CONFIG["max_position_embeddings"],
        padding_side="left",
    )


def _build_model(vocab_size: int, tokenizer, seed: int):
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=vocab_size,
        bos_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=0.1,  # larger than usual so logits are not all near zero
        **TINY_CONFIG,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config).float()
        # random biases and norm scales too, so a converter that drops or swaps them is caught
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("bias"):
                    p.normal_(0.0, 0.1)
                elif "norm" in name:
                    p.copy_(1.0 + 0.1 * torch.randn_like(p))
    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.eos_token_id, tokenizer.pad_token_id],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    return model


def build_tiny_model(directory: str | Path, *, seed: int = 0, gguf_outtype: str = "f32") -> TinyModel:
    """Build (or reuse) the tiny model under `directory`: `hf/` (HF folder) and `tiny-qwen2.gguf`."""
    directory = Path(directory)
    hf_dir = directory / "hf"
    gguf_path = directory / "tiny-qwen2.gguf"
    stamp = directory / "tiny_model.json"
    wanted = {"version": TINY_MODEL_VERSION, "seed": seed, "gguf_outtype": gguf_outtype}
    if stamp.is_file() and gguf_path.is_file() and (hf_dir / "config.json").is_file():
        if json.loads(stamp.read_text()) == wanted:
            return TinyModel(hf_dir, gguf_path)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    model = _build_model(len(tokenizer), tokenizer, seed)
    model.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    write_qwen2_gguf(hf_dir, gguf_path, outtype=gguf_outtype, name="t2s-bench tiny qwen2 (random weights)")
    stamp.write_text(json.dumps(wanted))
    return TinyModel(hf_dir, gguf_path)


# ---------------------------------------------------------------- HF -> GGUF


def _load_state_dict(hf_dir: Path) -> dict:
    from safetensors.torch import load_file

    index = hf_dir / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file() else ["model.safetensors"]
    state: dict = {}
    for f in files:
        state.update(load_file(str(hf_dir / f)))
    return state


def _gguf_tensor_name(hf_name: str) -> str | None:
    fixed = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    if hf_name in fixed:
        return fixed[hf_name]
    parts = hf_name.split(".")
    if parts[:2] != ["model", "layers"]:
        return None
    layer, rest = parts[2], ".".join(parts[3:])
    per_layer = {
        "input_layernorm.weight": "attn_norm.weight",
        "post_attention_layernorm.weight": "ffn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight",
        "self_attn.q_proj.bias": "attn_q.bias",
        "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.k_proj.bias": "attn_k.bias",
        "self_attn.v_proj.weight": "attn_v.weight",
        "self_attn.v_proj.bias": "attn_v.bias",
        "self_attn.o_proj.weight": "attn_output.weight",
        "mlp.gate_proj.weight": "ffn_gate.weight",
        "mlp.up_proj.weight": "ffn_up.weight",
        "mlp.down_proj.weight": "ffn_down.weight",
    }
    return f"blk.{layer}.{per_layer[rest]}" if rest in per_layer else None


def _vocab_for_gguf(hf_dir: Path, n_vocab: int):
    """Tokens (byte-level strings), token types and merges in id order, padded to `n_vocab`."""
    import gguf

    spec = json.loads((hf_dir / "tokenizer.json").read_text(encoding="utf-8"))
    if spec["model"]["type"] != "BPE":
        raise ValueError(f"{hf_dir}: only byte-level BPE tokenizers are supported, got {spec['model']['type']}")
    id_to_token: dict[int, str] = {i: t for t, i in spec["model"]["vocab"].items()}
    specials = set()
    for added in spec.get("added_tokens", []):
        id_to_token[added["id"]] = added["content"]
        if added.get("special"):
            specials.add(added["id"])
    if max(id_to_token) >= n_vocab:
        raise ValueError(f"{hf_dir}: tokenizer has ids up to {max(id_to_token)} but the model has {n_vocab} rows")
    added_ids = {a["id"] for a in spec.get("added_tokens", [])}
    tokens, types = [], []
    for i in range(n_vocab):
        if i not in id_to_token:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(id_to_token[i])
            if i in specials:
                types.append(gguf.TokenType.CONTROL)
            elif i in added_ids:
                types.append(gguf.TokenType.USER_DEFINED)
            else:
                types.append(gguf.TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"].get("merges", [])]
    return tokens, types, merges


def write_qwen2_gguf(hf_dir: str | Path, gguf_path: str | Path, *, outtype: str = "f16", name: str | None = None) -> Path:
    """Write a Qwen2 HF folder (safetensors + tokenizer.json) as a GGUF file llama.cpp loads.

    `outtype`: "f32" (exact) or "f16" (matrices in f16, norms and biases in f32).
    Written to a temporary name and renamed when complete.
    """
    import gguf
    import numpy as np
    from transformers import AutoTokenizer

    hf_dir, gguf_path = Path(hf_dir), Path(gguf_path)
    if outtype not in ("f32", "f16"):
        raise ValueError(f"outtype must be 'f32' or 'f16', got {outtype!r}")
    cfg = json.loads((hf_dir / "config.json").read_text())
    if cfg.get("model_type") != "qwen2":
        raise ValueError(f"{hf_dir}: model_type {cfg.get('model_type')!r} is not qwen2")
    if cfg.get("quantization_config"):
        raise ValueError(f"{hf_dir}: quantized checkpoint; de-quantize/merge to plain weights first")
    state = _load_state_dict(hf_dir)
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)

    n_vocab = int(cfg["vocab_size"])
    tokens, types, merges = _vocab_for_gguf(hf_dir, n_vocab)
    tmp = gguf_path.with_name(gguf_path.name + ".partial")
    gguf_path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(tmp), "qwen2")
    writer.add_name(name or hf_dir.name)
    writer.add_context_length(int(cfg["max_position_embeddings"]))
    writer.add_embedding_length(int(cfg["hidden_size"]))
    writer.add_block_count(int(cfg["num_hidden_layers"]))
    writer.add_feed_forward_length(int(cfg["intermediate_size"]))
    writer.add_head_count(int(cfg["num_attention_heads"]))
    writer.add_head_count_kv(int(cfg.get("num_key_value_heads") or cfg["num_attention_heads"]))
    rope_theta = cfg.get("rope_theta") or (cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0)
    writer.add_rope_freq_base(float(rope_theta))
    writer.add_layer_norm_rms_eps(float(cfg["rms_norm_eps"]))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if outtype == "f32" else gguf.LlamaFileType.MOSTLY_F16)

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    writer.add_bos_token_id(tokenizer.bos_token_id if tokenizer.bos_token_id is not None else pad)
    writer.add_eos_token_id(eos)
    writer.add_pad_token_id(pad)
    writer.add_add_bos_token(False)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)

    for hf_name, tensor in state.items():
        gguf_name = _gguf_tensor_name(hf_name)
        if gguf_name is None:
            if "rotary_emb" in hf_name:
                continue
            raise ValueError(f"{hf_dir}: no GGUF name for tensor {hf_name}")
        data = tensor.float().numpy()
        if outtype == "f16" and data.ndim == 2:
            data = data.astype(np.float16)
        writer.add_tensor(gguf_name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(gguf_path)
    return gguf_path


# ---------------------------------------------------------------- round trip check


def hf_logits(model, ids: list[int]):
    """Next-token logits (positions × vocabulary, float32 numpy) of a transformers model or folder."""
    import torch
    from transformers import AutoModelForCausalLM

    if not hasattr(model, "forward"):
        model = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


def gguf_logits(gguf_path: str | Path, ids: list[int], *, n_threads: int = 2, lora_path: str | Path | None = None):
    """Next-token logits of a GGUF file (with a GGUF LoRA applied, if given) in llama-cpp-python."""
    import numpy as np

    from t2s_bench.backends.llama_cpp import load_llama

    llm = load_llama(gguf_path, n_ctx=max(64, len(ids) + 8), n_batch=max(64, len(ids) + 8), n_threads=n_threads,
                     logits_all=True, lora_path=str(lora_path) if lora_path else None, verbose=False)
    try:
        llm.reset()
        llm.eval(ids)
        return np.asarray(llm.scores[: len(ids)], dtype=np.float32)
    finally:
        llm.close()


def compare_hf_and_gguf(hf_dir: str | Path, gguf_path: str | Path, text: str, *, n_threads: int = 2) -> dict:
    """Tokenize `text` (special tokens allowed) with both files and compare logits.

    Returns `tokens_equal`, `n_tokens`, `max_abs_logit_diff` (first position),
    `max_abs_logit_diff_all` (every position), `max_abs_logit` (the HF logits' scale) and
    `argmax_agreement` (share of positions where both pick the same next token).
    Logits are compared on the HF token ids, so a tokenizer mismatch does not hide a weight one.
    """
    import numpy as np
    from transformers import AutoTokenizer

    from t2s_bench.backends.llama_cpp import load_llama

    hf_ids = AutoTokenizer.from_pretrained(hf_dir)(text, add_special_tokens=False)["input_ids"]
    if not hf_ids:
        raise ValueError("text tokenizes to nothing")
    hf = hf_logits(hf_dir, hf_ids)
    gg = gguf_logits(gguf_path, hf_ids, n_threads=n_threads)
    llm = load_llama(gguf_path, n_ctx=64, n_threads=n_threads, vocab_only=True, verbose=False)
    try:
        gg_ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    finally:
        llm.close()
    n = min(hf.shape[1], gg.shape[1])
    diff = np.abs(hf[:, :n] - gg[:, :n])
    return {
        "tokens_equal": list(gg_ids) == list(hf_ids),
        "n_tokens": len(hf_ids),
        "max_abs_logit_diff": float(diff[0].max()),
        "max_abs_logit_diff_all": float(diff.max()),
        "max_abs_logit": float(np.abs(hf).max()),
        "argmax_agreement": float((hf[:, :n].argmax(1) == gg[:, :n].argmax(1)).mean()),
    }
