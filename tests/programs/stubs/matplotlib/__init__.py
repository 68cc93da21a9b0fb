"""A stand-in for the matplotlib calls time_sequence_prediction makes (matplotlib is not a dependency):
`use()` accepts a backend name, `pyplot` draws nothing and writes no file."""
from __future__ import annotations


def use(backend, force=True):
    if not isinstance(backend, str):
        raise TypeError(f"matplotlib.use: backend must be a str, got {type(backend).__name__}")
