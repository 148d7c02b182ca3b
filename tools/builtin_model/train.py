#!/usr/bin/env python3
"""Trains nsae's built-in model: a small GPT-2 (real GPT-2 tokenizer and 50257-token vocabulary) on the Python 3.11
documentation sources, on CPU, reproducibly, and writes it as a Hugging Face GPT-2 folder.

    apt-get install -y python3.11-doc            # the corpus (PSF licence)
    pip install /opt/wheels/torch-*+cpu-*.whl    # or PyPI's CPU torch
    python3 tools/builtin_model/train.py --out models/builtin-gpt2        # about 40 minutes on 2 idle cores

Everything that decides the numbers is here: the corpus files and their train/validation split (by file), the
tokenizer (GPT-2's original algorithm over the shipped encoder.json / vocab.bpe), the context windows (nsae's pinned
rule, design §5, which is SAELens's `concat_and_batch_sequences`: one document per file, documents joined with 50256,
cut into windows of 50256 + T−1 tokens, a separator that would stand right after a window's BOS dropped), the model
(pre-LN GPT-2, gelu_new, tied unembedding), the optimizer, the fixed number of steps and the seed: the same command
gives the same weights on the same torch version and thread count. The script evaluates the saved (float16)
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
# GPT-2's tokenizer files: OpenAI's (encoder.json, vocab.bpe) in the shared fixtures, else the copies (vocab.json,
# merges.txt, byte-identical) that ship in the built-in model's folder.
TOKENIZER_DIRS = [os.path.join(REPO, "..", "shared", "data", "gpt2-tokenizer"), os.path.join(REPO, "models", "builtin-gpt2")]
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


def tokenizer_files(folder):
    for candidate in ([folder] if folder else TOKENIZER_DIRS):
        for encoder, bpe in (("encoder.json", "vocab.bpe"), ("vocab.json", "merges.txt")):
            e, b = os.path.join(candidate, encoder), os.path.join(candidate, bpe)
            if os.path.isfile(e) and os.path.isfile(b):
                return e, b
    sys.exit(f"no GPT-2 tokenizer files (encoder.json + vocab.bpe, or vocab.json + merges.txt) in "
             f"{folder or ' or '.join(TOKENIZER_DIRS)}; give --tokenizer")


# ---------------------------------------------------------------- corpus and windows (design §5)

def corpus_files():
    files = sorted(glob.glob(os.path.join(CORPUS_DIR, "**", "*.txt"), recursive=True))
    if not files:
        sys.exit(f"no corpus under {CORPUS_DIR}: apt-get install -y python3.11-doc")
    return files


def corpus_package_version():
    """The Debian version of python3.11-doc, so a changed corpus can be told apart ("" where dpkg cannot say)."""
    import subprocess
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", "python3.11-doc"], capture_output=True,
                              text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def is_validation(path):
    """About 5% of files, chosen by a hash of the path relative to the corpus folder (stable across machines)."""
    rel = os.path.relpath(path, CORPUS_DIR)
    return int(hashlib.sha256(rel.encode()).hexdigest(), 16) % 20 == 0


def documents(path):
    """nsae's folder rule (design §5, split=file): a file is one document, its text exactly as stored (no newline
    translation). The shipped weights were trained before this rule, with blank-line documents (see the card)."""
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        return [f.read()]


def windows(token_docs, T):
    """SAELens's concat_and_batch_sequences with begin_batch_token_id = sequence_separator_token_id = 50256: each
    window is 50256 then T−1 tokens of the documents joined with 50256; an empty document adds nothing; no 50256 is
    added before a token that already is one, so a document ending exactly at a window's end starts the next window
    without a separator; the last partial window is dropped."""
    out, window = [], []
    for doc in token_docs:
        offset = 0
        if window and doc and doc[0] != EOT:
            window.append(EOT)
            if len(window) == T:
                out.append(window)
                window = []
        while offset < len(doc):
            if not window and doc[offset] != EOT:
                window.append(EOT)
            take = min(T - len(window), len(doc) - offset)
            window.extend(doc[offset:offset + take])
            offset += take
            if len(window) == T:
                out.append(window)
                window = []
    return out


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

        def hidden(self, idx):
            pos = torch.arange(idx.shape[1])
            x = self.wte(idx) + self.wpe(pos)
            for block in self.h:
                x = block(x)
            return self.ln_f(x)

        def forward(self, idx):
            return self.hidden(idx) @ self.wte.weight.T

    return GPT()


LOSS_CHUNK = 128


def chunk_losses(torch, model, hidden, targets):
    """Summed next-token cross-entropy of each LOSS_CHUNK rows of `hidden` ([N, d]) against `targets` ([N])."""
    F = torch.nn.functional
    for start in range(0, hidden.shape[0], LOSS_CHUNK):
        rows = slice(start, start + LOSS_CHUNK)
        yield F.cross_entropy(hidden[rows] @ model.wte.weight.T, targets[rows], reduction="sum")


def loss_and_backward(torch, model, batch):
    """Mean next-token cross-entropy of `batch`, with its gradient accumulated into the model.

    The 50257-wide unembedding dominates the cost, and materializing all B·T logits at once makes it memory-bound
    (about 0.8 GB per step at B=32). Cutting the rows into chunks of LOSS_CHUNK keeps each logits block in cache:
    the loss is computed and back-propagated chunk by chunk into the detached final hidden state, which is then
    back-propagated through the body once. Same gradient, about 1.3x faster on this machine kind."""
    hidden = model.hidden(batch[:, :-1]).reshape(-1, model.wte.weight.shape[1])
    targets = batch[:, 1:].reshape(-1)
    detached = hidden.detach().requires_grad_(True)
    total = 0.0
    for chunk_loss in chunk_losses(torch, model, detached, targets):
        (chunk_loss / len(targets)).backward()
        total += float(chunk_loss.detach()) / len(targets)
    hidden.backward(detached.grad)
    return total


def mean_ce(torch, model, windows):
    """Mean next-token cross-entropy over all positions of `windows`, without gradients."""
    with torch.no_grad():
        hidden = model.hidden(windows[:, :-1]).reshape(-1, model.wte.weight.shape[1])
        targets = windows[:, 1:].reshape(-1)
        return sum(float(loss) for loss in chunk_losses(torch, model, hidden, targets)) / len(targets)


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


def model_card(card, n_params, train_tokens, command):
    return f"""# nsae's built-in GPT-2

