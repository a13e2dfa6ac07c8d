"""Train the softmax and the LSSA (softplus attention) variants of the demo base and export them.

    python3 models/recipes/variants/train_softplus.py --attention lssa     [--out models/needle-lssa]
    python3 models/recipes/variants/train_softplus.py --attention softmax  [--out models/needle-softmax]

Both start from the demo base's weights and get the same fine-tune: the same data stream (same seed),
steps, batch and learning-rate schedule; only the attention kernel differs (softmax, or LSSA: l1-normalised
softplus of ln(D) ln(n) x cosine similarity, softplus.py). Training sequences are at most the base window P
long (the training window), so `full` at 2x..16x P is length extrapolation for both. LSSAR (re-weighting,
p = 3 or 15) is an inference-time choice (ctx's --softplus-reweight); the LSSA model is trained without it,
as the paper's "fine-tuning-free" re-weighting (SOFTPLUS.md section 6).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import softplus  # noqa: E402

SEED = 18


def evaluate(model, P: int, task: str, n: int, seed: int, multiples=(1, 2, 4, 8, 16)) -> dict:
    """Exact answers and the number's loss with full attention at these multiples of the training window."""
    return {f"{k}x": common.exact_full(model, task, k * P - 8, n, seed=seed + k, batch_size=4 if k >= 8 else 8) for k in multiples}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--attention", required=True, choices=["softmax", "lssa"])
    ap.add_argument("--base", default=common.DEFAULT_BASE)
    ap.add_argument("--out", default=None, help="default models/needle-<attention>")
    ap.add_argument("--work", default=common.DEFAULT_WORK)
    ap.add_argument("--task", default="single", choices=["single", "mqar"])
    ap.add_argument("--steps", type=int, default=160)
    ap.add_argument("--tokens", type=int, default=4096, help="tokens per batch")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-n", type=int, default=8)
    ap.add_argument("--skip-check", action="store_true")
    args = ap.parse_args()
    out = args.out or os.path.join(common.REPO, "models", f"needle-{args.attention}")
    common.setup(args.threads, SEED)
    os.makedirs(args.work, exist_ok=True)

    model, cfg = common.load_base(args.base)
    P = common.window(cfg)
    if args.attention == "lssa":
        model.attend = softplus.make_attention()
        cfg = {**cfg, **softplus.config_keys()}
    cfg["torch_dtype"] = "float16"
    common.log(f"base {args.base} (window {P}), attention {args.attention}; {args.steps} steps, lr {args.lr}")
    hist = {"base": os.path.relpath(args.base, common.REPO), "attention": args.attention, "task": args.task, "window": P, "steps": args.steps, "lr": args.lr, "threads": args.threads}
    hist["before"] = evaluate(model, P, args.task, args.eval_n, seed=700, multiples=(1, 4))
    common.log(f"before: {hist['before']}")

    rng = np.random.default_rng(SEED)
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    ema, curve, t0 = 0.0, [], time.time()
    lo, hi = max(16, P // 8), P
    for step in range(args.steps):
        T = int(round(2 ** rng.uniform(math.log2(lo), math.log2(hi))))
        b = common.batch(rng, args.task, T, max(1, args.tokens // T))
        for g in opt.param_groups:
            g["lr"] = common.lr_at(step, args.steps, args.lr, max(1, round(0.03 * args.steps)))
        h = model.forward_full(torch.from_numpy(b.ids))
        loss, ex = common.answer_loss(model.logits(h[:, torch.from_numpy(b.target_rows)]), torch.from_numpy(b.targets))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema = ex if step == 0 else 0.95 * ema + 0.05 * ex
        if (step + 1) % 25 == 0:
            curve.append({"step": step + 1, "loss": round(loss.item(), 4), "exact_ema": round(ema, 3), "cpu_min": round(common.cpu_minutes(), 2)})
            common.log(f"step {step + 1} len {T} x{b.ids.shape[0]} loss {loss.item():.4f} exact(ema) {ema:.3f}")
    hist["curve"] = curve
    hist["train_cpu_minutes"] = round(common.cpu_minutes(), 2)
    hist["train_wall_minutes"] = round((time.time() - t0) / 60, 1)

    common.export_folder(out, common.half(model.state_dict()), cfg, args.base)
    common.log(f"exported {out}")
    shipped = common.load_model(out)
    if args.attention == "lssa":
        shipped.attend = softplus.make_attention()
    hist["after"] = evaluate(shipped, P, args.task, args.eval_n, seed=700)
    common.log(f"after: {hist['after']}")
    hist["cpu_minutes"] = round(common.cpu_minutes(), 2)
    json.dump(hist, open(os.path.join(args.work, f"{args.attention}.json"), "w"), indent=1)
    if args.skip_check:
        return 0
    import check_variants

    return check_variants.check(args.attention, out, os.path.join(args.work, f"golden-{args.attention}"))


if __name__ == "__main__":
    sys.exit(main())
