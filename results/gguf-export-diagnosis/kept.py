import json, sys
from t2s_bench.training import fine_tuning_kept
M = "/root/.cache/t2s-bench/models"
cases = [
 ("1.5b-q4_k_m", "adapters/qwen2.5-coder-1.5b-lora-syn-pv/model-q4_k_m-merged-hf", "adapters/qwen2.5-coder-1.5b-lora-syn-pv/model-q4_k_m.gguf", M+"/qwen2.5-coder-1.5b-gguf/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
 ("1.5b-q8_0", "adapters/qwen2.5-coder-1.5b-lora-syn-pv/model-q8_0-merged-hf", "adapters/qwen2.5-coder-1.5b-lora-syn-pv/model-q8_0.gguf", M+"/qwen2.5-coder-1.5b-gguf/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
 ("0.5b-q4_k_m", "adapters/qwen2.5-coder-0.5b-lora-syn-pv/model-q4_k_m-merged-hf", "adapters/qwen2.5-coder-0.5b-lora-syn-pv/model-q4_k_m.gguf", M+"/qwen2.5-coder-0.5b-gguf/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
]
out = {}
for name, merged, gguf, base in cases:
    out[name] = fine_tuning_kept(merged, gguf, base)
    print(name, out[name], flush=True)
json.dump(out, open("/tmp/kept.json", "w"), indent=1)
