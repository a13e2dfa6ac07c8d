"""Why the first needle-demo's beacons were weak: retrain its beacon parameters on its own frozen base
under a few training settings, and watch held-out accuracy and how far the beacon projections move
away from the base projections they were copied from.

    python3 models/recipes/needle/experiments/old_beacons.py --setting recipe --steps 300
    python3 models/recipes/needle/experiments/old_beacons.py --setting recipe-lr1e-3 --steps 300
    python3 models/recipes/needle/experiments/old_beacons.py --setting recipe-lr3e-4 --steps 300

The base is the one inside the first model's weights (`git show 94718f4:models/needle-demo/model.safetensors`,
passed as --weights); its beacon parameters are discarded and re-initialised from the base (beacon
q/k/v = base q/k/v, beacon embedding = eos embedding), as both the recipe and the official code do.
Every setting uses the same documents and ratio draws (seeded); only what the setting names differs.
One thread; results go to stdout as one JSON line per evaluation.
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from beacon import BeaconState, load_model  # noqa: E402
import language as lang  # noqa: E402

WINDOW = 64

# What each setting changes. "recipe" is the first recipe's beacon phase 1 (train.py at 94718f4).
SETTINGS = {
    "recipe": dict(lr=3e-3, betas=(0.9, 0.98), lengths=(128, 512), batch=16, ratios=[2, 4, 8]),
    # the same, with the first recipe's own schedule: cosine over all 1,050 beacon steps (phases 1-3), so
    # the lr is still >= 1.2e-3 at the end of phase 1 (step 600)
    "recipe-schedule-1050": dict(lr=3e-3, betas=(0.9, 0.98), lengths=(128, 512), batch=16, ratios=[2, 4, 8], schedule_steps=1050),
    "recipe-lr1e-3": dict(lr=1e-3, betas=(0.9, 0.98), lengths=(128, 512), batch=16, ratios=[2, 4, 8]),
    "recipe-lr3e-4": dict(lr=3e-4, betas=(0.9, 0.98), lengths=(128, 512), batch=16, ratios=[2, 4, 8]),
    "recipe-lr1e-4": dict(lr=1e-4, betas=(0.9, 0.98), lengths=(128, 512), batch=16, ratios=[2, 4, 8]),
    # the run of the official code: HF Trainer defaults (AdamW betas 0.9/0.999, linear decay, no warmup)
    "official": dict(lr=1e-3, betas=(0.9, 0.999), lengths=(512, 1024), batch=4, ratios=[2, 4, 8], schedule="linear"),
    "recipe-long": dict(lr=3e-3, betas=(0.9, 0.98), lengths=(512, 1024), batch=4, ratios=[2, 4, 8]),
    "official-lr3e-3": dict(lr=3e-3, betas=(0.9, 0.999), lengths=(512, 1024), batch=4, ratios=[2, 4, 8], schedule="linear"),
}


def sample_single_needle(rng, batch, n, bos=True):
    """The first recipe's training batch: [bos] n words with one `Name number` pair, `recall Name number`."""
    n_fill = n - 2
    fill = rng.integers(lang.FIL0, lang.FIL0 + lang.N_FILLERS, size=(batch, n_fill))
    keys = rng.integers(lang.KEY0, lang.KEY0 + lang.N_KEYS, size=batch)
    vals = rng.integers(lang.VAL0, lang.VAL0 + lang.N_VALUES, size=batch)
    at = rng.integers(0, n_fill + 1, size=batch)
    off = 1 if bos else 0
    ids = np.empty((batch, off + n + 3), dtype=np.int64)
    if bos:
        ids[:, 0] = lang.BOS
    for b in range(batch):
        row = ids[b, off : off + n]
        row[: at[b]] = fill[b, : at[b]]
        row[at[b]] = keys[b]
        row[at[b] + 1] = vals[b]
        row[at[b] + 2 :] = fill[b, at[b] :]
    ids[:, -3], ids[:, -2], ids[:, -1] = lang.QRY, keys, vals
    return ids, vals


def tail_logits(model, ids, ratio):
    st = BeaconState(model, ids.shape[0], WINDOW, ratio)
    return model.logits(st.feed_long(ids)[:, -2:])


@torch.no_grad()
def held_out(model, n=32, length=1024, ratio=8):
    """Exact answers (value, then </s>) on n seeded single-needle documents, depths evenly spread."""
    rows, vals = [], []
    for i in range(n):
        d = lang.make_needle_document(length, i / (n - 1), 77 + i)
        rows.append(lang.prompt_ids(d.text, d.question) + [lang.ID[d.value]])
        vals.append(lang.ID[d.value])
    ids, vals = torch.tensor(rows), torch.tensor(vals)
    ok = []
    for i in range(0, n, 16):
        p = tail_logits(model, ids[i : i + 16], ratio).argmax(-1)
        ok.append((p[:, 0] == vals[i : i + 16]) & (p[:, 1] == lang.EOS))
    return float(torch.cat(ok).float().mean())


def drift(model):
    """Mean over layers of |beacon_W - W| / |W| for q, k, v: how far training moved the copies."""
    out = []
    for layer in model.model.layers:
        a = layer.self_attn
        for n in "qkv":
            w, bw = getattr(a, f"{n}_proj").weight, getattr(a, f"beacon_{n}_proj").weight
            out.append(float((bw - w).detach().norm() / w.norm()))
    return float(np.mean(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True, help="folder of the first needle-demo (config.json + model.safetensors)")
    ap.add_argument("--setting", choices=sorted(SETTINGS), default="recipe")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--eval-every", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    s = SETTINGS[args.setting]
    model = load_model(args.weights)
    model.init_beacon_from_base("eos", lang.EOS, lang.BOS)
    for p in model.parameters():
        p.requires_grad_(False)
    params = model.beacon_parameters()
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=s["lr"], betas=s["betas"], weight_decay=0.0)
    rng = np.random.default_rng(9)
    t0 = time.time()
    print(json.dumps({"setting": args.setting, **{k: v for k, v in s.items()}, "step": 0, "acc_1024_r8": held_out(model), "drift": 0.0}), flush=True)
    ema = 0.0
    for step in range(1, args.steps + 1):
        lo, hi = s["lengths"]
        n = int(rng.integers(lo, hi + 1))
        ids, vals = sample_single_needle(rng, s["batch"], n, bos=rng.random() >= 0.1)
        rs = rng.choice(s["ratios"], size=n // WINDOW + 2)
        if s.get("schedule") == "linear":
            lr = s["lr"] * (1 - (step - 1) / args.steps)
        else:  # the recipe's: warmup 20 steps, cosine to 10%
            total = s.get("schedule_steps", args.steps)
            lr = s["lr"] * min(1.0, step / 20) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - 1) / total)))
        for g in opt.param_groups:
            g["lr"] = lr
        lg = tail_logits(model, torch.from_numpy(ids), lambda w: int(rs[w]))
        vals_t = torch.from_numpy(vals)
        tgt = torch.stack([vals_t, torch.full_like(vals_t, lang.EOS)], 1)
        loss = F.cross_entropy(lg.reshape(-1, lg.shape[-1]), tgt.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema = 0.9 * ema + 0.1 * float(((lg.argmax(-1) == tgt).all(-1)).float().mean())
        if step % args.eval_every == 0:
            print(json.dumps({"setting": args.setting, "step": step, "train_exact_ema": round(ema, 3), "loss": round(loss.item(), 4),
                              "acc_1024_r8": held_out(model), "drift": round(drift(model), 3), "seconds": round(time.time() - t0)}), flush=True)


if __name__ == "__main__":
    main()
