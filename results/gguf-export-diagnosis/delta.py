import sys, numpy as np, gguf
from safetensors import safe_open
base_gguf, exp_gguf, merged = sys.argv[1:4]
def tensors(path):
    r = gguf.GGUFReader(path); return {t.name: t for t in r.tensors}
B, E = tensors(base_gguf), tensors(exp_gguf)
def deq(t):
    a = gguf.quants.dequantize(t.data, t.tensor_type); return np.asarray(a, dtype=np.float32).reshape([int(x) for x in reversed(t.shape)] if a.ndim==1 else a.shape)
f = safe_open(merged, "np")
pairs = [("blk.%d.%s.weight" % (i, g), "model.layers.%d.%s.weight" % (i, h)) for i in (0, 10) for g, h in
         [("attn_q", "self_attn.q_proj"), ("attn_v", "self_attn.v_proj"), ("ffn_down", "mlp.down_proj"), ("ffn_up", "mlp.up_proj")]]
for gname, hname in pairs:
    w0 = deq(B[gname]); wq = deq(E[gname]); w = f.get_tensor(hname).astype(np.float32)
    w0 = w0.reshape(w.shape); wq = wq.reshape(w.shape)
    d = w - w0; dq = wq - w0
    cos = float((d * dq).sum() / (np.linalg.norm(d) * np.linalg.norm(dq) + 1e-12))
    print(f"{gname:24s} base:{B[gname].tensor_type.name:5s} exp:{E[gname].tensor_type.name:5s} |delta|={np.linalg.norm(d):8.3f} |exported-base|={np.linalg.norm(dq):8.3f} |exported-merged|={np.linalg.norm(wq-w):8.3f} cos(delta, exported-base)={cos:.3f}")