A small language model with GPT-2's architecture, trained on real text, so that nsae's whole loop (harvest, train SAEs,
splice, top-activating tokens, feature cards) means something out of the box on machines that cannot download GPT-2.
`load gpt2 builtin` loads this folder; `nsae demo` (part 2) and `notebooks/gpt2-study.ipynb` use it.

| | |
|---|---|
| architecture | GPT-2 (pre-LayerNorm, gelu_new, learned positions, tied unembedding), Hugging Face `GPT2LMHeadModel` layout |
| size | {card["layers"]} layers, d_model {card["d_model"]}, {card["heads"]} heads, context {card["context"]}, vocabulary 50257; {n_params / 1e6:.2f} M parameters (6.43 M of them the token embedding) |
| tokenizer | GPT-2's byte-level BPE, unchanged (`vocab.json`, `merges.txt`) |
| weights | float16 (`model.safetensors`, keys without the `transformer.` prefix) |
| corpus | the Python 3.11 documentation sources, Debian's `python3.11-doc` {card.get("corpus_package", "")} (`/usr/share/doc/python3.11/html/_sources`, reStructuredText) |
| split | by file: sha256 of the path under `_sources` mod 20 = 0 is validation ({card["validation_files"]} files), the rest training ({card["train_files"]} files, {train_tokens:,} tokens in windows) |
| windows | nsae's pinned rule (design §5, SAELens's `concat_and_batch_sequences`): one document per file, documents joined with `<\\|endoftext\\|>`, each window `<\\|endoftext\\|>` then {card["context"] - 1} tokens, no separator right after a window's BOS |
| training | {card["steps"]} AdamW steps (betas 0.9/0.95, weight decay 0.1, peak lr {card["lr"]}, 100 warm-up steps, cosine to 10%, gradient clip 1.0), batch {card["batch"]} windows, seed {card["seed"]}, torch {card["torch"]} on {card["threads"]} CPU threads, {card["minutes"]} minutes of wall clock |
| tokens seen | {card["tokens_seen"]:,} (about {card["tokens_seen"] / train_tokens:.2f} epochs) |
| train CE | {card["train_ce"]:.4f} nats/token (first {card["validation_windows"]} training windows) |
| **validation CE** | **{card["validation_ce"]:.4f}** nats/token on `validation_slice.npy` |

## The validation figure, reproducibly

`validation_slice.npy` holds the exact tokens: int32 [{card["validation_windows"]}, {card["context"]}], the first
{card["validation_windows"]} windows of the validation files in path order, each starting with BOS (50256). The figure is
the mean next-token cross-entropy over all {card["validation_windows"]}·{card["context"] - 1} predictions (the prediction made at
the BOS position included), computed by the training tool from the float16 weights as shipped. nsae's test
`BuiltinModelTests` recomputes it and must agree within 1e-3 relative.

## How it was made

    apt-get install -y python3.11-doc
    python3 tools/builtin_model/train.py {command}

