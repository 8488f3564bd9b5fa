"""Sentence embeddings (all-MiniLM-L6-v2 by default) with plain transformers: mean pooling + L2 norm."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from t2s_bench import paths

DEFAULT_EMBEDDER = "all-minilm-l6-v2"


class Embedder:
    def __init__(self, model: str = DEFAULT_EMBEDDER, device: str = "cpu", batch_size: int = 64):
        import torch
        from transformers import AutoModel, AutoTokenizer

        from t2s_bench.backends.catalog import resolve_model

        self.model_dir = Path(resolve_model(model))
        self.name = model
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.model = AutoModel.from_pretrained(self.model_dir).to(device).eval()
        self.device, self.batch_size, self._torch = device, batch_size, torch

    def encode(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        from tqdm import tqdm

        out = []
        steps = range(0, len(texts), self.batch_size)
        # embedding a training pool takes minutes on a CPU: show progress for anything that long
        shown = len(texts) > 20 * self.batch_size
        with torch.inference_mode():
            for i in tqdm(steps, desc=f"embedding {len(texts)} texts", unit="batch", disable=not shown):
                batch = self.tokenizer(
                    texts[i : i + self.batch_size], padding=True, truncation=True, max_length=128, return_tensors="pt"
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)

    def encode_cached(self, texts: list[str]) -> np.ndarray:
        """Embeddings cached on disk, keyed by model and a hash of the texts."""
        key = hashlib.sha256(json.dumps([self.name, texts]).encode()).hexdigest()[:24]
        path = paths.cache_dir() / "embeddings" / f"{key}.npy"
        if path.is_file():
            return np.load(path)
        vecs = self.encode(texts)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, vecs)
        tmp.replace(path)
        return vecs
