"""Test suites: near-miss mutants, neighbour databases under the schema's keys, distillation, and
test-suite execution accuracy in the scorer, the CLI and the summary. A small suite of the demo
dataset is built once per module, on the fly (a few seconds)."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import pytest

from t2s_bench.cli import main
from t2s_bench.datasets import load_dataset
from t2s_bench.scoring import format_table, score_predictions, summarize
from t2s_bench.scoring.score import prepare_for_execution
from t2s_bench.suites.build import MANIFEST, build_suite
from t2s_bench.suites.distill import audit
from t2s_bench.suites.execute import suite_databases
from t2s_bench.suites.fuzz import Fuzzer, gold_literals
from t2s_bench.suites.mutants import mutants


@pytest.fixture(scope="module")
def demo():
    return load_dataset("demo")


@pytest.fixture(scope="module")
def suite(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    manifest = build_suite(demo, out, size=20, seed=3, workers=2)
    return out, manifest


def test_mutants_cover_the_near_miss_kinds(demo):
    gold = ("SELECT T1.name FROM customer AS T1 JOIN orders AS T2 ON T1.customer_id = T2.customer_id "
            "WHERE T2.status = 'shipped' AND T1.city != 'Paris' GROUP BY T1.customer_id "
            "HAVING count(*) > 1 ORDER BY max(T2.order_date) DESC LIMIT 3")
    found = mutants(gold, demo.schema("store"), seed=0)
    kinds = {m.kind for m in found}
    assert {"comparison", "drop_condition", "swap_column", "aggregate", "distinct", "order", "limit"} <= kinds
    texts = [m.sql for m in found]
    assert len(texts) == len(set(texts)) and gold not in texts
    assert any("count(*) >= 1" in t.lower() for t in texts)  # > became >=
    assert any("ORDER BY MAX(T2.order_date) ASC LIMIT 3" in t for t in texts)  # direction flipped
    assert any("ORDER BY MIN(T2.order_date) DESC" in t for t in texts)  # aggregate changed
    assert mutants(gold, demo.schema("store"), seed=0) == found  # deterministic for a seed
    assert mutants("SELECT FROM WHERE", None) == []


def test_neighbour_databases_keep_keys_and_use_gold_values(demo, tmp_path):
    queries = [ex.query for ex in demo.examples if ex.db_id == "store"]
    fuzzer = Fuzzer(demo.db_path("store"), queries)
    literals = gold_literals(queries, fuzzer.schema)
    assert any(100 in v for v in literals.values())  # price > 100
    paths = []
    for n in range(2):
        path = tmp_path / f"n{n}.sqlite"
        fuzzer.write(path, random.Random("same seed"))
        paths.append(path)
    con = sqlite3.connect(paths[0])
    dump = list(con.iterdump())
    assert dump == list(sqlite3.connect(paths[1]).iterdump())  # deterministic for a seed
    for fk in fuzzer.schema.foreign_keys:  # every child value exists in the parent
        orphans = con.execute(
            f'SELECT count(*) FROM "{fk.table}" WHERE "{fk.column}" IS NOT NULL AND "{fk.column}" NOT IN '
            f'(SELECT "{fk.ref_column}" FROM "{fk.ref_table}")').fetchone()[0]
        assert orphans == 0, fk
    for table in fuzzer.schema.tables:
        n_rows = con.execute(f'SELECT count(*) FROM "{table.name}"').fetchone()[0]
        assert n_rows >= 1, table.name
        if table.primary_keys:
            keys = ", ".join(f'"{k}"' for k in table.primary_keys)
            distinct = con.execute(f'SELECT count(*) FROM (SELECT DISTINCT {keys} FROM "{table.name}")').fetchone()[0]
            assert distinct == n_rows
    schema_sql = sorted(r[0] for r in con.execute("SELECT sql FROM sqlite_master WHERE type='table'"))
    original = sqlite3.connect(demo.db_path("store"))
    assert schema_sql == sorted(r[0] for r in original.execute("SELECT sql FROM sqlite_master WHERE type='table'"))


def test_the_built_suite_has_the_official_layout_and_a_manifest(suite, demo):
    out, manifest = suite
    assert json.loads((out / MANIFEST).read_text()) == manifest
    assert manifest["seed"] == 3 and manifest["size"] == 20 and manifest["dataset"] == "demo"
    for db_id in ("school", "store", "flights"):
        assert (out / db_id / f"{db_id}.sqlite").read_bytes() == demo.db_path(db_id).read_bytes()
        variants = suite_databases(out, db_id)
        assert 1 <= len(variants) <= 20
        assert [p.name for p in variants] == sorted(manifest["databases"][db_id]["variants"])


def test_the_suite_kills_the_mutants_that_survive_the_original(suite, demo):
    out, manifest = suite
    totals = manifest["totals"]
    assert totals["n_survivors"] > 20  # the original database lets many near misses through
    assert totals["kill_rate"] >= 0.95, totals
    rows = []  # checked again from the files, with a mutant set the build did not see (other column swaps)
    for db_id in ("school", "store", "flights"):
        queries = [ex.query for ex in demo.examples if ex.db_id == db_id]
        rows += audit(demo.db_path(db_id), queries, suite_databases(out, db_id), seed=4)
    assert len(rows) > 20 and sum(r["killed"] for r in rows) >= 0.95 * len(rows)


def test_gold_passes_its_own_suite_and_coincidences_are_exposed(suite, demo):
    out, _ = suite
    gold = {ex.index: ex.query for ex in demo.examples}
    records = score_predictions(demo, gold, suite=out, gold_cache=False)
    assert all(r["exec_suite"] is True for r in records), [r["index"] for r in records if not r["exec_suite"]]
    # near misses that the original database cannot tell apart from the gold, one per gold query
    store = [ex for ex in demo.examples if ex.db_id == "store"]
    survivors = audit(demo.db_path("store"), [ex.query for ex in store], [], seed=3)
    by_gold = {prepare_for_execution(ex.query, False): ex.index for ex in store}
    preds = {}
    for row in survivors:
        preds.setdefault(by_gold[row["gold"]], row["mutant"])
    n = len(preds)
    assert n >= 5
    sub = demo.filter(indices=list(preds))
    recs = score_predictions(sub, preds, suite=out, gold_cache=False)
    assert all(r["exec_match"] for r in recs)  # coincidental matches on the original database
    coincidental = [r for r in recs if r["exec_match"] and r["exec_suite"] is False]
    still_passing = [r for r in recs if r["exec_suite"]]
    assert coincidental, "the suite exposes no coincidental match"
    assert len(still_passing) <= 0.05 * n + 1
    summary = summarize(recs)
    level = summary["levels"]["all"]
    assert level["exec_suite"] < level["exec"]
    assert "EX-SUITE" in format_table(summary)


def test_without_a_suite_the_metric_is_undefined(demo):
    sub = demo.filter(limit=3)
    records = score_predictions(sub, {ex.index: ex.query for ex in sub.examples}, gold_cache=False)
    assert all(r["exec_suite"] is None for r in records)
    assert summarize(records)["levels"]["all"]["exec_suite"] is None
    with pytest.raises(FileNotFoundError, match="test suite folder not found"):
        score_predictions(sub, {}, suite="/nonexistent/suite", gold_cache=False)


def test_cli_builds_a_suite_and_scores_with_it(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["suite", "build", "--dataset", "demo", "--db", "school", "--out", str(out), "--size", "3",
                 "--candidates", "30", "--workers", "1"]) == 0
    assert "survivors killed by the suite" in capsys.readouterr().out
    assert [p.name for p in (out).iterdir() if p.is_dir()] == ["school"]
    preds = tmp_path / "preds.jsonl"
    demo = load_dataset("demo").filter(db_ids=["school"])
    preds.write_text("".join(json.dumps({"index": ex.index, "sql": ex.query}) + "\n" for ex in demo.examples))
    summary = tmp_path / "summary.json"
    assert main(["score", "--dataset", "demo", "--predictions", str(preds), "--suite", str(out),
                 "--summary-out", str(summary), "--no-gold-cache"]) == 0
    level = json.loads(summary.read_text())["levels"]["all"]
    assert level["n_exec_suite_scored"] == len(demo.examples) and level["exec_suite"] == 1.0
    assert main(["score", "--dataset", "demo", "--predictions", str(preds), "--suite", str(tmp_path / "nope")]) == 2


def test_a_suite_run_is_recorded_and_reaches_the_report(suite, tmp_path):
    from t2s_bench.api import evaluate, report

    out, _ = suite
    run = evaluate("oracle", "demo", limit=6, suite=out, out=tmp_path / "run", workers=1)
    assert run.config["run"]["suite"] == str(Path(out).resolve())
    assert run.metrics["suite"] == str(Path(out).resolve())
    assert run.metrics["levels"]["all"]["exec_suite"] == 1.0
    data = json.loads(report([run], out=tmp_path / "r.json").read_text())
    assert any(m["name"] == "exec_suite" for m in data["metrics"])


def test_a_build_is_deterministic_for_a_seed(demo, tmp_path):
    digests = []
    for n, workers in enumerate((1, 2)):
        out = tmp_path / f"b{n}"
        build_suite(demo, out, size=3, seed=7, candidates=30, workers=workers, db_ids=["school", "store"])
        digests.append({p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.sqlite"))})
    assert digests[0] == digests[1] and len(digests[0]) >= 4
