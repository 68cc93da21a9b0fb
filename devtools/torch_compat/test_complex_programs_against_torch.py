"""llama2.c (tests/programs/vendor/llama2c) against torch 2.13 beyond its losses (which
test_programs_against_torch.py compares with every program's): the model.bin that Transformer.export writes
at the last evaluation - the trained weights, and the complex64 rotary buffer's `.real` and `.imag` views
flattened by `.view(-1)` - from the same run on both sides (torch's initial weights, the shared random stream).
Measured: header identical, weights within 1.2e-7, frequencies within 6e-8. Then FNO's and S4D's spectral layers,
as their public code writes them, trained side by side (no program of theirs could be vendored, see below)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.programs import harness


def test_llama2c_exports_the_same_model_as_torch(tmp_path):
    pytest.importorskip("torch")
    ref = harness.run("llama2c", "torch", tmp_path / "torch", 6, rng="shared", init="dump")
    ours = harness.run("llama2c", "tensorlib", tmp_path / "tensorlib", 6, rng="shared", init="load",
                       init_file=tmp_path / "torch" / "init.npz")
    np.testing.assert_allclose(ours["losses"], ref["losses"], rtol=1e-5)
    theirs = (tmp_path / "torch" / "out" / "model.bin").read_bytes()
    mine = (tmp_path / "tensorlib" / "out" / "model.bin").read_bytes()
    assert len(mine) == len(theirs) and mine[:28] == theirs[:28]      # 7 int32: dim, hidden, layers, ...
    a, b = np.frombuffer(mine[28:], np.float32), np.frombuffer(theirs[28:], np.float32)
    freqs = 2 * 16 * (32 // 4) // 2                                    # real and imag, max_seq_len x head_dim / 2
    np.testing.assert_allclose(a[-freqs:], b[-freqs:], rtol=0, atol=1e-7)
    np.testing.assert_allclose(a[:-freqs], b[:-freqs], rtol=0, atol=1e-6)


# No vendorable CPU-runnable Fourier Neural Operator program was found (zongyi-li/fourier_neural_operator's scripts
# call .cuda() and read 1000-sample .mat files by constants): its spectral layer, and S4D's kernel
# (state-spaces/s4 models/s4/s4d.py, whose example.py needs pytorch_lightning and einops), as those files write
# them, trained side by side instead.
def _fno_and_s4d(L, rng):
    """One model: a lift, FNO's SpectralConv2d (complex `torch.rand(..., dtype=torch.cfloat)` weights, rfft2,
    `out_ft[:, :, :m1, :m2] = einsum("bixy,ioxy->boxy", ...)` into complex zeros, irfft2 with s) plus a 1x1
    convolution, FNO's SpectralConv1d (rfft / einsum "bix,iox->box" / irfft with n) over the flattened grid, and
    S4D's kernel (view_as_complex of a real parameter, `-exp(log_A_real) + 1j * A_imag`, complex exp and
    division, einsum "hn,hnl->hl" then .real) convolved through rfft(n=2L) / irfft."""
    nn, F = L.nn, L.nn.functional

    class SpectralConv2d(nn.Module):
        def __init__(self, i, o, m1, m2):
            super().__init__()
            self.o, self.m1, self.m2 = o, m1, m2
            self.weights1 = nn.Parameter(L.tensor(_cw(rng, i, o, m1, m2)))
            self.weights2 = nn.Parameter(L.tensor(_cw(rng, i, o, m1, m2)))

        def forward(self, x):
            x_ft = L.fft.rfft2(x)
            out_ft = L.zeros(x.shape[0], self.o, x.size(-2), x.size(-1) // 2 + 1, dtype=L.cfloat, device=x.device)
            out_ft[:, :, :self.m1, :self.m2] = L.einsum("bixy,ioxy->boxy", x_ft[:, :, :self.m1, :self.m2],
                                                        self.weights1)
            out_ft[:, :, -self.m1:, :self.m2] = L.einsum("bixy,ioxy->boxy", x_ft[:, :, -self.m1:, :self.m2],
                                                         self.weights2)
            return L.fft.irfft2(out_ft, s=(x.size(-2), x.size(-1)))

    class SpectralConv1d(nn.Module):
        def __init__(self, i, o, m):
            super().__init__()
            self.o, self.m = o, m
            self.weights1 = nn.Parameter(L.tensor(_cw(rng, i, o, m)))

        def forward(self, x):
            x_ft = L.fft.rfft(x)
            out_ft = L.zeros(x.shape[0], self.o, x.size(-1) // 2 + 1, device=x.device, dtype=L.cfloat)
            out_ft[:, :, :self.m] = L.einsum("bix,iox->box", x_ft[:, :, :self.m], self.weights1)
            return L.fft.irfft(out_ft, n=x.size(-1))

    class S4DConv(nn.Module):
        def __init__(self, H, N):
            super().__init__()
            self.C = nn.Parameter(L.tensor(rng.standard_normal((H, N // 2, 2)).astype(np.float32)))
            self.log_dt = nn.Parameter(L.tensor(rng.uniform(np.log(1e-3), np.log(1e-1), H).astype(np.float32)))
            self.log_A_real = nn.Parameter(L.log(0.5 * L.ones(H, N // 2)))
            self.A_imag = nn.Parameter(np.pi * L.arange(N // 2).float().unsqueeze(0).repeat(H, 1))

        def forward(self, u):
            Lu = u.size(-1)
            dt = L.exp(self.log_dt)
            C = L.view_as_complex(self.C)
            A = -L.exp(self.log_A_real) + 1j * self.A_imag
            dtA = A * dt.unsqueeze(-1)
            K = dtA.unsqueeze(-1) * L.arange(Lu, device=A.device)
            C = C * (L.exp(dtA) - 1.) / A
            k = 2 * L.einsum('hn, hnl -> hl', C, L.exp(K)).real
            y = L.fft.irfft(L.fft.rfft(u, n=2 * Lu) * L.fft.rfft(k, n=2 * Lu), n=2 * Lu)[..., :Lu]
            return y

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Linear(3, 6)
            self.conv2 = SpectralConv2d(6, 6, 3, 3)
            self.w = nn.Conv2d(6, 6, 1)
            self.conv1 = SpectralConv1d(6, 6, 5)
            self.s4d = S4DConv(6, 8)
            self.q = nn.Linear(6, 1)

        def forward(self, x):
            x = self.p(x).permute(0, 3, 1, 2)
            x = F.gelu(self.conv2(x) + self.w(x))
            b, c, h, w = x.shape
            flat = x.reshape(b, c, h * w)
            x = x + (self.conv1(flat) + self.s4d(flat)).reshape(b, c, h, w)
            return self.q(x.permute(0, 2, 3, 1))

    return Net()


def _cw(rng, *shape):
    """FNO's init, scale * torch.rand(..., dtype=torch.cfloat): uniform real and imaginary parts."""
    return ((rng.random(shape) + 1j * rng.random(shape)) / (shape[0] * shape[1])).astype(np.complex64)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "SGD"])
