"""Training data: Spider-format examples rendered with the inference prompt, tokenized, masked, saved.

Each example becomes `prompt_ids + target_ids`, where the prompt is the versioned template's chat
messages passed through the tokenizer's chat template (exactly what inference sends), and the
target is the normalised gold SQL followed by the token that ends an assistant turn. Labels are
-100 over the prompt, so the loss sees only SQL tokens.

Over-long examples: each schema format in `schema_formats` is tried in order (DDL first, then the
compact `table(col, ...)` form); an example whose prompt + target still exceeds `max_length` is
dropped and counted. Nothing is ever truncated, so every kept example has at least one label token
(a truncated example with no SQL token left gives a 0/0 = NaN mean loss).

The prepared set is an immutable HF `datasets` artefact in `<cache>/<name>-<hash>/`, where the hash
covers the template (version + sha256), the examples and schemas, the tokenizer and the settings;
an existing folder with the same hash is reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from t2s_bench.datasets import Dataset, Example

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
PREP_VERSION = "1"  # bump when the recipe below changes: old artefacts are then not reused


@dataclass(frozen=True)
class PrepSettings:
    template: str = "v1.0"
    max_length: int = 1024
    schema_formats: tuple[str, ...] = ("ddl", "compact")
    # the prompt's schema options as (name, value) pairs (prompting.SchemaOptions fields: schema, values,
    # sample_rows, ...), so training shows the schema text the system shows at inference; () = full schema
    schema_options: tuple[tuple[str, object], ...] = ()

    @staticmethod
    def options_tuple(options: dict | None) -> tuple[tuple[str, object], ...]:
        return tuple(sorted((options or {}).items()))


@dataclass
class PreparedData:
    path: Path
    train: object  # datasets.Dataset
    validation: object  # datasets.Dataset
    meta: dict = field(default_factory=dict)

    @property
    def data_hash(self) -> str:
        return self.meta["hash"]


# ---------------------------------------------------------------- targets and prompts


def _normalizer():
    """normalize_sql from t2s_bench.sql when available; otherwise whitespace collapsing (recorded in meta)."""
    try:
        from t2s_bench.sql.normalize import normalize_sql

        return "normalize_sql", normalize_sql
    except ImportError:
        log.warning("t2s_bench.sql.normalize is not available: training targets are the gold SQL, whitespace-collapsed")
        return "whitespace", lambda sql: " ".join(sql.split())


def target_sql(sql: str, normalize=None) -> str:
    normalize = normalize or _normalizer()[1]
    try:
        out = normalize(sql)
    except Exception:  # an unparsable gold query is still a valid target as written
        out = None
    return (out or " ".join(sql.split())).strip()


def end_of_turn_id(tokenizer) -> int:
    """The token the chat template puts right after an assistant message (Qwen: <|im_end|>)."""
    probe = "T2S_PROBE_ANSWER"
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": probe}], tokenize=False
    )
    tail = text[text.rindex(probe) + len(probe):].strip()
    ids = tokenizer(tail, add_special_tokens=False)["input_ids"] if tail else []
    if ids:
        return int(ids[0])
    if tokenizer.eos_token_id is None:
        raise ValueError("tokenizer has no end-of-turn marker in its chat template and no eos token")
    return int(tokenizer.eos_token_id)


def render_prompt_text(tokenizer, template, schema_text: str, question: str) -> str:
    """The exact text inference sends: template messages through the tokenizer's chat template."""
    messages = template.render(schema=schema_text, question=question)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def schema_text(schema, question: str, fmt: str, settings: PrepSettings, db_path=None) -> str:
    """The schema part of the prompt: the full schema, or (with schema options) the view the systems
    build with `prompting.schema_for` (pruned by a linker, with retrieved values, sample rows)."""
    from t2s_bench.prompting import schema_for, serialize_schema

    if not settings.schema_options:
        return serialize_schema(schema, fmt)
    return schema_for(question, schema, dict(settings.schema_options), db_path=db_path, fmt=fmt).text


