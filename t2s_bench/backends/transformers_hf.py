"""Hugging Face transformers models: batched greedy generation with left padding.

`model` is a catalog name, an HF folder, a `.gguf` file (de-quantised on load; needs `gguf`),
or a hub id. `adapter` adds a PEFT (LoRA) adapter. Requests are grouped by (max_tokens, stop),
sorted by prompt length and generated `batch_size` at a time; a CUDA out-of-memory error halves
the batch and retries.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

from t2s_bench.backends.base import Backend, Generation, GenerationRequest, register_backend, truncate_at_stop
from t2s_bench.backends.catalog import CATALOG, file_fingerprint, resolve_model

log = logging.getLogger(__name__)

DEFAULT_MODEL = "qwen2.5-coder-0.5b"


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


class _GreedyLogprobs:
    """A logits processor that records, per step and row, the log-probability of the greedy (argmax)
    token; the scores pass through unchanged. (Cheaper than `output_scores`, which keeps every step's
    full-vocabulary scores.)"""

    def __init__(self) -> None:
        self.values: list = []

    def __call__(self, input_ids, scores):
        import torch

        self.values.append(torch.log_softmax(scores.float(), dim=-1).max(dim=-1).values.cpu())
        return scores


@register_backend("transformers")
class TransformersBackend(Backend):
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
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            if len(encoded[i]) >= self.context_window:
                results[i] = Generation("", len(encoded[i]), 0, 0.0, None,
                                        f"prompt of {len(encoded[i])} tokens does not fit the context window of {self.context_window}")
                continue
            groups.setdefault((r.max_tokens, tuple(r.stop or ())), []).append(i)
        for (max_tokens, stop), idx in groups.items():
            idx.sort(key=lambda i: -len(encoded[i]))  # similar lengths together: little padding
            pos = 0
            size = self.batch_size
            while pos < len(idx):
                batch = idx[pos : pos + size]
                try:
                    outs = self._generate_batch([encoded[i] for i in batch], max_tokens, list(stop))
                except RuntimeError as e:  # CUDA OOM: halve the batch and retry
                    if "out of memory" not in str(e).lower() or size == 1:
                        raise
                    import torch

                    torch.cuda.empty_cache()
                    size = max(1, size // 2)
                    log.warning("out of memory at batch %d; retrying with %d", len(batch), size)
                    continue
                for i, gen in zip(batch, outs):
                    results[i] = gen
                pos += len(batch)
        return results  # type: ignore[return-value]

    def _generate_batch(self, prompts: list[list[int]], max_tokens: int, stop: list[str]) -> list[Generation]:
        import torch

        start = time.perf_counter()
        width = max(len(p) for p in prompts)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self.device)
        attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        kwargs = {}
        if stop:
            kwargs = {"stop_strings": stop, "tokenizer": self.tokenizer}
        recorder = _GreedyLogprobs()
        from transformers import LogitsProcessorList

        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                max_new_tokens=min(max_tokens, self.context_window - width),
                do_sample=False,
                num_beams=1,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=pad,
                eos_token_id=self._stop_ids,
                logits_processor=LogitsProcessorList([recorder]),
                **kwargs,
            )
        elapsed = time.perf_counter() - start
        gens = []
        steps = torch.stack(recorder.values, dim=1).tolist() if recorder.values else [[] for _ in prompts]
        for row, prompt, logprobs in zip(out[:, width:].tolist(), prompts, steps):
            n = next((k for k, t in enumerate(row) if t in self._stop_ids), None)
            ended = n is not None
            tokens = row[:n] if ended else row
            text, stopped = truncate_at_stop(self.tokenizer.decode(tokens, skip_special_tokens=True), stop)
            gens.append(Generation(
                text=text,
                prompt_tokens=len(prompt),
                completion_tokens=len(tokens),
                latency_s=elapsed / len(prompts),  # the batch's wall time, shared out
                finish_reason="stop" if ended or stopped else "length",
                token_logprobs=logprobs[: len(tokens)],
            ))
        return gens

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
            "adapter_sha256": _adapter_sha256(self.adapter) if self.adapter else None,
            "chat_template_sha256": hashlib.sha256(self.tokenizer.chat_template.encode()).hexdigest(),
            "params": {"dtype": self.dtype, "device": self.device.split(":")[0], "batch_size": self.batch_size,
                       "temperature": 0.0},
            "transformers": transformers.__version__,
        }

    def close(self) -> None:
        self.model = None


def _adapter_sha256(adapter: str | Path) -> str:
    """Digest of the adapter's weights and config only: training also keeps a checkpoint and
    summaries in the folder, and rewriting those must not change the run's identity."""
    folder = Path(adapter)
    files = [folder / n for n in ("adapter_config.json", "adapter_model.safetensors") if (folder / n).is_file()]
    if not files:
        return file_fingerprint(folder)["sha256"]
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}\0{file_fingerprint(f)['sha256']}\n".encode())
    return h.hexdigest()
