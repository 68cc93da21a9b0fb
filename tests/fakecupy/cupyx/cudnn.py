"""cupyx.cudnn (fake) fails to import as the real one does on a machine without cuDNN 8: CuPy 13's
module cannot load libcudnn.so.8 (no CuPy wheel brings it), and CuPy 14 has no such module. The cuDNN
path itself is tested with cupy._cudnn_fake put in its place (tests/tensorlib/test_cudnn_paths.py)."""
from cupy import _api

if _api.RULES == "13":
    raise ImportError("libcudnn.so.8: cannot open shared object file: No such file or directory")
raise ModuleNotFoundError("No module named 'cupyx.cudnn'", name="cupyx.cudnn")
