"""Training-data augmentation: Spider-Syn train paraphrases of Spider train questions.

Spider-Syn's train.json has one record per Spider `train_spider.json` question, in the same order,
with the question rewritten by synonym substitution (`question`) beside the original
(`original_question`) and the same SQL. A paraphrase is added as a new training example only when it
differs from the original and its database is one the run trains on, so held-out validation
databases stay unseen; Spider-Syn dev and every dev database are never read.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from t2s_bench.datasets import Dataset, Example

log = logging.getLogger(__name__)

SYN_INDEX_OFFSET = 1_000_000  # paraphrase of example i gets index i + offset (indices stay unique)


def spider_syn_examples(train: Dataset, syn_dir: str | Path, db_ids: set[str] | None = None,
                        forbidden_db_ids: set[str] = frozenset()) -> tuple[list[Example], dict]:
    """Paraphrased copies of `train`'s examples from Spider-Syn train, and counts of what was kept."""
    records = json.loads((Path(syn_dir) / "train.json").read_text(encoding="utf-8"))
    by_index = {e.index: e for e in train.examples}
    out, stats = [], {"records": len(records), "unchanged": 0, "misaligned": 0, "other_database": 0}
    for i, r in enumerate(records):
        original = by_index.get(i)
        if original is None or original.db_id != r["db_id"] or original.question.strip() != \
                r.get("original_question", "").strip():
            stats["misaligned"] += 1
            continue
        if r["question"].strip() == original.question.strip():
            stats["unchanged"] += 1
            continue
        if (db_ids is not None and r["db_id"] not in db_ids) or r["db_id"] in forbidden_db_ids:
            stats["other_database"] += 1
            continue
        out.append(Example(i + SYN_INDEX_OFFSET, r["db_id"], r["question"], original.query,
                           {"augmented_from": i, "source": "spider-syn"}))
    stats["added"] = len(out)
    if stats["misaligned"] > len(records) // 2:
        raise ValueError(f"{syn_dir}/train.json does not line up with {train.name} ({stats['misaligned']} of "
                         f"{len(records)} records differ in database or question): is it Spider-Syn train?")
    return out, stats


def augmented(train: Dataset, kinds: tuple[str, ...], *, db_ids: set[str] | None,
              forbidden_db_ids: set[str] = frozenset()) -> tuple[Dataset, dict]:
    """`train` with the augmentations in `kinds` appended; the stats of each."""
    from t2s_bench import paths

    stats: dict = {}
    examples = list(train.examples)
    for kind in kinds:
        if kind != "spider-syn":
            raise ValueError(f"unknown augmentation {kind!r}")
        syn_dir = paths.spider_syn_dir()
        if syn_dir is None:
            raise FileNotFoundError("--augment spider-syn needs Spider-Syn (set T2S_SPIDER_SYN_DIR)")
        extra, stats[kind] = spider_syn_examples(train, syn_dir, db_ids, forbidden_db_ids)
        log.info("spider-syn: %d paraphrases added (%s)", len(extra), stats[kind])
        examples += extra
    name = "+".join((train.name, *kinds))
    return Dataset(name, examples, train.schemas, train.db_dir), stats
