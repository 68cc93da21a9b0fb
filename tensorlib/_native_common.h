/* What the two recording modules (tensorlib/_crecorded.c, profiler/_crecord.c) must do alike: their records'
 * clock, which has to be time.perf_counter_ns's (CLOCK_MONOTONIC on Linux; tensorlib/_native.py checks it at
 * import), and the untracking of a record made of atoms. */
#ifndef TENSORLIB_NATIVE_COMMON_H
#define TENSORLIB_NATIVE_COMMON_H

#include <Python.h>
#include <string.h>
#include <time.h>

#ifndef __linux__
#error "the recording modules are built on Linux only (their clock is CLOCK_MONOTONIC, perf_counter_ns's there)"
#endif

static inline long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + (long long)ts.tv_nsec;
}

/* A record of atoms (strings, ints) needs no cyclic GC: untracked at once, as the collector itself would untrack
 * it the first time it looked (_PyTuple_MaybeUntrack), so that collections in between do not walk it. */
/* An int's value as PyLong_AsLongLong gives it, by PyLong_AsLongLongAndOverflow's digit loop: PyLong_AsLongLong takes an
 * int of more than one digit (a perf_counter_ns stamp: 44 bits) through a byte array, ~200 instructions a call in
 * CPython 3.11. -1 with OverflowError set where it does not fit. */
static inline long long as_ll(PyObject *o)
{
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow) {
        PyErr_SetString(PyExc_OverflowError, "Python int too large to convert to C long long");
        return -1;
    }
    return v;
}

static inline void untrack_atoms(PyObject *tup)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tup); i++) {
        PyObject *v = PyTuple_GET_ITEM(tup, i);
        if (PyObject_IS_GC(v) && PyObject_GC_IsTracked(v))
            return;
    }
    PyObject_GC_UnTrack(tup);
}

/* The arguments (entries, times) of record_times and op_steps_at (what C loops timed themselves): entries a tuple,
 * times a C-contiguous buffer of int64 (start, end) pairs, one per entry. The number of entries with *view held (the
 * caller releases it), or -1 with `what`'s TypeError or ValueError. */
static inline Py_ssize_t timed_entries(PyObject *const *args, Py_ssize_t nargs, Py_buffer *view, const char *what)
{
    if (nargs != 2 || !PyTuple_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "%s(entries, times): a tuple and an int64 buffer", what);
        return -1;
    }
    if (PyObject_GetBuffer(args[1], view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(args[0]);
    const char *f = view->format;
    if (view->itemsize != 8 || f == NULL || (strcmp(f, "q") != 0 && strcmp(f, "l") != 0) || view->len < 16 * n) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "%s: times holds two int64 per entry", what);
        return -1;
    }
    return n;
}

/* NumPy's array struct as far as the C modules read it: PyArrayObject_fields' first members after the object head,
 * the same in NumPy 1 and 2. Each module checks this reading against arrays NumPy makes before it relies on it
 * (profiler/_crecord.c's probe_layout, tensorlib/_cmath.c's adam_setup) and keeps its path off where it fails. */
typedef struct {
    PyObject_HEAD
    char *data;
    int nd;
    Py_ssize_t *dimensions;
    Py_ssize_t *strides;
    PyObject *base;
    PyObject *descr;
    int flags;
} ArrayHead;

#endif
