#!/usr/bin/env python3
"""The PyTorch baseline of bench/cuda (README.md beside this file): Qwen2-7B-shaped model with random
bf16 weights, full attention through SDPA (torch + transformers), on the same GPU as ctx.

    python3 bench/cuda/baseline.py <out.json> [--lengths 32768,131072] [--question 64] [--decode 16]

Per document length: prefill tokens/s (the document in one forward with a KV cache, logits of the last
row only), time to first answer token (document forward, then the question forward, then argmax),
decode ms/token, peak GPU memory (torch.cuda.max_memory_allocated: weights + activations + KV cache)
and the KV cache size. If a one-shot prefill runs out of memory it is repeated in 16K-token chunks
and the result says so.
"""
import argparse
import json
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM, Qwen2Config

SHAPE = dict(
    vocab_size=152064,
    hidden_size=3584,
    intermediate_size=18944,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=False,
)


def log(msg):
    print(f"[baseline] {msg}", flush=True)


def build_model(max_positions):
    config = Qwen2Config(**SHAPE, max_position_embeddings=max_positions, use_sliding_window=False)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device("cuda"):
        try:
            model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", dtype=torch.bfloat16)
        except TypeError:  # transformers < 5 names it torch_dtype
            model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", torch_dtype=torch.bfloat16)
    model.eval()
    # Random weights of the scale a trained model has, so activations stay finite.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.02)
    return model


def forward(model, ids, past, keep_logits=1):
    kwargs = dict(input_ids=ids, past_key_values=past, use_cache=True)
    try:
        return model(**kwargs, logits_to_keep=keep_logits)
    except TypeError:  # older transformers
        return model(**kwargs, num_logits_to_keep=keep_logits)


def prefill(model, doc, chunk):
    """Feeds doc in pieces of `chunk` tokens (None: one forward); returns the output of the last piece."""
    past = None
    out = None
    step = doc.shape[1] if chunk is None else chunk
    for s in range(0, doc.shape[1], step):
        out = forward(model, doc[:, s : s + step], past)
        past = out.past_key_values
    return out


def run(model, length, question_len, decode_steps):
    gen = torch.Generator(device="cuda").manual_seed(7)
    doc = torch.randint(1000, SHAPE["vocab_size"] - 1000, (1, length), device="cuda", generator=gen)
    question = torch.randint(1000, SHAPE["vocab_size"] - 1000, (1, question_len), device="cuda", generator=gen)
    kv_per_token = 2 * SHAPE["num_hidden_layers"] * SHAPE["num_key_value_heads"] * (SHAPE["hidden_size"] // SHAPE["num_attention_heads"]) * 2
    result = None
    for chunk in (None, 16384):
        try:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            torch.cuda.synchronize()
            with torch.no_grad():
                t0 = time.perf_counter()
                out = prefill(model, doc, chunk)
                torch.cuda.synchronize()
                t_doc = time.perf_counter()
                out = forward(model, question, out.past_key_values)
                token = out.logits[0, -1].argmax().view(1, 1)
                torch.cuda.synchronize()
                t_first = time.perf_counter()
                past = out.past_key_values
                for _ in range(decode_steps):
                    out = forward(model, token, past)
                    past = out.past_key_values
                    token = out.logits[0, -1].argmax().view(1, 1)
                torch.cuda.synchronize()
                t_end = time.perf_counter()
            result = dict(
                strategy="full attention (SDPA)",
                documentTokens=length,
                questionTokens=question_len,
                prefillChunk=chunk,
                prefillSeconds=t_doc - t0,
                prefillTokensPerSecond=length / (t_doc - t0),
                timeToFirstTokenSeconds=t_first - t0,
                decodeMsPerToken=1000 * (t_end - t_first) / decode_steps if decode_steps else None,
                peakDeviceBytes=torch.cuda.max_memory_allocated(),
                kvPeakBytes=kv_per_token * (length + question_len + decode_steps),
            )
            del out, past
            break
        except torch.cuda.OutOfMemoryError:
            log(f"{length}: out of memory with prefill chunk {chunk}; retrying in chunks")
            torch.cuda.empty_cache()
    if result is None:
        result = dict(strategy="full attention (SDPA)", documentTokens=length, error="out of memory")
    log(json.dumps(result))
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--lengths", default="32768,131072")
    ap.add_argument("--question", type=int, default=64)
    ap.add_argument("--decode", type=int, default=16)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        log("no GPU visible to torch")
        sys.exit(1)
    lengths = [int(x) for x in a.lengths.split(",")]
    t = time.perf_counter()
    model = build_model(max(lengths) + a.question + a.decode + 1024)
    log(f"model built in {time.perf_counter() - t:.1f} s; {torch.cuda.memory_allocated() / 2**30:.2f} GiB")
    res = dict(
        device=torch.cuda.get_device_name(0),
        torch=torch.__version__,
        transformers=transformers.__version__,
        attention=model.config._attn_implementation,
        runs=[],
    )
    run(model, 4096, a.question, 2)  # warm-up
    for length in lengths:
        res["runs"].append(run(model, length, a.question, a.decode))
        with open(a.out, "w") as f:
            json.dump(res, f, indent=2)
    log(f"wrote {a.out}")


if __name__ == "__main__":
    main()
