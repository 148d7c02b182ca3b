#!/usr/bin/env python3
"""Trains nsae's built-in model: a small GPT-2 (real GPT-2 tokenizer and 50257-token vocabulary) on the Python 3.11
documentation sources, on CPU, reproducibly, and writes it as a Hugging Face GPT-2 folder.

    apt-get install -y python3.11-doc            # the corpus (PSF licence)
    pip install /opt/wheels/torch-*+cpu-*.whl    # or PyPI's CPU torch
    python3 tools/builtin_model/train.py --out Sources/nsae/Resources/builtin-gpt2 [--minutes 45]

Everything that decides the numbers is here: the corpus files and their train/validation split (by file), the
tokenizer (GPT-2's original algorithm over the shipped encoder.json / vocab.bpe), the context windows (nsae's pinned
rule, design §5: documents joined with 50256, cut into pieces of T−1 tokens each prefixed with 50256), the model
(pre-LN GPT-2, gelu_new, tied unembedding), the optimizer and the seed. The script evaluates the saved (float16)
weights on the first VAL_WINDOWS validation windows and writes that figure into the model card, so nsae can check it
reproduces the same cross-entropy on the same tokens.
"""
import argparse
import glob
import hashlib
import json
import math
import os
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOKENIZER_DIR = os.path.join(REPO, "..", "shared", "data", "gpt2-tokenizer")
CORPUS_DIR = "/usr/share/doc/python3.11/html/_sources"
EOT = 50256
VAL_WINDOWS = 64


# ---------------------------------------------------------------- tokenizer (GPT-2's encoder.py, with `regex`)

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


class GPT2Tokenizer:
    def __init__(self, encoder_path, bpe_path):
        import regex
        with open(encoder_path, encoding="utf-8") as f:
            self.encoder = json.load(f)
        with open(bpe_path, encoding="utf-8") as f:
            merges = [tuple(line.split()) for line in f.read().split("\n")[1:] if line.strip()]
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.byte_encoder = bytes_to_unicode()
        self.pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
        self.cache = {}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = list(token)
        while len(word) > 1:
            pairs = [(self.ranks.get((word[i], word[i + 1]), math.inf), i) for i in range(len(word) - 1)]
            rank, first = min(pairs)
            if rank == math.inf:
                break
            a, b = word[first], word[first + 1]
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == a and word[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        self.cache[token] = word
        return word

    def encode(self, text):
        ids = []
        for piece in self.pat.findall(text):
            mapped = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(mapped))
        return ids


# ---------------------------------------------------------------- corpus and windows (design §5)

def corpus_files():
    files = sorted(glob.glob(os.path.join(CORPUS_DIR, "**", "*.txt"), recursive=True))
    if not files:
        sys.exit(f"no corpus under {CORPUS_DIR}: apt-get install -y python3.11-doc")
    return files


def is_validation(path):
    """About 5% of files, chosen by a hash of the path relative to the corpus folder (stable across machines)."""
    rel = os.path.relpath(path, CORPUS_DIR)
    return int(hashlib.sha256(rel.encode()).hexdigest(), 16) % 20 == 0


def documents(path):
    """nsae's .txt rule (design §5): documents are separated by one or more blank lines; a document's text is its
    lines joined by "\n"."""
    docs, current = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f.read().split("\n"):
            if line.strip():
                current.append(line)
            elif current:
                docs.append("\n".join(current))
                current = []
    if current:
        docs.append("\n".join(current))
    return docs


def windows(token_docs, T):
    stream = []
    for i, doc in enumerate(token_docs):
        if i > 0:
            stream.append(EOT)
        stream.extend(doc)
    piece = T - 1
    return [[EOT] + stream[k:k + piece] for k in range(0, len(stream) - piece + 1, piece)]


# ---------------------------------------------------------------- model

