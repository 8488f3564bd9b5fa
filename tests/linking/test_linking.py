"""Schema linking and value retrieval: gold needs from SQL, pruning with join paths, the value index
on real SQLite files, the schema text shown to the model, a prompted system and a run with a
pruned schema (linking recall in the score records), and the measurement on the demo data."""

from __future__ import annotations

import json
import sqlite3

import pytest

from t2s_bench.backends.base import Backend, Generation
from t2s_bench.datasets import load_dataset
from t2s_bench.datasets.schema import Column, ForeignKey, Schema, Table
from t2s_bench.linking import LinkScores, get_linker, prune_schema
from t2s_bench.linking.gold import gold_needs
from t2s_bench.linking.prune import connect
from t2s_bench.linking.values import ValueIndex, value_index, values_by_column
from t2s_bench.prompting import SchemaOptions, schema_for, serialize_schema
from t2s_bench.systems import Task


def _schema() -> Schema:
    """country <- city <- person -> job_type (a 2-column lookup table); hobby is unconnected."""
    def table(name, cols, pk):
        return Table(name, name.replace("_", " "), [Column(name, c, c.replace("_", " "), t, 0) for c, t in cols], [pk])

    return Schema("toy", [
        table("country", [("country_id", "number"), ("name", "text"), ("continent", "text")], "country_id"),
        table("city", [("city_id", "number"), ("name", "text"), ("country_id", "number")], "city_id"),
        table("person", [("person_id", "number"), ("name", "text"), ("city_id", "number"), ("job_code", "text"),
                         ("age", "number")], "person_id"),
        table("job_type", [("job_code", "text"), ("description", "text")], "job_code"),
        table("hobby", [("hobby_id", "number"), ("title", "text")], "hobby_id"),
    ], [ForeignKey("city", "country_id", "country", "country_id"), ForeignKey("person", "city_id", "city", "city_id"),
        ForeignKey("person", "job_code", "job_type", "job_code")])


