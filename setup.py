"""The compiled parts: the hot paths in C (tensorlib/_native.py describes them), built on Linux with the
interpreter's own headers and nothing else. optional=True: where no C compiler is found the package installs
without them and runs their Python twins, the same results at a higher cost per op. Everything
else is in pyproject.toml."""
import sys

from setuptools import Extension, setup

FLAGS = ["-O2", "-std=gnu99", "-Wall", "-Wno-unused-parameter"]
ext_modules = []
if sys.platform.startswith("linux"):
    ext_modules = [Extension(name, [name.replace(".", "/") + ".c"], optional=True, extra_compile_args=FLAGS,
                             depends=["tensorlib/_native_common.h", "tensorlib/_native_slots.h",
                                      "tensorlib/_records_api.h", "tensorlib/_range_api.h",
                                      "tensorlib/_state_api.h"])
                   for name in ("tensorlib._cstate", "tensorlib._crecorded", "tensorlib._cexecute",
                                "tensorlib.autograd._cengine", "tensorlib._cmath", "profiler._crecord")]

setup(ext_modules=ext_modules)