def encode_example(tokenizer, template, schema, question: str, sql: str, settings: PrepSettings, eot_id: int,
                   normalize=None, db_path=None) -> dict | None:
    """Token ids and masked labels for one example, or None when no schema format fits max_length."""
    target_ids = tokenizer(target_sql(sql, normalize), add_special_tokens=False)["input_ids"] + [eot_id]
    for fmt in settings.schema_formats:
        prompt = render_prompt_text(tokenizer, template, schema_text(schema, question, fmt, settings, db_path),
                                    question)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if len(prompt_ids) + len(target_ids) <= settings.max_length:
            return {
                "input_ids": prompt_ids + target_ids,
                "labels": [IGNORE_INDEX] * len(prompt_ids) + target_ids,
                "n_prompt": len(prompt_ids),
                "n_target": len(target_ids),
                "schema_format": fmt,
            }
    return None


# ---------------------------------------------------------------- splits


def usable_examples(dataset: Dataset) -> tuple[list[Example], int]:
    """Examples whose database is present, and the count of those skipped (missing database)."""
    keep = [e for e in dataset.examples if dataset.db_path(e.db_id) is not None]
    return keep, len(dataset.examples) - len(keep)


def check_disjoint(train_dbs, val_dbs) -> None:
    shared = sorted(set(train_dbs) & set(val_dbs))
    if shared:
        raise ValueError(
            f"validation must use databases not seen in training, but {len(shared)} are shared: "
            f"{shared[:10]}{' ...' if len(shared) > 10 else ''}"
        )


def sample_validation(examples: list[Example], size: int | None, seed: int) -> list[Example]:
    if size is None or size >= len(examples):
        return list(examples)
    picked = random.Random(seed).sample(range(len(examples)), size)
    return [examples[i] for i in sorted(picked)]


def _length_summary(values: list[int]) -> dict:
    if not values:
        return {"n": 0}
    s = sorted(values)
    q = lambda p: s[min(len(s) - 1, int(p * (len(s) - 1) + 0.5))]  # noqa: E731
    edges = [0, 128, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 8192, 10**9]
    hist = {f"{a}-{b}": sum(a <= v < b for v in s) for a, b in zip(edges, edges[1:]) if any(a <= v < b for v in s)}
    return {"n": len(s), "min": s[0], "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": s[-1],
            "mean": round(sum(s) / len(s), 1), "histogram": hist}


def encode_split(dataset: Dataset, examples: list[Example], tokenizer, template, settings: PrepSettings,
                 eot_id: int) -> tuple[list[dict], dict]:
    norm_name, normalize = _normalizer()
    records, dropped, lengths_all, fmt_counts = [], [], [], {}
    if settings.schema_options:  # an embedding linker embeds every question in one batch, not one at a time
        from t2s_bench.prompting.schema_view import prefetch

        prefetch([ex.question for ex in examples], dict(settings.schema_options))
    for ex in examples:
        rec = encode_example(tokenizer, template, dataset.schema(ex.db_id), ex.question, ex.query, settings,
                             eot_id, normalize, db_path=dataset.db_path(ex.db_id))
        if rec is None:
            dropped.append(ex.index)
            continue
        rec.update(index=ex.index, db_id=ex.db_id)
        records.append(rec)
        lengths_all.append(len(rec["input_ids"]))
        fmt_counts[rec["schema_format"]] = fmt_counts.get(rec["schema_format"], 0) + 1
    stats = {
        "n_examples": len(examples),
        "n_kept": len(records),
        "n_dropped_too_long": len(dropped),
        "dropped_indices": dropped,
        "schema_format_counts": fmt_counts,
        "target_normalizer": norm_name,
        "total_tokens": _length_summary(lengths_all),
        "prompt_tokens": _length_summary([r["n_prompt"] for r in records]),
        "target_tokens": _length_summary([r["n_target"] for r in records]),
    }
    return records, stats


# ---------------------------------------------------------------- hashing and the artefact


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def dataset_fingerprint(dataset: Dataset, examples: list[Example]) -> str:
    dbs = sorted({e.db_id for e in examples})
    return _sha({
        "examples": [(e.index, e.db_id, e.question, e.query) for e in examples],
        "schemas": {db: dataset.schema(db).to_tables_json() for db in dbs},
    })


