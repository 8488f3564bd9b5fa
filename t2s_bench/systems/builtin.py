"""Built-in systems: zero-shot, few-shot, rag, finetuned. Each is a PromptedSystem factory."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from t2s_bench.backends.base import Backend
from t2s_bench.datasets import Dataset, load_dataset
from t2s_bench.datasets.spider import Example
from t2s_bench.registry import OptionError, accepted_options
from t2s_bench.sql.parse import tables_used
from t2s_bench.systems.base import Task
from t2s_bench.systems.prompted import PromptedSystem
from t2s_bench.systems.selectors import SKELETON_SEARCH, SKELETON_THRESHOLD, ExampleSelector, rerank_by_skeleton

DEFAULT_MODEL = "qwen2.5-coder-0.5b-gguf"
# few-shot and RAG put examples in chat turns with their own schemas, the target schema last
# (see prompts/v2.0.jinja and v2.1.jinja for why)
FEW_SHOT_TEMPLATE = "v2.1"


def make_backend(model: str | None = None, backend: str | None = None, *, system: str = "system",
                 system_options: tuple[str, ...] = (), **options) -> Backend:
    """Pick and build a backend: a GGUF -> llama-cpp, a base_url -> openai, else transformers.

    `options` are checked against the backend's constructor first: one the backend does not take
    is an OptionError naming the system's and the backend's valid options (`system_options`)."""
    from t2s_bench.backends import BACKENDS
    from t2s_bench.backends.catalog import resolve_model

    model = model or DEFAULT_MODEL
    options = {k: v for k, v in options.items() if v is not None}
    if "gen_batch_size" in options:  # the CLI's name for the generation batch of batched backends
        options["batch_size"] = options.pop("gen_batch_size")
    if backend is None:
        if options.get("base_url"):
            backend = "openai"
        elif model.endswith(".gguf") or model.endswith("-gguf"):
            backend = "llama-cpp"
        else:
            backend = "transformers"
    cls = BACKENDS.get(backend)
    names, open_ended = accepted_options(cls)
    unknown = sorted(set(options) - names) if not open_ended else []
    if unknown:
        raise OptionError(
            f"{system} does not take the option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"its options: {', '.join(sorted(set(system_options) | {'model', 'backend'}))}; "
            f"backend {backend!r} options: {', '.join(sorted(names - {'model'}))}"
        )
    if backend not in ("llama-cpp", "transformers"):  # served or plugin models: the id as given
        return cls(model=model, **options)
    path = model if Path(model).exists() else str(resolve_model(model))
    return cls(model=path, **options)


class _PoolSchemas:
    """Schema text of pool examples, pruned to the tables each example's SQL uses; and, with
    `needs_draft`, DAIL-SQL's re-ranking of the nearest examples by a zero-shot draft's SQL skeleton."""

    pool: Dataset
    needs_draft: bool = False

    def schema_text(self, example: Example) -> str:
        from t2s_bench.prompting import serialize_schema

        schema = self.pool.schema(example.db_id)
        used = tables_used(example.query)
        return serialize_schema(schema, "compact", tables=used or None)

    def _candidates(self, k: int) -> int:
        """How many of the nearest examples to rank before choosing k."""
        return max(k, SKELETON_SEARCH) if self.needs_draft else k

    def _choose(self, ranked: list[Example], k: int, draft: str | None) -> list[Example]:
        """k of `ranked` (best first), most similar last."""
        return rerank_by_skeleton(ranked, (draft or "") if self.needs_draft else "", k)

    def _skeleton_config(self) -> dict:
        if not self.needs_draft:
            return {}
        return {"skeleton_rerank": {"search": SKELETON_SEARCH, "threshold": SKELETON_THRESHOLD}}


class PoolSource(_PoolSchemas):
    """Few-shot examples from a training pool, chosen by an ExampleSelector; with `skeleton`,
    re-ranked by the SQL skeleton of a zero-shot draft (DAIL-SQL's selection)."""

    def __init__(self, pool: Dataset, method: str, seed: int = 42, skeleton: bool = False):
        self.pool = pool
        self.pool_name, self.method, self.seed = pool.name, method, seed
        self.needs_draft = skeleton
        self.selector = ExampleSelector(pool.examples, pool.schemas, method=method, seed=seed)

    def examples_for(self, task: Task, k: int, draft: str | None = None) -> list[Example]:
        if not self.needs_draft:  # random picks keep the order drawn
            return self.selector.select(task.example, task.schema, k)
        return self._choose(self.selector.ranked(task.example, task.schema, self._candidates(k)), k, draft)

    def config(self) -> dict:
        return {"pool": self.pool_name, "selection": self.method, "seed": self.seed, **self._skeleton_config()}


class RetrievalSource(_PoolSchemas):
    """RAG: nearest question/SQL pairs by sentence-embedding cosine similarity (other databases only)."""

    def __init__(self, pool: Dataset, embedder: str | None = None, masked: bool = True, skeleton: bool = False):
        from t2s_bench.systems.embeddings import DEFAULT_EMBEDDER, Embedder

        self.pool = pool
        self.needs_draft = skeleton
        self.pool_name = pool.name
        self.embedder = Embedder(embedder or DEFAULT_EMBEDDER)
        self.examples = pool.examples
        # masked: embed questions with schema words and values masked (DAIL-SQL's idea), so
        # retrieval finds questions of the same shape rather than of the same topic
        self.masked = masked
        self.matrix = self.embedder.encode_cached(
            [self._text(e.question, pool.schemas.get(e.db_id)) for e in self.examples]
        )
        self.db_ids = np.array([e.db_id for e in self.examples])
        self._query_cache: dict[str, np.ndarray] = {}

    def _text(self, question: str, schema) -> str:
        from t2s_bench.systems.selectors import mask_question

        return " ".join(mask_question(question, schema)) if self.masked else question

    def examples_for(self, task: Task, k: int, draft: str | None = None) -> list[Example]:
        q = self._text(task.example.question, task.schema)
        if q not in self._query_cache:
            self._query_cache[q] = self.embedder.encode([q])[0]
        sims = self.matrix @ self._query_cache[q]
        sims[self.db_ids == task.example.db_id] = -np.inf
        best = [int(i) for i in np.argsort(-sims, kind="stable")[: self._candidates(k)] if np.isfinite(sims[i])]
        return self._choose([self.examples[i] for i in best], k, draft)

    def prefetch(self, tasks: list[Task]) -> None:
        texts = [self._text(t.example.question, t.schema) for t in tasks]
        todo = [q for q in dict.fromkeys(texts) if q not in self._query_cache]
        if todo:
            for q, v in zip(todo, self.embedder.encode(todo)):
                self._query_cache[q] = v

    def config(self) -> dict:
        return {"pool": self.pool_name, "retriever": self.embedder.name, "masked": self.masked,
                **self._skeleton_config()}


def resolve_pool(pool: str | None, dataset_name: str | None) -> Dataset:
    """`auto`: Spider train for Spider datasets, else the evaluated dataset itself (other databases only)."""
    if pool in (None, "auto"):
        pool = "spider-train" if (dataset_name or "").startswith("spider") else (dataset_name or "demo")
    return load_dataset(pool)


LINKING_OPTIONS = ("schema", "linker", "link_k", "link_margin", "values")  # schema linking (t2s_bench.linking)
# options of PromptedSystem that every prompted system takes; any other option goes to the backend
PROMPT_OPTIONS = ("template", "schema_format", "sample_rows", "max_new_tokens", "overflow", "repair",
                  "repair_template", "votes",
                  "schema", "linker", "link_k", "link_margin", "values",  # schema linking (t2s_bench.linking)
                  "samples", "temperature", "top_p", "sample_seed",  # self-consistency (systems/self_consistency.py)
                  "beams", "beam_nonempty")  # first executable beam (systems/beam.py)


def _split(options: dict, backend_options: dict | None) -> tuple[dict, dict]:
    """(prompting options, backend options): flat options that are not prompting options are
    backend options, as are those given separately (`-B key=value`)."""
    sys_opts = {k: v for k, v in options.items() if k in PROMPT_OPTIONS and v is not None}
    backend_opts = {k: v for k, v in options.items() if k not in PROMPT_OPTIONS}
    return sys_opts, {**backend_opts, **(backend_options or {})}


def _backend(system: str, factory, model, backend, b_opts: dict) -> Backend:
    own = tuple(n for n in accepted_options(factory)[0] if n not in ("dataset_name", "backend_options"))
    return make_backend(model, backend, system=system, system_options=own + PROMPT_OPTIONS, **b_opts)


def zero_shot(model=None, backend=None, dataset_name=None, backend_options=None, **options) -> PromptedSystem:
    sys_opts, b_opts = _split(options, backend_options)
    return PromptedSystem("zero-shot", _backend("zero-shot", zero_shot, model, backend, b_opts), **sys_opts)


def self_consistency(model=None, backend=None, samples=8, dataset_name=None, backend_options=None, **options):
    """Zero-shot with self-consistency: `samples` sampled answers + the greedy one, voted by execution."""
    sys_opts, b_opts = _split(options, backend_options)
    llm = _backend("self-consistency", self_consistency, model, backend, b_opts)
    return PromptedSystem("self-consistency", llm, samples=samples, **sys_opts)


def few_shot(model=None, backend=None, k=3, selection="masked", pool=None, seed=42, skeleton_rerank=False,
             dataset_name=None, backend_options=None, **options):
    sys_opts, b_opts = _split(options, backend_options)
    sys_opts.setdefault("template", FEW_SHOT_TEMPLATE)
    llm = _backend("few-shot", few_shot, model, backend, b_opts)
    source = PoolSource(resolve_pool(pool, dataset_name), selection, seed, skeleton=skeleton_rerank)
    return PromptedSystem("few-shot", llm, k=k, examples=source, **sys_opts)


def rag(model=None, backend=None, k=3, pool=None, embedder=None, masked=True, skeleton_rerank=False,
        dataset_name=None, backend_options=None, **options):
    sys_opts, b_opts = _split(options, backend_options)
    sys_opts.setdefault("template", FEW_SHOT_TEMPLATE)
    llm = _backend("rag", rag, model, backend, b_opts)
    source = RetrievalSource(resolve_pool(pool, dataset_name), embedder, masked=masked, skeleton=skeleton_rerank)
    return PromptedSystem("rag", llm, k=k, examples=source, **sys_opts)


def finetuned(adapter=None, model=None, backend=None, dataset_name=None, backend_options=None, **options):
    """A trained adapter (PEFT on transformers or vLLM, a GGUF LoRA on llama-cpp), an exported GGUF file, or a
    full fine-tuned model folder; each tested with the prompt it was trained on."""
    if adapter is None and model is None:
        raise ValueError("finetuned: give --adapter ADAPTER_DIR (from `t2s-bench train`), or --model EXPORTED.gguf "
                         "or a full fine-tuned model folder")
    sys_opts, b_opts = _split(options, backend_options)
    if adapter is not None:
        meta = _adapter_meta(Path(adapter))
        trained = meta.get("config", meta)  # train_config.json keeps the TrainConfig under "config"
        model = model or trained.get("base")
        if not model or not (Path(model).exists() or not str(model).startswith("/")):
            raise FileNotFoundError(
                f"finetuned: the adapter's base model {model!r} is not here (trained on another machine?); "
                "pass --model BASE (a HF folder, a .gguf file or a catalog name)"
            )
        _use_training_prompt(trained, sys_opts)
        if backend == "llama-cpp":  # a GGUF base left as it is, the adapter applied at run time as a GGUF LoRA
            b_opts.setdefault("lora_path", _lora_gguf(Path(adapter)))
            return PromptedSystem("finetuned", _backend("finetuned", finetuned, model, backend, b_opts), **sys_opts)
        b_opts["adapter"] = str(adapter)
        if trained.get("gguf_file") and not str(model).endswith(".gguf"):
            b_opts.setdefault("gguf_file", trained["gguf_file"])
        backend = backend or "transformers"
    else:
        trained = _trained_prompt(Path(str(b_opts.get("lora_path") or model)))
        if trained:
            _use_training_prompt(trained, sys_opts)
    return PromptedSystem("finetuned", _backend("finetuned", finetuned, model, backend, b_opts), **sys_opts)


def _use_training_prompt(trained: dict, sys_opts: dict) -> None:
    """Test a trained model with the prompt it was trained on; options given explicitly win."""
    sys_opts.setdefault("template", trained.get("template", "v1.0"))
    formats = trained.get("schema_formats") or ["ddl"]
    sys_opts.setdefault("schema_format", formats[0])
    # a model trained on pruned schemas / retrieved values is tested with the same schema text
    for key, value in (trained.get("schema_options") or {}).items():
        if key in LINKING_OPTIONS:
            sys_opts.setdefault(key, value)


LORA_GGUF = "adapter-lora-f16.gguf"  # where `t2s-bench train export ADAPTER --lora-gguf` writes by default


def _lora_gguf(adapter: Path) -> str:
    path = adapter / LORA_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"finetuned: {adapter} has no {LORA_GGUF} for the llama-cpp backend; write it with "
                                f"`t2s-bench train export {adapter} --lora-gguf`, or run with --backend transformers")
    return str(path)


