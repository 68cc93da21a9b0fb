"""NumPy reference implementations the nn tests compare against (written independently of tensorlib)."""
import numpy as np


def conv2d(x, w, b=None, stride=(1, 1), pad=(0, 0, 0, 0), dil=(1, 1), groups=1):
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[1]), (pad[2], pad[3])))
    OH = (xp.shape[2] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    OW = (xp.shape[3] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((N, O, OH, OW))
    for o in range(O):
        g = o // (O // groups)
        for i in range(OH):
            for j in range(OW):
                patch = xp[:, g * Cg:(g + 1) * Cg, i * stride[0]:i * stride[0] + dil[0] * (kh - 1) + 1:dil[0],
                           j * stride[1]:j * stride[1] + dil[1] * (kw - 1) + 1:dil[1]]
                y[:, o, i, j] = (patch * w[o]).sum((1, 2, 3)) + (0 if b is None else b[o])
    return y


def conv_transpose2d(x, w, b=None, stride=(1, 1), pad=(0, 0), out_pad=(0, 0), dil=(1, 1), groups=1):
    """Scatter form: every input pixel adds its weighted kernel into the output."""
    N, Cin, H, W = x.shape
    _, Cg, kh, kw = w.shape
    Ho = (H - 1) * stride[0] - 2 * pad[0] + dil[0] * (kh - 1) + out_pad[0] + 1
    Wo = (W - 1) * stride[1] - 2 * pad[1] + dil[1] * (kw - 1) + out_pad[1] + 1
    full = np.zeros((N, Cg * groups, Ho + 2 * pad[0] + kh * dil[0], Wo + 2 * pad[1] + kw * dil[1]))
    cin_g = Cin // groups
    for c in range(Cin):
        g = c // cin_g
        for i in range(H):
            for j in range(W):
                for a in range(kh):
                    for bb in range(kw):
                        full[:, g * Cg:(g + 1) * Cg, i * stride[0] + a * dil[0], j * stride[1] + bb * dil[1]] += \
                            x[:, c, i, j][:, None] * w[c, :, a, bb][None]
    y = full[:, :, pad[0]:pad[0] + Ho, pad[1]:pad[1] + Wo]
    return y + (0 if b is None else b[None, :, None, None])


def pool2d(x, k, s, p, fn, pad_value):
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=pad_value)
    OH = (H + 2 * p - k) // s + 1
    OW = (W + 2 * p - k) // s + 1
    y = np.zeros((N, C, OH, OW))
    for i in range(OH):
        for j in range(OW):
            y[:, :, i, j] = fn(xp[:, :, i * s:i * s + k, j * s:j * s + k], axis=(2, 3))
    return y


def log_softmax(x, axis):
    m = x.max(axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis, keepdims=True))


def lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
    gates = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    i, f, g, o = np.split(gates, 4, axis=-1)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    c2 = sig(f) * c + sig(i) * np.tanh(g)
    return sig(o) * np.tanh(c2), c2


def gru_cell(x, h, w_ih, w_hh, b_ih, b_hh):
    gi = x @ w_ih.T + b_ih
    gh = h @ w_hh.T + b_hh
    ir, iz, inn = np.split(gi, 3, axis=-1)
    hr, hz, hn = np.split(gh, 3, axis=-1)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    r, z = sig(ir + hr), sig(iz + hz)
    n = np.tanh(inn + r * hn)
    return (1 - z) * n + z * h
