"""Whole-model save/load as torch >= 2.6 does it, and hostile pickles refused before they run (issue 13, item 3).

The hostile files are pickles written opcode by opcode (the helpers below), so each test says exactly
what the file asks for; a payload that would create a marker file proves it never ran.
"""
import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np
import orjson
import pytest

import tensorlib as tl
from tensorlib import nn, optim, serialization
from tensorlib.serialization import WeightsOnlyUnpicklingError, safe_globals


class MyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(x))


MYNET_CLASSES = [MyNet, nn.Linear, nn.ReLU]


@pytest.fixture(autouse=True)
def _no_user_globals():
    serialization.clear_safe_globals()
    yield
    serialization.clear_safe_globals()


def _saved(obj, **kw) -> io.BytesIO:
    buf = io.BytesIO()
    tl.save(obj, buf, **kw)
    buf.seek(0)
    return buf


# --- pickle opcodes, by hand ---------------------------------------------------------------------

def g(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def s(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def i(n):
    return b"J" + struct.pack("<i", n)


def tup(*items):
    return b"(" + b"".join(items) + b"t"


def call(func, *args):
    return func + tup(*args) + b"R"


def pkl(*body):
    return b"\x80\x02" + b"".join(body) + b"."


def _archive_with_pickle(data: bytes, tensors=()) -> io.BytesIO:
    """A tensorlib archive (format version 2) whose data.pkl is `data`; `tensors` become .npy entries."""
    metas, out = [], io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n, arr in enumerate(tensors):
            npy = io.BytesIO()
            np.save(npy, arr)
            z.writestr(f"tensors/{n}.npy", npy.getvalue())
            metas.append({"file": f"tensors/{n}.npy", "dtype": str(arr.dtype), "shape": list(arr.shape)})
        z.writestr("manifest.json", orjson.dumps({"format": "tensorlib.save", "version": 2, "root": {"P": "data.pkl"},
                                                  "tensors": metas}))
        z.writestr("data.pkl", data)
    out.seek(0)
    return out


def _refused(data: bytes, match: str, **kw):
    with pytest.raises(WeightsOnlyUnpicklingError, match=match) as e:
        tl.load(_archive_with_pickle(data, **kw))
    msg = str(e.value)
    assert msg.startswith("tensorlib.load: '<BytesIO>': data.pkl: Weights only load failed") and "\n" not in msg
    return msg


# --- whole models --------------------------------------------------------------------------------

def test_whole_model_is_refused_by_default_with_torchs_message():
    buf = _saved(MyNet())
    with pytest.raises(pickle.UnpicklingError) as e:
        tl.load(buf)
    msg = str(e.value)
    assert isinstance(e.value, RuntimeError)
    assert ("Unsupported global: GLOBAL tests.tensorlib.test_serialization_pickle.MyNet was not an allowed global by "
            "default. Please use `tensorlib.serialization.add_safe_globals([tests.tensorlib.test_serialization_pickle"
            ".MyNet])` or the `tensorlib.serialization.safe_globals([tests.tensorlib.test_serialization_pickle.MyNet])"
            "` context manager to allowlist this global if you trust this class/function.") in msg
    assert "Re-running `tensorlib.load` with `weights_only` set to `False` will likely succeed" in msg


def test_whole_model_loads_with_its_classes_allowed_and_computes_the_same():
    m = MyNet()
    x = tl.randn(4, 3)
    buf = _saved(m)
    assert serialization.get_unsafe_globals_in_checkpoint(buf) == [
        "tests.tensorlib.test_serialization_pickle.MyNet", "tensorlib.nn.modules.linear.Linear",
        "tensorlib.nn.modules.activation.ReLU"]
    buf.seek(0)
    with safe_globals(MYNET_CLASSES):
        assert serialization.get_safe_globals() and set(serialization.get_safe_globals()) == set(MYNET_CLASSES)
        got = tl.load(buf)
    assert serialization.get_safe_globals() == []          # the context manager removed them again
    assert type(got) is MyNet and isinstance(got.fc.weight, nn.Parameter) and got.fc.weight.requires_grad
    np.testing.assert_array_equal(got(x).detach().numpy(), m(x).detach().numpy())
    got(x).sum().backward()                                  # a working module: autograd reaches its parameters
    assert got.fc.weight.grad is not None


def test_add_safe_globals_and_the_pair_form():
    serialization.add_safe_globals([MyNet, nn.Linear])
    serialization.add_safe_globals([(nn.ReLU, "tensorlib.nn.modules.activation.ReLU")])
    assert type(tl.load(_saved(MyNet()))) is MyNet
    serialization.clear_safe_globals()
    assert serialization.get_safe_globals() == []
    with pytest.raises(WeightsOnlyUnpicklingError):
        tl.load(_saved(MyNet()))


def test_weights_only_false_loads_anything_the_user_trusts():
    got = tl.load(_saved({"model": MyNet(), "n": 3}), weights_only=False)
    assert type(got["model"]) is MyNet and got["n"] == 3
    got = tl.load(_saved(MyNet()), weights_only=False, pickle_module=pickle)
    assert type(got) is MyNet


def test_model_and_optimizer_checkpoint_resumes_training():
    """torch's resume pattern: save {'model': m, 'optimizer': opt}; the loaded optimizer steps the loaded
    model's parameters (one object per parameter through the archive) exactly as the original would."""
    torch_like = [MyNet, nn.Linear, nn.ReLU, optim.Adam, collections.defaultdict, dict]
    m = MyNet()
    opt = optim.Adam(m.parameters(), lr=0.1)
    x = tl.randn(5, 3)
    m(x).sum().backward()
    opt.step()
    with safe_globals(torch_like):
        ck = tl.load(_saved({"model": m, "optimizer": opt, "epoch": 1}))
    m2, opt2 = ck["model"], ck["optimizer"]
    assert opt2.param_groups[0]["params"][0] is m2.fc.weight
    for model, o in ((m, opt), (m2, opt2)):
        o.zero_grad()
        model(x).sum().backward()
        o.step()
    np.testing.assert_array_equal(m2.fc.weight.detach().numpy(), m.fc.weight.detach().numpy())


def test_tensors_are_npy_entries_never_pickled():
    w = tl.randn(3, 3)
    buf = _saved({"net": MyNet(), "w": w, "again": w, "arr": np.arange(4), "s": {1, 2}})
    z = zipfile.ZipFile(buf)
    manifest = orjson.loads(z.read("manifest.json"))
    assert manifest["version"] == 2 and manifest["root"] == {"P": "data.pkl"}
    assert len(manifest["tensors"]) == 4            # fc.weight, fc.bias, w (once), arr
    assert b"numpy" not in z.read("data.pkl") and b"_data" not in z.read("data.pkl")
    with safe_globals(MYNET_CLASSES):
        got = tl.load(io.BytesIO(buf.getvalue()))
    assert got["w"] is got["again"] and got["s"] == {1, 2} and got["arr"].tolist() == [0, 1, 2, 3]
    assert pickle.loads(pickle.dumps(w)).tolist() == w.tolist()     # a plain pickle of one works, as torch's


def test_plain_state_dicts_are_torchs_format_and_other_plain_values_json_without_pickle():
    z = zipfile.ZipFile(_saved(MyNet().state_dict()))
    assert "archive/data.pkl" in z.namelist() and "manifest.json" not in z.namelist()     # torch.load reads it
    z = zipfile.ZipFile(_saved({"w": tl.ones(2), "raw": b"bytes", "dtype": tl.float16}))
    assert "data.pkl" not in z.namelist() and orjson.loads(z.read("manifest.json"))["version"] == 1


def test_pickle_module_argument():
    buf = _saved({"w": tl.ones(2)})
    with pytest.raises(RuntimeError, match="Can not safely load weights when explicit pickle_module is specified"):
        tl.load(buf, pickle_module=pickle, weights_only=True)
    # as torch: with a pickle_module and no weights_only, weights_only is False
    assert tl.load(buf, pickle_module=pickle)["w"].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="pickle_module must be None or the pickle module"):
        tl.load(buf, pickle_module=orjson, weights_only=False)
    with pytest.raises(ValueError, match="pickle_module must be None or the pickle module"):
        tl.save({}, io.BytesIO(), pickle_module=orjson)
    assert tl.load(buf, pickle_module=pickle, weights_only=False)["w"].tolist() == [1.0, 1.0]
    with pytest.warns(UserWarning, match="pickle_load_args only works if `weights_only=False`"):
        tl.load(io.BytesIO(buf.getvalue()), encoding="latin1")


def test_protocol_3_is_written_and_read():
    got = tl.load(_saved({"b": b"\x00\xff", "s": {1}}, pickle_protocol=3))
    assert got == {"b": b"\x00\xff", "s": {1}}


# --- hostile pickles -----------------------------------------------------------------------------

def _touch(marker):
    return f"touch {marker}"


def test_os_system_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    payload = pkl(call(g("os", "system"), s(_touch(marker))))
    pickle.loads(payload)                        # the payload is real: plain pickle runs it
    assert marker.exists()
    marker.unlink()
    _refused(payload, "Trying to load unsupported GLOBAL os.system whose module os is blocked")
    assert not marker.exists()
    for module in ("posix", "nt", "sys"):
        _refused(pkl(call(g(module, "system"), s(_touch(marker)))), f"whose module {module} is blocked")
    with safe_globals([os.system, (os.system, "os.system")]):     # blocked even when a user allows it
        _refused(payload, "whose module os is blocked")
    assert not marker.exists()


@pytest.mark.parametrize("module,name,shown", [
    ("builtins", "eval", "eval"), ("__builtin__", "eval", "eval"), ("builtins", "exec", "exec"),
    ("builtins", "getattr", "getattr"), ("builtins", "__import__", "__import__"),
    ("subprocess", "Popen", "subprocess.Popen"), ("shutil", "rmtree", "shutil.rmtree"),
    ("numpy.core.multiarray", "_reconstruct", "numpy.core.multiarray._reconstruct"),
    ("tensorlib.nn.modules.linear", "Linear", "tensorlib.nn.modules.linear.Linear"),
])
def test_globals_outside_the_allowlist_are_refused(tmp_path, module, name, shown):
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').close()"
    _refused(pkl(call(g(module, name), s(code))), rf"GLOBAL {shown} was not an allowed global by default")
    assert not marker.exists()


def test_getattr_trick_is_refused_before_the_allowed_part_runs(tmp_path):
    """builtins.getattr(os, 'system') reached through an allowed call first: the scan refuses the whole
    pickle before even the allowed function (here a recorder the user allowed) is called."""
    calls = []

    def recorder(*args):
        calls.append(args)
        return args

    marker = tmp_path / "pwned"
    payload = pkl(call(g(recorder.__module__, recorder.__qualname__), s("first")), b"0",
                  call(call(g("builtins", "getattr"), call(g("builtins", "__import__"), s("os")), s("system")),
                       s(_touch(marker))))
    with safe_globals([(recorder, f"{recorder.__module__}.{recorder.__qualname__}")]):
        _refused(payload, "GLOBAL getattr was not an allowed global")
    assert calls == [] and not marker.exists()


@pytest.mark.parametrize("payload,match", [
    # protocol 4's STACK_GLOBAL, protocol 0's INST and OBJ, EXT1: each imports without a GLOBAL
    (b"\x80\x04X\x02\x00\x00\x00osX\x06\x00\x00\x00system\x93X\x04\x00\x00\x00true\x85R.",
     "Unsupported operand 147"),
    (b"(X\x04\x00\x00\x00trueios\nsystem\n.", "Unsupported operand 105"),
    (b"(cos\nsystem\nX\x04\x00\x00\x00trueo.", "whose module os is blocked"),
    (b"\x80\x02\x82\x01.", "Unsupported operand 130"),
    (b"\x80\x02P1\n.", "Unsupported operand 80"),                        # PERSID with a text id
    # REDUCE on something that is not an allowed global: a list, a tensor from the archive
    (pkl(b"]", b")R"), "Trying to call reduce for unrecognized function"),
    (pkl(tup(s("tensor"), b"K\x00"), b"Q)R"), "Trying to call reduce for unrecognized function"),
    # BUILD on a non-allowed instance; NEWOBJ of a non-allowed class; APPEND/SETITEM on the wrong type
    (pkl(tup(s("tensor"), b"K\x00"), b"Q}", s("_data"), s("x"), b"sb"), "Can only build OrderedDict or types"),
    (pkl(b"]", b")\x81"), "Can only create new object for classes allowlisted"),
    (pkl(b"}", b"K\x01a"), "Can only append to lists"),
    (pkl(tup(s("tensor"), b"K\x00"), b"Q", s("k"), b"K\x01s"), "Can only SETITEM for dict"),
    # persistent ids outside the archive
    (pkl(tup(s("file"), s("/etc/passwd")), b"Q"), "Only persistent_load of tensorlib's tensor and array entries"),
    (pkl(s("/etc/passwd"), b"Q"), "persistent_load id must be tuple or int"),
])
def test_hostile_opcodes_are_refused(payload, match):
    _refused(payload, match, tensors=[np.ones(2, np.float32)])


def test_persistent_id_beyond_the_archive_is_refused():
    with pytest.raises(RuntimeError, match="refers to tensor 7, which is not in the file"):
        tl.load(_archive_with_pickle(pkl(tup(s("tensor"), b"K\x07"), b"Q"), tensors=[np.ones(2, np.float32)]))


def test_damaged_pickles_are_one_line_runtime_errors():
    for data, match in ((b"\x80\x02]", "pickle is damaged|ends before"), (pkl(b"h\x05"), "Memo value not found"),
                        (pkl(b"a"), "pops an empty stack"), (pkl(b"t"), "closes a MARK it never opened")):
        with pytest.raises(RuntimeError, match=match) as e:
            tl.load(_archive_with_pickle(data))
        assert not isinstance(e.value, pickle.UnpicklingError) and "\n" not in str(e.value)


def test_memory_bomb_is_refused_within_its_budget():
    """1 MiB of EMPTY_DICT (a 70 MiB object graph) stops at the budget: 32x the file's size."""
    data = b"\x80\x02" + b"}" * (1 << 20) + b"."
    buf = _archive_with_pickle(data)
    with pytest.raises(RuntimeError, match="builds more than the .* bytes of objects .* memory bomb"):
        tl.load(buf)
