"""torch.hub: pretrained weights by URL into torch's cache, and entry points of a local hubconf.py.

`load_state_dict_from_url` (and `utils.model_zoo.load_url`) downloads to `get_dir()/checkpoints` (torch's
directory: `$TORCH_HOME/hub`, `$TORCH_HOME` defaulting to `$XDG_CACHE_HOME/torch` or `~/.cache/torch`, so weights
torch already downloaded are found and not fetched again), checks the SHA-256 prefix in the file name with
`check_hash`, and loads with `tensorlib.load`: PyTorch's own state-dict files load without torch. Unlike torch's,
`weights_only` defaults to True: a file from the network is unpickled by the weights-only unpickler unless the
caller asks otherwise. The download streams through `safeio.atomic_open` (a failed or corrupt download leaves no
file behind). `load(..., source="local")` imports a directory's hubconf.py and calls its entry point, as torch's;
GitHub sources are refused with a clear error (they download and run a repository's code)."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import warnings
from typing import Any
from urllib.parse import urlparse
from urllib.request import Request, urlopen

from safeio import atomic_open

__all__ = ["get_dir", "set_dir", "download_url_to_file", "load_state_dict_from_url", "load", "list", "help"]

HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
READ_DATA_CHUNK = 128 * 1024
_hub_dir: str | None = None


def _get_torch_home() -> str:
    return os.path.expanduser(os.getenv("TORCH_HOME",
                                        os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch")))


def get_dir() -> str:
    """torch.hub.get_dir: set_dir's directory, else `$TORCH_HOME/hub`."""
    if os.getenv("TORCH_HUB"):
        warnings.warn("TORCH_HUB is deprecated, please use env TORCH_HOME instead", stacklevel=2)
    if _hub_dir is not None:
        return _hub_dir
    return os.path.join(_get_torch_home(), "hub")


def set_dir(d) -> None:
    global _hub_dir
    _hub_dir = os.path.expanduser(os.fspath(d))


def download_url_to_file(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
    """torch.hub.download_url_to_file: `url`'s bytes to `dst`, streamed into a temporary file renamed over dst
    at the end (safeio.atomic_open); with `hash_prefix`, the SHA-256 digest must start with it (torch's error
    otherwise, and no file). `progress` prints the byte count to stderr as the download goes (torch draws a bar)."""
    dst = os.path.expanduser(dst)
    req = Request(url, headers={"User-Agent": "torch.hub"})
    with urlopen(req) as u, atomic_open(dst, what="download") as f:      # noqa: S310 (the caller's URL)
        size = u.headers.get("Content-Length")
        total = int(size) if size and size.isdigit() else None
        sha256 = hashlib.sha256() if hash_prefix is not None else None
        done = 0
        while True:
            buffer = u.read(READ_DATA_CHUNK)
            if not buffer:
                break
            f.write(buffer)
            if sha256 is not None:
                sha256.update(buffer)
            done += len(buffer)
            if progress:
                sys.stderr.write(f"\r{done / 2 ** 20:.1f} MiB" + (f" / {total / 2 ** 20:.1f} MiB" if total else ""))
        if progress:
            sys.stderr.write("\n")
        if sha256 is not None and hash_prefix is not None:
            digest = sha256.hexdigest()
            if digest[:len(hash_prefix)] != hash_prefix:
                raise RuntimeError(f'invalid hash value (expected "{hash_prefix}", got "{digest}")')


def load_state_dict_from_url(url: str, model_dir: str | None = None, map_location=None, progress: bool = True,
                             check_hash: bool = False, file_name: str | None = None,
                             weights_only: bool = True) -> Any:
    """torch.hub.load_state_dict_from_url: the object saved at `url`, downloaded once into `model_dir`
    (default get_dir()/checkpoints) under its file name (or `file_name`), then `tensorlib.load`ed."""
    if os.getenv("TORCH_MODEL_ZOO"):
        warnings.warn("TORCH_MODEL_ZOO is deprecated, please use env TORCH_HOME instead", stacklevel=2)
    if model_dir is None:
        model_dir = os.path.join(get_dir(), "checkpoints")
    os.makedirs(model_dir, exist_ok=True)
    filename = file_name if file_name is not None else os.path.basename(urlparse(url).path)
    cached_file = os.path.join(model_dir, filename)
    if not os.path.exists(cached_file):
        sys.stdout.write(f'Downloading: "{url}" to {cached_file}\n')
        hash_prefix = None
        if check_hash:
            r = HASH_REGEX.search(filename)
            hash_prefix = r.group(1) if r else None
        download_url_to_file(url, cached_file, hash_prefix, progress=progress)
    from .serialization import load as _load
    return _load(cached_file, map_location=map_location, weights_only=weights_only)


def _local_hubconf(repo_or_dir: str):
    path = os.path.join(repo_or_dir, "hubconf.py")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"hubconf.py not found in {repo_or_dir!r} (source='local' needs a directory with "
                                "one)")
    spec = importlib.util.spec_from_file_location("hubconf", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, repo_or_dir)         # as torch's: the repository's own modules import from there
    try:
        spec.loader.exec_module(module)
    finally:
        try:
            sys.path.remove(repo_or_dir)
        except ValueError:
            pass
    missing = [m for m in getattr(module, "dependencies", []) if importlib.util.find_spec(m) is None]
    if missing:
        raise RuntimeError(f"Missing dependencies: {', '.join(missing)}")
    return module


