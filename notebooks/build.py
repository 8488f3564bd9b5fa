"""Write the three example notebooks (without outputs) from the cell sources below.

    python notebooks/build.py            # rewrite notebooks/*.ipynb
    python notebooks/build.py --check    # exit 1 when a committed notebook differs from this script

The notebooks are generated so that a review reads plain Python here, and the committed files stay
small and deterministic (no outputs, fixed cell ids). Edit the cells in this file, then rebuild.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

# shared first code cell: configuration through environment variables
SETUP = '''\
import json
import os
from pathlib import Path

# T2S_NOTEBOOK_FAST=1: small selections so the test suite runs each notebook in well under a minute
FAST = os.environ.get("T2S_NOTEBOOK_FAST") == "1"
# everything this notebook writes (runs/, reports/, adapters/, a summary JSON) goes under WORK
WORK = Path(os.environ.get("T2S_NOTEBOOK_WORK", "notebook_work")).resolve()
WORK.mkdir(parents=True, exist_ok=True)
os.chdir(WORK)
print(f"fast mode: {FAST}; working in {WORK}")'''


# ---------------------------------------------------------------- 01: data exploration

DATA_EXPLORATION = [
    ("md", """\
# 1 · Data exploration: Spider statistics and charts

What the benchmark data look like before any system runs: how many questions and databases, how large
the schemas are, what the gold SQL is made of (joins, nesting, set operations, clauses), and how the
questions spread over Spider's four difficulty levels.

Uses Spider dev (and train, outside fast mode) when a Spider copy is found (`T2S_SPIDER_DIR`, or
`t2s-bench data fetch spider`), else the demo dataset shipped with the package (48 questions, 3 SQLite
databases). `T2S_NOTEBOOK_DATASETS=demo` (a comma-separated list) chooses the datasets explicitly."""),
    ("code", SETUP),
    ("code", '''\
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from t2s_bench.datasets import dataset_stats, load_dataset
from t2s_bench.scoring.hardness import LEVELS, hardness
from t2s_bench.sql.features import sql_features

%matplotlib inline
sns.set_theme(style="whitegrid", palette="colorblind")'''),
    ("md", """\
## Which datasets

`load_dataset(name)` returns a `Dataset` (examples, schemas, the folder of SQLite files); a Spider
name raises `FileNotFoundError` when no copy is here, and the notebook falls back to the demo data."""),
    ("code", '''\
def pick_datasets() -> dict:
    wanted = os.environ.get("T2S_NOTEBOOK_DATASETS")
    if wanted:
        return {name: load_dataset(name) for name in wanted.split(",")}
    try:
        names = ["spider-dev"] if FAST else ["spider-dev", "spider-train"]
        return {name: load_dataset(name) for name in names}
    except FileNotFoundError as e:
        print(f"Spider not found ({e}); using the demo dataset")
        return {"demo": load_dataset("demo")}


datasets = pick_datasets()
for name, ds in datasets.items():
    print(f"{name}: {len(ds)} questions on {len({e.db_id for e in ds.examples})} databases ({ds.db_dir})")'''),
    ("md", """\
## Counts

`dataset_stats` (the function behind `t2s-bench data stats`) gives counts, schema sizes, SQL length
and structure and the hardness distribution as one JSON-ready dict per dataset. Questions whose
database file is missing are counted, never dropped: the harness reports them as skipped."""),
    ("code", '''\
stats = {name: dataset_stats(ds) for name, ds in datasets.items()}
pd.DataFrame({name: s["counts"] for name, s in stats.items()})'''),
    ("md", "## Schema sizes (per database)"),
    ("code", '''\
schema_sizes = pd.concat(
    {name: pd.DataFrame(s["schema_size"]).T for name, s in stats.items()}, names=["dataset", "per database"]
)
schema_sizes'''),
    ("code", '''\
databases = pd.concat(
    [pd.DataFrame(s["databases"]).assign(dataset=name) for name, s in stats.items()], ignore_index=True
)
fig, ax = plt.subplots(figsize=(7, 4))
sns.scatterplot(data=databases, x="tables", y="columns", size="examples", hue="dataset", sizes=(15, 250),
                alpha=0.7, ax=ax)
ax.set_title("Schema size of each database (point size: number of questions)")
ax.legend(bbox_to_anchor=(1.02, 1), loc="upper left", fontsize=8)
plt.show()
databases.sort_values("examples", ascending=False).head(10)'''),
    ("md", """\
