"""KV prefix reuse and batched decoding in llama-cpp-python vs. the naive per-question call, on real Spider questions.

Questions are grouped by database and prompted with the v1.0 template (system turn =
instructions + the database's CREATE TABLE statements, user turn = the question), so
consecutive prompts share the system turn. Three modes, greedy, same questions:

- `naive`: the state is reset before every call (the whole prompt is evaluated each time);
- `reuse`: one question per call, the KV cache of the longest shared token prefix is kept between calls;
- `batched`: the questions go in calls of `--batch-size` (8, as `t2s-bench run` sends them, sorted by
  database); each call's questions of one database are decoded together in `--parallel` llama.cpp
  sequences sharing the prefix's KV cells, and the prefix stays cached between calls.

Each mode has its own `Llama` object; they alternate call by call (the order rotating), so CPU load
from other processes hits all alike. Reports wall time per question (batched: the call's wall time
shared out, see llama_cpp_batch.py), ratios vs. naive, the prompt tokens actually evaluated, how many
outputs equal naive's, and for those that differ whether the extracted SQL executes to the same result.

    python benchmarks/bench_prefix_cache.py [--model qwen2.5-coder-0.5b-gguf] [--dbs concert_singer pets_1 car_1]
        [--per-db 10] [--threads 2] [--parallel 8] [--batch-size 8] [--out results/bench_prefix_cache.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from t2s_bench.backends import GenerationRequest, get_backend
from t2s_bench.datasets.registry import load_dataset
from t2s_bench.prompting import load_template, serialize_schema

MODES = ("naive", "reuse", "batched")


def db_paths(dbs):
    dataset = load_dataset("spider-dev")
    return {db: dataset.db_path(db) for db in dbs}


def build_requests(dbs: list[str] | None, n_dbs: int, per_db: int, max_tokens: int, sample_rows: int = 0):
    dataset = load_dataset("spider-dev")
    template = load_template("v1.0")
    by_db: dict[str, list] = {}
    for ex in dataset.examples:
        if dataset.db_path(ex.db_id) is not None:
            by_db.setdefault(ex.db_id, []).append(ex)
    chosen = dbs or list(by_db)[:n_dbs]
    groups = {}
    for db in chosen:
        if db not in by_db:
            raise SystemExit(f"database {db} has no questions or no SQLite file")
        schema_text = serialize_schema(dataset.schemas[db], "ddl", db_path=dataset.db_path(db), sample_rows=sample_rows)
        groups[db] = [
            (ex.index, GenerationRequest(template.render(schema=schema_text, question=ex.question), max_tokens))
            for ex in by_db[db][:per_db]
        ]
    return groups


def run_call(backend, chunk):
    """One generate() call for `chunk` [(index, db, request)]; one row per question."""
    before = backend.prefix_stats["reused_tokens"]
    gens = backend.generate([req for _, _, req in chunk])
    reused = backend.prefix_stats["reused_tokens"] - before
    rows = [{
        "index": index,
        "db_id": db,
        "latency_s": round(gen.latency_s, 4),
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "finish_reason": gen.finish_reason,
        "text": gen.text,
        "error": gen.error,
    } for (index, db, _), gen in zip(chunk, gens)]
    rows[0]["reused_tokens_call"] = reused  # reuse of the whole call (per request for single-question calls)
    return rows


def summarize(rows):
    lat = [r["latency_s"] for r in rows]
    prompt = sum(r["prompt_tokens"] for r in rows)
    reused = sum(r.get("reused_tokens_call", 0) for r in rows)
    return {
        "questions": len(rows),
        "total_s": round(sum(lat), 3),
        "mean_s": round(statistics.mean(lat), 3),
        "median_s": round(statistics.median(lat), 3),
        "prompt_tokens": prompt,
        "prompt_tokens_evaluated": prompt - reused,
        "completion_tokens": sum(r["completion_tokens"] for r in rows),
    }


def compare_outputs(base_rows, rows, db_paths):
    """Outputs equal to the baseline's; for the others, whether the extracted SQL gives the same result."""
    from t2s_bench.execution import execute
    from t2s_bench.scoring.exec_match import results_equal
    from t2s_bench.systems.extract import extract_sql

    same, differ = 0, []
    for a, b in zip(base_rows, rows):
        if a["text"] == b["text"]:
            same += 1
            continue
        sql_a, sql_b = extract_sql(a["text"]), extract_sql(b["text"])
        ra, rb = (execute(db_paths[a["db_id"]], sql) for sql in (sql_a, sql_b))
        if ra.rows is not None and rb.rows is not None:
            same_result = results_equal(ra.rows, rb.rows, order_matters="order by" in sql_a.lower())
        else:
            same_result = ra.rows is None and rb.rows is None
        differ.append({"index": a["index"], "db_id": a["db_id"], "baseline": a["text"], "text": b["text"],
                       "same_execution_result": same_result,  # both failing counts as the same
                       "baseline_error": ra.error, "error": rb.error})
    return {"identical": f"{same}/{len(rows)}", "differing": len(differ),
            "differing_same_execution_result": sum(d["same_execution_result"] for d in differ),
            "differences": differ}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-gguf")
    ap.add_argument("--dbs", nargs="*", help="Spider dev databases (default: the first --n-dbs in file order)")
    ap.add_argument("--n-dbs", type=int, default=3)
    ap.add_argument("--per-db", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--parallel", type=int, default=8, help="sequences decoded together in the batched mode")
    ap.add_argument("--batch-size", type=int, default=8, help="questions per generate() call in the batched mode")
    ap.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    ap.add_argument("--sample-rows", type=int, default=0, help="sample rows per table in the schema text (longer prompts)")
    ap.add_argument("--out", default="results/bench_prefix_cache.json")
    args = ap.parse_args(argv)

    groups = build_requests(args.dbs, args.n_dbs, args.per_db, args.max_tokens, args.sample_rows)
    dataset_db_paths = db_paths(list(groups))
    common = dict(model=args.model, n_ctx=args.n_ctx, n_threads=args.threads)
    options = {"naive": dict(reuse_prefix=False, parallel=1), "reuse": dict(reuse_prefix=True, parallel=1),
               "batched": dict(reuse_prefix=True, parallel=args.parallel)}
    backends = {m: get_backend("llama-cpp", **common, **options[m]) for m in args.modes}
    warm = GenerationRequest([{"role": "user", "content": "Say hi."}], 4)
    for b in backends.values():
        b.generate([warm])  # load pages, warm caches (untimed)

    # the runner's order: sorted by database, sent in calls of --batch-size
    questions = [(index, db, req) for db, items in groups.items() for index, req in items]
    chunks = [questions[i : i + args.batch_size] for i in range(0, len(questions), args.batch_size)]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    rows = {m: [] for m in args.modes}
    for c, chunk in enumerate(chunks):
        order = args.modes[c % len(args.modes):] + args.modes[: c % len(args.modes)]
        for mode in order:
            calls = [chunk] if mode == "batched" else [[q] for q in chunk]
            for call in calls:
                rows[mode] += run_call(backends[mode], call)
        print(f"call {c + 1}/{len(chunks)}: " + "  ".join(
            f"{m} {sum(r['latency_s'] for r in rows[m][-len(chunk):]):.1f}s" for m in args.modes), flush=True)
    wall = time.perf_counter() - t0

    summary = {m: summarize(rows[m]) for m in args.modes}
    base = "naive" if "naive" in args.modes else args.modes[0]
    per_db = {}
    for db in groups:
        entry = {"schema_prompt_tokens": backends[base].count_tokens(groups[db][0][1].messages[:1])}
        for m in args.modes:
            entry[m] = summarize([r for r in rows[m] if r["db_id"] == db])
            del entry[m]["prompt_tokens_evaluated"]  # a batched call's reuse is counted per call, not per database
        entry["speedup_vs_naive"] = {m: round(entry[base]["total_s"] / entry[m]["total_s"], 2) for m in args.modes}
        per_db[db] = entry
    result = {
        "benchmark": "prefix_cache",
        "model": {m: b.config() for m, b in backends.items()},
        "dataset": "spider-dev",
        "databases": list(groups),
        "template": "v1.0",
        "schema_format": {"fmt": "ddl", "sample_rows": args.sample_rows},
        "threads": args.threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "max_tokens": args.max_tokens,
        "batch_size": args.batch_size,
        "parallel": args.parallel,
        "latency_note": "batched: each call's wall time shared out (prefix equally, each decode step equally "
                        "among its sequences), so a mode's total_s is the wall time of its calls",
        "speedup_vs_naive": {m: round(summary[base]["total_s"] / summary[m]["total_s"], 2) for m in args.modes},
        "prompt_eval_reduction_vs_naive": {
            m: round(summary[base]["prompt_tokens_evaluated"] / max(summary[m]["prompt_tokens_evaluated"], 1), 2)
            for m in args.modes},
        **summary,
        "same_output_as_naive": {m: compare_outputs(rows[base], rows[m], dataset_db_paths)
                                 for m in args.modes if m != base},
        "per_db": per_db,
        "wall_s": round(wall, 1),
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0], "cpus": os.cpu_count(),
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "per_question": rows,
    }
    for b in backends.values():
        b.close()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    for m in args.modes:
        same = result["same_output_as_naive"].get(m, {}).get("identical", "-")
        print(f"{m:<8} {summary[m]['mean_s']:.3f} s/q  x{result['speedup_vs_naive'][m]} vs naive  "
              f"prompt tokens evaluated {summary[m]['prompt_tokens_evaluated']}  same output as naive {same}")
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
