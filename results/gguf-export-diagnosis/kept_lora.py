import json
from t2s_bench.training import fine_tuning_kept
M = "/root/.cache/t2s-bench/models"
A = "adapters/qwen2.5-coder-1.5b-lora-syn-pv"
r = fine_tuning_kept(A + "/model-q8_0-merged-hf", M + "/qwen2.5-coder-1.5b-gguf/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                     M + "/qwen2.5-coder-1.5b-gguf/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", lora_path=A + "/adapter-lora-f16.gguf")
print("1.5b-base-q4_k_m+lora", r, flush=True)
d = json.load(open("/tmp/kept.json")); d["1.5b-base-q4_k_m+lora-f16"] = r; json.dump(d, open("/tmp/kept.json", "w"), indent=1)
