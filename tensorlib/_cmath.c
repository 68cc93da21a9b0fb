/* tensorlib._cmath: exp and tanh of float32 arrays with AVX2 (Linux, x86-64), where NumPy's are scalar loops;
 * layer_norm's forward and backward over rows (below: small arrays, where NumPy's dozen calls cost most).
 *
 * NumPy dispatches its SIMD float32 exp only to CPUs with the whole x86-64-v3 set (AVX2, FMA3, BMI1/2, F16C, ...);
 * on a CPU that lacks one of them (as some cloud VMs report) it runs libm's expf element by element, about 2 ns an
 * element, where torch's vectorised exp (Sleef) takes a fraction of that: a language model's softmax over its
 * vocabulary spends most of its time there. exp_f32(x, out) computes out = exp(x) for C-contiguous float32
 * buffers of one length, 8 lanes at a time when the CPU has AVX2 and FMA, by Sleef's exp (sleef_exp8, below: torch's
 * Vectorized<float>::exp, within 1 ulp; overflow, results below FLT_MIN, inf and NaN as libm's expf gives them), the
 * tail by libm's expf. tanh_f32(x, out) likewise (Cephes' tanhf on Cephes' expf, exp8: within 1 ulp; NaN and the
 * tail by libm's tanhf). `available()` says whether the vector path runs on this CPU.
 *
 * tensorlib/ops/_fastmath.py decides when to use it (and falls back to NumPy without it); tests/tensorlib/
 * test_fastmath.py checks it against NumPy's float64 exp over the float32 range and at the special values.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>
#include <stdint.h>
#include <limits.h>
#include "_native_common.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

static int use_avx2 = 0;
/* torch's Vectorized<float> lanes on this CPU (its CPU capability: AVX-512 where the CPU has F, BW, DQ and VL, else
 * AVX2): the order of its vectorised sums and where its scalar tails start (torch_sum, sigmoid_torch);
 * torch_lanes(w) sets it (ops/_fastmath: ATEN_CPU_CAPABILITY) */
static int torch_w = 8;

#if HAVE_X86
/* ---- torch's vectorised float32 exp: Vectorized<float>::exp, Sleef_expf8_u10 / Sleef_expf16_u10 -----------------
 * torch's softmax, sigmoid and its other CPU kernels written on Vectorized<float> take their exp from Sleef
 * (torch.exp's own op runs on MKL VML: ops/_fastmath.vml). Sleef's xexpf in its FMA build, lane by lane the same
 * steps, gives its values to the bit: q = rint(d / ln 2), d - q ln 2 in two fused parts, a degree-6 polynomial, 2^q
 * applied as two factors (results down to the subnormals); 0 below -104, inf above 100, NaN kept. (Sleef's constants
 * and order of steps, src/libm/sleefsimdsp.c xexpf: Copyright Naoki Shibata and contributors 2010-2023, Boost
 * Software License 1.0.) */
__attribute__((target("avx2,fma"))) static inline __m256 pow2i8(__m256i q)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(q, _mm256_set1_epi32(0x7f)), 23));
}

__attribute__((target("avx2,fma"))) static inline __m256 sleef_exp8(__m256 d)
{
    __m256i q = _mm256_cvtps_epi32(_mm256_mul_ps(d, _mm256_set1_ps(1.442695040888963407359924681001892137f)));
    __m256 qf = _mm256_cvtepi32_ps(q);
    __m256 s = _mm256_fmadd_ps(qf, _mm256_set1_ps(-0.693145751953125f), d);
    s = _mm256_fmadd_ps(qf, _mm256_set1_ps(-1.428606765330187045e-06f), s);
    __m256 u = _mm256_set1_ps(0.000198527617612853646278381f);
    u = _mm256_fmadd_ps(u, s, _mm256_set1_ps(0.00139304355252534151077271f));
    u = _mm256_fmadd_ps(u, s, _mm256_set1_ps(0.00833336077630519866943359f));
    u = _mm256_fmadd_ps(u, s, _mm256_set1_ps(0.0416664853692054748535156f));
    u = _mm256_fmadd_ps(u, s, _mm256_set1_ps(0.166666671633720397949219f));
    u = _mm256_fmadd_ps(u, s, _mm256_set1_ps(0.5f));
    u = _mm256_add_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(_mm256_mul_ps(s, s), u, s));
    __m256i h = _mm256_srai_epi32(q, 1);
    u = _mm256_mul_ps(_mm256_mul_ps(u, pow2i8(h)), pow2i8(_mm256_sub_epi32(q, h)));
    u = _mm256_andnot_ps(_mm256_cmp_ps(d, _mm256_set1_ps(-104.0f), _CMP_LT_OQ), u);
    return _mm256_blendv_ps(u, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(_mm256_set1_ps(100.0f), d, _CMP_LT_OQ));
}

/* exp of 8 lanes already within [-87, 88] (Cephes' expf: the range reduced by ln 2 in two parts, a degree-5
 * polynomial, the exponent put in by integer addition; within 2 ulp): tanh8's, whose argument is clamped to [0, 18]
 * -- cheaper there than sleef_exp8's full-range steps (a tanh of 256K elements 0.22 against 0.34 ms) */
__attribute__((target("avx2,fma"))) static inline __m256 exp8(__m256 c)
{
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f), half = _mm256_set1_ps(0.5f);
    const __m256 c1 = _mm256_set1_ps(0.693359375f), c2 = _mm256_set1_ps(-2.12194440e-4f);
    __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(c, log2e, half));
    __m256 r = _mm256_fnmadd_ps(fx, c1, c);
    r = _mm256_fnmadd_ps(fx, c2, r);
    __m256 r2 = _mm256_mul_ps(r, r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(1.9875691500E-4f), r, _mm256_set1_ps(1.3981999507E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* tanh of 8 lanes (Cephes' tanhf on exp8): |x| < 0.625 by x + x^3 P(x^2), else sign(x) (1 - 2 / (exp(2|x|) + 1)),
 * and +-1 from |x| = 9 on (as libm's tanhf in float32); NaN lanes are marked in *bad for libm */
__attribute__((target("avx2,fma"))) static inline __m256 tanh8(__m256 v, int *bad)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
    *bad = _mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    __m256 a = _mm256_andnot_ps(sign, v);
    __m256 z = _mm256_mul_ps(v, v);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(-5.70498872745E-3f), z, _mm256_set1_ps(2.06390887954E-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531E-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036E-1f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422E-1f));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), v, v);
    __m256 e = exp8(_mm256_mul_ps(two, _mm256_min_ps(a, _mm256_set1_ps(9.0f))));
    __m256 big = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(e, one)));
    big = _mm256_blendv_ps(big, one, _mm256_cmp_ps(a, _mm256_set1_ps(9.0f), _CMP_GE_OQ));    /* 1 - 3e-8 rounds to 1 */
    __m256 t = _mm256_blendv_ps(big, _mm256_andnot_ps(sign, small), _mm256_cmp_ps(a, _mm256_set1_ps(0.625f),
                                                                                  _CMP_LT_OQ));
    return _mm256_or_ps(t, _mm256_and_ps(v, sign));     /* tanh's sign is x's (-0 included) */
}

__attribute__((target("avx2,fma"))) static void tanh_avx2(const float *x, float *y, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        int bad;
        __m256 out = tanh8(v, &bad);
        if (bad) {      /* (the inputs kept first: y may be x) */
            float in[8], res[8];
            _mm256_storeu_ps(in, v);
            _mm256_storeu_ps(res, out);
            for (int k = 0; k < 8; k++)
                if (bad & (1 << k))
                    res[k] = tanhf(in[k]);
            out = _mm256_loadu_ps(res);
        }
        _mm256_storeu_ps(y + i, out);
    }
    for (; i < n; i++)
        y[i] = tanhf(x[i]);
}

/* exp of x[0..n) into y (y may be x): Sleef's (torch's Vectorized<float>::exp) over whole vectors, libm's expf on the
 * tail, as NumPy's loop leaves it */
__attribute__((target("avx2,fma"))) static void exp_avx2(const float *x, float *y, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, sleef_exp8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++)
        y[i] = expf(x[i]);
}
#endif

#if HAVE_X86
/* the first n < 8 lanes (a partial Vectorized load/store: Vec::loadu(ptr, count), store(ptr, count)); the other
 * lanes 0 on load, untouched in memory on store */
__attribute__((target("avx2,fma"))) static inline __m256i lanes8(Py_ssize_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

__attribute__((target("avx2,fma"))) static inline __m256 load_part8(const float *x, Py_ssize_t n)
{
    return _mm256_maskload_ps(x, lanes8(n));
}

__attribute__((target("avx2,fma"))) static inline void store_part8(float *y, __m256 v, Py_ssize_t n)
{
    _mm256_maskstore_ps(y, lanes8(n), v);
}

/* torch_sum's end for n >= w elements whose whole vectors' lane sums are lo (lanes 0-7) and hi (8-15, 16 lanes): the
 * `rest` < w elements after them into the first lanes, then the halves added pairwise */
__attribute__((target("avx2,fma"))) static float torch_sum_rest(__m256 lo, __m256 hi, const float *rest, Py_ssize_t n,
                                                                int w)
{
    float acc[16];
    _mm256_storeu_ps(acc, lo);
    _mm256_storeu_ps(acc + 8, hi);
    for (Py_ssize_t l = 0; l < n; l++)
        acc[l] += rest[l];
    for (int half = w / 2; half >= 1; half /= 2)
        for (int l = 0; l < half; l++)
            acc[l] += acc[l + half];
    return acc[0];
}

/* The sum of e[0..n), n > 0, in the order of torch's vec::reduce_all over a Vectorized<float> of w lanes (16 on an
 * AVX-512 CPU, 8 on AVX2: ATen/cpu/vec/functional_base.h): below w elements one after another; else w lane sums, the
 * last partial vector into the first lanes, then the lanes' halves added pairwise (i + i + w/2, down to one) */
__attribute__((target("avx2,fma"))) static float torch_sum(const float *e, Py_ssize_t n, int w)
{
    if (n < w) {
        float s = e[0];
        for (Py_ssize_t i = 1; i < n; i++)
            s += e[i];
        return s;
    }
    __m256 lo = _mm256_loadu_ps(e), hi = w == 16 ? _mm256_loadu_ps(e + 8) : _mm256_setzero_ps();
    Py_ssize_t d = w;
    for (; d + w <= n; d += w) {
        lo = _mm256_add_ps(lo, _mm256_loadu_ps(e + d));
        if (w == 16)
            hi = _mm256_add_ps(hi, _mm256_loadu_ps(e + d + 8));
    }
    return torch_sum_rest(lo, hi, e + d, n - d, w);
}

/* exp(x[i] - m) over a row of n (sleef_exp8) and their sum in torch's lane order (torch_sum) in one pass: the whole
 * w-lane vectors' lane sums kept in registers, the rest (< w) summed from a small buffer. The exponentials are
 * written to y (softmax's) where it is not NULL, else only summed (log_softmax's map_reduce_all). */
__attribute__((target("avx2,fma"))) static float exp_row_sum(const float *x, float *y, Py_ssize_t n, float m, int w)
{
    const __m256 vmax = _mm256_set1_ps(m);
    const Py_ssize_t whole = n < w ? 0 : n - n % w;
    __m256 lo = _mm256_setzero_ps(), hi = lo;
    Py_ssize_t i;
    for (i = 0; i + 8 <= whole; i += 8) {
        __m256 e = sleef_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
        if (y != NULL)
            _mm256_storeu_ps(y + i, e);
        if (w == 16 && (i & 8))         /* (16 lanes: the 8-lane chunks alternately into lo and hi) */
            hi = _mm256_add_ps(hi, e);
        else
            lo = _mm256_add_ps(lo, e);
    }
    float rest[16] = {0};
    Py_ssize_t k = 0;
    for (; i < n; i += 8) {
        Py_ssize_t c = n - i < 8 ? n - i : 8;
        store_part8(rest + k, sleef_exp8(_mm256_sub_ps(load_part8(x + i, c), vmax)), c);
        k += c;
    }
    if (y != NULL)
        memcpy(y + whole, rest, (size_t)k * sizeof(float));
    return whole ? torch_sum_rest(lo, hi, rest, k, w) : torch_sum(rest, k, w);
}

/* Sleef's xlogf_u1 (Vectorized<float>::log: Sleef_logf16_u10 / Sleef_logf8_u10) of a positive normal float (a
 * log_softmax row's sum, in [1, n]), its FMA build's steps in scalar form: d = m 2^e with m in [0.75, 1.5), then
 * e ln 2 + 2 atanh((m - 1) / (m + 1)) in double-float arithmetic (Sleef's df.h). No contraction of its own products
 * and sums: only the fused steps Sleef writes. (Sleef: Copyright Naoki Shibata and contributors 2010-2023, Boost
 * Software License 1.0.) */
__attribute__((target("avx2,fma"), optimize("fp-contract=off"))) static float sleef_logf_u1(float d)
{
    union { float f; int32_t i; } a = {d * (1.0f / 0.75f)}, b = {d};
    const int e = ((a.i >> 23) & 0xff) - 0x7f;
    b.i += (int32_t)((uint32_t)(-e) << 23);
    const float m = b.f, ef = (float)e;
    /* s = (ln 2 as a double-float) * e */
    float sx = 0.69314718246459960938f * ef;
    float sy = fmaf(-1.904654323148236017e-09f, ef, fmaf(0.69314718246459960938f, ef, -sx));
    /* x = (m - 1) / (m + 1), both as exact double-float sums (dfadd2), divided in double-float (dfdiv) */
    float nx = -1.0f + m, nv = nx - -1.0f, ny = (-1.0f - (nx - nv)) + (m - nv);
    float dx = 1.0f + m, dv = dx - 1.0f, dy = (1.0f - (dx - dv)) + (m - dv);
    float t = 1.0f / dx, qx = nx * t;
    float u = fmaf(t, nx, -qx);
    float v = fmaf(-dy, t, fmaf(-dx, t, 1.0f));
    float qy = fmaf(qx, v, fmaf(ny, t, u));
    float x2 = qx * qx;
    float p = fmaf(fmaf(0.3027294874f, x2, 0.3996108174f), x2, 0.6666694880f);
    /* s += 2x (dfadd_vf2_vf2_vf2), then s += x^3 p (dfadd_vf2_vf2_vf) */
    float yx = qx * 2.0f, yy = qy * 2.0f;
    float s2 = sx + yx;
    sy = (((sx - s2) + yx) + sy) + yy;
    sx = s2;
    float z = (x2 * qx) * p;
    s2 = sx + z;
    sy = ((sx - s2) + z) + sy;
    return s2 + sy;
}

/* torch's float32 sigmoid_kernel on a w-lane CPU: cpu_kernel_vec's vector loop over whole pairs of vectors ((0 - x)
 * .exp(), 1 + that, its reciprocal), its scalar loop (1 / (1 + expf(-x)), libm's exp) over the last n % 2w. y may
 * be x. */
__attribute__((target("avx2,fma"))) static void sigmoid_torch(const float *x, float *y, Py_ssize_t n, int w)
{
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    Py_ssize_t vec_end = n - n % (2 * w), i = 0;
    for (; i < vec_end; i += 8) {
        __m256 e = sleef_exp8(_mm256_sub_ps(zero, _mm256_loadu_ps(x + i)));
        _mm256_storeu_ps(y + i, _mm256_div_ps(one, _mm256_add_ps(one, e)));
    }
    for (; i < n; i++)
        y[i] = 1.0f / (1.0f + expf(-x[i]));
}

/* torch's silu and silu_backward (Activation.cpp: w lanes, torch's for the CPU, two vectors a step, the rest by the
 * scalar formula with libm's expf): x / (1 + exp(-x)); dy * s * (1 + x * (1 - s)) with
 * s = 1 / (1 + exp(-x)) and 1 + x * (1 - s) one fused multiply-add, as GCC contracts it (g NULL: the forward) */
__attribute__((target("avx2,fma"), optimize("fp-contract=off"))) static void silu_torch(const float *g, const float *x,
                                                                                        float *y, Py_ssize_t n, int w)
{
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    Py_ssize_t vec_end = n - n % (2 * w), i = 0;
    for (; i < vec_end; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 d = _mm256_add_ps(one, sleef_exp8(_mm256_sub_ps(zero, v)));
        if (g == NULL) {
            _mm256_storeu_ps(y + i, _mm256_div_ps(v, d));
            continue;
        }
        __m256 s = _mm256_div_ps(one, d);
        __m256 t = _mm256_fmadd_ps(v, _mm256_sub_ps(one, s), one);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(g + i), s), t));
    }
    for (; i < n; i++) {
        if (g == NULL) {
            y[i] = x[i] / (1.0f + expf(-x[i]));
            continue;
        }
        float s = 1.0f / (1.0f + expf(-x[i]));
        y[i] = g[i] * s * fmaf(x[i], 1.0f - s, 1.0f);
    }
}
#endif

/* The buffers of args[0..count) (None: a NULL buffer where `optional` says so), each C-contiguous, of one float
 * format ('f' or 'd', *isd set for 'd'), the writable ones where `writable` says so; 0, or -1 with an error set
 * and nothing held */
static int get_buffers(PyObject *const *args, int count, Py_buffer *bufs, const char *optional, const char *writable,
                       int *isd)
{
    int got = 0;
    const char *fmt = NULL;
    for (int i = 0; i < count; i++) {
        bufs[i].obj = NULL;
        bufs[i].buf = NULL;
        if (args[i] == Py_None && optional[i] == '1')
            continue;
        int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable[i] == '1' ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(args[i], &bufs[i], flags) < 0)
            goto fail;
        got = i + 1;
        const char *f = bufs[i].format;
        if (f == NULL || (strcmp(f, "f") != 0 && strcmp(f, "d") != 0) || (fmt != NULL && strcmp(f, fmt) != 0)) {
            PyErr_SetString(PyExc_ValueError, "C-contiguous float32 or float64 buffers of one dtype");
            goto fail;
        }
        fmt = f;
    }
    *isd = fmt != NULL && fmt[0] == 'd';
    return 0;
fail:
    for (int i = 0; i < got; i++)
        if (bufs[i].obj != NULL)
            PyBuffer_Release(&bufs[i]);
    return -1;
}

static void release_buffers(Py_buffer *bufs, int count)
{
    for (int i = 0; i < count; i++)
        if (bufs[i].obj != NULL)
            PyBuffer_Release(&bufs[i]);
}

/* 0 where every buffer given of bufs[1..count) (a NULL one: an absent operand) has bufs[0]'s length and is bufs[0]
 * itself or apart from it (an in-place loop reads each element before writing it, never another's); else -1 with
 * `who`'s ValueError set and the buffers released */
static int operands_apart(Py_buffer *bufs, int count, const char *who)
{
    char *o = bufs[0].buf;
    Py_ssize_t len = bufs[0].len;
    for (int i = 1; i < count; i++) {
        char *t = bufs[i].buf;
        if (t != NULL && (bufs[i].len != len || (t != o && t < o + len && o < t + len))) {
            release_buffers(bufs, count);
            PyErr_Format(PyExc_ValueError, "%s: buffers of one length, each operand the first itself or apart from it",
                         who);
            return -1;
        }
    }
    return 0;
}

/* f(x, out): out[:] = f(x[:]) for C-contiguous float32 buffers of one length (out writable; it may be x): exp, tanh, or
 * sigmoid as torch's float32 kernel computes it (sigmoid_torch; without AVX2 its scalar formula throughout) */
enum { F_EXP, F_TANH, F_SIGMOID };
static PyObject *apply_f32(PyObject *const *args, Py_ssize_t nargs, int f)
{
    static const char *const usage[] = {"exp_f32(x, out)", "tanh_f32(x, out)", "sigmoid_f32(x, out)"};
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, usage[f]);
        return NULL;
    }
    Py_buffer bf[2];
    int isd;
    if (get_buffers(args, 2, bf, "00", "01", &isd) < 0)
        return NULL;
    if (isd || bf[0].len != bf[1].len) {
        release_buffers(bf, 2);
        PyErr_SetString(PyExc_ValueError, "two C-contiguous float32 buffers of one length");
        return NULL;
    }
    Py_ssize_t n = bf[0].len / 4;
    const float *x = bf[0].buf;
    float *y = bf[1].buf;
    Py_BEGIN_ALLOW_THREADS
#if HAVE_X86
    if (use_avx2 && f == F_SIGMOID)
        sigmoid_torch(x, y, n, torch_w);
    else if (use_avx2 && f == F_TANH)
        tanh_avx2(x, y, n);
    else if (use_avx2)
        exp_avx2(x, y, n);
    else
#endif
        for (Py_ssize_t i = 0; i < n; i++)
            y[i] = f == F_SIGMOID ? 1.0f / (1.0f + expf(-x[i])) : f == F_TANH ? tanhf(x[i]) : expf(x[i]);
    Py_END_ALLOW_THREADS
    release_buffers(bf, 2);
    Py_RETURN_NONE;
}

#if HAVE_X86
/* out[i] = x[i] > 0 ? a[i] : a[i] * s over n float32 lanes (leaky_relu: a = x; its backward: a = the gradient) */
__attribute__((target("avx2,fma"))) static void leaky_avx2(const float *x, const float *a, float *out, Py_ssize_t n,
                                                         float s)
{
    const __m256 vs = _mm256_set1_ps(s), zero = _mm256_setzero_ps();
    Py_ssize_t i;
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 va = _mm256_loadu_ps(a + i);
        __m256 pos = _mm256_cmp_ps(_mm256_loadu_ps(x + i), zero, _CMP_GT_OQ);
        _mm256_storeu_ps(out + i, _mm256_blendv_ps(_mm256_mul_ps(va, vs), va, pos));
    }
    for (; i < n; i++)
        out[i] = x[i] > 0 ? a[i] : a[i] * s;
}
#endif

/* leaky_f32(x, a, out, s): out = where(x > 0, a, a * s) over C-contiguous float32 buffers of one length, as torch's
 * leaky_relu (a is x) and leaky_relu_backward (a the gradient) compute it for every slope, NaN and infinities
 * included: one pass, where NumPy's path took two (forward: multiply, maximum) or four (backward). out may be x or
 * a. */
static PyObject *mod_leaky_f32(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "leaky_f32(x, a, out, s)");
        return NULL;
    }
    double sd = PyFloat_AsDouble(args[3]);
    if (sd == -1.0 && PyErr_Occurred())
        return NULL;
    Py_buffer bf[3];
    int isd;
    if (get_buffers(args, 3, bf, "000", "001", &isd) < 0)
        return NULL;
    if (isd || bf[0].len != bf[1].len || bf[0].len != bf[2].len) {
        release_buffers(bf, 3);
        PyErr_SetString(PyExc_ValueError, "three C-contiguous float32 buffers of one length");
        return NULL;
    }
    Py_ssize_t n = bf[0].len / 4;
    const float *x = bf[0].buf, *a = bf[1].buf;
    float *out = bf[2].buf;
    const float s = (float)sd;
    Py_BEGIN_ALLOW_THREADS
