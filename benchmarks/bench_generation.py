"""Generation strategies of the transformers backend, in one call on one loaded model: questions/s and agreement.

Zero-shot prompts (the `zero-shot` system's own, template v1.0) of the executable questions of a dataset
(Spider dev: 972) go through each strategy (`padded` is today's path and the baseline; `static`,
`continuous`, and `continuous-default`, transformers' continuous batching with its out-of-the-box
settings). For each: questions/s and generated tokens/s (after a warm-up on the longest prompts, which
also compiles the static path; the warm-up time is reported), and against `padded`: how many outputs and
extracted SQL strings differ, and whether any execution verdict (the scorer's exec match) differs.
Then `--samples N` answers per question with temperature/top-p through `--sample-strategy`, right after
that strategy's greedy pass (questions/s), and with `--vote` the
self-consistency accuracy (greedy + N samples, execution vote). A strategy that fails (OOM, compile
error) is recorded and the others go on; the JSON is rewritten after each step, so a killed run keeps
what it measured. `--budget-s` skips the steps left once the time is spent.

    # CPU test with the tiny random model on the demo dataset (seconds):
    python benchmarks/bench_generation.py --model tiny --dataset demo --limit 12 --max-tokens 16 --samples 2
    # GPU (the lead's command; see the end of this file's docstring in the report):
    python benchmarks/bench_generation.py --model /root/q05 --dataset spider-dev --batch-size 512 \\
        --samples 8 --out results/bench_generation_0.5b.json
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

from t2s_bench.backends import GenerationRequest, get_backend

log = logging.getLogger("bench_generation")
# "-grouped": the strategy with `grouped_attention` (one-token steps attend per key/value head, hf_attention)
# "vllm": the same requests through the vllm backend (in-process `vllm.LLM`, with --adapter served unmerged;
# loaded on first use beside the transformers model; needs vllm and a GPU)
STRATEGY_NAMES = ("padded", "static", "compact", "continuous", "continuous-default", "padded-grouped", "static-grouped",
                  "vllm")


def build_tasks(dataset_name: str, limit: int | None):
    from t2s_bench.datasets import load_dataset
    from t2s_bench.records import Task

    data = load_dataset(dataset_name)
    tasks = [Task(ex, data.schema(ex.db_id), data.db_path(ex.db_id)) for ex in data.examples
             if data.db_path(ex.db_id) is not None]
    return data, tasks[:limit] if limit else tasks


def sync(backend) -> None:
    if getattr(backend, "device", "cuda").startswith("cuda"):  # vllm: always a GPU
        import torch

        torch.cuda.synchronize()


def timed(backend, requests):
    sync(backend)
    t0 = time.perf_counter()
    gens = backend.generate(requests)
    sync(backend)
    return gens, time.perf_counter() - t0


def set_strategy(backend, name: str, batch_size: int, baseline_batch: int) -> None:
    from t2s_bench.backends.transformers_hf import CONTINUOUS_DEFAULTS

    if name == "vllm":
        return  # its own backend: batching is vLLM's scheduler
    backend.generation = "continuous" if name.startswith("continuous") else name.removesuffix("-grouped")
    backend.grouped_attention = name.endswith("-grouped")
    backend.batch_size = baseline_batch if name == "padded" else batch_size
    backend.continuous_options = {} if name == "continuous-default" else dict(CONTINUOUS_DEFAULTS)


def verdicts(data, tasks, sqls: list[str], workers: int) -> list[bool | None] | str:
    """The scorer's execution verdict per task (None: skipped), or the error when scoring is unavailable."""
    try:
        from t2s_bench.scoring import score_predictions

        wanted = {t.example.index for t in tasks}
        records = score_predictions(data, {t.example.index: s for t, s in zip(tasks, sqls)}, workers=workers)
        by_index = {r["index"]: r["exec_match"] for r in records if r["index"] in wanted}
        return [by_index.get(t.example.index) for t in tasks]
    except Exception as e:  # e.g. sqlglot missing on the GPU machine
        return f"{type(e).__name__}: {e}"


