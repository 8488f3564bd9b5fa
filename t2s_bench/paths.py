"""Where things live: caches, the Spider copy, the repository's prompts."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Root of every on-disk cache (models, demo databases, gold results)."""
    root = os.environ.get("T2S_CACHE_DIR") or Path.home() / ".cache" / "t2s-bench"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def spider_dir() -> Path | None:
    """A Spider copy: $T2S_SPIDER_DIR, else ../shared/spider beside the repo, else the fetch cache."""
    candidates = [os.environ.get("T2S_SPIDER_DIR"), REPO_ROOT.parent / "shared" / "spider"]
    candidates.append(str(Path(os.environ.get("T2S_CACHE_DIR") or Path.home() / ".cache" / "t2s-bench") / "spider"))
    for c in candidates:
        if c and (Path(c) / "tables.json").is_file():
            return Path(c)
    return None


def spider_syn_dir() -> Path | None:
    env = os.environ.get("T2S_SPIDER_SYN_DIR")
    for c in [env, REPO_ROOT.parent / "shared" / "spider_syn"]:
        if c and (Path(c) / "dev.json").is_file():
            return Path(c)
    return None


def prompts_dir() -> Path:
    return Path(os.environ.get("T2S_PROMPTS_DIR") or REPO_ROOT / "prompts")
