"""The three notebooks in notebooks/ execute top to bottom (nbclient, kernel python3) and leave the
numbers they claim: each writes a JSON summary in its working folder, checked here against the run
directories and files it wrote. Fast mode (T2S_NOTEBOOK_FAST=1) keeps each under a minute on 2 cores."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
LEVELS = ["easy", "medium", "hard", "extra"]


def execute(name: str, tmp_path: Path, monkeypatch, **env: str) -> tuple[dict, nbformat.NotebookNode]:
    """Run notebooks/<name> in tmp_path with the given environment; return its summary JSON and the
    executed notebook. A cell that raises fails the test with the cell's traceback."""
    work = tmp_path / "work"
    monkeypatch.setenv("T2S_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("T2S_NOTEBOOK_WORK", str(work))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    summary = work / name.replace(".ipynb", ".json")
    assert summary.is_file(), f"{name} wrote no {summary.name}"
    return json.loads(summary.read_text()), nb


def outputs(nb) -> tuple[str, int]:
    """All text the notebook printed or displayed, and how many figures it showed."""
    text, figures = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text.append(out["text"])
            data = out.get("data", {})
            figures += "image/png" in data
            text.append(data.get("text/plain", ""))
    return "\n".join(text), figures


def _spider_present() -> bool:
    from t2s_bench.paths import spider_dir

    return spider_dir() is not None


# ---------------------------------------------------------------- the committed files


def test_committed_notebooks_match_the_generator_and_carry_no_outputs():
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert sorted(build.NOTEBOOKS) == ["01_data_exploration.ipynb", "02_training.ipynb", "03_evaluation.ipynb"]
    for name in build.NOTEBOOKS:
        path = NOTEBOOKS / name
        assert path.read_text(encoding="utf-8") == build.render(name), f"{name} is stale: python notebooks/build.py"
        assert path.stat().st_size < 40_000
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec.name == "python3"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name}: {cell.id} has outputs"


# ---------------------------------------------------------------- 01: data exploration


def test_data_exploration_notebook(tmp_path, monkeypatch):
    from t2s_bench.datasets import load_dataset

    summary, nb = execute("01_data_exploration.ipynb", tmp_path, monkeypatch)
    expected = "spider-dev" if _spider_present() else "demo"
    assert summary["datasets"] == [expected]
    counts = summary["counts"][expected]
    ds = load_dataset(expected)
    assert counts["examples"] == len(ds) == summary["n_question_rows"]
    assert counts["databases"] == len({e.db_id for e in ds.examples})
    assert counts["examples_missing_database"] == sum(ds.missing_databases().values())
    difficulty = summary["difficulty"][expected]
    assert list(difficulty)[:4] == LEVELS and sum(difficulty.values()) == len(ds)
    assert 0 < summary["sql_structure"][expected]["with_join"] < 1
    text, figures = outputs(nb)
    assert figures >= 5, f"expected the five charts, got {figures} figures"
    assert "[extra]" in text  # one example question per level was printed


def test_data_exploration_notebook_on_the_demo_data(tmp_path, monkeypatch):
    summary, nb = execute("01_data_exploration.ipynb", tmp_path, monkeypatch, T2S_NOTEBOOK_DATASETS="demo")
    assert summary["datasets"] == ["demo"]
    assert summary["counts"]["demo"]["examples"] == 48 and summary["counts"]["demo"]["databases"] == 3
    assert summary["difficulty"]["demo"] == {level: 12 for level in LEVELS}  # the demo set is balanced
    assert outputs(nb)[1] >= 5


# ---------------------------------------------------------------- 02: training


def test_training_notebook(tmp_path, monkeypatch, tiny_model):
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    summary, nb = execute("02_training.ipynb", tmp_path, monkeypatch, T2S_TINY_MODEL_DIR=str(tiny_model.hf_dir.parent))
    train = summary["train_summary"]
    assert train["steps"] == 8 and train["stopped"] == "completed" and train["skipped_nonfinite_steps"] == 0
    assert 0 < train["trainable_params"] < train["total_params"]
    assert summary["n_evaluations"] == 3  # the base model, then every 4 steps
    assert math.isfinite(summary["train_loss_first"]) and math.isfinite(summary["train_loss_last"])
    for name in ("adapter_config.json", "adapter_model.safetensors", "curves.json", "train_summary.json"):
        assert name in summary["adapter_files"]

    run = summary["finetuned_run"]
    assert run["system"] == "finetuned" and run["n"] == 8
    import t2s_bench as t

    result = t.load_run(tmp_path / "work" / run["path"])  # an ordinary run directory
    assert result.config["run"]["system_options"]["backend"] == "transformers"
    assert len(result.records) == 8 and set(result.records["db_id"]) == {"flights"}
    assert result.ex == run["ex"]

    committed = ROOT / "results" / "finetune-qwen2.5-coder-0.5b-lora" / "curves.json"
    if committed.is_file():
        assert summary["gpu_curves_rows"] == len(json.loads(committed.read_text()))
    text, figures = outputs(nb)
    assert "t2s-bench train --builder qlora" in text and "not launched" in text
    assert figures >= 1 + committed.is_file()


