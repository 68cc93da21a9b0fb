"""A stand-in for `tqdm` (not a dependency): llama2.c's tinystories.py imports `tqdm` at the top for its
download and pretokenize stages, which the training run never calls. `tqdm(iterable)` gives the iterable back
and draws no bar."""
from __future__ import annotations


class tqdm:  # noqa: N801 - tqdm's own name
    def __init__(self, iterable=None, *args, **kwargs):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def update(self, n=1):
        return None

    def set_description(self, desc=None, refresh=True):
        return None