#if HAVE_X86
    if (use_avx2)
        leaky_avx2(x, a, out, n, s);
    else
#endif
        for (Py_ssize_t i = 0; i < n; i++)
            out[i] = x[i] > 0 ? a[i] : a[i] * s;
    Py_END_ALLOW_THREADS
    release_buffers(bf, 3);
    Py_RETURN_NONE;
}

static PyObject *mod_exp_f32(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return apply_f32(args, nargs, F_EXP);
}

static PyObject *mod_tanh_f32(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return apply_f32(args, nargs, F_TANH);
}

/* silu_f32(g, x, out, w): torch's silu (g None) or silu_backward (g the gradient) of C-contiguous float32 buffers of
 * one length, out writable (it may be x or g), on w lanes (torch's for the CPU: _fastmath.float_lanes); False without
 * AVX2 (nothing written: the caller's formula) */
static PyObject *mod_silu_f32(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "silu_f32(g, x, out, w)");
        return NULL;
    }
    long w = PyLong_AsLong(args[3]);
    if (w == -1 && PyErr_Occurred())
        return NULL;
    if (w != 8 && w != 16) {
        PyErr_SetString(PyExc_ValueError, "silu_f32: w is 8 or 16");
        return NULL;
    }
#if HAVE_X86
    if (!use_avx2)
        Py_RETURN_FALSE;
    Py_buffer bf[3];
    int isd;
    if (get_buffers(args, 3, bf, "100", "001", &isd) < 0)
        return NULL;
    if (isd || bf[1].len != bf[2].len || (bf[0].buf != NULL && bf[0].len != bf[1].len)) {
        release_buffers(bf, 3);
        PyErr_SetString(PyExc_ValueError, "silu_f32: C-contiguous float32 buffers of one length");
        return NULL;
    }
    Py_ssize_t n = bf[1].len / 4;
    Py_BEGIN_ALLOW_THREADS
    silu_torch(bf[0].buf, bf[1].buf, bf[2].buf, n, (int)w);
    Py_END_ALLOW_THREADS
    release_buffers(bf, 3);
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

static PyObject *mod_sigmoid_f32(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return apply_f32(args, nargs, F_SIGMOID);
}

#if HAVE_X86
/* A float32 row's max (NaN lanes ignored) and, in *nan, whether it holds a NaN: the first pass of the row loops below */
__attribute__((target("avx2,fma"))) static float row_max_avx2(const float *x, Py_ssize_t n, int *nan)
{
    __m256 vm = _mm256_set1_ps(-INFINITY), bad = _mm256_setzero_ps();
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        vm = _mm256_max_ps(vm, v);
    }
    float lanes[8], m = -INFINITY;
    _mm256_storeu_ps(lanes, vm);
    for (int k = 0; k < 8; k++)
        m = lanes[k] > m ? lanes[k] : m;
    *nan = _mm256_movemask_ps(bad) != 0;
    for (; i < n; i++) {
        *nan |= x[i] != x[i];
        m = x[i] > m ? x[i] : m;
    }
    return m;
}

/* The sum of four vector accumulators' 32 lanes, pairwise */
__attribute__((target("avx2,fma"))) static float sum4_avx2(__m256 s0, __m256 s1, __m256 s2, __m256 s3)
{
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

/* ---- log_softmax over the rows of a C-contiguous float32 array (ops/nn_ops._log_softmax_k) as torch's
 * _vec_log_softmax_lastdim computes it on a w-lane CPU: the row's max, the sum of Sleef's exp(x - max) in torch's lane
 * order (exp_row_sum: no array of exponentials written), Sleef's log of it (sleef_logf_u1), then out = (x - max) -
 * log(sum) -- torch's values to the bit. NumPy's path made three arrays the size of the input and passed over them
 * five times: a language model's (64, 32000) logits took 2.3 ms against torch's 1.2. A row with a NaN or an infinite
 * max (all -inf, or a +inf) is all NaN, as torch gives it. */
__attribute__((target("avx2,fma"))) static void log_softmax_row_avx2(const float *x, float *y, Py_ssize_t n, int w)
{
    int nan;
    const float m = row_max_avx2(x, n, &nan);
    Py_ssize_t i;
    if (nan || isinf(m)) {
        for (Py_ssize_t j = 0; j < n; j++)
            y[j] = NAN;
        return;
    }
    const float lse = sleef_logf_u1(exp_row_sum(x, NULL, n, m, w));
    const __m256 vmax = _mm256_set1_ps(m), vlse = _mm256_set1_ps(lse);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax), vlse));
    for (; i < n; i++)
        y[i] = (x[i] - m) - lse;
}
#endif

#if HAVE_X86
/* ---- softmax over the rows of a C-contiguous float32 array (ops/nn_ops._softmax_k; attention's _fused) as torch's
 * _vec_softmax_lastdim computes it on a w-lane CPU (ATen/native/cpu/SoftMaxKernel.cpp): the row's max, Sleef's
 * exp(x - max) written out (sleef_exp8, partial vectors too), their sum in torch's lane order (torch_sum), then each
 * times 1 / sum -- torch's values to the bit. A row with a NaN or a +inf is all NaN, and an all -inf row too, or all
 * 0 with `dead_zero` (attention's fully masked rows: torch's _safe_softmax). y may be x. */
__attribute__((target("avx2,fma"))) static void softmax_row_avx2(const float *x, float *y, Py_ssize_t n, int dead_zero,
                                                                int w)
{
    int nan;
    const float m = row_max_avx2(x, n, &nan);
    Py_ssize_t i;
    if (nan || isinf(m)) {
        float v = !nan && m < 0 && dead_zero ? 0.0f : NAN;
        for (Py_ssize_t j = 0; j < n; j++)
            y[j] = v;
        return;
    }
    const float r = 1.0f / exp_row_sum(x, y, n, m, w);
    const __m256 vr = _mm256_set1_ps(r);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), vr));
    for (; i < n; i++)
        y[i] = y[i] * r;
}
#endif

#if HAVE_X86
/* ---- _softmax_backward_data over the rows of C-contiguous float32 arrays (ops/nn_ops.SOFTMAX_BACKWARD, attention's
 * backward): per row s = sum(dp * p) in four vector accumulators (fused multiply-add), then out = p * (dp - s) -- one
 * pass to read the row and one to write it while it is in cache. NumPy's path (dp * p, its row sums, the subtraction
 * and the product: four passes and an array the size of the input) took 20 ms on a (2, 1800, 1800) attention's rows
 * against torch's 9. Differences from it: the order of the sum. out may be dp (in place). */
__attribute__((target("avx2,fma"))) static void softmax_bwd_row_avx2(const float *p, const float *dp, float *out,
                                                                   Py_ssize_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    Py_ssize_t i;
    for (i = 0; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(p + i), _mm256_loadu_ps(dp + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(p + i + 8), _mm256_loadu_ps(dp + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(p + i + 16), _mm256_loadu_ps(dp + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(p + i + 24), _mm256_loadu_ps(dp + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(p + i), _mm256_loadu_ps(dp + i), s0);
    float sum = sum4_avx2(s0, s1, s2, s3);
    for (; i < n; i++)
        sum += p[i] * dp[i];
    const __m256 vs = _mm256_set1_ps(sum);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(p + i), _mm256_sub_ps(_mm256_loadu_ps(dp + i), vs)));
    for (; i < n; i++)
        out[i] = p[i] * (dp[i] - sum);
}
#endif

#if HAVE_X86
/* ---- _log_softmax_backward_data over the rows of C-contiguous float32 arrays, as torch's
 * _vec_host_softmax_backward_lastdim<log_softmax> computes it on a w-lane CPU: s = the row's sum of g in torch's lane
 * order (torch_sum), then out = g - exp(y) * s with Sleef's exp (sleef_exp8, partial vectors too), fused: torch's
 * `x - y.exp() * Vec(sum)` is contracted into one fused multiply-subtract by GCC (-ffp-contract=fast, its default),
 * as it would contract the unfused intrinsics here. out may be g. */
__attribute__((target("avx2,fma"))) static void log_softmax_bwd_row_avx2(const float *g, const float *y, float *out,
                                                                       Py_ssize_t n, int w)
{
    const __m256 vs = _mm256_set1_ps(torch_sum(g, n, w));
    Py_ssize_t i;
    for (i = 0; i < n; i += 8) {
        Py_ssize_t c = n - i < 8 ? n - i : 8;
        __m256 vg = c == 8 ? _mm256_loadu_ps(g + i) : load_part8(g + i, c);
        __m256 e = sleef_exp8(c == 8 ? _mm256_loadu_ps(y + i) : load_part8(y + i, c));
        __m256 r = _mm256_fnmadd_ps(e, vs, vg);
        if (c == 8)
            _mm256_storeu_ps(out + i, r);
        else
            store_part8(out + i, r, c);
    }
}
#endif

/* softmax_backward_rows(p, dp, out, n): out = p * (dp - sum(dp * p)); log_softmax_backward_rows(g, y, out, n): out =
 * g - exp(y) * sum(g) (torch's steps, log_softmax_bwd_row_avx2) -- over rows of n elements, C-contiguous float32
 * buffers of one length (a multiple of n); out may be the gradient (dp, g), not the saved output (p, y). The vector
 * path only (available()), else RuntimeError. */
static PyObject *backward_rows_f32(PyObject *const *args, Py_ssize_t nargs, int log)
{
    const char *who = log ? "log_softmax_backward_rows" : "softmax_backward_rows";
    Py_ssize_t n;
    if (nargs != 4 || (n = PyLong_AsSsize_t(args[3])) <= 0) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, log ? "%s(g, y, out, n): n > 0" : "%s(p, dp, out, n): n > 0", who);
        return NULL;
    }
    if (!use_avx2) {
        PyErr_Format(PyExc_RuntimeError, "%s: the vector path does not run on this CPU", who);
        return NULL;
    }
    Py_buffer bf[3];
    int isd;
    if (get_buffers(args, 3, bf, "000", "001", &isd) < 0)
        return NULL;
    Py_ssize_t len = bf[0].len / 4;
    const int saved = log ? 1 : 0;      /* the saved output: out must not be it */
    if (isd || bf[0].len != bf[1].len || bf[0].len != bf[2].len || len % n || bf[2].buf == bf[saved].buf) {
        release_buffers(bf, 3);
        PyErr_Format(PyExc_ValueError, "%s: three C-contiguous float32 buffers of one length, a multiple of n (out "
                                       "apart from the saved output)", who);
        return NULL;
    }
#if HAVE_X86
    const float *a = bf[0].buf, *b = bf[1].buf;
    float *out = bf[2].buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < len / n; r++)
        if (log)
            log_softmax_bwd_row_avx2(a + r * n, b + r * n, out + r * n, n, torch_w);
        else
            softmax_bwd_row_avx2(a + r * n, b + r * n, out + r * n, n);
    Py_END_ALLOW_THREADS
#endif
    release_buffers(bf, 3);
    Py_RETURN_NONE;
}

static PyObject *mod_softmax_backward_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return backward_rows_f32(args, nargs, 0);
}

static PyObject *mod_log_softmax_backward_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return backward_rows_f32(args, nargs, 1);
}

/* softmax_rows(x, out, n, dead_zero) / log_softmax_rows(x, out, n): out = (log_)softmax of x over rows of n elements,
 * C-contiguous float32 buffers of one length (a multiple of n); softmax's out may be x (in place), log_softmax's not;
 * softmax's all -inf rows 0 where dead_zero. The vector path only (available()), else RuntimeError. */
static PyObject *rows_f32(PyObject *const *args, Py_ssize_t nargs, int log)
{
    Py_ssize_t n;
    int dead_zero = 0;
    if (nargs != 4 - log || (n = PyLong_AsSsize_t(args[2])) <= 0 || (!log && (dead_zero = PyObject_IsTrue(args[3])) < 0)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, log ? "log_softmax_rows(x, out, n): n > 0"
                                                 : "softmax_rows(x, out, n, dead_zero): n > 0");
        return NULL;
    }
    if (!use_avx2) {
        PyErr_SetString(PyExc_RuntimeError, "softmax_rows / log_softmax_rows: the vector path does not run on this CPU");
        return NULL;
    }
    Py_buffer bf[2];
    int isd;
    if (get_buffers(args, 2, bf, "00", "01", &isd) < 0)
        return NULL;
    Py_ssize_t len = bf[0].len / 4;
    if (isd || bf[0].len != bf[1].len || len % n || (log && bf[0].buf == bf[1].buf)) {
        release_buffers(bf, 2);
        PyErr_SetString(PyExc_ValueError, "two C-contiguous float32 buffers of one length, a multiple of n (log_softmax's "
                                          "apart)");
        return NULL;
    }
#if HAVE_X86
    const float *x = bf[0].buf;
    float *y = bf[1].buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < len / n; r++)
        if (log)
            log_softmax_row_avx2(x + r * n, y + r * n, n, torch_w);
        else
            softmax_row_avx2(x + r * n, y + r * n, n, dead_zero, torch_w);
    Py_END_ALLOW_THREADS
#endif
    release_buffers(bf, 2);
    Py_RETURN_NONE;
}

static PyObject *mod_softmax_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return rows_f32(args, nargs, 0);
}

static PyObject *mod_log_softmax_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return rows_f32(args, nargs, 1);
}

/* ---- layer_norm over the rows of a C-contiguous (m, n) float32/float64 array, one pass per statistic ----
 * NumPy's rows path (tensorlib/ops/norm_ops.py: a BLAS dot for the means, then a ufunc per step) makes a dozen
 * calls of about a microsecond each, which is most of a small model's layer_norm; these loops make none. Sums in
 * double: the mean, then the variance of the centred row (two passes), rstd = 1 / sqrt(var + eps). */
/* an AVX2 clone beside the baseline one, picked at load time (GCC's target_clones, through glibc's ifunc): its
 * accumulators are the same four lanes, so the same sums; no FMA contraction in either (the same bits) */
#if HAVE_X86 && defined(__GLIBC__)
#define LN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define LN_CLONES
#endif
/* the sums the norm loops' statistics take over `runs` runs of m elements `stride` apart (a layer_norm row: one run;
 * a batch_norm channel: a run an image), added into four double accumulators s[0..3], four elements at a time and
 * the rest into s[0]: of the elements (sum_runs), of their squared deviations from mean (sqdev_runs) */
#define NORM_SUMS(T)                                                                                                \
    __attribute__((optimize("O3", "fp-contract=off"), always_inline)) static inline void sum_runs_##T(              \
        const T *x, Py_ssize_t runs, Py_ssize_t stride, Py_ssize_t m, double *s)                                    \
    {                                                                                                               \
        for (Py_ssize_t i = 0; i < runs; i++, x += stride) {                                                        \
            Py_ssize_t j = 0;                                                                                       \
            for (; j + 4 <= m; j += 4) {                                                                            \
                s[0] += x[j];                                                                                       \
                s[1] += x[j + 1];                                                                                   \
                s[2] += x[j + 2];                                                                                   \
                s[3] += x[j + 3];                                                                                   \
            }                                                                                                       \
            for (; j < m; j++)                                                                                      \
                s[0] += x[j];                                                                                       \
        }                                                                                                           \
    }                                                                                                               \
    __attribute__((optimize("O3", "fp-contract=off"), always_inline)) static inline void sqdev_runs_##T(            \
        const T *x, Py_ssize_t runs, Py_ssize_t stride, Py_ssize_t m, double mean, double *s)                       \
    {                                                                                                               \
        for (Py_ssize_t i = 0; i < runs; i++, x += stride) {                                                        \
            Py_ssize_t j = 0;                                                                                       \
            for (; j + 4 <= m; j += 4) {                                                                            \
                double d0 = x[j] - mean, d1 = x[j + 1] - mean, d2 = x[j + 2] - mean, d3 = x[j + 3] - mean;           \
                s[0] += d0 * d0;                                                                                    \
                s[1] += d1 * d1;                                                                                    \
                s[2] += d2 * d2;                                                                                    \
                s[3] += d3 * d3;                                                                                    \
            }                                                                                                       \
            for (; j < m; j++) {                                                                                    \
                double d = x[j] - mean;                                                                             \
                s[0] += d * d;                                                                                      \
            }                                                                                                       \
        }                                                                                                           \
    }

NORM_SUMS(float)
NORM_SUMS(double)

#define LN_FORWARD(T)                                                                                               \
    LN_CLONES __attribute__((optimize("O3", "fp-contract=off"))) static void ln_forward_##T(                        \
        const T *x, const T *w, const T *b, double eps, T *y, T *mu, T *rstd, Py_ssize_t m, Py_ssize_t n)           \
    {                                                                                                               \
        for (Py_ssize_t i = 0; i < m; i++, x += n, y += n) {                                                        \
            double s[4] = {0, 0, 0, 0};                                                                             \
            sum_runs_##T(x, 1, n, n, s);                                                                            \
            double mean = (s[0] + s[1] + s[2] + s[3]) / (double)n;                                                  \
            s[0] = s[1] = s[2] = s[3] = 0;                                                                          \
            sqdev_runs_##T(x, 1, n, n, mean, s);                                                                    \
            double r = 1.0 / sqrt((s[0] + s[1] + s[2] + s[3]) / (double)n + eps);                                   \
            for (Py_ssize_t j = 0; j < n; j++) {                                                                    \
                double v = (x[j] - mean) * r;                                                                       \
                if (w)                                                                                              \
                    v *= w[j];                                                                                      \
                if (b)                                                                                              \
                    v += b[j];                                                                                      \
                y[j] = (T)v;                                                                                        \
            }                                                                                                       \
            mu[i] = (T)mean;                                                                                        \
            rstd[i] = (T)r;                                                                                         \
        }                                                                                                           \
    }

/* the backward from the saved statistics: xhat = (x - mu) * rstd, gxhat = g * w (or g);
 * gx = (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat)) * rstd per row; gw = sum over rows of g * xhat,
 * gb = sum of g (into acc_w/acc_b, n doubles each, zeroed by the caller) */
#define LN_BACKWARD(T)                                                                                              \
    LN_CLONES __attribute__((optimize("O3", "fp-contract=off"))) static void ln_backward_##T(                       \
        const T *g, const T *x, const T *mu, const T *rstd, const T *w, T *gx, double *acc_w, double *acc_b,        \
        Py_ssize_t m, Py_ssize_t n)                                                                                 \
    {                                                                                                               \
        for (Py_ssize_t i = 0; i < m; i++, g += n, x += n) {                                                        \
            double r = rstd[i], mean = mu[i];                                                                       \
            if (gx) {                                                                                               \
                double s1 = 0, s2 = 0;                                                                              \
                for (Py_ssize_t j = 0; j < n; j++) {                                                                \
                    double gh = w ? (double)g[j] * w[j] : (double)g[j];                                             \
                    s1 += gh;                                                                                       \
                    s2 += gh * ((x[j] - mean) * r);                                                                 \
                }                                                                                                   \
                double m1 = s1 / (double)n, m2 = s2 / (double)n;                                                    \
                T *out = gx + i * n;                                                                                \
                for (Py_ssize_t j = 0; j < n; j++) {                                                                \
                    double gh = w ? (double)g[j] * w[j] : (double)g[j];                                             \
                    out[j] = (T)((gh - m1 - (x[j] - mean) * r * m2) * r);                                           \
                }                                                                                                   \
            }                                                                                                       \
            if (acc_w)                                                                                              \
                for (Py_ssize_t j = 0; j < n; j++)                                                                  \
                    acc_w[j] += (double)g[j] * ((x[j] - mean) * r);                                                 \
            if (acc_b)                                                                                              \
                for (Py_ssize_t j = 0; j < n; j++)                                                                  \
                    acc_b[j] += g[j];                                                                               \
        }                                                                                                           \
    }

LN_FORWARD(float)
LN_FORWARD(double)
LN_BACKWARD(float)
LN_BACKWARD(double)

/* ---- batch_norm over the channels of a C-contiguous (N, C, M) float32/float64 array (NCHW's images, channels and
 * positions; tensorlib/ops/norm_ops.py): a channel's elements are N runs of M. NumPy's path makes eight passes over
 * the array (BLAS sums, then a ufunc a step); these make two or three. Sums in double, the elementwise steps in the
 * array's type. */
#define BN_FORWARD(T)                                                                                               \
    LN_CLONES __attribute__((optimize("O3", "fp-contract=off"))) static void bn_forward_##T(                        \
        const T *x, const T *w, const T *b, T *rm, T *rv, int training, double momentum, double eps, T *y, T *mu,  \
        T *rstd, Py_ssize_t n, Py_ssize_t c, Py_ssize_t m)                                                          \
    {                                                                                                               \
        const double cnt = (double)n * (double)m;                                                                   \
        for (Py_ssize_t k = 0; k < c; k++) {                                                                        \
            double mean, r;                                                                                         \
            if (training) {                                                                                         \
                double s[4] = {0, 0, 0, 0};                                                                         \
                sum_runs_##T(x + k * m, n, c * m, m, s);                                                            \
                mean = (s[0] + s[1] + s[2] + s[3]) / cnt;                                                           \
                s[0] = s[1] = s[2] = s[3] = 0;                                                                      \
                sqdev_runs_##T(x + k * m, n, c * m, m, mean, s);                                                    \
                double ss = s[0] + s[1] + s[2] + s[3];                                                              \
                r = 1.0 / sqrt(ss / cnt + eps);                                                                     \
                if (rm != NULL) {           /* the running statistics: the unbiased variance, as torch's */        \
                    rm[k] = (T)((1.0 - momentum) * rm[k] + momentum * mean);                                        \
                    rv[k] = (T)((1.0 - momentum) * rv[k] + momentum * (ss / (cnt > 1 ? cnt - 1 : 1)));              \
                }                                                                                                   \
            } else {                                                                                                \
                mean = rm[k];                                                                                       \
                r = 1.0 / sqrt((double)rv[k] + eps);                                                                \
            }                                                                                                       \
            const T mk = (T)mean, rk = (T)r;                                                                        \
            const T scale = w ? rk * w[k] : rk, shift = b ? b[k] : (T)0;                                            \
            for (Py_ssize_t i = 0; i < n; i++) {                                                                    \
                const T *p = x + (i * c + k) * m;                                                                   \
                T *q = y + (i * c + k) * m;                                                                         \
                if (b)                                                                                              \
                    for (Py_ssize_t j = 0; j < m; j++)                                                              \
                        q[j] = (p[j] - mk) * scale + shift;                                                         \
                else                                                                                                \
                    for (Py_ssize_t j = 0; j < m; j++)                                                              \
                        q[j] = (p[j] - mk) * scale;                                                                 \
            }                                                                                                       \
            mu[k] = mk;                                                                                             \
            rstd[k] = rk;                                                                                           \
        }                                                                                                           \
    }

