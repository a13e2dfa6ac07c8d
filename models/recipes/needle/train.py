"""Train ctx's demo model (needle-demo) on CPU, then export it as a model folder.

    python3 models/recipes/needle/train.py --out models/needle-demo

Stages (fixed seeds, a fixed number of threads):
  0. check beacon.py against ../shared/golden beacon-v3 cases (skipped with a message if absent);
  1. base Qwen2 (1.1 M parameters, 1,024 positions), full attention, multi-query associative recall:
     first 2-8 facts back to back (where names get bound to numbers: attention targets for two heads,
     supervision.py, and a mimetic start), then documents with filler and distractor names, questions
     drawn independently after the document, loss on the answers (the number, then </s>), a length
     curriculum 256 -> 512 -> 1,024 words;
  2. beacon parameters only (beacon embedding + beacon q/k/v per layer, copied from the base), base
     frozen, the v3 interleave forward of beacon.py, window 64; each batch is read at the ratio ctx's
     adapt rule picks for its length, or a larger one;
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
from beacon import BeaconState, adapt_ratio  # noqa: E402
from model import Qwen2Beacon, load_model  # noqa: E402
from supervision import forward_supervised, mimetic_init  # noqa: E402

WINDOW = 64
RATIOS = [2, 4, 8, 16, 32, 64]
MAX_POS = 1024
RESERVE = 1024  # adapt-F: tokens kept free for the answer when ctx picks a ratio
SEED = 15

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
    "beacon_ratio_mix": f"adapt-{RESERVE}",
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


def answer_loss(logits: torch.Tensor, targets: torch.Tensor):
    """logits [B, 2q, V] at the rows of each query's K (-> number) and number (-> </s>); targets [B, 2q].
    Returns the loss and the fraction of queries answered exactly (number and </s>)."""
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    ok = (logits.argmax(-1) == targets).view(targets.shape[0], -1, 2).all(-1)
    return loss, ok.float().mean().item()


def init_weights(model: Qwen2Beacon, seed: int, std: float = 0.02, mimetic: float | None = None):
    """Norm weights 1, biases 0, matrices normal(0, std); with `mimetic`, attention then gets the
    mimetic initialisation at that std (supervision.mimetic_init)."""
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
                p.normal_(0.0, std, generator=g)
    if mimetic is not None:
        mimetic_init(model, mimetic, torch.Generator().manual_seed(seed + 1))


def draw_shape(rng, lo: int, hi: int, facts: tuple[int, int], max_queries: int, filler=None, distractors: bool = True):
    """One batch's shape: document words (log-uniform in [lo, hi]), facts, distractors (0..facts),
    queries (every fact, at most max_queries). With `filler` (lo, hi) the document is its facts and
    distractors (0..facts/2, none without `distractors`) plus that many filler words instead."""
    f = int(rng.integers(facts[0], facts[1] + 1))
    if filler is not None:
        d = int(rng.integers(0, f // 2 + 1)) if distractors else 0
        n = 2 * f + d + int(rng.integers(filler[0], filler[1] + 1))
        return n, f, d, min(f, max_queries)
    n = int(round(2 ** rng.uniform(math.log2(lo), math.log2(hi))))
    f = max(1, min(f, (n - 1) // 3))
    d = int(rng.integers(0, f + 1))
    return n, f, d, min(f, max_queries)


# ------------------------------------------------------------------------------------------ stage 1
# Base curriculum. Each stage: document lengths in words (log-uniform; or `filler` words on top of the
# facts), facts per document, steps, peak lr (`constant`, or cosine to 10% within the stage), sequences
# per batch (`batch`) or tokens per batch (`tokens`). Sequences are [bos] document + 4 tokens per query,
# at most MAX_POS positions; lr warms up over the first WARMUP steps of the run.
#
# Every question's fact is drawn independently: when every fact is asked once, the base learns to name
# a number not yet answered (held-out exact 0.34 = the mean of 1/(8 - j) over the 8 questions, first
# question at chance; pilots a, e), a plateau that looks like binding but is not.
#
# Binding forms in stage 1 because two heads are told where to look (supervision.py: a previous-token
# head in layer 1, a lookup head in layer 2, loss weight ATTENTION_WEIGHT in every base stage) and
# attention starts mimetic (init_weights with MIMETIC_STD, other matrices at INIT_STD): pilot J of
# experiments/binding_pilot.py, held-out exact 0.99 after ~700 steps; without either (pilots K, L) it did
# not form (README, "Binding pilots").
BASE_STAGES = [
    {"facts": (2, 8), "filler": (0, 0), "distractors": False, "batch": 16, "steps": 1000, "lr": 2e-3, "constant": True},
    {"facts": (4, 8), "filler": (0, 32), "batch": 32, "steps": 300, "lr": 2e-3, "constant": True},
    {"lengths": (64, 256), "facts": (1, 8), "steps": 300, "lr": 1e-3, "tokens": 8192},
    {"lengths": (128, 512), "facts": (1, 8), "steps": 250, "lr": 1e-3, "tokens": 8192},
    {"lengths": (256, MAX_POS - 40), "facts": (1, 8), "steps": 250, "lr": 1e-3, "tokens": 8192},
]
BASE_WEIGHT_DECAY = 0.1  # on matrices only (norm weights and biases: none)
INIT_STD, MIMETIC_STD = 0.06, 0.088  # 0.088 = 1 / sqrt(hidden)
ATTENTION_WEIGHT = 1.0
CLIP = 5.0
WARMUP = 50


def base_optimizer(params: list[torch.nn.Parameter]) -> torch.optim.AdamW:
    decay = [p for p in params if p.dim() == 2]
    no_decay = [p for p in params if p.dim() != 2]
    groups = [{"params": decay, "weight_decay": BASE_WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.98))


def train_base(model: Qwen2Beacon, stages=BASE_STAGES, seed: int = SEED, log_every: int = 100) -> dict:
    rng = np.random.default_rng(seed)
    params = model.base_parameters()
    opt = base_optimizer(params)
    t0, step = time.time(), 0
    hist = {"stages": [], "curve": []}
    for si, st in enumerate(stages):
        ts, ema = time.time(), 0.0
        lo, hi = st.get("lengths", (0, 0))
        for s_step in range(st["steps"]):
            n, f, d, q = draw_shape(rng, lo, hi, st["facts"], st.get("queries", 8), st.get("filler"), st.get("distractors", True))
            batch = st["batch"] if "batch" in st else max(4, st["tokens"] // (n + 4 * q + 1))
            b = lang.sample_batch(rng, batch, n, f, d, q, bos=rng.random() >= 0.1, independent=True)
            decay = 1.0 if st.get("constant") else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s_step / st["steps"]))
            cur = st["lr"] * min(1.0, (step + 1) / WARMUP) * decay
            for g in opt.param_groups:
                g["lr"] = cur
            h, attention_loss = forward_supervised(model, b)
            loss, ex = answer_loss(model.logits(h[:, torch.from_numpy(b.target_rows)]), torch.from_numpy(b.targets))
            opt.zero_grad(set_to_none=True)
            (loss + ATTENTION_WEIGHT * attention_loss).backward()
            torch.nn.utils.clip_grad_norm_(params, CLIP)
            opt.step()
            step += 1
            ema = ex if s_step == 0 else 0.98 * ema + 0.02 * ex
            if step % log_every == 0:
                held = eval_mqar(model, 8, 0, 128, seed=999)  # the pilots' held-out batch: 8 facts back to back, each asked once
                hist["curve"].append({"step": step, "stage": si + 1, "loss": round(loss.item(), 4), "attention": round(attention_loss.item(), 4), "exact_ema": round(ema, 3), **{k: round(v, 3) for k, v in held.items()}, "seconds": round(time.time() - t0)})
                log(f"base stage {si + 1} step {step} len {n} facts {f} x{batch} loss {loss.item():.4f} attention {attention_loss.item():.3f} exact(ema) {ema:.3f} held-out 8 facts: exact {held['exact']:.3f} (first question {held['first']:.3f}) other {held['other']:.3f} lr {cur:.1e}")
        held = {L: eval_full(model, L, 4, 4, 128, seed=1000 + si) for L in sorted({64, min(max(hi, 64), MAX_POS - 40)})}
        log(f"base stage {si + 1} done ({time.time() - ts:.0f}s): held-out, 4 facts + 4 distractors: " + ", ".join(f"{L} words exact {v['exact']:.3f} other-fact {v['other']:.3f}" for L, v in held.items()))
        hist["stages"].append({**{k: (list(v) if isinstance(v, tuple) else v) for k, v in st.items()}, "seconds": round(time.time() - ts, 1), "held_out": held})
    hist["steps"] = step
    hist["seconds"] = round(time.time() - t0, 1)
    return hist


@torch.no_grad()
def eval_mqar(model, facts: int, filler: int, n: int, seed: int) -> dict:
    """Full attention on n sequences of `facts` facts and `filler` filler words, every fact asked once:
    the fraction of answers that are the asked fact's number, that are some other number, and exact on
    the first question alone (the one that elimination cannot answer: chance is 1/facts)."""
    b = lang.sample_batch(np.random.default_rng(seed), n, 2 * facts + filler, facts, 0, facts)
    h = model.forward_full(torch.from_numpy(b.ids))
    pred = model.logits(h[:, torch.from_numpy(b.target_rows[0::2])]).argmax(-1).numpy()
    want = b.targets[:, 0::2]
    is_value = (pred >= lang.VAL0) & (pred < lang.VAL0 + lang.N_VALUES)
    return {"exact": float((pred == want).mean()), "other": float(((pred != want) & is_value).mean()), "first": float((pred[:, 0] == want[:, 0]).mean())}


@torch.no_grad()
def eval_full(model, doc_tokens: int, facts: int, distractors: int, n: int, seed: int) -> dict:
    """Full attention on n documents, one question each: exact answers, and answers that are another fact's number."""
    b = lang.sample_batch(np.random.default_rng(seed), n, doc_tokens, facts, distractors, 1)
    h = model.forward_full(torch.from_numpy(b.ids[:, : b.target_rows[1] + 1]))
    lg = model.logits(h[:, torch.from_numpy(b.target_rows)])
    return answer_stats(lg, b)


