"""bfloat16's NumPy dtype comes from ml_dtypes, imported on first use (its import takes most of a second with
ml_dtypes 0.7): `import tensorlib` leaves it out, and bfloat16 works the same whenever it is loaded, including
on arrays another library made after importing ml_dtypes itself."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(code):
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_import_tensorlib_does_not_import_ml_dtypes_and_bfloat16_loads_it():
    assert _run("""
        import sys
        import tensorlib as tl
        print('ml_dtypes' in sys.modules)
        x = tl.ones(3, dtype=tl.float32, requires_grad=True)
        print(x.is_floating_point(), x.half().dtype, 'ml_dtypes' in sys.modules)
        b = x.bfloat16()
        print('ml_dtypes' in sys.modules, b.dtype, b.is_floating_point(), b.requires_grad)
        b.sum().backward()
        print(x.grad.tolist() == [1.0, 1.0, 1.0], b.bfloat16() is b, tl.finfo(tl.bfloat16).eps)
    """) == ["False", "True", "tensorlib.float16", "False", "True", "tensorlib.bfloat16", "True", "True",
             "True", "True", "0.0078125"]


def test_a_bfloat16_array_from_another_library_after_tensorlib():
    assert _run("""
        import tensorlib as tl
        import ml_dtypes, numpy as np
        a = np.arange(4, dtype=ml_dtypes.bfloat16)
        t = tl.from_numpy(a)
        u = tl.tensor(a, requires_grad=True)
        print(t.dtype, u.dtype, u.requires_grad, t.sum().item(), t.float().tolist() == [0.0, 1.0, 2.0, 3.0])
    """) == ["tensorlib.bfloat16", "tensorlib.bfloat16", "True", "6.0", "True"]


def test_ml_dtypes_imported_before_tensorlib():
    assert _run("""
        import ml_dtypes, numpy as np
        import tensorlib as tl
        from tensorlib import _dtype
        print(_dtype.BF16 == np.dtype(ml_dtypes.bfloat16), tl.tensor(np.ones(2, ml_dtypes.bfloat16)).dtype)
    """) == ["True", "tensorlib.bfloat16"]


def test_loading_a_bfloat16_file_in_a_fresh_process(tmp_path):
    path = tmp_path / "bf16.pt"
    _run(f"""
        import tensorlib as tl
        tl.save({{'w': tl.arange(3, dtype=tl.float32).bfloat16()}}, {str(path)!r})
    """)
    assert _run(f"""
        import sys
        import tensorlib as tl
        w = tl.load({str(path)!r})['w']
        print(w.dtype, w.float().tolist() == [0.0, 1.0, 2.0])
    """) == ["tensorlib.bfloat16", "True"]
