"""Generation strategies of the transformers backend: rows of token ids in, generated tokens out.

A *row* is one answer to produce: a prompt's token ids plus its sampling settings (a request with
n answers is n rows). Every strategy returns, per row, the generated token ids and the log-probability
of each. Greedy rows give the same tokens in every strategy, up to near-ties that a different batch
shape or attention kernel can flip in bf16.

- `padded`: `model.generate` over left-padded batches of rows sorted by prompt length (the
  original path; each step runs the model eagerly, tens of small kernels per layer).
- `static`: the same batches through a static KV cache and `torch.compile(mode="reduce-overhead")`
  (transformers' `cache_implementation="static"` + `compile_config`): each decode step replays one
  CUDA graph. Batches of a call are made equal in size (dummy rows fill the last) and the cache length
  is rounded up, so one graph serves the whole call. The "all rows finished?" check is read one step
  late (transformers' `DeferredStopCheck`, which it enables on Apple GPUs only), so the host queues the
  next step while the GPU runs this one instead of waiting at every step.
- `compact`: decoding written out step by step (prefill, then one token per row and step) that drops
  the finished rows from the batch, and their KV cache, every few steps, with a grouped-query decode
  attention that reads each key/value head once (`hf_attention`).
- `continuous`: transformers' continuous batching (`generate_batch`, paged attention): finished rows
  leave the batch at once and new ones join; prompt blocks shared by questions on the same database
  (system prompt + schema) are computed once (`allow_block_sharing`, blocks of `block_size` tokens).

Beam search (`generate_beams`) is `model.generate(num_beams=B)` over left-padded rows, whatever the
strategy: the static cache and continuous batching do not take beams.

Sampling (`padded`, `static`, `compact`) happens in `RowSampler`, per row and seeded per row, so a sampled
answer does not depend on which other rows share its batch (up to numerics); it draws from the top-p
nucleus within the SAMPLE_TOP_K most probable tokens.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

STRATEGIES = ("padded", "static", "continuous", "compact")
# sampling draws from the nucleus within the most probable SAMPLE_TOP_K tokens: exact whenever those hold
# top_p of the probability (at the temperatures used for SQL, always), and a top-k sort is far cheaper
# on the GPU than sorting the 152k-token vocabulary of every row at every step
SAMPLE_TOP_K = 1024
_MASK32 = 0xFFFFFFFF
# beam search ranks beams by sum of log-probabilities / length ** BEAM_LENGTH_PENALTY (transformers' default,
# as CodeS ran it), i.e. by the mean token log-probability, the end token included
BEAM_LENGTH_PENALTY = 1.0


@dataclass
class Row:
    tokens: list[int]
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0


@dataclass
class RowOutput:
    tokens: list[int]  # generated ids, the end token included when one was produced
    logprobs: list[float] = field(default_factory=list)
    score: float | None = None  # beam search: the beam's sequence score


def _hash32(x):
    """A 32-bit integer mix (x in [0, 2^32), int64 tensor; every product stays below 2^63)."""
    x = ((x >> 16) ^ x) * 0x45D9F3B & _MASK32
    x = ((x >> 16) ^ x) * 0x45D9F3B & _MASK32
    return (x >> 16) ^ x


def row_uniform(seeds, step: int):
    """One uniform number in (0, 1) per row, a function of (row seed, step) only: hand-written because
    torch's generators are per device and per call, not per row."""
    import torch

    x = _hash32((seeds & _MASK32) ^ ((step * 0x9E3779B1 + 0x7F4A7C15) & _MASK32))
    x = _hash32(x ^ 0x5BD1E995)
    return ((x >> 8).to(torch.float32) + 0.5) / float(1 << 24)


