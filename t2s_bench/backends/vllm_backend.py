"""vLLM in-process (`vllm.LLM`): continuous batching, paged attention, prefix caching and CUDA graphs.

Optional: needs the `vllm` package and a GPU. It takes the same `GenerationRequest`s as every backend:
prompts are rendered with the model's chat template and passed as token ids; a request's n, temperature,
top-p and seed become its own `SamplingParams` (greedy: temperature 0); the sampled token's
log-probability is returned for every generated token (`logprobs=0`). `adapter` serves a PEFT LoRA adapter
folder (from `t2s-bench train`) on the base through vLLM's LoRA support, unmerged, so the finetuned system runs here
too (`t2s-bench run --system finetuned --adapter DIR --backend vllm`).

    t2s-bench run --backend vllm --model /root/qwen-0.5b-hf --dataset spider-dev -B gpu_memory_utilization=0.5
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

from t2s_bench.backends.base import Backend, Generation, GenerationRequest, register_backend, with_samples
from t2s_bench.backends.catalog import CATALOG, adapter_sha256, file_fingerprint

log = logging.getLogger(__name__)


@register_backend("vllm")
class VLLMBackend(Backend):
    def __init__(
        self,
        model: str | Path,
        *,
        gguf_file: str | None = None,
        tokenizer: str | None = None,
        dtype: str = "auto",
        max_context: int | None = None,
        gpu_memory_utilization: float = 0.85,
        enable_prefix_caching: bool = True,
        seed: int = 0,
        enforce_eager: bool = False,
        adapter: str | Path | None = None,
    ):
        from vllm import LLM

        from t2s_bench.backends.transformers_hf import _locate

        self.model_id = str(model)
        source, self.gguf_file, self.local_path = _locate(model, gguf_file)
        target = str(Path(source) / self.gguf_file) if self.gguf_file else source
        self.seed = seed
        self.params = {"dtype": dtype, "gpu_memory_utilization": gpu_memory_utilization,
                       "enable_prefix_caching": enable_prefix_caching, "enforce_eager": enforce_eager}
        self.adapter = Path(adapter) if adapter else None
        lora = lora_options(self.adapter) if self.adapter else {}
        t0 = time.perf_counter()
        self.llm = LLM(model=target, tokenizer=tokenizer or (source if self.gguf_file else None), seed=seed,
                       max_model_len=max_context, **self.params, **lora)
        self.lora_request = None
        if self.adapter:
            from vllm.lora.request import LoRARequest

            self.lora_request = LoRARequest(self.adapter.name or "adapter", 1, str(self.adapter))
        self.tokenizer = self.llm.get_tokenizer()
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(f"{self.model_id}: the tokenizer has no chat template")
        self.context_window = int(self.llm.llm_engine.model_config.max_model_len)
        self._end_ids = {t for t in (self.tokenizer.eos_token_id, self.tokenizer.convert_tokens_to_ids("<|im_end|>"))
                         if isinstance(t, int) and t >= 0 and t != self.tokenizer.unk_token_id}
        log.info("vllm loaded %s in %.1fs", self.model_id, time.perf_counter() - t0)

    def _encode(self, messages: list[dict[str, str]]) -> list[int]:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        return len(self._encode(messages))

    def sampling_params(self, request: GenerationRequest, room: int):
        from vllm import SamplingParams

        sampled = request.sampled
        return SamplingParams(
            n=request.n,
            temperature=request.temperature if sampled else 0.0,
            top_p=request.top_p if sampled else 1.0,
            seed=(self.seed if request.seed is None else request.seed) if sampled else None,
            max_tokens=min(request.max_tokens, room),
            stop=request.stop or None,
            logprobs=0,  # the sampled token's own log-probability
        )

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        from vllm.inputs import TokensPrompt

        results: list[Generation | None] = [None] * len(requests)
        prompts, params, slots = [], [], []
        for i, r in enumerate(requests):
            tokens = self._encode(r.messages)
            room = self.context_window - len(tokens)
            if room < 1:
                results[i] = Generation("", len(tokens), 0, 0.0, None,
                                        f"prompt of {len(tokens)} tokens does not fit the context window of {self.context_window}")
                continue
            prompts.append(TokensPrompt(prompt_token_ids=tokens))
            params.append(self.sampling_params(r, room))
            slots.append(i)
        if not prompts:
            return results  # type: ignore[return-value]
        start = time.perf_counter()
        outputs = self.llm.generate(prompts, params, use_tqdm=False, lora_request=self.lora_request)
        share = (time.perf_counter() - start) / sum(requests[i].n for i in slots)
        for i, out in zip(slots, outputs):
            answers = []
            for c in out.outputs:
                ids = list(c.token_ids)
                if ids and c.finish_reason == "stop" and ids[-1] in self._end_ids:
                    ids = ids[:-1]  # the end-of-generation token is not counted (as in the other backends)
                answers.append(Generation(
                    text=c.text,
                    prompt_tokens=len(out.prompt_token_ids or []),
                    completion_tokens=len(ids),
                    latency_s=share,
                    finish_reason="stop" if c.finish_reason == "stop" else "length",
                    token_logprobs=_sampled_logprobs(c, len(ids)),
                ))
            results[i] = answers[0] if requests[i].n == 1 else with_samples(answers)
        return results  # type: ignore[return-value]

    def config(self) -> dict:
        import vllm

        model = ({"model_sha256": file_fingerprint(self.local_path)["sha256"]} if self.local_path is not None else {})
        return {
            "backend": self.name,
            "model": self.model_id if self.model_id in CATALOG or self.local_path is None else str(self.local_path),
            "gguf_file": self.gguf_file,
            **model,
            "adapter": str(self.adapter) if self.adapter else None,
            "adapter_sha256": adapter_sha256(self.adapter) if self.adapter else None,
            "chat_template_sha256": hashlib.sha256(str(self.tokenizer.chat_template).encode()).hexdigest(),
            "params": {**self.params, "seed": self.seed, "temperature": 0.0},
            "vllm": vllm.__version__,
        }

    def close(self) -> None:
        self.llm = None


def lora_options(adapter: Path) -> dict:
    """`vllm.LLM` arguments that serve the PEFT LoRA adapter in `adapter` (its rank sets max_lora_rank)."""
    config_path = adapter / "adapter_config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{adapter}: not a PEFT adapter folder (no adapter_config.json)")
    config = json.loads(config_path.read_text())
    if config.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"{adapter}: vLLM serves LoRA adapters only, not {config['peft_type']}")
    rank = int(config.get("r", 16))
    # vLLM accepts ranks from a fixed list; take the smallest that holds this adapter's rank
    supported = (1, 8, 16, 32, 64, 128, 256, 320, 512)
    max_rank = next((r for r in supported if r >= rank), None)
    if max_rank is None:
        raise ValueError(f"{adapter}: LoRA rank {rank} is above vLLM's largest ({supported[-1]})")
    return {"enable_lora": True, "max_loras": 1, "max_lora_rank": max_rank}


def _sampled_logprobs(completion, n: int) -> list[float] | None:
    """The log-probability of the first n generated tokens (vLLM: one {token id: Logprob} dict per step)."""
    if completion.logprobs is None:
        return None
    values = []
    for token, step in zip(list(completion.token_ids)[:n], completion.logprobs):
        entry = step.get(token) if step else None
        values.append(float(entry.logprob) if entry is not None else float("nan"))
    return values
