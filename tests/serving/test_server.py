"""`t2s-bench serve`'s app over real HTTP on loopback: generation with the tiny model, the validation
layer's refusals, auth, body limits, bad requests, and read-only execution (database files unchanged)."""

from __future__ import annotations

import hashlib
import json

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from t2s_bench.datasets import load_dataset  # noqa: E402
from t2s_bench.serving.app import create_app  # noqa: E402
from t2s_bench.serving.launch import serve_in_thread as running_server  # noqa: E402

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class FixedSQLSystem:
    """A test double for the post-generation checks: answers each question with the SQL written in it
    after 'SQL:' (a real model's output cannot be chosen)."""

    name = "fixed"

    def predict(self, tasks):
        from t2s_bench.records import Prediction

        return [Prediction(t.example.index, t.example.db_id, t.example.question.split("SQL:", 1)[-1].strip())
                for t in tasks]

    def config(self) -> dict:
        return {"system": "fixed"}


def sha256s(paths) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.fixture(scope="module")
def tiny_server(tiny_model):
    """zero-shot on the tiny GGUF through llama.cpp, demo databases, with a token."""
    options = {"model": str(tiny_model.gguf_path), "backend": "llama-cpp", "n_ctx": 1024, "max_new_tokens": 24}
    app = create_app("zero-shot", system_options=options, datasets=["demo"], token=TOKEN, max_body_bytes=20_000)
    with running_server(app) as url:
        yield url


@pytest.fixture(scope="module")
def fixed_server():
    app = create_app(FixedSQLSystem(), datasets=["demo"])
    with running_server(app) as url:
        yield url