class RowSampler:
    """A logits processor that chooses each row's next token itself: the argmax for greedy rows,
    seeded nucleus sampling (inverse CDF over the top-p tokens, one uniform per row and step) for
    the others. It records the chosen token's log-probability (log-softmax of the scores it receives)
    on the device, read once at the end. With sampled rows it returns scores where only the chosen
    token is finite, so `generate`'s own greedy pick takes it; with greedy rows only, the scores pass
    through unchanged."""

    def __init__(self, rows: list[Row], device) -> None:
        import torch

        self.temperature = torch.tensor([r.temperature for r in rows], dtype=torch.float32, device=device)
        self.top_p = torch.tensor([r.top_p for r in rows], dtype=torch.float32, device=device)
        self.seeds = torch.tensor([r.seed for r in rows], dtype=torch.int64, device=device)
        self.any_sampled = any(r.temperature > 0 for r in rows)
        self.step = 0
        self.logprobs: list = []

    def __call__(self, input_ids, scores):
        import torch

        scores = scores.float()
        chosen, logprob = self.choose(scores)
        self.logprobs.append(logprob)
        if not self.any_sampled:
            return scores
        out = torch.full_like(scores, -math.inf)
        return out.scatter_(1, chosen[:, None], 0.0)

    def choose(self, scores):
        """(next token, its log-probability) of each row at this step, from its float scores."""
        import torch

        greedy = scores.argmax(dim=-1)
        chosen = torch.where(self.temperature > 0, self._sample(scores), greedy) if self.any_sampled else greedy
        logprob = scores.gather(1, chosen[:, None])[:, 0] - torch.logsumexp(scores, dim=-1)
        self.step += 1
        return chosen, logprob

    def select(self, index) -> None:
        """Keep only the rows at `index` (a batch that dropped its finished rows)."""
        self.temperature, self.top_p, self.seeds = self.temperature[index], self.top_p[index], self.seeds[index]

    def _sample(self, scores):
        import torch

        scaled = scores / self.temperature.clamp_min(1e-5)[:, None]
        top, order = scaled.topk(min(SAMPLE_TOP_K, scores.shape[-1]), dim=-1)  # sorted, most probable first
        sorted_p = torch.exp(top - torch.logsumexp(scaled, dim=-1, keepdim=True))
        before = sorted_p.cumsum(dim=-1) - sorted_p
        sorted_p = sorted_p * (before < self.top_p[:, None])  # the nucleus (the top token always stays)
        cum = sorted_p.cumsum(dim=-1)
        target = row_uniform(self.seeds, self.step) * cum[:, -1]
        pos = (cum < target[:, None]).sum(dim=-1).clamp_max(order.shape[-1] - 1)
        return order.gather(1, pos[:, None])[:, 0]

    def values(self) -> list[list[float]]:
        import torch

        return torch.stack(self.logprobs, dim=1).tolist() if self.logprobs else []


@dataclass
class GenerateSettings:
    """What the strategies share: the stop ids, the pad id, and the tokenizer (for stop strings)."""

    stop_ids: list[int]
    pad_id: int
    tokenizer: object
    compile: bool = True  # static: torch.compile the decode step (CUDA only unless forced)
    compile_mode: str = "reduce-overhead"
    cache_len_multiple: int = 256  # static: the cache length is rounded up to this
    batch_multiple: int = 32  # static: batches are padded with dummy rows to a multiple of this
    cb_options: dict = field(default_factory=dict)  # continuous: ContinuousBatchingConfig fields
    defer_stop_check: bool = True  # static: read the stop flag one step late (no host sync per step)
    compact_every: int = 8  # compact: drop finished rows every this many steps (one host sync each time)
    prefill_rows: int = 256  # compact: distinct prompts computed together (bounds the prefill's activations)
    grouped_attention: bool = False  # padded, static: `hf_attention`'s decode attention (compact: always)


@contextmanager
def deferred_stop_check():
    """Let `generate` defer its stop check on every device, for the duration of the block.

    transformers (5.x) enables `DeferredStopCheck` on "mps" only ("we should enable it for cuda if we
    observe perf gains"); it already pins its host flags on CUDA, waits on device events and undoes the
    one extra step it runs. Not on the CPU (no events); without the class (other versions), nothing changes."""
    from transformers.generation import utils

    cls = getattr(utils, "DeferredStopCheck", None)
    if cls is None:
        yield
        return
    original = cls.__dict__["is_supported"]

    def is_supported(device, cache, cache_is_returned, is_assistant) -> bool:
        if device.type == "cpu":  # it waits on device events, which the CPU has none of
            return original.__func__(device, cache, cache_is_returned, is_assistant)
        return not is_assistant and (cache is None or cache.is_croppable or not cache_is_returned)

    cls.is_supported = staticmethod(is_supported)
    try:
        yield
    finally:
        cls.is_supported = original


def _trim(row: list[int], stop_ids: list[int]) -> list[int]:
    """Generated ids up to and including the first end token (the padding after it dropped)."""
    n = next((k for k, t in enumerate(row) if t in stop_ids), None)
    return row if n is None else row[: n + 1]


