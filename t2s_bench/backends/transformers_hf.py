"""Hugging Face transformers models: batched generation of many prompts, greedy or sampled.

`model` is a catalog name, an HF folder, a `.gguf` file (de-quantised on load; needs `gguf`),
or a hub id. `adapter` adds a PEFT (LoRA) adapter. Requests are grouped by (max_tokens, stop); a
request with n answers becomes n rows; rows are sorted by prompt length and generated `batch_size`
at a time by the `generation` strategy (see `hf_generation`: padded, static, compact, continuous); a CUDA
out-of-memory error halves the batch and retries. A beam-search request (`num_beams=B`) is one row
decoded by `hf_generation.generate_beams`, `batch_size // B` prompts at a time (B beams each).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from pathlib import Path

from t2s_bench.backends.base import (
    Backend,
    Generation,
    GenerationRequest,
    register_backend,
    sample_seed,
    truncate_at_stop,
    with_samples,
)
from t2s_bench.backends.catalog import CATALOG, adapter_sha256, file_fingerprint, resolve_model
from t2s_bench.backends.hf_generation import STRATEGIES, GenerateSettings, Row, RowOutput

log = logging.getLogger(__name__)

DEFAULT_MODEL = "qwen2.5-coder-0.5b"
# `generation="auto"`: the strategy on a GPU (from benchmarks/bench_generation.py) and elsewhere
AUTO_STRATEGY = {"cuda": "static", "cpu": "padded"}
# continuous batching settings (ContinuousBatchingConfig fields) unless `continuous_options` says otherwise:
# 64-token blocks so a ~300-token prompt shares its system prompt + schema blocks with its database's
# other questions (the default 256-token block shares nothing); CUDA graphs on, without the async
# double buffering that ran out of memory with them on the H200 (../shared/GPU.md)
CONTINUOUS_DEFAULTS = {"block_size": 64, "allow_block_sharing": True, "use_cuda_graph": True, "use_async_batching": False}


def _locate(model: str | Path, gguf_file: str | None) -> tuple[str, str | None, Path | None]:
    """(what to pass to from_pretrained, gguf_file, local path or None for a hub id)."""
    name = str(model)
    path = resolve_model(name) if name in CATALOG else Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), path.name, path
    if path.is_dir():
        if gguf_file and not (path / gguf_file).is_file():
            raise FileNotFoundError(f"{path / gguf_file} does not exist")
        return str(path), gguf_file, (path / gguf_file if gguf_file else path)
    if path.exists():
        raise ValueError(f"{path}: expected an HF model folder or a .gguf file")
    if name.startswith((".", "/", "~")) or name.endswith(".gguf"):
        raise FileNotFoundError(f"model path {name} does not exist")
    return name, gguf_file, None  # a hub id


def _gguf_chat_template(path: Path) -> str | None:
    import gguf

    field = gguf.GGUFReader(str(path)).fields.get("tokenizer.chat_template")
    return field.contents() if field is not None else None


@register_backend("transformers")
class TransformersBackend(Backend):
    supports_beam_search = True

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        *,
        gguf_file: str | None = None,
        adapter: str | Path | None = None,
        merge_adapter: bool = True,
        dtype: str = "auto",
        device: str | None = None,
        batch_size: int = 8,
        max_context: int | None = None,
        attn_implementation: str | None = None,
        generation: str = "auto",
        compile: bool = True,
        seed: int = 0,
        continuous_options: dict | None = None,
        defer_stop_check: bool = True,
        compact_every: int = 8,
        prefill_rows: int = 256,
        grouped_attention: bool = False,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_id = str(model)
        source, self.gguf_file, self.local_path = _locate(model, gguf_file)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype == "auto":
            dtype = "bfloat16" if self.device.startswith("cuda") else "float32"
        self.dtype = dtype
        self.batch_size = batch_size
        # a strategy chosen by "auto" falls back to padded if it fails (e.g. a compile error); one asked for does not
        self._may_fall_back = generation == "auto"
        if generation == "auto":
            generation = AUTO_STRATEGY.get(self.device.split(":")[0], "padded")
        if generation not in STRATEGIES:
            raise ValueError(f"unknown generation strategy {generation!r}; choose from auto, {', '.join(STRATEGIES)}")
        self.generation = generation
        self.compile = compile
        self.defer_stop_check = defer_stop_check  # static: no host sync per decoding step
        self.compact_every = compact_every  # compact: drop finished rows every this many steps
        self.prefill_rows = prefill_rows  # compact: distinct prompts prefilled together
        # padded/static: one-token steps attend per key/value head (hf_attention; compact always does)
        self.grouped_attention = grouped_attention
        self.seed = seed  # of sampled requests that carry no seed
        self.continuous_options = {**CONTINUOUS_DEFAULTS, **(continuous_options or {})}
        extra = {"gguf_file": self.gguf_file} if self.gguf_file else {}
        if attn_implementation:
            extra["attn_implementation"] = attn_implementation
        t0 = time.perf_counter()
        self.tokenizer = AutoTokenizer.from_pretrained(source, **({"gguf_file": self.gguf_file} if self.gguf_file else {}))
        self.model = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, dtype), **extra)
        if self.gguf_file and not self.tokenizer.chat_template:
            self.tokenizer.chat_template = _gguf_chat_template(Path(source) / self.gguf_file)
        if not self.tokenizer.chat_template:
            raise ValueError(f"{self.model_id}: the tokenizer has no chat template")
        self.adapter = Path(adapter) if adapter else None
        if self.adapter:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, str(self.adapter))
            if merge_adapter:
                self.model = self.model.merge_and_unload()
        self.model.to(self.device).eval()
        log.info("loaded %s on %s (%s) in %.1fs", self.model_id, self.device, dtype, time.perf_counter() - t0)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.context_window = max_context or int(getattr(self.model.config, "max_position_embeddings", 2048))
        self._stop_ids = self._end_token_ids()

    def _end_token_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        ids = [ids] if isinstance(ids, int) else list(ids or [])
        for tok in (self.tokenizer.eos_token_id, self.tokenizer.convert_tokens_to_ids("<|im_end|>")):
            if isinstance(tok, int) and tok >= 0 and tok != self.tokenizer.unk_token_id and tok not in ids:
                ids.append(tok)
        return ids

    # -------------------------------------------------------------- prompt

    def render(self, messages: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _encode(self, messages: list[dict[str, str]]) -> list[int]:
        return self.tokenizer(self.render(messages), add_special_tokens=False)["input_ids"]

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        return len(self._encode(messages))

    # -------------------------------------------------------------- generation

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)
        encoded = [self._encode(r.messages) for r in requests]
        # rows (one per answer; one per beam-search request) grouped by (max_tokens, stop, num_beams):
        # (request, answer k, row)
        groups: dict[tuple, list[tuple[int, int, Row]]] = {}
        for i, r in enumerate(requests):
            if len(encoded[i]) >= self.context_window:
                results[i] = Generation("", len(encoded[i]), 0, 0.0, None,
                                        f"prompt of {len(encoded[i])} tokens does not fit the context window of {self.context_window}")
                continue
            seed = self.seed if r.seed is None else r.seed
            rows = groups.setdefault((r.max_tokens, tuple(r.stop or ()), r.num_beams), [])
            for k in range(r.n):
                rows.append((i, k, Row(encoded[i], r.temperature, r.top_p, sample_seed(seed, k) if r.sampled else 0)))
        answers: dict[int, list[Generation | None]] = {i: [None] * r.n for i, r in enumerate(requests) if results[i] is None}
        for (max_tokens, stop, beams), rows in groups.items():
            rows.sort(key=lambda row: -len(row[2].tokens))  # similar lengths together: little padding
            batch = [row for _, _, row in rows]
            for (i, k, _), gen in zip(rows, self._generate_rows(batch, max_tokens, list(stop), beams)):
                answers[i][k] = gen
        for i, gens in answers.items():
            results[i] = gens[0] if len(gens) == 1 else with_samples(gens)  # type: ignore[arg-type]
        return results  # type: ignore[return-value]

    def _generate_rows(self, rows: list[Row], max_tokens: int, stop: list[str], num_beams: int = 1) -> list[Generation]:
        """Generations of rows sorted by prompt length, `batch_size` rows at a time (continuous: all at
        once; beam search: `batch_size // num_beams` rows, each Generation holding its beams); a CUDA
        out-of-memory error halves the batch and retries."""
        from t2s_bench.backends import hf_generation as hg

        size = len(rows) if self.generation == "continuous" else self.batch_size
        if num_beams > 1:  # batch_size decoding rows: batch_size // num_beams prompts
            size = max(1, self.batch_size // num_beams)
        elif self.generation == "static":  # equal batches: one shape, one CUDA graph per call
            size = math.ceil(len(rows) / math.ceil(len(rows) / size))
        out: list[Generation] = []
        while len(out) < len(rows):
            batch = rows[len(out) : len(out) + size]
            width = max(len(r.tokens) for r in batch)
            max_new = min(max_tokens, self.context_window - width)
            start = time.perf_counter()
            try:
                if num_beams > 1:
                    beams = hg.generate_beams(self.model, batch, num_beams, max_new, stop, self._settings)
                elif self.generation == "continuous":
                    done = hg.generate_continuous(self.model, batch, max_new, stop, self._settings)
                elif self.generation == "compact":
                    done = hg.generate_compact(self.model, batch, max_new, stop, self._settings)
                else:
                    done = hg.generate_padded(self.model, batch, max_new, stop, self._settings,
                                              static=self.generation == "static")
            except Exception as e:  # CUDA OOM: halve the batch and retry
                if "out of memory" not in str(e).lower() or size == 1:
                    if num_beams > 1 or not self._may_fall_back or self.generation == "padded":
                        raise
                    log.exception("generation strategy %s failed; falling back to padded", self.generation)
                    self.generation, size = "padded", self.batch_size
                    continue
                import torch

                torch.cuda.empty_cache()
                size = max(1, size // 2)
                log.warning("out of memory at batch %d; retrying with %d", len(batch), size)
                continue
            share = (time.perf_counter() - start) / len(batch)  # the batch's wall time, shared out
            if num_beams > 1:
                out.extend(with_samples([self._to_generation(row, beam, max_new, stop, share / num_beams) for beam in mine])
                           for row, mine in zip(batch, beams))
                continue
            out.extend(self._to_generation(row, result, max_new, stop, share) for row, result in zip(batch, done))
        return out

    def _to_generation(self, row: Row, result: RowOutput, max_new: int, stop: list[str], latency: float) -> Generation:
        ended = bool(result.tokens) and result.tokens[-1] in self._stop_ids
        tokens = result.tokens[:-1] if ended else result.tokens
        text, stopped = truncate_at_stop(self.tokenizer.decode(tokens, skip_special_tokens=True), stop)
        return Generation(
            text=text,
            prompt_tokens=len(row.tokens),
            completion_tokens=len(tokens),
            latency_s=latency,
            finish_reason="stop" if ended or stopped else "length",
            token_logprobs=result.logprobs[: len(tokens)],
            score=result.score,
        )

    @property
    def _settings(self) -> GenerateSettings:
        return GenerateSettings(stop_ids=self._stop_ids, pad_id=self.tokenizer.pad_token_id, tokenizer=self.tokenizer,
                                compile=self.compile, cb_options=self.continuous_options,
                                defer_stop_check=self.defer_stop_check, compact_every=self.compact_every,
                                prefill_rows=self.prefill_rows,
                                grouped_attention=self.grouped_attention)

    # -------------------------------------------------------------- identity

    def config(self) -> dict:
        import transformers

        if self.local_path is not None:
            fp = file_fingerprint(self.local_path)
            model = {"model_sha256": fp["sha256"], "model_size": fp["size"]}
        else:
            model = {"model_revision": getattr(self.model.config, "_commit_hash", None)}
        return {
            "backend": self.name,
            "model": self.model_id if self.model_id in CATALOG or self.local_path is None else str(self.local_path),
            "gguf_file": self.gguf_file,
            **model,
            "adapter": str(self.adapter) if self.adapter else None,
            "adapter_sha256": adapter_sha256(self.adapter) if self.adapter else None,
            "chat_template_sha256": hashlib.sha256(self.tokenizer.chat_template.encode()).hexdigest(),
            "params": {"dtype": self.dtype, "device": self.device.split(":")[0], "batch_size": self.batch_size,
                       "temperature": 0.0,
                       # the padded path's identity is unchanged; another strategy can flip near-ties
                       **({"generation": self.generation} if self.generation != "padded" else {}),
                       **({"grouped_attention": True} if self.grouped_attention and self.generation != "compact" else {}),
                       **({"continuous_options": self.continuous_options} if self.generation == "continuous" else {})},
            "transformers": transformers.__version__,
        }

    def close(self) -> None:
        self.model = None
