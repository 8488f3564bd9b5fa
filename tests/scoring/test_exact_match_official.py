"""Official-compatible exact match (the official reader's failures reproduced) beside the corrected one.

The agreement with the official evaluator itself is measured by benchmarks/official_agreement.py
(results/official_agreement.json); these cases pin the behaviours found there."""

from __future__ import annotations

from pathlib import Path

import pytest

from t2s_bench import paths
from t2s_bench.datasets import Schema
from t2s_bench.scoring import exact_match
from t2s_bench.scoring.official_parse import OfficialParseError, official_exact_match, official_parse

S = Schema.from_tables_json({
    "db_id": "concert",
    "table_names_original": ["stadium", "singer", "concert", "singer_in_concert"],
    "column_names_original": [
        [-1, "*"], [0, "Stadium_ID"], [0, "Name"], [0, "Capacity"],
        [1, "Singer_ID"], [1, "Name"], [1, "Country"], [1, "Age"],
        [2, "concert_ID"], [2, "concert_Name"], [2, "Year"], [2, "Stadium_ID"], [3, "concert_ID"], [3, "Singer_ID"],
    ],
    "column_types": ["text"] * 14,
    "primary_keys": [1, 4, 8],
    "foreign_keys": [[11, 1], [13, 4], [12, 8]],
})
JOIN = "FROM singer AS T1 JOIN singer_in_concert AS T2 ON T1.Singer_ID = T2.Singer_ID"


def both(gold: str, pred: str) -> tuple[bool, bool]:
    return exact_match(gold, pred, S), official_exact_match(gold, pred, S)


@pytest.mark.parametrize(
    "gold, pred",
    [  # valid SQL meaning the gold query; the official reader cannot read the prediction -> 0
        (f"SELECT T1.Name {JOIN}", "SELECT T1.Name FROM singer AS T1 INNER JOIN singer_in_concert AS T2 "
                                   "ON T1.Singer_ID = T2.Singer_ID"),
        (f"SELECT T1.Name {JOIN}", "SELECT T1.Name FROM singer T1 JOIN singer_in_concert T2 ON T1.Singer_ID = T2.Singer_ID"),
        ("SELECT Name FROM stadium WHERE Stadium_ID NOT IN (SELECT Stadium_ID FROM concert)",
         "SELECT Name FROM stadium WHERE NOT Stadium_ID IN (SELECT Stadium_ID FROM concert)"),
        ("SELECT Name FROM singer WHERE Country != 'x'", "SELECT Name FROM singer WHERE Country <> 'x'"),
        ("SELECT Country, count(*) FROM singer GROUP BY Country ORDER BY count(*)",
         "SELECT Country, count(*) AS n FROM singer GROUP BY Country ORDER BY n"),
        ("SELECT Name FROM singer WHERE Name = 'x'", "SELECT Name FROM singer WHERE Name = \"it's\""),
        ("SELECT Name FROM singer WHERE Age > 1", "SELECT Name FROM singer WHERE Age IS NOT NULL"),
    ],
)
def test_valid_sql_the_official_reader_cannot_read_scores_0_officially(gold, pred):
    with pytest.raises(OfficialParseError):
        official_parse(pred, S)
    assert official_exact_match(gold, pred, S) is False
    assert official_exact_match(gold, gold, S) is True


@pytest.mark.parametrize(
    "gold, pred",
    [
        (f"SELECT T1.Name {JOIN}", "SELECT T1.Name FROM singer AS T1 INNER JOIN singer_in_concert AS T2 "
                                   "ON T1.Singer_ID = T2.Singer_ID"),
        ("SELECT Name FROM stadium WHERE Stadium_ID NOT IN (SELECT Stadium_ID FROM concert)",
         "SELECT Name FROM stadium WHERE NOT Stadium_ID IN (SELECT Stadium_ID FROM concert)"),
        ("SELECT Name FROM singer WHERE Country != 'x'", "SELECT Name FROM singer WHERE Country <> 'x'"),
    ],
)
def test_the_corrected_metric_matches_those_spellings(gold, pred):
    assert both(gold, pred) == (True, False)


@pytest.mark.parametrize(
    "gold, pred, expected",
    [  # what the official reader reads, it scores as the corrected metric does
        ("SELECT Name FROM singer WHERE Age > 20", "SELECT name FROM SINGER WHERE age > 35", True),
        ("SELECT max(Age) FROM singer", "SELECT min(Age) FROM singer", False),
        (f"SELECT T2.concert_ID {JOIN} WHERE T1.Age > 3 ORDER BY T1.Age DESC LIMIT 3",
         f"SELECT T1.Singer_ID {JOIN} WHERE T1.Age > 9 ORDER BY T1.Age DESC LIMIT 1", False),
        ("SELECT Name FROM singer WHERE Age > 3 UNION SELECT Name FROM stadium",
         "SELECT Name FROM singer WHERE Age > 4 UNION SELECT Name FROM stadium", True),
        ("SELECT count(DISTINCT Country) FROM singer", "SELECT count(Country) FROM singer", True),
        ("SELECT Name FROM singer WHERE Age BETWEEN 1 AND 3", "SELECT Name FROM singer WHERE Age BETWEEN 5 AND 9", True),
    ],
)
def test_readable_predictions_score_as_the_corrected_metric(gold, pred, expected):
    official_parse(pred, S)
    assert both(gold, pred) == (expected, expected)