def test_fno_and_s4d_layers_train_as_torch(name):
    """Same initial weights (from one NumPy stream) on both sides, 5 steps of FNO's relative L2 loss with its
    optimizer settings (Adam, weight_decay=1e-4) or AdamW / SGD with momentum, and CosineAnnealingLR: losses within
    1e-6 relative (measured 1.6e-7), every parameter (complex ones included) within 2e-6 after the steps (measured
    4.8e-7), complex64 kept."""
    torch = pytest.importorskip("torch")
    import tensorlib as tl
    data = np.random.default_rng(1)
    x, y = data.standard_normal((3, 8, 8, 3)).astype(np.float32), data.standard_normal((3, 8, 8, 1)).astype(np.float32)
    out = []
    for L in (torch, tl):
        L.manual_seed(0)
        net = _fno_and_s4d(L, np.random.default_rng(0))
        with L.no_grad():           # Linear / Conv2d weights from the same stream too
            init = np.random.default_rng(2)
            for n, p in net.named_parameters():
                if n.startswith(("p.", "w.", "q.")):
                    p.copy_(L.tensor(init.uniform(-0.3, 0.3, tuple(p.shape)).astype(np.float32)))
        kw: dict = dict(lr=1e-2, weight_decay=1e-4)
        if name == "SGD":
            kw.update(momentum=0.9)
        opt = getattr(L.optim, name)(net.parameters(), **kw)
        sched = L.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
        xt, yt = L.tensor(x), L.tensor(y)
        losses = []
        for _ in range(5):
            opt.zero_grad()
            o = net(xt)
            diff = L.norm(o.reshape(3, -1) - yt.reshape(3, -1), 2, 1)
            loss = (diff / L.norm(yt.reshape(3, -1), 2, 1)).sum()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        out.append((losses, {n: p.detach().numpy() for n, p in net.named_parameters()}))
    (ref_losses, theirs), (our_losses, ours) = out[0], out[1]      # torch first
    np.testing.assert_allclose(our_losses, ref_losses, rtol=1e-6)
    assert our_losses[-1] < our_losses[0]
    assert set(ours) == set(theirs)
    for n in theirs:
        assert ours[n].dtype == theirs[n].dtype, n
        np.testing.assert_allclose(ours[n], theirs[n], rtol=0, atol=2e-6, err_msg=n)
    assert theirs["conv2.weights1"].dtype == np.complex64