/* the backward from the saved statistics (xhat = (x - mu) * rstd): gw = sum of g * xhat, gb = sum of g per channel;
 * gx = (g - gb / cnt - xhat * gw / cnt) * rstd * w in training, g * rstd * w in eval */
#define BN_BACKWARD(T)                                                                                              \
    LN_CLONES __attribute__((optimize("O3", "fp-contract=off"))) static void bn_backward_##T(                       \
        const T *g, const T *x, const T *mu, const T *rstd, const T *w, T *gx, T *gw, T *gb, int training,          \
        Py_ssize_t n, Py_ssize_t c, Py_ssize_t m)                                                                   \
    {                                                                                                               \
        const double cnt = (double)n * (double)m;                                                                   \
        for (Py_ssize_t k = 0; k < c; k++) {                                                                        \
            const T mk = mu[k], rk = rstd[k];                                                                       \
            double sg = 0, sgx = 0;                                                                                 \
            if (gw || gb || (gx && training))                                                                       \
                for (Py_ssize_t i = 0; i < n; i++) {                                                                \
                    const T *p = x + (i * c + k) * m, *q = g + (i * c + k) * m;                                     \
                    double a0 = 0, a1 = 0, b0 = 0, b1 = 0;                                                          \
                    Py_ssize_t j = 0;                                                                               \
                    for (; j + 2 <= m; j += 2) {                                                                    \
                        a0 += q[j];                                                                                 \
                        a1 += q[j + 1];                                                                             \
                        b0 += (double)q[j] * (double)(p[j] - mk);                                                   \
                        b1 += (double)q[j + 1] * (double)(p[j + 1] - mk);                                           \
                    }                                                                                               \
                    for (; j < m; j++) {                                                                            \
                        a0 += q[j];                                                                                 \
                        b0 += (double)q[j] * (double)(p[j] - mk);                                                   \
                    }                                                                                               \
                    sg += a0 + a1;                                                                                  \
                    sgx += b0 + b1;                                                                                 \
                }                                                                                                   \
            sgx *= rk;                                                                                              \
            if (gw)                                                                                                 \
                gw[k] = (T)sgx;                                                                                     \
            if (gb)                                                                                                 \
                gb[k] = (T)sg;                                                                                      \
            if (!gx)                                                                                                \
                continue;                                                                                           \
            const T scale = w ? rk * w[k] : rk;                                                                     \
            const T a = training ? (T)(sg / cnt) : (T)0, bb = training ? (T)(sgx / cnt) : (T)0;                     \
            for (Py_ssize_t i = 0; i < n; i++) {                                                                    \
                const T *p = x + (i * c + k) * m, *q = g + (i * c + k) * m;                                         \
                T *o = gx + (i * c + k) * m;                                                                        \
                if (training)                                                                                       \
                    for (Py_ssize_t j = 0; j < m; j++)                                                              \
                        o[j] = (q[j] - a - (p[j] - mk) * rk * bb) * scale;                                          \
                else                                                                                                \
                    for (Py_ssize_t j = 0; j < m; j++)                                                              \
                        o[j] = q[j] * scale;                                                                        \
            }                                                                                                       \
        }                                                                                                           \
    }

BN_FORWARD(float)
BN_FORWARD(double)
BN_BACKWARD(float)
BN_BACKWARD(double)

/* ---- GELU (exact, float32): tensorlib/ops/unary_math.normal_cdf32's float32 steps in its order, per element ----
 * cdf = clip(0.5 + xc P(xc²) / Q(xc²), 0, 1) with xc = clip(x, -c, c); NumPy's path makes 28 passes over the array
 * (a [4, 16, 128] GELU: 58 us forward, 105 backward). The coefficients come from Python (float32 arrays, highest
 * power first), so both paths evaluate the same polynomials; no FMA contraction, so each step rounds as NumPy's. */
__attribute__((optimize("fp-contract=off"))) static inline float cdf32(float x, const float *px, int np_,
                                                                         const float *qx, int nq, float clip)
{
    float xc = x < -clip ? -clip : (x > clip ? clip : x);
    float s = xc * xc;
    float p = s * px[0];
    p = p + px[1];
    for (int k = 2; k < np_; k++) {
        p = p * s;
        p = p + px[k];
    }
    float q = s * qx[0];
    q = q + qx[1];
    for (int k = 2; k < nq; k++) {
        q = q * s;
        q = q + qx[k];
    }
    p = p * xc;
    p = p / q;
    p = p + 0.5f;
    return p < 0.0f ? 0.0f : (p > 1.0f ? 1.0f : p);
}

#if HAVE_X86
/* cdf32 on 8 lanes (AVX2 without FMA: each multiply and add rounds as NumPy's; min/max with the lane second, so that
 * NaN goes through as np.clip lets it); pv/qv the coefficients broadcast */
__attribute__((target("avx2"), optimize("fp-contract=off"))) static inline __m256 cdf8(__m256 x, const __m256 *pv, int np_, const __m256 *qv, int nq,
                                                           __m256 clip)
{
    __m256 xc = _mm256_min_ps(clip, _mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), clip), x));
    __m256 s = _mm256_mul_ps(xc, xc);
    __m256 p = _mm256_add_ps(_mm256_mul_ps(s, pv[0]), pv[1]);
    for (int k = 2; k < np_; k++)
        p = _mm256_add_ps(_mm256_mul_ps(p, s), pv[k]);
    __m256 q = _mm256_add_ps(_mm256_mul_ps(s, qv[0]), qv[1]);
    for (int k = 2; k < nq; k++)
        q = _mm256_add_ps(_mm256_mul_ps(q, s), qv[k]);
    p = _mm256_add_ps(_mm256_div_ps(_mm256_mul_ps(p, xc), q), _mm256_set1_ps(0.5f));
    return _mm256_min_ps(_mm256_set1_ps(1.0f), _mm256_max_ps(_mm256_setzero_ps(), p));
}

/* forward (g NULL): y = cdf(x) x; backward: y = g (cdf(x) + x exp(-x²/2) k), exp by exp_avx2 (Sleef's, as
 * ops/_fastmath.exp) in a pass of its own */
__attribute__((target("avx2"), optimize("fp-contract=off"))) static void gelu_avx2(const float *g, const float *x, float *y, Py_ssize_t n,
                                                          const float *px, int np_, const float *qx, int nq, float c)
{
    __m256 pv[16], qv[16], clip = _mm256_set1_ps(c);
    for (int k = 0; k < np_; k++)
        pv[k] = _mm256_set1_ps(px[k]);
    for (int k = 0; k < nq; k++)
        qv[k] = _mm256_set1_ps(qx[k]);
    Py_ssize_t i = 0, end = n - n % 8;
    if (g == NULL) {
        for (; i < end; i += 8) {
            __m256 v = _mm256_loadu_ps(x + i);
            _mm256_storeu_ps(y + i, _mm256_mul_ps(cdf8(v, pv, np_, qv, nq, clip), v));
        }
        for (; i < n; i++)
            y[i] = cdf32(x[i], px, np_, qx, nq, c) * x[i];
        return;
    }
    const __m256 half = _mm256_set1_ps(-0.5f);
    for (i = 0; i < end; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(v, v), half));
    }
    for (; i < n; i++)
        y[i] = (x[i] * x[i]) * -0.5f;
    exp_avx2(y, y, n);
    const float kf = (float)(1.0 / sqrt(2.0 * M_PI));
    const __m256 k = _mm256_set1_ps(kf);
    for (i = 0; i < end; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 pdf = _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(y + i), v), k);
        pdf = _mm256_add_ps(pdf, cdf8(v, pv, np_, qv, nq, clip));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(pdf, _mm256_loadu_ps(g + i)));
    }
    for (; i < n; i++) {
        float pdf = (y[i] * x[i]) * kf;
        y[i] = (pdf + cdf32(x[i], px, np_, qx, nq, c)) * g[i];
    }
}
#endif

/* gelu_f32(x, out, px, qx, clip): out = x * cdf(x); gelu_backward_f32(g, x, out, px, qx, clip):
 * out = g * (cdf(x) + x exp(-x²/2) / sqrt(2 pi)), the steps of activation.GELU_BACKWARD's float32 path; 8 lanes at
 * a time with AVX2, else (or the tail) element by element */
static PyObject *gelu_common(PyObject *const *args, Py_ssize_t nargs, int backward)
{
    int na = backward ? 3 : 2;
    if (nargs != na + 3) {
        PyErr_SetString(PyExc_TypeError, backward ? "gelu_backward_f32(g, x, out, px, qx, clip)"
                                                  : "gelu_f32(x, out, px, qx, clip)");
        return NULL;
    }
    double clip = PyFloat_AsDouble(args[na + 2]);
    if (clip == -1.0 && PyErr_Occurred())
        return NULL;
    /* forward: x, out, px, qx; backward: g, x, out, px, qx (the output writable) */
    Py_buffer bf[5];
    int count = na + 2, isd;
    if (get_buffers(args, count, bf, "00000", backward ? "00100" : "0100", &isd) < 0)
        return NULL;
    Py_ssize_t n = bf[0].len / 4;
    int ok = !isd;
    for (int i = 1; i < na && ok; i++)
        ok = bf[i].len == bf[0].len;
    Py_ssize_t npx = bf[na].len / 4, nqx = bf[na + 1].len / 4;
    if (!ok || npx < 2 || nqx < 2 || npx > 16 || nqx > 16) {
        release_buffers(bf, count);
        PyErr_SetString(PyExc_ValueError, "float32 buffers of one length, and coefficients (2 to 16 each)");
        return NULL;
    }
    const float *px = bf[na].buf, *qx = bf[na + 1].buf;
    const float *g = backward ? bf[0].buf : NULL, *x = bf[na - 2].buf;
    float *y = bf[na - 1].buf, c = (float)clip;
    Py_BEGIN_ALLOW_THREADS
#if HAVE_X86
    if (use_avx2)
        gelu_avx2(g, x, y, n, px, (int)npx, qx, (int)nqx, c);
    else
#endif
    if (g == NULL)
        for (Py_ssize_t i = 0; i < n; i++)
            y[i] = cdf32(x[i], px, (int)npx, qx, (int)nqx, c) * x[i];
    else {
        const float k = (float)(1.0 / sqrt(2.0 * M_PI));
        for (Py_ssize_t i = 0; i < n; i++) {
            float xi = x[i], pdf = xi * xi;
            pdf = pdf * -0.5f;
            pdf = expf(pdf);
            pdf = pdf * xi;
            pdf = pdf * k;
            pdf = pdf + cdf32(xi, px, (int)npx, qx, (int)nqx, c);
            y[i] = pdf * g[i];
        }
    }
    Py_END_ALLOW_THREADS
    release_buffers(bf, count);
    Py_RETURN_NONE;
}

static PyObject *mod_gelu_f32(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return gelu_common(args, nargs, 0);
}

static PyObject *mod_gelu_backward_f32(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return gelu_common(args, nargs, 1);
}

/* ---- one LSTM step's pointwise part (tensorlib/ops/recurrent.LSTM_LAYER's loop body after its product) ----
 * gates (N, 4H) is the step's product by W_hh^T (halved for i, f and o when `halve`: the weight was not), x its
 * halved input projection; per gate column q (gate k = q / H): a = tanh(gates * half_k + x) * half_k + shift_k,
 * the sigmoid of i, f, o as (1 + tanh(v / 2)) / 2 and tanh of g; then c' = f c + i g and h' = o tanh(c'). The
 * NumPy loop's operations in its order (no FMA), tanh by the AVX2 loop above (ops/_fastmath.tanh's, which that
 * loop takes from 2048 elements on; below, NumPy's own tanh, within 3 ulp of it): one call for its ten. float32,
 * AVX2 CPUs only (ops/_fastmath.FAST); the caller runs the NumPy loop otherwise. */
#if HAVE_X86
static const float LSTM_HALF[4] = {0.5f, 0.5f, 1.0f, 0.5f}, LSTM_SHIFT[4] = {0.5f, 0.5f, 0.0f, 0.5f};

/* tanh_args (fn, acts, c_out, h_out): the two tanh passes by fn(a, out) instead, NumPy's own (a Python call each,
 * with the GIL): where NumPy vectorises tanh (AVX-512: 51200 float32 13 against the AVX2 loop's 31 µs) the step is
 * then the NumPy loop's to the bit. 0, or -1 with the error set. */
static int lstm_np_tanh(PyObject *fn, PyObject *a, PyObject *out)
{
    PyObject *r = PyObject_CallFunctionObjArgs(fn, a, out, NULL);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

__attribute__((optimize("O3", "fp-contract=off"))) static int lstm_step_f32(
    const float *gates, const float *x, int halve, int raw, const float *bias, float *acts, const float *c, float *c_out,
    float *h_out, Py_ssize_t n, Py_ssize_t h, PyObject *const *tanh_args)
{
    Py_ssize_t g4 = 4 * h;
    for (Py_ssize_t r = 0; r < n; r++)
        for (int k = 0; k < 4; k++) {
            float hf = LSTM_HALF[k];
            for (Py_ssize_t j = r * g4 + k * h, e = j + h; j < e; j++) {
                float v = gates[j];
                if (halve)
                    v = v * hf;
                float xv = x[j];
                if (raw) {      /* the step's input projection as given: (x + b_hh) * half here, the loop's xs */
                    if (bias)
                        xv = xv + bias[j - r * g4];
                    xv = xv * hf;
                }
                acts[j] = v + xv;
            }
        }
    if (tanh_args == NULL)
        tanh_avx2(acts, acts, n * g4);
    else if (lstm_np_tanh(tanh_args[0], tanh_args[1], tanh_args[1]) < 0)
        return -1;
    for (Py_ssize_t r = 0; r < n; r++)
        for (int k = 0; k < 4; k++) {
            float hf = LSTM_HALF[k], sh = LSTM_SHIFT[k];
            for (Py_ssize_t j = r * g4 + k * h, e = j + h; j < e; j++) {
                float a = acts[j] * hf;
                acts[j] = a + sh;
            }
        }
    for (Py_ssize_t r = 0; r < n; r++) {
        const float *a = acts + r * g4;
        for (Py_ssize_t j = 0; j < h; j++) {
            float cn = a[h + j] * c[r * h + j];
            float ig = a[j] * a[2 * h + j];
            c_out[r * h + j] = cn + ig;
        }
    }
    if (tanh_args == NULL)
        tanh_avx2(c_out, h_out, n * h);
    else if (lstm_np_tanh(tanh_args[0], tanh_args[2], tanh_args[3]) < 0)
        return -1;
    for (Py_ssize_t r = 0; r < n; r++)
        for (Py_ssize_t j = 0; j < h; j++)
            h_out[r * h + j] = acts[r * g4 + 3 * h + j] * h_out[r * h + j];
    return 0;
}
#endif

/* lstm_step(gates, x, halve, acts, c, c_out, h_out, hidden[, bias[, tanh]]): the above on C-contiguous float32 buffers,
 * gates, x and acts of N * 4H, c, c_out and h_out of N * H (H = hidden); tanh None (the AVX2 loop) or tanh(x, out)
 * on the arrays acts and c_out -> h_out (NumPy's: see lstm_np_tanh); RuntimeError without AVX2 */
static PyObject *mod_lstm_step(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 8 || nargs > 10) {
        PyErr_SetString(PyExc_TypeError, "lstm_step(gates, x, halve, acts, c, c_out, h_out, hidden[, bias[, tanh]])");
        return NULL;
    }
    PyObject *tanh_fn = nargs == 10 && args[9] != Py_None ? args[9] : NULL;
    if (tanh_fn != NULL && !PyCallable_Check(tanh_fn)) {
        PyErr_SetString(PyExc_TypeError, "lstm_step: tanh is None or a callable tanh(x, out)");
        return NULL;
    }
    if (!use_avx2) {
        PyErr_SetString(PyExc_RuntimeError, "lstm_step needs AVX2 and FMA (ops/_fastmath.FAST)");
        return NULL;
    }
    int halve = PyObject_IsTrue(args[2]);
    Py_ssize_t h = PyLong_AsSsize_t(args[7]);
    if (halve < 0 || (h == -1 && PyErr_Occurred()))
        return NULL;
    PyObject *arrs[6] = {args[0], args[1], args[3], args[4], args[5], args[6]};
    Py_buffer bf[6];
    int isd;
    if (get_buffers(arrs, 6, bf, "000000", "001011", &isd) < 0)
        return NULL;
    Py_buffer bb;       /* a 9th argument: x is the raw input projection and this b_hh (4H) or None */
    bb.obj = NULL;
    bb.buf = NULL;
    int isdb = 0;
    if (nargs >= 9 && get_buffers(args + 8, 1, &bb, "1", "0", &isdb) < 0) {
        release_buffers(bf, 6);
        return NULL;
    }
    Py_ssize_t nh = bf[3].len / 4;
    int ok = !isd && !isdb && h > 0 && nh > 0 && nh % h == 0 && bf[0].len == 4 * bf[3].len &&
             bf[1].len == bf[0].len && bf[2].len == bf[0].len && bf[4].len == bf[3].len && bf[5].len == bf[3].len &&
             (bb.obj == NULL || bb.len == 16 * h);
    if (!ok) {
        release_buffers(bf, 6);
        release_buffers(&bb, 1);
        PyErr_SetString(PyExc_ValueError, "lstm_step: float32, gates, x and acts of N * 4H, c, c_out and h_out of N * H, "
                                          "bias of 4H");
        return NULL;
    }
    int rc = 0;
#if HAVE_X86
    if (tanh_fn == NULL) {
        Py_BEGIN_ALLOW_THREADS
        lstm_step_f32(bf[0].buf, bf[1].buf, halve, nargs >= 9, bb.buf, bf[2].buf, bf[3].buf, bf[4].buf, bf[5].buf,
                      nh / h, h, NULL);
        Py_END_ALLOW_THREADS
    } else {        /* (the GIL held: the tanh passes are Python calls) */
        PyObject *targs[4] = {tanh_fn, args[3], args[5], args[6]};
        rc = lstm_step_f32(bf[0].buf, bf[1].buf, halve, nargs >= 9, bb.buf, bf[2].buf, bf[3].buf, bf[4].buf,
                           bf[5].buf, nh / h, h, targs);
    }
#endif
    release_buffers(bf, 6);
    release_buffers(&bb, 1);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ---- one LSTM step of recurrent.LSTM_LAYER_BACKWARD's loop, before its product, with the gates' slopes of
 * recurrent._lstm_gate_slopes made here from the step's activations (i, f, g, o), the cell state it read (cp) and
 * tanh of the one it wrote (tc): q = (1 - a) a per gate, then q_i *= g, q_f *= cp, q_g = (1 - g g) i, q_o *= tc;
 * p = (1 - tc tc) o. Then dh += g_out (when given); dc += dh p; d_i, d_f, d_g = dc q_i, dc q_f, dc q_g;
 * d_o = dh q_o; dc *= f -- the NumPy loop's operations in the same order (no transcendental: the same values),
 * without the slopes' passes over the whole sequence before the loop (ten, over four gates' worth each) */
#define LSTM_BACK(T)                                                                                                \
    __attribute__((optimize("O3", "fp-contract=off"))) static void lstm_back_##T(                                  \
        T *dh, T *dc, const T *g, const T *acts, const T *cp, const T *tc, T *d, Py_ssize_t n, Py_ssize_t h)       \
    {                                                                                                               \
        const T one = 1;                                                                                            \
        for (Py_ssize_t r = 0; r < n; r++) {                                                                        \
            T *hr = dh + r * h, *cr = dc + r * h, *dr = d + r * 4 * h;                                              \
            const T *ar = acts + r * 4 * h, *cpr = cp + r * h, *tcr = tc + r * h;                                   \
            for (Py_ssize_t j = 0; j < h; j++) {                                                                    \
                T i = ar[j], f = ar[h + j], gg = ar[2 * h + j], o = ar[3 * h + j], t = tcr[j];                      \
                T qi = (one - i) * i, qf = (one - f) * f, qo = (one - o) * o;                                       \
                qi = qi * gg;                                                                                       \
                qf = qf * cpr[j];                                                                                   \
                T qg = gg * gg;                                                                                     \
                qg = one - qg;                                                                                      \
                qg = qg * i;                                                                                        \
                qo = qo * t;                                                                                        \
                T p = t * t;                                                                                        \
                p = one - p;                                                                                        \
                p = p * o;                                                                                          \
                T hv = hr[j];                                                                                       \
                if (g)                                                                                              \
                    hv = hv + g[r * h + j];                                                                         \
                hr[j] = hv;                                                                                         \
                T cv = cr[j] + hv * p;                                                                              \
                dr[j] = cv * qi;                                                                                    \
                dr[h + j] = cv * qf;                                                                                \
                dr[2 * h + j] = cv * qg;                                                                            \
                dr[3 * h + j] = hv * qo;                                                                            \
                cr[j] = cv * f;                                                                                     \
            }                                                                                                       \
        }                                                                                                           \
    }

LSTM_BACK(float)
LSTM_BACK(double)

/* lstm_step_backward(dh, dc, g_out, acts, c_prev, tanh_c, d, hidden): the above on C-contiguous buffers of one
 * float dtype: dh, dc (updated in place), g_out (or None), c_prev and tanh_c of N * H; acts and d (written) of
 * N * 4H */
static PyObject *mod_lstm_step_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "lstm_step_backward(dh, dc, g_out, acts, c_prev, tanh_c, d, hidden)");
        return NULL;
    }
    Py_ssize_t h = PyLong_AsSsize_t(args[7]);
    if (h == -1 && PyErr_Occurred())
        return NULL;
    Py_buffer bf[7];
    int isd;
    if (get_buffers(args, 7, bf, "0010000", "1100001", &isd) < 0)
        return NULL;
    Py_ssize_t item = isd ? 8 : 4, nh = bf[0].len / item;
    int ok = h > 0 && nh > 0 && nh % h == 0 && bf[1].len == bf[0].len && (bf[2].obj == NULL || bf[2].len == bf[0].len)
             && bf[3].len == 4 * bf[0].len && bf[4].len == bf[0].len && bf[5].len == bf[0].len && bf[6].len == bf[3].len;
    if (!ok) {
        release_buffers(bf, 7);
        PyErr_SetString(PyExc_ValueError, "lstm_step_backward: dh, dc, g_out, c_prev and tanh_c of N * H; acts and d "
                                          "of N * 4H");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    if (isd)
        lstm_back_double(bf[0].buf, bf[1].buf, bf[2].buf, bf[3].buf, bf[4].buf, bf[5].buf, bf[6].buf, nh / h, h);
    else
        lstm_back_float(bf[0].buf, bf[1].buf, bf[2].buf, bf[3].buf, bf[4].buf, bf[5].buf, bf[6].buf, nh / h, h);
    Py_END_ALLOW_THREADS
    release_buffers(bf, 7);
    Py_RETURN_NONE;
}

