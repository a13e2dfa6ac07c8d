"""Pilots for the base's binding step: when does a name get bound to the number after it?

    python3 models/recipes/needle/experiments/binding_pilot.py --name a --pairs 16 --steps 3000

Trains the demo base (model.py, the recipe's shape) from scratch on pure multi-query associative recall
in ctx's format: `[bos] K1 V1 K2 V2 .. Kn Vn (recall Ka Va </s>)*n`, every pair asked once in random
order, loss on each answer and its </s> (language.sample_batch with no filler words), optionally with
`--filler` words between the pairs. Every `--every` steps it logs one JSON line: training loss, exact
answers on a fixed held-out batch of the training shape, and on held-out documents of 4 facts + 4
distractors with filler (the demo's task): exact, and `other` = the answer is another fact's number
(the "copy any number" plateau). A previous-token head plus a key-matching head ("induction") gives
binding; until it forms, exact ~ 1/facts and other ~ 1 - exact.
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import language as lang  # noqa: E402
import train as recipe  # noqa: E402
from model import Qwen2Beacon  # noqa: E402
from supervision import forward_supervised  # noqa: E402


def sample_spans(rng: np.random.Generator, batch: int, words: int) -> tuple[np.ndarray, np.ndarray]:
    """`[bos] w_1 .. w_m  c_1 c_2 ..`: m distinct random words, then chunks of 2-6 consecutive words copied
    from random places of the first half, m words in all. Inside a chunk every word after the first is
    predictable only by finding where the current word occurred before and taking the word after it (the
    step binding needs, by content: the chunks start anywhere). Returns ids [B, 1 + 2m] and a mask
    [B, 1 + 2m] of the rows whose next word is scored."""
    ids = np.full((batch, 1 + 2 * words), lang.BOS, dtype=np.int64)
    mask = np.zeros_like(ids, dtype=bool)
    for b in range(batch):
        w = rng.permutation(np.arange(lang.QRY + 1, lang.VOCAB_SIZE))[:words]
        ids[b, 1 : 1 + words] = w
        t = 1 + words
        while t < 1 + 2 * words:
            c = min(int(rng.integers(2, 7)), 1 + 2 * words - t)
            src = int(rng.integers(0, words - c + 1))
            ids[b, t : t + c] = w[src : src + c]
            mask[b, t : t + c - 1] = True  # row t+j predicts w[src+j+1]
            t += c
    return ids, mask


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--pairs", type=str, default="16", help="pairs per sequence: N or LO-HI")
    ap.add_argument("--filler", type=str, default="0", help="filler words per sequence: N or LO-HI")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--beta2", type=float, default=0.98)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--schedule", choices=["constant", "cosine"], default="constant")
    ap.add_argument("--init", type=float, default=0.02, help="std of the normal init of the base matrices")
    ap.add_argument("--qk-init", type=float, default=None, help="std for q/k projections (default: --init)")
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--save", default=None, help="checkpoint path (state_dict) written at every log")
    ap.add_argument("--load", default=None, help="start from this state_dict instead of the init")
    ap.add_argument("--independent", action="store_true", help="each question's fact drawn independently (closes the elimination shortcut)")
    ap.add_argument("--spans", type=float, default=0.0, help="probability that a step is a repeated-spans batch (dense induction signal) instead of MQAR")
    ap.add_argument("--mimetic", type=float, default=None, help="mimetic attention init at this std (supervision.mimetic_init)")
    ap.add_argument("--attn-sup", type=float, default=0.0, help="weight of the two heads' attention targets (supervision.py)")
    ap.add_argument("--aux-prev", type=float, default=0.0, help="weight of an auxiliary loss at the document's rows: output the previous token")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    def span(s):
        lo, _, hi = s.partition("-")
        return int(lo), int(hi or lo)

    pairs, filler = span(args.pairs), span(args.filler)
    model = Qwen2Beacon(recipe.CONFIG, beacon=True)
    if args.qk_init is not None:
        recipe.init_weights(model, args.seed)
        g = torch.Generator().manual_seed(args.seed)
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "beacon" in n or p.dim() != 2:
                    continue
                std = args.qk_init if (n.endswith("q_proj.weight") or n.endswith("k_proj.weight")) else args.init
                p.normal_(0.0, std, generator=g)
    else:
        recipe.init_weights(model, args.seed, args.init, args.mimetic)
    if args.load:
        model.load_state_dict(torch.load(args.load))
    params = model.base_parameters()
    decay = [p for p in params if p.dim() == 2]
    no_decay = [p for p in params if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, args.beta2))
    rng = np.random.default_rng(args.seed)
    held_rng = np.random.default_rng(999)
    f_mid = (pairs[0] + pairs[1]) // 2
    held = lang.sample_batch(held_rng, 128, 2 * f_mid + (filler[0] + filler[1]) // 2, f_mid, 0, f_mid)
    t0, ema, span_ema = time.time(), None, None
    print(json.dumps({"args": vars(args)}), flush=True)
    for step in range(1, args.steps + 1):
        if args.spans > 0 and rng.random() < args.spans:
            for g in opt.param_groups:
                g["lr"] = args.lr * min(1.0, step / args.warmup)
            ids, mask = sample_spans(rng, args.batch, 32)
            ids_t = torch.from_numpy(ids)
            lg = model.logits(model.forward_full(ids_t)[:, :-1])
            m = torch.from_numpy(mask[:, :-1])
            loss_s = torch.nn.functional.cross_entropy(lg[m], ids_t[:, 1:][m])
            opt.zero_grad(set_to_none=True)
            loss_s.backward()
            torch.nn.utils.clip_grad_norm_(params, args.clip)
            opt.step()
            span_ema = loss_s.item() if span_ema is None else 0.98 * span_ema + 0.02 * loss_s.item()
        else:
            f = int(rng.integers(pairs[0], pairs[1] + 1))
            n = 2 * f + int(rng.integers(filler[0], filler[1] + 1))
            b = lang.sample_batch(rng, args.batch, n, f, 0, f, bos=rng.random() >= 0.1, independent=args.independent)
            w = min(1.0, step / args.warmup)
            if args.schedule == "cosine":
                w *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps))
            for g in opt.param_groups:
                g["lr"] = args.lr * w
            if args.attn_sup > 0:
                h, attention_loss = forward_supervised(model, b)
            else:
                h, attention_loss = model.forward_full(torch.from_numpy(b.ids)), 0.0
            loss, ex = recipe.answer_loss(model.logits(h[:, torch.from_numpy(b.target_rows)]), torch.from_numpy(b.targets))
            if args.aux_prev > 0:  # rows 1..doc end: the previous token (a previous-token head, read out directly)
                off = 1 if b.ids[0, 0] == lang.BOS else 0
                end = b.target_rows[0] - 1  # the first `recall`
                lg = model.logits(h[:, off + 1 : end])
                aux = torch.nn.functional.cross_entropy(lg.reshape(-1, lg.shape[-1]), torch.from_numpy(b.ids[:, off:end - 1]).reshape(-1))
                loss_total = loss + args.aux_prev * aux
            else:
                loss_total = loss
            loss_total = loss_total + args.attn_sup * attention_loss
            opt.zero_grad(set_to_none=True)
            loss_total.backward()
            if args.clip > 0:
                torch.nn.utils.clip_grad_norm_(params, args.clip)
            opt.step()
            ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % args.every == 0 or step == args.steps:
            with torch.no_grad():
                hh = model.forward_full(torch.from_numpy(held.ids))
                lg = model.logits(hh[:, torch.from_numpy(held.target_rows)])
                pred = lg.argmax(-1).numpy()[:, 0::2]
                tv = held.targets[:, 0::2]
                held_exact = float((pred == tv).mean())
                held_other = float(((pred != tv) & (pred >= lang.VAL0) & (pred < lang.VAL0 + lang.N_VALUES)).mean())
                by_query = (pred == tv).mean(0)  # the first question cannot be answered by elimination
            demo = recipe.eval_full(model, 64, 4, 4, 128, seed=1000)
            rec = {"step": step, "loss_ema": None if ema is None else round(ema, 4), "held_exact": round(held_exact, 3), "held_other": round(held_other, 3),
                   "held_first": round(float(by_query[0]), 3), "held_last": round(float(by_query[-1]), 3),
                   "demo64_exact": round(demo["exact"], 3), "demo64_other": round(demo["other"], 3), **({"span_loss_ema": round(span_ema, 4)} if span_ema is not None else {}), "seconds": round(time.time() - t0)}
            print(json.dumps(rec), flush=True)
            if args.save:
                torch.save(model.state_dict(), args.save)


if __name__ == "__main__":
    main()
