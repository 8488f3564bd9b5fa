import numpy as np, torch
from transformers import AutoTokenizer
from t2s_bench.testing.tiny_model import gguf_logits, hf_logits
from t2s_bench.training.models import load_model
from t2s_bench.training.export import VERIFY_TEXT
M = "/root/.cache/t2s-bench/models/qwen2.5-coder-1.5b-gguf/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
A = "adapters/qwen2.5-coder-1.5b-lora-syn-pv"
ids = AutoTokenizer.from_pretrained(A + "/model-q8_0-merged-hf")(VERIFY_TEXT, add_special_tokens=False)["input_ids"]
def ls(x):
    x = x - x.max(1, keepdims=True); return x - np.log(np.exp(x).sum(1, keepdims=True))
base_hf = ls(hf_logits(load_model(M, None, dtype=torch.float32), ids))
n = base_hf.shape[1]
base_gg = ls(gguf_logits(M, ids)[:, :n])
kl = lambda p, q: float((np.exp(p) * (p - q)).sum(1).mean())
print("KL(base_hf || base_gguf) =", kl(base_hf, base_gg), flush=True)
