"""Prediction stages of a prompted system: DAIL-style skeleton re-ranking with a zero-shot draft,
and execution-guided repair. A scripted backend stands in for the model so each stage's logic is
checked exactly; the databases are the real demo SQLite files."""

from __future__ import annotations

import hashlib

import pytest

from t2s_bench.backends.base import Backend, Generation
from t2s_bench.datasets import load_dataset
from t2s_bench.sql.skeleton import skeleton_similarity, sql_skeleton
from t2s_bench.systems import Task
from t2s_bench.systems.builtin import PoolSource
from t2s_bench.systems.prompted import PromptedSystem
from t2s_bench.systems.repair import execution_error
from t2s_bench.systems.selectors import rerank_by_skeleton


class ScriptedBackend(Backend):
    """Answers each request with `answer(messages)`; records every batch it was sent."""

    name = "scripted"
    context_window = 8192

    def __init__(self, answer):
        self.answer, self.batches = answer, []

    def generate(self, requests):
        self.batches.append([r.messages for r in requests])
        return [Generation(self.answer(r.messages), 10, 5, 0.5, "stop") for r in requests]

    def count_tokens(self, messages):
        return sum(len(m["content"].split()) for m in messages)

    def config(self):
        return {"backend": "scripted"}


@pytest.fixture(scope="module")
def demo():
    return load_dataset("demo")


def _tasks(demo, indices):
    return [Task(demo.examples[i], demo.schema(demo.examples[i].db_id), demo.db_path(demo.examples[i].db_id))
            for i in indices]


# ---------------------------------------------------------------- skeletons

def test_skeleton_blanks_names_and_values_but_keeps_shape():
    sk = sql_skeleton("SELECT T1.name, count(*) FROM singer AS T1 WHERE T1.age > 30 GROUP BY T1.name;")
    assert " ".join(sk) == "select _ , count ( * ) from _ as _ where _ > _ group by _"
    assert skeleton_similarity("SELECT a FROM t WHERE b = 1", "SELECT x FROM y WHERE z = 'q'") == 1.0
    assert skeleton_similarity("SELECT a FROM t", "SELECT count(*) FROM t GROUP BY a") < 0.5
    assert sql_skeleton("SELECT 'unterminated") == () and skeleton_similarity("", "SELECT 1") == 0.0


def test_rerank_prefers_examples_shaped_like_the_draft(demo):
    ranked = demo.examples[:10]  # pretend: best first by question similarity
    draft = "SELECT dept, count(*) FROM staff GROUP BY dept"  # the shape of example 7
    picks = rerank_by_skeleton(ranked, draft, 2)
    assert picks[-1].index == 7  # the closest in shape, nearest the question
    assert len(picks) == 2 and all(skeleton_similarity(draft, e.query) >= 0.7 for e in picks[-1:])
    assert [e.index for e in rerank_by_skeleton(ranked, "", 3)] == [2, 1, 0]  # no draft: question order


# ---------------------------------------------------------------- draft stage

def test_skeleton_rerank_drafts_zero_shot_first_and_records_it(demo):
    draft_sql = "SELECT count(*) FROM student"

    def answer(messages):
        return draft_sql if len(messages) == 2 else "SELECT count(*) FROM student"

    backend = ScriptedBackend(answer)
    source = PoolSource(demo, "masked", skeleton=True)
    system = PromptedSystem("few-shot", backend, template="v2.1", k=2, examples=source)
    tasks = _tasks(demo, [0, 14])
    preds = system.predict(tasks)
    # two batched calls: all drafts (no examples), then all answers (2 example turns each)
    assert [len(b) for b in backend.batches] == [2, 2]
    assert all(len(m) == 2 for m in backend.batches[0]) and all(len(m) == 6 for m in backend.batches[1])
    for pred in preds:
        assert pred.trace[0]["stage"] == "draft" and pred.trace[0]["sql"] == draft_sql
        assert pred.prompt_tokens == 20 and pred.latency_s == 1.0  # both generations counted
    shots = source.examples_for(tasks[0], 2, draft=draft_sql)
    assert all(e.db_id != tasks[0].example.db_id for e in shots)
    assert skeleton_similarity(draft_sql, shots[-1].query) == 1.0
    assert system.config()["examples"]["skeleton_rerank"]["threshold"] == 0.7


# ---------------------------------------------------------------- repair stage