## One row per question

For the charts below: the gold query's structural features (`t2s_bench.sql.features.sql_features`, the
same definition the statistics and the report breakdowns use) and its Spider hardness level."""),
    ("code", '''\
def question_table(name, ds) -> pd.DataFrame:
    rows = []
    for e in ds.examples:
        try:
            level = hardness(e.query, ds.schema(e.db_id))
        except Exception as err:  # an unparsable gold query is counted, not fatal
            level = f"unrated ({type(err).__name__})"
        rows.append({"dataset": name, "index": e.index, "db_id": e.db_id, "hardness": level,
                     "question_words": len(e.question.split()), **sql_features(e.query)})
    return pd.DataFrame(rows)


questions = pd.concat([question_table(name, ds) for name, ds in datasets.items()], ignore_index=True)
questions[["dataset", "db_id", "hardness", "tokens", "tables", "joins", "nested", "set_op", "aggregate"]].head()'''),
    ("md", "## Hardness distribution"),
    ("code", '''\
difficulty = pd.DataFrame({name: s["difficulty"] for name, s in stats.items()}).fillna(0).astype(int)
shares = (difficulty / difficulty.sum()).rename_axis("level").reset_index().melt(
    id_vars="level", var_name="dataset", value_name="share")
fig, ax = plt.subplots(figsize=(6, 3.2))
sns.barplot(data=shares, x="level", y="share", hue="dataset", ax=ax)
ax.set_title("Share of questions per Spider hardness level")
ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
plt.show()
difficulty'''),
    ("md", "## SQL length and structure by hardness"),
    ("code", '''\
fig, ax = plt.subplots(figsize=(7, 3.5))
sns.boxplot(data=questions, x="hardness", y="tokens", hue="dataset", order=list(LEVELS), ax=ax, fliersize=2)
ax.set_ylabel("gold SQL length (sqlglot tokens)")
ax.set_title("Longer, more structured queries are rated harder")
plt.show()'''),
    ("code", '''\
structure = pd.DataFrame(
    {name: {k: v for k, v in s["sql_structure"].items() if not isinstance(v, dict)} for name, s in stats.items()}
)
fig, ax = plt.subplots(figsize=(7, 3.2))
sns.barplot(data=structure.rename_axis("feature").reset_index().melt(id_vars="feature", var_name="dataset",
                                                                     value_name="share"),
            x="feature", y="share", hue="dataset", ax=ax)
ax.set_title("Share of gold queries with each feature")
ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
ax.tick_params(axis="x", rotation=30)
plt.show()
structure.style.format("{:.1%}")'''),
    ("code", '''\
first = next(iter(datasets))
part = questions[questions["dataset"] == first]
joins_by_level = pd.crosstab(part["hardness"], part["joins"].clip(upper=3).map(lambda j: "3+" if j == 3 else str(j)))
joins_by_level = joins_by_level.reindex([lv for lv in LEVELS if lv in joins_by_level.index])
fig, ax = plt.subplots(figsize=(5, 3))
sns.heatmap(joins_by_level, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax)
ax.set_xlabel("joins in the gold query")
ax.set_title(f"{first}: joins per hardness level")
plt.show()'''),
    ("md", "## One question per level"),
    ("code", '''\
examples = {e.index: e for e in datasets[first].examples}
for level in LEVELS:
    rows = part[part["hardness"] == level]
    if rows.empty:
        continue
    e = examples[int(rows.iloc[len(rows) // 2]["index"])]
    print(f"[{level}] ({e.db_id}) {e.question}\\n    {e.query}\\n")'''),
    ("md", "## Summary for the test suite\n\nA small JSON file the notebook test reads back."),
    ("code", '''\
summary = {
    "datasets": list(datasets),
    "counts": {name: s["counts"] for name, s in stats.items()},
    "difficulty": {name: s["difficulty"] for name, s in stats.items()},
    "sql_structure": {name: s["sql_structure"] for name, s in stats.items()},
    "n_question_rows": len(questions),
}
Path("01_data_exploration.json").write_text(json.dumps(summary, indent=1))
print(json.dumps(summary["counts"], indent=1))'''),
]


# ---------------------------------------------------------------- 02: training

TRAINING = [
    ("md", """\