def answer_stats(lg: torch.Tensor, b: lang.Batch) -> dict:
    pred = lg.argmax(-1).numpy()  # [B, 2]
    exact = (pred[:, 0] == b.targets[:, 0]) & (pred[:, 1] == lang.EOS)
    doc_vals = [set(row[(row >= lang.VAL0) & (row < lang.VAL0 + lang.N_VALUES)].tolist()) for row in b.ids[:, : b.target_rows[0] - 1]]
    other = np.array([p != t and p in vs for p, t, vs in zip(pred[:, 0], b.targets[:, 0], doc_vals)])
    return {"exact": float(exact.mean()), "other": float(other.mean())}


# ------------------------------------------------------------------------------------------ stage 2
def ratio_for(doc_tokens: int) -> int:
    """The ratio ctx's adapt rule picks for a document of this length (plus its question)."""
    return adapt_ratio(RATIOS, WINDOW, MAX_POS, doc_tokens + 8 + RESERVE)


def beacon_tail(model, ids: torch.Tensor, ratio, rows: torch.Tensor) -> torch.Tensor:
    """Beacon forward over ids [B, T]; logits at `rows` (indices into the raw tokens)."""
    st = BeaconState(model, ids.shape[0], WINDOW, ratio)
    h = st.feed_long(ids)
    return model.logits(h[:, rows])


