"""First executable beam: transformers beam search (tiny model, CPU), the choice on real demo databases,
a full run through the API, and the refusals (llama-cpp, samples + beams)."""

from __future__ import annotations

import json

import pytest

from t2s_bench.backends.base import Generation, GenerationRequest, with_samples
from t2s_bench.datasets import load_dataset
from t2s_bench.records import Prediction, Task
from t2s_bench.systems.base import get_system
from t2s_bench.systems.beam import BeamSearch

MESSAGES = [[{"role": "user", "content": "How many singers are there?"}],
            [{"role": "user", "content": "List the names of all stadiums with a capacity above 5000."}]]


@pytest.fixture(scope="module")
def demo():
    return load_dataset("demo")


@pytest.fixture(scope="module")
def hf_backend(tiny_model):
    from t2s_bench.backends import get_backend

    backend = get_backend("transformers", model=str(tiny_model.hf_dir), device="cpu", batch_size=8)
    yield backend
    backend.close()


def _task(demo, index=0) -> Task:
    ex = demo.examples[index]
    return Task(ex, demo.schema(ex.db_id), demo.db_path(ex.db_id))


# -- backend -------------------------------------------------------------------------------------

def test_beam_request_returns_the_beams_best_first_with_scores(hf_backend):
    beams = hf_backend.generate([GenerationRequest(m, max_tokens=10, num_beams=3) for m in MESSAGES])
    for gen in beams:
        answers = gen.answers
        assert len(answers) == 3  # (distinct token sequences: below; random byte tokens can decode alike)
        scores = [a.score for a in answers]
        assert all(s is not None and s < 0 for s in scores) and scores == sorted(scores, reverse=True)
        assert gen.text == answers[0].text and gen.score == scores[0]
        assert gen.completion_tokens == sum(a.completion_tokens for a in answers)
        for a in answers:  # length_penalty 1: the score is the mean token log-probability
            assert len(a.token_logprobs) == a.completion_tokens
            if a.finish_reason == "length":  # (an end token would count in the score, not in token_logprobs)
                assert a.score == pytest.approx(sum(a.token_logprobs) / a.completion_tokens, abs=1e-4)


def test_beam_scores_are_the_model_s_own_log_probabilities(hf_backend):
    """Teacher-forcing each returned beam through the model gives back its token log-probabilities and score."""
    import torch

    from t2s_bench.backends.hf_generation import Row, generate_beams

    prompt = hf_backend._encode(MESSAGES[0])
    beams = generate_beams(hf_backend.model, [Row(prompt)], 3, 10, [], hf_backend._settings)[0]
    assert len({tuple(b.tokens) for b in beams}) == 3  # distinct beams
    for beam in beams:
        ids = torch.tensor([prompt + beam.tokens])
        with torch.inference_mode():
            logp = torch.log_softmax(hf_backend.model(ids).logits[0, len(prompt) - 1: -1].float(), dim=-1)
        expected = logp.gather(1, torch.tensor(beam.tokens)[:, None])[:, 0].tolist()
        assert beam.logprobs == pytest.approx(expected, abs=1e-4)
        assert beam.score == pytest.approx(sum(expected) / len(beam.tokens), abs=1e-4)


def test_beam_scores_match_transformers_own_scores(hf_backend):
    """Beams ending at different lengths (a frequent token made an end token): the sparse top-K record gives
    transformers' own beams and `sequences_scores` (output_scores=True, the whole vocabulary kept)."""
    from dataclasses import replace

    import torch

    from t2s_bench.backends.hf_generation import Row, generate_beams

    prompts = [hf_backend._encode(m) for m in MESSAGES]
    greedy = generate_beams(hf_backend.model, [Row(prompts[0])], 2, 8, [], hf_backend._settings)[0][0].tokens
    settings = replace(hf_backend._settings, stop_ids=[greedy[2], greedy[5]])
    ours = generate_beams(hf_backend.model, [Row(p) for p in prompts], 3, 8, [], settings)
    width = max(map(len, prompts))
    ids = torch.tensor([[settings.pad_id] * (width - len(p)) + p for p in prompts])
    with torch.inference_mode():
        ref = hf_backend.model.generate(input_ids=ids, attention_mask=(torch.arange(width) >= width - torch.tensor(
            [[len(p)] for p in prompts])).long(), max_new_tokens=8, do_sample=False, num_beams=3, num_return_sequences=3,
            length_penalty=1.0, early_stopping=False, temperature=None, top_p=None, top_k=None,
            pad_token_id=settings.pad_id, eos_token_id=settings.stop_ids, output_scores=True, return_dict_in_generate=True)
    flat = [beam for row in ours for beam in row]
    assert len({len(b.tokens) for b in flat}) > 1 and any(b.tokens[-1] in settings.stop_ids for b in flat)
    for j, beam in enumerate(flat):
        assert beam.tokens == ref.sequences[j, width:width + len(beam.tokens)].tolist()
        assert beam.score == pytest.approx(ref.sequences_scores[j].item(), abs=1e-5)


def test_one_beam_is_the_greedy_answer(hf_backend):
    greedy = hf_backend.generate([GenerationRequest(m, max_tokens=10) for m in MESSAGES])
    one = hf_backend.generate([GenerationRequest(m, max_tokens=10, num_beams=1) for m in MESSAGES])
    assert [g.text for g in one] == [g.text for g in greedy] and all(g.samples is None for g in one)
    assert [g.token_logprobs for g in one] == [g.token_logprobs for g in greedy]