# 2 · Training: a tiny LoRA run end to end, and how the GPU run is launched

Fine-tuning is one more way to build a system: `t2s_bench.training.train(TrainConfig)` writes a PEFT
adapter with its training curves, and the `finetuned` system evaluates it like any other system.

Here everything runs on the CPU in about a minute: a tiny random-weight Qwen2 model
(`t2s_bench.testing.tiny_model.build_tiny_model`, the model the test suite uses) learns from the demo data for a
few steps. Its accuracy stays near zero (a 0.2M-parameter random model does not learn SQL in a few
steps); what the notebook shows is the pipeline: prepared data, training on `transformers.Trainer` with
the project's guard, validation by execution through the harness, curves, the adapter, and its
evaluation through the same harness as every other system.
The last part shows the real GPU run (Qwen2.5-Coder-0.5B on Spider train) and its committed curves.

Needs the `hf` extra (torch, transformers, peft). `T2S_TINY_MODEL_DIR` reuses a tiny model folder."""),
    ("code", SETUP),
    ("code", '''\
import warnings
from dataclasses import asdict

import datasets
import matplotlib.pyplot as plt
import seaborn as sns
import transformers

import t2s_bench as t
from t2s_bench.paths import REPO_ROOT
from t2s_bench.reporting.analysis import load_curves
from t2s_bench.testing.tiny_model import build_tiny_model
from t2s_bench.training import TrainConfig, train

%matplotlib inline
sns.set_theme(style="whitegrid", palette="colorblind")
datasets.disable_progress_bars()  # progress bars of data preparation and model loading: noise here
transformers.utils.logging.disable_progress_bar()
warnings.filterwarnings("ignore", category=FutureWarning)


def plot_curves(curves, title):
    """Loss per SQL token (left) and validation execution accuracy (right) against optimizer steps."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
    sns.lineplot(data=curves.dropna(subset=["train_loss"]), x="step", y="train_loss", ax=ax1, label="train loss")
    sns.lineplot(data=curves.dropna(subset=["val_loss"]), x="step", y="val_loss", ax=ax1, marker="o",
                 label="val loss")
    ax1.set_ylabel("loss per SQL token")
    sns.lineplot(data=curves.dropna(subset=["val_exec_acc"]), x="step", y="val_exec_acc", ax=ax2, marker="s",
                 color="tab:green")
    ax2.set_ylabel("validation execution accuracy")
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()'''),
    ("md", """\
## The base model

A real Qwen2 architecture with a byte-level BPE tokenizer and Qwen's chat template, random weights,
built in seconds: `.hf_dir` (a Hugging Face folder) and `.gguf_path` (the same weights as GGUF)."""),
    ("code", '''\
tiny = build_tiny_model(os.environ.get("T2S_TINY_MODEL_DIR") or "tiny_model")
print(tiny.hf_dir)
print(json.loads((tiny.hf_dir / "config.json").read_text())["num_hidden_layers"], "layers")'''),
    ("md", """\
## The training configuration

Train on two demo databases (`school`, `store`), validate on the third (`flights`): validation
databases are disjoint from training ones, as Spider dev's are from Spider train. `builder="lora"`
keeps the base in full precision (QLoRA's 4-bit base needs CUDA). Every option is a `TrainConfig`
field; the CLI's `t2s-bench train` flags and `--config FILE` map onto the same fields."""),
    ("code", '''\