# Beacon phases: steps, document lengths (log-uniform), facts, tokens per batch, and how often a ratio
# larger than ctx's pick is drawn instead (so that the large ratios also learn on short documents).
# lr 3e-3 annealed over the whole run: on the first model's own base, 3e-3 over 300 steps took the
# beacons from 0% to 84% where 1e-3 over 150 steps reached 19% (README, "What limited the first beacons").
BEACON_PHASES = [
    {"steps": 250, "lengths": (256, 2048), "facts": (1, 6), "tokens": 8192, "larger": 0.5},
    {"steps": 120, "lengths": (1024, 8192), "facts": (1, 6), "tokens": 16384, "larger": 0.5},
]
BEACON_LR = 3e-3


def train_beacon(model: Qwen2Beacon, phases=BEACON_PHASES, lr: float = BEACON_LR, seed: int = SEED + 1, log_every: int = 10) -> dict:
    """Beacon parameters only (base frozen). Each step: documents of one length and shape, read at one
    ratio (ctx's pick for that length, or with probability `larger` a larger trained ratio), every fact
    asked after the document, loss on the answers, full backprop through the whole document."""
    for p in model.base_parameters():
        p.requires_grad_(False)
    params = model.beacon_parameters()
    for p in params:
        p.requires_grad_(True)
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98), weight_decay=0.0)
    t0 = time.time()
    total = sum(ph["steps"] for ph in phases)
    step, out = 0, {"phases": [], "curve": []}
    for pi, ph in enumerate(phases):
        tp, ema = time.time(), 0.0
        lo, hi = ph["lengths"]
        for s_step in range(ph["steps"]):
            n, f, d, q = draw_shape(rng, lo, hi, ph["facts"], 8)
            r = ratio_for(n)
            if rng.random() < ph["larger"]:
                r = int(rng.choice([x for x in RATIOS if x >= r]))
            batch = max(1, ph["tokens"] // n)
            b = lang.sample_batch(rng, batch, n, f, d, q, bos=rng.random() >= 0.1)
            cur = lr * min(1.0, (step + 1) / 20) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / total)))
            for g in opt.param_groups:
                g["lr"] = cur
            lg = beacon_tail(model, torch.from_numpy(b.ids), r, torch.from_numpy(b.target_rows))
            loss, ex = answer_loss(lg, torch.from_numpy(b.targets))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            ema = ex if s_step == 0 else 0.9 * ema + 0.1 * ex
            if step % log_every == 0:
                out["curve"].append({"step": step, "phase": pi + 1, "loss": round(loss.item(), 4), "exact_ema": round(ema, 3), "seconds": round(time.time() - t0)})
                log(f"beacon phase {pi + 1} step {step} len {n} facts {f} r{r} x{batch} loss {loss.item():.4f} exact(ema) {ema:.3f} lr {cur:.2e}")
        held = {f"{L}/r{ratio_for(L)}": eval_beacon(model, L, 4, 4, 32, seed=77 + pi) for L in (2048,)}
        log(f"beacon phase {pi + 1} done ({time.time() - tp:.0f}s): held-out, 4 facts + 4 distractors: {held}")
        out["phases"].append({**{k: (list(v) if isinstance(v, tuple) else v) for k, v in ph.items()}, "seconds": round(time.time() - tp, 1), "held_out": held})
    for p in model.parameters():
        p.requires_grad_(False)
    out["steps"] = step
    out["seconds"] = round(time.time() - t0, 1)
    return out


