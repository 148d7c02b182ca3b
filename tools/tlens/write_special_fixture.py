"""Writes Tests/GPT2Tests/Fixtures/special_tokens.json: texts holding the literal <|endoftext|> and their ids from
Hugging Face's GPT-2 tokenizer, which maps the literal to 50256 (as TransformerLens's to_tokens does), and with
`split_special_tokens=True`, which reads it as ordinary text (tiktoken's encode_ordinary, nsae's default).
Usage: /work/venv-tlens/bin/python tools/tlens/write_special_fixture.py
"""
import json
import os

from transformers import GPT2TokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(HERE, "..", "..", "..", "shared", "data", "gpt2-tiny")
OUT = os.path.join(HERE, "..", "..", "Tests", "GPT2Tests", "Fixtures", "special_tokens.json")

TEXTS = [
    "first document<|endoftext|>second document",
    "<|endoftext|>starts with it",
    "ends with it <|endoftext|>",
    "two<|endoftext|><|endoftext|>in a row",
    " spaced <|endoftext|> around\n<|endoftext|>\nlines",
    "no special token here",
    "almost <|endoftext| and <|endof text|>",
]


def main():
    tok = GPT2TokenizerFast.from_pretrained(TINY)
    cases = [{"text": t, "special": tok(t)["input_ids"], "ordinary": tok(t, split_special_tokens=True)["input_ids"]}
             for t in TEXTS]
    with open(OUT, "w") as f:
        json.dump({"tool": f"transformers {__import__('transformers').__version__} GPT2TokenizerFast", "cases": cases}, f, indent=1)
    print(f"wrote {OUT}: {len(cases)} texts")


if __name__ == "__main__":
    main()