def test_official_quirks_are_reproduced():
    # the official reader swallows `OR ...` in a join condition: the gold's second condition is lost
    gold = "SELECT T1.Name FROM singer AS T1 JOIN singer_in_concert AS T2 ON T1.Singer_ID = T2.Singer_ID " \
           "OR T1.Age = T2.concert_ID"
    pred = f"SELECT T1.Name {JOIN}"
    assert both(gold, pred) == (False, True)
    # trailing tokens are ignored: LIMIT ... OFFSET reads as LIMIT
    assert official_exact_match("SELECT Name FROM singer ORDER BY Age LIMIT 1",
                                "SELECT Name FROM singer ORDER BY Age LIMIT 1 OFFSET 2", S) is True
    # values inside a FROM subquery are compared (the official value normalisation misses them)
    sub = "SELECT count(*) FROM (SELECT Name FROM singer WHERE Country = 'a')"
    assert official_exact_match(sub, sub.replace("'a'", "'b'"), S) is False
    assert exact_match(sub, sub.replace("'a'", "'b'"), S) is True
    # " value " placeholders read as 1, as in the official evaluate()
    assert official_exact_match("SELECT Name FROM singer WHERE Age > 3",
                                "SELECT Name FROM singer WHERE Age > value ", S) is True


def test_sql_sqlite_cannot_run_is_never_an_exact_match():
    gold = "SELECT Country FROM singer WHERE Age < 30 GROUP BY Country HAVING count(*) > 1"
    pred = "SELECT Country FROM singer GROUP BY Country WHERE Age < 30 HAVING count(*) > 1"
    assert exact_match(gold, gold, S) is True
    assert exact_match(gold, pred, S) is False
    # the official reader reads it without its WHERE, so officially it is no match either
    assert official_exact_match(gold, pred, S) is False


def test_both_metrics_in_records_and_summaries():
    from t2s_bench.datasets import load_dataset
    from t2s_bench.scoring import score_predictions, summarize

    demo = load_dataset("demo").filter(limit=6)
    preds = {ex.index: ex.query for ex in demo.examples}
    join = next(ex for ex in demo.examples if " AS T1" in ex.query)
    preds[join.index] = join.query.replace(" AS T1", " T1").replace(" AS T2", " T2")  # valid, unreadable officially
    recs = {r["index"]: r for r in score_predictions(demo, preds, workers=1, gold_cache=None)}
    assert all(r["exact_match_official"] is (r["index"] != join.index) for r in recs.values())
    assert all(r["exact_match"] is True for r in recs.values())
    summary = summarize(list(recs.values()))["levels"]["all"]
    assert summary["exact"] == 1.0 and summary["exact_official"] == 5 / 6


@pytest.mark.spider
def test_every_spider_dev_gold_is_read_and_matches_itself_officially():
    if paths.spider_dir() is None:
        pytest.skip("Spider data not found (set T2S_SPIDER_DIR)")
    from t2s_bench.datasets import load_dataset

    ds = load_dataset("spider-dev")
    failures = [ex.index for ex in ds.examples if not official_exact_match(ex.query, ex.query, ds.schema(ex.db_id))]
    assert failures == []


@pytest.mark.spider
def test_the_tokenizer_is_nltks_on_every_spider_query_and_model_output(monkeypatch):
    """official_parse restates nltk's word tokenizer (importing nltk costs seconds): the same tokens
    on every Spider dev/train gold query and every committed model output."""
    if paths.spider_dir() is None:
        pytest.skip("Spider data not found (set T2S_SPIDER_DIR)")
    nltk_tokenize = pytest.importorskip("nltk.tokenize")
    from t2s_bench.datasets import load_dataset
    from t2s_bench.rundir import RunDir
    from t2s_bench.scoring import official_parse as op

    texts = {ex.query for name in ("spider-dev", "spider-train") for ex in load_dataset(name).examples}
    for run in sorted((Path(__file__).resolve().parents[2] / "results" / "runs").glob("*")):
        if run.is_dir():
            texts |= {p.get("sql") or "" for p in RunDir(run).read_predictions().values()}
    texts |= {"SELECT a=b FROM t WHERE x IN (1,2) AND y <> 3 -- c", "SELECT `a` FROM t.", "SELECT count(*)*2 FROM t;"}
    assert len(texts) > 10000

    def tokens(tokenize):
        monkeypatch.setattr(op, "word_tokenize", tokenize)
        out = []
        for text in sorted(texts):
            try:
                out.append(op.official_tokens(text))
            except op.OfficialParseError as e:
                out.append(str(e))
        return out

    reference = nltk_tokenize.NLTKWordTokenizer().tokenize
    ours = op.word_tokenize
    assert tokens(ours) == tokens(reference)
