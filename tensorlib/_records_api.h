/* The C API of tensorlib._crecorded's Records buffer (a thread's profiler records, see _crecorded.c), for
 * profiler/_crecord.c: imported once through the capsule "tensorlib._crecorded._records_api". */
#ifndef TENSORLIB_RECORDS_API_H
#define TENSORLIB_RECORDS_API_H
#include <Python.h>

typedef struct {
    /* push(buf, objs, n, t0, t1): the record (objs[0..n), t0, t1) pushed into a thread's buffer, n of 3 or 4, t0 < 0
     * for none ((objs..., t1)): kept as it is in a Records (nothing allocated for the record), else appended as
     * its tuple (a list, the recorder's counter); 0, or -1 with an error set */
    int (*push)(PyObject *buf, PyObject *const *objs, int n, long long t0, long long t1);
    /* buffer(tls): tls.buf for the calling thread (new reference), read from the thread's attribute dict of the
     * recorder's threading.local where tls is one (cached per thread; the buffer itself for the thread that
     * records alone); NULL with an error set */
    PyObject *(*buffer)(PyObject *tls);
    /* op_name(op): op.name (new reference), OpDef's slot read directly for an op of exactly that class (set_op_class);
     * NULL with an error set */
    PyObject *(*op_name)(PyObject *op);
} RecordsAPI;

#define RECORDS_API_CAPSULE "tensorlib._crecorded._records_api"
#endif
