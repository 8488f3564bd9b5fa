"""Generation strategies, sampling (n, temperature, top-p, seed) and log-probabilities, on the tiny CPU model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from t2s_bench.backends import GenerationRequest, get_backend
from t2s_bench.backends.base import expand_samples, merge_samples, sample_seed
from t2s_bench.backends.hf_generation import Row, RowSampler
from t2s_bench.backends.sampling import TokenChooser

QUESTIONS = ["How many singers are there?", "List the names of singers older than 30 ordered by age.",
             "Which country has the most singers?", "Show the concerts held in 2014."]


def _requests(max_tokens=8, **kw):
    # prompts of different lengths: left padding differs between batches
    return [GenerationRequest([{"role": "system", "content": "Schema: CREATE TABLE singer (id int, name text)" + " x" * i},
                               {"role": "user", "content": q}], max_tokens, **kw) for i, q in enumerate(QUESTIONS)]


@pytest.fixture(scope="module")
def hf(tiny_model):
    return get_backend("transformers", model=tiny_model.hf_dir, batch_size=3, generation="padded")


def _with(backend, generation, **attrs):
    backend.generation = generation
    for k, v in attrs.items():
        setattr(backend, k, v)
    return backend


# ---------------------------------------------------------------- request contract


def test_request_validation_and_sample_fanout():
    with pytest.raises(ValueError, match="temperature > 0"):
        GenerationRequest([], n=2)
    with pytest.raises(ValueError, match="top_p"):
        GenerationRequest([], temperature=0.5, top_p=0.0)
    reqs = [GenerationRequest([{"role": "user", "content": "a"}]),
            GenerationRequest([{"role": "user", "content": "b"}], n=3, temperature=0.7, seed=11)]
    flat, owners = expand_samples(reqs, default_seed=5)
    assert owners == [0, 1, 1, 1]
    assert [r.seed for r in flat] == [None] + [sample_seed(11, k) for k in range(3)]
    assert all(r.n == 1 for r in flat)


# ---------------------------------------------------------------- strategies agree on greedy output


def test_strategies_give_the_same_greedy_answers(hf):
    reqs = _requests()
    base = hf.generate(reqs)
    assert all(len(g.token_logprobs) == g.completion_tokens > 0 for g in base)
    for strategy in ("static", "continuous"):
        got = _with(hf, strategy, compile=False).generate(reqs)
        assert [g.text for g in got] == [g.text for g in base], strategy
        assert [g.completion_tokens for g in got] == [g.completion_tokens for g in base]
        if strategy == "static":  # continuous batching reports its own (processed) log-probabilities
            np.testing.assert_allclose(sum((g.token_logprobs for g in got), []),
                                       sum((g.token_logprobs for g in base), []), atol=1e-4)
    _with(hf, "padded")
    assert "generation" not in hf.config()["params"]  # today's identity kept
    assert _with(hf, "static").config()["params"]["generation"] == "static"
    _with(hf, "padded")


def test_greedy_logprobs_are_the_models_log_softmax(hf):
    import torch

    from t2s_bench.backends.hf_generation import generate_padded

    prompt = hf._encode(_requests()[0].messages)
    (out,) = generate_padded(hf.model, [Row(prompt)], 6, [], hf._settings)
    (gen,) = hf.generate(_requests(max_tokens=6)[:1])
    tokens = out.tokens
    ids = torch.tensor([prompt + tokens])
    with torch.no_grad():
        logp = torch.log_softmax(hf.model(ids).logits[0].float(), dim=-1)
    want = [logp[len(prompt) - 1 + k, t].item() for k, t in enumerate(tokens)]
    chosen_is_argmax = [logp[len(prompt) - 1 + k].argmax().item() == t for k, t in enumerate(tokens)]
    assert all(chosen_is_argmax)
    np.testing.assert_allclose(out.logprobs, want, atol=1e-4)
    np.testing.assert_allclose(gen.token_logprobs, want[: gen.completion_tokens], atol=1e-4)


# ---------------------------------------------------------------- sampling


@pytest.mark.parametrize("strategy", ["padded", "static"])
def test_sampling_is_seeded_per_request_not_per_batch(hf, strategy):
    _with(hf, strategy, compile=False)
    try:
        one = GenerationRequest(_requests()[1].messages, 10, n=3, temperature=1.0, seed=7)
        alone = hf.generate([one])[0]
        in_batch = hf.generate([*_requests(), one])[-1]  # other prompts, other padding, other batch
        assert [a.text for a in alone.answers] == [a.text for a in in_batch.answers]
        assert len(alone.answers) == 3 and len({a.text for a in alone.answers}) == 3
        assert alone.text == alone.answers[0].text
        assert alone.completion_tokens == sum(a.completion_tokens for a in alone.answers)
        assert all(len(a.token_logprobs) == a.completion_tokens and max(a.token_logprobs) <= 0 for a in alone.answers)
        other = hf.generate([GenerationRequest(one.messages, 10, n=3, temperature=1.0, seed=8)])[0]
        assert [a.text for a in other.answers] != [a.text for a in alone.answers]
    finally:
        _with(hf, "padded")


def test_low_temperature_sampling_is_the_greedy_answer(hf):
    reqs = _requests(max_tokens=6)
    greedy = [g.text for g in hf.generate(reqs)]
    cold = [g.text for g in hf.generate(_requests(max_tokens=6, temperature=1e-4, seed=3))]
    assert cold == greedy


def _frequencies(choose, n_draws: int, vocab: int) -> np.ndarray:
    counts = np.zeros(vocab)
    for seed in range(n_draws):
        counts[choose(seed)] += 1
    return counts / n_draws


LOGITS = np.array([2.0, 1.0, 0.5, 0.0, -1.0, -3.0], dtype=np.float32)


def _nucleus(temperature: float, top_p: float) -> np.ndarray:
    p = np.exp(LOGITS / temperature)
    p /= p.sum()
    order = np.argsort(-p)
    keep = (np.cumsum(p[order]) - p[order]) < top_p
    q = np.zeros_like(p)
    q[order[keep]] = p[order[keep]]
    return q / q.sum()


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.5, 1.0), (1.0, 0.7)])
def test_row_sampler_and_token_chooser_follow_the_nucleus_distribution(temperature, top_p):
    import torch

    want = _nucleus(temperature, top_p)
    rows = [Row([0], temperature, top_p, seed) for seed in range(4000)]
    sampler = RowSampler(rows, "cpu")
    masked = sampler(None, torch.tensor(LOGITS).repeat(len(rows), 1))
    picked = masked.argmax(dim=-1).numpy()
    torch_freq = np.bincount(picked, minlength=len(LOGITS)) / len(rows)
    np_freq = _frequencies(lambda s: TokenChooser(temperature, top_p, s)(LOGITS)[0], 4000, len(LOGITS))
    for freq in (torch_freq, np_freq):
        np.testing.assert_allclose(freq, want, atol=0.03)
        assert freq[want == 0].sum() == 0  # nothing outside the nucleus
    # the recorded log-probability is the untempered model's
    lp = sampler.values()
    log_z = math.log(np.exp(LOGITS.astype(np.float64)).sum())
    assert [round(v[0], 4) for v in lp[:5]] == [round(float(LOGITS[t]) - log_z, 4) for t in picked[:5]]


# ---------------------------------------------------------------- llama.cpp sampling


@pytest.mark.parametrize("parallel", [1, 4])
def test_llama_cpp_samples_are_seeded(tiny_model, parallel):
    pytest.importorskip("llama_cpp")
    backend = get_backend("llama-cpp", model=tiny_model.gguf_path, n_ctx=512, n_threads=1, parallel=parallel)
    try:
        req = GenerationRequest(_requests()[0].messages, 8, n=3, temperature=1.0, seed=4)
        first, second = backend.generate([req])[0], backend.generate([_requests()[2], req])[1]
        assert [a.text for a in first.answers] == [a.text for a in second.answers]
        assert len({a.text for a in first.answers}) == 3
        assert all(len(a.token_logprobs) == a.completion_tokens for a in first.answers)
        (greedy,) = backend.generate(_requests()[:1])
        assert greedy.samples is None and greedy.token_logprobs and max(greedy.token_logprobs) <= 0
    finally:
        backend.close()


def test_merge_samples_keeps_request_order():
    from t2s_bench.backends.base import Generation

    reqs = [GenerationRequest([], n=2, temperature=1.0), GenerationRequest([])]
    flat, owners = expand_samples(reqs)
    gens = [Generation(f"t{i}", 5, i + 1, 0.5) for i in range(len(flat))]
    a, b = merge_samples(reqs, gens, owners)
    assert [x.text for x in a.answers] == ["t0", "t1"] and a.completion_tokens == 3 and a.latency_s == 1.0
    assert b.text == "t2" and b.samples is None


@pytest.mark.gpu
def test_static_compiled_strategy_matches_padded_on_cuda(tiny_model):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA (CUDA graphs)")
    backend = get_backend("transformers", model=tiny_model.hf_dir, device="cuda", dtype="float32", batch_size=3)
    reqs = _requests(max_tokens=12)
    base = [g.text for g in _with(backend, "padded").generate(reqs)]
    for _ in range(2):  # the second call replays the captured graph
        assert [g.text for g in _with(backend, "static", compile=True).generate(reqs)] == base
    sampled = GenerationRequest(reqs[0].messages, 8, n=2, temperature=1.0, seed=3)
    assert [a.text for a in backend.generate([sampled])[0].answers] == \
        [a.text for a in _with(backend, "padded").generate([sampled])[0].answers]


# ---------------------------------------------------------------- vLLM (optional)


@pytest.mark.gpu
def test_vllm_backend_greedy_and_samples(tiny_model):
    pytest.importorskip("vllm")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("vLLM needs CUDA")
    backend = get_backend("vllm", model=str(tiny_model.hf_dir), gpu_memory_utilization=0.3, max_context=1024)
    try:
        greedy = backend.generate(_requests())
        assert all(g.error is None and len(g.token_logprobs) == g.completion_tokens for g in greedy)
        req = GenerationRequest(_requests()[0].messages, 8, n=3, temperature=1.0, seed=1)
        a, b = backend.generate([req])[0], backend.generate([req])[0]
        assert len(a.answers) == 3 and [x.text for x in a.answers] == [x.text for x in b.answers]
    finally:
        backend.close()


def test_vllm_lora_options_follow_the_adapter_rank(tmp_path):
    """CPU: the vLLM arguments for a PEFT adapter folder, and clear errors for what vLLM cannot serve."""
    from t2s_bench.backends.vllm_backend import lora_options

    def adapter(name: str, **config) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "adapter_config.json").write_text(json.dumps(config))
        return folder

    assert lora_options(adapter("r16", peft_type="LORA", r=16)) == {"enable_lora": True, "max_loras": 1,
                                                                    "max_lora_rank": 16}
    assert lora_options(adapter("r12", peft_type="LORA", r=12))["max_lora_rank"] == 16  # the next rank vLLM takes
    with pytest.raises(ValueError, match="above vLLM's largest"):
        lora_options(adapter("r1024", peft_type="LORA", r=1024))
    with pytest.raises(ValueError, match="LoRA adapters only"):
        lora_options(adapter("ia3", peft_type="IA3"))
    with pytest.raises(FileNotFoundError, match="not a PEFT adapter folder"):
        lora_options(tmp_path)


@pytest.mark.gpu
def test_vllm_serves_a_peft_adapter_like_transformers(tiny_model, tmp_path):
    pytest.importorskip("vllm")
    peft = pytest.importorskip("peft")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("vLLM needs CUDA")
    from transformers import AutoModelForCausalLM

    lora = peft.get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model.hf_dir),
                               peft.LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                               init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    reqs = _requests()
    hf = get_backend("transformers", model=tiny_model.hf_dir, adapter=tmp_path / "adapter", dtype="float32")
    want = [g.text for g in hf.generate(reqs)]
    backend = get_backend("vllm", model=str(tiny_model.hf_dir), adapter=str(tmp_path / "adapter"), dtype="float32",
                          gpu_memory_utilization=0.3, max_context=1024)
    try:
        got = [g.text for g in backend.generate(reqs)]
        assert backend.config()["adapter_sha256"] == hf.config()["adapter_sha256"]
        assert sum(a == b for a, b in zip(got, want)) >= len(want) - 1  # up to one near-tie
    finally:
        backend.close()


# ---------------------------------------------------------------- compact: finished rows leave the batch


def test_compact_strategy_matches_padded_when_rows_end_at_different_steps(tiny_model, monkeypatch):
    """The tiny model never emits its end token: make tokens it does emit end tokens, so rows finish at
    different steps, leave the batch (and their padding columns) and the rest decode on. In float64: the
    random model has near-tied tokens that float32's batch-shape rounding would let a sample flip."""
    hf = get_backend("transformers", model=tiny_model.hf_dir, batch_size=8, generation="padded", dtype="float64")
    reqs = _requests(max_tokens=24)
    reqs += [GenerationRequest(reqs[0].messages, 24, n=2, temperature=1.0, seed=3),
             GenerationRequest(reqs[2].messages, 24, n=2, temperature=1.0, seed=4)]
    from t2s_bench.backends import hf_generation as hg

    free = hg.generate_padded(hf.model, [Row(hf._encode(r.messages)) for r in reqs[:4]], 24, [], hf._settings)
    ends = {free[3].tokens[2], free[1].tokens[10]}  # row 3 has the longest prompt: its padding columns go
    monkeypatch.setattr(hf, "_stop_ids", hf._stop_ids + sorted(ends))
    base = hf.generate(reqs)
    lengths = [g.completion_tokens for g in base[:4]]
    assert len(set(lengths)) > 1 and min(lengths) < 12  # rows end at different steps
    cropped = []
    real_select = hg._select_cache
    monkeypatch.setattr(hg, "_select_cache", lambda cache, index, first: cropped.append(first) or real_select(cache, index, first))
    for every, prefill_rows in ((1, 256), (4, 2)):  # (4, 2): the distinct prompts prefilled two at a time
        try:
            got = _with(hf, "compact", compact_every=every, prefill_rows=prefill_rows).generate(reqs)
        finally:
            _with(hf, "padded", compact_every=8, prefill_rows=256)
        assert [g.text for g in got] == [g.text for g in base]
        assert [g.finish_reason for g in got] == [g.finish_reason for g in base]
        assert [[a.text for a in g.answers] for g in got[4:]] == [[a.text for a in g.answers] for g in base[4:]]
        np.testing.assert_allclose(sum((g.token_logprobs for g in got[:4]), []),
                                   sum((g.token_logprobs for g in base[:4]), []), atol=1e-4)
    assert max(cropped) > 0  # leading padding columns were dropped too


