"""`encode SAE STORE … out="codes.safetensors"` read back by numpy and scipy: the CSR equals the codes numpy computes
from the saved SAE folder (SAELens layout) and the store read directly from its documented layout (manifest.json +
safetensors shards), with BOS rows left out."""
import json
import pathlib
import struct
import subprocess

import numpy as np
import pytest

from conftest import nsae_binary

DTYPES = {"F32": "<f4", "F16": "<f2", "I32": "<i4", "I64": "<i8"}


def read_safetensors(path):
    """An independent reader: 8-byte header length, JSON header, little-endian data."""
    raw = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + start:8 + n + end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return out, metadata


def read_store(folder, hook):
    """A store as its manifest documents it: shards in order, each holding every hook's [rows, d] and the
    per-row token_ids, doc_index, position and bos_mask."""
    manifest = json.loads((folder / "manifest.json").read_text())
    parts = [read_safetensors(folder / s["file"])[0] for s in manifest["shards"]]
    assert sum(p["token_ids"].shape[0] for p in parts) == manifest["token_count"]
    cat = lambda key: np.concatenate([p[key] for p in parts])
    return cat(hook).astype(np.float32), cat("token_ids"), cat("position"), cat("doc_index"), cat("bos_mask")


def test_encode_writes_csr_equal_to_numpy_codes(tmp_path, shared_data):
    tiny = shared_data / "gpt2-tiny"
    if not (tiny / "model.safetensors").is_file():
        pytest.skip(f"the tiny GPT-2 fixture is missing at {tiny}")
    sparse = pytest.importorskip("scipy.sparse", reason="scipy is installed by scripts/setup")
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n\n".join(f"Paragraph {i}: codes leave nsae as a sparse matrix for numpy and scipy." for i in range(60)))
    script = "\n".join([
        f'gpt2 = load gpt2 "{tiny}"',
        f'c = load text "{corpus}"',
        f'acts = harvest gpt2 c hook=attn.hook_z layers=0..1 tokens=640 context=32 out="{tmp_path}/acts"',
        "s = sae relu acts expansion=4 alpha=1e-4",
        "train s acts steps=5 batch=64",
        f'save s "{tmp_path}/sae"',
        f'encode s acts layer=1 tokens=300 out="{tmp_path}/codes.safetensors"',
    ]) + "\n"
    proc = subprocess.run([nsae_binary(), "run", "-", "--json"], input=script, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads(proc.stdout.splitlines()[-1])["value"]

    f, metadata = read_safetensors(tmp_path / "codes.safetensors")
    assert metadata["format"] == "csr" and metadata["hook_name"] == "blocks.1.attn.hook_z"
    d_sae = int(metadata["d_sae"])
    n = f["token_ids"].shape[0]
    assert n == 300 and f["row_offsets"].shape == (n + 1,) and f["row_offsets"].dtype == np.int64
    assert f["feature"].dtype == np.int32 and f["value"].dtype == np.float32
    codes = sparse.csr_matrix((f["value"], f["feature"], f["row_offsets"]), shape=(n, d_sae)).toarray()

    # The reference: the store's first 300 non-BOS rows through the saved SAE, c = relu((x − b_dec)·W_enc + b_enc).
    x, ids, pos, doc, bos = read_store(tmp_path / "acts", "blocks.1.attn.hook_z")
    assert x.shape[1] == 32, "hook_z is stored as n_heads·d_head"
    rows = np.flatnonzero(bos == 0)[:n]
    assert np.all(ids[np.flatnonzero(bos)] == 50256)
    weights, _ = read_safetensors(tmp_path / "sae" / "blocks.1.attn.hook_z" / "sae_weights.safetensors")
    expected = np.maximum((x[rows] - weights["b_dec"]) @ weights["W_enc"] + weights["b_enc"], 0)
    assert expected.shape == codes.shape
    np.testing.assert_allclose(codes, expected, rtol=1e-4, atol=1e-5)
    assert (codes > 0).sum() == f["value"].shape[0], "only non-zeros are stored"
    assert np.all(f["token_ids"] == ids[rows]) and np.all(f["positions"] == pos[rows])
    assert np.all(f["document_index"] == doc[rows]) and np.all(f["store_row"] == rows)
    row_of = summary["rows"][0]
    assert row_of[2] == n and row_of[3] == f["value"].shape[0]
