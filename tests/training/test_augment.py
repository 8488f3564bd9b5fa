"""Spider-Syn train paraphrases as augmentation: aligned with Spider train, never a validation or dev database."""

from __future__ import annotations

import pytest

from t2s_bench import paths


@pytest.fixture(scope="module")
def spider_train():
    if paths.spider_dir() is None or not (paths.spider_dir() / "train_spider.json").is_file():
        pytest.skip("Spider train not available (set T2S_SPIDER_DIR)")
    if paths.spider_syn_dir() is None or not (paths.spider_syn_dir() / "train.json").is_file():
        pytest.skip("Spider-Syn train not available (set T2S_SPIDER_SYN_DIR)")
    from t2s_bench.datasets import load_dataset

    return load_dataset("spider-train")


def test_spider_syn_paraphrases_keep_the_sql_and_skip_held_out_databases(spider_train):
    from t2s_bench.training.augment import SYN_INDEX_OFFSET, spider_syn_examples
    from t2s_bench.training.data import held_out_databases

    held_out = set(held_out_databases(spider_train))
    train_dbs = {e.db_id for e in spider_train.examples} - held_out
    extra, stats = spider_syn_examples(spider_train, paths.spider_syn_dir(), train_dbs, held_out)
    assert stats["records"] == len(spider_train.examples) and stats["misaligned"] < 10
    assert stats["added"] == len(extra) > 3000 and stats["unchanged"] > 0 and stats["other_database"] > 0
    by_index = {e.index: e for e in spider_train.examples}
    for e in extra:
        source = by_index[e.index - SYN_INDEX_OFFSET]
        assert e.query == source.query and e.db_id == source.db_id and e.question != source.question
        assert e.db_id in train_dbs and e.db_id not in held_out


def test_training_split_with_augmentation_never_touches_validation_or_dev(spider_train):
    from t2s_bench.datasets import load_dataset
    from t2s_bench.training.config import TrainConfig
    from t2s_bench.training.trainer import training_split

    train_ds, val_ds, train_dbs, val_dbs, stats = training_split(
        TrainConfig(base="x", out="y", augment=("spider-syn",)))
    assert stats["spider-syn"]["added"] == len(train_ds.examples) - len(spider_train.examples)
    dev_dbs = {e.db_id for e in load_dataset("spider-dev").examples}
    augmented_dbs = {e.db_id for e in train_ds.examples if e.extra.get("source") == "spider-syn"}
    assert augmented_dbs and not augmented_dbs & (set(val_dbs) | dev_dbs)
    assert not set(train_dbs) & set(val_dbs) and val_ds.name == "spider-train"
