/* A region hook's record in C (tensorlib/_hooks.py: Hook.c_range), for C code that times a region itself -- the
 * autograd engine's node regions and AccumulateGrad's (tensorlib/autograd/_cengine.c) -- instead of calling the
 * hook's range_enter(name, kind) and then range_exit(token): no token tuple, no call through Python's protocol.
 * The hook hands it out as a capsule named RANGE_C_CAPSULE whose pointer is a RangeC; the capsule holds a reference
 * to `self` for as long as it lives. */
#ifndef TENSORLIB_RANGE_API_H
#define TENSORLIB_RANGE_API_H
#include <Python.h>

typedef struct {
    /* record(self, name, kind, t0, t1): what range_enter(name, kind) at t0 then range_exit(token) at t1 would record
     * (times of time.perf_counter_ns's clock: _native_common.h's now_ns); 0, or -1 with an error set */
    int (*record)(PyObject *self, PyObject *name, PyObject *kind, long long t0, long long t1);
    PyObject *self;
} RangeC;

#define RANGE_C_CAPSULE "tensorlib._hooks.c_range"
#endif