def test_generation_with_the_tiny_model(tiny_server):
    r = httpx.post(f"{tiny_server}/generate_sql", headers=AUTH, timeout=120,
                   json={"question": "How many students are there?", "db_id": "school", "execute": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["sql"], str) and body["system"] == "zero-shot"
    assert body["completion_tokens"] > 0 and body["prompt_tokens"] > 50  # the schema is in the prompt
    assert 0.0 < body["confidence"] <= 1.0  # from llama.cpp's token log-probabilities
    assert body["generation_ms"] > 0
    assert isinstance(body["valid"], bool)
    if not body["valid"]:  # random weights: the output is not SQL, and that is reported, never run
        assert body["validation_errors"] and body["rows"] is None


def test_generation_from_schema_text(tiny_server):
    ddl = "CREATE TABLE pet (id INTEGER PRIMARY KEY, name TEXT, owner_id INT REFERENCES owner(id));" \
          "CREATE TABLE owner (id INTEGER PRIMARY KEY, name TEXT);"
    r = httpx.post(f"{tiny_server}/generate_sql", headers=AUTH, timeout=120,
                   json={"question": "Names of pets?", "schema": ddl})
    assert r.status_code == 200, r.text
    assert r.json()["prompt_tokens"] > 20


def test_concurrent_requests_share_the_model(tiny_server):
    import concurrent.futures as cf

    def ask(i):
        return httpx.post(f"{tiny_server}/generate_sql", headers=AUTH, timeout=120,
                          json={"question": f"List {i} courses", "db_id": "school"}).status_code

    with cf.ThreadPoolExecutor(6) as pool:
        assert list(pool.map(ask, range(6))) == [200] * 6


def test_token_is_required(tiny_server):
    assert httpx.get(f"{tiny_server}/health").status_code == 200  # liveness stays open
    r = httpx.get(f"{tiny_server}/databases")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{tiny_server}/databases", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = httpx.post(f"{tiny_server}/execute", json={"db_id": "school", "sql": "SELECT 1"})
    assert r.status_code == 401
    r = httpx.get(f"{tiny_server}/databases", headers=AUTH)
    assert r.status_code == 200 and {d["db_id"] for d in r.json()} == {"school", "store", "flights"}


def test_oversized_body_is_413(tiny_server):
    r = httpx.post(f"{tiny_server}/generate_sql", headers=AUTH,
                   json={"question": "x", "schema": "CREATE TABLE t (a INT);" * 2000})
    assert r.status_code == 413 and "larger than 20000 bytes" in r.json()["detail"]


def test_bad_requests_get_clear_4xx(tiny_server):
    post = lambda path, body: httpx.post(f"{tiny_server}{path}", headers=AUTH, json=body, timeout=30)
    r = post("/generate_sql", {"db_id": "school"})
    assert r.status_code == 422 and "question: Field required" in r.json()["detail"]
    r = post("/generate_sql", {"question": "How many?", "db_id": "no_such_db"})
    assert r.status_code == 404 and "unknown db_id 'no_such_db'" in r.json()["detail"]
    r = post("/generate_sql", {"question": "How many?", "schema": "CREATE TABLE (oops"})
    assert r.status_code == 422 and "schema text" in r.json()["detail"]
    r = post("/generate_sql", {"question": "How many?", "schema": "DROP TABLE x"})
    assert r.status_code == 422 and "only CREATE TABLE" in r.json()["detail"]
    r = post("/generate_sql", {"question": "How many?"})
    assert r.status_code == 422 and "exactly one of db_id or schema" in r.json()["detail"]
    r = post("/generate_sql", {"question": "How many?", "db_id": "school", "system": "rag"})
    assert r.status_code == 400 and "not loaded" in r.json()["detail"]
    assert httpx.get(f"{tiny_server}/databases/nope/schema", headers=AUTH).status_code == 404


def test_execute_refusals(tiny_server):
    post = lambda sql: httpx.post(f"{tiny_server}/execute", headers=AUTH, json={"db_id": "school", "sql": sql})
    r = post("DROP TABLE student")
    assert r.status_code == 400 and "DROP TABLE is not allowed" in r.json()["detail"]
    r = post("SELECT 1; SELECT 2")
    assert r.status_code == 400 and "exactly one statement" in r.json()["detail"]
    r = post("SELECT first_nme FROM student")
    assert r.status_code == 400
    issue = r.json()["validation_errors"][0]
    assert issue["code"] == "unknown_column" and issue["name"] == "first_nme" and issue["suggestions"][0] == "first_name"
    assert "did you mean 'first_name'" in r.json()["detail"]
    r = post("SELECT * FROM studnts")
    assert r.status_code == 400 and r.json()["validation_errors"][0]["suggestions"] == ["student"]
    for sql in ("PRAGMA table_info(student)", "ATTACH DATABASE '/tmp/x.db' AS x", "INSERT INTO student VALUES (1)",
                "CREATE TABLE x (a)", "SELECT load_extension('x')"):
        r = post(sql)
        assert r.status_code == 400 and "not allowed" in r.json()["detail"], sql


def test_execute_returns_rows_with_a_cap(tiny_server):
    r = httpx.post(f"{tiny_server}/execute", headers=AUTH,
                   json={"db_id": "school", "sql": "SELECT first_name, age FROM student ORDER BY student_id", "max_rows": 3})
    body = r.json()
    assert r.status_code == 200 and body["ok"] and body["columns"] == ["first_name", "age"]
    assert len(body["rows"]) == 3 and body["truncated"] and "truncated to 3 rows" in body["warnings"][0]
    # a valid query that fails at run time: 200 with the error class
    r = httpx.post(f"{tiny_server}/execute", headers=AUTH,
                   json={"db_id": "school", "sql": "SELECT nosuch_fn(age) FROM student"})
    assert r.status_code == 200 and not r.json()["ok"] and r.json()["error_class"] == "runtime_error"


def test_hostile_execute_leaves_databases_unchanged(tiny_server):
    demo = load_dataset("demo")
    files = [demo.db_path(db) for db in ("school", "store", "flights")]
    before = sha256s(files)
    hostile = ["DROP TABLE student", "DELETE FROM student", "UPDATE student SET age = 0",
               "SELECT 1; DROP TABLE student", "PRAGMA writable_schema = 1", "VACUUM", "ATTACH 'x.db' AS x",
               "WITH x AS (SELECT 1) DELETE FROM student", "REPLACE INTO student (student_id) VALUES (1)",
               "SELECT * FROM student; DELETE FROM student", "CREATE TEMP TABLE t AS SELECT 1", "BEGIN; DROP TABLE course"]
    for sql in hostile:
        for db in ("school", "store"):
            r = httpx.post(f"{tiny_server}/execute", headers=AUTH, json={"db_id": db, "sql": sql})
            assert r.status_code == 400, (sql, r.text)
    assert sha256s(files) == before


def test_schema_and_systems_endpoints(tiny_server):
    r = httpx.get(f"{tiny_server}/databases/school/schema", headers=AUTH)
    assert r.status_code == 200 and "student" in r.json()["schema"]["table_names_original"]
    r = httpx.get(f"{tiny_server}/systems", headers=AUTH)
    body = r.json()
    assert body["default"] == "zero-shot" and "rag" in body["registered"]
    assert body["loaded"]["zero-shot"]["backend"]["backend"] == "llama-cpp" or "llama-cpp" in json.dumps(body["loaded"])
    r = httpx.get(f"{tiny_server}/openapi.json")
    assert r.status_code == 200 and "/generate_sql" in r.json()["paths"]


def test_generated_sql_is_validated(fixed_server):
    ask = lambda sql, **kw: httpx.post(f"{fixed_server}/generate_sql", json={"question": f"q SQL: {sql}", **kw})
    r = ask("DROP TABLE student", db_id="school")
    assert r.status_code == 422 and "generated SQL refused: DROP TABLE" in r.json()["detail"]
    assert r.json()["sql"] == "DROP TABLE student"
    r = ask("SELECT first_nme FROM student", db_id="school", execute=True)
    body = r.json()
    assert r.status_code == 200 and not body["valid"] and body["rows"] is None
    assert body["validation_errors"][0]["suggestions"][0] == "first_name"
    assert body["confidence"] is None  # no backend, no log-probabilities
    r = ask("SELECT count(*) FROM student", db_id="school", execute=True)
    body = r.json()
    assert body["valid"] and body["rows"] == [[40]] and body["execution_time_ms"] >= 0
    r = ask("SELECT nosuch(1) FROM student", db_id="school", execute=True)
    assert r.json()["error_class"] == "runtime_error" and "no such function" in r.json()["execution_error"]


def test_validate_endpoint_with_schema_object(fixed_server):
    r = httpx.post(f"{fixed_server}/validate",
                   json={"sql": "SELECT nam FROM pet", "schema": {"tables": {"pet": ["id", "name"]}}})
    assert r.status_code == 200 and not r.json()["valid"] and r.json()["issues"][0]["suggestions"] == ["name"]