Same command, same torch version and thread count: same weights. `training.json` has every setting and the loss
every 25 steps.

## What it is for, and not for

It is for trying nsae's interpretability loop on real features. SAEs on its MLP outputs find readable ones: in
`nsae demo`, features for a reST role name after its colon (`:func:`, `:envvar:`), for the `::` that ends a paragraph
before a code block, for table rules and heading underlines, for directive names (`.. versionadded::`), and for
pieces of identifiers (`dat|ac|lass`, `c|urses`). It is **not** a
general language model: it knows only Python documentation, writes plausible-looking but wrong text, and its
features are far simpler than GPT-2 small's. Conclusions about GPT-2 need GPT-2: `load gpt2 "PATH"` with a real
checkpoint.

## Licence

The corpus is the Python documentation, © Python Software Foundation, under the PSF licence (PSF License Agreement
for Python 3.11; see `/usr/share/doc/python3.11/copyright`). The tokenizer files are OpenAI's GPT-2 vocabulary and
merges (MIT licence). The weights are derived from that corpus and are distributed with nsae under the same terms.
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=1200, help="optimizer steps (1200 take about 40 minutes on 2 cores)")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tokenizer", help="folder with GPT-2's encoder.json + vocab.bpe or vocab.json + merges.txt")
    args = ap.parse_args()

    import numpy as np
    import torch
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)

    encoder_path, bpe_path = tokenizer_files(args.tokenizer)
    tok = GPT2Tokenizer(encoder_path, bpe_path)
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
    warmup = min(100, max(1, args.steps // 10))
    start = time.time()
    seen, log = 0, []
    order = rng.permutation(len(train))
    cursor = 0
    for step in range(1, args.steps + 1):
        progress = (step - 1) / args.steps
        lr = args.lr * min(1.0, step / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = lr
        if cursor + args.batch > len(order):
            order, cursor = rng.permutation(len(train)), 0
        batch = train[order[cursor:cursor + args.batch]]
        cursor += args.batch
        loss = loss_and_backward(torch, model, batch)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        seen += batch.numel()
        if step % 25 == 0 or step == args.steps:
            log.append((step, round(loss, 4)))
            rate = seen / (time.time() - start)
            eta = (args.steps - step) * (time.time() - start) / step
            print(f"step {step}/{args.steps}  loss {loss:.3f}  lr {lr:.2e}  {rate:.0f} tok/s  eta {eta / 60:.1f} min",
                  flush=True)

    # Evaluate the weights exactly as shipped: rounded to float16, computed in float32.
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    val_ce = mean_ce(torch, model, val)
    train_ce = mean_ce(torch, model, train[:VAL_WINDOWS])
    print(f"done: {args.steps} steps, {seen} tokens; train CE {train_ce:.4f}, validation CE {val_ce:.4f}", flush=True)

    os.makedirs(args.out, exist_ok=True)
    write_safetensors_f16(hf_state(model), os.path.join(args.out, "model.safetensors"))
    config = {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "bos_token_id": EOT,
              "eos_token_id": EOT, "layer_norm_epsilon": 1e-5, "model_type": "gpt2", "n_ctx": args.context,
              "n_embd": args.d, "n_head": args.heads, "n_inner": None, "n_layer": args.layers,
              "n_positions": args.context, "scale_attn_weights": True, "tie_word_embeddings": True,
              "vocab_size": 50257, "torch_dtype": "float16"}
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for src, dst in ((encoder_path, "vocab.json"), (bpe_path, "merges.txt")):
        target = os.path.join(args.out, dst)
        if os.path.abspath(src) != os.path.abspath(target):
            with open(src, "rb") as f, open(target, "wb") as g:
                g.write(f.read())
    slice_path = os.path.join(args.out, "validation_slice.npy")
    np.save(slice_path, val.numpy().astype("<i4"))
    card = {"steps": args.steps, "tokens_seen": seen, "train_ce": train_ce, "validation_ce": val_ce,
            "validation_windows": VAL_WINDOWS, "context": args.context, "seed": args.seed,
            "train_files": len(train_files), "validation_files": len(val_files),
            "minutes": round((time.time() - start) / 60, 1), "batch": args.batch, "lr": args.lr,
            "torch": torch.__version__, "corpus_package": corpus_package_version(), "threads": args.threads, "layers": args.layers, "d_model": args.d,
            "heads": args.heads,
            "loss_log": log}
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(card, f, indent=2)
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(model_card(card, n_params=sum(p.numel() for p in model.parameters()),
                           train_tokens=int(train.numel()), command=" ".join(sys.argv[1:])))
    print(json.dumps({k: v for k, v in card.items() if k != "loss_log"}))


if __name__ == "__main__":
    main()