/* layer_norm_rows(x, w, b, eps, y, mu, rstd): y = (x - mean) * rstd * w + b over the rows of x (m rows of n =
 * len(y) / len(mu)), w and b None or n long; mu and rstd m long */
static PyObject *mod_layer_norm_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "layer_norm_rows(x, w, b, eps, y, mu, rstd)");
        return NULL;
    }
    double eps = PyFloat_AsDouble(args[3]);
    if (eps == -1.0 && PyErr_Occurred())
        return NULL;
    PyObject *arrs[6] = {args[0], args[1], args[2], args[4], args[5], args[6]};
    Py_buffer bf[6];
    int isd;
    if (get_buffers(arrs, 6, bf, "011000", "000111", &isd) < 0)
        return NULL;
    Py_ssize_t item = isd ? 8 : 4, m = bf[4].len / item, n = m ? bf[3].len / item / m : 0;
    int ok = m > 0 && n > 0 && bf[0].len == bf[3].len && m * n * item == bf[3].len && bf[5].len == bf[4].len &&
             (bf[1].obj == NULL || bf[1].len == n * item) && (bf[2].obj == NULL || bf[2].len == n * item);
    if (!ok) {
        release_buffers(bf, 6);
        PyErr_SetString(PyExc_ValueError, "layer_norm_rows: x and y of m * n, w and b of n, mu and rstd of m");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    if (isd)
        ln_forward_double(bf[0].buf, bf[1].buf, bf[2].buf, eps, bf[3].buf, bf[4].buf, bf[5].buf, m, n);
    else
        ln_forward_float(bf[0].buf, bf[1].buf, bf[2].buf, eps, bf[3].buf, bf[4].buf, bf[5].buf, m, n);
    Py_END_ALLOW_THREADS
    release_buffers(bf, 6);
    Py_RETURN_NONE;
}

/* layer_norm_rows_backward(g, x, mu, rstd, w, gx, gw, gb): the gradients wanted (gx, gw, gb not None) of
 * layer_norm_rows's inputs from its output's gradient g and its saved mu and rstd */
static PyObject *mod_layer_norm_rows_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "layer_norm_rows_backward(g, x, mu, rstd, w, gx, gw, gb)");
        return NULL;
    }
    Py_buffer bf[8];
    int isd;
    if (get_buffers(args, 8, bf, "00001111", "00000111", &isd) < 0)
        return NULL;
    Py_ssize_t item = isd ? 8 : 4, m = bf[2].len / item, n = m ? bf[0].len / item / m : 0;
    int ok = m > 0 && n > 0 && bf[1].len == bf[0].len && m * n * item == bf[0].len && bf[3].len == bf[2].len &&
             (bf[4].obj == NULL || bf[4].len == n * item) && (bf[5].obj == NULL || bf[5].len == bf[0].len) &&
             (bf[6].obj == NULL || bf[6].len == n * item) && (bf[7].obj == NULL || bf[7].len == n * item);
    double *acc = ok && (bf[6].obj || bf[7].obj) ? PyMem_Calloc((size_t)(2 * n), sizeof(double)) : NULL;
    if (!ok || ((bf[6].obj || bf[7].obj) && acc == NULL)) {
        release_buffers(bf, 8);
        if (ok)
            return PyErr_NoMemory();
        PyErr_SetString(PyExc_ValueError, "layer_norm_rows_backward: g, x and gx of m * n, w, gw and gb of n, mu and "
                                          "rstd of m");
        return NULL;
    }
    double *acc_w = bf[6].obj ? acc : NULL, *acc_b = bf[7].obj ? acc + n : NULL;
    Py_BEGIN_ALLOW_THREADS
    if (isd)
        ln_backward_double(bf[0].buf, bf[1].buf, bf[2].buf, bf[3].buf, bf[4].buf, bf[5].buf, acc_w, acc_b, m, n);
    else
        ln_backward_float(bf[0].buf, bf[1].buf, bf[2].buf, bf[3].buf, bf[4].buf, bf[5].buf, acc_w, acc_b, m, n);
    for (int t = 0; t < 2; t++) {
        double *a = t ? acc_b : acc_w;
        void *out = bf[6 + t].buf;
        if (a != NULL)
            for (Py_ssize_t j = 0; j < n; j++) {
                if (isd)
                    ((double *)out)[j] = a[j];
                else
                    ((float *)out)[j] = (float)a[j];
            }
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(acc);
    release_buffers(bf, 8);
    Py_RETURN_NONE;
}

/* batch_norm_channels(x, w, b, rm, rv, training, momentum, eps, y, mu, rstd, n): batch_norm of x as (n, c, m)
 * (c = len(mu)); w, b None or c long; rm and rv (the running statistics, updated in training; read in eval) None
 * only in training; y of x's size, mu and rstd (written) c long */
static PyObject *mod_batch_norm_channels(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 12) {
        PyErr_SetString(PyExc_TypeError, "batch_norm_channels(x, w, b, rm, rv, training, momentum, eps, y, mu, rstd, n)");
        return NULL;
    }
    int training = PyObject_IsTrue(args[5]);
    double momentum = PyFloat_AsDouble(args[6]), eps = PyFloat_AsDouble(args[7]);
    Py_ssize_t n = PyLong_AsSsize_t(args[11]);
    if (training < 0 || PyErr_Occurred())
        return NULL;
    PyObject *arrs[8] = {args[0], args[1], args[2], args[3], args[4], args[8], args[9], args[10]};
    Py_buffer bf[8];
    int isd;
    if (get_buffers(arrs, 8, bf, "01111000", "00011111", &isd) < 0)
        return NULL;
    Py_ssize_t item = isd ? 8 : 4, c = bf[6].len / item, m = n > 0 && c > 0 ? bf[0].len / item / n / c : 0;
    int ok = m > 0 && n * c * m * item == bf[0].len && bf[5].len == bf[0].len && bf[7].len == bf[6].len &&
             (bf[1].obj == NULL || bf[1].len == c * item) && (bf[2].obj == NULL || bf[2].len == c * item) &&
             (bf[3].obj == NULL) == (bf[4].obj == NULL) && (bf[3].obj == NULL || (bf[3].len == c * item &&
             bf[4].len == c * item)) && (training || bf[3].obj != NULL);
    if (!ok) {
        release_buffers(bf, 8);
        PyErr_SetString(PyExc_ValueError, "batch_norm_channels: x and y of n * c * m, w, b, rm, rv, mu and rstd of c "
                                          "(rm and rv given together, and in eval)");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    if (isd)
        bn_forward_double(bf[0].buf, bf[1].buf, bf[2].buf, bf[3].buf, bf[4].buf, training, momentum, eps, bf[5].buf,
                          bf[6].buf, bf[7].buf, n, c, m);
    else
        bn_forward_float(bf[0].buf, bf[1].buf, bf[2].buf, bf[3].buf, bf[4].buf, training, momentum, eps, bf[5].buf,
                         bf[6].buf, bf[7].buf, n, c, m);
    Py_END_ALLOW_THREADS
    release_buffers(bf, 8);
    Py_RETURN_NONE;
}

/* batch_norm_channels_backward(g, x, mu, rstd, w, gx, gw, gb, training, n): the gradients wanted (gx, gw, gb not
 * None) of batch_norm_channels's inputs from its output's gradient g and its saved mu and rstd */
static PyObject *mod_batch_norm_channels_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "batch_norm_channels_backward(g, x, mu, rstd, w, gx, gw, gb, training, n)");
        return NULL;
    }
    int training = PyObject_IsTrue(args[8]);
    Py_ssize_t n = PyLong_AsSsize_t(args[9]);
    if (training < 0 || PyErr_Occurred())
        return NULL;
    Py_buffer bf[8];
    int isd;
    if (get_buffers(args, 8, bf, "00001111", "00000111", &isd) < 0)
        return NULL;
    Py_ssize_t item = isd ? 8 : 4, c = bf[2].len / item, m = n > 0 && c > 0 ? bf[0].len / item / n / c : 0;
    int ok = m > 0 && n * c * m * item == bf[0].len && bf[1].len == bf[0].len && bf[3].len == bf[2].len &&
             (bf[4].obj == NULL || bf[4].len == c * item) && (bf[5].obj == NULL || bf[5].len == bf[0].len) &&
             (bf[6].obj == NULL || bf[6].len == c * item) && (bf[7].obj == NULL || bf[7].len == c * item);
    if (!ok) {
        release_buffers(bf, 8);
        PyErr_SetString(PyExc_ValueError, "batch_norm_channels_backward: g, x and gx of n * c * m, mu, rstd, w, gw and "
                                          "gb of c");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    if (isd)
        bn_backward_double(bf[0].buf, bf[1].buf, bf[2].buf, bf[3].buf, bf[4].buf, bf[5].buf, bf[6].buf, bf[7].buf,
                           training, n, c, m);
    else
        bn_backward_float(bf[0].buf, bf[1].buf, bf[2].buf, bf[3].buf, bf[4].buf, bf[5].buf, bf[6].buf, bf[7].buf,
                          training, n, c, m);
    Py_END_ALLOW_THREADS
    release_buffers(bf, 8);
    Py_RETURN_NONE;
}

/* ---- addcdiv_ in one pass (tensorlib/ops/optim_ops.py's in-place kernel; addcmul_ is fused: fma_ below) ---------
 * a = a + (t1 * value) / t2: NumPy's three passes (t1 * value into a temporary, over t2, added to a) in their order
 * and rounding (no FMA, as torch's addcdiv), one element at a time, without the temporary. On large arrays (an
 * optimizer's update) the three passes and the temporary's fresh pages cost three times this loop's one (1.2M
 * float32: 960 -> 330 µs). value is the operands' dtype (NumPy's weak Python scalar). */
#define ADDCDIV_LOOP(T)                                                                                               \
    __attribute__((optimize("O3", "fp-contract=off"))) static void addcdiv_##T(T *a, const T *t1, const T *t2, T v,   \
                                                                              Py_ssize_t n)                        \
    {                                                                                                                 \
        for (Py_ssize_t i = 0; i < n; i++) {                                                                          \
            T r = t1[i] * v;                                                                                          \
            r = r / t2[i];                                                                                            \
            a[i] = a[i] + r;                                                                                          \
        }                                                                                                             \
    }
ADDCDIV_LOOP(float)
ADDCDIV_LOOP(double)

/* addcdiv_(a, t1, t2, value): C-contiguous buffers of one float dtype and length, a writable; each of t1 and t2
 * either a itself or apart from it (no partial overlap) */
static PyObject *mod_addcdiv_(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "addcdiv_(a, t1, t2, value)");
        return NULL;
    }
    double v = PyFloat_AsDouble(args[3]);
    if (v == -1.0 && PyErr_Occurred())
        return NULL;
    Py_buffer bf[3];
    int isd;
    if (get_buffers(args, 3, bf, "000", "100", &isd) < 0)
        return NULL;
    if (operands_apart(bf, 3, "addcdiv_") < 0)
        return NULL;
    Py_ssize_t len = bf[0].len;
    Py_BEGIN_ALLOW_THREADS
    if (isd)
        addcdiv_double(bf[0].buf, bf[1].buf, bf[2].buf, v, len / 8);
    else
        addcdiv_float(bf[0].buf, bf[1].buf, bf[2].buf, (float)v, len / 4);
    Py_END_ALLOW_THREADS
    release_buffers(bf, 3);
    Py_RETURN_NONE;
}

/* ---- MKL VML's elementwise functions ---------------------------------------------------------------------------
 * vml(fn, x, out): out = f(x) by MKL VML's vm?<Name> at address fn (tensorlib/_blas.py binds it), for C-contiguous
 * float32 (fn a vs function) or float64 (vd) buffers of one length below 2**31 (MKL_INT: LP64), out writable (it may
 * be x). torch's CPU build computes sqrt, tanh, sin, cos, tan, log2, log10, erf, erfc and erfinv of contiguous
 * float tensors through these (ATen/cpu/vml.h), whose results are not all correctly rounded: the values are
 * torch's only through the same functions. The caller matches the function's dtype to the buffers'. */
/* MKL VML's vm?<Name>(n, a, y, mode), with torch's mode (ATen/cpu/vml.h): high accuracy, denormals kept, no errno
 * or message -- whatever the process's vmlSetMode says */
typedef void (*VmlFn)(int, const void *, void *, long long);
#define VML_TORCH_MODE (0x2LL | 0x140000LL | 0x100LL)       /* VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE */

static PyObject *mod_vml(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "vml(fn, x, out)");
        return NULL;
    }
    void *fn = PyLong_AsVoidPtr(args[0]);
    if (fn == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "vml: a function address");
        return NULL;
    }
    Py_buffer bf[2];
    int isd;
    if (get_buffers(args + 1, 2, bf, "00", "01", &isd) < 0)
        return NULL;
    Py_ssize_t n = bf[0].len / (isd ? 8 : 4);
    if (bf[1].len != bf[0].len || n >= ((Py_ssize_t)1 << 31)) {
        release_buffers(bf, 2);
        PyErr_SetString(PyExc_ValueError, "vml: buffers of one length, below 2**31 elements");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    ((VmlFn)fn)((int)n, bf[0].buf, bf[1].buf, VML_TORCH_MODE);
    Py_END_ALLOW_THREADS
    release_buffers(bf, 2);
    Py_RETURN_NONE;
}

/* ---- torch's fused multiply-adds --------------------------------------------------------------------------------
 * torch's vectorised CPU kernels compute add(alpha=), lerp and addcmul with vec::fmadd: one rounding where NumPy's
 * passes take two (SGD's `p.add_(grad, alpha=-lr)` left ~2% of a float32 parameter's elements an ulp off torch's a
 * step, lerp 11%, addcmul 2.5%). fma_(kind, out, a, b, c, s), C-contiguous buffers of one float dtype and length:
 *   kind 0, add:     out = fma(b, s, a)                                    (c unused)
 *   kind 1, lerp:    d = b - a; |s| < 0.5 ? fma(s, d, a) : fma(s - 1, d, b) (torch's lerp_vec; c unused)
 *   kind 2, addcmul: out = fma(b * s, c, a)                                (torch's addcmul_cpu_kernel)
 * the scalar s rounded to the dtype first (torch's opmath); out may be a, or apart from the operands. With FMA3 the
 * loops are vectorised (__builtin_fma*: the instruction); without it libm's fmaf/fma, correctly rounded too. */
#define FMA_LOOP(T, F, NAME, ATTR)                                                                                    \
    ATTR static void NAME(int kind, T *out, const T *a, const T *b, const T *c, T s, Py_ssize_t n)                  \
    {                                                                                                                 \
        if (kind == 0)                                                                                                \
            for (Py_ssize_t i = 0; i < n; i++)                                                                        \
                out[i] = F(b[i], s, a[i]);                                                                            \
        else if (kind == 1 && (s < 0 ? -s : s) < (T)0.5)                                                              \
            for (Py_ssize_t i = 0; i < n; i++)                                                                        \
                out[i] = F(s, b[i] - a[i], a[i]);                                                                     \
        else if (kind == 1) {                                                                                         \
            T w1 = s - (T)1;                                                                                          \
            for (Py_ssize_t i = 0; i < n; i++)                                                                        \
                out[i] = F(w1, b[i] - a[i], b[i]);                                                                    \
        } else if (kind == 2)                                                                                         \
            for (Py_ssize_t i = 0; i < n; i++)                                                                        \
                out[i] = F(b[i] * s, c[i], a[i]);                                                                     \
        else                                                                                                          \
            for (Py_ssize_t i = 0; i < n; i++)                                                                        \
                out[i] = a[i] * F(-b[i], b[i], (T)1);                                                                 \
    }
#define NO_ATTR __attribute__((optimize("O3", "fp-contract=off")))
FMA_LOOP(float, fmaf, fma_loop_f, NO_ATTR)
FMA_LOOP(double, fma, fma_loop_d, NO_ATTR)
#if HAVE_X86
#define FMA_ATTR __attribute__((target("avx2,fma"), optimize("O3", "fp-contract=off")))
FMA_LOOP(float, __builtin_fmaf, fma_loop_f_avx2, FMA_ATTR)
FMA_LOOP(double, __builtin_fma, fma_loop_d_avx2, FMA_ATTR)
#endif

static PyObject *mod_fma_(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "fma_(kind, out, a, b, c, s)");
        return NULL;
    }
    long kind = PyLong_AsLong(args[0]);
    double s = PyFloat_AsDouble(args[5]);
    if (((kind == -1 || s == -1.0) && PyErr_Occurred()))
        return NULL;
    if (kind < 0 || kind > 3) {
        PyErr_SetString(PyExc_ValueError, "fma_: kind 0 (add), 1 (lerp), 2 (addcmul) or 3 (tanh_backward)");
        return NULL;
    }
    Py_buffer bf[4];
    int isd;
    if (get_buffers(args + 1, 4, bf, kind == 2 ? "0000" : "0001", "1000", &isd) < 0)
        return NULL;
    if (operands_apart(bf, 4, "fma_") < 0)
        return NULL;
    Py_ssize_t len = bf[0].len;
    Py_BEGIN_ALLOW_THREADS
#if HAVE_X86
    if (use_avx2 && isd)
        fma_loop_d_avx2((int)kind, bf[0].buf, bf[1].buf, bf[2].buf, bf[3].buf, s, len / 8);
    else if (use_avx2)
        fma_loop_f_avx2((int)kind, bf[0].buf, bf[1].buf, bf[2].buf, bf[3].buf, (float)s, len / 4);
    else
#endif
    if (isd)
        fma_loop_d((int)kind, bf[0].buf, bf[1].buf, bf[2].buf, bf[3].buf, s, len / 8);
    else
        fma_loop_f((int)kind, bf[0].buf, bf[1].buf, bf[2].buf, bf[3].buf, (float)s, len / 4);
    Py_END_ALLOW_THREADS
    release_buffers(bf, 4);
    Py_RETURN_NONE;
}

/* ---- Adam's single-tensor step on one small parameter (tensorlib/optim/adam.py, _fastmath.adam_*) -------------
 * torch's per-parameter loop (`step_t += 1`, AdamW's `p.mul_(1 - lr * wd)` or Adam's `grad = grad.add(p, alpha=wd)`,
 * `exp_avg.lerp_(grad, 1 - beta1)`, `exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)`, then `denom =
 * (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)` and `p.addcdiv_(exp_avg, denom, value=-step_size)`), each op
 * a pass over the arrays in the NumPy kernels' order and rounding (the scalars rounded to the arrays' dtype once, as
 * NumPy's weak Python scalars are; no FMA), so that the values are the dispatched loop's to the bit. Where the loop
 * made ten NumPy calls and a Python frame per op on a parameter of a few hundred elements, this is one C call; with
 * `times` (int64, two per op) each op's start and end are written there, for the profiler's records of the same ops
 * (dispatch.record_times). The arrays are read through NumPy's array struct (_native_common.h's ArrayHead), checked
 * once (adam_setup) as profiler/_crecord.c checks it: a call whose operands are not all aligned C-contiguous arrays of the parameter's
 * dtype and size, apart from one another, returns False and changes nothing (the Python loop runs). */
#define ARR_C_CONTIGUOUS 0x0001
#define ARR_ALIGNED 0x0100
#define ARR_WRITEABLE 0x0400
#define ADAM_MAX 8192           /* elements: larger parameters take the Python loop (and its one-pass kernels) */

static PyTypeObject *arr_type = NULL;     /* numpy.ndarray, once adam_setup's check passed */
static PyObject *f32_descr, *f64_descr, *i64_descr;

/* o's data when it is an aligned C-contiguous ndarray of `descr` and n elements (writable if asked), else NULL */
static Py_ssize_t arr_size(PyObject *o)
{
    ArrayHead *h = (ArrayHead *)o;
    Py_ssize_t k = 1;
    for (int i = 0; i < h->nd; i++)
        k *= h->dimensions[i];
    return k;
}

static char *arr_data(PyObject *o, PyObject *descr, Py_ssize_t n, int writable)
{
    if (Py_TYPE(o) != arr_type)
        return NULL;
    ArrayHead *h = (ArrayHead *)o;
    int need = ARR_C_CONTIGUOUS | ARR_ALIGNED | (writable ? ARR_WRITEABLE : 0);
    if (h->descr != descr || (h->flags & need) != need)
        return NULL;
    return arr_size(o) == n ? h->data : NULL;
}

/* adam_setup(ndarray, probes): 1 where the struct above reads NumPy's arrays -- each probe's data, size, dtype and
 * flags as NumPy reports them (probes: (array, data address, size, dtype, flags) tuples made by _fastmath) -- and
 * the float32/float64/int64 dtypes are those of the probes named so; else 0 and adam_moments/adam_update stay off */
static PyObject *mod_adam_setup(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyType_Check(args[0]) || !PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "adam_setup(ndarray, probes, float32, float64, int64)");
        return NULL;
    }
    PyObject *probes = args[1];
    int ok = PyTuple_GET_SIZE(probes) > 0;
    for (Py_ssize_t i = 0; ok && i < PyTuple_GET_SIZE(probes); i++) {
        PyObject *p = PyTuple_GET_ITEM(probes, i);
        ok = PyTuple_Check(p) && PyTuple_GET_SIZE(p) == 5 && Py_TYPE(PyTuple_GET_ITEM(p, 0)) == (PyTypeObject *)args[0];
        if (!ok)
            break;
        ArrayHead *h = (ArrayHead *)PyTuple_GET_ITEM(p, 0);
        ok = (void *)h->data == PyLong_AsVoidPtr(PyTuple_GET_ITEM(p, 1)) &&
             arr_size((PyObject *)h) == PyLong_AsSsize_t(PyTuple_GET_ITEM(p, 2)) &&
             h->descr == PyTuple_GET_ITEM(p, 3) && h->flags == PyLong_AsLong(PyTuple_GET_ITEM(p, 4));
    }
    if (PyErr_Occurred())
        return NULL;
    if (ok) {
        arr_type = (PyTypeObject *)args[0];
        Py_INCREF(arr_type);
        f32_descr = Py_NewRef(args[2]);
        f64_descr = Py_NewRef(args[3]);
        i64_descr = Py_NewRef(args[4]);
    }
    return PyBool_FromLong(ok);
}