def build_model(torch, cfg):
    nn = torch.nn
    F = torch.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            d = cfg["n_embd"]
            self.ln_1 = nn.LayerNorm(d, eps=1e-5)
            self.c_attn = nn.Linear(d, 3 * d)
            self.attn_proj = nn.Linear(d, d)
            self.ln_2 = nn.LayerNorm(d, eps=1e-5)
            self.c_fc = nn.Linear(d, 4 * d)
            self.mlp_proj = nn.Linear(4 * d, d)

        def forward(self, x):
            B, T, C = x.shape
            h = cfg["n_head"]
            q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
            q, k, v = (t.view(B, T, h, C // h).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.attn_proj(y.transpose(1, 2).reshape(B, T, C))
            return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(cfg["vocab_size"], cfg["n_embd"])
            self.wpe = nn.Embedding(cfg["n_positions"], cfg["n_embd"])
            self.h = nn.ModuleList(Block() for _ in range(cfg["n_layer"]))
            self.ln_f = nn.LayerNorm(cfg["n_embd"], eps=1e-5)
            for name, p in self.named_parameters():
                if name.endswith("weight") and p.dim() == 2:
                    std = 0.02 / math.sqrt(2 * cfg["n_layer"]) if name.endswith("proj.weight") else 0.02
                    nn.init.normal_(p, 0, std)
                elif name.endswith("bias") and "ln" not in name:
                    nn.init.zeros_(p)

        def forward(self, idx):
            pos = torch.arange(idx.shape[1])
            x = self.wte(idx) + self.wpe(pos)
            for block in self.h:
                x = block(x)
            return self.ln_f(x) @ self.wte.weight.T

    return GPT()


def hf_state(model):
    """The Hugging Face GPT-2 key layout (hub style, no `transformer.` prefix), Conv1D weights as [in, out]."""
    out = {"wte.weight": model.wte.weight, "wpe.weight": model.wpe.weight,
           "ln_f.weight": model.ln_f.weight, "ln_f.bias": model.ln_f.bias}
    for i, b in enumerate(model.h):
        p = f"h.{i}."
        out[p + "ln_1.weight"], out[p + "ln_1.bias"] = b.ln_1.weight, b.ln_1.bias
        out[p + "ln_2.weight"], out[p + "ln_2.bias"] = b.ln_2.weight, b.ln_2.bias
        out[p + "attn.c_attn.weight"], out[p + "attn.c_attn.bias"] = b.c_attn.weight.T, b.c_attn.bias
        out[p + "attn.c_proj.weight"], out[p + "attn.c_proj.bias"] = b.attn_proj.weight.T, b.attn_proj.bias
        out[p + "mlp.c_fc.weight"], out[p + "mlp.c_fc.bias"] = b.c_fc.weight.T, b.c_fc.bias
        out[p + "mlp.c_proj.weight"], out[p + "mlp.c_proj.bias"] = b.mlp_proj.weight.T, b.mlp_proj.bias
    return out


def write_safetensors_f16(tensors, path):
    import numpy as np
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        arr = tensors[name].detach().float().contiguous().numpy().astype("<f2")
        data = arr.tobytes()
        header[name] = {"dtype": "F16", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=45.0, help="wall-clock training budget")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: budget only)")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    import numpy as np
    import torch
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)

    tok = GPT2Tokenizer(os.path.join(TOKENIZER_DIR, "encoder.json"), os.path.join(TOKENIZER_DIR, "vocab.bpe"))
    files = corpus_files()
    train_files = [f for f in files if not is_validation(f)]
    val_files = [f for f in files if is_validation(f)]
    t0 = time.time()
    train_w = windows([tok.encode(d) for f in train_files for d in documents(f)], args.context)
    val_w = windows([tok.encode(d) for f in val_files for d in documents(f)], args.context)
    print(f"corpus: {len(train_files)} train files, {len(val_files)} validation files; "
          f"{len(train_w)} / {len(val_w)} windows of {args.context} (tokenized in {time.time() - t0:.0f} s)", flush=True)
    train = torch.tensor(train_w, dtype=torch.long)
    val = torch.tensor(val_w[:VAL_WINDOWS], dtype=torch.long)

    cfg = {"vocab_size": 50257, "n_positions": args.context, "n_embd": args.d, "n_layer": args.layers, "n_head": args.heads}
    model = build_model(torch, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    budget = args.minutes * 60
    warmup = 100
    start = time.time()
    step, seen, log = 0, 0, []
    order = rng.permutation(len(train))
    cursor = 0
    while True:
        elapsed = time.time() - start
        if (args.max_steps and step >= args.max_steps) or (not args.max_steps and elapsed > budget):
            break
        frac = min(1.0, elapsed / budget) if not args.max_steps else step / args.max_steps
        lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        if cursor + args.batch > len(order):
            order, cursor = rng.permutation(len(train)), 0
        batch = train[order[cursor:cursor + args.batch]]
        cursor += args.batch
        logits = model(batch[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        seen += batch.numel()
        if step % 50 == 0:
            log.append((step, float(loss)))
            print(f"step {step}  loss {float(loss):.3f}  lr {lr:.2e}  {seen / (time.time() - start):.0f} tok/s", flush=True)

    # Evaluate the weights exactly as shipped: rounded to float16, computed in float32.
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
        logits = model(val[:, :-1])
        val_ce = float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), val[:, 1:].reshape(-1)))
        tl = model(train[:VAL_WINDOWS, :-1])
        train_ce = float(torch.nn.functional.cross_entropy(tl.reshape(-1, tl.shape[-1]), train[:VAL_WINDOWS, 1:].reshape(-1)))
    print(f"done: {step} steps, {seen} tokens; train CE {train_ce:.4f}, validation CE {val_ce:.4f}", flush=True)

    os.makedirs(args.out, exist_ok=True)
    write_safetensors_f16(hf_state(model), os.path.join(args.out, "model.safetensors"))
    config = {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "bos_token_id": EOT,
              "eos_token_id": EOT, "layer_norm_epsilon": 1e-5, "model_type": "gpt2", "n_ctx": args.context,
              "n_embd": args.d, "n_head": args.heads, "n_inner": None, "n_layer": args.layers,
              "n_positions": args.context, "scale_attn_weights": True, "tie_word_embeddings": True,
              "vocab_size": 50257, "torch_dtype": "float16"}
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for src, dst in (("encoder.json", "vocab.json"), ("vocab.bpe", "merges.txt")):
        with open(os.path.join(TOKENIZER_DIR, src), "rb") as f, open(os.path.join(args.out, dst), "wb") as g:
            g.write(f.read())
    slice_path = os.path.join(args.out, "validation_slice.npy")
    np.save(slice_path, val.numpy().astype("<i4"))
    card = {"steps": step, "tokens_seen": seen, "train_ce": train_ce, "validation_ce": val_ce,
            "validation_windows": VAL_WINDOWS, "context": args.context, "seed": args.seed,
            "train_files": len(train_files), "validation_files": len(val_files),
            "minutes": round((time.time() - start) / 60, 1), "batch": args.batch, "lr": args.lr,
            "loss_log": log}
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(card, f, indent=2)
    print(json.dumps({k: v for k, v in card.items() if k != "loss_log"}))


if __name__ == "__main__":
    main()
