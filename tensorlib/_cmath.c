/* tensorlib._cmath: exp and tanh of float32 arrays with AVX2 (Linux, x86-64), where NumPy's are scalar loops.
 *
 * NumPy dispatches its SIMD float32 exp only to CPUs with the whole x86-64-v3 set (AVX2, FMA3, BMI1/2, F16C, ...);
 * on a CPU that lacks one of them (as some cloud VMs report) it runs libm's expf element by element, about 2 ns an
 * element, where torch's vectorised exp (Sleef) takes a fraction of that: a language model's softmax over its
 * vocabulary spends most of its time there. exp_f32(x, out) computes out = exp(x) for C-contiguous float32
 * buffers of one length, 8 lanes at a time when the CPU has AVX2 and FMA (Cephes' expf: the range reduced by
 * ln 2 in two parts, a degree-5 polynomial, the exponent put in by integer addition; at most 2 ulp from the
 * correctly rounded result), lanes outside [-87, 88] (overflow, results below FLT_MIN, inf, NaN) and the tail by
 * libm's expf, as NumPy computes them. tanh_f32(x, out) likewise (Cephes' tanhf on the vector exp: within 1 ulp;
 * NaN and the tail by libm's tanhf). `available()` says whether the vector path runs on this CPU.
 *
 * tensorlib/ops/_fastmath.py decides when to use it (and falls back to NumPy without it); tests/tensorlib/
 * test_fastmath.py checks it against NumPy's float64 exp over the float32 range and at the special values.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

static int use_avx2 = 0;

#if HAVE_X86
/* exp of 8 lanes already within [-87, 88] (Cephes' expf, see above) */
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

/* tanh of 8 lanes (Cephes' tanhf): |x| < 0.625 by x + x^3 P(x^2), else sign(x) (1 - 2 / (exp(2|x|) + 1)), and
 * +-1 from |x| = 9 on (as libm's tanhf in float32); NaN lanes are marked in *bad for libm */
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

__attribute__((target("avx2,fma"))) static void exp_avx2(const float *x, float *y, Py_ssize_t n)
{
    const __m256 lo = _mm256_set1_ps(-87.0f), hi = _mm256_set1_ps(88.0f);
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f), half = _mm256_set1_ps(0.5f);
    const __m256 c1 = _mm256_set1_ps(0.693359375f), c2 = _mm256_set1_ps(-2.12194440e-4f);
    const __m256 p0 = _mm256_set1_ps(1.9875691500E-4f), p1 = _mm256_set1_ps(1.3981999507E-3f),
                 p2 = _mm256_set1_ps(8.3334519073E-3f), p3 = _mm256_set1_ps(4.1665795894E-2f),
                 p4 = _mm256_set1_ps(1.6666665459E-1f), p5 = _mm256_set1_ps(5.0000001201E-1f),
                 one = _mm256_set1_ps(1.0f);
    const __m256i bias = _mm256_set1_epi32(127);
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        /* lanes in range (a NaN compares false: it goes to libm below) */
        int ok = _mm256_movemask_ps(_mm256_and_ps(_mm256_cmp_ps(v, lo, _CMP_GT_OQ), _mm256_cmp_ps(v, hi, _CMP_LT_OQ)));
        __m256 c = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
        __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(c, log2e, half));
        __m256 r = _mm256_fnmadd_ps(fx, c1, c);
        r = _mm256_fnmadd_ps(fx, c2, r);
        __m256 r2 = _mm256_mul_ps(r, r);
        __m256 p = _mm256_fmadd_ps(p0, r, p1);
        p = _mm256_fmadd_ps(p, r, p2);
        p = _mm256_fmadd_ps(p, r, p3);
        p = _mm256_fmadd_ps(p, r, p4);
        p = _mm256_fmadd_ps(p, r, p5);
        p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, one));
        __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), bias), 23);
        __m256 out = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
        if (ok != 0xff) {   /* (the inputs kept first: y may be x) */
            float in[8], res[8];
            _mm256_storeu_ps(in, v);
            _mm256_storeu_ps(res, out);
            for (int k = 0; k < 8; k++)
                if (!(ok & (1 << k)))
                    res[k] = expf(in[k]);
            out = _mm256_loadu_ps(res);
        }
        _mm256_storeu_ps(y + i, out);
    }
    for (; i < n; i++)
        y[i] = expf(x[i]);
}
#endif

/* f(x, out): out[:] = f(x[:]) for C-contiguous float32 buffers of one length (out writable; it may be x) */
static PyObject *apply_f32(PyObject *const *args, Py_ssize_t nargs, int tanh)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, tanh ? "tanh_f32(x, out)" : "exp_f32(x, out)");
        return NULL;
    }
    Py_buffer bx, by;
    if (PyObject_GetBuffer(args[0], &bx, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &by, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&bx);
        return NULL;
    }
    int good = bx.itemsize == 4 && by.itemsize == 4 && bx.format && by.format && strcmp(bx.format, "f") == 0 &&
               strcmp(by.format, "f") == 0 && bx.len == by.len;
    if (!good) {
        PyBuffer_Release(&bx);
        PyBuffer_Release(&by);
        PyErr_SetString(PyExc_ValueError, "two C-contiguous float32 buffers of one length");
        return NULL;
    }
    Py_ssize_t n = bx.len / 4;
    const float *x = bx.buf;
    float *y = by.buf;
    Py_BEGIN_ALLOW_THREADS
#if HAVE_X86
    if (use_avx2 && tanh)
        tanh_avx2(x, y, n);
    else if (use_avx2)
        exp_avx2(x, y, n);
    else
#endif
        for (Py_ssize_t i = 0; i < n; i++)
            y[i] = tanh ? tanhf(x[i]) : expf(x[i]);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&bx);
    PyBuffer_Release(&by);
    Py_RETURN_NONE;
}

static PyObject *mod_exp_f32(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return apply_f32(args, nargs, 0);
}

static PyObject *mod_tanh_f32(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return apply_f32(args, nargs, 1);
}

static PyObject *mod_available(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(use_avx2);
}

static PyMethodDef module_methods[] = {
    {"exp_f32", (PyCFunction)(void (*)(void))mod_exp_f32, METH_FASTCALL, "exp_f32(x, out): out = exp(x), float32"},
    {"tanh_f32", (PyCFunction)(void (*)(void))mod_tanh_f32, METH_FASTCALL, "tanh_f32(x, out): out = tanh(x), float32"},
    {"available", mod_available, METH_NOARGS, "whether the AVX2 path runs on this CPU"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "_cmath", "float32 exp with AVX2 (tensorlib/ops/_fastmath.py)",
                                       -1, module_methods};

PyMODINIT_FUNC PyInit__cmath(void)
{
#if HAVE_X86
    __builtin_cpu_init();
    use_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return PyModule_Create(&moduledef);
}