@pytest.fixture(scope="module")
def demo():
    return load_dataset("demo")


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("T2S_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ---------------------------------------------------------------- gold needs

def test_gold_needs_resolves_aliases_unqualified_columns_and_string_literals():
    sql = ("SELECT T1.name FROM person AS T1 JOIN city AS T2 ON T1.city_id = T2.city_id "
           "WHERE T2.name = 'Paris' AND job_code IN ('DEV', 'OPS') AND age > 30 AND T1.name = \"Ann\"")
    needs = gold_needs(sql, _schema())
    assert needs.tables == {"person", "city"}
    assert needs.columns == {"person.name", "person.city_id", "city.city_id", "city.name", "person.job_code", "person.age"}
    assert set(needs.comparisons) == {("city", "name", "Paris"), ("person", "job_code", "DEV"),
                                      ("person", "job_code", "OPS"), ("person", "name", "Ann")}
    assert gold_needs("SELEC nothing FROM", _schema()) is None


# ---------------------------------------------------------------- pruning

def test_pruning_adds_the_join_path_the_lookup_tables_and_keeps_keys():
    schema = _schema()
    scores = LinkScores(tables={"country": 0.9, "person": 0.8, "city": 0.1, "job_type": 0.05, "hobby": 0.2},
                        columns={"person.age": 0.9, "person.name": 0.1, "country.name": 0.8})
    pruned = prune_schema(schema, scores, k=2, margin=None)
    assert pruned.tables == ["country", "city", "person", "job_type"]  # city joins them; job_type is a lookup
    assert pruned.join_tables == ["city", "job_type"] and not pruned.keeps_table("hobby")
    assert prune_schema(schema, scores, k=2, margin=None, lookups=False).tables == ["country", "city", "person"]
    narrow = prune_schema(schema, scores, k=2, margin=None, columns_per_table=1)
    # the best column, the primary key and the foreign keys among kept tables
    assert narrow.columns["person"] == ["person_id", "city_id", "job_code", "age"]
    assert narrow.keeps_column("country", "name") and not narrow.keeps_column("person", "name")
    # a margin adds near-ties; unconnected tables stay unconnected
    assert "hobby" in prune_schema(schema, scores, k=1, margin=0.75).tables
    assert connect(schema, ["hobby", "country"]) == ["country", "hobby"]


def test_pruned_ddl_shows_foreign_keys_among_kept_tables_and_values():
    schema = _schema()
    full = serialize_schema(schema, "ddl")
    assert "REFERENCES job_type(job_code)" in full and "-- values" not in full
    text = serialize_schema(schema, "ddl", tables=["person", "city"], values={("City", "Name"): ["Paris", "O'Hare"]})
    assert "CREATE TABLE country" not in text and "REFERENCES job_type" not in text
    assert "REFERENCES city(city_id)" in text
    assert "  name TEXT, -- values: 'Paris', 'O''Hare'" in text
    compact = serialize_schema(schema, "compact", tables=["city"], values={("city", "name"): ["Paris"]})
    assert compact.splitlines() == ["city(city_id, name, country_id)", "  -- values: 'Paris' (city.name)"]


# ---------------------------------------------------------------- values

@pytest.fixture()
def music_db(tmp_path):
    path = tmp_path / "music.sqlite"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INTEGER);
        INSERT INTO singer VALUES (1, 'Joe Sharp', 'Netherlands', 52), (2, 'Timbaland', 'United States', 32),
                                  (3, 'Justin Brown', 'France', 29), (4, 'Rose White', 'France', 41);
    """)
    con.commit()
    con.close()
    return path


def test_value_index_finds_exact_contained_and_fuzzy_mentions(music_db, cache_dir):
    schema = Schema.from_sqlite(music_db)
    index = value_index(music_db, schema)
    def shown(q):
        return values_by_column(index.search(q))
    assert shown("How many singers are from France?") == {("singer", "country"): ["France"]}
    assert shown("What is the age of Timbaland?")[("singer", "name")] == ["Timbaland"]
    assert shown("Songs by Sharp")[("singer", "name")] == ["Joe Sharp"]  # a rare word inside a value
    assert shown("singers from the Netherland")[("singer", "country")] == ["Netherlands"]  # a typo (rapidfuzz)
    assert shown("How old is the oldest singer?") == {}  # "singer" names a table: never a value hit
    # read once per database content: the cache holds the values, keyed by the file's hash
    assert len(list((cache_dir / "linking" / "values").glob("*.json.gz"))) == 1
    assert ValueIndex.build(music_db, schema).keys == index.keys


# ---------------------------------------------------------------- schema_for and the systems

def test_schema_for_prunes_and_shows_values_on_a_real_database(demo):
    ex = next(e for e in demo.examples if e.query.count("JOIN") == 1 and "airline" in e.question.lower())
    task = Task(ex, demo.schema(ex.db_id), demo.db_path(ex.db_id))
    view = schema_for(task, options={"schema": "pruned", "linker": "lexical", "k": 1, "margin": None})
    needs = gold_needs(ex.query, task.schema)
    assert all(any(t.lower() == g for t in view.tables) for g in needs.tables) or len(view.tables) < 4
    assert len(view.tables) < len(task.schema.tables)
    assert view.text == serialize_schema(task.schema, "ddl", tables=view.tables)
    full = schema_for(ex.question, task.schema, None)
    assert full.text == serialize_schema(task.schema, "ddl") and SchemaOptions().is_default
    with pytest.raises(ValueError, match="unknown schema mode"):
        SchemaOptions(schema="tiny")


class EchoGoldBackend(Backend):
    """Answers each question with a fixed SQL; records the prompts it was sent."""

    name, context_window = "echo", 8192

    def __init__(self):
        self.prompts = []

    def generate(self, requests):
        self.prompts += [r.messages for r in requests]
        return [Generation("SELECT count(*) FROM student", 10, 5, 0.1, "stop") for _ in requests]

    def count_tokens(self, messages):
        return sum(len(m["content"].split()) for m in messages)

    def config(self):
        return {"backend": "echo"}


def test_a_run_with_a_pruned_schema_records_linking_recall(demo, tmp_path, monkeypatch):
    from t2s_bench.runner import RunConfig, run
    from t2s_bench.systems.prompted import PromptedSystem

    backend = EchoGoldBackend()
    system = PromptedSystem("zero-shot", backend, schema="pruned", linker="lexical", values=True)
    assert system.config()["schema"]["tag"] == "pruned+values"
    out = run(RunConfig(dataset="demo", db_ids=["school"], limit=6, progress=False, out=str(tmp_path / "r")),
              system=system, dataset=demo)
    records = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert records and all(r["prompt_schema"]["tables"] for r in records)
    assert all(r["tables_linked"] in (True, False) for r in records)
    school_tables = len(demo.schema("school").tables)
    assert any(len(r["prompt_schema"]["tables"]) < school_tables for r in records)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["levels"]["all"]["tables_linked"] is not None
    # the full-schema system keeps its old prompt and config (no schema key), and no recall
    plain = PromptedSystem("zero-shot", backend)
    assert "schema" not in plain.config()
    msgs, _ = plain.build_prompt(Task(demo.examples[0], demo.schema("school"), demo.db_path("school")))
    assert serialize_schema(demo.schema("school"), "ddl") in msgs[0]["content"] + msgs[-1]["content"]


def test_the_systems_take_the_linking_options():
    from t2s_bench.registry import OptionError
    from t2s_bench.systems.builtin import PROMPT_OPTIONS

    assert {"schema", "linker", "link_k", "link_margin", "values"} <= set(PROMPT_OPTIONS)
    with pytest.raises((OptionError, ValueError)):
        get_linker("no-such-linker")


# ---------------------------------------------------------------- measurement

def test_linking_measurement_on_the_demo_data(demo, tmp_path):
    from t2s_bench.linking.measure import Variant, measure_linking, write_result

    result = measure_linking(demo, "lexical", [Variant(1), Variant(4), Variant(2, margin=0.3)],
                             count_tokens=(lambda t: len(t.split()), "words"))
    rows = {r["variant"]: r for r in result["rows"]}
    assert rows["k=4"]["table_recall"] >= rows["k=1"]["table_recall"]
    assert rows["k=1"]["tokens_saved"] > rows["k=4"]["tokens_saved"] >= 0
    assert 0.6 <= rows["k=2 margin=0.3"]["table_recall"] <= 1
    assert result["values"]["stored_in_database"] >= 1
    js, md = write_result(result, tmp_path / "linking-demo.json")
    assert json.loads(js.read_text())["rows"] and "| k=4 |" in md.read_text()


@pytest.mark.spider
def test_lexical_linking_recall_on_spider_dev():
    from t2s_bench import paths
    from t2s_bench.linking.measure import Variant, measure_linking

    if paths.spider_dir() is None:
        pytest.skip("Spider not found (set T2S_SPIDER_DIR)")
    result = measure_linking(load_dataset("spider-dev"), "lexical", [Variant(2, margin=0.3)], limit=200,
                             count_tokens=(lambda t: len(t.split()), "words"))
    assert result["rows"][0]["table_recall"] >= 0.9
    assert result["values"]["recall"] >= 0.85


@pytest.mark.model
def test_embedding_linker_ranks_the_named_table_first(demo):
    from t2s_bench.backends.catalog import model_cache_path

    if not model_cache_path("all-minilm-l6-v2").is_dir():
        pytest.skip("all-MiniLM-L6-v2 not fetched (t2s-bench models fetch all-minilm-l6-v2)")
    linker = get_linker("embedding")
    scores = linker.link("How many aircraft are there?", demo.schema("flights"))
    assert scores.ranked_tables()[0] == "aircraft"
    combined = get_linker("combined").link("List the teachers of the math department", demo.schema("school"))
    assert set(combined.ranked_tables()[:2]) == {"teacher", "department"}