def _refuse_remote(source):
    if source == "github":
        raise NotImplementedError("tensorlib.hub: GitHub sources are not supported (torch downloads the repository "
                                  "and runs its hubconf.py); clone it and call hub.load(path, model, "
                                  "source='local')")
    if source != "local":
        raise ValueError(f'Unknown source: "{source}". Allowed values: "github" | "local".')


def _entry(module, model):
    if not isinstance(model, str):
        raise ValueError("Invalid input: model should be a string of function name")
    func = getattr(module, model, None)
    if func is None or not callable(func):
        raise RuntimeError(f"Cannot find callable {model} in hubconf")
    return func


def load(repo_or_dir: str, model: str, *args, source: str = "github", trust_repo=None, force_reload: bool = False,
         verbose: bool = True, skip_validation: bool = False, **kwargs):
    """torch.hub.load for source='local': `model` of the directory's hubconf.py called with args and kwargs.
    trust_repo, force_reload, verbose and skip_validation are torch's options of a GitHub download (the
    cache, the trust prompt, the branch check), refused here with the source; torch's source='local' ignores
    them as well."""
    _refuse_remote(source)
    return _entry(_local_hubconf(os.path.expanduser(repo_or_dir)), model)(*args, **kwargs)


def list(github: str, force_reload: bool = False, skip_validation: bool = False, trust_repo=None,  # noqa: A001
         verbose: bool = True):
    """torch.hub.list: the entry points of a hubconf.py, of a local directory here (GitHub refused: so
    force_reload, skip_validation, trust_repo and verbose, which only steer a GitHub download, have none to
    steer)."""
    module = _local_or_refuse(github)
    return [f for f in dir(module) if callable(getattr(module, f)) and not f.startswith("_")
            and f != "dependencies"]


def help(github: str, model: str, force_reload: bool = False, skip_validation: bool = False,  # noqa: A001
         trust_repo="check"):
    """torch.hub.help: the docstring of a hubconf.py's entry point, of a local directory here (GitHub refused;
    force_reload, skip_validation and trust_repo steer only a GitHub download)."""
    return _entry(_local_or_refuse(github), model).__doc__


def _local_or_refuse(github):
    path = os.path.expanduser(github)
    if not os.path.isdir(path):
        _refuse_remote("github")
    return _local_hubconf(path)

