"""Train ctx's demo model (needle-demo) on CPU, then export it as a model folder.

    python3 models/recipes/needle/train.py --out models/needle-demo

Stages (fixed seeds, one thread):
  0. check beacon.py against ../shared/golden beacon-v3 cases (skipped with a message if absent);
  1. base Qwen2 (1.1 M parameters), full attention, length curriculum 64 -> 128 -> 256, loss on the
     answer tokens only (the value, then </s>);
  2. beacon parameters only (beacon embedding + beacon q/k/v per layer), base frozen, v3 interleave
     forward of beacon.py, window 64, a ratio drawn per window from RATIOS, long documents;
  3. export: float16 safetensors, config.json with the beacon keys, tokenizer.json, tokenizer_config.json;
  4. evaluation of the exported (float16-rounded) weights -> <work>/results.json and results.md.

Intermediate checkpoints go to --work (default models/recipes/needle/work, git-ignored); with --resume a
finished stage is loaded instead of trained again.
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
sys.path.insert(0, HERE)
import language as lang  # noqa: E402
from beacon import BeaconState, Qwen2Beacon, adapt_ratio  # noqa: E402

WINDOW = 64
RATIOS = [2, 4, 8, 16, 32, 64]
MAX_POS = 256
SEED = 8

CONFIG = {
    "model_type": "qwen2",
    "architectures": ["Qwen2ForCausalLM"],
    "vocab_size": lang.VOCAB_SIZE,
    "hidden_size": 128,
    "intermediate_size": 512,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "hidden_act": "silu",
    "max_position_embeddings": MAX_POS,
    "initializer_range": 0.02,
    "rms_norm_eps": 1e-06,
    "use_cache": True,
    "tie_word_embeddings": True,
    "rope_theta": 10000.0,
    "use_sliding_window": False,
    "sliding_window": None,
    "rope_scaling": None,
    "max_window_layers": 4,
    "attention_dropout": 0.0,
    "beacon_window": WINDOW,
    "beacon_stride": WINDOW,
    "beacon_attn": "full-coverage",
    "beacon_ratio": RATIOS,
    "beacon_ratio_mix": "adapt-1024",
    "beacon_param": ["q", "k", "v"],
    "beacon_embed_init": "eos",
    "beacon_sink_size": 0,
    "beacon_attend_prev": True,
    "beacon_pos": "interleave",
    "beacon_parallel_window": 1,
    "bos_token_id": lang.BOS,
    "eos_token_id": lang.EOS,
    "pad_token_id": lang.PAD,
    "torch_dtype": "float16",
}


def log(msg: str):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def answer_loss(logits2: torch.Tensor, vals: torch.Tensor):
    """logits2 [B, 2, V]: rows of K (-> value) and V (-> </s>). Returns loss, value acc, exact acc."""
    B = logits2.shape[0]
    tgt = torch.stack([vals, torch.full_like(vals, lang.EOS)], dim=1)
    loss = F.cross_entropy(logits2.reshape(2 * B, -1), tgt.reshape(-1))
    pred = logits2.argmax(-1)
    v_ok = pred[:, 0] == vals
    exact = v_ok & (pred[:, 1] == lang.EOS)
    return loss, v_ok.float().mean().item(), exact.float().mean().item()


def init_weights(model: Qwen2Beacon, seed: int):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "beacon" in name:
                continue
            if name.endswith("norm.weight") or "layernorm" in name:
                p.fill_(1.0)
            elif name.endswith(".bias"):
                p.zero_()
            else:
                p.normal_(0.0, 0.02, generator=g)


# ------------------------------------------------------------------------------------------ stage 1
# Base curriculum: (longest sequence, steps, peak lr); lr warms up over the first 100 steps of the run
# and decays (cosine, to 10%) within each stage.
BASE_STAGES = [(64, 2500, 2e-3), (128, 600, 1e-3), (MAX_POS, 600, 1e-3)]


def train_base(model: Qwen2Beacon, budget_s: float, stages=BASE_STAGES) -> dict:
    """Full-attention base training: length curriculum 64 -> 128 -> 256, loss on the answer tokens.

    In half of the batches the needle's value token is hidden from layer-0 attention (training-time
    masking only; the exported model is plain Qwen2). Without it the model copies the value with
    layer-0 attention alone, and a frozen base that retrieves only at layer 0 can never read a beacon:
    a beacon row's layer-0 key and value come from the beacon embedding only, the same for every beacon.
    With it, the model also learns a deeper retrieval circuit that beacons can feed."""
    rng = np.random.default_rng(SEED)
    params = model.base_parameters()
    opt = torch.optim.AdamW(params, lr=2e-3, betas=(0.9, 0.98), weight_decay=0.01)
    batch = 32
    t0 = time.time()
    step = 0
    hist = {"stages": [], "hide_value_from_layer0": 0.5, "batch": batch}
    for si, (L, n_steps, lr) in enumerate(stages):
        doc_max = L - 5  # [bos] doc recall K V fits L positions
        ema = {True: 0.0, False: 0.0}
        ts = time.time()
        for s_step in range(n_steps):
            if time.time() - t0 > budget_s:
                log("base: time budget reached (result now depends on machine speed)")
                break
            n = int(rng.integers(8, doc_max + 1))
            bos = rng.random() >= 0.1
            ids, vals, _, at = lang.sample_batch(rng, batch, n, bos=bos)
            hide = bool(rng.random() < 0.5)
            hide0 = torch.from_numpy(at + 1 + (1 if bos else 0)) if hide else None
            cur = lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s_step / n_steps)))
            for g in opt.param_groups:
                g["lr"] = cur
            h = model.forward_full(torch.from_numpy(ids), hide0=hide0)
            loss, v_acc, ex = answer_loss(model.logits(h[:, -2:]), torch.from_numpy(vals))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            ema[hide] = 0.95 * ema[hide] + 0.05 * ex
            if step % 100 == 0:
                log(f"base stage {si + 1} (len<={L}) step {step} loss {loss.item():.4f} exact(ema) plain {ema[False]:.3f} value hidden from layer 0 {ema[True]:.3f} lr {cur:.1e}")
        acc_p = eval_full(model, doc_max, 256, np.random.default_rng(1000 + si))
        acc_h = eval_full(model, doc_max, 256, np.random.default_rng(1000 + si), hide=True)
        log(f"base stage {si + 1} done ({time.time() - ts:.0f}s): held-out exact at {doc_max} tokens: plain {acc_p:.3f}, value hidden from layer 0 {acc_h:.3f}")
        hist["stages"].append({"max_len": L, "steps": n_steps, "lr": lr, "seconds": round(time.time() - ts, 1), "acc": acc_p, "acc_hidden": acc_h})
    hist["steps"] = step
    hist["seconds"] = round(time.time() - t0, 1)
    return hist


@torch.no_grad()
def eval_full(model, doc_tokens: int, n: int, rng, hide: bool = False) -> float:
    ids, vals, _, at = lang.sample_batch(rng, n, doc_tokens)
    h = model.forward_full(torch.from_numpy(ids), hide0=torch.from_numpy(at + 2) if hide else None)
    return answer_loss(model.logits(h[:, -2:]), torch.from_numpy(vals))[2]


# ------------------------------------------------------------------------------------------ stage 2
def beacon_forward_tail(model, ids: torch.Tensor, ratio) -> torch.Tensor:
    """Run the beacon forward over ids [B, T] (prompt + answer); return logits of the last 2 raw rows."""
    st = BeaconState(model, ids.shape[0], WINDOW, ratio)
    h = st.feed_long(ids)
    return model.logits(h[:, -2:])


# Beacon curriculum: (steps, ratios drawn per window, document length range, documents per step or a
# token budget per step). Short documents first (2-8 windows: the needle's beacons are a large part of
# the memory, so the signal is strong), then 512-1024 tokens, then the large ratios that ctx's adapt
# rule needs for long documents with P = 256, and longer documents (log-uniform lengths, as many
# documents as fit the token budget).
BEACON_PHASES = [
    {"steps": 600, "ratios": [2, 4, 8], "lengths": (128, 512), "batch": 16},
    {"steps": 300, "ratios": [2, 4, 8], "lengths": (512, 1024), "batch": 8},
    {"steps": 150, "ratios": RATIOS, "lengths": (512, 4096), "tokens": 8192},
]
# Refinement: a fresh optimizer (lr 1e-3, cosine to 10%) and its own seed, all ratios, shorter documents
# (more updates per minute; accuracy was found to be limited by how precisely a beacon carries the value,
# not by length).
BEACON_REFINE = [{"steps": 600, "ratios": RATIOS, "lengths": (256, 1024), "tokens": 8192}]


def train_beacon(model: Qwen2Beacon, budget_s: float, phases=BEACON_PHASES, lr: float = 3e-3, seed: int = SEED + 1) -> dict:
    """Beacon parameters only (base frozen). Each step: documents of one length, a ratio drawn per
    window ("step-random"), loss on the answer tokens, full backprop through the whole document (no
    truncation). AdamW lr 3e-3, warmup 20 steps, cosine to 10% over all phases."""
    for p in model.base_parameters():
        p.requires_grad_(False)
    params = model.beacon_parameters()
    for p in params:
        p.requires_grad_(True)
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98), weight_decay=0.0)
    t0 = time.time()
    total = sum(ph["steps"] for ph in phases)
    ema, step, out = 0.0, 0, {"phases": []}
    for pi, ph in enumerate(phases):
        tp = time.time()
        lo, hi = ph["lengths"]
        for _ in range(ph["steps"]):
            if time.time() - t0 > budget_s:
                log(f"beacon: time budget reached at step {step} of {total} (result now depends on machine speed)")
                break
            if "batch" in ph:
                n = int(rng.integers(lo, hi + 1))
                batch = ph["batch"]
            else:
                n = int(round(2 ** rng.uniform(math.log2(lo), math.log2(hi))))
                batch = max(1, ph["tokens"] // n)
            ids, vals, _, _ = lang.sample_batch(rng, batch, n, bos=rng.random() >= 0.1)
            rs = rng.choice(ph["ratios"], size=n // WINDOW + 2)
            cur = lr * min(1.0, (step + 1) / 20) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / total)))
            for g in opt.param_groups:
                g["lr"] = cur
            logits2 = beacon_forward_tail(model, torch.from_numpy(ids), lambda w: int(rs[w]))
            loss, v_acc, ex = answer_loss(logits2, torch.from_numpy(vals))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            ema = 0.95 * ema + 0.05 * ex
            if step % 10 == 0:
                log(f"beacon phase {pi + 1} step {step} len {n}x{batch} loss {loss.item():.4f} exact(ema) {ema:.3f} lr {cur:.2e}")
        with torch.no_grad():
            ids, vals, _ = eval_docs(1024, 32, seed0=77)
            acc = float(correct(model, ids, vals, 8).mean())
        log(f"beacon phase {pi + 1} done: {time.time() - tp:.0f}s, held-out exact at 1024 tokens, ratio 8: {acc:.3f}")
        out["phases"].append({**{k: (list(v) if isinstance(v, tuple) else v) for k, v in ph.items()}, "seconds": round(time.time() - tp, 1), "acc_1024_r8": acc})
    for p in model.parameters():
        p.requires_grad_(False)
    out["steps"] = step
    out["seconds"] = round(time.time() - t0, 1)
    return out


# ------------------------------------------------------------------------------------------ export
def tokenizer_json() -> dict:
    vocab = {w: i for i, w in enumerate(lang.WORDS)}
    added = [
        {"id": i, "content": w, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
        for i, w in enumerate(lang.SPECIALS)
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 0}},
            ],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [lang.BOS], "tokens": ["<s>"]}},
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": False},
        "model": {
            "type": "WordPiece",
            "unk_token": "<unk>",
            "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100,
            "vocab": vocab,
        },
    }


def tokenizer_config() -> dict:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1000000,
    }


def export(model: Qwen2Beacon, out: str):
    from safetensors.torch import save_file

    os.makedirs(out, exist_ok=True)
    sd = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(), f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config(), f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": lang.BOS, "eos_token_id": lang.EOS, "pad_token_id": lang.PAD, "do_sample": False}, f, indent=2)
        f.write("\n")


# ------------------------------------------------------------------------------------------ evaluation
def eval_docs(length: int, n: int, seed0: int):
    """n documents of `length` doc tokens from the shared generator (same as src/demo), depths evenly
    spaced over [0, 1]. Returns ids [n, T] (prompt + value), values, depths."""
    rows, vals, depths = [], [], []
    for i in range(n):
        depth = i / (n - 1)
        d = lang.make_needle_document(length, depth, seed0 + i)
        rows.append(lang.prompt_ids(d.text, d.question) + [lang.ID[d.value]])
        vals.append(lang.ID[d.value])
        depths.append(depth)
    return torch.tensor(rows), torch.tensor(vals), np.array(depths)


@torch.no_grad()
def correct(model, ids, vals, method, batch=32) -> np.ndarray:
    out = []
    for i in range(0, ids.shape[0], batch):
        x, v = ids[i : i + batch], vals[i : i + batch]
        if method == "full":
            lg = model.logits(model.forward_full(x)[:, -2:])
        else:
            lg = beacon_forward_tail(model, x, method)
        pred = lg.argmax(-1)
        out.append(((pred[:, 0] == v) & (pred[:, 1] == lang.EOS)).numpy())
    return np.concatenate(out)


def fits(ratio: int, doc_tokens: int) -> bool:
    """Whether ctx's ratio rule accepts this ratio for a document: (P - W) * r + W >= tokens + 1024."""
    return (MAX_POS - WINDOW) * ratio + WINDOW >= doc_tokens + 1024