def test_repair_asks_again_with_sqlites_error_only_for_failing_queries(demo):
    def answer(messages):
        if "fails on this database" in messages[-1]["content"]:
            return "SELECT count(*) FROM student"
        if "How many students" in messages[-1]["content"]:
            return "SELECT count(*) FROM pupils"  # no such table
        return "SELECT title FROM course WHERE credits = 4"

    backend = ScriptedBackend(answer)
    system = PromptedSystem("zero-shot", backend, repair=1)
    preds = system.predict(_tasks(demo, [0, 1]))
    assert [len(b) for b in backend.batches] == [2, 1]  # only the failing query goes back
    repaired, untouched = preds
    assert repaired.sql == "SELECT count(*) FROM student" and untouched.trace == []
    assert repaired.trace == [{"stage": "answer", "sql": "SELECT count(*) FROM pupils",
                               "raw_output": "SELECT count(*) FROM pupils", "error": "no such table: pupils"}]
    follow_up = repaired.prompt[-1]["content"]
    assert "no such table: pupils" in follow_up and repaired.prompt[-2]["role"] == "assistant"
    assert repaired.prompt_tokens == 20 and repaired.completion_tokens == 10
    assert system.config()["repair"]["rounds"] == 1 and len(system.config()["repair"]["template"]["sha256"]) == 64


def test_repair_keeps_the_first_answer_when_no_retry_runs(demo):
    backend = ScriptedBackend(lambda m: "I cannot help." if "fails" in m[-1]["content"] else "SELECT nope FROM student")
    (pred,) = PromptedSystem("zero-shot", backend, repair=2).predict(_tasks(demo, [0]))
    assert pred.sql == "SELECT nope FROM student" and len(backend.batches) == 3  # two rounds tried
    assert [t["stage"] for t in pred.trace] == ["repair", "repair"] and pred.prompt_tokens == 30
    # the second round continues the conversation: both failed answers and both errors are in it
    second = backend.batches[2][0]
    assert [m["role"] for m in second[-4:]] == ["assistant", "user", "assistant", "user"]
    assert "no such column: nope" in second[-3]["content"]


def test_second_round_repair_succeeds_and_keeps_the_history(demo):
    replies = iter(["SELECT nope FROM student", "SELECT still_nope FROM student", "SELECT count(*) FROM student"])
    backend = ScriptedBackend(lambda m: next(replies))
    (pred,) = PromptedSystem("zero-shot", backend, repair=3).predict(_tasks(demo, [0]))
    assert pred.sql == "SELECT count(*) FROM student" and len(backend.batches) == 3
    assert [(t["stage"], t["error"]) for t in pred.trace] == [
        ("answer", "no such column: nope"), ("repair", "no such column: still_nope")]
    assert pred.prompt_tokens == 30 and pred.completion_tokens == 15


def test_execution_check_never_writes_to_the_database(demo):
    db = demo.db_path("school")
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    assert execution_error("DROP TABLE student", db)
    assert execution_error("SELECT count(*) FROM student", db) is None
    assert execution_error("", db) == "the answer contains no SQL query"
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_cli_flags_reach_the_system_options():
    import argparse

    from t2s_bench.cli import run as run_cli

    parser = argparse.ArgumentParser()
    run_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["run", "--system", "rag", "--repair", "1", "--skeleton-rerank"])
    cfg = run_cli.build_run_config(args)
    assert cfg.system_options["repair"] == 1 and cfg.system_options["skeleton_rerank"] is True


# ---------------------------------------------------------------- execution voting

def test_execution_vote_picks_the_largest_group_of_equal_results(demo):
    from t2s_bench.systems.vote import execution_vote

    db = demo.db_path("school")
    sqls = ["SELECT count(*) FROM teacher",  # alone
            "SELECT count(*) FROM student",
            "SELECT count(student_id) FROM student",  # same result as the one above
            "SELECT nope FROM student"]  # fails: never counted
    chosen, groups = execution_vote(sqls, db)
    assert chosen == 1 and groups == [[1, 2], [0]]
    assert execution_vote(["SELECT 1", "SELECT 2"], db)[0] == 0  # a tie goes to the first member
    assert execution_vote(["SELECT nope", "", "SELECT x FROM y"], db) == (0, [])  # none runs: first member
    # column order and row order do not split a group (the scorer's result equality)
    chosen, groups = execution_vote(["SELECT name, salary FROM teacher ORDER BY salary",
                                     "SELECT salary, name FROM teacher ORDER BY name",
                                     "SELECT name FROM teacher"], db)
    assert groups[0] == [0, 1]