config = TrainConfig(
    base=str(tiny.hf_dir), out="adapters/tiny-lora", builder="lora",
    train="demo", val="demo", train_db_ids=["school", "store"], val_db_ids=["flights"],
    val_size=4 if FAST else 16, schema_formats=("compact",),
    max_steps=8 if FAST else 40, batch_size=8, grad_accum=1, lr=3e-3,
    eval_every=4 if FAST else 10, max_new_tokens=16 if FAST else 32, gen_batch_size=4,
    patience=50,  # random weights never improve their validation accuracy: no early stop in this demo
    exec_workers=1, log_every=1, data_cache="training_data", device="cpu",
)
{k: v for k, v in asdict(config).items() if k in ("builder", "train", "val", "max_steps", "batch_size", "lr",
                                                  "lora_r", "lora_alpha", "eval_every", "val_size")}'''),
    ("md", """\
## Train

Resumable: running the cell again finds the finished run and does not train again (a run stopped by
its time budget resumes from the last Trainer checkpoint). The trainer skips any step whose loss or
gradient is not finite (see the README's NaN section), validates every `eval_every` steps by letting
the in-memory model answer the validation questions as the `finetuned` system (one run directory per
validation under `validation/`), and keeps the best adapter by validation execution accuracy."""),
    ("code", '''\
adapter = train(config)
%matplotlib inline
# (train() saves curves.png with matplotlib's Agg backend; the line above brings inline figures back)
train_summary = json.loads((adapter / "train_summary.json").read_text())
train_summary'''),
    ("code", '''\
sorted(p.name for p in adapter.iterdir())'''),
    ("md", "## Training curves\n\n`curves.json` has one row per logged step (train loss) and per evaluation (validation loss and execution accuracy)."),
    ("code", '''\
curves = load_curves(adapter)
plot_curves(curves, "tiny random-weight model, demo data (CPU)")
curves.tail()'''),
    ("md", """\
## Evaluate the adapter through the harness

The same call as `t2s-bench run --system finetuned --adapter ADAPTER`: the `finetuned` system reads the
adapter's training config (template, schema format), the transformers backend loads base + adapter,
and the run directory is an ordinary one (config, predictions, scores, metrics). The adapter folder
holds the weights with the best validation accuracy (`best_step` above; with random weights every
evaluation scores 0%, so that is the first one); `checkpoints/` keeps the Trainer's checkpoints."""),
    ("code", '''\
finetuned = t.evaluate(
    "finetuned", adapter=str(adapter), model=str(tiny.hf_dir), backend="transformers", dataset="demo",
    db="flights", limit=8 if FAST else None, max_new_tokens=32,
)
print(finetuned.path.name, f"EX {finetuned.ex:.1%}", f"on {len(finetuned.records)} questions")
print(finetuned.table())'''),
    ("code", '''\
finetuned.records[["db_id", "hardness", "question", "pred", "exec_match", "error_class"]].head()'''),
    ("md", """\
## The real run: Qwen2.5-Coder-0.5B on Spider train (one GPU)

The GPU machine runs `scripts/gpu_train.sh`, which calls only `t2s-bench train` (the GGUF base is
de-quantised once to bf16; Spider train minus ~10% of its databases, held out for validation; LoRA, QLoRA
with `BUILDER=qlora`, or every weight with `BUILDER=full`; under a time budget, a rerun resumes from the
last checkpoint) and `t2s-bench run --system finetuned` (every executable Spider dev question, `dev-run/`,
an ordinary run directory). Several GPUs: `scripts/launch_multi_gpu.sh`. See `scripts/GPU_RUNS.md`.

```bash
# on the GPU machine, from the repository root (Spider and the GGUF base copied there)
OUT=out bash scripts/gpu_train.sh /root/spider/spider /root/m/model.gguf                     # LoRA, 1 epoch
BUILDER=qlora MAX_STEPS=150 EVAL_EVERY=0 TIME_BUDGET_S=300 NO_RESUME=1 EXTRA=--no-initial-eval \\
  OUT=out bash scripts/gpu_train.sh /root/spider/spider /root/m/model.gguf                    # QLoRA
```

On any CUDA machine with the package installed, the same training through the CLI, then its evaluation
and export:

```bash
t2s-bench train --builder qlora --base qwen2.5-coder-0.5b --train spider-train --out adapters/qwen-qlora
t2s-bench run --system finetuned --adapter adapters/qwen-qlora --dataset spider-dev
t2s-bench train export adapters/qwen-qlora --lora-gguf      # the adapter as a GGUF LoRA for llama.cpp
t2s-bench run --system finetuned --adapter adapters/qwen-qlora --model qwen2.5-coder-0.5b-gguf --backend llama-cpp
```

The GGUF LoRA leaves the 4-bit base GGUF as it is; merging and re-quantising to Q4_K_M instead rounded a
1.5B adapter away (10 points of EX lost; README, session 6).

The next cell builds that command and runs it only when `T2S_NOTEBOOK_GPU=1` and CUDA is present."""),
    ("code", '''\
