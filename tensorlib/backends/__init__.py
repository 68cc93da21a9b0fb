"""torch.backends-style switches: `cudnn` selects convolution algorithms on CUDA, `cuda.matmul.allow_tf32`
and `cudnn.allow_tf32` the TF32 math of float32 GEMMs there, `mkl` says whether large CPU GEMMs run on
Intel MKL, `mkldnn` whether float32 CPU convolutions run on oneDNN (and turns it off), `mps` says there is no
Metal backend."""
from . import cuda, cudnn, mkl, mkldnn, mps