/* (the moments' lerp_, addcmul_ and Adam's grad.add(p, alpha=wd) fused, as torch's kernels and _fastmath.fma; the
 * rest unfused; SUF names the variant, ATTR its attributes, F its fused multiply-add: see FMA_LOOP) */
#define ADAM_LOOPS(T, SUF, ATTR, F)                                                                                   \
    ATTR static void adam_moments_##SUF(T *x, const T *g, T *m, T *v, T *gw, Py_ssize_t n, int decay, T wd_f, T w,   \
                                        T beta2, T c, long long *tm)                                                 \
    {                                                                                                                 \
        if (tm)                                                                                                       \
            tm[2] = now_ns();                                                                                         \
        if (decay == 1) { /* p.mul_(1 - lr * wd) */                                                                  \
            for (Py_ssize_t i = 0; i < n; i++)                                                                        \
                x[i] = x[i] * wd_f;                                                                                   \
        } else if (decay == 2) { /* grad.add(p, alpha=wd): fma(p, wd, g) */                                           \
            for (Py_ssize_t i = 0; i < n; i++)                                                                        \
                gw[i] = F(x[i], wd_f, g[i]);                                                                          \
            g = gw;                                                                                                   \
        }                                                                                                             \
        if (tm) {                                                                                                     \
            tm[3] = now_ns();                                                                                         \
            tm[4] = now_ns();                                                                                         \
        }                                                                                                             \
        if ((w < 0 ? -w : w) < (T)0.5) /* lerp_: fma(w, g - m, m) */                                                  \
            for (Py_ssize_t i = 0; i < n; i++)                                                                        \
                m[i] = F(w, g[i] - m[i], m[i]);                                                                       \
        else { /* fma(w - 1, g - m, g) */                                                                             \
            T w1 = w - (T)1;                                                                                          \
            for (Py_ssize_t i = 0; i < n; i++)                                                                        \
                m[i] = F(w1, g[i] - m[i], g[i]);                                                                      \
        }                                                                                                             \
        if (tm) {                                                                                                     \
            tm[5] = now_ns();                                                                                         \
            tm[6] = now_ns();                                                                                         \
        }                                                                                                             \
        for (Py_ssize_t i = 0; i < n; i++) /* mul_(beta2) */                                                          \
            v[i] = v[i] * beta2;                                                                                      \
        if (tm) {                                                                                                     \
            tm[7] = now_ns();                                                                                         \
            tm[8] = now_ns();                                                                                         \
        }                                                                                                             \
        for (Py_ssize_t i = 0; i < n; i++) /* addcmul_(g, g, value=c): fma(g * c, g, v) */                            \
            v[i] = F(g[i] * c, g[i], v[i]);                                                                           \
        if (tm)                                                                                                       \
            tm[9] = now_ns();                                                                                         \
    }
ADAM_LOOPS(float, float, NO_ATTR, fmaf)
ADAM_LOOPS(double, double, NO_ATTR, fma)
#if HAVE_X86
ADAM_LOOPS(float, float_avx2, FMA_ATTR, __builtin_fmaf)
ADAM_LOOPS(double, double_avx2, FMA_ATTR, __builtin_fma)
#endif

static VmlFn adam_sqrt[2];     /* MKL VML's vmsSqrt, vmdSqrt (adam_vml), or NULL: the correctly rounded loop */

/* adam_vml(vs, vd): the addresses of MKL VML's vmsSqrt and vmdSqrt (None: the loop's sqrt), for the update's sqrt */
static PyObject *mod_adam_vml(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "adam_vml(vs, vd)");
        return NULL;
    }
    for (int i = 0; i < 2; i++) {
        void *f = args[i] == Py_None ? NULL : PyLong_AsVoidPtr(args[i]);
        if (f == NULL && PyErr_Occurred())
            return NULL;
        adam_sqrt[i] = (VmlFn)f;
    }
    Py_RETURN_NONE;
}

#define ADAM_UPDATE(T)                                                                                                \
    __attribute__((optimize("O3", "fp-contract=off"))) static void adam_update_##T(                                 \
        T *x, const T *m, const T *v, T *d1, T *d, Py_ssize_t n, T bc2, T eps, T value, long long *tm, int part,     \
        VmlFn sq)                                                                                                     \
    {                                                                                                                 \
        if (part != 2) {                                                                                              \
            if (tm)                                                                                                   \
                tm[0] = now_ns();                                                                                     \
            if (sq != NULL) /* sqrt: torch's, MKL VML's where it is loaded (adam_vml) */                             \
                sq((int)n, v, d1, VML_TORCH_MODE);                                                                    \
            else                                                                                                      \
                for (Py_ssize_t i = 0; i < n; i++)                                                                    \
                    d1[i] = sqrt##_##T(v[i]);                                                                         \
            if (tm) {                                                                                                 \
                tm[1] = now_ns();                                                                                     \
                tm[2] = now_ns();                                                                                     \
            }                                                                                                         \
            for (Py_ssize_t i = 0; i < n; i++) /* div(bias_correction2_sqrt) */                                       \
                d[i] = d1[i] / bc2;                                                                                   \
            if (tm)                                                                                                   \
                tm[3] = now_ns();                                                                                     \
        }                                                                                                             \
        if (part == 1)                                                                                                \
            return;                                                                                                   \
        if (tm)                                                                                                       \
            tm[4] = now_ns();                                                                                         \
        for (Py_ssize_t i = 0; i < n; i++) /* add_(eps) */                                                            \
            d[i] = d[i] + eps;                                                                                        \
        if (tm) {                                                                                                     \
            tm[5] = now_ns();                                                                                         \
            tm[6] = now_ns();                                                                                         \
        }                                                                                                             \
        for (Py_ssize_t i = 0; i < n; i++) { /* addcdiv_(m, d, value=-step_size) */                                   \
            T r = m[i] * value;                                                                                       \
            r = r / d[i];                                                                                             \
            x[i] = x[i] + r;                                                                                          \
        }                                                                                                             \
        if (tm)                                                                                                       \
            tm[7] = now_ns();                                                                                         \
    }
static inline float sqrt_float(float a) { return sqrtf(a); }
static inline double sqrt_double(double a) { return sqrt(a); }
ADAM_UPDATE(float)
ADAM_UPDATE(double)

/* the operands of one parameter's step, checked: x, g (NULL: not an operand), m, v of one float dtype and size
 * n <= ADAM_MAX (x, m, v writable), apart from one another; step a writable 0-d float array; times None or int64 of at least `slots` */
typedef struct {
    char *x, *g, *m, *v, *step;
    long long *tm;
    Py_ssize_t n;
    int isd, step_isd;
} AdamArgs;

static int apart(const char *a, const char *b, Py_ssize_t bytes) { return a + bytes <= b || b + bytes <= a; }

static int adam_args(PyObject *const *arr, PyObject *step, PyObject *times, int slots, AdamArgs *A)
{
    if (arr_type == NULL || Py_TYPE(arr[0]) != arr_type)
        return 0;
    PyObject *dt = ((ArrayHead *)arr[0])->descr;
    if (dt != f32_descr && dt != f64_descr)
        return 0;
    A->isd = dt == f64_descr;
    A->n = arr_size(arr[0]);
    if (A->n > ADAM_MAX)
        return 0;
    char **dst[4] = {&A->x, &A->g, &A->m, &A->v};
    for (int i = 0; i < 4; i++)
        if (arr[i] == NULL)
            *dst[i] = NULL;
        else if ((*dst[i] = arr_data(arr[i], dt, A->n, i != 1)) == NULL)
            return 0;
    Py_ssize_t bytes = A->n * (A->isd ? 8 : 4);
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            if (*dst[i] != NULL && *dst[j] != NULL && !apart(*dst[i], *dst[j], bytes))
                return 0;
    A->step = NULL;
    if (step != NULL) {
        PyObject *sd = Py_TYPE(step) == arr_type ? ((ArrayHead *)step)->descr : NULL;
        if ((sd != f32_descr && sd != f64_descr) || (A->step = arr_data(step, sd, 1, 1)) == NULL)
            return 0;
        A->step_isd = sd == f64_descr;
    }
    A->tm = NULL;
    if (times != Py_None) {
        if (Py_TYPE(times) != arr_type || ((ArrayHead *)times)->descr != i64_descr || arr_size(times) < slots ||
            (A->tm = (long long *)arr_data(times, i64_descr, arr_size(times), 1)) == NULL)
            return 0;
    }
    return 1;
}

static int get_doubles(PyObject *const *args, int n, double *out)
{
    for (int i = 0; i < n; i++) {
        out[i] = PyFloat_AsDouble(args[i]);
        if (out[i] == -1.0 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

/* steps 1-5 of the loop: step += 1, weight decay, lerp_, mul_, addcmul_; times (when given) slots 0-9 */
static int adam_moments_run(AdamArgs *A, const double *h, int decoupled, void *gw)
{
    /* h: lr, wd, beta1, beta2; gw: the decayed gradient's array (Adam's weight decay), or NULL for a buffer here */
    double lr = h[0], wd = h[1], beta1 = h[2], beta2 = h[3], w = 1 - beta1, c = 1 - beta2;
    int decay = wd != 0 ? (decoupled ? 1 : 2) : 0;
    double wd_v = decoupled ? 1 - lr * wd : wd;
    void *buf = NULL;
    if (decay == 2 && gw == NULL && (gw = buf = PyMem_Malloc((size_t)(A->n ? A->n : 1) * (A->isd ? 8 : 4))) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (A->tm)
        A->tm[0] = now_ns();
    if (A->step_isd)
        *(double *)A->step = *(double *)A->step + 1.0;
    else
        *(float *)A->step = *(float *)A->step + 1.0f;
    if (A->tm)
        A->tm[1] = now_ns();
#if HAVE_X86
    if (use_avx2 && A->isd)
        adam_moments_double_avx2((double *)A->x, (double *)A->g, (double *)A->m, (double *)A->v, gw, A->n, decay,
                                 wd_v, w, beta2, c, A->tm);
    else if (use_avx2)
        adam_moments_float_avx2((float *)A->x, (float *)A->g, (float *)A->m, (float *)A->v, gw, A->n, decay,
                                (float)wd_v, (float)w, (float)beta2, (float)c, A->tm);
    else
#endif
    if (A->isd)
        adam_moments_double((double *)A->x, (double *)A->g, (double *)A->m, (double *)A->v, gw, A->n, decay, wd_v,
                            w, beta2, c, A->tm);
    else
        adam_moments_float((float *)A->x, (float *)A->g, (float *)A->m, (float *)A->v, gw, A->n, decay, (float)wd_v,
                           (float)w, (float)beta2, (float)c, A->tm);
    PyMem_Free(buf);
    return 0;
}

/* steps 6-9: denom = sqrt(v) / bias_correction2_sqrt + eps, p += -step_size * m / denom; times slots 0-7; the sqrt
 * into d1 and the quotient (then the denominator) into d where given (arrays the caller checked), else a buffer */
static int adam_update_run(AdamArgs *A, double step, const double *h, void *d1, void *d, int part)
{
    /* h: lr, beta1, beta2, eps */
    double step_size = h[0] / (1 - pow(h[1], step)), bc2 = pow(1 - pow(h[2], step), 0.5);
    void *buf = NULL;
    if (part == 0 && (d1 == NULL || d == NULL)) {       /* (a half runs on the caller's arrays: checked there) */
        buf = PyMem_Malloc((size_t)(A->n ? A->n : 1) * (A->isd ? 8 : 4));
        if (buf == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        d1 = d1 != NULL ? d1 : buf;        /* (the two may be one buffer: the div runs element by element) */
        d = d != NULL ? d : buf;
    }
    if (A->isd)
        adam_update_double((double *)A->x, (double *)A->m, (double *)A->v, d1, d, A->n, bc2, h[3], -step_size, A->tm,
                           part, adam_sqrt[1]);
    else
        adam_update_float((float *)A->x, (float *)A->m, (float *)A->v, d1, d, A->n, (float)bc2, (float)h[3],
                          (float)-step_size, A->tm, part, adam_sqrt[0]);
    PyMem_Free(buf);
    return 0;
}

/* an optional output array (None: NULL) for a step's temporary: of the parameter's dtype and size, writable, apart
 * from the operands; 1 with *out set, or 0 where it does not qualify */
static int temp_out(PyObject *o, AdamArgs *A, void **out)
{
    *out = NULL;
    if (o == Py_None)
        return 1;
    char *d = arr_data(o, A->isd ? f64_descr : f32_descr, A->n, 1);
    Py_ssize_t bytes = A->n * (A->isd ? 8 : 4);
    char *ops[4] = {A->x, A->g, A->m, A->v};
    if (d == NULL)
        return 0;
    for (int i = 0; i < 4; i++)
        if (ops[i] != NULL && !apart(d, ops[i], bytes))
            return 0;
    *out = d;
    return 1;
}

/* adam_moments(p, grad, exp_avg, exp_avg_sq, step, lr, weight_decay, decoupled, beta1, beta2, times, decayed_grad)
 * -> bool; decayed_grad: None, or the array Adam's grad.add(p, alpha=weight_decay) is written into */
static PyObject *mod_adam_moments(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 12) {
        PyErr_SetString(PyExc_TypeError, "adam_moments(p, grad, exp_avg, exp_avg_sq, step, lr, weight_decay, "
                                         "decoupled, beta1, beta2, times, decayed_grad)");
        return NULL;
    }
    double h[4];
    PyObject *hv[4] = {args[5], args[6], args[8], args[9]};
    int decoupled = PyObject_IsTrue(args[7]);
    if (decoupled < 0 || get_doubles(hv, 4, h) < 0)
        return NULL;
    AdamArgs A;
    void *gw;
    if (!adam_args(args, args[4], args[10], 10, &A) || !temp_out(args[11], &A, &gw))
        Py_RETURN_FALSE;
    if (adam_moments_run(&A, h, decoupled, gw) < 0)
        return NULL;
    Py_RETURN_TRUE;
}

/* adam_update(p, exp_avg, exp_avg_sq, step_value, lr, beta1, beta2, eps, times, sqrt_out, denom_out, part) -> bool;
 * the outputs None, or the arrays the sqrt and the denominator (div, then add_ eps) are written into; part 0 runs
 * the four ops, 1 the sqrt and the div, 2 the add_ and the addcdiv_ on denom_out (a half needs the arrays) */
static PyObject *mod_adam_update(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 12) {
        PyErr_SetString(PyExc_TypeError, "adam_update(p, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, times, "
                                         "sqrt_out, denom_out, part)");
        return NULL;
    }
    long part = PyLong_AsLong(args[11]);
    if (part == -1 && PyErr_Occurred())
        return NULL;
    if (part < 0 || part > 2) {
        PyErr_SetString(PyExc_ValueError, "adam_update: part is 0 (the four ops), 1 (sqrt, div) or 2 (add_, addcdiv_)");
        return NULL;
    }
    double h[5];
    if (get_doubles(args + 3, 5, h) < 0)
        return NULL;
    PyObject *arr[4] = {args[0], NULL, args[1], args[2]};     /* (p, no grad, exp_avg, exp_avg_sq) */
    AdamArgs A;
    if (!adam_args(arr, NULL, args[8], 8, &A))
        Py_RETURN_FALSE;
    void *d1, *d;
    if (!temp_out(args[9], &A, &d1) || !temp_out(args[10], &A, &d) || (d1 != NULL && d != NULL &&
                                                                      !apart(d1, d, A.n * (A.isd ? 8 : 4))))
        Py_RETURN_FALSE;
    if (part != 0 && (d == NULL || (part == 1 && d1 == NULL)))     /* a half: the caller's arrays carry the values */
        Py_RETURN_FALSE;
    if (adam_update_run(&A, h[0], h + 1, d1, d, (int)part) < 0)
        return NULL;
    Py_RETURN_TRUE;
}

/* adam_step(p, grad, exp_avg, exp_avg_sq, step, lr, weight_decay, decoupled, beta1, beta2, eps) -> bool: the whole
 * step unrecorded, the step's value read from its array after the increment (as float(step_t.item())) */
static PyObject *mod_adam_step(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 11) {
        PyErr_SetString(PyExc_TypeError, "adam_step(p, grad, exp_avg, exp_avg_sq, step, lr, weight_decay, "
                                         "decoupled, beta1, beta2, eps)");
        return NULL;
    }
    double h[5];
    PyObject *hv[5] = {args[5], args[6], args[8], args[9], args[10]};
    int decoupled = PyObject_IsTrue(args[7]);
    if (decoupled < 0 || get_doubles(hv, 5, h) < 0)
        return NULL;
    AdamArgs A;
    if (!adam_args(args, args[4], Py_None, 0, &A))
        Py_RETURN_FALSE;
    if (adam_moments_run(&A, h, decoupled, NULL) < 0)
        return NULL;
    double step = A.step_isd ? *(double *)A.step : (double)*(float *)A.step;
    double u[4] = {h[0], h[2], h[3], h[4]};
    if (adam_update_run(&A, step, u, NULL, NULL, 0) < 0)
        return NULL;
    Py_RETURN_TRUE;
}

/* ---- torch's fused Adam / AdamW step (torch.optim.Adam(fused=True): _fused_adam_ / _fused_adamw_ on the CPU, ------
 * ATen/native/cpu/FusedAdamKernel.cpp's adam_math) for float32 and bfloat16 parameters. float32 arithmetic throughout
 * (bfloat16 read into float32 and each result rounded once, to nearest even, where stored), with the multiply-adds GCC
 * builds torch with, found by testing against torch 2.13: the lerp an explicit fma; Adam's weight decay fma(p, wd, g);
 * exp_avg_sq fma(c * g, g, v * beta2) in the vector loop, fma(v, beta2, (c * g) * g) in the scalar rest; the update
 * p + (-step_size * m) / (sqrt(v) / bc2_sqrt + eps). torch registers the kernel without AVX-512 (REGISTER_DISPATCH), so
 * AVX-512 CPUs run its AVX2 build too: `lanes`, the vector loop's width (8 floats, 16 halves), decides the rest. */
static inline float bf16_load(const uint16_t *a, Py_ssize_t i)
{
    uint32_t u = (uint32_t)a[i] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline void bf16_store(uint16_t *a, Py_ssize_t i, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    a[i] = isnan(f) ? 0x7FC0 : (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);     /* (c10::BFloat16's rounding) */
}

typedef struct {
    float wdf, w, coeff, b2, c, bc2s, eps, nss;
    int decay, adamw, maximize, small;
} FusedAdamH;

/* the step's elements [lo, hi) one at a time: FORM 1, exp_avg_sq as fma(c * g, g, v * beta2), 0 as fma(v, beta2,
 * (c * g) * g); without -mfma fmaf is libm's, correctly rounded all the same */
#define FUSED_ADAM_SCALAR(SUF, T, LOAD, STORE)                                                                        \
    __attribute__((optimize("fp-contract=off"))) static void fused_adam_##SUF(T *p, const T *g, T *m, T *v, T *vmax,  \
                                                                             Py_ssize_t lo, Py_ssize_t hi, int form,  \
                                                                             const FusedAdamH *H)                     \
    {                                                                                                                 \
        for (Py_ssize_t i = lo; i < hi; i++) {                                                                        \
            float gi = LOAD(g, i), pi = LOAD(p, i), mi = LOAD(m, i), vi = LOAD(v, i);                                 \
            if (H->maximize)                                                                                          \
                gi = -gi;                                                                                             \
            if (H->decay && H->adamw)                                                                                 \
                pi = pi * H->wdf;                                                                                     \
            else if (H->decay)                                                                                        \
                gi = fmaf(pi, H->wdf, gi);                                                                            \
            mi = fmaf(H->coeff, gi - mi, H->small ? mi : gi);                                                         \
            vi = form ? fmaf(H->c * gi, gi, vi * H->b2) : fmaf(vi, H->b2, (H->c * gi) * gi);                          \
            STORE(m, i, mi);                                                                                          \
            STORE(v, i, vi);                                                                                          \
            float s = vi;                                                                                             \
            if (vmax != NULL) {                                                                                       \
                float mx = LOAD(vmax, i);                                                                             \
                s = isnan(vi) || mx < vi ? vi : mx;                                                                   \
                STORE(vmax, i, s);                                                                                    \
            }                                                                                                         \
            STORE(p, i, pi + (H->nss * mi) / (sqrtf(s) / H->bc2s + H->eps));                                         \
        }                                                                                                             \
    }
#define F32_LOAD(a, i) ((a)[i])
#define F32_STORE(a, i, x) ((a)[i] = (x))
FUSED_ADAM_SCALAR(f32, float, F32_LOAD, F32_STORE)
FUSED_ADAM_SCALAR(bf16, uint16_t, bf16_load, bf16_store)

#if defined(__x86_64__) || defined(__i386__)
/* 8 float32 from a (bfloat16 where bf: its bits in the high half) and back, rounded to nearest even (NaN: 0x7FC0) */
__attribute__((target("avx2,fma"))) static inline __m256 fa_load8(const void *a, Py_ssize_t i, int bf)
{
    if (!bf)
        return _mm256_loadu_ps((const float *)a + i);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)a + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

__attribute__((target("avx2,fma"))) static inline void fa_store8(void *a, Py_ssize_t i, __m256 x, int bf)
{
    if (!bf) {
        _mm256_storeu_ps((float *)a + i, x);
        return;
    }
    __m256i u = _mm256_castps_si256(x), one = _mm256_set1_epi32(1);
    __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF),
                                                     _mm256_and_si256(_mm256_srli_epi32(u, 16), one)));
    r = _mm256_srli_epi32(r, 16);
    r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7FC0), _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)));
    __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    _mm_storeu_si128((__m128i *)((uint16_t *)a + i), packed);
}

/* elements [0, n) (n a multiple of 8) 8 at a time, form 1 throughout: the same operations as the scalar loop's, each
 * element's own (an exact product by 1 or -1 for maximize, a multiply by 1 where AdamW's decay is off) */
