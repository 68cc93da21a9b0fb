"""Nsight Systems support: run a script under ``nsys`` with NVTX on, and turn an nsys SQLite export
into our Kineto-compatible Chrome trace."""

from profiler.nsys.convert import convert_export, import_nsys
from profiler.nsys.run import NsysError, find_nsys, run_nsys
from profiler.nsys.schema import NsysImportError

__all__ = ["NsysError", "NsysImportError", "convert_export", "find_nsys", "import_nsys", "run_nsys"]
