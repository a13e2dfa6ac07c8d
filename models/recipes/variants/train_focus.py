"""Train FocusLLM's candidate projections on the demo base and export a ctx model folder.

    python3 models/recipes/variants/train_focus.py [--base models/needle-demo] [--out models/needle-focus]

FocusLLM's training objective (official code leezythu/FocusLLM @ac695a6: modeling_llama.py `forward` and
`_beacon_forward`, modeling_beacon.py `Memory.prepare/step/retrieve_local_ans`; FOCUSLLM.md section 8),
on this base: only the beacon_{q,k,v,o} projections train (the base is frozen; they start as copies of the
base's), AdamW. Each step draws one of the official two losses with probability 1/2 and one stride S:
  continuation: a local fragment Q of 30..LW-2 tokens ends the input; the context is everything before Q;
  repetition ("autoencoder"): Q lies anywhere; the context is the whole sequence (Q included);
chunk passes = each chunk of S context tokens followed by bos(last min(512, S, |Q|) tokens of Q), whose last
row is the candidate; the local pass bos(Q) attends to the candidates; the loss is the cross-entropy of the
one token after Q, predicted by the local pass's last row.
On this synthetic language only one kind of token after a final fragment is predictable at all (the
number after `recall <Name>`), so the continuation fragments end with a question (Q = ... recall <Name>,
the target its number); repetition fragments end anywhere, as in the official code (every word after a
fragment that occurs in the context is a copy). Batches share one layout (same lengths and positions).
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
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import focus  # noqa: E402

SEED = 19
MIN_LOCAL = 30  # the official min_local_size


def sample_step(rng: np.random.Generator, task: str, s: focus.FocusSettings, tokens: int, rep_share: float = 0.5):
    """One training batch: ids, the fragment [q_start, q_end), the context length and the stride. The
    repetition loss is drawn with probability rep_share (the official 1/2 by default)."""
    strides = sorted({s.stride, s.stride // 2, s.stride // 4})
    S = int(rng.choice(strides))
    lo, hi = 2 * s.local_window, 16 * s.stride + s.local_window
    T = int(round(2 ** rng.uniform(math.log2(lo), math.log2(hi))))
    b = common.batch(rng, task, T, max(2, tokens // T))
    ell = int(rng.integers(MIN_LOCAL, s.local_window - 1))
    if rng.random() < 1 - rep_share:  # continuation: Q ends with a question's name; the context is what precedes Q
        j = int(rng.integers(0, b.queries))
        q_end = int(b.target_rows[2 * j]) + 1  # the name row is Q's last token; its number is the target
        q_start = q_end - ell
        n_ctx = q_start
    else:  # repetition: Q anywhere, the whole sequence is the context
        q_start = int(rng.integers(0, T - ell))
        q_end = q_start + ell
        n_ctx = T
    return torch.from_numpy(b.ids), q_start, q_end, n_ctx, S


def step_loss(model, s: focus.FocusSettings, ids: torch.Tensor, q_start: int, q_end: int, n_ctx: int, S: int):
    Q = ids[:, q_start:q_end]
    target = ids[:, q_end]
    t = min(s.tail_cap, S, q_end - q_start)
    tail = focus.with_bos(Q[:, -t:], s.bos)
    ck, cv = focus.candidates(model, ids[:, :n_ctx], tail, S, grad=True)
    lg = focus.local_logits(model, ck, cv, focus.with_bos(Q, s.bos))[:, -1]
    loss = F.cross_entropy(lg, target)
    return loss, float((lg.argmax(-1) == target).float().mean())


@torch.no_grad()
def evaluate(model, s: focus.FocusSettings, task: str, lengths: list[int], n: int, seed: int) -> dict:
    """Exact answers of ctx's focus inference (focus.logits) on needle prompts of these document lengths."""
    out = {}
    for L in lengths:
        right = 0
        for i in range(n):
            prompt, answer = common.greedy_prompt(seed + 1000 * L + i, task, L)
            right += int(int(focus.logits(model, prompt, [], s)[-1].argmax()) == answer)
        out[str(L)] = right / n
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default=common.DEFAULT_BASE)
    ap.add_argument("--out", default=os.path.join(common.REPO, "models", "needle-focus"))
    ap.add_argument("--work", default=common.DEFAULT_WORK)
    ap.add_argument("--task", default="single", choices=["single", "mqar"])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--tokens", type=int, default=4096, help="sequence tokens per batch")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-n", type=int, default=16)
    ap.add_argument("--before", action="store_true", help="also evaluate the starting point (candidate projections = base copies)")
    ap.add_argument("--repetition-share", type=float, default=0.0,
                    help="probability of the repetition loss (official: 0.5). On this base the words after a repeated "
                         "filler fragment were never trained targets (the base scores answers only; at the start its "
                         "loss there is 13-21 nats, local pass alone or with candidates), so 0 trains on continuation only")
    ap.add_argument("--skip-check", action="store_true")
    args = ap.parse_args()
    common.setup(args.threads, SEED)
    os.makedirs(args.work, exist_ok=True)

    base, cfg = common.load_base(args.base)
    P = common.window(cfg)
    s = focus.settings_for(P)
    cfg = {**cfg, **focus.config_keys(s), "torch_dtype": "float16"}
    model = focus.make_model(cfg)
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all("beacon" in k for k in missing), (missing, unexpected)
    focus.init_from_base(model, common.lang.EOS)
    for name, p in model.named_parameters():
        p.requires_grad_("beacon_" in name and "_proj" in name)
    params = [p for p in model.parameters() if p.requires_grad]
    lengths = [P, 2 * P, 4 * P, 8 * P]
    common.log(f"base {args.base} (window {P}); local window {s.local_window}, stride {s.stride}; {args.steps} steps, lr {args.lr}")
    hist = {"base": os.path.relpath(args.base, common.REPO), "task": args.task, "window": P, "settings": s.__dict__, "steps": args.steps, "lr": args.lr, "repetition_share": args.repetition_share, "threads": args.threads}
    if args.before:
        hist["before"] = evaluate(model, s, args.task, lengths, args.eval_n, seed=500)
        common.log(f"before (candidate projections = base copies): {hist['before']}")

    rng = np.random.default_rng(SEED)
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), weight_decay=0.0)
    ema = {"cont": None, "rep": None}  # accuracy of each loss, moving average
    curve, t0 = [], time.time()
    for step in range(args.steps):
        ids, qs, qe, n_ctx, S = sample_step(rng, args.task, s, args.tokens, args.repetition_share)
        for g in opt.param_groups:
            g["lr"] = common.lr_at(step, args.steps, args.lr, max(1, round(0.03 * args.steps)))
        loss, acc = step_loss(model, s, ids, qs, qe, n_ctx, S)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        kind = "cont" if n_ctx == qs else "rep"
        ema[kind] = acc if ema[kind] is None else 0.9 * ema[kind] + 0.1 * acc
        if (step + 1) % 25 == 0:
            curve.append({"step": step + 1, "kind": kind, "loss": round(loss.item(), 4), "acc_ema": {k: round(v or 0, 3) for k, v in ema.items()}, "cpu_min": round(common.cpu_minutes(), 2)})
            common.log(f"step {step + 1} {kind} len {ids.shape[1]} x{ids.shape[0]} S {S} |Q| {qe - qs} loss {loss.item():.4f} acc(ema) continuation {ema['cont'] or 0:.3f} repetition {ema['rep'] or 0:.3f}")
    hist["curve"] = curve
    hist["train_cpu_minutes"] = round(common.cpu_minutes(), 2)
    hist["train_wall_minutes"] = round((time.time() - t0) / 60, 1)

    common.export_folder(args.out, common.half(model.state_dict()), cfg, args.base)
    common.log(f"exported {args.out}")
    shipped, _, s2 = focus.load_focus(args.out)
    hist["after"] = evaluate(shipped, s2, args.task, lengths, args.eval_n, seed=500)
    common.log(f"after: {hist['after']}")
    hist["cpu_minutes"] = round(common.cpu_minutes(), 2)
    json.dump(hist, open(os.path.join(args.work, "focus.json"), "w"), indent=1)
    if args.skip_check:
        return 0
    import check_variants

    return check_variants.check("focus", args.out, os.path.join(args.work, "golden-focus"))


if __name__ == "__main__":
    sys.exit(main())