import shlex
import subprocess
import sys

import torch

gpu_command = [sys.executable, "-m", "t2s_bench", "train", "--builder", "qlora", "--base", "qwen2.5-coder-0.5b",
               "--train", "spider-train", "--out", "adapters/qwen-qlora"]
print("t2s-bench", shlex.join(gpu_command[3:]))
if os.environ.get("T2S_NOTEBOOK_GPU") == "1" and torch.cuda.is_available():
    subprocess.run(gpu_command, check=True)
else:
    print("not launched: set T2S_NOTEBOOK_GPU=1 on a CUDA machine to run it")'''),
    ("md", """\
### The committed GPU run's curves

`results/finetune-qwen2.5-coder-0.5b-lora/` holds what the H100 run wrote (LoRA r=16, 1 epoch, 432
steps): the same `curves.json` format as the tiny run above."""),
    ("code", '''\
gpu_folder = Path(os.environ.get("T2S_RESULTS_DIR") or REPO_ROOT / "results") / "finetune-qwen2.5-coder-0.5b-lora"
gpu_curves = load_curves(gpu_folder) if gpu_folder.is_dir() else None
if gpu_curves is None:
    print(f"{gpu_folder} not here (an installed package without the repository's results/)")
else:
    gpu_summary = json.loads((gpu_folder / "train_summary.json").read_text())
    plot_curves(gpu_curves, "Qwen2.5-Coder-0.5B, LoRA on Spider train (one H100)")
    print({k: gpu_summary.get(k) for k in ("steps", "best_step", "best_val_exec_acc", "skipped_nonfinite_steps",
                                           "train_time_s", "peak_vram_gb")})'''),
    ("md", "## Summary for the test suite"),
    ("code", '''\
summary = {
    "train_summary": train_summary,
    "n_curve_rows": len(curves),
    "n_evaluations": int(curves["val_exec_acc"].notna().sum()),
    "train_loss_first": float(curves["train_loss"].dropna().iloc[0]),
    "train_loss_last": float(curves["train_loss"].dropna().iloc[-1]),
    "adapter_files": sorted(p.name for p in adapter.iterdir()),
    "finetuned_run": {"path": str(finetuned.path), "n": len(finetuned.records), "ex": finetuned.ex,
                      "system": finetuned.system},
    "gpu_curves_rows": None if gpu_curves is None else len(gpu_curves),
}
Path("02_training.json").write_text(json.dumps(summary, indent=1))
print(json.dumps({k: v for k, v in summary.items() if k != "adapter_files"}, indent=1))'''),
]


# ---------------------------------------------------------------- 03: evaluation

EVALUATION = [
    ("md", """\
# 3 · Evaluation: runs, breakdowns, error classes, a paired comparison

Three systems on the demo data through `t2s_bench.evaluate`:

* `oracle`, which answers the gold SQL (a check of the harness: every score must be 100%);
* a deliberately wrong `System` object defined here (gold SQL with its WHERE clause dropped), to show
  that any object with `predict(tasks)` and `config()` is a system;
* `zero-shot` with a model: the real Qwen2.5-Coder-0.5B GGUF when it is in the model cache, else the
  tiny random-weight GGUF of the test suite (expect about 0%), else none.

Then accuracy by hardness, breakdowns, error classes, a paired comparison with McNemar's exact test, an
HTML report, and, when Spider is here, the committed Spider dev runs of `results/runs/`.

`T2S_NOTEBOOK_MODEL=auto|qwen|tiny|none` chooses the model (default auto)."""),
    ("code", SETUP),
    ("code", '''\