def evaluate(model, n: int, untrained=None) -> dict:
    lengths = [251, 1024, 2048, 4096, 8192]
    res = {"n_per_cell": n, "lengths": lengths, "cells": {}, "adapt_ratio": {}, "by_depth": {}}
    for L in lengths:
        ids, vals, depths = eval_docs(L, n, seed0=1_000_000 + L)
        methods = (["full"] if L <= 2048 else []) + RATIOS
        for m in methods:
            t = time.time()
            ok = correct(model, ids, vals, m)
            key = "full" if m == "full" else f"r{m}"
            res["cells"][f"{key}@{L}"] = float(ok.mean())
            log(f"eval {key} @ {L}: {ok.mean():.3f} ({time.time() - t:.1f}s)")
            bins = np.minimum((depths * 5).astype(int), 4)
            res["by_depth"][f"{key}@{L}"] = [float(ok[bins == b].mean()) for b in range(5)]
        # what ctx picks: adapt-1024 over the configured ratios, for the prompt length
        res["adapt_ratio"][str(L)] = adapt_ratio(RATIOS, WINDOW, MAX_POS, ids.shape[1] - 1 + 1024)
        if L == 1024 and untrained is not None:
            ok = correct(untrained, ids, vals, 8)
            res["cells"]["untrained-r8@1024"] = float(ok.mean())
            log(f"eval untrained beacons r8 @ 1024: {ok.mean():.3f}")
    # beyond what ctx accepts (positions past P even at r = 64), for information
    L, n30 = 30000, max(8, n // 4)
    ids, vals, depths = eval_docs(L, n30, seed0=1_000_000 + L)
    ok = correct(model, ids, vals, 64, batch=8)
    res["cells"][f"r64@{L}"] = float(ok.mean())
    res["n_30k"] = n30
    res["by_depth"][f"r64@{L}"] = [float(ok[np.minimum((depths * 5).astype(int), 4) == b].mean()) for b in range(5)]
    log(f"eval r64 @ {L} (n={n30}): {ok.mean():.3f}")
    return res


def results_md(res: dict, hist: dict) -> str:
    L = res["lengths"]
    head = [f"{x if x != 251 else 256}" for x in L]
    lines = ["| method | " + " | ".join(head) + " |", "|---" * (len(L) + 1) + "|"]
    for key in ["full"] + [f"r{r}" for r in RATIOS]:
        cells = []
        for x in L:
            c = res["cells"].get(f"{key}@{x}")
            if c is None:
                cells.append("–")
            else:
                mark = "" if key == "full" or fits(int(key[1:]), x) else "*"
                cells.append(f"{100 * c:.0f}%{mark}")
        name = "full attention" if key == "full" else f"beacon ratio {key[1:]}"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ad = []
    for x in L:
        r = res["adapt_ratio"][str(x)]
        ad.append(f"{100 * res['cells'][f'r{r}@{x}']:.0f}% (r{r})")
    lines.append("| **beacon, ratio ctx picks (adapt-1024)** | " + " | ".join(ad) + " |")
    if "untrained-r8@1024" in res["cells"]:
        lines.append(f"| untrained beacons (base copied), ratio 8 | – | {100 * res['cells']['untrained-r8@1024']:.0f}% | | | |")
    lines.append("")
    lines.append(
        f"{res['n_per_cell']} documents per cell, needle depths evenly spaced over 0..1, greedy value and </s> "
        f"both required. `*`: ctx's ratio rule would refuse this ratio at this length (positions beyond "
        f"max_position_embeddings = {MAX_POS}); measured with the recipe's forward anyway. "
        f"30000 tokens at ratio 64 (also beyond P, n={res.get('n_30k')}): {100 * res['cells'].get('r64@30000', float('nan')):.0f}%."
    )
    lines.append("")
    lines.append("Accuracy by needle depth (5 bins of 13 documents; 0 = start of the document):")
    lines.append("")
    lines.append("| cell | 0–0.2 | 0.2–0.4 | 0.4–0.6 | 0.6–0.8 | 0.8–1 |")
    lines.append("|---|---|---|---|---|---|")
    for k, v in res["by_depth"].items():
        if int(k.split("@")[1]) >= 2048:
            lines.append(f"| {k} | " + " | ".join(f"{100 * x:.0f}%" for x in v) + " |")
    lines.append("")
    lines.append(f"Training: {json.dumps(hist)}")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "needle-demo"))
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--resume", action="store_true", help="load finished stages from --work")
    ap.add_argument("--base-budget", type=float, default=60 * 60, help="safety cap in seconds")
    ap.add_argument("--beacon-budget", type=float, default=60 * 60, help="safety cap in seconds")
    ap.add_argument("--eval-n", type=int, default=64)
    ap.add_argument("--skip-golden", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    os.makedirs(args.work, exist_ok=True)
    t_all = time.time()
    hist = {}

    if not args.skip_golden:
        import check_golden

        sys.argv = [sys.argv[0]]
        if check_golden.main() != 0:
            log("beacon.py does not match the golden cases; not training")
            return 1

    model = Qwen2Beacon(CONFIG, beacon=True)

    def stage(name: str, ckpt_file: str, train) -> dict:
        """Runs train() and saves the model and its history to <work>/<ckpt_file>(.json); with --resume
        loads them instead when they exist. Returns the stage's history."""
        ckpt = os.path.join(args.work, ckpt_file)
        if args.resume and os.path.exists(ckpt):
            model.load_state_dict(torch.load(ckpt))
            log(f"{name}: loaded {ckpt}")
            return json.load(open(ckpt + ".json"))
        log(f"{name}: training")
        h = train()
        torch.save(model.state_dict(), ckpt)
        json.dump(h, open(ckpt + ".json", "w"))
        return h

    def base_training() -> dict:
        init_weights(model, SEED)
        return train_base(model, args.base_budget)

    base_ckpt = os.path.join(args.work, "base.pt")
    hist["base"] = stage("base", "base.pt", base_training)
    model.init_beacon_from_base("eos", lang.EOS, lang.BOS)
    log(
        f"base in-window exact: {eval_full(model, 251, 256, np.random.default_rng(7)):.3f}, "
        f"value hidden from layer 0: {eval_full(model, 251, 256, np.random.default_rng(7), hide=True):.3f}"
    )

    hist["beacon"] = stage("beacon", "beacon.pt", lambda: train_beacon(model, args.beacon_budget))
    hist["beacon_refine"] = stage(
        "beacon refine", "beacon-refine.pt", lambda: train_beacon(model, args.beacon_budget, BEACON_REFINE, lr=1e-3, seed=SEED + 4)
    )

    export(model, args.out)
    log(f"exported to {args.out}")
    # evaluate exactly what was exported (float16 weights, computed in float32)
    from beacon import load_model

    shipped = load_model(args.out)
    untrained = Qwen2Beacon(CONFIG, beacon=True)
    untrained.load_state_dict(torch.load(base_ckpt))
    untrained.init_beacon_from_base("eos", lang.EOS, lang.BOS)
    untrained.eval()
    t = time.time()
    res = evaluate(shipped, args.eval_n, untrained)
    hist["eval_seconds"] = round(time.time() - t, 1)
    hist["total_seconds"] = round(time.time() - t_all, 1)
    json.dump({"results": res, "training": hist}, open(os.path.join(args.work, "results.json"), "w"), indent=1)
    md = results_md(res, hist)
    open(os.path.join(args.work, "results.md"), "w").write(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
