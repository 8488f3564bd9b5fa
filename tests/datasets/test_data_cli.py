"""`t2s-bench data fetch|check|stats` through the real CLI entry point."""

import json
import sqlite3
import zipfile

import pytest

from t2s_bench.cli import main


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("T2S_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("action", ["fetch", "check", "stats"])
def test_help(action, capsys):
    with pytest.raises(SystemExit) as e:
        main(["data", action, "--help"])
    assert e.value.code == 0
    assert len(capsys.readouterr().out) > 300


def test_check_demo_writes_json(tmp_path, capsys):
    out = tmp_path / "r" / "check.json"
    assert main(["data", "check", "--dataset", "demo", "--json", str(out)]) == 0
    assert "gold queries executed: 48; failing: 0" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["ok"] and data["n_failures"] == 0 and data["n_examples"] == 48


def test_check_against_itself_fails(capsys):
    assert main(["data", "check", "--dataset", "demo", "--against", "demo"]) == 1
    assert "NOT disjoint" in capsys.readouterr().out


def test_stats_demo(tmp_path, capsys):
    assert main(["data", "stats", "--dataset", "demo", "--out-dir", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "demo_dataset_stats.md").is_file()
    data = json.loads((tmp_path / "rep" / "demo_dataset_stats.json").read_text())
    assert data["counts"]["databases"] == 3


def test_unknown_dataset_is_a_clear_error(capsys):
    assert main(["data", "check", "--dataset", "no-such-dataset"]) == 2
    assert "unknown dataset" in capsys.readouterr().err


def test_fetch_from_local_zip(tmp_path, capsys):
    db = tmp_path / "x.sqlite"
    con = sqlite3.connect(db)
    con.executescript("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);")
    con.close()
    archive = tmp_path / "spider.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("spider/tables.json", "[]")
        zf.writestr("spider/dev.json", json.dumps([{"db_id": "x", "question": "q", "query": "SELECT id FROM t"}]))
        zf.write(db, "spider/database/x/x.sqlite")
    dest = tmp_path / "installed"
    assert main(["data", "fetch", "spider", "--from", str(archive), "--dest", str(dest), "--no-progress"]) == 0
    assert (dest / "tables.json").is_file() and (dest / "database" / "x" / "x.sqlite").is_file()
    assert main(["data", "check", "--dataset", str(dest / "dev.json")]) == 0
    assert main(["data", "fetch", "spider", "--from", str(archive), "--dest", str(tmp_path / "other"),
                 "--sha256", "0" * 64]) == 2
    assert "SHA-256 mismatch" in capsys.readouterr().err
