"""tensorlib.hub (torch.hub) and utils.model_zoo: weights by URL into the cache (file:// and a local HTTP server:
no network needed), the SHA-256 check, the cache found again, weights-only loading by default, a local
hubconf.py's entry points, and the GitHub refusal."""
import hashlib
import http.server
import os
import threading

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import hub, nn
from tensorlib.utils import model_zoo


@pytest.fixture
def hub_dir(tmp_path):
    hub.set_dir(tmp_path / "hub")
    yield tmp_path
    hub._hub_dir = None


def _saved_linear(tmp_path):
    m = nn.Linear(3, 2)
    tl.save(m.state_dict(), tmp_path / "lin.pt")
    digest = hashlib.sha256((tmp_path / "lin.pt").read_bytes()).hexdigest()
    named = tmp_path / f"lin-{digest[:8]}.pt"
    os.rename(tmp_path / "lin.pt", named)
    return m, named, digest


def test_weights_by_url_cached_and_hash_checked(hub_dir, capsys):
    m, named, digest = _saved_linear(hub_dir)
    assert hub.get_dir() == str(hub_dir / "hub")
    sd = hub.load_state_dict_from_url(named.as_uri(), check_hash=True, progress=False)
    fresh = nn.Linear(3, 2)
    fresh.load_state_dict(sd)
    np.testing.assert_array_equal(fresh.weight.detach().numpy(), m.weight.detach().numpy())
    cached = hub_dir / "hub" / "checkpoints" / named.name
    assert cached.is_file() and "Downloading" in capsys.readouterr().out
    os.remove(named)                               # the cache answers now: no second download
    assert set(model_zoo.load_url(named.as_uri(), progress=False)) == {"weight", "bias"}
    assert "Downloading" not in capsys.readouterr().out
    bad = hub_dir / "lin-deadbeef.pt"
    os.rename(cached, bad)
    with pytest.raises(RuntimeError, match=f'invalid hash value \\(expected "deadbeef", got "{digest}"\\)'):
        hub.load_state_dict_from_url(bad.as_uri(), check_hash=True, progress=False)
    assert not (hub_dir / "hub" / "checkpoints" / bad.name).exists()      # nothing left of a bad download


def test_download_over_http_and_weights_only_default(hub_dir):
    m, named, _ = _saved_linear(hub_dir)
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(hub_dir))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{named.name}"
        dst = hub_dir / "copy.pt"
        hub.download_url_to_file(url, str(dst), progress=False)
        assert dst.read_bytes() == named.read_bytes()
        sd = hub.load_state_dict_from_url(url, file_name="other.pt", progress=False)
        assert sorted(sd) == ["bias", "weight"]
    finally:
        server.shutdown()
    evil = nn.Linear(3, 2)                      # a whole module needs weights_only=False, as tensorlib.load
    tl.save(evil, hub_dir / "module.pt")
    with pytest.raises(Exception, match="weights_only"):
        hub.load_state_dict_from_url((hub_dir / "module.pt").as_uri(), file_name="m2.pt", progress=False)


def test_local_hubconf_entry_points_and_github_refusal(tmp_path):
    (tmp_path / "hubconf.py").write_text(
        "dependencies = ['numpy']\n"
        "import tensorlib.nn as nn\n"
        "def tiny(width=4):\n"
        "    '''A tiny model.'''\n"
        "    return nn.Linear(width, 1)\n")
    model = hub.load(str(tmp_path), "tiny", width=3, source="local")
    assert isinstance(model, nn.Linear) and model.in_features == 3
    assert "tiny" in hub.list(str(tmp_path)) and hub.help(str(tmp_path), "tiny") == "A tiny model."
    with pytest.raises(RuntimeError, match="Cannot find callable nope in hubconf"):
        hub.load(str(tmp_path), "nope", source="local")
    with pytest.raises(NotImplementedError, match="GitHub sources are not supported"):
        hub.load("pytorch/vision", "resnet18")
    with pytest.raises(ValueError, match='Unknown source: "web"'):
        hub.load(str(tmp_path), "tiny", source="web")
    (tmp_path / "hubconf.py").write_text("dependencies = ['no_such_module_here']\n")
    with pytest.raises(RuntimeError, match="Missing dependencies: no_such_module_here"):
        hub.load(str(tmp_path), "tiny", source="local")