def _member_run(root, name, sqls: dict[int, str]):
    import json

    run = root / name
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config_hash": name, "run": {"system": name}}))
    with open(run / "predictions.jsonl", "w") as f:
        for index, sql in sqls.items():
            f.write(json.dumps({"index": index, "db_id": "school", "sql": sql, "prompt_tokens": 3,
                                "completion_tokens": 2, "latency_s": 0.1}) + "\n")
    return run


def test_vote_system_runs_through_the_runner_and_records_each_member(demo, tmp_path):
    import json

    from t2s_bench.runner import RunConfig, run

    right, wrong = demo.examples[0].query, "SELECT count(*) FROM teacher"
    a = _member_run(tmp_path, "a", {0: wrong, 1: demo.examples[1].query})
    b = _member_run(tmp_path, "b", {0: right, 1: "SELECT nope"})
    c = _member_run(tmp_path, "c", {0: right})  # no prediction for example 1
    out = run(RunConfig(system="vote", dataset="demo", limit=2, progress=False, out=str(tmp_path / "vote"),
                        system_options={"members": [str(a), str(b), str(c)]}))
    preds = {p["index"]: p for p in map(json.loads, (out / "predictions.jsonl").read_text().splitlines())}
    assert preds[0]["sql"] == right and preds[0]["trace"][-1]["groups"] == [[1, 2], [0]]
    assert preds[1]["sql"] == demo.examples[1].query and preds[1]["prompt_tokens"] == 6
    assert preds[1]["trace"][2]["error"] == "no prediction in this run"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["levels"]["all"]["n_exec_correct"] == 2  # both votes chose a right answer
    config = json.loads((out / "config.json").read_text())
    assert [m["config_hash"] for m in config["system"]["members"]] == ["a", "b", "c"]


def test_vote_needs_run_directories(tmp_path):
    from t2s_bench.systems import get_system

    with pytest.raises(ValueError, match="at least two"):
        get_system("vote", members=[str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        get_system("vote", members=[str(tmp_path), str(tmp_path)])
    with pytest.raises(ValueError, match="does not take the option k; its options: dataset_name, members"):
        get_system("vote", members=[str(tmp_path)] * 2, k=3)


def test_few_shot_votes_over_disjoint_example_sets(demo):
    replies = iter(["SELECT count(*) FROM teacher", "SELECT count(*) FROM student", "SELECT count(student_id) FROM student"])
    backend = ScriptedBackend(lambda m: next(replies))
    system = PromptedSystem("few-shot", backend, template="v2.1", k=2, examples=PoolSource(demo, "masked"), votes=3)
    (pred,) = system.predict(_tasks(demo, [0]))
    (batch,) = backend.batches  # all three example sets in one batched call
    shown = [[m["content"] for m in messages[1:-1:2]] for messages in batch]
    assert len(shown) == 3 and all(len(s) == 2 for s in shown)
    assert len({q for s in shown for q in s}) == 6  # disjoint sets
    ranked = PoolSource(demo, "masked").examples_for(_tasks(demo, [0])[0], 2)
    assert all(e.question in "".join(shown[0]) for e in ranked)  # the best set first
    assert pred.sql == "SELECT count(*) FROM student" and pred.trace[-1] == {"stage": "vote", "groups": [[1, 2], [0]], "chosen": 1}
    assert pred.prompt_tokens == 30 and system.config()["votes"]["example_sets"] == 3
    with pytest.raises(ValueError, match="needs few-shot examples"):
        PromptedSystem("zero-shot", backend, votes=3)


def test_repair_v1_1_shows_the_columns_of_the_tables_the_query_uses(demo):
    backend = ScriptedBackend(lambda m: "SELECT count(*) FROM student" if "fails" in m[-1]["content"]
                              else "SELECT T1.nope FROM student AS T1 JOIN course AS T2 ON T1.x = T2.y")
    system = PromptedSystem("zero-shot", backend, repair=1, repair_template="repair-v1.1")
    (pred,) = system.predict(_tasks(demo, [0]))
    follow_up = pred.prompt[-1]["content"]
    assert pred.sql == "SELECT count(*) FROM student"
    assert "student(" in follow_up and "course(" in follow_up and "teacher(" not in follow_up
    assert system.config()["repair"]["template"]["version"] == "repair-v1.1"
    # a query naming no existing table gets every table of the database
    backend2 = ScriptedBackend(lambda m: "SELECT 1" if "fails" in m[-1]["content"] else "SELECT a FROM pupils")
    (pred2,) = PromptedSystem("zero-shot", backend2, repair=1, repair_template="repair-v1.1").predict(_tasks(demo, [0]))
    assert all(f"{t.name}(" in pred2.prompt[-1]["content"] for t in demo.schema("school").tables)