import shutil

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import sqlglot

import t2s_bench as t
from t2s_bench.paths import REPO_ROOT
from t2s_bench.records import Prediction
from t2s_bench.reporting import analysis

%matplotlib inline
sns.set_theme(style="whitegrid", palette="colorblind")
# fast mode: the 16 questions of one demo database (4 per hardness level) instead of all 48
SELECTION = {"db": "school"} if FAST else {}
RUNS = Path("runs")'''),
    ("md", "## Run 1: the oracle"),
    ("code", '''\
oracle = t.evaluate("oracle", dataset="demo", out=RUNS / "demo-oracle", **SELECTION)
print(oracle.table())'''),
    ("md", """\
## Run 2: a custom system object

A system gets a batch of `Task`s (question, schema, database path) and returns one `Prediction` each.
`config()` is hashed into the run's cache key: the same config into the same directory generates
nothing new."""),
    ("code", '''\
class DropWhereSystem:
    """Answers the gold SQL without its outermost WHERE clause: wrong wherever the filter matters."""

    name = "drop-where"

    def predict(self, tasks):
        out = []
        for task in tasks:
            tree = sqlglot.parse_one(task.example.query, read="sqlite")
            tree.set("where", None)
            sql = tree.sql(dialect="sqlite")
            out.append(Prediction(task.example.index, task.example.db_id, sql, raw_output=sql))
        return out

    def config(self):
        return {"system": self.name, "version": 1}


drop_where = t.evaluate(DropWhereSystem(), dataset="demo", out=RUNS / "demo-drop-where", **SELECTION)
print(f"{drop_where.name}: EX {drop_where.ex:.1%}, EM {drop_where.em:.1%}")'''),
    ("md", """\
## Run 3: zero-shot with a model

The model comes from local files only (`resolve_model_offline` never downloads): the catalog's
Qwen2.5-Coder-0.5B Q4_K_M GGUF when `t2s-bench models list` shows it cached, else the tiny model
(random weights: it writes nonsense, which the error classes below show)."""),
    ("code", '''\
from t2s_bench.backends.catalog import resolve_model_offline


def pick_model():
    """(label, GGUF path) of the model to run, or (None, None)."""
    choice = os.environ.get("T2S_NOTEBOOK_MODEL", "auto")
    if choice in ("auto", "qwen"):
        qwen = resolve_model_offline("qwen2.5-coder-0.5b-gguf")
        if qwen is not None:
            return "qwen-0.5b", qwen
        print("Qwen2.5-Coder-0.5B GGUF not in the model cache (`t2s-bench models list`)")
    if choice in ("auto", "tiny"):
        try:
            import llama_cpp  # noqa: F401  (the GGUF backend)

            from t2s_bench.testing.tiny_model import build_tiny_model

            return "tiny", build_tiny_model(os.environ.get("T2S_TINY_MODEL_DIR") or "tiny_model").gguf_path
        except ImportError as e:
            print(f"no tiny model either ({e}): install the gguf and hf extras")
    return None, None


model_label, model_path = pick_model()
zero_shot = None
if model_path is not None:
    zero_shot = t.evaluate("zero-shot", dataset="demo", model=str(model_path),
                           out=RUNS / f"demo-zero-shot-{model_label}", **SELECTION)
    print(f"{model_label} ({model_path.name}): EX {zero_shot.ex:.1%}, EM {zero_shot.em:.1%}")'''),
    ("md", """\
## The runs side by side

`RunResult.metrics` is `metrics.json`: per hardness level and overall (`all`), counts and accuracies,
plus throughput. EX counts only scored questions; skipped ones (a missing database) are reported apart."""),
    ("code", '''\
results = [r for r in (drop_where, zero_shot, oracle) if r is not None]
LEVELS = ["easy", "medium", "hard", "extra", "all"]


def run_row(r):
    levels = r.metrics["levels"]
    row = {"run": r.name, "system": r.system, "questions": levels["all"]["count"]}
    row.update({f"EX {lv}": levels[lv]["exec"] for lv in LEVELS})
    row["EM all"] = levels["all"]["exact"]
    row["latency p50 (s)"] = r.metrics.get("throughput", {}).get("latency_p50_s")
    return row


