"""Systems: registry, prompt building under a context budget, few-shot turns, end-to-end on a real (tiny) GGUF."""

import json
from pathlib import Path

import pytest

from t2s_bench.datasets import load_dataset
from t2s_bench.runner import RunConfig, run
from t2s_bench.sql.parse import tables_used
from t2s_bench.systems import Task, get_system

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 't2s-bench[gguf]')")


@pytest.fixture(scope="module")
def demo():
    return load_dataset("demo")


def _task(demo, i=0):
    ex = demo.examples[i]
    return Task(ex, demo.schema(ex.db_id), demo.db_path(ex.db_id))


def test_unknown_system_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown system 'no-such-system'; known: (.*, )?few-shot, finetuned, (.*, )?oracle, rag, self-consistency, vote, zero-shot"):
        get_system("no-such-system")


def test_zero_shot_prompt_fits_and_records_config(tiny_model, demo):
    system = get_system("zero-shot", model=str(tiny_model.gguf_path), n_ctx=2048)
    messages, error = system.build_prompt(_task(demo))
    assert error is None and messages[0]["role"] == "system" and "CREATE TABLE" in messages[0]["content"]
    cfg = system.config()
    assert cfg["template"]["version"] == "v1.0" and len(cfg["template"]["sha256"]) == 64
    assert cfg["backend"]["backend"] == "llama-cpp"


@pytest.mark.parametrize("strategy", ["prune", "truncate", "drop"])
def test_context_overflow_strategies(tiny_model, demo, strategy):
    # a context window too small for the DDL schema forces the overflow path
    system = get_system("zero-shot", model=str(tiny_model.gguf_path), n_ctx=512, max_new_tokens=64,
                        sample_rows=3, overflow=strategy)
    task = _task(demo)
    budget = system.backend.context_window - system.max_new_tokens
    full = system._render(task, "ddl", [])
    assert system.backend.count_tokens(full) > budget, "the test needs a prompt that overflows"
    messages, error = system.build_prompt(task)
    if strategy == "drop":
        assert error and "exceeds" in error
        pred = system.predict([task])[0]
        assert pred.error == error and pred.sql == ""
    else:
        assert error is None and system.backend.count_tokens(messages) <= budget
        assert messages[-1]["content"].endswith("SQL:")  # the question always survives
        if strategy == "prune":
            assert "CREATE TABLE" not in messages[0]["content"]  # compact schema


def test_few_shot_examples_are_chat_turns_with_their_own_schema(tiny_model, demo):
    system = get_system("few-shot", model=str(tiny_model.gguf_path), n_ctx=4096, k=2, dataset_name="demo")
    task = _task(demo, 3)
    messages, error = system.build_prompt(task)
    assert error is None
    roles = [m["role"] for m in messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    for user, assistant in zip(messages[1:-1:2], messages[2:-1:2]):
        used = tables_used(assistant["content"])
        assert used and all(f"{t}(" in user["content"] for t in used)
    own_tables = {t.name for t in task.schema.tables}
    other = [e for e in system.examples.examples_for(task, 2)]
    assert all(e.db_id != task.example.db_id for e in other) and own_tables


def test_finetuned_needs_an_adapter_or_model():
    with pytest.raises(ValueError, match="--adapter"):
        get_system("finetuned")


def test_finetuned_adapter_with_missing_base_is_a_clear_error(tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "train_config.json").write_text(json.dumps({"config": {"base": "/elsewhere/base_hf", "template": "v1.0"}}))
    with pytest.raises(FileNotFoundError, match="--model"):
        get_system("finetuned", adapter=str(adapter))


@pytest.mark.parametrize("record", ["sidecar", "train_config"])
def test_finetuned_gguf_is_tested_with_its_training_prompt(tiny_model, tmp_path, record):
    """An exported GGUF carries its training prompt (`.export.json`, or the adapter folder's
    train_config.json for older exports); options given explicitly still win."""
    gguf = tmp_path / "model-q4_k_m.gguf"
    gguf.write_bytes(tiny_model.gguf_path.read_bytes())
    prompt = {"template": "v1.0", "schema_formats": ["compact"], "schema_options": {"schema": "pruned", "values": True}}
    if record == "sidecar":
        (tmp_path / "model-q4_k_m.export.json").write_text(json.dumps({"gguf": str(gguf), "prompt": prompt}))
    else:
        (tmp_path / "train_config.json").write_text(json.dumps({"config": prompt}))
    system = get_system("finetuned", model=str(gguf))
    assert system.schema_format == "compact"
    assert system.schema_options.schema == "pruned" and system.schema_options.values is True
    explicit = get_system("finetuned", model=str(gguf), schema="full")
    assert explicit.schema_options.schema == "full"
    plain = get_system("finetuned", model=str(tiny_model.gguf_path))  # a GGUF with no training record
    assert plain.schema_format == "ddl" and plain.schema_options.schema == "full"


def _adapter_folder(root: Path, base: str) -> Path:
    """An adapter folder as `t2s-bench train` leaves it, as far as the finetuned system reads it."""
    adapter = root / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "train_config.json").write_text(json.dumps({"config": {"base": base}}))
    return adapter