def test_beam_requests_are_validated():
    with pytest.raises(ValueError, match="deterministic"):
        GenerationRequest(MESSAGES[0], num_beams=4, temperature=0.7)
    with pytest.raises(ValueError, match="num_beams"):
        GenerationRequest(MESSAGES[0], num_beams=0)


# -- choice on a real database ---------------------------------------------------------------------

def _beams(*sqls: str) -> Generation:
    return with_samples([Generation(sql, 10, 4, 0.1, "stop", token_logprobs=[-0.1 * (j + 1)] * 4, score=-0.1 * (j + 1))
                         for j, sql in enumerate(sqls)])


def _top(task, gen: Generation) -> Prediction:
    return Prediction(task.example.index, task.example.db_id, gen.text, raw_output=gen.text,
                      prompt=[{"role": "user", "content": "q"}], prompt_tokens=10,
                      completion_tokens=gen.completion_tokens, latency_s=gen.latency_s)


def test_the_first_beam_that_runs_is_chosen(demo):
    task = _task(demo)  # "How many students are there?" on the school database
    gen = _beams("SELECT count(*) FROM pupils", "SELECT count(*) FROM student", "SELECT count(*) FROM course")
    pred = BeamSearch(3).apply([task], [_top(task, gen)], [gen])[0]
    assert pred.sql == "SELECT count(*) FROM student" and pred.raw_output == gen.answers[1].text
    beams = [e for e in pred.trace if e["stage"].startswith("beam ")]
    assert [e["stage"] for e in beams] == ["beam 0", "beam 1", "beam 2"]
    assert "no such table" in beams[0]["error"] and beams[1]["error"] is None and beams[2]["error"] is None
    assert [e["score"] for e in beams] == pytest.approx([-0.1, -0.2, -0.3])
    assert pred.trace[-1] == {"stage": "beam", "chosen": 1, "error": None}
    assert pred.completion_tokens == 12 and pred.prompt_tokens == 10  # every beam's cost, counted once


def test_no_beam_runs_keeps_the_top_beam(demo):
    task = _task(demo)
    gen = _beams("SELECT x FROM nowhere", "not sql at all")
    pred = BeamSearch(2).apply([task], [_top(task, gen)], [gen])[0]
    assert pred.sql == "SELECT x FROM nowhere" and pred.trace[-1]["chosen"] == 0
    assert pred.trace[-1]["error"] == "no beam runs: the top beam stays"
    assert all(e["error"] for e in pred.trace if e["stage"].startswith("beam "))


def test_nonempty_skips_beams_with_empty_results(demo):
    task = _task(demo, 3)  # departments in the Old Library building
    gen = _beams("SELECT name FROM department WHERE building = 'old library'",  # runs, no rows
                 "SELECT name FROM department WHERE building = 'Old Library'")
    assert BeamSearch(2).apply([task], [_top(task, gen)], [gen])[0].trace[-1]["chosen"] == 0
    pred = BeamSearch(2, nonempty=True).apply([task], [_top(task, gen)], [gen])[0]
    assert pred.trace[-1]["chosen"] == 1 and pred.trace[-2]["error"] is None
    assert pred.trace[-3]["error"] == "empty result"


# -- the option of every prompted system ---------------------------------------------------------

def test_a_run_with_beams_records_and_scores_them(tiny_model, demo, tmp_path):
    import t2s_bench as t

    run = t.evaluate("zero-shot", dataset=demo, limit=4, model=str(tiny_model.hf_dir), backend="transformers",
                     device="cpu", beams=2, max_new_tokens=8, out=tmp_path / "beams")
    config = json.loads((tmp_path / "beams" / "config.json").read_text())
    assert config["system"]["beam"]["beams"] == 2  # the system config: part of the run's hash
    assert run.metrics["levels"]["all"]["n_scored"] == 4 and run.records["exec_match"].notna().all()
    lines = (tmp_path / "beams" / "predictions.jsonl").read_text().splitlines()
    preds = [json.loads(line) for line in lines]
    assert len(preds) == 4
    for p in preds:
        beams = [e for e in p["trace"] if e["stage"].startswith("beam ")]
        assert len(beams) == 2 and all(e["score"] is not None for e in beams)
        assert p["trace"][-1]["stage"] == "beam" and p["sql"] == beams[p["trace"][-1]["chosen"]]["sql"]


def test_beams_do_not_combine_with_samples(tiny_model):
    with pytest.raises(ValueError, match="does not combine"):
        get_system("zero-shot", model=str(tiny_model.hf_dir), backend="transformers", device="cpu",
                   beams=2, samples=4, dataset_name="demo")


def test_llama_cpp_refuses_beams(tiny_model):
    pytest.importorskip("llama_cpp")
    with pytest.raises(ValueError, match="llama-cpp backend has none: use samples=N"):
        get_system("zero-shot", model=str(tiny_model.gguf_path), backend="llama-cpp", beams=2, n_ctx=512,
                   n_threads=1, dataset_name="demo")
    from t2s_bench.backends import get_backend

    llama = get_backend("llama-cpp", model=tiny_model.gguf_path, n_ctx=512, n_threads=1, parallel=1)
    try:  # the backend itself, called directly
        with pytest.raises(ValueError, match="no beam search"):
            llama.generate([GenerationRequest(MESSAGES[0], max_tokens=4, num_beams=2)])
    finally:
        llama.close()
