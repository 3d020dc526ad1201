"""GPT-2-shaped forward pass in PyTorch, the same workload as `tdb bench forward`.

Random weights of the GPT-2 shapes (the numbers do not matter for speed):
embeddings, n_layer pre-LN blocks (attention with a causal mask, MLP with
gelu_new), the final LayerNorm and, for the second row, the unembedding
(tied to the token embedding). The MLP activations of every layer are
kept, as tdb bench forward captures them. Prints JSON rows with the same
keys as `tdb bench forward --json` that both report (tokens_per_cpu_s: process
CPU time, all threads, which at one thread other jobs' load disturbs least).
"""
import argparse
import json
import math
import time

import torch

PRESETS = {
    "gpt2": dict(n_layer=12, d=768, heads=12),
    "gpt2-medium": dict(n_layer=24, d=1024, heads=16),
}


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="gpt2")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--time", type=float, default=10.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    p = PRESETS[a.preset]
    L, d, H, V = p["n_layer"], p["d"], p["heads"], 50257
    dh = d // H
    w = lambda *s: torch.randn(*s) * 0.02
    wte, wpe = w(V, d), w(1024, d)
    blocks = [dict(ln1=(torch.ones(d), torch.zeros(d)), attn=(w(d, 3 * d), torch.zeros(3 * d)),
                   proj=(w(d, d), torch.zeros(d)), ln2=(torch.ones(d), torch.zeros(d)),
                   fc=(w(d, 4 * d), torch.zeros(4 * d)), out=(w(4 * d, d), torch.zeros(d))) for _ in range(L)]
    lnf = (torch.ones(d), torch.zeros(d))
    B, T = a.batch, a.seq
    tokens = torch.tensor([[(i * 7919 + t * 104729) % V for t in range(T)] for i in range(B)])
    mask = torch.full((T, T), float("-inf")).triu(1)

    def forward(logits):
        x = wte[tokens] + wpe[:T]
        acts = []
        for b in blocks:
            h = torch.nn.functional.layer_norm(x, (d,), *b["ln1"], 1e-5)
            qkv = torch.addmm(b["attn"][1], h.view(-1, d), b["attn"][0]).view(B, T, 3, H, dh)
            q, k, v = qkv.unbind(2)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh) + mask, dim=-1)
            z = (att @ v).transpose(1, 2).reshape(B * T, d)
            x = x + torch.addmm(b["proj"][1], z, b["proj"][0]).view(B, T, d)
            h = torch.nn.functional.layer_norm(x, (d,), *b["ln2"], 1e-5)
            post = gelu_new(torch.addmm(b["fc"][1], h.view(-1, d), b["fc"][0]))
            acts.append(post)
            x = x + torch.addmm(b["out"][1], post, b["out"][0]).view(B, T, d)
        x = torch.nn.functional.layer_norm(x, (d,), *lnf, 1e-5)
        if logits:
            return acts, x.view(-1, d) @ wte.t()
        return acts, None

    rows = []
    with torch.inference_mode():
        for logits in (False, True):
            forward(logits)  # warm-up
            n, start, cpu0 = 0, time.perf_counter(), time.process_time()
            while n == 0 or time.perf_counter() - start < a.time:
                forward(logits)
                n += 1
            el, cpu = time.perf_counter() - start, time.process_time() - cpu0
            rows.append(dict(model="torch:" + a.preset, batch=B, seq=T, logits=logits,
                             tokens_per_s=n * B * T / el, seconds_per_batch=el / n,
                             cpu_s_per_batch=cpu / n, tokens_per_cpu_s=n * B * T / cpu,
                             threads=a.threads, torch=torch.__version__))
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