def tokenizer_fingerprint(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return _sha({"tokenizer": hashlib.sha256(body.encode()).hexdigest(), "chat_template": tokenizer.chat_template,
                 "special": tokenizer.special_tokens_map})


def held_out_databases(dataset: Dataset, fraction: float = 0.1, seed: int = 42) -> list[str]:
    """A seeded choice of whole databases (about `fraction` of the questions) to validate on:
    a split of a training set that is schema-disjoint from the rest, as Spider dev is from train,
    so checkpoints and hyperparameters are chosen without touching the reported split."""
    import random

    counts: dict[str, int] = {}
    for e in dataset.examples:
        counts[e.db_id] = counts.get(e.db_id, 0) + 1
    order = sorted(counts)
    random.Random(seed).shuffle(order)
    chosen, total = [], 0
    for db in order:
        if total >= fraction * len(dataset.examples):
            break
        chosen.append(db)
        total += counts[db]
    return sorted(chosen)


def prepare_training_data(
    train: Dataset,
    validation: Dataset,
    tokenizer,
    settings: PrepSettings = PrepSettings(),
    *,
    cache_root: str | Path,
    val_size: int | None = None,
    seed: int = 42,
    train_db_ids: list[str] | None = None,
    val_db_ids: list[str] | None = None,
) -> PreparedData:
    """Encode train and validation examples into `<cache_root>/prep-<hash>/` (reused when present).

    Examples whose database is absent are excluded and counted; validation databases must not
    appear in training (ValueError otherwise). `val_size` takes a seeded sample of validation.
    """
    from datasets import DatasetDict, load_from_disk

    from t2s_bench.prompting import load_template

    template = load_template(settings.template)
    train_ex, train_missing = usable_examples(train)
    val_ex, val_missing = usable_examples(validation)
    if train_db_ids is not None:
        train_ex = [e for e in train_ex if e.db_id in set(train_db_ids)]
    if val_db_ids is not None:
        val_ex = [e for e in val_ex if e.db_id in set(val_db_ids)]
    check_disjoint({e.db_id for e in train_ex}, {e.db_id for e in val_ex})
    val_ex = sample_validation(val_ex, val_size, seed)
    if not train_ex:
        raise ValueError(f"{train.name}: no training example has its database present")
    if not val_ex:
        raise ValueError(f"{validation.name}: no validation example has its database present")

    eot_id = end_of_turn_id(tokenizer)
    key = {
        "prep_version": PREP_VERSION,
        "template": {"version": template.version, "sha256": template.sha256},
        "train": dataset_fingerprint(train, train_ex),
        "validation": dataset_fingerprint(validation, val_ex),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "settings": asdict(settings),
        "normalizer": _normalizer()[0],
    }
    digest = _sha(key)[:16]
    folder = Path(cache_root) / f"prep-{digest}"
    if (folder / "meta.json").is_file() and (folder / "data").is_dir():
        log.info("reusing prepared training data %s", folder)
        meta = json.loads((folder / "meta.json").read_text())
        data = load_from_disk(str(folder / "data"))
        return PreparedData(folder, data["train"], data["validation"], meta)

    train_records, train_stats = encode_split(train, train_ex, tokenizer, template, settings, eot_id)
    val_records, val_stats = encode_split(validation, val_ex, tokenizer, template, settings, eot_id)
    if not train_records:
        raise ValueError(f"every training example is longer than max_length={settings.max_length}")
    if not val_records:
        raise ValueError(f"every validation example is longer than max_length={settings.max_length}")
    for name, stats, missing in (("train", train_stats, train_missing), ("validation", val_stats, val_missing)):
        stats["n_skipped_missing_database"] = missing
        log.info(
            "%s: %d kept, %d dropped (longer than %d tokens in every schema format), %d skipped (missing "
            "database); tokens p50 %s p99 %s max %s", name, stats["n_kept"], stats["n_dropped_too_long"],
            settings.max_length, missing, stats["total_tokens"].get("p50"), stats["total_tokens"].get("p99"),
            stats["total_tokens"].get("max"),
        )
    meta = {
        "hash": digest,
        "key": key,
        "train_dataset": train.name,
        "validation_dataset": validation.name,
        "end_of_turn_id": eot_id,
        "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eot_id,
        "train_db_ids": sorted({e.db_id for e in train_ex}),
        "validation_db_ids": sorted({e.db_id for e in val_ex}),
        "stats": {"train": train_stats, "validation": val_stats},
    }
    from datasets import Dataset as HFDataset

    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    DatasetDict({"train": HFDataset.from_list(train_records), "validation": HFDataset.from_list(val_records)}) \
        .save_to_disk(str(tmp / "data"))
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)  # complete or absent: never a half-written artefact
    data = load_from_disk(str(folder / "data"))
    return PreparedData(folder, data["train"], data["validation"], meta)
