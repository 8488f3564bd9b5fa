"""How well linking and value retrieval work on a dataset with gold SQL: table and column recall,
prompt tokens against the full DDL as a function of k, and value-retrieval recall.

Recall per example is strict: a pruned schema that drops one gold table (column) is a miss; the
micro recall (share of all gold tables kept) is reported beside it."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from t2s_bench.datasets import Dataset
from t2s_bench.linking.base import get_linker
from t2s_bench.linking.gold import gold_needs
from t2s_bench.linking.prune import DEFAULT_K, DEFAULT_MARGIN, prune_schema
from t2s_bench.linking.values import value_index, values_for_prompt

DEFAULT_KS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Variant:
    k: int
    margin: float | None = None  # None here: plain top-k (prune_schema's default margin is not applied)
    columns: int | None = None

    @property
    def label(self) -> str:
        return f"k={self.k}" + (f" margin={self.margin}" if self.margin is not None else "") + (
            f" cols={self.columns}" if self.columns is not None else "")


def token_counter(model: str = "qwen2.5-coder-0.5b-gguf") -> tuple[Callable[[str], int], str]:
    """(count, description): the Qwen tokenizer from the cached GGUF's vocabulary (llama.cpp,
    vocab only), else an approximation: words plus punctuation marks (documented in the output)."""
    try:
        from llama_cpp import Llama

        from t2s_bench.backends.catalog import model_cache_path

        path = model_cache_path(model)
        if path.is_file():
            llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
            return (lambda text: len(llm.tokenize(text.encode(), add_bos=False, special=False))), \
                f"{model} tokenizer (llama.cpp, vocab only)"
    except Exception:  # no llama.cpp or no model: the approximation below
        pass
    pattern = re.compile(r"\w+|[^\w\s]")
    return (lambda text: len(pattern.findall(text))), "approximation: words + punctuation marks (no Qwen GGUF cached)"


def stored(db_path: Path, table: str, column: str, literal: str) -> bool:
    con = sqlite3.connect(f"file:{Path(db_path).resolve()}?mode=ro", uri=True)
    try:
        return con.execute(f'SELECT 1 FROM "{table}" WHERE "{column}" = ? LIMIT 1', (literal,)).fetchone() is not None
    except sqlite3.Error:
        return False
    finally:
        con.close()


def measure_linking(dataset: Dataset, linker: str = "combined", variants: list[Variant] | None = None,
                    *, values: bool = True, limit: int | None = None, count_tokens=None) -> dict:
    """Recall and schema tokens for each variant (k, margin, columns) of `linker` on `dataset`."""
    from t2s_bench.prompting.schema_text import serialize_schema

    variants = variants or [Variant(k) for k in DEFAULT_KS]
    count, tokenizer = count_tokens or token_counter()
    link = get_linker(linker)
    examples = [e for e in dataset.examples if dataset.db_path(e.db_id) is not None][:limit]
    if hasattr(link, "prefetch"):
        link.prefetch([e.question for e in examples])
    full_tokens: dict[str, int] = {}
    acc = {v: {"n": 0, "tables_all": 0, "columns_all": 0, "gold_tables": 0, "kept_tables": 0, "gold_columns": 0,
               "kept_columns": 0, "tokens": 0, "tokens_values": 0, "full": 0, "n_tables": 0, "n_schema_tables": 0} for v in variants}
    val = {"comparisons": 0, "stored": 0, "found": 0, "misses": []}
    skipped, start = 0, time.perf_counter()
    for e in examples:
        schema, db_path = dataset.schema(e.db_id), dataset.db_path(e.db_id)
        needs = gold_needs(e.query, schema)
        if needs is None:
            skipped += 1
            continue
        if e.db_id not in full_tokens:
            full_tokens[e.db_id] = count(serialize_schema(schema, "ddl"))
        scores = link.link(e.question, schema, db_path)
        index = value_index(db_path, schema) if values else None
        for v in variants:
            pruned = prune_schema(schema, scores, v.k, margin=v.margin, columns_per_table=v.columns)
            a = acc[v]
            kept_t = [t for t in needs.tables if pruned.keeps_table(t)]
            kept_c = [c for c in needs.columns if pruned.keeps_column(*c.split(".", 1))]
            a["n"] += 1
            a["tables_all"] += len(kept_t) == len(needs.tables)
            a["columns_all"] += len(kept_c) == len(needs.columns)
            a["gold_tables"] += len(needs.tables)
            a["kept_tables"] += len(kept_t)
            a["gold_columns"] += len(needs.columns)
            a["kept_columns"] += len(kept_c)
            a["tokens"] += count(serialize_schema(schema, "ddl", tables=pruned.tables, columns=pruned.columns))
            if index is not None:  # the same schema with the values the prompt would show
                shown_values = values_for_prompt(index, e.question, pruned.tables)
                a["tokens_values"] += count(serialize_schema(schema, "ddl", tables=pruned.tables,
                                                             columns=pruned.columns, values=shown_values))
            a["full"] += full_tokens[e.db_id]
            a["n_tables"] += len(pruned.tables)
            a["n_schema_tables"] += len(schema.tables)
        if values and needs.comparisons:
            shown = values_for_prompt(index, e.question)
            for table, column, literal in needs.comparisons:
                val["comparisons"] += 1
                t = schema.table(table)
                c = t.column(column) if t else None
                if t is None or c is None or not stored(db_path, t.name, c.name, literal):
                    continue
                val["stored"] += 1
                got = shown.get((t.name, c.name), [])
                if literal in got:
                    val["found"] += 1
                elif len(val["misses"]) < 40:
                    val["misses"].append({"index": e.index, "question": e.question, "column": f"{t.name}.{c.name}",
                                          "literal": literal, "shown": got})
    rows = []
    for v, a in acc.items():
        n = max(a["n"], 1)
        rows.append({
            "variant": v.label, "k": v.k, "margin": v.margin, "columns": v.columns, "n": a["n"],
            "table_recall": round(a["tables_all"] / n, 4),
            "table_recall_micro": round(a["kept_tables"] / max(a["gold_tables"], 1), 4),
            "column_recall": round(a["columns_all"] / n, 4),
            "column_recall_micro": round(a["kept_columns"] / max(a["gold_columns"], 1), 4),
            "mean_tables_kept": round(a["n_tables"] / n, 2), "mean_tables_in_schema": round(a["n_schema_tables"] / n, 2),
            "schema_tokens_full": round(a["full"] / n, 1), "schema_tokens_pruned": round(a["tokens"] / n, 1),
            "tokens_saved": round(1 - a["tokens"] / max(a["full"], 1), 4),
            **({"schema_tokens_pruned_values": round(a["tokens_values"] / n, 1),
                "tokens_saved_with_values": round(1 - a["tokens_values"] / max(a["full"], 1), 4)} if values else {}),
        })
    out = {
        "dataset": dataset.name, "linker": link.config(), "n_examples": len(examples), "n_unparsed_gold": skipped,
        "tokenizer": tokenizer, "seconds": round(time.perf_counter() - start, 1), "rows": rows,
        "definitions": {
            "table_recall": "share of examples whose pruned schema keeps every gold table (a dropped gold table is a miss)",
            "column_recall": "share of examples whose pruned schema keeps every gold column",
            "tokens_saved": "1 - pruned DDL tokens / full DDL tokens, summed over examples (schema text only)",
        },
    }
    if values:
        out["values"] = {
            "gold_string_comparisons": val["comparisons"], "stored_in_database": val["stored"],
            "found": val["found"], "recall": round(val["found"] / max(val["stored"], 1), 4),
            "definition": "of the gold queries' `column = 'literal'` / IN comparisons whose literal is stored in that "
                          "column, the share whose literal the prompt shows beside that column (values=true, full schema; "
                          "mentioned values and all values of categorical columns)",
            "misses": val["misses"],
        }
    return out


def to_markdown(result: dict) -> str:
    lines = [f"### Schema linking on {result['dataset']} ({result['linker']['linker']})", "",
             f"{result['n_examples']} questions; tokens: {result['tokenizer']}.", "",
             "| variant | table recall | table recall (micro) | column recall | tables kept / in schema "
             "| schema tokens pruned / full | tokens saved | saved with values |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['variant']} | {r['table_recall']:.3f} | {r['table_recall_micro']:.3f} | "
                     f"{r['column_recall']:.3f} | {r['mean_tables_kept']} / {r['mean_tables_in_schema']} | "
                     f"{r['schema_tokens_pruned']} / {r['schema_tokens_full']} | {100 * r['tokens_saved']:.1f}% | "
                     + (f"{100 * r['tokens_saved_with_values']:.1f}% |" if "tokens_saved_with_values" in r else "– |"))
    lines += ["", f"Default pruning (`--schema pruned`): the combined linker, k={DEFAULT_K} margin={DEFAULT_MARGIN} "
                  "(chosen on spider-train-heldout); lookup tables (<= 3 columns) referenced by kept tables are added."]
    if "values" in result:
        v = result["values"]
        lines += ["", f"Value retrieval: {v['found']} of {v['stored_in_database']} stored gold literals shown "
                      f"(recall {v['recall']:.3f}; {v['gold_string_comparisons']} string comparisons in all)."]
    return "\n".join(lines) + "\n"


def write_result(result: dict, json_path: str | Path) -> tuple[Path, Path]:
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    md = json_path.with_suffix(".md")
    md.write_text(to_markdown(result))
    return json_path, md