# ---------------------------------------------------------------- 03: evaluation


def _discordant(system_dir: Path, baseline_dir: Path) -> tuple[int, int]:
    """(system right and baseline wrong, the reverse), counted from the score files."""
    import t2s_bench as t

    a = t.load_run(baseline_dir).records["exec_match"]
    b = t.load_run(system_dir).records["exec_match"]
    both = a.notna() & b.notna()
    a, b = a[both].astype(bool), b[both].astype(bool)
    return int((b & ~a).sum()), int((a & ~b).sum())


def check_evaluation(summary: dict, nb, work: Path) -> None:
    """What every variant of notebook 03 must leave: consistent runs, comparison, report, committed runs."""
    runs = summary["runs"]
    assert runs["oracle"]["ex"] == 1.0 and runs["oracle"]["em"] == 1.0 and runs["oracle"]["n"] == 16
    assert 0 < runs["drop-where"]["ex"] < 1  # wrong exactly where the dropped WHERE mattered
    assert (summary["model"] is None) == ("zero-shot" not in runs)

    c = summary["comparison"]
    system = "zero-shot" if "zero-shot" in runs else "drop-where"
    baseline = "drop-where" if system == "zero-shot" else "oracle"
    won, lost = _discordant(work / runs[system]["path"], work / runs[baseline]["path"])
    assert (c["only_system"], c["only_baseline"], c["n"]) == (won, lost, 16)
    assert 0 < c["p_value"] <= 1 and c["low"] <= c["difference"] <= c["high"]

    page = (work / summary["report"]["html"]).read_text(encoding="utf-8")
    assert "<html" in page[:1000].lower()
    assert all(Path(r["path"]).name in page for r in runs.values())
    assert (work / summary["report"]["markdown"]).is_file()

    text, figures = outputs(nb)
    assert "McNemar p" in text and figures >= 2
    if summary["committed"]:
        for name, loaded in summary["committed"].items():
            committed = json.loads((ROOT / "results" / "runs" / name / "metrics.json").read_text())
            assert loaded["ex"] == committed["levels"]["all"]["exec"]  # re-scored to the committed metrics
            assert loaded["n_scored"] == committed["levels"]["all"]["n_scored"] == 972
            assert loaded["path"].startswith("committed/")  # scored in a copy: results/ stays untouched
        cc = summary["committed_comparison"]
        assert cc["n"] == 972 and cc["difference"] > 0 and cc["p_value"] < 0.001


def test_evaluation_notebook_with_the_tiny_model(tmp_path, monkeypatch, tiny_model):
    summary, nb = execute("03_evaluation.ipynb", tmp_path, monkeypatch, T2S_NOTEBOOK_MODEL="tiny",
                          T2S_TINY_MODEL_DIR=str(tiny_model.hf_dir.parent))
    check_evaluation(summary, nb, tmp_path / "work")
    if _spider_present() and (ROOT / "results" / "runs" / "spider-dev-h200-zero-shot").is_dir():
        assert len(summary["committed"]) == 2
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        assert summary["model"] is None
        return
    assert summary["model"] == "tiny"
    assert summary["runs"]["zero-shot"]["ex"] == 0.0  # random weights: every answer is wrong, and classified
    assert sum(summary["error_distribution"]["demo-zero-shot-tiny"].values()) == 16


@pytest.mark.slow  # 25-45 s of llama.cpp generation on 2 idle cores, several minutes on a busy machine
@pytest.mark.model
def test_evaluation_notebook_with_the_real_model(tmp_path, monkeypatch, qwen_gguf):
    summary, nb = execute("03_evaluation.ipynb", tmp_path, monkeypatch, T2S_NOTEBOOK_MODEL="qwen",
                          T2S_RESULTS_DIR=str(tmp_path / "no-results"))
    check_evaluation(summary, nb, tmp_path / "work")
    assert summary["model"] == "qwen-0.5b"
    assert summary["runs"]["zero-shot"]["ex"] >= 0.25  # a real model answers part of the school questions


def test_evaluation_notebook_without_a_model_or_committed_runs(tmp_path, monkeypatch):
    summary, nb = execute("03_evaluation.ipynb", tmp_path, monkeypatch, T2S_NOTEBOOK_MODEL="none",
                          T2S_RESULTS_DIR=str(tmp_path / "no-results"))
    assert summary["model"] is None and set(summary["runs"]) == {"drop-where", "oracle"}
    check_evaluation(summary, nb, tmp_path / "work")
    c = summary["comparison"]
    wrong = round((1 - summary["runs"]["drop-where"]["ex"]) * 16)
    assert c["only_system"] == 0 and c["only_baseline"] == wrong > 0  # the oracle is never wrong
    assert summary["committed"] == {} and summary["committed_comparison"] is None
    assert "committed runs not here" in outputs(nb)[0] or not _spider_present()
