#!/usr/bin/env python3
"""bench/softemb_torch.py - a PyTorch reference of the soft-embedding encoder,
timed the way bench/softemb_step times tokenmill's, for a side-by-side ratio
on the same device.

The model is the soft-tokenizer seed's shape as tokenmill implements it
(softemb/se_model.c): a nanoGPT-style byte transformer without the causal mask.
Tokens are bytes 0..255 plus START (256), END (257), PAD (258); learned token
and position embeddings; per layer pre-LN attention (fused qkv, heads of
width/heads, softmax over the keys t' < len, scale 1/sqrt(head width)) and a
pre-LN GELU (tanh) MLP of 4 x width, both residual; a final LayerNorm; the
END position pooled; a linear head to the teacher's width. Loss per sequence:
mse_weight * mean_c (y - t)^2 + (1 - cos(y, t)), with mse_weight = 1 / mean
square of the teacher rows (as softemb_step does), averaged over the batch;
global gradient-norm clipping at 1; AdamW (lr 3e-4, betas 0.9/0.99, eps 1e-8,
weight decay 0.01 on weight matrices and embeddings only). Every step draws new
random printable byte strings of exactly --bytes bytes (T = bytes + 2) and new
random targets among --teacher-rows random rows resident on the device.

FLOPs per step use softemb_step's analytic count (3 x forward, forward per
sequence layers * (24 T D^2 + 4 T^2 D) + 2 D E), so the TFLOP/s of both
programs are comparable. Precisions: fp32 (no TF32 anywhere), tf32 (TF32
matmuls), bf16 (autocast to bfloat16, TF32 for what stays fp32); --compile
adds torch.compile for each (compile time is reported, not timed).

Prints one human block per run and a line
  RESULT torch precision=P compile=0|1 steps_per_s=X tflops=Y ...
that bench/gpu_session.sh reads. Written for tokenmill, not copied.
"""
import argparse
import math
import sys
import time


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--width", type=int, default=768)
    p.add_argument("--bytes", type=int, default=48)
    p.add_argument("--batch", type=int, default=640)
    p.add_argument("--teacher-width", type=int, default=4096)
    p.add_argument("--teacher-rows", type=int, default=32000)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--precision", default="fp32,tf32,bf16",
                   help="comma-separated list of fp32, tf32, bf16")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd models")
    p.add_argument("--only-compile", action="store_true", help="time only torch.compile'd models")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--time-limit", type=float, default=0.0,
                   help="skip the remaining runs once this many seconds have passed (0: none)")
    p.add_argument("--check", action="store_true",
                   help="check the model against a plain re-computation (tiny shapes, CPU) and exit")
    return p.parse_args()


