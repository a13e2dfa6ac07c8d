"""What the three variant recipes share: the demo base, its data, the CPU clock, export, and ctx's check.

The variants are made from a trained demo base (a model folder: config.json + model.safetensors, by
default the committed models/needle-demo) with the needle recipe's own model code (../needle/model.py,
imported, not copied) and language (../needle/language.py).

Data (`batch`): the needle language's multi-query associative-recall sequences, `[bos] document
(recall K V </s>)*q`, loss on each V and </s>, exactly what the base was trained on:
  task "single": one fact per document, one question (the first demo base's task);
  task "mqar":   1-8 facts, 0-f distractor names, every fact asked (the second base's task).
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
NEEDLE = os.path.join(HERE, "..", "needle")
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, NEEDLE)
import language as lang  # noqa: E402
from model import Qwen2Beacon, load_model  # noqa: E402

DEFAULT_BASE = os.path.join(REPO, "models", "needle-demo")
DEFAULT_WORK = os.path.join(HERE, "work")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "generation_config.json")


def log(msg: str):
    print(f"[{time.strftime('%H:%M:%S')} cpu {cpu_minutes():5.1f} min] {msg}", flush=True)


def cpu_minutes() -> float:
    """CPU time of this process and its finished children (user + system, all threads), in minutes."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime) / 60.0


def setup(threads: int, seed: int):
    """Fixed thread count and seeds: a rerun with the same count on the same machine gives the same bytes."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


# ------------------------------------------------------------------------------------------ the base
def base_config(folder: str) -> dict:
    """The base's config.json without its Activation Beacon keys (a variant has no beacon memory)."""
    cfg = json.load(open(os.path.join(folder, "config.json")))
    return {k: v for k, v in cfg.items() if not k.startswith("beacon_")}


def load_base(folder: str) -> tuple[Qwen2Beacon, dict]:
    """The base model without beacon parameters (float32), and its config without beacon keys."""
    cfg = base_config(folder)
    full = load_model(folder)
    model = Qwen2Beacon(cfg, beacon=False)
    sd = {k: v for k, v in full.state_dict().items() if "beacon" not in k}
    model.load_state_dict(sd)
    return model, cfg


def window(cfg: dict) -> int:
    return int(cfg["max_position_embeddings"])


# ------------------------------------------------------------------------------------------ data
def shape(rng: np.random.Generator, task: str) -> tuple[int, int, int]:
    """facts, distractors, queries of one batch."""
    if task == "single":
        return 1, 0, 1
    if task == "mqar":
        f = int(rng.integers(1, 9))
        return f, int(rng.integers(0, f + 1)), f
    raise ValueError(f"unknown task {task}")


def batch(rng: np.random.Generator, task: str, seq_tokens: int, size: int) -> lang.Batch:
    """`size` sequences of exactly `seq_tokens` ids: [bos] document, then the questions and answers."""
    f, d, q = shape(rng, task)
    doc = seq_tokens - 1 - 4 * q
    return lang.sample_batch(rng, size, doc, f, d, q, bos=True)


def answer_loss(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, float]:
    """logits [B, 2q, V] at each question's name row (-> number) and number row (-> </s>), targets [B, 2q].
    Returns the mean cross-entropy and the fraction of questions answered exactly (number and </s>)."""
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    ok = (logits.argmax(-1) == targets).view(targets.shape[0], -1, 2).all(-1)
    return loss, ok.float().mean().item()


def lr_at(step: int, steps: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine to 10% of the peak."""
    w = min(1.0, (step + 1) / max(1, warmup))
    return peak * w * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))


@torch.no_grad()
def exact_full(model: Qwen2Beacon, task: str, doc_tokens: int, n: int, seed: int, batch_size: int = 8) -> dict:
    """Full attention, one question per document: exact answers and the mean loss of the number."""
    facts, distractors = (1, 0) if task == "single" else (4, 4)
    b = lang.sample_batch(np.random.default_rng(seed), n, doc_tokens, facts, distractors, 1)
    ids = torch.from_numpy(b.ids[:, : b.target_rows[0] + 1])
    right, loss = 0, 0.0
    for i in range(0, n, batch_size):
        lg = model.logits(model.forward_full(ids[i : i + batch_size])[:, -1])
        tgt = torch.from_numpy(b.targets[i : i + batch_size, 0])
        right += int((lg.argmax(-1) == tgt).sum())
        loss += float(F.cross_entropy(lg, tgt, reduction="sum"))
    return {"exact": right / n, "loss": loss / n}


# ------------------------------------------------------------------------------------------ export
def export_folder(out: str, tensors: dict[str, torch.Tensor], config: dict, base: str):
    """Writes a ctx model folder: model.safetensors (each tensor in the dtype given), config.json and the
    base's tokenizer files. Written beside `out` first and moved in place, so a failed export leaves
    the previous folder (or nothing)."""
    from safetensors.torch import save_file

    tmp = out.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    for name in TOKENIZER_FILES:
        if os.path.exists(os.path.join(base, name)):
            shutil.copyfile(os.path.join(base, name), os.path.join(tmp, name))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)


def half(sd: dict[str, torch.Tensor], keep_float32: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """float16 like the base, except tensors whose name starts with one of `keep_float32`."""
    return {k: (v.float() if k.startswith(keep_float32) else v.to(torch.float16)) for k, v in sd.items()}


# ------------------------------------------------------------------------------------------ ctx's check
def write_case(root: str, name: str, kind: str, model_dir: str, input_ids: list[int], prefill: torch.Tensor,
               steps: torch.Tensor, greedy: list[int], settings: dict | None, extra: dict | None = None,
               tensors: dict[str, torch.Tensor] | None = None, atol: float = 1e-3):
    """One case in ../shared/golden's format (case.json + expected.safetensors), with this recipe's
    PyTorch forward as the reference, for ctx's own golden runner (src/engine/golden.ts)."""
    from safetensors.torch import save_file

    d = os.path.join(root, "cases", name)
    os.makedirs(d, exist_ok=True)
    case = {
        "name": name,
        "kind": kind,
        "reference": "models/recipes/variants (PyTorch, float32, the exported float16 weights)",
        "model": os.path.relpath(model_dir, root),
        "n_input": len(input_ids),
        "input_ids": [int(i) for i in input_ids],
        "greedy_steps": len(greedy),
        "expected_greedy_ids": [int(i) for i in greedy],
        "settings": settings,
        "tolerance": {"suggested_atol": atol},
        **(extra or {}),
    }
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(case, f, indent=1)
    out = {"prefill_logits": prefill.float().contiguous(), "step_logits": steps.float().contiguous()}
    out.update({k: v.float().contiguous() for k, v in (tensors or {}).items()})
    save_file(out, os.path.join(d, "expected.safetensors"))


def run_ctx_golden(root: str, backend: str = "reference") -> tuple[bool, str]:
    """ctx's golden runner over `root` (exit 0 = every case passed). Returns (passed, its output)."""
    cmd = ["node", "--import", "tsx", os.path.join(REPO, "tools", "golden.ts"), root, "--backend", backend]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


def greedy_prompt(rng_seed: int, task: str, doc_tokens: int) -> tuple[list[int], int]:
    """A needle prompt ([bos] document recall K) and its answer's number id."""
    facts, distractors = (1, 0) if task == "single" else (4, 4)
    b = lang.sample_batch(np.random.default_rng(rng_seed), 1, doc_tokens, facts, distractors, 1)
    return b.ids[0, : b.target_rows[0] + 1].tolist(), int(b.targets[0, 0])
