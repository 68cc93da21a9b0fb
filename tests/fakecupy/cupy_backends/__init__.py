"""cupy_backends (fake): where CuPy defines its CUDA runtime bindings and their error class."""
