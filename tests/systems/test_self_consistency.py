"""Self-consistency: sampled answers + the greedy one, execution vote on real demo databases, log-probability ties."""

from __future__ import annotations

import pytest

from t2s_bench.backends import get_backend
from t2s_bench.backends.base import Generation, with_samples
from t2s_bench.datasets import load_dataset
from t2s_bench.records import Prediction, Task
from t2s_bench.systems.base import get_system
from t2s_bench.systems.self_consistency import vote_candidates
from t2s_bench.testing.chat_server import ChatServer


@pytest.fixture(scope="module")
def demo():
    return load_dataset("demo")


def _task(demo, index=0) -> Task:
    ex = demo.examples[index]
    return Task(ex, demo.schema(ex.db_id), demo.db_path(ex.db_id))


def _answer(sql: str, logprobs: list[float]) -> Generation:
    return Generation(sql, 10, len(logprobs), 0.1, "stop", token_logprobs=logprobs)


def _greedy(task, sql="SELECT count(*) FROM teacher"):
    return Prediction(task.example.index, task.example.db_id, sql, raw_output=sql, prompt=[{"role": "user", "content": "q"}],
                      prompt_tokens=10, completion_tokens=3, latency_s=0.2)


def test_majority_result_wins_over_the_greedy_answer(demo):
    task = _task(demo)  # "How many students are there?" on the school database
    sampled = with_samples([_answer("SELECT count(*) FROM student", [-0.9]),
                            _answer("SELECT COUNT(student_id) FROM student", [-1.2]),  # same result, other SQL
                            _answer("SELECT count(*) FROM course", [-0.1]),
                            _answer("SELECT nonsense FROM nowhere", [-0.01])])  # does not run
    pred = vote_candidates(_greedy(task), -0.05, sampled, task)
    assert pred.sql == "SELECT count(*) FROM student"  # the more probable member of the largest group
    vote = pred.trace[-1]
    assert vote["stage"] == "self-consistency" and vote["groups"][0] == [1, 2] and vote["chosen"] == 1
    stages = [e["stage"] for e in pred.trace[:-1]]
    assert stages == ["greedy", "sample 0", "sample 1", "sample 2", "sample 3"]
    assert pred.trace[0]["mean_logprob"] == -0.05
    assert pred.completion_tokens == 3 + 4 and pred.prompt_tokens == 20 and pred.latency_s == pytest.approx(0.6)


def test_a_tie_goes_to_the_most_probable_group(demo):
    task = _task(demo)
    sampled = with_samples([_answer("SELECT count(*) FROM student", [-0.5, -0.7]),
                            _answer("SELECT count(*) FROM course", [-0.2, -0.2])])
    # three groups of one: the course answer has the highest mean log-probability
    assert vote_candidates(_greedy(task), -0.9, sampled, task).sql == "SELECT count(*) FROM course"
    # without log-probabilities the earliest group (the greedy answer) wins the tie
    plain = with_samples([Generation("SELECT count(*) FROM student", 10, 2, 0.1),
                          Generation("SELECT count(*) FROM course", 10, 2, 0.1)])
    assert vote_candidates(_greedy(task), None, plain, task).sql == "SELECT count(*) FROM teacher"


def test_nothing_runs_keeps_the_greedy_answer(demo):
    task = _task(demo)
    sampled = with_samples([_answer("SELECT x FROM nowhere", [-0.1]), _answer("not sql", [-0.1])])
    pred = vote_candidates(_greedy(task, "SELECT also broken"), -1.0, sampled, task)
    assert pred.sql == "SELECT also broken" and pred.trace[-1]["groups"] == []


def _check_system_run(system, demo, samples: int):
    tasks = [_task(demo, i) for i in range(3)]
    preds = system.predict(tasks)
    again = system.predict(tasks)
    assert [p.sql for p in preds] == [p.sql for p in again]  # seeded: the same run twice
    for pred in preds:
        assert pred.error is None
        candidates = [e for e in pred.trace if e["stage"] == "greedy" or e["stage"].startswith("sample ")]
        assert len(candidates) == 1 + samples
        assert pred.sql in {e["sql"] for e in candidates}
        assert pred.trace[-1]["stage"] == "self-consistency"
        assert pred.completion_tokens >= sum(1 for _ in candidates)  # the samples' tokens are counted
    cfg = system.config()["self_consistency"]
    assert cfg["samples"] == samples and cfg["temperature"] > 0
    return preds


def test_self_consistency_system_with_transformers(tiny_model, demo):
    system = get_system("self-consistency", model=str(tiny_model.hf_dir), backend="transformers", samples=3,
                        max_new_tokens=8, dataset_name="demo")
    _check_system_run(system, demo, 3)
    assert system.name == "self-consistency"


def test_samples_option_of_a_prompted_system_with_llama_cpp(tiny_model, demo):
    pytest.importorskip("llama_cpp")
    system = get_system("zero-shot", model=str(tiny_model.gguf_path), backend="llama-cpp", samples=2,
                        max_new_tokens=6, n_ctx=1024, n_threads=1, dataset_name="demo")
    try:
        _check_system_run(system, demo, 2)
    finally:
        system.backend.close()


def test_self_consistency_through_an_openai_compatible_server(tiny_model, demo):
    pytest.importorskip("llama_cpp")
    llama = get_backend("llama-cpp", model=tiny_model.gguf_path, n_ctx=1024, n_threads=1, parallel=1)
    server = ChatServer(llama)
    try:
        system = get_system("self-consistency", model="tiny", base_url=server.url, samples=2, max_new_tokens=6,
                            concurrency=2, dataset_name="demo")
        preds = _check_system_run(system, demo, 2)
        sampled = [b for b in server.bodies if b["temperature"] > 0]
        assert len(sampled) == 2 * 3 * 2  # 3 questions x 2 samples, run twice
        assert len({b["seed"] for b in sampled}) == 6 and all(b["logprobs"] for b in server.bodies)
        scores = [e["mean_logprob"] for p in preds for e in p.trace if e["stage"].startswith("sample ")]
        assert all(s is not None and s <= 0 for s in scores)  # log-probabilities came back over HTTP
    finally:
        server.close()
        llama.close()
