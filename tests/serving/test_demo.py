"""The Streamlit demo driven by Streamlit's AppTest (in-process, the tiny model) and, marked `model`,
with the real Qwen2.5-Coder-0.5B GGUF: select a database, ask, execute, see rows; failures show their class."""

from __future__ import annotations

import importlib.util
import json

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from t2s_bench.serving.client import DEMO_CONFIG_ENV  # noqa: E402

SCRIPT = importlib.util.find_spec("t2s_bench.serving.demo_app").origin


def start(monkeypatch, model_path, **options) -> AppTest:
    config = {"system": "zero-shot", "datasets": ["demo"],
              "system_options": {"model": str(model_path), "backend": "llama-cpp", "n_ctx": 2048, **options}}
    monkeypatch.setenv(DEMO_CONFIG_ENV, json.dumps(config))
    at = AppTest.from_file(SCRIPT, default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    return at


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def errors(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


def test_demo_ask_execute_and_errors(monkeypatch, tiny_model):
    at = start(monkeypatch, tiny_model.gguf_path, max_new_tokens=16)
    assert at.title[0].value == "Text to SQL"
    at.selectbox(key="db_choice").set_value("school").run()
    assert any("student" in e.label for e in at.expander)  # the schema viewer lists school's tables
    at.selectbox(key="sample_school").set_value(at.selectbox(key="sample_school").options[1]).run()
    assert at.text_area(key="question").value  # a sample question filled the question box
    button(at, "Generate SQL").click().run()
    assert not at.exception, at.exception
    assert at.subheader[0].value == "Generated SQL" and len(at.code) == 1
    assert at.metric[0].label == "Confidence" and at.metric[0].value.endswith("%")
    assert at.success or at.error  # the validation verdict is shown either way
    # execute: rows
    at.text_area(key="sql_editor").input("SELECT first_name, age FROM student ORDER BY age LIMIT 4").run()
    button(at, "Execute").click().run()
    assert not at.exception and "Refused" not in errors(at), errors(at)
    frame = at.main.dataframe[-1].value
    assert list(frame.columns) == ["first_name", "age"] and len(frame) == 4
    # a valid query that fails on the database: its error class and reason
    at.text_area(key="sql_editor").input("SELECT nosuch_fn(age) FROM student").run()
    button(at, "Execute").click().run()
    assert "runtime_error" in errors(at) and "no such function" in errors(at)
    # refused by the validation layer, with the suggestion
    at.text_area(key="sql_editor").input("SELECT first_nme FROM student").run()
    button(at, "Execute").click().run()
    assert "Refused" in errors(at) and "first_name" in errors(at)
    at.text_area(key="sql_editor").input("DROP TABLE student").run()
    button(at, "Execute").click().run()
    assert "DROP TABLE is not allowed" in errors(at)
    assert not at.exception


@pytest.mark.model
def test_demo_with_the_real_model(monkeypatch, qwen_gguf):
    at = start(monkeypatch, qwen_gguf)
    at.selectbox(key="db_choice").set_value("school").run()
    at.text_area(key="question").input("How many students are there?").run()
    button(at, "Generate SQL").click().run()
    assert "count" in at.code[0].value.lower() and at.success, errors(at)
    button(at, "Execute").click().run()
    frame = at.main.dataframe[-1].value
    assert frame.shape == (1, 1) and int(frame.iloc[0, 0]) == 40
