import pytest

from t2s_bench.datasets import load_dataset
from t2s_bench.prompting import FewShotExample, load_template, serialize_schema
from t2s_bench.systems.selectors import ExampleSelector, mask_question


@pytest.fixture(scope="module")
def demo():
    return load_dataset("demo")


def test_template_renders_system_and_user(demo):
    ex = demo.examples[0]
    tpl = load_template("v1.0")
    assert tpl.version == "v1.0" and len(tpl.sha256) == 64
    msgs = tpl.render(schema="CREATE TABLE t (a NUMBER);", question=ex.question,
                      examples=[FewShotExample("How many?", "SELECT count(*) FROM t")])
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "CREATE TABLE t" in msgs[0]["content"]
    assert msgs[1]["content"].endswith(f"Question: {ex.question}\nSQL:")
    assert "SQL: SELECT count(*) FROM t" in msgs[1]["content"]


def test_unknown_template_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="available"):
        load_template("v9.9")


def test_schema_serialisers(demo):
    ex = demo.examples[0]
    schema = demo.schema(ex.db_id)
    ddl = serialize_schema(schema, "ddl")
    compact = serialize_schema(schema, "compact")
    for table in schema.tables:
        assert f"CREATE TABLE {table.name}" in ddl or f'CREATE TABLE "{table.name}"' in ddl
        assert compact.count(f"{table.name}(") == 1
    if schema.foreign_keys:
        assert "FOREIGN KEY" in ddl and "Foreign keys:" in compact
    with_rows = serialize_schema(schema, "compact", db_path=demo.db_path(ex.db_id), sample_rows=2)
    assert "rows of" in with_rows and len(with_rows) > len(compact)
    with pytest.raises(ValueError):
        serialize_schema(schema, "xml")


def test_schema_pruning_keeps_only_named_tables(demo):
    schema = demo.schema(demo.examples[0].db_id)
    first = schema.tables[0].name
    text = serialize_schema(schema, "compact", tables=[first])
    assert text.startswith(f"{first}(") and all(f"{t.name}(" not in text for t in schema.tables[1:])


def test_masking_replaces_schema_words_and_values(demo):
    schema = demo.schema(demo.examples[0].db_id)
    col = schema.tables[0].columns[1].natural_name.split()[0]
    masked = mask_question(f"Show the {col} of items priced above 30 named 'Bob'", schema)
    assert "<col>" in masked and masked.count("<val>") == 2 and "bob" not in masked


@pytest.mark.parametrize("method", ["random", "similarity", "masked"])
def test_selectors_never_use_the_evaluated_database(demo, method):
    sel = ExampleSelector(demo.examples, demo.schemas, method=method)
    for ex in demo.examples[:10]:
        picks = sel.select(ex, demo.schema(ex.db_id), 3)
        assert len(picks) == 3
        assert all(p.db_id != ex.db_id for p in picks)
    # deterministic
    ex = demo.examples[0]
    assert sel.select(ex, demo.schema(ex.db_id), 3) == sel.select(ex, demo.schema(ex.db_id), 3)


def test_similarity_finds_the_paraphrase(demo):
    pool = [e for e in demo.examples]
    target = pool[5]
    sel = ExampleSelector(pool, demo.schemas, method="similarity")
    from t2s_bench.datasets.spider import Example

    probe = Example(999, "elsewhere", target.question, "")
    assert sel.select(probe, demo.schema(target.db_id), 1)[0].index == target.index
