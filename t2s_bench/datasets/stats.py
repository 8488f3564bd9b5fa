"""Descriptive statistics of Spider-format datasets, written as Markdown and JSON.

Schema sizes come from the schema model; SQL structure (joins, nesting, set operations, clauses)
from sqlglot parse trees; difficulty from `t2s_bench.scoring.hardness` when that module is present.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from t2s_bench.datasets.spider import Dataset
from t2s_bench.scoring.hardness import LEVELS
from t2s_bench.sql.features import sql_features

SPIDER_KB_STEM = "spider_dataset_knowledge_base"


def _distribution(values: pd.Series) -> dict:
    if values.empty:
        return {}
    return {
        "mean": round(float(values.mean()), 2),
        "median": round(float(values.median()), 2),
        "p90": round(float(values.quantile(0.9)), 2),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def _stats_features(sql: str) -> dict:
    feats = dict(sql_features(sql))
    feats.pop("tables")
    return feats


def _hardness_fn():
    try:
        from t2s_bench.scoring.hardness import hardness
    except ImportError:
        return None
    return hardness


def dataset_stats(dataset: Dataset) -> dict:
    """Counts, schema sizes, SQL length and structure, and difficulty of one dataset (JSON-ready)."""
    db_ids = sorted({e.db_id for e in dataset.examples})
    per_db = []
    for db in db_ids:
        row = {"db_id": db, "examples": sum(1 for e in dataset.examples if e.db_id == db),
               "present": dataset.db_path(db) is not None}
        try:
            schema = dataset.schema(db)
            row.update(tables=len(schema.tables), columns=schema.n_columns, foreign_keys=len(schema.foreign_keys))
        except KeyError:
            row.update(tables=None, columns=None, foreign_keys=None)
        per_db.append(row)
    dbs = pd.DataFrame(per_db, columns=["db_id", "examples", "present", "tables", "columns", "foreign_keys"])

    feats = pd.DataFrame([_stats_features(e.query) for e in dataset.examples])
    parsed = feats[feats["parsed"]] if not feats.empty else feats
    n = len(dataset)

    def share(mask) -> float:
        return round(float(mask.sum()) / n, 4) if n else 0.0

    stats = {
        "dataset": dataset.name,
        "counts": {
            "examples": n,
            "databases": len(db_ids),
            "databases_present": int(dbs["present"].sum()) if not dbs.empty else 0,
            "tables": int(dbs["tables"].fillna(0).sum()),
            "columns": int(dbs["columns"].fillna(0).sum()),
            "foreign_keys": int(dbs["foreign_keys"].fillna(0).sum()),
            "examples_missing_database": sum(dataset.missing_databases().values()),
            "queries_not_parsed": int((~feats["parsed"]).sum()) if not feats.empty else 0,
        },
        "schema_size": {k: _distribution(dbs[k].dropna().astype(float)) for k in ("tables", "columns", "foreign_keys")},
        "sql_length": {
            "chars": _distribution(feats["chars"].astype(float)) if n else {},
            "tokens": _distribution(feats["tokens"].dropna().astype(float)) if n else {},
        },
        "sql_structure": {},
        "databases": per_db,
    }
    if n and not parsed.empty:
        joins = parsed["joins"].astype(int)
        stats["sql_structure"] = {
            "with_join": share(joins > 0),
            "joins_per_query": {str(k): int(v) for k, v in joins.clip(upper=4).value_counts().sort_index().items()},
            "nested": share(parsed["nested"].astype(bool)),
            "set_operation": share(parsed["set_op"].notna()),
            "set_operations": {k: int(v) for k, v in parsed["set_op"].dropna().value_counts().items()},
            "group_by": share(parsed["group_by"].astype(bool)),
            "having": share(parsed["having"].astype(bool)),
            "order_by": share(parsed["order_by"].astype(bool)),
            "limit": share(parsed["limit"].astype(bool)),
            "aggregate": share(parsed["aggregate"].astype(bool)),
        }
    hardness = _hardness_fn()
    if hardness is None:
        stats["difficulty"] = None
        stats["difficulty_note"] = "omitted: t2s_bench.scoring.hardness is not available"
    else:
        levels: dict[str, int] = {}
        for e in dataset.examples:
            try:
                level = hardness(e.query, dataset.schema(e.db_id))
            except Exception as err:  # one unparsable gold query must not sink the statistics
                level = f"unrated ({type(err).__name__})"
            levels[level] = levels.get(level, 0) + 1
        ordered = {k: levels.pop(k) for k in LEVELS if k in levels}
        stats["difficulty"] = {**ordered, **levels}
    return stats


# --- Markdown ---------------------------------------------------------------------------------------


def _md_table(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |")
    return "\n".join(lines)


def _section(stats: dict) -> str:
    c = stats["counts"]
    out = [f"## {stats['dataset']}", ""]
    out.append(_md_table(pd.DataFrame([{"quantity": k.replace("_", " "), "value": v} for k, v in c.items()])))
    out += ["", "### Schema size per database", ""]
    out.append(_md_table(pd.DataFrame(stats["schema_size"]).T.reset_index(names="per database")))
    out += ["", "### SQL length", ""]
    out.append(_md_table(pd.DataFrame(stats["sql_length"]).T.reset_index(names="unit")))
    if stats["sql_structure"]:
        s = stats["sql_structure"]
        out += ["", "### SQL structure (share of queries)", ""]
        flat = {k: v for k, v in s.items() if not isinstance(v, dict)}
        out.append(_md_table(pd.DataFrame([{"feature": k.replace("_", " "), "share": f"{v:.1%}"} for k, v in flat.items()])))
        out += ["", "Joins per query (4 = four or more): "
                + ", ".join(f"{k}: {v}" for k, v in s["joins_per_query"].items()),
                "", "Set operations: " + (", ".join(f"{k}: {v}" for k, v in s["set_operations"].items()) or "none")]
    out += ["", "### Difficulty (Spider hardness)", ""]
    if stats["difficulty"]:
        total = sum(stats["difficulty"].values())
        out.append(_md_table(pd.DataFrame(
            [{"level": k, "examples": v, "share": f"{v / total:.1%}"} for k, v in stats["difficulty"].items()])))
    else:
        out.append(stats.get("difficulty_note", "not available"))
    dbs = pd.DataFrame(stats["databases"])
    if not dbs.empty:
        out += ["", "### Databases", ""]
        out.append(_md_table(dbs.sort_values("examples", ascending=False)))
    return "\n".join(out)


def stats_markdown(all_stats: list[dict], title: str) -> str:
    parts = [f"# {title}", "",
             "Generated by `t2s-bench data stats`: counts, schema sizes, SQL length and structure "
             "(from sqlglot parse trees) and Spider hardness levels.", ""]
    parts += [_section(s) + "\n" for s in all_stats]
    return "\n".join(parts)


def write_stats(all_stats: list[dict], out_dir: str | Path, stem: str, title: str) -> tuple[Path, Path]:
    """Write `<stem>.md` and `<stem>.json` under out_dir; return both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / f"{stem}.md", out / f"{stem}.json"
    md.write_text(stats_markdown(all_stats, title), encoding="utf-8")
    js.write_text(json.dumps(all_stats if len(all_stats) > 1 else all_stats[0], indent=2), encoding="utf-8")
    return md, js
