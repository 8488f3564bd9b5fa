"""`t2s-bench train` under torchrun: two CPU processes (gloo backend, DDP) on the tiny model must agree with
each other and with a one-process run of the same global batch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
yaml = pytest.importorskip("yaml")


def _config(tiny_model, root, out, batch_size) -> str:
    values = dict(
        base=str(tiny_model.hf_dir), out=str(out), builder="lora", train="demo", val="demo",
        train_db_ids=["school", "store"], val_db_ids=["flights"], val_size=2, schema_formats=["compact"],
        max_steps=3, batch_size=batch_size, grad_accum=1, eval_every=0, eval_at_start=False, lr=1e-3,
        lora_dropout=0.0, shuffle=False, max_new_tokens=4, gen_batch_size=2, exec_workers=1, log_every=1,
        data_cache=str(root / "prep"), device="cpu",
    )
    path = root / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


# about 25 s on 2 idle cores (two processes importing torch + transformers, then a one-process reference)
def test_two_gloo_processes_agree_with_each_other_and_with_one_process(tiny_model, tmp_path):
    from safetensors.torch import load_file

    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    two = tmp_path / "two"
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "t2s_bench", "train",
           "--config", _config(tiny_model, tmp_path, two, batch_size=2)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    one = tmp_path / "one"
    done = subprocess.run([sys.executable, "-m", "t2s_bench", "train", "--config",
                           _config(tiny_model, tmp_path, one, batch_size=4)],
                          env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-5000:]

    s2 = json.loads((two / "train_summary.json").read_text())
    s1 = json.loads((one / "train_summary.json").read_text())
    assert s2["processes"] == 2 and s1["processes"] == 1 and s2["steps"] == s1["steps"] == 3
    a, b = s2["rank_weight_checksums"]
    assert a == b  # the replicas hold the same weights
    assert s2["tokens_seen"] == s1["tokens_seen"]  # the same examples, split over two processes
    w2, w1 = load_file(str(two / "adapter_model.safetensors")), load_file(str(one / "adapter_model.safetensors"))
    assert w2.keys() == w1.keys()
    init = max(float(v.abs().max()) for k, v in w1.items() if "lora_B" in k)
    assert init > 0  # training moved the weights (LoRA B starts at zero)
    worst = max(float((w2[k] - w1[k]).abs().max()) for k in w1)
    assert worst < 1e-4 * max(1.0, init) + 1e-5, worst  # same global batch, same loss normalisation
