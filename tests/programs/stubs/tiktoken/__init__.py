"""A stand-in for tiktoken (not a dependency; its BPE tables are downloaded on first use): `get_encoding("gpt2")`
gives a byte-level encoding, each UTF-8 byte one token (0-255) and "<|endoftext|>" GPT-2's 50256 where
`allowed_special` allows it, so that LLMs-from-scratch's data loaders and samplers run on its own text with a
model whose vocabulary is 256 (or GPT-2's 50257). encode refuses a special token not allowed, as tiktoken does."""
from __future__ import annotations

ENDOFTEXT = "<|endoftext|>"


class Encoding:
    def __init__(self, name):
        self.name = name
        self.n_vocab = 50257
        self.eot_token = 50256

    def encode(self, text, *, allowed_special=frozenset(), disallowed_special="all"):
        if allowed_special == "all":
            allowed_special = {ENDOFTEXT}
        parts = text.split(ENDOFTEXT)
        if len(parts) > 1 and ENDOFTEXT not in allowed_special:
            raise ValueError(f"Encountered text corresponding to disallowed special token {ENDOFTEXT!r}.")
        out: list[int] = []
        for i, part in enumerate(parts):
            if i:
                out.append(self.eot_token)
            out.extend(part.encode("utf-8"))
        return out

    def decode(self, tokens):
        pieces, buf = [], bytearray()
        for t in tokens:
            if t < 256:
                buf.append(t)
                continue
            pieces.append(buf.decode("utf-8", errors="replace"))
            buf = bytearray()
            pieces.append(ENDOFTEXT if t == self.eot_token else "\ufffd")
        pieces.append(buf.decode("utf-8", errors="replace"))
        return "".join(pieces)


def get_encoding(name):
    if name != "gpt2":
        raise ValueError(f"Unknown encoding {name}: the tiktoken stand-in has only 'gpt2' (byte-level)")
    return Encoding(name)