overview = pd.DataFrame([run_row(r) for r in results]).set_index("run")
overview.style.format({c: "{:.1%}" for c in overview.columns if c.startswith(("EX", "EM"))}, na_rep="–")'''),
    ("md", "## Accuracy by hardness\n\n`RunResult.records` is one row per question (a pandas DataFrame): the same numbers, computed from the records."),
    ("code", '''\
records = pd.concat({r.system: r.records for r in results}, names=["system", "row"]).reset_index("system")
records["correct"] = records["exec_match"].astype(float)
fig, ax = plt.subplots(figsize=(7, 3.2))
sns.barplot(data=records, x="hardness", y="correct", hue="system", order=LEVELS[:-1], errorbar=None, ax=ax)
ax.set_ylabel("execution accuracy")
ax.set_ylim(0, 1.05)
plt.show()
records.pivot_table(index="system", columns="hardness", values="correct", aggfunc="mean")[LEVELS[:-1]]'''),
    ("md", """\
## Breakdowns

`t2s_bench.reporting.analysis` loads run directories as tables with derived columns (tables in the
gold query, aggregation, nesting, schema size) and groups them; the HTML report shows the same tables."""),
    ("code", '''\
loaded = analysis.load_runs([r.path for r in results])
print("available:", analysis.available_breakdowns(loaded))
for by in ("n_gold_tables", "nesting", "schema_tables"):
    table = analysis.breakdown(loaded, by)
    if not table.empty:
        wide = table.pivot(index="group", columns="system", values="exec")
        wide.insert(0, "questions", table.groupby("group", observed=True)["n"].first())
        print(f"\\n{analysis.BREAKDOWNS[by][0]}: execution accuracy")
        display(wide.round(3))'''),
    ("md", """\
## Error classes

Every failure gets one class, decided in a fixed order (`t2s_bench.scoring.errors.ERROR_CLASSES`):
empty output, timeout, syntax error, a table or column the database lacks (`hallucinated_schema`),
runtime error, then, for SQL that runs, which part differs from the gold (tables, aggregation,
projection, filter, ordering, value)."""),
    ("code", '''\
errors = analysis.error_distribution(loaded)
ax = errors.plot(kind="barh", stacked=True, figsize=(8, 0.6 * len(errors) + 1.5), colormap="tab20")
ax.set_xlabel("questions")
ax.legend(bbox_to_anchor=(1.02, 1), loc="upper left", fontsize=8)
plt.show()
errors'''),
    ("code", '''\
worst = min((r for r in results if r is not oracle), key=lambda r: r.ex)
failures = worst.records[worst.records["error_class"].notna()]
print(f"{worst.system}: one failure per class")
failures.groupby("error_class").head(1)[["error_class", "error_reason", "question", "gold", "pred"]]'''),
    ("md", """\
## A paired comparison

`RunResult.compare(baseline)` pairs the two runs question by question: the difference in accuracy
with a paired bootstrap interval, the discordant questions (right in one run only), and McNemar's exact
p-value, which uses only those discordant pairs."""),
    ("code", '''\
system, baseline = (zero_shot, drop_where) if zero_shot is not None else (drop_where, oracle)
comparison = system.compare(baseline)
print(f"{system.system} vs {baseline.system} on {comparison['n']} questions: "
      f"{comparison['difference']:+.1%} EX [{comparison['low']:+.1%}, {comparison['high']:+.1%}], "
      f"{comparison['only_system']} won / {comparison['only_baseline']} lost, McNemar p = {comparison['p_value']:.3g}")
comparison'''),
    ("md", """\
## The HTML report

`t.report(runs, out=...)` writes one self-contained HTML file (tables with confidence intervals, paired
tests against the baseline, breakdowns, error classes and case studies); `fmt="md"` gives Markdown."""),
    ("code", '''\
