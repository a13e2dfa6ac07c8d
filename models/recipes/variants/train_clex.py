"""Train the CLEX variant of the demo base and export it as a ctx model folder.

    python3 models/recipes/variants/train_clex.py [--base models/needle-demo] [--out models/needle-clex]

What the official recipe does (DAMO-NLP-SG/CLEX train/train_lm.py, scripts/train_lm.sh; CLEX.md section 7),
on this base: a CLEX layer is added to the base (W_down = 0, so it starts as NTK scaling) and every
parameter (the base's and the ODE's) is fine-tuned together, with AdamW, no weight decay, 3% warm-up and a
cosine schedule, on sequences of a fixed length n = 2P (P = the base window; "up to 4x" per the paper's
16K-from-4K models; 2x here so that the 16x rows reach 8x the training length). Each batch draws one
scale factor t from {1..max_factor}, the ODE is solved from 1 to t, and the n tokens get the official
random positions covering [0, P*t). The data is the base's own task (common.py). Then: export (float16,
the CLEX tensors in float32), evaluation by the recipe's forward, and ctx's check (check_variants.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from clex import ClexRope, attach, scale_factor, train_positions  # noqa: E402

SEED = 17
MAX_FACTOR = 16
CLEX_SCALING = {"type": "clex", "factor": 1, "max_factor": MAX_FACTOR, "param_factor": 1, "act": "tanh", "time_dt": 0.01}


def evaluate(model, layer, P: int, task: str, n: int, seed: int) -> dict:
    """Exact answers and the number's loss at 1x..16x the window (documents 8 tokens shorter than k*P, so
    that the prompt's t is k), with integer positions and t = ceil(L/P) as at inference."""
    table = layer.table()
    out = {}
    for k in (1, 2, 4, 8, 16):
        L = k * P - 8
        model.rope = ClexRope(table[scale_factor(L + 3, P, MAX_FACTOR) - 1])
        out[f"{k}x"] = common.exact_full(model, task, L, n, seed=seed + k, batch_size=4 if k >= 8 else 8)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default=common.DEFAULT_BASE)
    ap.add_argument("--out", default=os.path.join(common.REPO, "models", "needle-clex"))
    ap.add_argument("--work", default=common.DEFAULT_WORK)
    ap.add_argument("--task", default="single", choices=["single", "mqar"])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--train-factor", type=int, default=2, help="training length n = this x the base window")
    ap.add_argument("--tokens", type=int, default=4096, help="tokens per batch")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--ode-lr", type=float, default=3e-3, help="learning rate of the ODE's two matrices")
    ap.add_argument("--before", action="store_true", help="also evaluate the starting point (CLEX with W_down = 0)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-n", type=int, default=16)
    ap.add_argument("--skip-check", action="store_true")
    args = ap.parse_args()
    common.setup(args.threads, SEED)
    os.makedirs(args.work, exist_ok=True)

    model, cfg = common.load_base(args.base)
    P = common.window(cfg)
    cfg = {**cfg, "rope_scaling": CLEX_SCALING, "log_scale": False, "use_flashattn": False, "torch_dtype": "float16"}
    layer = attach(model, cfg)
    n = args.train_factor * P
    B = max(1, args.tokens // n)
    common.log(f"base {args.base} (window {P}), CLEX max_factor {MAX_FACTOR}; training length {n}, batch {B}, {args.steps} steps, lr {args.lr}")
    hist = {"base": os.path.relpath(args.base, common.REPO), "task": args.task, "window": P, "train_length": n, "batch": B, "steps": args.steps, "lr": args.lr, "ode_lr": args.ode_lr, "threads": args.threads}
    if args.before:
        hist["before"] = evaluate(model, layer, P, args.task, args.eval_n, seed=900)
        common.log(f"before (NTK schedule, untrained ODE): {hist['before']}")

    rng = np.random.default_rng(SEED)
    params = list(model.parameters())
    ode = list(layer.proj_func.parameters())
    rest = [p for p in params if all(p is not q for q in ode)]
    opt = torch.optim.AdamW([{"params": rest, "peak": args.lr}, {"params": ode, "peak": args.ode_lr}], betas=(0.9, 0.999), weight_decay=0.0)
    warmup = max(1, round(0.03 * args.steps))
    ema, curve, t_start = 0.0, [], time.time()
    for step in range(args.steps):
        t = int(rng.integers(1, MAX_FACTOR + 1))
        b = common.batch(rng, args.task, n, B)
        pos = train_positions(rng, n, P, t)
        for g in opt.param_groups:
            g["lr"] = common.lr_at(step, args.steps, g["peak"], warmup)
        model.rope.use(layer.train_frequencies(t))
        h = model.forward_full(torch.from_numpy(b.ids), positions=pos)
        loss, ex = common.answer_loss(model.logits(h[:, torch.from_numpy(b.target_rows)]), torch.from_numpy(b.targets))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema = ex if step == 0 else 0.95 * ema + 0.05 * ex
        if (step + 1) % 25 == 0:
            curve.append({"step": step + 1, "t": t, "loss": round(loss.item(), 4), "exact_ema": round(ema, 3), "cpu_min": round(common.cpu_minutes(), 2)})
            common.log(f"step {step + 1} t {t} loss {loss.item():.4f} exact(ema) {ema:.3f} |W_down| {layer.proj_func.ode_down_proj.norm():.3f}")
    hist["curve"] = curve
    hist["train_cpu_minutes"] = round(common.cpu_minutes(), 2)
    hist["train_wall_minutes"] = round((time.time() - t_start) / 60, 1)

    tensors = common.half(model.state_dict(), keep_float32=("model.clex_layer.",))
    common.export_folder(args.out, tensors, cfg, args.base)
    common.log(f"exported {args.out}")
    from clex import load_clex

    shipped, _ = load_clex(args.out)
    hist["after"] = evaluate(shipped, shipped.model.clex_layer, P, args.task, args.eval_n, seed=900)
    common.log(f"after: {hist['after']}")
    hist["f_t"] = {"ntk_init_vs_trained_max_rel": float(((shipped.model.clex_layer.table() / ntk_table(shipped.model.clex_layer)) - 1).abs().max())}
    hist["cpu_minutes"] = round(common.cpu_minutes(), 2)
    json.dump(hist, open(os.path.join(args.work, "clex.json"), "w"), indent=1)
    if args.skip_check:
        return 0
    import check_variants

    return check_variants.check("clex", args.out, os.path.join(args.work, "golden-clex"))


def ntk_table(layer) -> torch.Tensor:
    """f(t) of the untrained layer (W_down = 0): inv_freq * (2t-1)^(-2i/(D-2))."""
    D = 2 * layer.inv_freq.shape[0]
    i = torch.arange(D // 2, dtype=torch.float64)
    t = torch.arange(1, layer.max_factor + 1, dtype=torch.float64)[:, None]
    return (layer.inv_freq.double()[None, :] * (2 * t - 1) ** (-2 * i / (D - 2))).float()


if __name__ == "__main__":
    sys.exit(main())