def _trained_prompt(model: Path) -> dict:
    """The training prompt of a model `t2s-bench train` made without an adapter: a GGUF from `train export` (its
    `.export.json` sidecar, else the train_config.json of the adapter folder it was exported into), or a full
    fine-tuned model folder (its train_config.json); {} for any other model."""
    import json

    if model.is_dir():
        info = model / "train_config.json"
    elif model.suffix == ".gguf" and model.is_file():
        sidecar = model.with_name(model.stem + ".export.json")
        prompt = json.loads(sidecar.read_text()).get("prompt") if sidecar.is_file() else None
        if prompt:
            return prompt
        info = model.parent / "train_config.json"
    else:
        return {}
    if info.is_file():
        meta = json.loads(info.read_text())
        return meta.get("config", meta)
    return {}


def _adapter_meta(adapter: Path) -> dict:
    import json

    if not adapter.is_dir():
        raise FileNotFoundError(f"adapter folder {adapter} not found")
    for name in ("train_config.json", "adapter_meta.json"):
        p = adapter / name
        if not p.is_file():
            p = adapter.parent / name
        if p.is_file():
            return json.loads(p.read_text())
    return {}


class OracleSystem:
    """Answers with the gold SQL: checks the harness and the data (every score should be 100%)."""

    name = "oracle"

    def predict(self, tasks: list[Task]):
        from t2s_bench.systems.base import Prediction

        return [Prediction(t.example.index, t.example.db_id, t.example.query, raw_output=t.example.query) for t in tasks]

    def config(self) -> dict:
        return {"system": "oracle"}


def oracle(dataset_name=None) -> OracleSystem:
    return OracleSystem()
