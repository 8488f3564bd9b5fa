"""KV prefix reuse in llama-cpp-python vs. the naive per-question call, on real Spider questions.

Questions are grouped by database and prompted with the v1.0 template (system turn =
instructions + the database's CREATE TABLE statements, user turn = the question), so
consecutive prompts share the system turn. Two modes, greedy:

- `reuse`: the KV cache of the longest shared token prefix is kept between calls;
- `naive`: the state is reset before every call (the whole prompt is evaluated each time).

Each mode has its own `Llama` object and the two alternate question by question, so CPU load
from other processes hits both alike. Reports wall time per question, the ratio, the
prompt tokens actually evaluated, and whether both modes produced the same SQL.

    python benchmarks/bench_prefix_cache.py [--model qwen2.5-coder-0.5b-gguf] [--dbs concert_singer pets_1 car_1]
        [--per-db 10] [--threads 2] [--sample-rows 0] [--out results/bench_prefix_cache.json]
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


def run_one(backend, index, req):
    before = backend.prefix_stats["reused_tokens"]
    (gen,) = backend.generate([req])
    return {
        "index": index,
        "latency_s": round(gen.latency_s, 4),
        "prompt_tokens": gen.prompt_tokens,
        "reused_tokens": backend.prefix_stats["reused_tokens"] - before,
        "completion_tokens": gen.completion_tokens,
        "text": gen.text,
        "error": gen.error,
    }


def summarize(rows):
    lat = [r["latency_s"] for r in rows]
    prompt = sum(r["prompt_tokens"] for r in rows)
    reused = sum(r["reused_tokens"] for r in rows)
    return {
        "questions": len(rows),
        "total_s": round(sum(lat), 3),
        "mean_s": round(statistics.mean(lat), 3),
        "median_s": round(statistics.median(lat), 3),
        "prompt_tokens": prompt,
        "prompt_tokens_evaluated": prompt - reused,
        "completion_tokens": sum(r["completion_tokens"] for r in rows),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-gguf")
    ap.add_argument("--dbs", nargs="*", help="Spider dev databases (default: the first --n-dbs in file order)")
    ap.add_argument("--n-dbs", type=int, default=3)
    ap.add_argument("--per-db", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--sample-rows", type=int, default=0, help="sample rows per table in the schema text (longer prompts)")
    ap.add_argument("--out", default="results/bench_prefix_cache.json")
    args = ap.parse_args(argv)

    groups = build_requests(args.dbs, args.n_dbs, args.per_db, args.max_tokens, args.sample_rows)
    common = dict(model=args.model, n_ctx=args.n_ctx, n_threads=args.threads)
    naive_backend = get_backend("llama-cpp", reuse_prefix=False, **common)
    reuse_backend = get_backend("llama-cpp", reuse_prefix=True, **common)
    warm = GenerationRequest([{"role": "user", "content": "Say hi."}], 4)
    for b in (naive_backend, reuse_backend):
        b.generate([warm])  # load pages, warm caches (untimed)

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    per_db, naive_rows, reuse_rows = {}, [], []
    for db, items in groups.items():
        naive, reuse = [], []
        for index, req in items:
            naive.append(run_one(naive_backend, index, req))
            reuse.append(run_one(reuse_backend, index, req))
        naive_rows += naive
        reuse_rows += reuse
        n, r = summarize(naive), summarize(reuse)
        per_db[db] = {"schema_prompt_tokens": reuse_backend.count_tokens(items[0][1].messages[:1]),
                      "naive": n, "reuse": r, "speedup": round(n["total_s"] / r["total_s"], 2)}
        print(f"{db:<28} naive {n['mean_s']:.2f}s/q  reuse {r['mean_s']:.2f}s/q  x{per_db[db]['speedup']}", flush=True)
    wall = time.perf_counter() - t0
    naive_sum, reuse_sum = summarize(naive_rows), summarize(reuse_rows)
    same = sum(a["text"] == b["text"] for a, b in zip(naive_rows, reuse_rows))
    result = {
        "benchmark": "prefix_cache",
        "model": reuse_backend.config(),
        "dataset": "spider-dev",
        "databases": list(groups),
        "template": "v1.0",
        "schema_format": {"fmt": "ddl", "sample_rows": args.sample_rows},
        "threads": args.threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "max_tokens": args.max_tokens,
        "speedup": round(naive_sum["total_s"] / reuse_sum["total_s"], 2),
        "prompt_eval_reduction": round(naive_sum["prompt_tokens_evaluated"] / reuse_sum["prompt_tokens_evaluated"], 2),
        "naive": naive_sum,
        "reuse": reuse_sum,
        "same_output": f"{same}/{len(naive_rows)}",
        "per_db": per_db,
        "wall_s": round(wall, 1),
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0], "cpus": os.cpu_count(),
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "per_question": {"naive": naive_rows, "reuse": reuse_rows},
    }
    naive_backend.close()
    reuse_backend.close()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"speedup x{result['speedup']}: naive {naive_sum['mean_s']}s/q, reuse {reuse_sum['mean_s']}s/q; "
          f"prompt tokens evaluated {naive_sum['prompt_tokens_evaluated']} -> {reuse_sum['prompt_tokens_evaluated']}; "
          f"same output {result['same_output']} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
