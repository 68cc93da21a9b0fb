"""A stand-in for `requests` (pytorch/examples' gcn and gat import it at the top to download Cora): nothing
here reaches the network. `get` serves only the URLs the harness registered in `SERVED` (url -> local file:
the synthetic Cora archive that tests/programs/harness.py writes, since gcn/main.py downloads it on every run
while gat/main.py skips the download when the files are there); any other use raises."""
from __future__ import annotations

import os

SERVED: dict[str, str] = {}


class _Response:
    """What `with requests.get(url, stream=True) as r: tarfile.open(fileobj=r.raw)` reads: the file's bytes."""

    def __init__(self, path):
        self.raw = open(path, "rb")     # noqa: SIM115 - closed by __exit__, as requests' Response
        self.status_code = 200

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.raw.close()

    def raise_for_status(self):
        return None


def get(url, *args, **kwargs):
    path = SERVED.get(url)
    if path is None or not os.path.isfile(path):
        raise RuntimeError(f"tests/programs/stubs/requests: no network here; get({url!r}) was not registered by "
                           f"the harness")
    return _Response(path)


def __getattr__(name):
    raise RuntimeError(f"tests/programs/stubs/requests: requests.{name} is not available (no network here)")
