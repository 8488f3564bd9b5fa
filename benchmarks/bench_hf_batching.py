"""transformers: batched greedy generation (left padding, length-sorted batches) vs. one prompt at a time.

Same backend object, same prompts; the one-at-a-time pass runs on the first `--n-single` prompts
(it is the slow one) and both are reported as questions/s and generated tokens/s. Also reports
how many of those prompts gave identical text in both modes (padding can flip a bf16 argmax).

Prompts come from `--prompts FILE` (JSONL with "messages"), else from Spider dev with the v1.0
template when a Spider copy is present, else from a small built-in schema (smoke test).
`--write-prompts FILE` renders Spider prompts to a file to carry to a machine without Spider.

    # CPU smoke test (tiny random model, seconds):
    python benchmarks/bench_hf_batching.py --model tiny --n 16 --batch-size 8 --max-tokens 16
    # GPU:
    python benchmarks/bench_hf_batching.py --model /root/m --gguf-file model.gguf --n 256 --batch-size 64 --device cuda
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from t2s_bench.backends import GenerationRequest, get_backend

SMOKE_SCHEMA = (
    "CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INTEGER);\n"
    "CREATE TABLE concert (concert_id INTEGER PRIMARY KEY, concert_name TEXT, stadium_id INTEGER, year INTEGER);"
)
SMOKE_QUESTIONS = [
    "How many singers are there?", "List the names of singers older than {n}.", "Which country has the most singers?",
    "Show the concerts held in {y}.", "What is the average age of singers from country number {n}?",
    "Count the concerts per year, for years after {y}, ordered by year.",
]


def spider_prompts(n: int) -> list[dict]:
    from t2s_bench.datasets.registry import load_dataset
    from t2s_bench.prompting import load_template, serialize_schema

    dataset = load_dataset("spider-dev")
    template = load_template("v1.0")
    schema_text: dict[str, str] = {}
    out = []
    for ex in dataset.examples:
        if dataset.db_path(ex.db_id) is None:
            continue
        if ex.db_id not in schema_text:
            schema_text[ex.db_id] = serialize_schema(dataset.schemas[ex.db_id], "ddl")
        out.append({"index": ex.index, "db_id": ex.db_id,
                    "messages": template.render(schema=schema_text[ex.db_id], question=ex.question)})
        if len(out) == n:
            break
    return out


def smoke_prompts(n: int) -> list[dict]:
    system = "You are a SQLite expert. Answer with one SQL query.\n\nSchema:\n" + SMOKE_SCHEMA
    return [{"index": i, "db_id": "smoke", "messages": [
        {"role": "system", "content": system},
        {"role": "user", "content": SMOKE_QUESTIONS[i % len(SMOKE_QUESTIONS)].format(n=20 + i, y=2000 + i)},
    ]} for i in range(n)]


def load_prompts(args) -> tuple[list[dict], str]:
    if args.prompts:
        rows = [json.loads(line) for line in Path(args.prompts).read_text().splitlines() if line.strip()]
        return rows[: args.n], f"file:{Path(args.prompts).name}"
    try:
        return spider_prompts(args.n), "spider-dev/v1.0"
    except (FileNotFoundError, ImportError):
        return smoke_prompts(args.n), "built-in smoke prompts"


def timed_generate(backend, requests, device: str):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    gens = backend.generate(requests)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return gens, time.perf_counter() - t0


def rates(gens, seconds: float) -> dict:
    tokens = sum(g.completion_tokens for g in gens)
    return {"questions": len(gens), "seconds": round(seconds, 3), "questions_per_s": round(len(gens) / seconds, 3),
            "generated_tokens": tokens, "tokens_per_s": round(tokens / seconds, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="HF folder, .gguf file, catalog name, hub id, or 'tiny'")
    ap.add_argument("--gguf-file", help="GGUF file name inside --model (de-quantised on load)")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--n-single", type=int, default=16, help="prompts for the one-at-a-time pass")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--device", default=None, help="cuda | cpu (default: cuda when available)")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--prompts", help="JSONL file with a 'messages' list per line")
    ap.add_argument("--write-prompts", help="write --n Spider dev prompts to this JSONL file and exit")
    ap.add_argument("--out", default="results/bench_hf_batching.json")
    args = ap.parse_args(argv)

    if args.write_prompts:
        rows = spider_prompts(args.n)
        Path(args.write_prompts).write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"wrote {len(rows)} prompts to {args.write_prompts}")
        return 0

    prompts, source = load_prompts(args)
    requests = [GenerationRequest(p["messages"], args.max_tokens) for p in prompts]
    model = args.model
    if model == "tiny":
        from t2s_bench.testing.tiny_model import build_tiny_model

        model = build_tiny_model(Path(tempfile.gettempdir()) / "t2s-bench-tiny-model").hf_dir
    t0 = time.perf_counter()
    backend = get_backend("transformers", model=model, gguf_file=args.gguf_file, batch_size=args.batch_size,
                          device=args.device, dtype=args.dtype)
    load_s = time.perf_counter() - t0
    import torch

    device = backend.device
    backend.generate([GenerationRequest(requests[0].messages, 4)])  # warm-up (kernels, allocator)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    batched, batched_s = timed_generate(backend, requests, device)
    peak_gb = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    backend.batch_size = 1
    subset = requests[: args.n_single]
    single, single_s = timed_generate(backend, subset, device)
    backend.batch_size = args.batch_size

    same = sum(a.text == b.text for a, b in zip(batched, single))
    b_rate, s_rate = rates(batched, batched_s), rates(single, single_s)
    result = {
        "benchmark": "hf_batching",
        "model": backend.config(),
        "prompts": source,
        "n": len(requests),
        "batch_size": args.batch_size,
        "max_tokens": args.max_tokens,
        "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor() or "cpu",
        "load_s": round(load_s, 1),
        "batched": b_rate,
        "one_at_a_time": s_rate,
        "speedup_questions_per_s": round(b_rate["questions_per_s"] / s_rate["questions_per_s"], 2),
        "same_text_on_subset": f"{same}/{len(single)}",
        "peak_gpu_memory_gb": round(peak_gb, 2) if peak_gb is not None else None,
        "versions": {"torch": torch.__version__, "python": sys.version.split()[0]},
        "mean_prompt_tokens": round(sum(g.prompt_tokens for g in batched) / len(batched), 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("device", "batched", "one_at_a_time", "speedup_questions_per_s",
                                              "same_text_on_subset", "peak_gpu_memory_gb")}, indent=1))
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
