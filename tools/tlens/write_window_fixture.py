"""Writes Tests/ActivationsTests/Fixtures/saelens_windows.json: documents (as token ids) and the windows SAELens's
`concat_and_batch_sequences` builds from them with its GPT-2 settings (prepend_bos=True → begin_batch_token_id =
50256; sequence_separator_token="bos" → sequence_separator_token_id = 50256; begin_sequence_token_id None), the rule
nsae pins in design §5. The cases are chosen so documents end exactly at window boundaries (where a naive
"join with 50256, cut into T−1 pieces" differs), include empty documents, documents starting with 50256 and 50256
inside a document.
Usage: /work/venv-tlens/bin/python tools/tlens/write_window_fixture.py   (a Python with sae-lens installed)
"""
import json
import os
import random

import sae_lens
import torch
from sae_lens.tokenization_and_batching import concat_and_batch_sequences

EOT = 50256
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "ActivationsTests", "Fixtures", "saelens_windows.json")


def saelens_windows(docs, T):
    it = (torch.tensor(d, dtype=torch.long) for d in docs)
    return [w.tolist() for w in concat_and_batch_sequences(it, context_size=T, begin_batch_token_id=EOT,
                                                            sequence_separator_token_id=EOT)]


def main():
    rng = random.Random(16)
    ids = lambda n: [rng.randrange(1, 50000) for _ in range(n)]
    cases = []
    # T = 8: a window holds BOS + 7 tokens. "boundary" documents fill a window exactly (alone or after a separator).
    cases.append({"name": "documents ending at window boundaries", "context": 8,
                  "documents": [ids(7), ids(3), ids(3), ids(7), ids(14), ids(2), ids(6), ids(5), ids(1), ids(20)]})
    cases.append({"name": "empty documents and 50256 in documents", "context": 5,
                  "documents": [ids(4), [], [EOT] + ids(3), ids(2), [], ids(5) + [EOT] + ids(4), [EOT], ids(8),
                                ids(3) + [EOT], ids(4)]})
    cases.append({"name": "50256 starting a document inside a window", "context": 6,
                  "documents": [ids(2), [EOT] + ids(2), ids(1), [EOT], ids(3), [EOT] + ids(7), ids(2), [EOT, EOT] + ids(3)]})
    lengths = [rng.choice([1, 2, 3, 7, 15, 16, 31, 40, 63, 64, 100]) for _ in range(200)]
    cases.append({"name": "200 documents of lengths around multiples of 16", "context": 16,
                  "documents": [ids(n) for n in lengths]})
    cases.append({"name": "200 documents, T = 64", "context": 64, "documents": [ids(n) for n in lengths]})
    for case in cases:
        case["windows"] = saelens_windows(case["documents"], case["context"])
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"tool": f"sae_lens {sae_lens.__version__} concat_and_batch_sequences", "cases": cases}, f)
    print(f"wrote {OUT}: " + ", ".join(f"{c['name']}: {len(c['windows'])} windows" for c in cases))


if __name__ == "__main__":
    main()
