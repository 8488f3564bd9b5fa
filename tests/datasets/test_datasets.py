"""datasets.check and datasets.stats on the demo data, on broken data, and on Spider."""

import json

import pytest

from t2s_bench import paths
from t2s_bench.datasets import Dataset, Example, load_dataset
from t2s_bench.datasets.check import check_dataset, database_overlap
from t2s_bench.datasets.demo import load_demo
from t2s_bench.datasets.stats import dataset_stats, write_stats


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return load_demo(tmp_path_factory.mktemp("cache"))


def _variant(demo, examples, name="broken"):
    return Dataset(name, examples, dict(demo.schemas), demo.db_dir)


def test_check_demo_is_clean(demo):
    report = check_dataset(demo, workers=1)
    assert report.ok and report.n_executed == len(demo) and not report.failures
    assert report.missing_databases == {} and report.n_empty_results == 0
    assert "OK" in report.to_text()


def test_check_reports_failures_missing_databases_and_empty_results(demo):
    examples = [
        Example(0, "school", "q", "SELECT count(*) FROM student"),
        Example(1, "school", "q", "SELECT nope FROM student"),
        Example(2, "store", "q", "SELECT name FROM product WHERE price < 0"),
        Example(3, "atlantis", "q", "SELECT 1"),
        Example(4, "atlantis", "q", "SELECT 2"),
    ]
    report = check_dataset(_variant(demo, examples), workers=1)
    assert not report.ok
    assert [f.index for f in report.failures] == [1]
    assert "nope" in report.failures[0].error
    assert report.missing_databases == {"atlantis": 2} and report.n_missing_examples == 2
    assert report.n_executed == 3 and report.n_empty_results == 1
    assert report.missing_schemas == ["atlantis"]
    data = json.loads(json.dumps(report.to_json()))
    assert data["n_failures"] == 1 and data["n_missing_examples"] == 2 and data["ok"] is False
    text = report.to_text()
    assert "atlantis (2)" in text and "FAIL #1" in text


def test_overlap_between_datasets(demo):
    school = demo.filter(db_ids=["school"])
    others = demo.filter(db_ids=["store", "flights"])
    assert database_overlap(school, others) == ([], [])
    assert database_overlap(school, demo)[0] == ["school"]
    report = check_dataset(school, workers=1, against=demo)
    assert report.shared_databases == ["school"] and not report.ok
    # the same schema under another name is caught too
    renamed = Dataset("renamed", [Example(0, "school_copy", "q", "SELECT 1")],
                      {"school_copy": demo.schema("school")}, demo.db_dir)
    assert database_overlap(renamed, school) == ([], [("school_copy", "school")])


def test_stats_demo(demo, tmp_path):
    stats = dataset_stats(demo)
    c = stats["counts"]
    assert (c["examples"], c["databases"], c["tables"]) == (len(demo), 3, 14)
    assert c["columns"] == sum(demo.schema(db).n_columns for db in ("school", "store", "flights"))
    assert c["queries_not_parsed"] == 0
    s = stats["sql_structure"]
    assert s["set_operations"] == {"EXCEPT": 3, "INTERSECT": 3, "UNION": 1}
    assert 0 < s["with_join"] < 1 and 0 < s["nested"] < 1
    assert stats["sql_length"]["tokens"]["min"] >= 4
    if stats["difficulty"] is not None:
        assert all(stats["difficulty"].get(level, 0) >= 8 for level in ("easy", "medium", "hard", "extra"))
    else:
        assert "omitted" in stats["difficulty_note"]
    md, js = write_stats([stats], tmp_path, "demo_dataset_stats", "Demo")
    assert md.read_text().startswith("# Demo") and "## demo" in md.read_text()
    assert json.loads(js.read_text())["counts"] == c


def test_stats_without_schema_or_database(tmp_path):
    ds = Dataset("ghost", [Example(0, "ghost", "q", "SELECT 1 FROM")], {}, tmp_path)
    stats = dataset_stats(ds)
    assert stats["counts"]["examples_missing_database"] == 1
    assert stats["counts"]["queries_not_parsed"] == 1
    assert stats["databases"][0]["tables"] is None


def _spider(name):
    if paths.spider_dir() is None:
        pytest.skip("Spider not found (set T2S_SPIDER_DIR)")
    return load_dataset(name)


@pytest.mark.spider
def test_check_spider_dev_and_train():
    dev, train = _spider("spider-dev"), _spider("spider-train")
    report = check_dataset(dev, workers=2, against=train)
    assert report.n_examples == 1034
    # counted from the data: whatever databases are absent in this copy are listed, never dropped
    assert report.n_missing_examples == sum(dev.missing_databases().values())
    assert report.n_executed + report.n_missing_examples == 1034
    if "wta_1" in report.missing_databases:
        assert report.missing_databases["wta_1"] == 62
    assert report.failures == []
    assert report.shared_databases == [] and report.same_schema_pairs == []
    train_report = check_dataset(train, workers=2)
    failing_dbs = sorted(f.db_id for f in train_report.failures)
    assert failing_dbs == ["assets_maintenance", "document_management", "document_management"]


@pytest.mark.spider
def test_stats_spider_dev():
    stats = dataset_stats(_spider("spider-dev"))
    assert stats["counts"]["examples"] == 1034 and stats["counts"]["databases"] == 20
    assert stats["counts"]["queries_not_parsed"] == 0
    if stats["difficulty"] is not None:
        # the official Spider dev split: 248 easy, 446 medium, 174 hard, 166 extra
        assert stats["difficulty"] == {"easy": 248, "medium": 446, "hard": 174, "extra": 166}