def generate_padded(model, rows: list[Row], max_new: int, stop: list[str], s: GenerateSettings,
                    static: bool = False) -> list[RowOutput]:
    """One `model.generate` call over left-padded rows (static: through a static, compiled cache)."""
    import torch
    from transformers import LogitsProcessorList

    device = model.device
    real = len(rows)
    multiple = min(s.batch_multiple, 1 << (real - 1).bit_length())  # small batches: the next power of two
    if static and real % multiple:  # one batch shape per call: one CUDA graph
        rows = rows + [rows[-1]] * (multiple - real % multiple)
    input_ids, attention = _left_padded(rows, s.pad_id, device)
    width = input_ids.shape[1]
    sampler = RowSampler(rows, device)
    kwargs: dict = {"stop_strings": stop, "tokenizer": s.tokenizer} if stop else {}
    if static:
        from transformers import CompileConfig

        cache_len = -(-(width + max_new) // s.cache_len_multiple) * s.cache_len_multiple
        compile_config = CompileConfig(mode=s.compile_mode, fullgraph=False)
        compile_config._compile_all_devices = s.compile and device.type != "cuda" or None
        kwargs |= {"cache_implementation": "static", "max_cache_len": cache_len,
                   "compile_config": compile_config, "disable_compile": not s.compile}
    from t2s_bench.backends.hf_attention import decode_attention

    defer = deferred_stop_check() if static and s.defer_stop_check else nullcontext()
    attention_kind = decode_attention(model) if s.grouped_attention else nullcontext()
    with torch.inference_mode(), defer, attention_kind:
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            max_new_tokens=max_new,
            do_sample=False,
            num_beams=1,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=s.pad_id,
            eos_token_id=s.stop_ids,
            logits_processor=LogitsProcessorList([sampler]),
            **kwargs,
        )
    logprobs = sampler.values() or [[] for _ in rows]
    outputs = []
    for generated, lp in zip(out[:real, width:].tolist(), logprobs):
        tokens = _trim(generated, s.stop_ids)
        outputs.append(RowOutput(tokens, lp[: len(tokens)]))
    return outputs


def generate_compact(model, rows: list[Row], max_new: int, stop: list[str], s: GenerateSettings) -> list[RowOutput]:
    """Decoding written out step by step over left-padded rows, dropping the finished ones.

    Every `s.compact_every` steps the rows that produced an end token (or a stop string) leave the batch:
    their KV cache rows are dropped, and so are the leading padding columns no remaining row needs. A
    batch then costs what its answers cost, not (rows x the longest answer): on Spider most answers end
    within 40 tokens and a few run to the limit. An eager step's host cost hardly depends on the number of
    rows, so fewer, bigger batches mean fewer steps: the prompt is computed once for all the rows that share
    it (the n samples of a request), `s.prefill_rows` distinct prompts at a time, so the decoding batch can
    be far larger than a prefill could be. Single-token steps use `hf_attention`'s grouped-query attention.
    Hand-written because `generate` keeps every row until all are done."""
    import torch

    from t2s_bench.backends.hf_attention import decode_attention

    device = model.device
    sampler = RowSampler(rows, device)
    tokens = torch.full((len(rows), max_new), -1, dtype=torch.long, device=device)  # -1: not generated
    logprobs = torch.zeros((len(rows), max_new), dtype=torch.float32, device=device)
    live = torch.arange(len(rows), device=device)  # the row behind each batch position
    stop_ids = torch.tensor(s.stop_ids, device=device)
    ended = torch.zeros(len(rows), dtype=torch.bool, device=device)
    with torch.inference_mode(), decode_attention(model):
        cache, kv, logits, attention = _prefill_shared(model, rows, s)
        next_pos = attention.sum(-1, keepdim=True)
        for step in range(max_new):
            chosen, logprob = sampler.choose(logits)
            tokens[live, step], logprobs[live, step] = chosen, logprob
            ended |= torch.isin(chosen, stop_ids)
            if step + 1 == max_new:
                break
            if (step + 1) % s.compact_every == 0:
                if stop:
                    ended |= _has_stop_string(tokens[live, : step + 1], stop, s.tokenizer)
                keep = (~ended).nonzero()[:, 0]
                if len(keep) == 0:
                    break
                if len(keep) < len(live):
                    first = int(attention[keep].any(dim=0).nonzero()[0, 0])  # leading columns all padding
                    _select_cache(cache, keep, first)
                    live, chosen, ended = live[keep], chosen[keep], ended[keep]
                    attention, next_pos = attention[keep, first:], next_pos[keep]
                    sampler.select(keep)
            attention = torch.cat([attention, attention.new_ones((len(live), 1))], dim=-1)
            out = model(input_ids=chosen[:, None], attention_mask=attention, position_ids=next_pos,
                        use_cache=True, logits_to_keep=1, **kv)
            logits, next_pos = out.logits[:, -1, :].float(), next_pos + 1
    outputs = []
    for row, lp in zip(tokens.tolist(), logprobs.tolist()):
        n = row.index(-1) if -1 in row else len(row)  # rows dropped for a stop string stop early
        kept = _trim(row[:n], s.stop_ids)
        outputs.append(RowOutput(kept, lp[: len(kept)]))
    return outputs


