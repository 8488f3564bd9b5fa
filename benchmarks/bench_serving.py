"""Profile `t2s-bench serve` over loopback HTTP: cold start, per-request latency, tokens/s, memory, load test.

    python benchmarks/bench_serving.py [--requests 12] [--load-requests 24] [--levels 1 4 16]
                                       [--out results/bench_serving.json]

For each configuration the server runs as a real subprocess (`python -m t2s_bench serve`, zero-shot,
demo databases, on a free 127.0.0.1 port):
- cold start: from process start to the first answered /generate_sql (model load included);
- per request: `--requests` sequential questions (demo dataset, in order): latency p50/p95/p99 (client
  side), output tokens per second (sum of completion tokens / sum of latencies);
- load test: for each concurrency level, that many clients send `--load-requests` requests in all
  (a fixed count, so it stops by itself): throughput, latency percentiles, errors (any non-200), and
  the server's resident memory (RSS, with children) before, after and at its peak (sampled every 0.2 s);
- VRAM (torch.cuda.max_memory_allocated is not visible from outside: nvidia-smi's used memory) when a GPU is present.

Configurations: the real Qwen2.5-Coder-0.5B GGUF on the CPU (llama.cpp) when in the model cache; the 1.5B
GGUF only if already cached (never downloaded); the transformers backend on the tiny random-weight Qwen2
(`--transformers-model` for a real one). Ratios are against the first configuration's level-1 throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

from t2s_bench.backends.catalog import resolve_model_offline
from t2s_bench.datasets import load_dataset
from t2s_bench.paths import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def rss_mb(proc: psutil.Process) -> float:
    try:
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20
    except psutil.Error:
        return float("nan")


def vram_mb() -> float | None:
    if not shutil.which("nvidia-smi"):
        return None
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True)
    return float(out.stdout.split()[0]) if out.returncode == 0 and out.stdout.strip() else None


class MemorySampler:
    def __init__(self, proc: psutil.Process, every: float = 0.2) -> None:
        self.proc, self.every, self.samples = proc, every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(rss_mb(self.proc))
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def summary(latencies: list[float], tokens: list[int], wall: float, errors: int) -> dict:
    n = len(latencies)
    return {
        "requests": n + errors, "errors": errors, "wall_s": round(wall, 3),
        "throughput_rps": round(n / wall, 4) if wall else None,
        "latency_p50_s": _r(percentile(latencies, 0.50)), "latency_p95_s": _r(percentile(latencies, 0.95)),
        "latency_p99_s": _r(percentile(latencies, 0.99)), "latency_mean_s": _r(statistics.fmean(latencies) if n else None),
        "completion_tokens": sum(tokens),
        "tokens_per_s_per_request": _r(sum(tokens) / sum(latencies)) if latencies else None,
        "tokens_per_s_total": _r(sum(tokens) / wall) if wall else None,
    }


def _r(x):
    return None if x is None else round(x, 4)


async def load_level(url: str, questions: list[tuple[str, str]], clients: int, total: int) -> dict:
    latencies, tokens, errors, error_samples = [], [], 0, []
    counter = iter(range(total))

    async def client(http: httpx.AsyncClient):
        nonlocal errors
        for i in counter:
            db_id, question = questions[i % len(questions)]
            start = time.perf_counter()
            try:
                r = await http.post("/generate_sql", json={"question": question, "db_id": db_id})
                ok = r.status_code == 200
            except httpx.HTTPError as e:
                ok, r = False, e
            if ok:
                latencies.append(time.perf_counter() - start)
                tokens.append(r.json()["completion_tokens"])
            else:
                errors += 1
                error_samples.append(str(getattr(r, "text", r))[:200])

    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    out = summary(latencies, tokens, time.perf_counter() - start, errors)
    out["clients"] = clients
    if error_samples:
        out["error_samples"] = error_samples[:3]
    return out


def profile(name: str, serve_args: list[str], questions, args) -> dict:
    port = free_port()
    cmd = [sys.executable, "-m", "t2s_bench", "serve", "--system", "zero-shot", "--dataset", "demo",
           "--port", str(port), "--max-concurrent", str(max(args.levels)), *serve_args]
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    start = time.perf_counter()
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    proc = psutil.Process(server.pid)
    url = f"http://127.0.0.1:{port}"
    result: dict = {"name": name, "command": " ".join(cmd[1:])}
    try:
        db_id, question = questions[0]
        while True:  # cold start: process start -> first answer
            if server.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{name}: server exited ({server.returncode}):\n{log.read()[-3000:]}")
            try:
                r = httpx.post(f"{url}/generate_sql", json={"question": question, "db_id": db_id}, timeout=600)
                if r.status_code == 200:
                    break
                raise RuntimeError(f"{name}: first request answered {r.status_code}: {r.text[:500]}")
            except httpx.TransportError:
                time.sleep(0.1)
        result["cold_start_s"] = round(time.perf_counter() - start, 3)
        result["rss_after_first_answer_mb"] = round(rss_mb(proc), 1)
        latencies, tokens, errors = [], [], 0
        t0 = time.perf_counter()
        with httpx.Client(base_url=url, timeout=600) as http:
            for i in range(args.requests):
                db, q = questions[(i + 1) % len(questions)]
                s = time.perf_counter()
                r = http.post("/generate_sql", json={"question": q, "db_id": db})
                if r.status_code != 200:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - s)
                tokens.append(r.json()["completion_tokens"])
        result["per_request"] = summary(latencies, tokens, time.perf_counter() - t0, errors)
        result["load"] = []
        for clients in args.levels:
            before = rss_mb(proc)
            with MemorySampler(proc) as sampler:
                level = asyncio.run(load_level(url, questions, clients, args.load_requests))
            level.update(rss_before_mb=round(before, 1), rss_after_mb=round(rss_mb(proc), 1),
                         rss_peak_mb=round(max(sampler.samples or [before]), 1))
            result["load"].append(level)
            print(f"  {name} clients={clients}: {level['throughput_rps']} req/s, p50 {level['latency_p50_s']}s, "
                  f"errors {level['errors']}, rss {level['rss_before_mb']}->{level['rss_after_mb']} MB", flush=True)
        result["vram_used_mb"] = vram_mb()
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        os.unlink(log.name)
    return result


def configurations(args) -> list[tuple[str, list[str]]]:
    configs = []
    for name in ("qwen2.5-coder-0.5b-gguf", "qwen2.5-coder-1.5b-gguf"):
        path = resolve_model_offline(name)  # never downloads
        if path is not None:
            configs.append((f"{name} (llama.cpp, CPU)", ["--model", str(path), "--backend", "llama-cpp"]))
        else:
            print(f"skip {name}: not in the model cache (not downloaded by this benchmark)")
    if args.transformers_model:
        configs.append((f"{args.transformers_model} (transformers)", ["--model", args.transformers_model,
                                                                      "--backend", "transformers"]))
    else:
        from t2s_bench.testing.tiny_model import build_tiny_model

        tiny = build_tiny_model(Path(tempfile.mkdtemp(prefix="t2s-tiny-")))
        configs.append(("tiny random Qwen2 (transformers, CPU)", ["--model", str(tiny.hf_dir), "--backend", "transformers",
                                                                  "--max-new-tokens", "32"]))
    return configs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=12, help="sequential requests per configuration")
    p.add_argument("--load-requests", type=int, default=24, help="requests per concurrency level")
    p.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--transformers-model", help="a real model for the transformers row (default: the tiny model)")
    p.add_argument("--only", help="run only configurations whose name contains this")
    p.add_argument("--out", default=str(REPO_ROOT / "results" / "bench_serving.json"))
    args = p.parse_args()
    demo = load_dataset("demo")
    questions = [(e.db_id, e.question) for e in demo.examples]
    results = []
    for name, serve_args in configurations(args):
        if args.only and args.only not in name:
            continue
        print(f"profiling {name} ...", flush=True)
        results.append(profile(name, serve_args, questions, args))
    if results and results[0]["load"]:
        base = results[0]["load"][0]["throughput_rps"]
        for r in results:
            for level in r["load"]:
                level["throughput_vs_first_level1"] = round(level["throughput_rps"] / base, 3) if base else None
    out = {
        "benchmark": "bench_serving",
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpu_count": os.cpu_count(), "cpu": platform.processor() or None,
                    "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "gpu": vram_mb() is not None,
                    "note": "shared machine: other jobs ran at the same time"},
        "settings": {"requests": args.requests, "load_requests": args.load_requests, "levels": args.levels,
                     "system": "zero-shot", "dataset": "demo"},
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