def rates(gens, seconds: float, questions: int) -> dict:
    tokens = sum(g.completion_tokens for g in gens)
    return {"questions": questions, "seconds": round(seconds, 3), "questions_per_s": round(questions / seconds, 2),
            "generated_tokens": tokens, "tokens_per_s": round(tokens / seconds, 1)}


def accuracy(v) -> float | None:
    if isinstance(v, str):
        return None
    scored = [x for x in v if x is not None]
    return round(100 * sum(scored) / len(scored), 2) if scored else None


def compare(base: dict, other: dict) -> dict:
    out = {"texts_differing": sum(a != b for a, b in zip(base["texts"], other["texts"])),
           "sql_differing": sum(a != b for a, b in zip(base["sqls"], other["sqls"]))}
    if isinstance(base["verdicts"], list) and isinstance(other["verdicts"], list):
        flips = [(a, b) for a, b in zip(base["verdicts"], other["verdicts"]) if a != b]
        out |= {"verdicts_differing": len(flips), "gained": sum(bool(b) for _, b in flips),
                "lost": sum(bool(a) for a, _ in flips)}
    return out


def cuda_cleanup(backend) -> None:
    if getattr(backend, "device", "cpu").startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="HF folder, .gguf file, catalog name, or 'tiny' (random CPU model)")
    ap.add_argument("--gguf-file", help="GGUF file name inside --model (de-quantised on load)")
    ap.add_argument("--adapter", help="PEFT adapter folder")
    ap.add_argument("--dataset", default="spider-dev", help="spider-dev (default), demo, or a questions JSON")
    ap.add_argument("--limit", type=int, help="first N executable questions")
    ap.add_argument("--strategies", default=",".join(STRATEGY_NAMES),
                    help=f"comma list of {', '.join(STRATEGY_NAMES)} (padded always runs first: the baseline)")
    ap.add_argument("--batch-size", type=int, help="rows per batch of the new strategies (default 1024 on a GPU, 8 on the CPU)")
    ap.add_argument("--baseline-batch-size", type=int,
                    help="rows per batch of padded, today's path (default 512 on a GPU, as measured; else --batch-size)")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--no-compile", action="store_true", help="static: no torch.compile (static cache only)")
    ap.add_argument("--no-defer-stop-check", action="store_true", help="static: check for finished rows at every step")
    ap.add_argument("--samples", type=int, default=8, help="answers per question in the sampling pass (0: none)")
    ap.add_argument("--sample-strategy", help="strategy of the sampling pass, run right after its greedy pass "
                                              "(default: static when measured, else the last one)")
    ap.add_argument("--sample-batch-size", type=int,
                    help="rows per batch of the sampling pass (default --batch-size); compact can take all "
                         "questions x samples at once, e.g. 8192")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vote", action="store_true", help="also score self-consistency (greedy + samples, execution vote)")
    ap.add_argument("--device")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--workers", type=int, default=4, help="scoring worker processes")
    ap.add_argument("--budget-s", type=float, default=540, help="skip the steps left after this many seconds")
    ap.add_argument("--vllm-memory", type=float, default=0.5,
                    help="vllm strategy: gpu_memory_utilization (the transformers model stays loaded beside it)")
    ap.add_argument("--out", default="results/bench_generation.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    t_start = time.perf_counter()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    model = args.model
    if model == "tiny":
        from t2s_bench.testing.tiny_model import build_tiny_model

        model = build_tiny_model(Path(tempfile.gettempdir()) / "t2s-bench-tiny-model").hf_dir
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    batch_size = args.batch_size or (1024 if device.startswith("cuda") else 8)
    baseline_batch = args.baseline_batch_size or (512 if device.startswith("cuda") else batch_size)
    t0 = time.perf_counter()
    backend = get_backend("transformers", model=model, gguf_file=args.gguf_file, adapter=args.adapter,
                          device=device, dtype=args.dtype, batch_size=batch_size, generation="padded",
                          compile=not args.no_compile, defer_stop_check=not args.no_defer_stop_check)
    load_s = time.perf_counter() - t0

    from t2s_bench.systems.extract import extract_sql
    from t2s_bench.systems.prompted import PromptedSystem

    data, tasks = build_tasks(args.dataset, args.limit)
    system = PromptedSystem("zero-shot", backend, max_new_tokens=args.max_tokens)
    prompts = [system.build_prompt(t) for t in tasks]
    keep = [i for i, (_, err) in enumerate(prompts) if err is None]
    tasks = [tasks[i] for i in keep]
    requests = [GenerationRequest(prompts[i][0], args.max_tokens) for i in keep]
    # the warm-up: the longest prompts; for static one full batch (its batch shape and cache length: the
    # graph the timed pass replays), else a few (kernels, allocator)
    longest = sorted(range(len(requests)), key=lambda i: -backend.count_tokens(requests[i].messages))
    warm = {"static": [requests[i] for i in longest[:batch_size]], "other": [requests[i] for i in longest[:16]]}

    result: dict = {
        "benchmark": "generation",
        "model": backend.config(),
        "dataset": args.dataset,
        "questions": len(requests),
        "prompts_dropped": len(prompts) - len(keep),
        "batch_size": batch_size,
        "baseline_batch_size": baseline_batch,
        "max_tokens": args.max_tokens,
        "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else (platform.processor() or "cpu"),
        "load_s": round(load_s, 1),
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                     "python": sys.version.split()[0]},
        "strategies": {},
    }

    def save() -> None:
        result["elapsed_s"] = round(time.perf_counter() - t_start, 1)
        out.write_text(json.dumps(result, indent=2))

    wanted = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = set(wanted) - set(STRATEGY_NAMES)
    if unknown:
        ap.error(f"unknown strategies {sorted(unknown)}; choose from {STRATEGY_NAMES}")
    order = ["padded"] + [s for s in wanted if s != "padded"]
    sample_strategy = args.sample_strategy or ("static" if "static" in order else order[-1])
    outputs: dict[str, dict] = {}
    backends: dict[str, object] = {}

    def backend_for(name: str):
        """The transformers backend set to `name`, or the vllm backend (loaded once, on first use)."""
        if name != "vllm":
            set_strategy(backend, name, batch_size, baseline_batch)
            return backend
        if "vllm" not in backends:
            t_load = time.perf_counter()
            backends["vllm"] = get_backend("vllm", model=model, gguf_file=args.gguf_file, adapter=args.adapter,
                                           dtype=args.dtype, gpu_memory_utilization=args.vllm_memory, seed=args.seed)
            result["vllm"] = {"load_s": round(time.perf_counter() - t_load, 1), "config": backends["vllm"].config()}
        return backends["vllm"]

    for name in order:
        if time.perf_counter() - t_start > args.budget_s:
            result["strategies"][name] = {"skipped": f"time budget of {args.budget_s}s spent"}
            save()
            continue
        entry: dict = {}
        try:
            current = backend_for(name)
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            _, warm_s = timed(current, warm["static" if name.startswith("static") else "other"])
            gens, seconds = timed(current, requests)
            entry = {"warmup_s": round(warm_s, 2), **rates(gens, seconds, len(requests))}
            if device.startswith("cuda") and name != "vllm":  # vllm's memory is its own process's
                entry["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            texts = [g.text for g in gens]
            sqls = [extract_sql(t) for t in texts]
            outputs[name] = {"texts": texts, "sqls": sqls, "verdicts": verdicts(data, tasks, sqls, args.workers),
                             "gens": gens, "seconds": seconds}
            entry["execution_accuracy"] = accuracy(outputs[name]["verdicts"])
            if isinstance(outputs[name]["verdicts"], str):
                entry["scoring_error"] = outputs[name]["verdicts"]
            entry["errors"] = sum(g.error is not None for g in gens)
            if name != "padded" and "padded" in outputs:
                entry["vs_padded"] = compare(outputs["padded"], outputs[name])
                entry["speedup_vs_padded"] = round(outputs["padded"]["seconds"] / seconds, 2)
        except Exception as e:  # recorded; the other strategies go on
            log.exception("strategy %s failed", name)
            entry = {**entry, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}
            cuda_cleanup(backend)
        result["strategies"][name] = entry
        log.info("%s: %s", name, {k: v for k, v in entry.items() if k != "traceback"})
        save()
        if args.samples > 0 and name == sample_strategy:  # right after its greedy pass: the same graphs
            result["sampling"] = sampling_pass(args, backend_for, requests, tasks, data, outputs, sample_strategy, t_start)
            save()

    if args.samples > 0 and "sampling" not in result:  # its strategy was not among those run
        result["sampling"] = sampling_pass(args, backend_for, requests, tasks, data, outputs, sample_strategy, t_start)
        save()

    summary = {n: {k: e.get(k) for k in ("questions_per_s", "speedup_vs_padded", "execution_accuracy", "vs_padded", "error")
                   if e.get(k) is not None} for n, e in result["strategies"].items()}
    print(json.dumps({"strategies": summary, "sampling": {k: v for k, v in result.get("sampling", {}).items()
                                                          if k != "traceback"}}, indent=1))
    print(f"-> {out}")
    return 0


def sampling_pass(args, backend_for, requests, tasks, data, outputs, strategy, t_start) -> dict:
    """N answers per question with temperature/top-p through `strategy`: questions/s, distinct answers,
    and with --vote the self-consistency accuracy."""
    from t2s_bench.backends.base import sample_seed
    from t2s_bench.systems.extract import extract_sql

    entry = {"strategy": strategy, "samples": args.samples, "temperature": args.temperature, "top_p": args.top_p,
             "seed": args.seed}
    if time.perf_counter() - t_start > args.budget_s:
        return entry | {"skipped": f"time budget of {args.budget_s}s spent"}
    backend = None
    try:
        backend = backend_for(strategy)
        if strategy != "vllm":
            backend.batch_size = args.sample_batch_size or backend.batch_size
            entry["batch_size"] = backend.batch_size
        sampled = [GenerationRequest(r.messages, r.max_tokens, n=args.samples, temperature=args.temperature,
                                     top_p=args.top_p, seed=sample_seed(args.seed, t.example.index))
                   for r, t in zip(requests, tasks)]
        # a few sampled requests first: kernels that only sampling uses (vLLM's top-k/top-p) compile outside the timing
        entry["warmup_s"] = round(timed(backend, sampled[:16])[1], 2)
        gens, seconds = timed(backend, sampled)
        entry |= rates(gens, seconds, len(sampled))
        entry["answers"] = sum(len(g.answers) for g in gens)
        entry["distinct_sql_per_question"] = round(
            sum(len({extract_sql(a.text) for a in g.answers}) for g in gens) / len(gens), 2)
        if args.vote and strategy in outputs:
            entry["self_consistency"] = vote_accuracy(data, tasks, outputs[strategy], gens, args.workers)
    except Exception as e:
        log.exception("sampling failed")
        entry |= {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}
        if backend is not None:
            cuda_cleanup(backend)
    return entry


def vote_accuracy(data, tasks, greedy: dict, sampled, workers: int) -> dict:
    """Execution accuracy of self-consistency (the greedy answer + the samples, execution vote)."""
    from t2s_bench.records import Prediction
    from t2s_bench.systems.self_consistency import mean_logprob, vote_candidates

    t0 = time.perf_counter()
    chosen = []
    for task, g_gen, text, gen in zip(tasks, greedy["gens"], greedy["texts"], sampled):
        from t2s_bench.systems.extract import extract_sql

        pred = Prediction(task.example.index, task.example.db_id, extract_sql(text), raw_output=text, prompt=[{}])
        chosen.append(vote_candidates(pred, mean_logprob(g_gen), gen, task).sql)
    vote_s = time.perf_counter() - t0
    v = verdicts(data, tasks, chosen, workers)
    return {"execution_accuracy": accuracy(v), "greedy_execution_accuracy": accuracy(greedy["verdicts"]),
            "vote_seconds": round(vote_s, 1)}


if __name__ == "__main__":
    sys.exit(main())