def _prefill_shared(model, rows: list[Row], s: GenerateSettings):
    """Each distinct prompt of the rows computed once, `s.prefill_rows` at a time, then given to every row
    that has it: (KV cache, {cache argument: cache}, last-position float logits, attention mask), per row."""
    import torch
    from transformers import DynamicCache

    owner: dict[tuple, int] = {}
    row_prompt = [owner.setdefault(tuple(r.tokens), len(owner)) for r in rows]
    distinct = [Row(list(t)) for t in owner]
    input_ids, attention = _left_padded(distinct, s.pad_id, model.device)
    positions = (attention.cumsum(-1) - 1).clamp_min(0)
    argument = _cache_argument(model)
    cache, logits = None, []
    for start in range(0, len(distinct), s.prefill_rows):
        part = slice(start, start + s.prefill_rows)
        part_cache = DynamicCache(config=model.config)
        out = model(input_ids=input_ids[part], attention_mask=attention[part], position_ids=positions[part],
                    use_cache=True, logits_to_keep=1, **{argument: part_cache})
        logits.append(out.logits[:, -1, :].float())
        if cache is None:
            cache = part_cache
        else:  # same width (padded together): the parts stack along the batch
            for layer, more in zip(cache.layers, part_cache.layers):
                layer.keys, layer.values = torch.cat([layer.keys, more.keys]), torch.cat([layer.values, more.values])
    logits = torch.cat(logits)
    if len(distinct) < len(rows):  # give each row its prompt's cache, logits and mask
        index = torch.tensor(row_prompt, device=model.device)
        _select_cache(cache, index, 0)
        logits, attention = logits[index], attention[index]
    return cache, {argument: cache}, logits, attention


def _cache_argument(model) -> str:
    """The forward argument that takes the KV cache: `cache` from transformers 5.24, `past_key_values` before."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a PEFT model forwards **kwargs
    return "cache" if "cache" in inspect.signature(type(base).forward).parameters else "past_key_values"


def _select_cache(cache, index, first: int) -> None:
    """Keep the KV cache's rows at `index` and its columns from `first` on."""
    for layer in cache.layers:
        layer.keys = layer.keys[index, :, first:]
        layer.values = layer.values[index, :, first:]


def _has_stop_string(tokens, stop: list[str], tokenizer):
    """Per row: does the decoded text hold one of the stop strings? (tokens: (rows, steps) on the device)"""
    import torch

    texts = tokenizer.batch_decode(tokens.tolist(), skip_special_tokens=True)
    return torch.tensor([any(x in t for x in stop) for t in texts], device=tokens.device)


def _left_padded(rows: list[Row], pad_id: int, device):
    """(input ids, attention mask) of the rows, left-padded to the longest."""
    import torch

    width = max(len(r.tokens) for r in rows)
    input_ids = torch.tensor([[pad_id] * (width - len(r.tokens)) + r.tokens for r in rows], device=device)
    attention = torch.tensor([[0] * (width - len(r.tokens)) + [1] * len(r.tokens) for r in rows], device=device)
    return input_ids, attention