report_runs = [r for r in (drop_where, zero_shot, oracle) if r is not None]
html = t.report(report_runs, out="reports/demo.html", baseline=drop_where.name, title="Demo runs")
markdown = t.report(report_runs, out="reports/demo.md", baseline=drop_where.name)
print(f"{html} ({html.stat().st_size / 1024:.0f} KiB)")
print("\\n".join(markdown.read_text().splitlines()[:30]))'''),
    ("md", """\
## The committed Spider dev runs

`results/runs/` keeps what cannot be recomputed (config, predictions, metrics); `t.load_run` scores a
packed run on first load (it needs Spider here). The copies below keep the repository untouched.
Zero-shot Qwen2.5-Coder-0.5B against a vote over five few-shot/RAG example sets, 972 executable
dev questions, one H200."""),
    ("code", '''\
from t2s_bench.paths import spider_dir

committed_root = Path(os.environ.get("T2S_RESULTS_DIR") or REPO_ROOT / "results") / "runs"
names = ["spider-dev-h200-zero-shot", "spider-dev-h200-vote-five-example-sets"]
committed = {}
if spider_dir() is None:
    print("Spider not found (T2S_SPIDER_DIR): committed Spider runs not loaded")
elif not all((committed_root / n).is_dir() for n in names):
    print(f"{committed_root}: committed runs not here")
else:
    for n in names:
        copy = Path("committed") / n
        if not copy.is_dir():
            shutil.copytree(committed_root / n, copy)
        committed[n] = t.load_run(copy)
    spider = pd.DataFrame([run_row(r) for r in committed.values()]).set_index("run")
    display(spider.style.format({c: "{:.1%}" for c in spider.columns if c.startswith(("EX", "EM"))}))'''),
    ("code", '''\
spider_comparison = None
if committed:
    zs, vote = committed[names[0]], committed[names[1]]
    spider_comparison = vote.compare(zs)
    c = spider_comparison
    print(f"vote vs zero-shot on {c['n']} questions: {c['difference']:+.1%} EX [{c['low']:+.1%}, {c['high']:+.1%}], "
          f"{c['only_system']} won / {c['only_baseline']} lost, McNemar p = {c['p_value']:.2g}")
    spider_runs = analysis.load_runs([r.path for r in committed.values()])
    display(analysis.error_distribution(spider_runs))
    by_level = analysis.breakdown(spider_runs, "hardness")
    fig, ax = plt.subplots(figsize=(7, 3.2))
    sns.barplot(data=by_level, x="group", y="exec", hue="system", ax=ax)
    ax.legend(fontsize=8)
    ax.set_xlabel("hardness")
    ax.set_ylabel("execution accuracy")
    plt.show()'''),
    ("md", "## Summary for the test suite"),
    ("code", '''\
summary = {
    "model": model_label,
    "runs": {r.system: {"path": str(r.path), "n": len(r.records), "ex": r.ex, "em": r.em} for r in results},
    "comparison": {"system": system.system, "baseline": baseline.system, **comparison},
    "error_distribution": errors.to_dict(orient="index"),
    "report": {"html": str(html), "html_bytes": html.stat().st_size, "markdown": str(markdown)},
    "committed": {n: {"path": str(r.path), "ex": r.ex, "n_scored": r.metrics["levels"]["all"]["n_scored"]}
                  for n, r in committed.items()},
    "committed_comparison": spider_comparison,
}
Path("03_evaluation.json").write_text(json.dumps(summary, indent=1, default=str))
print(json.dumps({k: summary[k] for k in ("model", "runs")}, indent=1))'''),
]


NOTEBOOKS = {
    "01_data_exploration.ipynb": DATA_EXPLORATION,
    "02_training.ipynb": TRAINING,
    "03_evaluation.ipynb": EVALUATION,
}


def build_notebook(stem: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """A notebook without outputs, with stable cell ids (`<stem>-NN`) so a rebuild is byte-identical."""
    nb = new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for i, (kind, source) in enumerate(cells):
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        cell.id = f"{stem.split('_')[0]}-{i:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(name: str) -> str:
    return nbformat.writes(build_notebook(Path(name).stem, NOTEBOOKS[name])) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write the notebooks to (default: here)")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for name in NOTEBOOKS:
        text, path = render(name), args.out / name
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path} ({len(text)} bytes)")
    if stale:
        print("out of date (run python notebooks/build.py):", ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
