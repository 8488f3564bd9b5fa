"""`t2s-bench run`: run a system over a dataset, score it, write a run directory."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import yaml

HELP = """Run a system (zero-shot, few-shot, rag, finetuned, or a registered one) over a dataset,
score every prediction (execution accuracy, exact-set match, hardness, error class) and write a
resumable run directory. Re-running the same command resumes where a killed run stopped."""

# CLI flag -> system/backend option name; None values are left to the defaults
SYSTEM_FLAGS = ["k", "selection", "pool", "embedder", "masked", "skeleton_rerank", "template", "schema_format",
                "sample_rows", "max_new_tokens", "overflow", "repair", "repair_template", "votes", "adapter", "seed", "members",
                "schema", "linker", "link_k", "values", "samples"]
BACKEND_FLAGS = ["n_ctx", "n_threads", "parallel", "n_gpu_layers", "base_url", "device", "gen_batch_size", "gguf_file"]


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run a system over a dataset and score it", description=HELP)
    p.add_argument("--system", help="system name (default: zero-shot)")
    p.add_argument("--config", help="YAML or TOML file with run settings (flags given here override it)")
    p.add_argument("--model", help="catalog name, local path (HF folder or .gguf) or served model id "
                   "(default: qwen2.5-coder-0.5b-gguf)")
    p.add_argument("--backend", help="llama-cpp, transformers, openai, or a plugin's backend (default: from --model)")
    p.add_argument("--dataset", default=None, help="demo (default), spider-dev, spider-train, spider-syn-dev, or a path")
    p.add_argument("--tables", help="tables.json of a questions JSON given as --dataset (default: the one beside it)")
    p.add_argument("--db-dir", help="database folder of a questions JSON given as --dataset (default: database/ beside it)")
    p.add_argument("--limit", type=int, help="first N selected examples")
    p.add_argument("--sample", type=int, help="a seeded random sample of N selected examples")
    p.add_argument("--sample-seed", type=int, help="seed of --sample (default 0)")
    p.add_argument("--db", action="append", dest="db_ids", help="only this database (repeatable)")
    p.add_argument("--hardness", action="append", choices=["easy", "medium", "hard", "extra"],
                   help="only this difficulty (repeatable)")
    p.add_argument("--out", help="run directory (default: runs/<dataset>-<system>-<config hash>)")
    p.add_argument("--batch-size", type=int, help="examples per system call (default 8)")
    p.add_argument("--workers", type=int, help="scoring worker processes (default 2)")
    p.add_argument("--timeout", type=float, help="per-query execution timeout in seconds (default 30)")
    p.add_argument("--suite", metavar="DIR", help="test suite of databases (DIR/<db_id>/*.sqlite): adds "
                   "test-suite execution accuracy (EX-suite); recorded in the run")
    p.add_argument("--plug-value", action="store_true", default=None,
                   help="execute each prediction with the gold query's values (official --plug_value, for "
                   "systems that predict skeletons); recorded in the run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("prompting")
    g.add_argument("--template", help="prompt template version under prompts/ (default v1.0)")
    g.add_argument("--schema-format", choices=["ddl", "compact"], help="schema serialisation (default ddl)")
    g.add_argument("--sample-rows", type=int, help="sample rows per table in the prompt (default 0)")
    g.add_argument("--schema", choices=["full", "pruned"], help="full schema, or pruned to the tables a linker "
                   "retrieves plus the tables joining them (default full)")
    g.add_argument("--linker", help="schema linker of --schema pruned: combined (default), embedding, lexical")
    g.add_argument("--link-k", type=int, help="tables the linker retrieves before the join-path closure (default 2, plus any table "
                   "scoring within 0.3 of the best: -S link_margin=...)")
    g.add_argument("--values", action="store_true", default=None,
                   help="show the stored values the question mentions beside their column (-- values: 'France')")
    g.add_argument("--k", type=int, help="few-shot / RAG examples (default 3)")
    g.add_argument("--selection", choices=["random", "similarity", "masked"], help="few-shot selection (default masked)")
    g.add_argument("--pool", help="dataset the examples come from (default: spider-train for Spider, else the same dataset)")
    g.add_argument("--embedder", help="RAG embedding model (default all-minilm-l6-v2)")
    g.add_argument("--unmasked-retrieval", dest="masked", action="store_false", default=None,
                   help="RAG: embed the raw questions (default: schema words and values masked)")
    g.add_argument("--skeleton-rerank", action="store_true", default=None,
                   help="few-shot/RAG: draft a zero-shot answer first and prefer examples whose SQL has its "
                        "skeleton (DAIL-SQL selection; one extra generation per question)")
    g.add_argument("--repair", type=int, help="rounds of execution-guided repair: a query that fails on the "
                                              "database is asked again with SQLite's error (default 0)")
    g.add_argument("--repair-template", help="follow-up template of the repair turn (default repair-v1.0; "
                                             "repair-v1.1 adds the columns of the tables the query uses)")
    g.add_argument("--votes", type=int, help="few-shot/RAG: answer with N disjoint example sets (the k nearest, "
                                             "the next k, ...) and keep the answer whose result most agree on")
    g.add_argument("--samples", type=int, help="self-consistency: N sampled answers + the greedy one, the answer whose "
                                               "result most agree on (-S temperature=0.7 -S top_p=0.95 -S sample_seed=0)")
    g.add_argument("--members", nargs="+", metavar="RUN_DIR",
                   help="vote: run directories whose predictions are combined by execution voting")
    g.add_argument("--max-new-tokens", type=int, help="generation limit (default 256)")
    g.add_argument("--overflow", choices=["prune", "truncate", "drop"], help="context overflow strategy (default prune)")
    g.add_argument("--seed", type=int, help="seed for random example selection (default 42)")
    b = p.add_argument_group("backend")
    b.add_argument("--adapter", help="PEFT adapter folder (finetuned system)")
    b.add_argument("--gguf-file", help="GGUF file name inside a HF folder, loaded de-quantised by transformers")
    b.add_argument("--n-ctx", type=int, help="llama.cpp context window")
    b.add_argument("--n-threads", type=int, help="llama.cpp CPU threads")
    b.add_argument("--parallel", type=int,
                   help="llama.cpp: questions decoded together in parallel sequences sharing the prompt prefix "
                        "(default 8 on CPU, 1 with GPU offload)")
    b.add_argument("--n-gpu-layers", type=int, help="llama.cpp layers offloaded to the GPU (-1: all)")
    b.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    b.add_argument("--device", help="transformers device (cuda, cpu)")
    b.add_argument("--gen-batch-size", type=int, help="transformers generation batch size")
    o = p.add_argument_group("any option of any registered system or backend (plugins included)")
    o.add_argument("-S", dest="set_system", action="append", default=[], metavar="KEY=VALUE",
                   help="a system option, e.g. -S k=5 (values read as YAML: 5, true, [a, b])")
    o.add_argument("-B", dest="set_backend", action="append", default=[], metavar="KEY=VALUE",
                   help="a backend option, e.g. -B n_ctx=8192 or -B temperature=0.2 for a plugin backend")
    p.set_defaults(func=main)


def parse_assignments(items: list[str], flag: str) -> dict:
    """`["k=3", "masked=false"]` -> {"k": 3, "masked": False}; values are read as YAML scalars/lists."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} {item!r}: expected KEY=VALUE")
        out[key.strip().replace("-", "_")] = yaml.safe_load(value) if value.strip() else None
    return out