class BeamChoices:
    """A logits processor for beam search that keeps, per row and step, the row's K most probable tokens
    and their log-probabilities (K: the continuations beam search keeps over all of a question's beams,
    so every chosen token is among its parent row's top K). Hand-written because `output_scores=True`
    keeps the whole vocabulary per row and step (152k floats: gigabytes at the GPU's batch sizes)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.values: list = []
        self.indices: list = []

    def __call__(self, input_ids, scores):
        values, indices = scores.topk(min(self.k, scores.shape[-1]), dim=-1)
        self.values.append(values)
        self.indices.append(indices)
        return scores

    def logprobs(self, beam_indices, tokens):
        """(returned beams, steps) log-probabilities of `tokens`, each read from the row `beam_indices` names."""
        import torch

        steps = tokens.shape[1]
        parent = beam_indices[:, :steps].clamp_min(0).long()
        at = torch.arange(steps, device=tokens.device)
        values = torch.stack(self.values, dim=1)[parent, at]  # (beams, steps, K)
        hit = torch.stack(self.indices, dim=1)[parent, at] == tokens[..., None]
        found = torch.where(hit, values, -math.inf).max(dim=-1).values
        # a token tied with the K-th value may be missing from the row's top K: its value is the K-th's
        return torch.where(hit.any(dim=-1), found, values[..., -1])


def generate_beams(model, rows: list[Row], num_beams: int, max_new: int, stop: list[str],
                   s: GenerateSettings) -> list[list[RowOutput]]:
    """Beam search over left-padded rows (their sampling settings are ignored): per row, its `num_beams`
    finished beams best first, each with its tokens, their log-probabilities and the beam's score
    (sum of log-probabilities / length ** BEAM_LENGTH_PENALTY, transformers' `sequences_scores`)."""
    import torch
    from transformers import LogitsProcessorList

    input_ids, attention = _left_padded(rows, s.pad_id, model.device)
    width = input_ids.shape[1]
    choices = BeamChoices(max(2, 1 + len(s.stop_ids)) * num_beams)  # transformers' `beams_to_keep`
    kwargs: dict = {"stop_strings": stop, "tokenizer": s.tokenizer} if stop else {}
    with torch.inference_mode():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            max_new_tokens=max_new,
            do_sample=False,
            num_beams=num_beams,
            num_return_sequences=num_beams,
            length_penalty=BEAM_LENGTH_PENALTY,
            early_stopping=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=s.pad_id,
            eos_token_id=s.stop_ids,
            logits_processor=LogitsProcessorList([choices]),
            return_dict_in_generate=True,
            **kwargs,
        )
        generated = out.sequences[:, width:]
        logprobs = choices.logprobs(out.beam_indices, generated).tolist()
    lengths = (out.beam_indices >= 0).sum(dim=1).tolist()  # each beam's own length (padding follows it)
    generated = generated.tolist()
    beams = []
    for r in range(len(rows)):
        mine = []
        for b in range(r * num_beams, (r + 1) * num_beams):
            n = lengths[b]
            mine.append(RowOutput(generated[b][:n], logprobs[b][:n], sum(logprobs[b][:n]) / max(n, 1) ** BEAM_LENGTH_PENALTY))
        beams.append(mine)
    return beams


def generate_continuous(model, rows: list[Row], max_new: int, stop: list[str], s: GenerateSettings) -> list[RowOutput]:
    """transformers' continuous batching over all rows at once. Greedy rows and each group of sampled
    rows with the same (temperature, top_p) go in one `generate_batch` call; sampled groups are seeded
    with their first row's seed (per call, not per row: the answers depend on the group)."""
    from transformers import ContinuousBatchingConfig, GenerationConfig

    if stop:
        raise ValueError("the continuous strategy does not support stop strings; use padded or static")
    groups: dict[tuple[float, float], list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault((r.temperature, r.top_p if r.temperature > 0 else 1.0), []).append(i)
    outputs: list[RowOutput | None] = [None] * len(rows)
    for (temperature, top_p), idx in groups.items():
        sampled = temperature > 0
        config = GenerationConfig(
            max_new_tokens=max_new, do_sample=sampled, eos_token_id=s.stop_ids, pad_token_id=s.pad_id,
            **({"temperature": temperature, "top_p": top_p, "top_k": 0} if sampled else
               {"temperature": None, "top_p": None, "top_k": None}),
        )
        options = {"return_logprobs": True, **s.cb_options}
        if sampled:
            options["seed"] = rows[idx[0]].seed
        on_gpu = model.device.type == "cuda"
        if not on_gpu and "num_blocks" not in options:
            # off the GPU the cache would be sized from the host's memory (seconds to allocate):
            # size it for this workload instead
            block = options.get("block_size", 256)
            options["num_blocks"] = sum(-(-(len(rows[i].tokens) + max_new) // block) for i in idx) + 1
            options.setdefault("max_batch_tokens", 2048)
        results = model.generate_batch(
            inputs=[rows[i].tokens for i in idx], generation_config=config,
            continuous_batching_config=ContinuousBatchingConfig(**options), progress_bar=False,
            warmup=on_gpu,  # the warm-up captures CUDA graphs
        )
        # generate_batch returns results in input order (request ids are assigned in that order)
        done = list(results.values())
        if len(done) != len(idx):
            raise RuntimeError(f"continuous batching returned {len(done)} of {len(idx)} results")
        for i, res in zip(idx, done):
            if res.error:
                raise RuntimeError(f"continuous batching: {res.error}")
            tokens = _trim(list(res.generated_tokens), s.stop_ids)
            outputs[i] = RowOutput(tokens, list(res.logprobs or [])[: len(tokens)])
    return outputs  # type: ignore[return-value]
