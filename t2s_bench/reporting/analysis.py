"""Run directories as tables: loading, accuracy breakdowns, error distributions, case studies.

A run directory holds `config.json`, `metrics.json` and `scores.jsonl` (see docs/ARCHITECTURE.md).
Accuracies count only scored examples: skipped ones (exec_match null) leave the denominator and are
reported as a separate count.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlglot import exp

from t2s_bench.datasets.schema import Schema
from t2s_bench.records import RECORD_FIELDS
from t2s_bench.reporting import statistics as st
from t2s_bench.rundir import RunDir
from t2s_bench.scoring.errors import ERROR_CLASSES, classify_error
from t2s_bench.scoring.hardness import LEVELS
from t2s_bench.scoring.metrics import all_metrics, apply_metrics
from t2s_bench.sql.features import sql_features
from t2s_bench.sql.parse import SQLParseError, parse_sql

log = logging.getLogger(__name__)

HARDNESS_LEVELS = list(LEVELS)
CURVE_FILES = ["curves.json", "curves.csv"]


def metric_fields() -> dict[str, str]:
    """Metric name -> score-record column, for every registered metric (exec, exact, extras)."""
    return {m.name: m.field for m in all_metrics()}


@dataclass
class Run:
    name: str
    config: dict
    metrics: dict
    records: pd.DataFrame  # one row per score record, indexed by example index, plus derived columns
    path: Path | None = None
    curves: pd.DataFrame | None = None  # training curves (step, train_loss, val_loss, val_exec_acc, lr)
    notes: list[str] = field(default_factory=list)  # how derived columns were obtained
    schemas: dict[str, Schema] | None = None  # db_id -> Schema, when the dataset was loadable

    @property
    def dataset_name(self) -> str | None:
        ds = self.config.get("dataset")
        return ds.get("name") if isinstance(ds, dict) else ds


# ---------------------------------------------------------------- loading


def load_run(path: str | Path, *, name: str | None = None, schemas: dict[str, Schema] | None = None) -> Run:
    """Load one run directory. `schemas` (db_id -> Schema) enables error re-classification and schema sizes.
    A run without scores.jsonl (a packed, committed run) is scored first, when its dataset is here."""
    rundir = RunDir(path)
    if not rundir.scores_path.is_file():
        if not rundir.predictions_path.is_file():
            raise FileNotFoundError(f"{rundir.path}: no scores.jsonl and no predictions (is this a run directory?)")
        from t2s_bench.runner import score_run

        log.info("%s has no scores: scoring its predictions", rundir.path)
        score_run(rundir.path)
    config = rundir.read_config()
    metrics = rundir.read_metrics()
    run = runs_from_records(list(rundir.read_scores()), name=name or rundir.path.name, config=config,
                            metrics=metrics, schemas=schemas)
    run.path = rundir.path
    run.schemas = schemas
    run.curves = load_curves(rundir.path)
    return run


def runs_from_records(records: list[dict], *, name: str, config: dict | None = None, metrics: dict | None = None,
                      schemas: dict[str, Schema] | None = None) -> Run:
    """A Run from score records in memory (what load_run does after reading the files)."""
    if not records:
        raise ValueError(f"{name}: no score records")
    missing = [f for f in ("index", "db_id", "gold", "exec_match") if f not in records[0]]
    if missing:
        raise ValueError(f"{name}: score records lack {missing}")
    # metrics registered after this run was scored are computed now, from the records
    apply_metrics(records, lambda db_id: (schemas or {}).get(db_id), only_missing=True)
    df = pd.DataFrame.from_records(records)
    for f in RECORD_FIELDS:
        if f not in df.columns:
            df[f] = None
    # missing values as None (not NaN) in the record fields, so rows read back as score records
    df[RECORD_FIELDS] = df[RECORD_FIELDS].astype(object).where(df[RECORD_FIELDS].notna(), None)
    if df["index"].duplicated().any():
        raise ValueError(f"{name}: duplicate example indices in scores")
    df = df.set_index("index", drop=False).sort_index()
    df["hardness"] = df["hardness"].fillna("unknown")
    df["scored"] = df["exec_match"].notna()
    notes = []
    df = _fill_error_classes(df, schemas, notes)
    features = df["gold"].map(gold_features)
    df["n_gold_tables"] = features.map(lambda f: f[0])
    df["has_aggregation"] = features.map(lambda f: f[1])
    df["has_nesting"] = features.map(lambda f: f[2])
    return Run(name=name, config=config or {}, metrics=metrics or {}, records=df, notes=notes)


def load_runs(paths, *, schemas: dict[str, Schema] | None = None, dataset: str | None = None) -> list[Run]:
    """Load several run directories; schemas come from `schemas`, else from the named/configured dataset."""
    paths = [Path(p) for p in paths]
    if schemas is None:
        name = dataset
        if name is None:
            for p in paths:
                cfg = _read_json(p / "config.json")
                ds = cfg.get("dataset")
                name = ds.get("name") if isinstance(ds, dict) else ds
                if name:
                    break
        schemas = load_schemas(name) if name else None
    runs = [load_run(p, schemas=schemas) for p in paths]
    names = [r.name for r in runs]
    if len(set(names)) != len(names):  # same directory name in different folders
        for i, r in enumerate(runs):
            r.name = f"{r.name} ({i + 1})"
    for r in runs:
        add_schema_sizes(r, schemas)
    return runs


def load_schemas(dataset_name: str) -> dict[str, Schema] | None:
    """db_id -> Schema of a named dataset, or None when it cannot be loaded here."""
    from t2s_bench.datasets import load_dataset

    try:
        ds = load_dataset(dataset_name)
    except (FileNotFoundError, ValueError, KeyError, OSError) as e:
        log.info("schemas of %r unavailable (%s): schema-size breakdown falls back to question counts",
                 dataset_name, e)
        return None
    return ds.schemas


def add_schema_sizes(run: Run, schemas: dict[str, Schema] | None) -> None:
    """Columns schema_tables / schema_columns (from schemas), else questions-per-database as the size proxy."""
    df = run.records
    if schemas and all(db in schemas for db in df["db_id"].unique()):
        df["schema_tables"] = df["db_id"].map(lambda d: len(schemas[d].tables))
        df["schema_columns"] = df["db_id"].map(lambda d: schemas[d].n_columns)
        run.notes.append("schema sizes from the dataset's schemas")
    else:
        df["schema_tables"] = np.nan
        df["schema_columns"] = np.nan
        df["db_questions"] = df["db_id"].map(df["db_id"].value_counts())
        run.notes.append("schemas unavailable: databases bucketed by their number of questions instead of size")


def load_curves(folder: str | Path) -> pd.DataFrame | None:
    """Training curves from curves.json (list of rows or dict of columns) or curves.csv, if present."""
    folder = Path(folder)
    for fname in CURVE_FILES:
        p = folder / fname
        if not p.is_file():
            continue
        if fname.endswith(".json"):
            data = json.loads(p.read_text(encoding="utf-8"))
            if isinstance(data, dict) and "steps" in data and isinstance(data["steps"], list):
                data = data["steps"]
            df = pd.DataFrame(data)
        else:
            with open(p, newline="", encoding="utf-8") as f:
                df = pd.DataFrame(list(csv.DictReader(f)))
            df = df.apply(pd.to_numeric, errors="coerce")
        if "step" not in df.columns or df.empty:
            log.warning("%s: no 'step' column, ignored", p)
            return None
        return df.sort_values("step").reset_index(drop=True)
    return None


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON ({e.msg})") from None


def _fill_error_classes(df: pd.DataFrame, schemas, notes: list[str]) -> pd.DataFrame:
    """Classify failures whose record carries no error_class (older runs, or scoring without classes)."""
    need = df["scored"] & (df["exec_match"] != True) & df["error_class"].isna()  # noqa: E712
    skipped = ~df["scored"] & df["error_class"].isna()
    if need.any():
        classes = [
            classify_error(rec, (schemas or {}).get(rec["db_id"]))
            for rec in df.loc[need, RECORD_FIELDS].to_dict("records")
        ]
        df.loc[need, "error_class"] = [c for c, _ in classes]
        df.loc[need, "error_reason"] = [r for _, r in classes]
        notes.append(f"{int(need.sum())} error classes computed at report time")
    df.loc[skipped, "error_class"] = "skipped"
    df.loc[skipped, "error_reason"] = df.loc[skipped, "skipped"].fillna("skipped")
    return df


def gold_features(sql: str) -> tuple[int | None, bool | None, bool | None]:
    """(distinct tables, aggregation or GROUP BY, subquery or set operation) of a gold query."""
    f = sql_features(sql or "")
    if not f["parsed"]:
        return None, None, None
    return f["tables"], bool(f["aggregate"] or f["group_by"]), bool(f["nested"] or f["set_op"])


# ---------------------------------------------------------------- question sets


def common_questions(runs: list[Run]) -> tuple[list[Run], dict]:
    """Runs restricted to the questions every run scored, so a comparison is paired; and what was
    left out of each. Runs over the same questions come back unchanged."""
    sets = [set(r.records.index) for r in runs]
    common = set.intersection(*sets)
    info = {"n_common": len(common), "per_run": {r.name: len(s) for r, s in zip(runs, sets)},
            "left_out": {r.name: sorted(int(i) for i in s - common)[:50] for r, s in zip(runs, sets) if s - common}}
    if all(s == common for s in sets):
        return runs, info
    keep = sorted(common)
    restricted = []
    for r in runs:
        copy = Run(name=r.name, config=r.config, metrics=r.metrics, records=r.records.loc[keep], path=r.path,
                   curves=r.curves, notes=list(r.notes), schemas=r.schemas)
        restricted.append(copy)
    return restricted, info


# ---------------------------------------------------------------- accuracies


def outcomes(df: pd.DataFrame, metric: str) -> np.ndarray:
    """0/1 outcomes of one metric ('exec' or 'exact') over the rows where it is defined."""
    col = df[metric_fields()[metric]]
    return col[col.notna()].astype(bool).to_numpy()


def summary(runs: list[Run], *, levels=("easy", "medium", "hard", "extra", "overall"), **ci_kwargs) -> list[dict]:
    """Per system: accuracy with bootstrap CI, exec and exact, per hardness level and overall."""
    out = []
    for run in runs:
        df = run.records
        row = {"system": run.name, "n": len(df), "skipped": int((~df["scored"]).sum()), "cells": {}}
        for level in levels:
            part = df if level == "overall" else df[df["hardness"] == level]
            row["cells"][level] = {m: st.accuracy(outcomes(part, m), **ci_kwargs).as_dict() for m in metric_fields()}
        out.append(row)
    return out


def compare_to_baseline(runs: list[Run], baseline: str, **ci_kwargs) -> list[dict]:
    """Each other system vs the baseline on the examples both scored: difference, CI, McNemar p."""
    base = _find(runs, baseline)
    out = []
    for run in runs:
        if run is base:
            continue
        row = {"system": run.name, "baseline": base.name}
        for metric, col in metric_fields().items():
            row[metric] = compare_columns(base.records[col], run.records[col], **ci_kwargs)
        out.append(row)
    return out


def compare_columns(baseline: pd.Series, system: pd.Series, **ci_kwargs) -> dict:
    """Paired comparison of two verdict columns (indexed by example) on the examples both scored."""
    common = baseline.index.intersection(system.index)
    a, b = baseline.loc[common], system.loc[common]
    both = a.notna() & b.notna()
    return st.compare_paired(a[both].astype(bool).to_numpy(), b[both].astype(bool).to_numpy(), **ci_kwargs).as_dict()


def _find(runs: list[Run], name: str) -> Run:
    for r in runs:
        if r.name == name:
            return r
    raise ValueError(f"baseline {name!r} is not one of the runs: {[r.name for r in runs]}")


# ---------------------------------------------------------------- breakdowns

def _bucket_tables(n) -> str:
    if n is None or pd.isna(n):
        return "unparsed"
    return str(int(n)) if n < 4 else "4+"


def _bucket(edges: list[int], label_fmt="{lo}–{hi}"):
    def f(v) -> str:
        if v is None or pd.isna(v):
            return "unknown"
        lo = 0
        for hi in edges:
            if v <= hi:
                return label_fmt.format(lo=lo + 1, hi=hi) if lo + 1 != hi else str(hi)
            lo = hi
        return f">{edges[-1]}"
    return f


def _yes_no(v) -> str:
    return "unparsed" if v is None or pd.isna(v) else ("yes" if v else "no")


# name -> (title, function row -> group label, order of groups or None)
BREAKDOWNS = {
    "hardness": ("Difficulty (Spider hardness)", lambda df: df["hardness"], HARDNESS_LEVELS + ["unknown"]),
    "n_gold_tables": ("Tables in the gold query", lambda df: df["n_gold_tables"].map(_bucket_tables),
                      ["0", "1", "2", "3", "4+", "unparsed"]),
    "aggregation": ("Aggregation in the gold query", lambda df: df["has_aggregation"].map(_yes_no),
                    ["no", "yes", "unparsed"]),
    "nesting": ("Subquery or set operation in the gold query", lambda df: df["has_nesting"].map(_yes_no),
                ["no", "yes", "unparsed"]),
    "schema_tables": ("Schema size (tables in the database)",
                      lambda df: df["schema_tables"].map(_bucket([3, 5, 8])), None),
    "schema_columns": ("Schema size (columns in the database)",
                       lambda df: df["schema_columns"].map(_bucket([15, 30, 60])), None),
    "db_questions": ("Database by number of questions (schemas unavailable)",
                     lambda df: df["db_questions"].map(_bucket([10, 20, 40])), None),
    "db_id": ("Database", lambda df: df["db_id"], None),
}


def breakdown(runs: list[Run], by: str) -> pd.DataFrame:
    """Long table: group, system, n, exec, exact (accuracies over scored examples) for one breakdown."""
    title, key, order = BREAKDOWNS[by]
    rows = []
    for run in runs:
        df = run.records
        try:
            groups = key(df)
        except KeyError:
            return pd.DataFrame(columns=["group", "system", "n", "exec", "exact"])
        if groups.isna().all() or (groups == "unknown").all():
            return pd.DataFrame(columns=["group", "system", "n", "exec", "exact"])
        for g, part in df.groupby(groups, sort=False):
            ex, em = outcomes(part, "exec"), outcomes(part, "exact")
            rows.append({"group": str(g), "system": run.name, "n": len(part),
                         "exec": float(ex.mean()) if ex.size else np.nan,
                         "exact": float(em.mean()) if em.size else np.nan})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    groups = list(dict.fromkeys(out["group"]))
    if order:
        groups = [g for g in order if g in groups] + [g for g in groups if g not in order]
    else:
        groups = sorted(groups, key=_natural_key)
    out["group"] = pd.Categorical(out["group"], categories=groups, ordered=True)
    return out.sort_values(["group", "system"], kind="stable").reset_index(drop=True)


def _natural_key(label: str):
    digits = "".join(ch for ch in label.split("–")[0] if ch.isdigit())
    return (0, int(digits), label) if digits else (1, 0, label)


def available_breakdowns(runs: list[Run]) -> list[str]:
    """Breakdowns that have data for these runs (schema sizes, or the questions-per-database proxy)."""
    names = ["hardness", "n_gold_tables", "aggregation", "nesting"]
    df = runs[0].records
    if "schema_tables" in df and df["schema_tables"].notna().any():
        names += ["schema_tables", "schema_columns"]
    elif "db_questions" in df:
        names.append("db_questions")
    return names + ["db_id"]


# ---------------------------------------------------------------- errors and case studies


def error_distribution(runs: list[Run]) -> pd.DataFrame:
    """Counts: rows = systems, columns = error classes (in decision order), failures and skips only."""
    counts = {r.name: r.records["error_class"].dropna().value_counts() for r in runs}
    df = pd.DataFrame(counts).T.fillna(0).astype(int)
    cols = [c for c in ERROR_CLASSES if c in df.columns] + [c for c in df.columns if c not in ERROR_CLASSES]
    return df.reindex(columns=cols).reindex([r.name for r in runs]).fillna(0).astype(int)


def schema_excerpt(schema: Schema | None, sqls: list[str], max_tables: int = 4) -> str:
    """'table(col, col, …)' lines for the tables the given queries use (or the first tables)."""
    if schema is None:
        return ""
    used: list[str] = []
    for sql in sqls:
        try:
            tree = parse_sql(sql or "")
        except SQLParseError:
            continue
        for t in tree.find_all(exp.Table):
            if schema.table(t.name) is not None and t.name.lower() not in used:
                used.append(t.name.lower())
    tables = [schema.table(n) for n in used] or schema.tables[:2]
    lines = []
    for t in tables[:max_tables]:
        cols = ", ".join(c.name for c in t.columns[:14]) + (", …" if len(t.columns) > 14 else "")
        lines.append(f"{t.name}({cols})")
    return "\n".join(lines)


def case_studies(runs: list[Run], *, per_class: int = 2, schemas: dict[str, Schema] | None = None) -> list[dict]:
    """Representative failures per (system, error class): evenly spaced over the sorted indices."""
    out = []
    for run in runs:
        df = run.records
        for cls in ERROR_CLASSES:
            if cls == "skipped":
                continue
            part = df[df["error_class"] == cls].sort_index()
            if part.empty:
                continue
            k = min(per_class, len(part))
            positions = sorted({int(round(p)) for p in np.linspace(0, len(part) - 1, k + 2)[1:-1]}) or [0]
            for pos in positions:
                rec = part.iloc[pos]
                schema = (schemas or run.schemas or {}).get(rec["db_id"])
                out.append({
                    "system": run.name, "error_class": cls, "reason": rec["error_reason"] or "",
                    "index": int(rec["index"]), "db_id": rec["db_id"], "question": rec["question"] or "",
                    "hardness": rec["hardness"], "gold": rec["gold"] or "", "pred": rec["pred"] or "",
                    "pred_error": rec["pred_error"], "gold_result": _result(rec["gold_result"]),
                    "pred_result": _result(rec["pred_result"]),
                    "schema": schema_excerpt(schema, [rec["gold"], rec["pred"]]),
                    "n_in_class": len(part),
                })
    return out


def _result(value):
    return value if isinstance(value, dict) else None