def load_config_file(path: str) -> dict:
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith(".toml"):
        return tomllib.loads(text)
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings")
    return data


def build_run_config(args):
    from t2s_bench.runner import RunConfig

    file_cfg = load_config_file(args.config) if args.config else {}
    # `system_options` (RunConfig's name) and `options` mean the same in a file; neither may be dropped
    options = {**file_cfg.pop("system_options", {}), **file_cfg.pop("options", {})}
    backend_options = dict(file_cfg.pop("backend_options", {}))
    flags = {k: v for k, v in vars(args).items() if v is not None and k not in ("set_system", "set_backend")}
    merged = {**file_cfg, **flags}
    for name in SYSTEM_FLAGS + BACKEND_FLAGS + ["model", "backend"]:
        if merged.get(name) is not None:
            options[name] = merged.pop(name)
    options.update(parse_assignments(getattr(args, "set_system", []), "-S"))
    backend_options.update(parse_assignments(getattr(args, "set_backend", []), "-B"))
    known = set(RunConfig.__dataclass_fields__)
    cli_only = {"command", "func", "verbose", "config", "no_progress", "tables", "db_dir"}
    unknown = sorted(k for k in file_cfg if k not in known and k not in SYSTEM_FLAGS + BACKEND_FLAGS + ["model", "backend"])
    if unknown:
        raise ValueError(f"{args.config}: unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                         f"known: {', '.join(sorted((known | set(SYSTEM_FLAGS + BACKEND_FLAGS)) - {'system_options', 'backend_options'}))}, options, backend_options")
    cfg = RunConfig(**{k: v for k, v in merged.items() if k in known and k not in cli_only
                       and k not in ("system_options", "backend_options")})
    cfg.system_options = options
    cfg.backend_options = backend_options
    if args.no_progress:
        cfg.progress = False
    if cfg.dataset is None:
        cfg.dataset = "demo"
    if cfg.suite is not None:  # checked now, recorded as an absolute path
        from t2s_bench.suites.execute import resolve_suite_dir

        cfg.suite = resolve_suite_dir(cfg.suite)
    return cfg


def main(args) -> int:
    from t2s_bench.api import load_run
    from t2s_bench.runner import run

    cfg = build_run_config(args)
    dataset = None
    if args.tables or args.db_dir:
        from t2s_bench.datasets import load_dataset

        dataset = load_dataset(cfg.dataset, tables=args.tables, db_dir=args.db_dir)
    result = load_run(run(cfg, dataset=dataset))
    print(result.table())
    print(f"\nrun directory: {result.path}")
    print(f"report: t2s-bench report {result.path} --out reports/{result.name}.html")
    if result.metrics["levels"]["all"]["n_scored"] == 0:
        print("t2s-bench run: error: no example was scored (every one was skipped)", file=sys.stderr)
        return 1
    return 0