__attribute__((target("avx2,fma"))) static void fused_adam_avx2(void *p, const void *g, void *m, void *v, void *vmax,
                                                                Py_ssize_t n, int bf, const FusedAdamH *H)
{
    const __m256 sgn = _mm256_set1_ps(H->maximize ? -1.0f : 1.0f), wdf = _mm256_set1_ps(H->wdf);
    const __m256 coeff = _mm256_set1_ps(H->coeff), b2 = _mm256_set1_ps(H->b2), c = _mm256_set1_ps(H->c);
    const __m256 bc2s = _mm256_set1_ps(H->bc2s), eps = _mm256_set1_ps(H->eps), nss = _mm256_set1_ps(H->nss);
    const int adamw = H->decay && H->adamw, gdec = H->decay && !H->adamw, small = H->small;
    for (Py_ssize_t i = 0; i < n; i += 8) {
        __m256 gi = _mm256_mul_ps(fa_load8(g, i, bf), sgn), pi = fa_load8(p, i, bf);
        __m256 mi = fa_load8(m, i, bf), vi = fa_load8(v, i, bf);
        if (adamw)
            pi = _mm256_mul_ps(pi, wdf);
        else if (gdec)
            gi = _mm256_fmadd_ps(pi, wdf, gi);
        mi = _mm256_fmadd_ps(coeff, _mm256_sub_ps(gi, mi), small ? mi : gi);
        vi = _mm256_fmadd_ps(_mm256_mul_ps(c, gi), gi, _mm256_mul_ps(vi, b2));
        fa_store8(m, i, mi, bf);
        fa_store8(v, i, vi, bf);
        __m256 s = vi;
        if (vmax != NULL) {
            __m256 mx = fa_load8(vmax, i, bf);
            __m256 take = _mm256_or_ps(_mm256_cmp_ps(vi, vi, _CMP_UNORD_Q), _mm256_cmp_ps(mx, vi, _CMP_LT_OQ));
            s = _mm256_blendv_ps(mx, vi, take);
            fa_store8(vmax, i, s, bf);
        }
        __m256 den = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(s), bc2s), eps);
        fa_store8(p, i, _mm256_add_ps(pi, _mm256_div_ps(_mm256_mul_ps(nss, mi), den)), bf);
    }
}
#endif

/* One parameter's step on objects o[0..5) (p, grad, exp_avg, exp_avg_sq, max_exp_avg_sq or None) at step `step`, H's
 * step-independent fields set: 0, or -1 with an error set */
static int fused_adam_one(PyObject *const *o, double step, double lr, double beta1, double beta2, Py_ssize_t lanes,
                          FusedAdamH *H)
{
    Py_buffer bf[5];
    int got = 0, half = 0;
    for (int i = 0; i < 5; i++) {
        bf[i].obj = NULL;
        bf[i].buf = NULL;
        if (i == 4 && o[i] == Py_None)
            continue;
        if (PyObject_GetBuffer(o[i], &bf[i], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (i == 1 ? 0 : PyBUF_WRITABLE)) < 0)
            goto fail;
        got = i + 1;
        const char *f = bf[i].format;
        int is_h = f != NULL && strcmp(f, "H") == 0;
        if (f == NULL || (strcmp(f, "f") != 0 && !is_h) || (i > 0 && is_h != half) || bf[i].len != bf[0].len) {
            PyErr_SetString(PyExc_ValueError, "fused_adam: C-contiguous float32 (or bfloat16 as uint16) buffers of "
                                              "one format and length");
            goto fail;
        }
        half = is_h;
    }
    if (operands_apart(bf, 5, "fused_adam") < 0)
        return -1;
    double bc1 = 1 - pow(beta1, step), bc2 = 1 - pow(beta2, step);
    H->bc2s = (float)sqrt(bc2);
    H->nss = (float)(-(lr / bc1));
    Py_ssize_t n = bf[0].len / (half ? 2 : 4);
    Py_ssize_t wide = n - n % lanes, lo = 0;        /* torch's vector loop (form 1), then its scalar rest (form 0) */
    PyThreadState *ts = n >= 65536 ? PyEval_SaveThread() : NULL;
#if defined(__x86_64__) || defined(__i386__)
    if (use_avx2) {
        fused_adam_avx2(bf[0].buf, bf[1].buf, bf[2].buf, bf[3].buf, bf[4].buf, wide, half, H);
        lo = wide;
    }
#endif
    if (half) {
        fused_adam_bf16(bf[0].buf, bf[1].buf, bf[2].buf, bf[3].buf, bf[4].buf, lo, wide, 1, H);
        fused_adam_bf16(bf[0].buf, bf[1].buf, bf[2].buf, bf[3].buf, bf[4].buf, wide, n, 0, H);
    } else {
        fused_adam_f32(bf[0].buf, bf[1].buf, bf[2].buf, bf[3].buf, bf[4].buf, lo, wide, 1, H);
        fused_adam_f32(bf[0].buf, bf[1].buf, bf[2].buf, bf[3].buf, bf[4].buf, wide, n, 0, H);
    }
    if (ts != NULL)
        PyEval_RestoreThread(ts);
    release_buffers(bf, 5);
    return 0;
fail:
    release_buffers(bf, got);
    return -1;
}

/* fused_adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr, beta1, beta2, weight_decay, eps, adamw,
 * maximize, lanes) -> None: torch's _fused_adam_ / _fused_adamw_ over lists of one length, each parameter in place as
 * torch's kernel above: float32 buffers, or bfloat16 ones read as uint16 ('H'), each parameter's C-contiguous, of one
 * format and length, apart; max_exp_avg_sqs None without amsgrad; steps the counts (floats) after this step's
 * increment. */
static PyObject *mod_fused_adam(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 14) {
        PyErr_SetString(PyExc_TypeError, "fused_adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr, "
                                         "beta1, beta2, weight_decay, eps, adamw, maximize, lanes)");
        return NULL;
    }
    double h[5];
    for (int i = 0; i < 5; i++) {
        h[i] = PyFloat_AsDouble(args[6 + i]);
        if (h[i] == -1.0 && PyErr_Occurred())
            return NULL;
    }
    int adamw = PyObject_IsTrue(args[11]), maximize = PyObject_IsTrue(args[12]);
    Py_ssize_t lanes = PyLong_AsSsize_t(args[13]);
    if (adamw < 0 || maximize < 0 || (lanes == -1 && PyErr_Occurred()))
        return NULL;
    int ams = args[4] != Py_None;
    Py_ssize_t count = PyList_Check(args[0]) ? PyList_GET_SIZE(args[0]) : -1;
    for (int i = 1; i < 6; i++)
        if (!(i == 4 && !ams) && (!PyList_Check(args[i]) || PyList_GET_SIZE(args[i]) != count))
            count = -1;
    if (count < 0 || lanes < 1) {
        PyErr_SetString(PyExc_ValueError, "fused_adam: lists of one length (max_exp_avg_sqs None without amsgrad) and "
                                          "a positive lane count");
        return NULL;
    }
    double lr = h[0], beta1 = h[1], beta2 = h[2], wd = h[3], eps = h[4];
    FusedAdamH H;
    H.w = (float)(1 - beta1);
    H.small = fabsf(H.w) < 0.5f;
    H.coeff = H.small ? H.w : H.w - 1.0f;
    H.b2 = (float)beta2;
    H.c = (float)(1 - beta2);
    H.eps = (float)eps;
    H.decay = wd != 0;
    H.adamw = adamw;
    H.wdf = adamw ? (float)(1 - lr * wd) : (float)wd;
    H.maximize = maximize;
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *o[5];
        for (int i = 0; i < 5; i++)
            o[i] = i == 4 && !ams ? Py_None : PyList_GET_ITEM(args[i], k);
        double step = PyFloat_AsDouble(PyList_GET_ITEM(args[5], k));
        if ((step == -1.0 && PyErr_Occurred()) || fused_adam_one(o, step, lr, beta1, beta2, lanes, &H) < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

/* adam_group(params, grads, exp_avgs, exp_avg_sqs, steps, lr, weight_decay, decoupled, beta1, beta2, eps, op_times,
 * item_times) -> how many parameters it stepped: the recorded loop's work (adam.py _c_recorded under a default
 * profile) for a group's parameters in order, each as adam_moments then float(step_t.item()) then adam_update (part
 * 0) run it, stopping before the first parameter those refuse (nothing done to it). Per parameter k, op_times
 * (int64, 18 a parameter) gets the moments' ten slots then the update's eight; item_times (int64, 4 a parameter)
 * aten::item's start and end and its read's (_local_scalar_dense) start and end, for the profiler's records of the
 * same ops and regions (dispatch.record_times, _hooks.op_steps_at). The five sequences: lists or tuples of equal
 * length. */
static PyObject *mod_adam_group(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 13) {
        PyErr_SetString(PyExc_TypeError, "adam_group(params, grads, exp_avgs, exp_avg_sqs, steps, lr, weight_decay, "
                                         "decoupled, beta1, beta2, eps, op_times, item_times)");
        return NULL;
    }
    PyObject *seqs[5];
    Py_ssize_t n = -1;
    for (int i = 0; i < 5; i++) {
        if (!PyList_CheckExact(args[i]) && !PyTuple_CheckExact(args[i])) {
            PyErr_SetString(PyExc_TypeError, "adam_group: the arrays come as lists or tuples");
            return NULL;
        }
        seqs[i] = args[i];
        if (n >= 0 && PySequence_Fast_GET_SIZE(args[i]) != n) {
            PyErr_SetString(PyExc_ValueError, "adam_group: the five sequences differ in length");
            return NULL;
        }
        n = PySequence_Fast_GET_SIZE(args[i]);
    }
    double h[5];
    PyObject *hv[5] = {args[5], args[6], args[8], args[9], args[10]};
    int decoupled = PyObject_IsTrue(args[7]);
    if (decoupled < 0 || get_doubles(hv, 5, h) < 0)
        return NULL;
    if (arr_type == NULL)
        return PyLong_FromLong(0);
    long long *ot = NULL, *it = NULL;
    if (Py_TYPE(args[11]) == arr_type && ((ArrayHead *)args[11])->descr == i64_descr && arr_size(args[11]) >= 18 * n)
        ot = (long long *)arr_data(args[11], i64_descr, arr_size(args[11]), 1);
    if (Py_TYPE(args[12]) == arr_type && ((ArrayHead *)args[12])->descr == i64_descr && arr_size(args[12]) >= 4 * n)
        it = (long long *)arr_data(args[12], i64_descr, arr_size(args[12]), 1);
    if (ot == NULL || it == NULL) {
        PyErr_SetString(PyExc_TypeError, "adam_group: op_times and item_times are int64 arrays, 18 and 4 a parameter");
        return NULL;
    }
    double u[4] = {h[0], h[2], h[3], h[4]};
    Py_ssize_t k;
    for (k = 0; k < n; k++) {
        PyObject *arr[4] = {PySequence_Fast_GET_ITEM(seqs[0], k), PySequence_Fast_GET_ITEM(seqs[1], k),
                            PySequence_Fast_GET_ITEM(seqs[2], k), PySequence_Fast_GET_ITEM(seqs[3], k)};
        AdamArgs A;
        if (!adam_args(arr, PySequence_Fast_GET_ITEM(seqs[4], k), Py_None, 0, &A))
            break;
        A.tm = ot + 18 * k;
        if (adam_moments_run(&A, h, decoupled, NULL) < 0)
            return NULL;
        long long *t = it + 4 * k;
        t[0] = now_ns();                    /* aten::item */
        t[2] = now_ns();                    /* its read, _local_scalar_dense */
        double step = A.step_isd ? *(double *)A.step : (double)*(float *)A.step;
        t[3] = now_ns();
        t[1] = now_ns();
        A.tm = ot + 18 * k + 10;
        if (adam_update_run(&A, step, u, NULL, NULL, 0) < 0)
            return NULL;
    }
    return PyLong_FromSsize_t(k);
}

/* ---- clip_grad_norm_'s per-gradient ops (tensorlib/nn/utils/clip_grad.py, _fastmath.clip_norms / clip_scale) ----
 * Its op-by-op path runs, per gradient, the norm op's kernel (sqrt((g * g).sum()) for p=2: a product array, NumPy's
 * pairwise sum, the sqrt) and mul_'s (g *= coef); on a model's few dozen small gradients that is a hundred NumPy
 * calls of a microsecond or more each, where torch runs one _foreach_norm and one _foreach_mul_. These run each over
 * every gradient in one call, in NumPy's order and rounding (the squares rounded to the dtype, NumPy's pairwise sum
 * with its 8 accumulators and 128-element blocks, the correctly rounded sqrt; no FMA), so the values are the kernels'
 * to the bit (tests/tensorlib/test_fastmath.py compares them over sizes and layouts). With `times`, each gradient's op
 * is timed for the profiler's records of the same ops (dispatch.record_times). Operands as the Adam step reads them
 * (adam_setup): anything but aligned C-contiguous arrays of the output's dtype returns False with nothing written. */
#define SUMSQ(T)                                                                                                      \
    __attribute__((optimize("O3", "fp-contract=off"))) static T sumsq_##T(const T *a, Py_ssize_t n)                    \
    {                                                                                                                  \
        if (n < 8) {                                                                                                   \
            T res = (T)-0.0;                                                                                           \
            for (Py_ssize_t i = 0; i < n; i++)                                                                         \
                res += a[i] * a[i];                                                                                    \
            return res;                                                                                                \
        }                                                                                                              \
        if (n <= 128) {                                                                                                \
            T r[8];                                                                                                    \
            for (int j = 0; j < 8; j++)                                                                                \
                r[j] = a[j] * a[j];                                                                                    \
            Py_ssize_t i;                                                                                              \
            for (i = 8; i < n - (n % 8); i += 8)                                                                       \
                for (int j = 0; j < 8; j++)                                                                            \
                    r[j] += a[i + j] * a[i + j];                                                                       \
            T res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));                                 \
            for (; i < n; i++)                                                                                         \
                res += a[i] * a[i];                                                                                    \
            return res;                                                                                                \
        }                                                                                                              \
        Py_ssize_t n2 = n / 2;                                                                                         \
        n2 -= n2 % 8;                                                                                                  \
        return sumsq_##T(a, n2) + sumsq_##T(a + n2, n - n2);                                                           \
    }                                                                                                                  \
    __attribute__((optimize("O3", "fp-contract=off"))) static void scale_##T(T *a, T c, Py_ssize_t n)                  \
    {                                                                                                                  \
        for (Py_ssize_t i = 0; i < n; i++)                                                                             \
            a[i] = a[i] * c;                                                                                           \
    }
SUMSQ(float)
SUMSQ(double)

/* The arrays of seq (a list or tuple) checked as above against descr (writable if asked): 1, or 0 where one fails */
static int clip_operands(PyObject *seq, PyObject *descr, int writable)
{
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(seq, i);
        if (Py_TYPE(o) != arr_type || arr_data(o, descr, arr_size(o), writable) == NULL)
            return 0;
    }
    return 1;
}

/* times (None, or an int64 array of at least 2n elements): its data, or NULL with *ok = 0 where it does not pass */
static long long *clip_times(PyObject *times, Py_ssize_t n, int *ok)
{
    *ok = 1;
    if (times == Py_None)
        return NULL;
    char *t = Py_TYPE(times) == arr_type && arr_size(times) >= 2 * n ? arr_data(times, i64_descr, arr_size(times), 1)
                                                                      : NULL;
    *ok = t != NULL;
    return (long long *)t;
}

/* clip_norms(arrays, out, times): out[i] = the 2-norm of arrays[i] (NORM's kernel, p=2, over the whole array), out a
 * float32 or float64 array of len(arrays) elements, every array of its dtype -> bool.
 * clip_scale(arrays, coef, times[, before]): arrays[i] *= coef (mul_'s kernel with a 0-d operand of their dtype), coef
 * a 0-d float32 or float64 array, every array of its dtype and writable -> bool; `before`, None, a tuple (fn, *args)
 * with arrays a tuple: fn(*args) called before each array's product, its result dropped (clip_grad_norm_'s `to` of
 * the coefficient that precedes each mul_ under a profile: the region's step; an error of it stops the loop there,
 * the arrays before it scaled), or an int64 array of 2n: the (start, end) of an empty step before each product (that
 * `to` where it computes nothing: the coefficient already of the arrays' dtype and device, its region recorded by the
 * caller at these times, _hooks.op_steps_at). */
static PyObject *clip_run(PyObject *const *args, Py_ssize_t nargs, int scale)
{
    PyObject *before = scale && nargs == 4 && args[3] != Py_None ? args[3] : NULL;
    int stamp = before != NULL && Py_TYPE(before) == arr_type;
    if (!(nargs == 3 || (scale && nargs == 4)) || !(PyList_Check(args[0]) || PyTuple_Check(args[0])) ||
        (before != NULL && !stamp && (!PyTuple_Check(before) || PyTuple_GET_SIZE(before) < 1 ||
                                      !PyTuple_Check(args[0])))) {
        PyErr_SetString(PyExc_TypeError, scale ? "clip_scale(arrays, coef, times[, before]): before a tuple "
                                                 "(fn, *args) with arrays a tuple, or an int64 array"
                                               : "clip_norms(arrays, out, times)");
        return NULL;
    }
    if (arr_type == NULL || Py_TYPE(args[1]) != arr_type)
        Py_RETURN_FALSE;
    PyObject *seq = args[0], *descr = ((ArrayHead *)args[1])->descr;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    int ok;
    long long *t = clip_times(args[2], n, &ok), *bt = NULL;
    if (ok && stamp && (bt = clip_times(before, n, &ok)) == NULL)
        ok = 0;
    if (stamp)
        before = NULL;
    /* norms: the output, n writable elements; scale: the coefficient, one */
    char *x = (descr == f32_descr || descr == f64_descr) ? arr_data(args[1], descr, scale ? 1 : n, !scale) : NULL;
    if (!ok || x == NULL || !clip_operands(seq, descr, scale))
        Py_RETURN_FALSE;
    int f32 = descr == f32_descr;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(seq, i);
        char *a = ((ArrayHead *)o)->data;
        Py_ssize_t k = arr_size(o);
        if (before != NULL) {
            PyObject *r = PyObject_Vectorcall(PyTuple_GET_ITEM(before, 0), &PyTuple_GET_ITEM(before, 1),
                                              (size_t)(PyTuple_GET_SIZE(before) - 1), NULL);
            if (r == NULL)
                return NULL;
            Py_DECREF(r);
        }
        if (bt != NULL)
            bt[2 * i] = now_ns(), bt[2 * i + 1] = now_ns();
        long long t0 = t ? now_ns() : 0;
        if (scale && f32)
            scale_float((float *)a, *(const float *)x, k);
        else if (scale)
            scale_double((double *)a, *(const double *)x, k);
        else if (f32)       /* (0 +: the reduction's identity, as NumPy starts from) */
            ((float *)x)[i] = sqrtf(0.0f + sumsq_float((const float *)a, k));
        else
            ((double *)x)[i] = sqrt(0.0 + sumsq_double((const double *)a, k));
        if (t)
            t[2 * i] = t0, t[2 * i + 1] = now_ns();
    }
    Py_RETURN_TRUE;
}

static PyObject *mod_clip_norms(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return clip_run(args, nargs, 0);
}

static PyObject *mod_clip_scale(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return clip_run(args, nargs, 1);
}

/* stamps(out): out (an int64 array of 2n) filled with n (start, end) pairs of clock reads, one after another: the times
 * of n steps that compute nothing, for their regions (clip_grad_norm_'s `to` of each norm, _hooks.op_steps_at) ->
 * bool (False where out is not such an array: nothing written) */
static PyObject *mod_stamps(PyObject *self, PyObject *out)
{
    int ok;
    Py_ssize_t n = arr_type != NULL && Py_TYPE(out) == arr_type ? arr_size(out) / 2 : 0;
    long long *t = n ? clip_times(out, n, &ok) : NULL;
    if (t == NULL)
        Py_RETURN_FALSE;
    for (Py_ssize_t i = 0; i < n; i++)
        t[2 * i] = now_ns(), t[2 * i + 1] = now_ns();
    Py_RETURN_TRUE;
}

/* ---- transpose_scaled(w, scale, out): out[j, i] = w[i, j] * scale[i] (scale None: w[i, j]) for a C-contiguous m x n
 * w and n x m out of one float dtype, in 8 x 8 tiles within 128 x 128 blocks -- the recurrent layers' contiguous W_hh^T (halved rows for
 * an LSTM's sigmoid gates), where NumPy's copy of a transposed view walks one of the two arrays a column at a time
 * (4096 x 1024 float32: 19-30 ms). A product by a scale is NumPy's multiply (the same values). */
#define TRANSPOSE_TILE 8       /* a tile's rows of either array fit in a cache set's ways at a power-of-2 stride */
#define TRANSPOSE_BLOCK 64    /* a block's rows (pages) of both arrays fit in the TLB */
#define TRANSPOSE_LOOP(T)                                                                                            \
    __attribute__((optimize("O3", "fp-contract=off"))) static void transpose_##T(const T *w, const T *sc, T *out,  \
                                                                               Py_ssize_t m, Py_ssize_t n)          \
    {                                                                                                                \
        for (Py_ssize_t b0 = 0; b0 < m; b0 += TRANSPOSE_BLOCK)                                                       \
            for (Py_ssize_t c0 = 0; c0 < n; c0 += TRANSPOSE_BLOCK) {                                                 \
                Py_ssize_t b1 = b0 + TRANSPOSE_BLOCK < m ? b0 + TRANSPOSE_BLOCK : m;                                 \
                Py_ssize_t c1 = c0 + TRANSPOSE_BLOCK < n ? c0 + TRANSPOSE_BLOCK : n;                                 \
                for (Py_ssize_t i0 = b0; i0 < b1; i0 += TRANSPOSE_TILE)                                              \
                    for (Py_ssize_t j0 = c0; j0 < c1; j0 += TRANSPOSE_TILE) {                                        \
                        Py_ssize_t i1 = i0 + TRANSPOSE_TILE < b1 ? i0 + TRANSPOSE_TILE : b1;                         \
                        Py_ssize_t j1 = j0 + TRANSPOSE_TILE < c1 ? j0 + TRANSPOSE_TILE : c1;                         \
                        for (Py_ssize_t i = i0; i < i1; i++) {                                                       \
                            const T *row = w + i * n;                                                                \
                            if (sc) {                                                                                \
                                T s = sc[i];                                                                         \
                                for (Py_ssize_t j = j0; j < j1; j++)                                                 \
                                    out[j * m + i] = row[j] * s;                                                     \
                            } else                                                                                   \
                                for (Py_ssize_t j = j0; j < j1; j++)                                                 \
                                    out[j * m + i] = row[j];                                                         \
                        }                                                                                            \
                    }                                                                                                \
            }                                                                                                        \
    }
TRANSPOSE_LOOP(float)
TRANSPOSE_LOOP(double)