def test_compact_strategy_stops_rows_at_stop_strings(hf):
    reqs = _requests(max_tokens=20)
    free = [g.text for g in hf.generate(reqs)]
    stop = [free[1][3:6]]  # a piece of one answer's text
    base = hf.generate(_requests(max_tokens=20, stop=stop))
    got = _with(hf, "compact").generate(_requests(max_tokens=20, stop=stop))
    _with(hf, "padded")
    assert [g.text for g in got] == [g.text for g in base]
    assert got[1].finish_reason == "stop" and len(got[1].text) < len(free[1])


def test_grouped_query_decode_attention_equals_transformers_sdpa():
    """`t2s_sdpa` at one query token (heads packed onto their key/value head) against transformers' SDPA
    attention (keys and values copied out to every head), with a padding mask."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from t2s_bench.backends.hf_attention import gqa_decode_sdpa

    torch.manual_seed(0)
    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 7, True
    query, key, value = torch.randn(3, 14, 1, 16), torch.randn(3, 2, 9, 16), torch.randn(3, 2, 9, 16)
    mask = torch.ones(3, 1, 1, 9, dtype=torch.bool)
    mask[0, ..., :4] = mask[2, ..., :1] = False  # left padding
    want, _ = sdpa_attention_forward(module, query, key, value, mask, scaling=0.25)
    got, _ = gqa_decode_sdpa(module, query, key, value, mask, scaling=0.25)
    assert got.shape == want.shape == (3, 1, 14, 16)
    torch.testing.assert_close(got, want)


def test_compact_strategy_runs_the_grouped_query_attention(hf, monkeypatch):
    from t2s_bench.backends import hf_attention

    calls = []
    real = hf_attention.gqa_decode_sdpa
    monkeypatch.setattr(hf_attention, "gqa_decode_sdpa", lambda *a, **k: calls.append(a[1].shape[2]) or real(*a, **k))
    hf_attention._registered = False  # register the wrapped function
    try:
        _with(hf, "compact").generate(_requests(max_tokens=3)[:1])
    finally:
        _with(hf, "padded")
        hf_attention._registered = False
    assert 1 in calls and hf.model.config._attn_implementation == "sdpa"  # decode steps went through it; restored


def test_static_compiled_strategy_with_grouped_attention_matches_padded(hf):
    """`grouped_attention` in the static strategy, compiled (torch.compile runs on the CPU too): the decode
    attention traced into the compiled step gives the padded path's answers."""
    reqs = _requests(max_tokens=10)
    base = [g.text for g in hf.generate(reqs)]
    try:
        got = _with(hf, "static", compile=True, grouped_attention=True).generate(reqs)
        assert hf.config()["params"]["grouped_attention"] is True
    finally:
        _with(hf, "padded", compile=True, grouped_attention=False)
    assert [g.text for g in got] == base
    assert "grouped_attention" not in hf.config()["params"]


def test_compact_strategy_computes_each_distinct_prompt_once(hf):
    """The n samples of a request share one prefill: 2 prompts x 4 samples -> a prefill over 2 rows."""
    seen = []
    hook = hf.model.register_forward_pre_hook(lambda mod, args, kw: seen.append(tuple(kw["input_ids"].shape)),
                                              with_kwargs=True)
    reqs = [GenerationRequest(r.messages, 4, n=4, temperature=1.0, seed=1) for r in _requests()[:2]]
    try:
        _with(hf, "compact", batch_size=8).generate(reqs)
    finally:
        hook.remove()
        _with(hf, "padded", batch_size=3)
    assert seen[0][0] == 2 and seen[0][1] > 1  # the prefill: two distinct prompts
    assert all(shape == (8, 1) for shape in seen[1:])  # then one token for each of the 8 rows per step