@torch.no_grad()
def eval_beacon(model, doc_tokens: int, facts: int, distractors: int, n: int, seed: int, ratio: int | None = None, batch: int = 16) -> dict:
    b = lang.sample_batch(np.random.default_rng(seed), n, doc_tokens, facts, distractors, 1)
    ids = torch.from_numpy(b.ids[:, : b.target_rows[1] + 1])
    r = ratio or ratio_for(doc_tokens)
    lg = torch.cat([beacon_tail(model, ids[i : i + batch], r, torch.from_numpy(b.target_rows)) for i in range(0, n, batch)])
    return answer_stats(lg, b)


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
def evaluate(model, n: int) -> dict:
    """Exact answers of the exported weights (recipe forward): full attention inside the window, and
    beacons at ctx's ratio, on single-fact and 4-facts + 4-distractors documents."""
    res = {"n_per_cell": n, "cells": {}}
    for L in (256, 900):
        for f, d in ((1, 0), (4, 4)):
            res["cells"][f"full f{f}d{d} @{L}"] = v = eval_full(model, L, f, d, n, seed=2_000_000 + L + f)
            log(f"eval full, {f} facts {d} distractors @ {L}: {v}")
    for L in (1024, 2048, 8192, 16384):
        for f, d in ((1, 0), (4, 4)):
            t = time.time()
            res["cells"][f"beacon r{ratio_for(L)} f{f}d{d} @{L}"] = v = eval_beacon(model, L, f, d, n, seed=3_000_000 + L + f, batch=8)
            log(f"eval beacon r{ratio_for(L)}, {f} facts {d} distractors @ {L}: {v} ({time.time() - t:.0f}s)")
    return res


def results_md(res: dict, hist: dict) -> str:
    lines = ["| cell | exact | another fact's number |", "|---|---|---|"]
    for k, v in res["cells"].items():
        lines.append(f"| {k} | {100 * v['exact']:.0f}% | {100 * v['other']:.0f}% |")
    lines += ["", f"{res['n_per_cell']} documents per cell (recipe forward, float16 weights computed in float32).", "", f"Training: {json.dumps(hist)}"]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "needle-demo"))
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--resume", action="store_true", help="load finished stages from --work")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the result is reproducible for a given count)")
    ap.add_argument("--eval-n", type=int, default=32)
    ap.add_argument("--skip-golden", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    os.makedirs(args.work, exist_ok=True)
    t_all = time.time()
    hist = {"threads": args.threads}

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
        init_weights(model, SEED, INIT_STD, MIMETIC_STD)
        return train_base(model)

    hist["base"] = stage("base", "base.pt", base_training)
    model.init_beacon_from_base("eos", lang.EOS, lang.BOS)
    hist["beacon"] = stage("beacon", "beacon.pt", lambda: train_beacon(model))

    export(model, args.out)
    log(f"exported to {args.out}")
    shipped = load_model(args.out)  # evaluate exactly what was exported (float16 weights, computed in float32)
    t = time.time()
    res = evaluate(shipped, args.eval_n)
    hist["eval_seconds"] = round(time.time() - t, 1)
    hist["total_seconds"] = round(time.time() - t_all, 1)
    json.dump({"results": res, "training": hist}, open(os.path.join(args.work, "results.json"), "w"), indent=1)
    md = results_md(res, hist)
    open(os.path.join(args.work, "results.md"), "w").write(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