static PyObject *mod_transpose_scaled(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "transpose_scaled(w, scale, out)");
        return NULL;
    }
    Py_buffer bf[3];
    int isd;
    if (get_buffers(args, 3, bf, "010", "001", &isd) < 0)
        return NULL;
    Py_ssize_t item = isd ? 8 : 4;
    int ok = bf[0].ndim == 2 && bf[2].ndim == 2 && bf[2].shape[0] == bf[0].shape[1] && bf[2].shape[1] == bf[0].shape[0]
             && (bf[1].obj == NULL || bf[1].len == bf[0].shape[0] * item);
    char *a = bf[0].buf, *o = bf[2].buf;
    if (ok && bf[0].len && !(o + bf[2].len <= a || a + bf[0].len <= o))
        ok = 0;         /* (overlapping arrays) */
    if (!ok) {
        release_buffers(bf, 3);
        PyErr_SetString(PyExc_ValueError, "transpose_scaled: w of m x n, scale None or of m, out of n x m, apart");
        return NULL;
    }
    Py_ssize_t m = bf[0].shape[0], n = bf[0].shape[1];
    Py_BEGIN_ALLOW_THREADS
    if (isd)
        transpose_double(bf[0].buf, bf[1].buf, bf[2].buf, m, n);
    else
        transpose_float(bf[0].buf, bf[1].buf, bf[2].buf, m, n);
    Py_END_ALLOW_THREADS
    release_buffers(bf, 3);
    Py_RETURN_NONE;
}

/* ---- threshold_backward: out = y <= t ? 0 : g (ReLU's backward, torch's select: a NaN y passes g; an inf or NaN g
 * where y <= t gives 0) in one pass over C-contiguous buffers of one float dtype and length; out may be g or y.
 * NumPy's mask-then-product took two passes (a (64, 64, 30, 30) float32 gradient: 2.49 ms, torch 1.52). */
#define THRESHOLD_LOOP(T, U)                                                                                          \
    __attribute__((optimize("O3"))) static void threshold_bwd_##T(T *out, const T *g, const T *y, T t, Py_ssize_t n)  \
    {                                                                                                                 \
        for (Py_ssize_t i = 0; i < n; i++) { /* g's bits under an all-ones or zero mask: no branch (the signs of a */ \
            U gb, m = (U)0 - (U)!(y[i] <= t); /* gradient's outputs are random: a branch mispredicts half the time) */ \
            memcpy(&gb, g + i, sizeof gb);                                                                            \
            gb &= m;                                                                                                  \
            memcpy(out + i, &gb, sizeof gb);                                                                          \
        }                                                                                                             \
    }
THRESHOLD_LOOP(float, uint32_t)
THRESHOLD_LOOP(double, uint64_t)

static PyObject *mod_threshold_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "threshold_backward(g, y, out, threshold)");
        return NULL;
    }
    double t = PyFloat_AsDouble(args[3]);
    if (t == -1.0 && PyErr_Occurred())
        return NULL;
    Py_buffer bf[3];
    int isd;
    if (get_buffers(args, 3, bf, "000", "001", &isd) < 0)
        return NULL;
    Py_ssize_t len = bf[0].len;
    if (bf[1].len != len || bf[2].len != len) {
        release_buffers(bf, 3);
        PyErr_SetString(PyExc_ValueError, "threshold_backward: g, y and out of one length");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    if (isd)
        threshold_bwd_double(bf[2].buf, bf[0].buf, bf[1].buf, t, len / 8);
    else
        threshold_bwd_float(bf[2].buf, bf[0].buf, bf[1].buf, (float)t, len / 4);
    Py_END_ALLOW_THREADS
    release_buffers(bf, 3);
    Py_RETURN_NONE;
}

/* ---- float32 -> bfloat16, rounded to nearest even (ml_dtypes' and torch's rounding; a NaN becomes the quiet NaN
 * of its sign, 0x7fc0 / 0xffc0, as theirs): one pass where ml_dtypes' cast took 1.9 ns an element (6.4M: 12 ms,
 * its bfloat16 -> float32 2.3) */
__attribute__((optimize("O3"))) static void f32_to_bf16(const uint32_t *src, uint16_t *dst, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {   /* in 32-bit lanes, a mask for the NaNs: no branch, vectorised */
        uint32_t u = src[i];
        uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
        uint32_t q = ((u >> 16) & 0x8000u) | 0x7fc0u;
        uint32_t m = (uint32_t)0 - (uint32_t)((u & 0x7fffffffu) > 0x7f800000u);
        dst[i] = (uint16_t)((q & m) | (r & ~m));
    }
}

static PyObject *mod_f32_to_bf16(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "f32_to_bf16(src, dst)");
        return NULL;
    }
    Py_buffer s, d;
    if (PyObject_GetBuffer(args[0], &s, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &d, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&s);
        return NULL;
    }
    int ok = s.format && strcmp(s.format, "f") == 0 && d.format && strcmp(d.format, "H") == 0 && s.len / 4 == d.len / 2;
    if (!ok) {
        PyBuffer_Release(&s);
        PyBuffer_Release(&d);
        PyErr_SetString(PyExc_ValueError, "f32_to_bf16: a C-contiguous float32 src and uint16 dst of one length");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    f32_to_bf16(s.buf, d.buf, s.len / 4);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&s);
    PyBuffer_Release(&d);
    Py_RETURN_NONE;
}

/* ---- copy_(dst, src): dst[...] = src for arrays of one shape and item size, any strides (conv_ops' im2col) -----
 * np.copyto walks a windows view (N, G, Cg, kh, kw, OH, OW) of a padded image one inner run at a time through its
 * iterator, a few ns a run: with the runs a row of output pixels (30 floats for a 3x3 conv of a 32x32 plane) that
 * was most of the forward's column copy. Here the outer indices are counters and each run is one memcpy where both
 * sides are contiguous along it, else an element loop. No overlap between dst and src (the callers' buffers are
 * apart); at most 16 dimensions. */
#define COPY_MAXDIM 16
static void copy_run(char *d, const char *s, Py_ssize_t n, Py_ssize_t ds, Py_ssize_t ss, Py_ssize_t item)
{
    if (ds == item && ss == item) {
        memcpy(d, s, (size_t)(n * item));
        return;
    }
    switch (item) {
    case 4:
        for (Py_ssize_t i = 0; i < n; i++, d += ds, s += ss)
            memcpy(d, s, 4);
        break;
    case 8:
        for (Py_ssize_t i = 0; i < n; i++, d += ds, s += ss)
            memcpy(d, s, 8);
        break;
    default:
        for (Py_ssize_t i = 0; i < n; i++, d += ds, s += ss)
            memcpy(d, s, (size_t)item);
    }
}

static PyObject *mod_copy_(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "copy_(dst, src)");
        return NULL;
    }
    Py_buffer d, s;
    if (PyObject_GetBuffer(args[0], &d, PyBUF_RECORDS) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &s, PyBUF_RECORDS_RO) < 0) {
        PyBuffer_Release(&d);
        return NULL;
    }
    int nd = d.ndim, ok = nd == s.ndim && nd <= COPY_MAXDIM && d.itemsize == s.itemsize && d.format && s.format &&
                          strcmp(d.format, s.format) == 0;
    Py_ssize_t total = 1;
    for (int k = 0; ok && k < nd; k++) {
        ok = d.shape[k] == s.shape[k];
        total *= d.shape[k];
    }
    if (!ok) {
        PyBuffer_Release(&d);
        PyBuffer_Release(&s);
        PyErr_SetString(PyExc_ValueError, "copy_: dst and src of one shape and dtype, at most 16 dimensions");
        return NULL;
    }
    if (total > 0) {
        Py_BEGIN_ALLOW_THREADS
        Py_ssize_t item = d.itemsize;
        if (nd == 0)
            memcpy(d.buf, s.buf, (size_t)item);
        else {
            Py_ssize_t idx[COPY_MAXDIM] = {0}, n = d.shape[nd - 1], dsi = d.strides[nd - 1], ssi = s.strides[nd - 1];
            char *dp = d.buf;
            const char *sp = s.buf;
            for (;;) {
                copy_run(dp, sp, n, dsi, ssi, item);
                int k = nd - 2;
                for (; k >= 0; k--) {       /* the next outer index: carry into the dimension above */
                    dp += d.strides[k];
                    sp += s.strides[k];
                    if (++idx[k] < d.shape[k])
                        break;
                    dp -= d.strides[k] * d.shape[k];
                    sp -= s.strides[k] * d.shape[k];
                    idx[k] = 0;
                }
                if (k < 0)
                    break;
            }
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&d);
    PyBuffer_Release(&s);
    Py_RETURN_NONE;
}

/* ---- torch's sum (ATen/native/cpu/SumKernel.cpp's cascade_sum) ----------------------------------------------------
 * torch registers its sum kernel without AVX-512 (REGISTER_DISPATCH), so AVX2 and AVX-512 CPUs both run its AVX2 build:
 * vectors of 8 floats or 4 doubles, which the vector extensions below add lane by lane as it does (only additions: no
 * contraction, no reassociation). multi_row_sum: four accumulators over `size` rows, chunks of 2^level_power rows
 * summed apart and carried up four levels; row_sum: a run read as (-1, 4) rows (four interleaved sums), the rest into
 * the first, then the four added in order; a contiguous run of at least one vector: row_sum over its vectors, then a
 * scalar sum of the elements past them and of the vector's lanes in order; an outer reduction: groups of four vectors
 * of columns by multi_row_sum, then single vectors and single columns by row_sum. Checked against torch 2.13 on every
 * length to 80, shapes to 4-D and sizes to 70000 (1 thread: more threads split torch's sums). */
typedef float sum_v8f __attribute__((vector_size(32)));
typedef double sum_v4d __attribute__((vector_size(32)));

static inline int64_t sum_ceil_log2(int64_t x)
{
    return x <= 2 ? 1 : 64 - __builtin_clzll((unsigned long long)(x - 1));
}

#define SUM_LOAD_S(T, V, p) (*(p))
#define SUM_LOAD_V(T, V, p) ({ V v_; memcpy(&v_, (p), sizeof v_); v_; })

#define TORCH_SUM(T, V, L, SUF, ATTR)                                                                                \
    SUM_KERNELS(T, T, L, SUF##_s, SUM_LOAD_S, ATTR)                                                               \
    SUM_KERNELS(T, V, L, SUF##_v, SUM_LOAD_V, ATTR)                                                               \
    ATTR static T sum_inner_##SUF(const T *row, Py_ssize_t n)                                                      \
    {                                                                                                              \
        T fin = 0;                                                                                                 \
        if (n < L) {                                                                                               \
            sum_row_##SUF##_s(row, 1, n, &fin);                                                                    \
            return fin;                                                                                            \
        }                                                                                                          \
        Py_ssize_t vs = n / L;                                                                                     \
        V acc;                                                                                                     \
        sum_row_##SUF##_v(row, L, vs, &acc);                                                                   \
        for (Py_ssize_t k = vs * L; k < n; k++)                                                                    \
            fin += row[k];                                                                                         \
        for (int k = 0; k < L; k++)                                                                                \
            fin += acc[k];                                                                                         \
        return fin;                                                                                                \
    }                                                                                                              \
    /* out[j] = the sum over rows of x (red rows of inner elements) in column j */                                \
    ATTR static void sum_outer_##SUF(const T *x, Py_ssize_t red, Py_ssize_t inner, T *out)                       \
    {                                                                                                              \
        Py_ssize_t j = 0;                                                                                          \
        if (inner >= L) {                                                                                          \
            for (; j + 4 * L <= inner; j += 4 * L) {                                                               \
                V s[4];                                                                                            \
                sum_multi_##SUF##_v(x + j, inner, L, red, s);                                                      \
                for (int k = 0; k < 4; k++)                                                                        \
                    for (int l = 0; l < L; l++)                                                                    \
                        out[j + k * L + l] = (T)0 + s[k][l];                                                       \
            }                                                                                                      \
            for (; j + L <= inner; j += L) {                                                                       \
                V s;                                                                                               \
                sum_row_##SUF##_v(x + j, inner, red, &s);                                                          \
                for (int l = 0; l < L; l++)                                                                        \
                    out[j + l] = (T)0 + s[l];                                                                      \
            }                                                                                                      \
        } else {                                                                                                   \
            for (; j + 3 < inner; j += 4) {                                                                        \
                T s[4];                                                                                            \
                sum_multi_##SUF##_s(x + j, inner, 1, red, s);                                                      \
                for (int k = 0; k < 4; k++)                                                                        \
                    out[j + k] = (T)0 + s[k];                                                                      \
            }                                                                                                      \
        }                                                                                                          \
        for (; j < inner; j++) {                                                                                   \
            T s;                                                                                                   \
            sum_row_##SUF##_s(x + j, inner, red, &s);                                                              \
            out[j] = (T)0 + s;                                                                                     \
        }                                                                                                          \
    }

/* multi_row_sum and row_sum of accumulator A (a scalar T or a vector V) */
#define SUM_KERNELS(T, A, L, SUF, LOAD, ATTR)                                                                        \
    ATTR static void sum_multi_##SUF(const T *base, Py_ssize_t rs, Py_ssize_t cs, Py_ssize_t size, A out[4])          \
    {                                                                                                              \
        const int64_t power = sum_ceil_log2(size) / 4 > 4 ? sum_ceil_log2(size) / 4 : 4;                           \
        const int64_t step = (int64_t)1 << power, mask = step - 1;                                                 \
        A acc[4][4], zero;                                                                                         \
        memset(acc, 0, sizeof acc);                                                                                \
        memset(&zero, 0, sizeof zero);                                                                             \
        Py_ssize_t i = 0;                                                                                          \
        while (i + step <= size) {                                                                                 \
            for (int64_t j = 0; j < step; j++, i++)                                                                \
                for (int k = 0; k < 4; k++)                                                                        \
                    acc[0][k] += LOAD(T, A, base + i * rs + k * cs);                                               \
            for (int j = 1; j < 4; j++) {                                                                          \
                for (int k = 0; k < 4; k++) {                                                                      \
                    acc[j][k] += acc[j - 1][k];                                                                    \
                    acc[j - 1][k] = zero;                                                                          \
                }                                                                                                  \
                if ((i & (mask << (j * power))) != 0)                                                              \
                    break;                                                                                         \
            }                                                                                                      \
        }                                                                                                          \
        for (; i < size; i++)                                                                                      \
            for (int k = 0; k < 4; k++)                                                                            \
                acc[0][k] += LOAD(T, A, base + i * rs + k * cs);                                                   \
        for (int j = 1; j < 4; j++)                                                                                \
            for (int k = 0; k < 4; k++)                                                                            \
                acc[0][k] += acc[j][k];                                                                            \
        for (int k = 0; k < 4; k++)                                                                                \
            out[k] = acc[0][k];                                                                                    \
    }                                                                                                              \
    ATTR static void sum_row_##SUF(const T *base, Py_ssize_t stride, Py_ssize_t size, A *res)                    \
    {                                                                                                              \
        A p[4];                                                                                                    \
        Py_ssize_t k = size / 4;                                                                                   \
        sum_multi_##SUF(base, 4 * stride, stride, k, p);                                                           \
        for (Py_ssize_t i = k * 4; i < size; i++)                                                                  \
            p[0] += LOAD(T, A, base + i * stride);                                                                 \
        for (int c = 1; c < 4; c++)                                                                                \
            p[0] += p[c];                                                                                          \
        *res = p[0];                                                                                               \
    }

TORCH_SUM(float, sum_v8f, 8, f, )
TORCH_SUM(double, sum_v4d, 4, d, )
#if defined(__x86_64__) || defined(__i386__)
TORCH_SUM(float, sum_v8f, 8, f_avx2, __attribute__((target("avx2"))))
TORCH_SUM(double, sum_v4d, 4, d_avx2, __attribute__((target("avx2"))))
#endif

#if defined(__x86_64__) || defined(__i386__)
#define SUM_AVX2(call) (call)
#else
#define SUM_AVX2(call) 0       /* (never reached: no AVX2 variant off x86) */
#endif

/* sum_cascade(x, out, outer, red, inner): torch's sums of C-contiguous x (float32 or float64) read as (outer, red,
 * inner) over its middle dim into out (outer * inner elements of x's dtype) */
static PyObject *mod_sum_cascade(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "sum_cascade(x, out, outer, red, inner)");
        return NULL;
    }
    Py_ssize_t dims[3];
    for (int i = 0; i < 3; i++) {
        dims[i] = PyLong_AsSsize_t(args[2 + i]);
        if (dims[i] == -1 && PyErr_Occurred())
            return NULL;
    }
    Py_buffer bf[2];
    int isd;
    if (get_buffers(args, 2, bf, "00", "01", &isd) < 0)
        return NULL;
    Py_ssize_t outer = dims[0], red = dims[1], inner = dims[2], item = isd ? 8 : 4;
    if (outer < 0 || red < 0 || inner < 0 || bf[0].len != outer * red * inner * item ||
        bf[1].len != outer * inner * item) {
        release_buffers(bf, 2);
        PyErr_SetString(PyExc_ValueError, "sum_cascade: x of outer * red * inner elements, out of outer * inner");
        return NULL;
    }
    PyThreadState *ts = bf[0].len >= (1 << 18) ? PyEval_SaveThread() : NULL;
#if defined(__x86_64__) || defined(__i386__)
    int avx2 = use_avx2;
#else
    int avx2 = 0;
#endif
    for (Py_ssize_t o = 0; o < outer; o++) {
        if (isd) {
            const double *x = (const double *)bf[0].buf + o * red * inner;
            double *out = (double *)bf[1].buf + o * inner;
            if (inner == 1)
                out[0] = 0.0 + (avx2 ? SUM_AVX2(sum_inner_d_avx2(x, red)) : sum_inner_d(x, red));
            else if (avx2)
                SUM_AVX2(sum_outer_d_avx2(x, red, inner, out));
            else
                sum_outer_d(x, red, inner, out);
        } else {
            const float *x = (const float *)bf[0].buf + o * red * inner;
            float *out = (float *)bf[1].buf + o * inner;
            if (inner == 1)
                out[0] = 0.0f + (avx2 ? SUM_AVX2(sum_inner_f_avx2(x, red)) : sum_inner_f(x, red));
            else if (avx2)
                SUM_AVX2(sum_outer_f_avx2(x, red, inner, out));
            else
                sum_outer_f(x, red, inner, out);
        }
    }
    if (ts != NULL)
        PyEval_RestoreThread(ts);
    release_buffers(bf, 2);
    Py_RETURN_NONE;
}

/* ---- nll_loss's reduction: torch's cascade of partial sums ----------------------------------------------------------
 * nll_sum(x, w, keep): (-(x[0] w[0] + x[1] w[1] + ...), w[0] + w[1] + ...) over the rows where keep is not 0, as
 * torch's nll_loss_out_frame sums a batch's picked log-probabilities and their class weights (ATen/native/
 * LossNLL.cpp): eight partial sums, each product subtracted from the first, a level flushed into the next every
 * 2^power rows of the level below (power 4 up to 2^32 rows), after each kept row (an ignored row is skipped, its
 * flush too), the eight added in order at the end; in x's float type, C-contiguous float32/float64 buffers of one
 * length; w None: no weights (the count of kept rows), keep None: every row. A pair of Python floats. One pass;
 * NumPy's pairwise sum differed in the last bits of a classifier's loss. */
#define NLL_CASCADE(T)                                                                                              \
    static void nll_cascade_##T(const T *x, const T *w, const T *keep, Py_ssize_t n, double *loss, double *weight)  \
    {                                                                                                               \
        int ceil_log2 = 1;                                                                                          \
        while (((Py_ssize_t)1 << ceil_log2) < n)                                                                    \
            ceil_log2++;                                                                                            \
        const int power = ceil_log2 / 8 > 4 ? ceil_log2 / 8 : 4;                                                    \
        const int64_t mask = ((int64_t)1 << power) - 1;                                                             \
        T p[8] = {0}, q[8] = {0};                                                                                   \
        int64_t kept = 0;                                                                                           \
        for (int64_t b = 0; b < n; b++) {                                                                           \
            if (keep != NULL && keep[b] == 0)                                                                       \
                continue;                                                                                           \
            kept++;                                                                                                 \
            if (w != NULL) {                                                                                        \
                T prod = x[b] * w[b];                                                                               \
                p[0] -= prod;                                                                                       \
                q[0] += w[b];                                                                                       \
            } else {                                                                                                \
                p[0] -= x[b];                                                                                       \
            }                                                                                                       \
            for (int j = 0; j + 1 < 8; j++) {                                                                       \
                if (b & (mask << (j * power)))                                                                      \
                    break;                                                                                          \
                p[j + 1] += p[j];                                                                                   \
                q[j + 1] += q[j];                                                                                   \
                p[j] = q[j] = 0;                                                                                    \
            }                                                                                                       \
        }                                                                                                           \
        T out = 0, total = 0;                                                                                       \
        for (int j = 0; j < 8; j++) {                                                                               \
            out += p[j];                                                                                            \
            total += q[j];                                                                                          \
        }                                                                                                           \
        *loss = (double)out;                                                                                        \
        *weight = w != NULL ? (double)total : (double)(T)kept;                                                      \
    }
NLL_CASCADE(float)
NLL_CASCADE(double)

static PyObject *mod_nll_sum(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "nll_sum(x, w, keep)");
        return NULL;
    }
    Py_buffer bf[3];
    int isd;
    if (get_buffers(args, 3, bf, "011", "000", &isd) < 0)
        return NULL;
    if ((bf[1].buf != NULL && bf[1].len != bf[0].len) || (bf[2].buf != NULL && bf[2].len != bf[0].len)) {
        release_buffers(bf, 3);
        PyErr_SetString(PyExc_ValueError, "nll_sum: x, w and keep of one length");
        return NULL;
    }
    double loss, weight;
    if (isd)
        nll_cascade_double(bf[0].buf, bf[1].buf, bf[2].buf, bf[0].len / 8, &loss, &weight);
    else
        nll_cascade_float(bf[0].buf, bf[1].buf, bf[2].buf, bf[0].len / 4, &loss, &weight);
    release_buffers(bf, 3);
    return Py_BuildValue("(dd)", loss, weight);
}

/* ---- add_rows(out, index, src): out[index[i], :] += src[i, :] for i in order ----------------------------------------
 * The accumulating index_put_ / index_add_ along dim 0 (an embedding's or an index's backward: repeated indices add up
 * in their order, as NumPy's add.at and torch's serial loop add them), for C-contiguous float32/float64 out (rows of
 * `inner` elements) and src (n rows) of one dtype and an int64 index of n entries in [0, rows) (the caller checks and
 * wraps them). One pass: NumPy's add.at ran per element (10 ns each), its sorted rounds one fancy-index addition per
 * repeat (a bigram model's backward: 512 rows into 27, 124 µs). */
#define ADD_ROWS(T)                                                                                                 \
    static void add_rows_##T(T *restrict out, const int64_t *index, const T *restrict src, Py_ssize_t n,           \
                             Py_ssize_t inner)                                                                      \
    {                                                                                                               \
        for (Py_ssize_t i = 0; i < n; i++) {                                                                        \
            T *o = out + index[i] * inner;                                                                          \
            const T *v = src + i * inner;                                                                           \
            for (Py_ssize_t j = 0; j < inner; j++)                                                                  \
                o[j] += v[j];                                                                                       \
        }                                                                                                           \
    }