def test_finetuned_adapter_on_llama_cpp_needs_its_gguf_lora(tiny_model, tmp_path):
    adapter = _adapter_folder(tmp_path, str(tiny_model.gguf_path))
    with pytest.raises(FileNotFoundError, match="--lora-gguf"):
        get_system("finetuned", adapter=str(adapter), backend="llama-cpp")
    with pytest.raises(FileNotFoundError, match="LoRA adapter .* not found"):
        get_system("finetuned", model=str(tiny_model.gguf_path), backend_options={"lora_path": str(tmp_path / "no.gguf")})


def test_finetuned_adapter_goes_to_the_vllm_backend(tiny_model, tmp_path, monkeypatch):
    """--backend vllm: the adapter folder and its base reach the vLLM backend (recorded here in place of
    vllm.LLM, which needs a GPU; the GPU test in tests/backends runs the real one)."""
    from t2s_bench.backends import vllm_backend

    seen = {}

    def fake_init(self, model, **kwargs):
        seen.update(kwargs, model=model)
        raise RuntimeError("stop here")

    monkeypatch.setattr(vllm_backend.VLLMBackend, "__init__", fake_init)
    adapter = _adapter_folder(tmp_path, str(tiny_model.hf_dir))
    with pytest.raises(RuntimeError, match="stop here"):
        get_system("finetuned", adapter=str(adapter), backend="vllm")
    assert seen["adapter"] == str(adapter) and seen["model"] == str(tiny_model.hf_dir)


def test_zero_shot_end_to_end_on_the_tiny_gguf(tiny_model, tmp_path):
    out = run(RunConfig(system="zero-shot", dataset="demo", limit=6, out=str(tmp_path / "run"), progress=False,
                        system_options={"model": str(tiny_model.gguf_path), "max_new_tokens": 8}))
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 6 and all(p["prompt_tokens"] > 0 and p["completion_tokens"] > 0 for p in preds)
    records = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    # random weights write no valid SQL: every example gets an error class and a reason
    assert all(r["error_class"] and r["exec_match"] is False for r in records)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["throughput"]["n_predicted"] == 6


def test_rag_retrieves_from_other_databases_by_masked_question(tiny_model, demo):
    from t2s_bench.backends.catalog import resolve_model_offline

    if resolve_model_offline("all-minilm-l6-v2") is None:
        pytest.skip("all-MiniLM-L6-v2 not available locally (t2s-bench models fetch all-minilm-l6-v2)")
    system = get_system("rag", model=str(tiny_model.gguf_path), n_ctx=4096, k=2, dataset_name="demo")
    assert system.config()["examples"]["masked"] is True
    task = _task(demo, 5)
    picks = system.examples.examples_for(task, 2)
    assert len(picks) == 2 and all(p.db_id != task.example.db_id for p in picks)
    # a question identical to a pool question (on another database) is retrieved first
    from t2s_bench.datasets.spider import Example

    other = next(e for e in demo.examples if e.db_id != task.example.db_id)
    probe = Task(Example(999, task.example.db_id, other.question, ""), task.schema, task.db_path)
    assert system.examples.examples_for(probe, 1)[0].index == other.index


def test_seeded_sample_is_stable_and_respects_filters():
    from t2s_bench.runner import select_examples

    data = load_dataset("demo")
    a = select_examples(data, RunConfig(sample=10, sample_seed=3))
    b = select_examples(data, RunConfig(sample=10, sample_seed=3))
    c = select_examples(data, RunConfig(sample=10, sample_seed=4))
    assert [e.index for e in a.examples] == [e.index for e in b.examples] != [e.index for e in c.examples]
    db = data.examples[0].db_id
    d = select_examples(data, RunConfig(sample=5, db_ids=[db]))
    assert len(d) == 5 and {e.db_id for e in d.examples} == {db}