def build(torch, a):
    nn = torch.nn
    F = torch.nn.functional
    V, T, D, H, E = 259, a.bytes + 2, a.width, a.heads, a.teacher_width
    assert D % H == 0, "heads must divide width"

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(D, eps=1e-5)
            self.qkv = nn.Linear(D, 3 * D)
            self.proj = nn.Linear(D, D)
            self.ln2 = nn.LayerNorm(D, eps=1e-5)
            self.fc = nn.Linear(D, 4 * D)
            self.fc2 = nn.Linear(4 * D, D)

        def forward(self, x, keymask):
            B_, T_, _ = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(D, dim=2)
            q = q.view(B_, T_, H, D // H).transpose(1, 2)
            k = k.view(B_, T_, H, D // H).transpose(1, 2)
            v = v.view(B_, T_, H, D // H).transpose(1, 2)
            # keymask [B, 1, 1, T]: True where the key is a real position
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=keymask, is_causal=False)
            x = x + self.proj(y.transpose(1, 2).reshape(B_, T_, D))
            return x + self.fc2(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(V, D)
            self.wpe = nn.Parameter(torch.zeros(T, D))
            self.blocks = nn.ModuleList([Block() for _ in range(a.layers)])
            self.lnf = nn.LayerNorm(D, eps=1e-5)
            self.head = nn.Linear(D, E)
            # GPT-2 style init (as softemb/se_model.c): N(0, 0.02), residual
            # projections scaled by 1/sqrt(2 layers), biases 0, LN 1/0
            for n, prm in self.named_parameters():
                if n.endswith("bias"):
                    nn.init.zeros_(prm)
                elif "ln" in n:
                    nn.init.ones_(prm)
                else:
                    std = 0.02
                    if n.endswith("proj.weight") or n.endswith("fc2.weight"):
                        std = 0.02 / math.sqrt(2 * max(1, a.layers))
                    nn.init.normal_(prm, 0.0, std)

        def forward(self, tok, length):
            B_, T_ = tok.shape
            pos = torch.arange(T_, device=tok.device)
            x = self.wte(tok) + self.wpe[:T_]
            keymask = (pos[None, :] < length[:, None])[:, None, None, :]
            for blk in self.blocks:
                x = blk(x, keymask)
            x = self.lnf(x)
            pooled = x[torch.arange(B_, device=tok.device), length - 1]
            return self.head(pooled)

    return Encoder()


def loss_fn(torch, y, t, w_mse):
    F = torch.nn.functional
    y = y.to(t.dtype)  # the loss in the teacher's precision (fp32) under autocast
    mse = ((y - t) ** 2).mean(dim=1)
    cos = F.cosine_similarity(y, t, dim=1, eps=1e-12)
    return (w_mse * mse + (1.0 - cos)).mean()


def flops_per_step(a):
    T, D, E = a.bytes + 2, float(a.width), float(a.teacher_width)
    fwd = a.layers * (2.0 * T * 12 * D * D + 4.0 * T * T * D) + 2.0 * D * E
    return 3.0 * fwd * a.batch


def optimizer(torch, model, device):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    nodecay = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.01}, {"params": nodecay, "weight_decay": 0.0}]
    kw = dict(lr=3e-4, betas=(0.9, 0.99), eps=1e-8)
    if device.type == "cuda":
        kw["fused"] = True
    return torch.optim.AdamW(groups, **kw)


def run_one(torch, a, device, precision, compiled):
    torch.manual_seed(1234)
    tf32 = precision in ("tf32", "bf16")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    model = build(torch, a).to(device)
    nparams = sum(p.numel() for p in model.parameters())
    opt = optimizer(torch, model, device)
    R, E, B, T = a.teacher_rows, a.teacher_width, a.batch, a.bytes + 2
    g = torch.Generator(device=device)
    g.manual_seed(99)
    rows = (torch.rand(R, E, device=device, generator=g) * 2 - 1) * 0.05
    w_mse = 1.0 / (0.05 * 0.05 / 3.0)
    start = torch.full((B, 1), 256, dtype=torch.long, device=device)
    end = torch.full((B, 1), 257, dtype=torch.long, device=device)
    length = torch.full((B,), T, dtype=torch.long, device=device)
    fwd = torch.compile(model) if compiled else model

    def step():
        body = torch.randint(32, 127, (B, a.bytes), device=device, generator=g)
        tok = torch.cat([start, body, end], dim=1)
        tgt = torch.randint(0, R, (B,), device=device, generator=g)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            y = fwd(tok, length)
        loss = loss_fn(torch, y, rows[tgt], w_mse)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss, gn

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t_c = time.perf_counter()
    first = None
    for i in range(max(1, a.warmup)):
        loss, _ = step()
        if first is None:
            first = float(loss.detach())
    sync()
    warm_s = time.perf_counter() - t_c
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss, gn = step()
    sync()
    secs = time.perf_counter() - t0
    sps = a.steps / secs
    fl = flops_per_step(a)
    tflops = fl * sps / 1e12
    mem = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0.0
    label = precision + (" + torch.compile" if compiled else ", eager")
    print(f"== torch {torch.__version__}, {device}, {label}")
    print(f"model             {a.layers} layers, {a.heads} heads, width {a.width}, T {T}, linear head, batch {B}")
    print(f"teacher           {R} random rows x {E}; losses mse+cos; parameters {nparams}")
    print(f"FLOP per step     {fl:.4g} (3 x forward)")
    print(f"warm-up           {max(1, a.warmup)} steps in {warm_s:.2f} s" + (" (includes compilation)" if compiled else ""))
    print(f"steps timed       {a.steps}, {secs:.3f} s; loss {first:.5g} -> {float(loss.detach()):.5g}, gradient norm {float(gn):.4g}")
    print(f"steps/s           {sps:.3f}   ({1e3 / sps:.1f} ms/step, {sps * B:.0f} sequences/s)")
    print(f"achieved          {tflops:.3f} TFLOP/s; MFU {100 * tflops / 989:.1f}% of 989 (bf16 dense), "
          f"{100 * tflops / 494:.1f}% of 494 (TF32 dense), {100 * tflops / 67:.1f}% of 67 (fp32)")
    if device.type == "cuda":
        print(f"peak memory       {mem:.2f} GiB")
    print(f"RESULT torch precision={precision} compile={int(compiled)} steps_per_s={sps:.4f} "
          f"ms_per_step={1e3 / sps:.2f} tflops={tflops:.3f} params={nparams} mem_gib={mem:.2f} "
          f"loss_first={first:.5g} loss_last={float(loss.detach()):.5g}")
    sys.stdout.flush()
    del opt, model, fwd, rows
    if device.type == "cuda":
        torch.cuda.empty_cache()


def check(torch, a):
    """The model against a plain re-computation of the same math with explicit
    masks and a padded batch (tiny shapes): the forward of every sequence must
    not depend on its padding, and the loss on a hand computation."""
    torch.manual_seed(0)
    a.layers, a.heads, a.width, a.bytes, a.teacher_width = 2, 2, 16, 6, 8
    m = build(torch, a).double()
    F = torch.nn.functional
    D, H = a.width, a.heads
    toks = [[256, 65, 66, 257], [256, 67, 68, 69, 70, 71, 72, 257]]
    T = 8
    tok = torch.full((2, T), 258, dtype=torch.long)
    length = torch.tensor([len(s) for s in toks])
    for i, s in enumerate(toks):
        tok[i, :len(s)] = torch.tensor(s)
    with torch.no_grad():
        y = m(tok, length)

    def plain(seq):
        n = len(seq)
        x = m.wte.weight[torch.tensor(seq)] + m.wpe[:n]
        for blk in m.blocks:
            h = F.layer_norm(x, (D,), blk.ln1.weight, blk.ln1.bias, 1e-5)
            qkv = h @ blk.qkv.weight.T + blk.qkv.bias
            q, k, v = qkv[:, :D], qkv[:, D:2 * D], qkv[:, 2 * D:]
            outs = []
            for hh in range(H):
                sl = slice(hh * D // H, (hh + 1) * D // H)
                att = torch.softmax(q[:, sl] @ k[:, sl].T / math.sqrt(D // H), dim=1)
                outs.append(att @ v[:, sl])
            x = x + torch.cat(outs, dim=1) @ blk.proj.weight.T + blk.proj.bias
            h = F.layer_norm(x, (D,), blk.ln2.weight, blk.ln2.bias, 1e-5)
            u = h @ blk.fc.weight.T + blk.fc.bias
            u = 0.5 * u * (1 + torch.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u ** 3)))
            x = x + u @ blk.fc2.weight.T + blk.fc2.bias
        x = F.layer_norm(x, (D,), m.lnf.weight, m.lnf.bias, 1e-5)
        return x[n - 1] @ m.head.weight.T + m.head.bias

    with torch.no_grad():
        ref = torch.stack([plain(s) for s in toks])
    err = float((y - ref).abs().max() / ref.abs().max())
    t = torch.randn(2, a.teacher_width, dtype=torch.float64)
    lo = float(loss_fn(torch, y, t, 3.0))
    yy, tt = y.detach().numpy(), t.numpy()
    hand = 0.0
    for i in range(2):
        mse = ((yy[i] - tt[i]) ** 2).mean()
        cos = (yy[i] * tt[i]).sum() / math.sqrt((yy[i] ** 2).sum() * (tt[i] ** 2).sum())
        hand += (3.0 * mse + 1 - cos) / 2
    lerr = abs(lo - hand) / abs(hand)
    nparams = sum(p.numel() for p in m.parameters())
    Tm, E = a.bytes + 2, a.teacher_width
    expect = 259 * D + Tm * D + a.layers * (4 * D + 3 * D * D + 3 * D + D * D + D + 4 * D * D + 4 * D
                                           + 4 * D * D + D) + 2 * D + D * E + E
    print(f"check: forward vs plain recomputation {err:.3g}, loss vs hand {lerr:.3g}, "
          f"parameters {nparams} (tokenmill layout {expect})")
    ok = err < 1e-10 and lerr < 1e-10 and nparams == expect
    print("check:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def main():
    a = parse()
    try:
        import torch
    except ImportError as e:
        print(f"softemb_torch.py: SKIP: no PyTorch ({e})")
        return 77
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if a.check:
        return check(torch, a)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("softemb_torch.py: SKIP: torch.cuda.is_available() is False")
        return 77
    if device.type == "cuda":
        print(f"device            {torch.cuda.get_device_name(device)}, torch {torch.__version__}, "
              f"CUDA {torch.version.cuda}")
    t_start = time.perf_counter()
    runs = []
    for prec in [p.strip() for p in a.precision.split(",") if p.strip()]:
        if prec not in ("fp32", "tf32", "bf16"):
            print(f"softemb_torch.py: unknown precision {prec}", file=sys.stderr)
            return 2
        if not a.only_compile:
            runs.append((prec, False))
        if a.compile or a.only_compile:
            runs.append((prec, True))
    rc = 0
    for prec, comp in runs:
        if a.time_limit and time.perf_counter() - t_start > a.time_limit:
            print(f"== skipped {prec}{' + compile' if comp else ''}: past --time-limit {a.time_limit:g} s")
            continue
        try:
            run_one(torch, a, device, prec, comp)
        except Exception as e:  # one failing mode (e.g. no compiler for torch.compile) must not hide the others
            print(f"== torch {prec}{' + compile' if comp else ''} FAILED: {type(e).__name__}: {e}")
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