ADD_ROWS(float)
ADD_ROWS(double)

static PyObject *mod_add_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "add_rows(out, index, src)");
        return NULL;
    }
    Py_buffer o, ix, v;
    if (PyObject_GetBuffer(args[0], &o, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &ix, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&o);
        return NULL;
    }
    if (PyObject_GetBuffer(args[2], &v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&o);
        PyBuffer_Release(&ix);
        return NULL;
    }
    const char *fo = o.format ? o.format : "B", *fv = v.format ? v.format : "B", *fi = ix.format ? ix.format : "B";
    int isd = strcmp(fo, "d") == 0;
    Py_ssize_t item = isd ? 8 : 4, n = ix.len / 8, rows = o.ndim > 0 ? o.shape[0] : 0;
    int ok = (isd || strcmp(fo, "f") == 0) && strcmp(fo, fv) == 0 && ix.itemsize == 8 &&
             (strcmp(fi, "q") == 0 || strcmp(fi, "l") == 0) && rows > 0 && n > 0 && (o.len / item) % rows == 0 &&
             v.len == n * (o.len / rows) &&
             ((char *)v.buf + v.len <= (char *)o.buf || (char *)o.buf + o.len <= (char *)v.buf);
    if (ok) {       /* every index in range (the caller checked; a wrong one here would write out of bounds) */
        const int64_t *idx = ix.buf;
        for (Py_ssize_t i = 0; i < n && ok; i++)
            ok = idx[i] >= 0 && idx[i] < rows;
    }
    if (!ok) {
        PyBuffer_Release(&o);
        PyBuffer_Release(&ix);
        PyBuffer_Release(&v);
        PyErr_SetString(PyExc_ValueError, "add_rows: C-contiguous out (rows, ...) and src (n, ...) of one float dtype "
                                          "and size per row, apart, and an int64 index of n entries in [0, rows)");
        return NULL;
    }
    Py_ssize_t inner = o.len / item / rows;
    Py_BEGIN_ALLOW_THREADS
    if (isd)
        add_rows_double(o.buf, ix.buf, v.buf, n, inner);
    else
        add_rows_float(o.buf, ix.buf, v.buf, n, inner);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&o);
    PyBuffer_Release(&ix);
    PyBuffer_Release(&v);
    Py_RETURN_NONE;
}

static PyObject *mod_available(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(use_avx2);
}

/* torch_lanes([w]): torch's float lanes on this CPU (see torch_w), set to w (8 or 16) when given */
static PyObject *mod_torch_lanes(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "torch_lanes([w])");
        return NULL;
    }
    if (nargs == 1) {
        long w = PyLong_AsLong(args[0]);
        if (w != 8 && w != 16) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "torch_lanes: 8 or 16");
            return NULL;
        }
        torch_w = (int)w;
    }
    return PyLong_FromLong(torch_w);
}

/* ---- small GEMMs on MKL: torch's addmm and mm below tensorlib/_blas.py's MIN_MNK, without ctypes ----
 * torch's CPU build runs every float32/float64 product on MKL, whose sums differ from OpenBLAS's (np.matmul's) in
 * most elements of a product of any size: a Linear layer's output, and from it every later step of a small model,
 * parted from torch's at the first step. _blas binds MKL's cblas_sgemm/cblas_dgemm here (bind_gemm) once it has
 * loaded the library; gemm_small then runs such a product in one C call, its output allocated by np.empty. */
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *,
                         int);
typedef void (*dgemm_fn)(int, int, int, int, int, int, double, const double *, int, const double *, int, double,
                         double *, int);
static sgemm_fn small_sgemm;
static dgemm_fn small_dgemm;
static PyObject *np_empty, *s_dtype_name;

static PyObject *mod_bind_gemm(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyLong_Check(args[0]) || !PyLong_Check(args[1]) || !PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "bind_gemm(cblas_sgemm address, cblas_dgemm address, numpy.empty)");
        return NULL;
    }
    void *fs = PyLong_AsVoidPtr(args[0]), *fd = PyLong_AsVoidPtr(args[1]);
    if (PyErr_Occurred())
        return NULL;
    if (s_dtype_name == NULL && (s_dtype_name = PyUnicode_InternFromString("dtype")) == NULL)
        return NULL;
    Py_XSETREF(np_empty, Py_NewRef(args[2]));
    small_sgemm = (sgemm_fn)fs;
    small_dgemm = (dgemm_fn)fd;
    Py_RETURN_NONE;
}

/* CBLAS's reading of a 2-d buffer of `item`-byte elements: 111 (NoTrans) with rows contiguous, 112 (Trans) with
 * columns contiguous, its leading dimension in *ld; 0 for any other layout (as _blas._operand decides) */
static int gemm_layout(const Py_buffer *v, Py_ssize_t item, int *ld)
{
    Py_ssize_t s0 = v->strides[0], s1 = v->strides[1], rows = v->shape[0], cols = v->shape[1];
    if (s1 == item && s0 % item == 0 && s0 >= cols * item && s0 / item < INT_MAX) {
        *ld = (int)(s0 / item);
        return 111;
    }
    if (s0 == item && s1 % item == 0 && s1 >= rows * item && s1 / item < INT_MAX) {
        *ld = (int)(s1 / item);
        return 112;
    }
    return 0;
}

/* a 2-d buffer CBLAS cannot read in place (a broadcast gradient's stride 0, a strided slice) copied to C order, as
 * torch's addmm makes such an operand contiguous first; NULL when out of memory */
static void *gemm_pack(const Py_buffer *v, Py_ssize_t item)
{
    Py_ssize_t rows = v->shape[0], cols = v->shape[1];
    char *p = PyMem_Malloc(rows * cols * item), *q = p;
    if (p == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < rows; i++)
        for (Py_ssize_t j = 0; j < cols; j++, q += item)
            memcpy(q, (const char *)v->buf + i * v->strides[0] + j * v->strides[1], item);
    return p;
}

/* gemm_small(c, a, b, beta, alpha): beta * c + alpha * (a @ b) as torch's addmm runs it -- c copied into the output,
 * then one GEMM with alpha and beta (c None or beta 0: c not read), for 2-d float32/float64 a (m, k) and b (k, n) of one dtype (read in place with rows or
 * columns contiguous, else copied to C order first, as torch's addmm does), m, n, k from 1 up; c of their dtype,
 * broadcasting to (m, n) ((), (n,), (1, n), (m, 1), (m, n)), any strides (an expanded input's 0 too). Returns the new
 * C-contiguous (m, n) array, or None where it does not apply (MKL not bound, another dtype or shape). */
static PyObject *mod_gemm_small(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    double beta = nargs == 5 ? PyFloat_AsDouble(args[3]) : 0.0, alpha = nargs == 5 ? PyFloat_AsDouble(args[4]) : 0.0;
    if (nargs != 5 || PyErr_Occurred()) {
        PyErr_SetString(PyExc_TypeError, "gemm_small(c, a, b, beta, alpha): beta and alpha numbers");
        return NULL;
    }
    if (small_sgemm == NULL || small_dgemm == NULL || np_empty == NULL)
        Py_RETURN_NONE;
    PyObject *c = args[0];
    int have_c = c != Py_None && beta != 0.0, nb = 0;       /* (beta 0: c ignored, its NaNs too, as torch's) */
    Py_buffer bf[3];
    for (int i = 0; i < 2 + have_c; i++, nb++)
        if (PyObject_GetBuffer(i < 2 ? args[i + 1] : c, &bf[i], PyBUF_STRIDES | PyBUF_FORMAT) < 0) {
            PyErr_Clear();          /* (not an array NumPy lends: the caller's path) */
            release_buffers(bf, nb);
            Py_RETURN_NONE;
        }
    Py_buffer *a = &bf[0], *b = &bf[1], *cb = &bf[2];
    const char *fa = a->format ? a->format : "B", *fb = b->format ? b->format : "B";
    int isd = strcmp(fa, "d") == 0, ta = 0, tb = 0, lda = 0, ldb = 0;
    Py_ssize_t item = isd ? 8 : 4, m = 0, n = 0, k = 0;
    int ok = (isd || strcmp(fa, "f") == 0) && strcmp(fa, fb) == 0 && a->ndim == 2 && b->ndim == 2 &&
             a->itemsize == item && b->itemsize == item;
    if (ok) {
        m = a->shape[0], k = a->shape[1], n = b->shape[1];
        ok = b->shape[0] == k && m >= 1 && n >= 1 && k >= 1 && m < INT_MAX && n < INT_MAX && k < INT_MAX;
    }
    void *pa = NULL, *pb = NULL;        /* C-order copies of operands CBLAS cannot read in place */
    if (ok && (ta = gemm_layout(a, item, &lda)) == 0) {
        ok = (pa = gemm_pack(a, item)) != NULL;
        ta = 111, lda = (int)k;
    }
    if (ok && (tb = gemm_layout(b, item, &ldb)) == 0) {
        ok = (pb = gemm_pack(b, item)) != NULL;
        tb = 111, ldb = (int)n;
    }
    Py_ssize_t cs0 = 0, cs1 = 0;        /* c's strides over the output's rows and columns (0: broadcast) */
    if (ok && have_c) {         /* c broadcasts to (m, n): 0 to 2 dims, each the output's or 1 */
        const char *fc = cb->format ? cb->format : "B";
        int nd = cb->ndim;
        Py_ssize_t rows = nd == 2 ? cb->shape[0] : 1, cols = nd >= 1 ? cb->shape[nd - 1] : 1;
        ok = strcmp(fc, fa) == 0 && cb->itemsize == item && nd <= 2 && (rows == m || rows == 1) &&
             (cols == n || cols == 1);
        cs0 = nd == 2 && rows != 1 ? cb->strides[0] : 0, cs1 = nd >= 1 && cols != 1 ? cb->strides[nd - 1] : 0;
    }
    PyObject *out = NULL, *shape = NULL, *dt = NULL;
    Py_buffer o;
    if (!ok || (shape = Py_BuildValue("(nn)", m, n)) == NULL ||
        (dt = PyObject_GetAttr(args[1], s_dtype_name)) == NULL ||
        (out = PyObject_CallFunctionObjArgs(np_empty, shape, dt, NULL)) == NULL ||
        PyObject_GetBuffer(out, &o, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        Py_XDECREF(shape);
        Py_XDECREF(dt);
        Py_XDECREF(out);
        PyMem_Free(pa);
        PyMem_Free(pb);
        release_buffers(bf, nb);
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    Py_DECREF(shape);
    Py_DECREF(dt);
    if (have_c)         /* c broadcast into the output (a bias row, or addmm's expanded input) */
        for (Py_ssize_t i = 0; i < m; i++) {
            char *dst = (char *)o.buf + i * n * item;
            const char *src = (const char *)cb->buf + i * cs0;
            if (cs1 == item)
                memcpy(dst, src, n * item);
            else
                for (Py_ssize_t j = 0; j < n; j++)
                    memcpy(dst + j * item, src + j * cs1, item);
        }
    const void *da = pa ? pa : a->buf, *db = pb ? pb : b->buf;
    if (!have_c)
        beta = 0.0;
    /* a 1 x 1 result (a dot product): torch's addmm_impl_cpu_ calls column-major gemm with b transposed ('T', its
     * column read at its stride), whose sum MKL orders otherwise than the row-major call's (a sequential fma) */
    Py_ssize_t sa = pa ? 1 : a->strides[1] / item, sb = pb ? 1 : b->strides[0] / item;
    int dot = m == 1 && n == 1 && sa >= 1 && sb >= 1 && sa < INT_MAX && sb < INT_MAX;
    int order = dot ? 102 : 101;
    if (dot)
        ta = 111, tb = 112, lda = (int)sa, ldb = (int)sb;
    PyThreadState *ts = (double)m * n * k >= (1 << 18) ? PyEval_SaveThread() : NULL;    /* (a large one: let go) */
    if (isd)
        small_dgemm(order, ta, tb, (int)m, (int)n, (int)k, alpha, da, lda, db, ldb, beta, o.buf, (int)n);
    else
        small_sgemm(order, ta, tb, (int)m, (int)n, (int)k, (float)alpha, da, lda, db, ldb, (float)beta, o.buf, (int)n);
    if (ts != NULL)
        PyEval_RestoreThread(ts);
    PyMem_Free(pa);
    PyMem_Free(pb);
    PyBuffer_Release(&o);
    release_buffers(bf, nb);
    return out;
}

static PyMethodDef module_methods[] = {
    {"exp_f32", (PyCFunction)(void (*)(void))mod_exp_f32, METH_FASTCALL, "exp_f32(x, out): out = exp(x), float32"},
    {"tanh_f32", (PyCFunction)(void (*)(void))mod_tanh_f32, METH_FASTCALL, "tanh_f32(x, out): out = tanh(x), float32"},
    {"copy_", (PyCFunction)(void (*)(void))mod_copy_, METH_FASTCALL,
     "copy_(dst, src): dst[...] = src, arrays of one shape and dtype, any strides, not overlapping"},
    {"threshold_backward", (PyCFunction)(void (*)(void))mod_threshold_backward, METH_FASTCALL,
     "threshold_backward(g, y, out, threshold): out = where(y <= threshold, 0, g), float32/float64 buffers"},
    {"f32_to_bf16", (PyCFunction)(void (*)(void))mod_f32_to_bf16, METH_FASTCALL,
     "f32_to_bf16(src, dst): float32 to bfloat16 bits (uint16), rounded to nearest even"},
    {"available", mod_available, METH_NOARGS, "whether the AVX2 path runs on this CPU"},
    {"bind_gemm", (PyCFunction)(void (*)(void))mod_bind_gemm, METH_FASTCALL,
     "bind_gemm(sgemm, dgemm, empty): MKL's cblas_sgemm and cblas_dgemm addresses for gemm_small, and numpy.empty"},
    {"gemm_small", (PyCFunction)(void (*)(void))mod_gemm_small, METH_FASTCALL,
     "gemm_small(c, a, b, beta, alpha): beta * c + alpha * (a @ b) as torch's addmm on the bound MKL GEMM, or None"},
    {"add_rows", (PyCFunction)(void (*)(void))mod_add_rows, METH_FASTCALL,
     "add_rows(out, index, src): out[index[i]] += src[i] in order, float32/float64 rows, int64 index"},
    {"log_softmax_backward_rows", (PyCFunction)(void (*)(void))mod_log_softmax_backward_rows, METH_FASTCALL,
     "log_softmax_backward_rows(g, y, out, n): out = g - exp(y) * sum(g) over rows of n float32 elements"},
    {"nll_sum", (PyCFunction)(void (*)(void))mod_nll_sum, METH_FASTCALL,
     "nll_sum(x, w, keep): (-sum(x * w), sum(w)) over kept rows in torch's nll_loss cascade order, float32/float64"},
    {"torch_lanes", (PyCFunction)(void (*)(void))mod_torch_lanes, METH_FASTCALL,
     "torch_lanes([w]): torch's Vectorized<float> lanes on this CPU (8 or 16), set to w when given"},
    {"silu_f32", (PyCFunction)(void (*)(void))mod_silu_f32, METH_FASTCALL,
     "silu_f32(g, x, out, w): torch's float32 silu (g None) or silu_backward on w lanes; False without AVX2"},
    {"sigmoid_f32", (PyCFunction)(void (*)(void))mod_sigmoid_f32, METH_FASTCALL,
     "sigmoid_f32(x, out): out = sigmoid(x) as torch's float32 kernel computes it, float32"},
    {"adam_vml", (PyCFunction)(void (*)(void))mod_adam_vml, METH_FASTCALL,
     "adam_vml(vs, vd): MKL VML's vsSqrt/vdSqrt addresses (None: the loop's sqrt) for Adam's update"},
    {"vml", (PyCFunction)(void (*)(void))mod_vml, METH_FASTCALL,
     "vml(fn, x, out): out = f(x) by MKL VML's function at address fn, float32 or float64"},
    {"fma_", (PyCFunction)(void (*)(void))mod_fma_, METH_FASTCALL,
     "fma_(kind, out, a, b, c, s): torch's fused add(alpha=) (0), lerp (1), addcmul (2), float32 or float64"},
    {"addcdiv_", (PyCFunction)(void (*)(void))mod_addcdiv_, METH_FASTCALL,
     "addcdiv_(a, t1, t2, value): a += t1 * value / t2 in one pass, float32 or float64"},
    {"gelu_f32", (PyCFunction)(void (*)(void))mod_gelu_f32, METH_FASTCALL,
     "gelu_f32(x, out, px, qx, clip): out = x * normal_cdf32(x), float32"},
    {"gelu_backward_f32", (PyCFunction)(void (*)(void))mod_gelu_backward_f32, METH_FASTCALL,
     "gelu_backward_f32(g, x, out, px, qx, clip): GELU's input gradient, float32"},
    {"lstm_step", (PyCFunction)(void (*)(void))mod_lstm_step, METH_FASTCALL,
     "lstm_step(gates, x, halve, acts, c, c_out, h_out, hidden): an LSTM step's pointwise part"},
    {"lstm_step_backward", (PyCFunction)(void (*)(void))mod_lstm_step_backward, METH_FASTCALL,
     "lstm_step_backward(dh, dc, g_out, acts, c_prev, tanh_c, d, hidden): an LSTM step's backward before its "
     "product, the gates' slopes made in the loop"},
    {"layer_norm_rows", (PyCFunction)(void (*)(void))mod_layer_norm_rows, METH_FASTCALL,
     "layer_norm_rows(x, w, b, eps, y, mu, rstd): layer_norm over the rows of x, float32 or float64"},
    {"layer_norm_rows_backward", (PyCFunction)(void (*)(void))mod_layer_norm_rows_backward, METH_FASTCALL,
     "layer_norm_rows_backward(g, x, mu, rstd, w, gx, gw, gb): its input gradients (None: not wanted)"},
    {"batch_norm_channels", (PyCFunction)(void (*)(void))mod_batch_norm_channels, METH_FASTCALL,
     "batch_norm_channels(x, w, b, rm, rv, training, momentum, eps, y, mu, rstd, n): batch_norm over x's channels"},
    {"batch_norm_channels_backward", (PyCFunction)(void (*)(void))mod_batch_norm_channels_backward, METH_FASTCALL,
     "batch_norm_channels_backward(g, x, mu, rstd, w, gx, gw, gb, training, n): its input gradients (None: not "
     "wanted)"},
    {"adam_setup", (PyCFunction)(void (*)(void))mod_adam_setup, METH_FASTCALL,
     "adam_setup(ndarray, probes, float32, float64, int64): whether adam_* read NumPy's arrays (their struct checked)"},
    {"adam_moments", (PyCFunction)(void (*)(void))mod_adam_moments, METH_FASTCALL,
     "adam_moments(p, grad, exp_avg, exp_avg_sq, step, lr, weight_decay, decoupled, beta1, beta2, times, "
     "decayed_grad) -> bool"},
    {"adam_update", (PyCFunction)(void (*)(void))mod_adam_update, METH_FASTCALL,
     "adam_update(p, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, times, sqrt_out, denom_out, part) -> bool"},
    {"adam_group", (PyCFunction)(void (*)(void))mod_adam_group, METH_FASTCALL,
     "adam_group(params, grads, exp_avgs, exp_avg_sqs, steps, lr, weight_decay, decoupled, beta1, beta2, eps, "
     "op_times, item_times) -> parameters stepped"},
    {"sum_cascade", (PyCFunction)(void (*)(void))mod_sum_cascade, METH_FASTCALL,
     "sum_cascade(x, out, outer, red, inner): torch's sum (its cascade, AVX2 lanes) of C-contiguous float32/float64 x "
     "as (outer, red, inner) over the middle dim into out"},
    {"fused_adam", (PyCFunction)(void (*)(void))mod_fused_adam, METH_FASTCALL,
     "fused_adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr, beta1, beta2, weight_decay, eps, "
     "adamw, maximize, lanes): torch's fused Adam/AdamW step over lists (float32, or bfloat16 as uint16), in place"},
    {"adam_step", (PyCFunction)(void (*)(void))mod_adam_step, METH_FASTCALL,
     "adam_step(p, grad, exp_avg, exp_avg_sq, step, lr, weight_decay, decoupled, beta1, beta2, eps) -> bool"},
    {"softmax_rows", (PyCFunction)(void (*)(void))mod_softmax_rows, METH_FASTCALL,
     "softmax_rows(x, out, n, dead_zero): out = softmax of x over rows of n float32 elements (the vector path only)"},
    {"leaky_f32", (PyCFunction)(void (*)(void))mod_leaky_f32, METH_FASTCALL,
     "leaky_f32(x, a, out, s): out = where(x > 0, a, a * s) over float32 buffers (leaky_relu and its backward)"},
    {"softmax_backward_rows", (PyCFunction)(void (*)(void))mod_softmax_backward_rows, METH_FASTCALL,
     "softmax_backward_rows(p, dp, out, n): out = p * (dp - sum(dp * p)) over rows of n float32 elements (the vector "
     "path only)"},
    {"log_softmax_rows", (PyCFunction)(void (*)(void))mod_log_softmax_rows, METH_FASTCALL,
     "log_softmax_rows(x, out, n): out = log_softmax of x over rows of n float32 elements (the vector path only)"},
    {"clip_norms", (PyCFunction)(void (*)(void))mod_clip_norms, METH_FASTCALL,
     "clip_norms(arrays, out, times): out[i] = the 2-norm of arrays[i], NumPy's bits (clip_grad_norm_) -> bool"},
    {"stamps", mod_stamps, METH_O, "stamps(out): out, int64, filled with (start, end) pairs of clock reads -> bool"},
    {"clip_scale", (PyCFunction)(void (*)(void))mod_clip_scale, METH_FASTCALL,
     "clip_scale(arrays, coef, times[, before]): arrays[i] *= coef, a 0-d array of their dtype, after before[0]"
     "(*before[1:]) each (clip_grad_norm_) -> bool"},
    {"transpose_scaled", (PyCFunction)(void (*)(void))mod_transpose_scaled, METH_FASTCALL,
     "transpose_scaled(w, scale, out): out = (w * scale[:, None]).T, a 2-d float32/float64 array in tiles"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "_cmath", "float32 exp/tanh with AVX2, layer_norm rows (tensorlib/ops/_fastmath.py)",
                                       -1, module_methods};

PyMODINIT_FUNC PyInit__cmath(void)
{
#if HAVE_X86
    __builtin_cpu_init();
    use_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    torch_w = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
              __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") ? 16 : 8;
#endif
    PyObject *m = PyModule_Create(&moduledef);
    if (m != NULL && PyModule_AddIntConstant(m, "ADAM_MAX", ADAM_MAX) < 0)
        Py_CLEAR(m);
    return m;
}
