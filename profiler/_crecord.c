/* profiler._crecord: the recorder's per-op work in C (Linux), the same records as the Python closures of
 * profiler/recorder.py (Recorder._bind) and profiler/memory_record.py (MemoryRecorder._bind_cpu), which stay
 * the reference and the fallback (TENSORLIB_PROFILER_NATIVE=0, or a build without a compiler).
 *
 * What it saves is the interpreter's per-call and per-line cost: an op recorded with record_shapes and
 * profile_memory was five Python calls (op_enter, shapes_id, op_exit, record_outputs, keep) and a weakref
 * callback when its output died; here each is one C call. Every decision and every record field is the Python
 * version's, line for line; tests/profiler/test_native_recorder.py runs both on the same programs and compares
 * their records.
 *
 * Clock: time.perf_counter_ns() is CLOCK_MONOTONIC on Linux (CPython's _PyTime_GetPerfCounter); records made
 * here and in Python share it (profiler/_native.py checks the order at import). Thread ids: the native id,
 * gettid(), cached per thread and forgotten in a forked child, as threading.get_native_id() reads it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "../tensorlib/_native_common.h"
#include "../tensorlib/_records_api.h"
#include "../tensorlib/_range_api.h"
#include "../tensorlib/_native_slots.h"
#include <structmember.h>
#include <frameobject.h>

#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* ---- clock and thread id ------------------------------------------------------------------------------ */

static __thread long tid_cache TLS_IE = 0;

static inline long thread_id(void)
{
    if (!tid_cache)
        tid_cache = (long)syscall(SYS_gettid);
    return tid_cache;
}

static void forget_tid(void) { tid_cache = 0; }     /* the forking thread has a new id in the child */

/* ---- the types and names the hooks test against (set once by setup()) ---------------------------------- */

static PyTypeObject *Tensor_T = NULL;     /* tensorlib.Tensor */
static PyTypeObject *Ndarray_T = NULL;    /* numpy.ndarray */
static PyTypeObject *Generic_T = NULL;    /* numpy.generic */
static PyObject *Numpy = NULL;            /* the numpy module: an op kernel's first argument */

static PyObject *minus_one, *zero;     /* -1 and 0, the ints of a range's record */
static PyObject *s_data, *s_base, *s_nbytes, *s_shape, *s_dtype, *s_name, *s_buf, *s_kernel,
    *s_append;

#define IS_TENSOR(o) PyObject_TypeCheck((o), Tensor_T)

/* ---- CountedRef: a counted array's weak reference, carrying its address and bytes (memory_record._Counted) */

typedef struct {
    PyWeakReference ref;
    void *addr;
    Py_ssize_t nbytes;
} CountedRef;

static PyTypeObject CountedRef_T = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "profiler._crecord.CountedRef",
    .tp_basicsize = sizeof(CountedRef),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A counted array's weak reference (its address and bytes ride on it).",
};

/* ---- CpuMemory: MemoryRecorder's CPU part -------------------------------------------------------------- */

/* The arrays counted and alive: array address -> its CountedRef (a strong reference, which keeps the weak reference
 * and so its callback alive), an open-addressing table with linear probing and backward-shift deletion (no
 * tombstones), at most half full. It stands for memory_record's `live` dict: a dict's entry cost a Python int made
 * per lookup, insertion and deletion (about 800 instructions per counted array, made and freed, in a detailed
 * profile); a slot here is found in a few. */
typedef struct {
    void *addr;           /* NULL: an empty slot */
    PyObject *ref;
} LiveSlot;

typedef struct {
    PyObject_HEAD
    LiveSlot *live;       /* the table (NULL until the first array is counted) */
    size_t mask;          /* its size - 1 (a power of two) */
    Py_ssize_t nlive;     /* slots in use */
    PyObject *records;    /* bytearray: six native int64 per record */
    PyObject *on_free;    /* this object's on_free, bound once: every CountedRef's callback */
    PyObject *ref_args;   /* (None, on_free): the weak reference constructor's arguments, the array put in (keep) */
    char active;          /* MemoryRecorder.active (its setter writes it): gates the free records */
} CpuMemory;

static inline size_t live_home(const CpuMemory *m, void *addr)
{
    return (size_t)(((uint64_t)(uintptr_t)addr >> 4) * 0x9E3779B97F4A7C15ull >> 20) & m->mask;
}

/* the slot holding addr, or -1 */
static inline Py_ssize_t live_find(const CpuMemory *m, void *addr)
{
    if (m->live == NULL)
        return -1;
    for (size_t i = live_home(m, addr);; i = (i + 1) & m->mask) {
        if (m->live[i].addr == addr)
            return (Py_ssize_t)i;
        if (m->live[i].addr == NULL)
            return -1;
    }
}

static void live_put(LiveSlot *t, size_t mask, CpuMemory *m, void *addr, PyObject *ref)
{
    size_t i = live_home(m, addr);
    while (t[i].addr != NULL)
        i = (i + 1) & mask;
    t[i].addr = addr;
    t[i].ref = ref;
}

/* files addr -> ref (stolen; not already filed); -1 on a failed allocation (ref released) */
static int live_add(CpuMemory *m, void *addr, PyObject *ref)
{
    if (m->live == NULL || 2 * (size_t)(m->nlive + 1) > m->mask + 1) {
        size_t cap = m->live == NULL ? 1024 : 2 * (m->mask + 1);
        LiveSlot *t = PyMem_Calloc(cap, sizeof(LiveSlot));
        if (t == NULL) {
            Py_DECREF(ref);
            PyErr_NoMemory();
            return -1;
        }
        LiveSlot *old = m->live;
        size_t oldcap = old == NULL ? 0 : m->mask + 1;
        m->live = t;
        m->mask = cap - 1;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i].addr != NULL)
                live_put(t, m->mask, m, old[i].addr, old[i].ref);
        PyMem_Free(old);
    }
    live_put(m->live, m->mask, m, addr, ref);
    m->nlive++;
    return 0;
}

/* unfiles slot i, shifting the probe run after it back; its reference is the caller's */
static PyObject *live_take(CpuMemory *m, size_t i)
{
    LiveSlot *t = m->live;
    PyObject *ref = t[i].ref;
    for (size_t j = (i + 1) & m->mask; t[j].addr != NULL; j = (j + 1) & m->mask) {
        size_t k = live_home(m, t[j].addr);
        /* t[j] may move to i where its home is not cyclically in (i, j] */
        if (i <= j ? (k <= i || k > j) : (k <= i && k > j)) {
            t[i] = t[j];
            i = j;
        }
    }
    t[i].addr = NULL;
    t[i].ref = NULL;
    m->nlive--;
    return ref;
}

/* One memory record, six native int64 (memory_record.RECORD), appended to the recorder's bytearray: one resize and
 * copy, no Python code in between, so threads' records never interleave (the GIL). Where the bytearray's allocation
 * runs out it is doubled (resized to twice, then back: a shrink that keeps the allocation) once it holds 4 KiB:
 * PyByteArray_Resize grows it by an eighth, so a long profile's records were copied again every few thousand. */
static int append6(PyObject *records, long long t, long tid, long long nbytes, void *addr)
{
    long long v[6] = {t, (long long)tid, 0 /* CPU */, 0, nbytes, (long long)(intptr_t)addr};
    Py_ssize_t n = PyByteArray_GET_SIZE(records), m = n + (Py_ssize_t)sizeof v;
    if (m >= ((PyByteArrayObject *)records)->ob_alloc && n >= 4096 && PyByteArray_Resize(records, 2 * m) < 0)
        return -1;
    if (PyByteArray_Resize(records, m) < 0)
        return -1;
    memcpy(PyByteArray_AS_STRING(records) + n, v, sizeof v);
    return 0;
}

static int layout_ok = 0;           /* NumPy's array struct is read directly (probe_layout, below) */

/* x.base (new reference): read off the array struct for an ndarray where probe_layout checked it (NumPy's getter
 * returns that field, None when it is NULL), else by the attribute */
static PyObject *base_of(PyObject *x);

/* The ndarray whose memory `d` is a view of, following .base while it is an ndarray (new reference). *foreign is
 * set when the chain ends in something that is not None (a memmap's mmap, a buffer): memory NumPy did not
 * allocate. */
static PyObject *root_of(PyObject *d, int *foreign)
{
    *foreign = 0;
    Py_INCREF(d);
    PyObject *b = base_of(d);
    if (b == NULL) {
        Py_DECREF(d);
        return NULL;
    }
    while (Py_TYPE(b) == Ndarray_T) {
        Py_DECREF(d);
        d = b;
        b = base_of(d);
        if (b == NULL) {
            Py_DECREF(d);
            return NULL;
        }
    }
    if (b != Py_None)
        *foreign = 1;
    Py_DECREF(b);
    return d;
}

/* The bytes of array d: its nbytes, read off the array struct where probe_layout checked it (itemsize x dimensions,
 * the itemsize of the last few dtypes asked, kept with a strong reference so that no address is reused) */
#define ITEMSIZE_CACHE 8
static PyObject *isz_descr[ITEMSIZE_CACHE];
static Py_ssize_t isz_value[ITEMSIZE_CACHE];
static int isz_next = 0;

static Py_ssize_t nbytes_of(PyObject *d)
{
    if (layout_ok && Py_TYPE(d) == Ndarray_T) {
        ArrayHead *h = (ArrayHead *)d;
        Py_ssize_t n = -1;
        for (int i = 0; i < ITEMSIZE_CACHE; i++)
            if (isz_descr[i] == h->descr) {
                n = isz_value[i];
                break;
            }
        if (n < 0) {
            PyObject *v = PyObject_GetAttrString(h->descr, "itemsize");
            n = v == NULL ? -1 : PyLong_AsSsize_t(v);
            Py_XDECREF(v);
            if (n < 0)
                return -1;
            Py_INCREF(h->descr);
            Py_XSETREF(isz_descr[isz_next], h->descr);
            isz_value[isz_next] = n;
            isz_next = (isz_next + 1) % ITEMSIZE_CACHE;
        }
        for (int j = 0; j < h->nd; j++)
            n *= h->dimensions[j];
        return n;
    }
    PyObject *nb = PyObject_GetAttr(d, s_nbytes);
    if (nb == NULL)
        return -1;
    Py_ssize_t n = PyLong_AsSsize_t(nb);
    Py_DECREF(nb);
    return n;
}

/* keep: array d (not yet counted) is an op's new memory, recorded at time t and counted until it dies */
static int keep(CpuMemory *m, PyObject *d, long long t)
{
    Py_ssize_t n = nbytes_of(d);
    if (n == -1 && PyErr_Occurred())
        return -1;
    if (!n)
        return 0;
    /* weakref.ref's own constructor, without the type call's and __init__'s second parsing of the arguments; its
     * arguments in the tuple (None, on_free) made once, the array put in for the call while nothing else holds it */
    PyObject *args = m->ref_args, *ref;
    if (Py_REFCNT(args) == 1) {
        PyObject **item = &((PyTupleObject *)args)->ob_item[0];
        PyObject *none = *item;
        *item = d;
        ref = CountedRef_T.tp_new(&CountedRef_T, args, NULL);
        *item = none;
    }
    else {
        args = PyTuple_Pack(2, d, m->on_free);
        if (args == NULL)
            return -1;
        ref = CountedRef_T.tp_new(&CountedRef_T, args, NULL);
        Py_DECREF(args);
    }
    if (ref == NULL)
        return -1;
    ((CountedRef *)ref)->addr = (void *)d;
    ((CountedRef *)ref)->nbytes = n;
    if (live_add(m, (void *)d, ref) < 0)
        return -1;
    return append6(m->records, t, thread_id(), n, (void *)d);
}

/* An input's array (or its root's) is d: then d is not new memory. x: the input's array (borrowed). */
static int is_input_memory(PyObject *x, PyObject *d, int *hit)
{
    *hit = 0;
    if (x == d) {
        *hit = 1;
        return 0;
    }
    PyObject *b = base_of(x);
    if (b == NULL)
        return -1;
    if (b == Py_None) {
        Py_DECREF(b);
        return 0;
    }
    Py_INCREF(x);
    while (Py_TYPE(b) == Ndarray_T) {
        Py_DECREF(x);
        x = b;
        b = base_of(x);
        if (b == NULL) {
            Py_DECREF(x);
            return -1;
        }
    }
    Py_DECREF(b);
    *hit = (x == d);
    Py_DECREF(x);
    return 0;
}

/* record_outputs(outputs, inputs, t): MemoryRecorder's, for an op's outputs (tensors) and inputs (its arguments) */
static int rec_outputs(CpuMemory *m, PyObject *outputs, PyObject *inputs, long long t)
{
    if (!IS_TENSOR(outputs)) {
        if (PyTuple_CheckExact(outputs)) {
            for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(outputs); i++)
                if (rec_outputs(m, PyTuple_GET_ITEM(outputs, i), inputs, t) < 0)
                    return -1;
        }
        return 0;
    }
    PyObject *seq = PySequence_Fast(inputs, "inputs must be a sequence");
    if (seq == NULL)
        return -1;
    Py_ssize_t ni = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    int rc = 0;
    PyObject *d = NULL;
    if (ni && outputs == items[0])        /* an in-place op's output: its input */
        goto done;
    PyObject *arr = PyObject_GetAttr(outputs, s_data);
    if (arr == NULL)
        goto fail;
    if (Py_TYPE(arr) != Ndarray_T) {      /* CUDA memory is the allocator listener's */
        Py_DECREF(arr);
        goto done;
    }
    int foreign;
    d = root_of(arr, &foreign);     /* conv2d's output is a view of the temporary it was computed in */
    Py_DECREF(arr);
    if (d == NULL)
        goto fail;
    if (foreign)
        goto done;
    if (live_find(m, d) >= 0)
        goto done;
    for (Py_ssize_t i = 0; i < ni; i++) {      /* the root of one of the op's tensor inputs: not new memory */
        PyObject *x = items[i];
        if (!IS_TENSOR(x))
            continue;
        PyObject *xa = PyObject_GetAttr(x, s_data);
        if (xa == NULL)
            goto fail;
        int hit = 0;
        if (xa == d)
            hit = 1;
        else if (Py_TYPE(xa) == Ndarray_T && is_input_memory(xa, d, &hit) < 0) {
            Py_DECREF(xa);
            goto fail;
        }
        Py_DECREF(xa);
        if (hit)
            goto done;
    }
    rc = keep(m, d, t);
    goto done;
fail:
    rc = -1;
done:
    Py_XDECREF(d);
    Py_DECREF(seq);
    return rc;
}

/* record_arrays(out, inputs, t): record_outputs for an op run on arrays (Hook.op_arrays) */
static int rec_arrays(CpuMemory *m, PyObject *out, PyObject *inputs, long long t)
{
    if (Py_TYPE(out) != Ndarray_T) {
        if (PyTuple_CheckExact(out)) {
            for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(out); i++)
                if (rec_arrays(m, PyTuple_GET_ITEM(out, i), inputs, t) < 0)
                    return -1;
        }
        return 0;
    }
    int foreign;
    PyObject *d = root_of(out, &foreign);
    if (d == NULL)
        return -1;
    if (foreign) {
        Py_DECREF(d);
        return 0;
    }
    PyObject *seq = NULL;
    int rc = 0;
    if (live_find(m, d) >= 0)
        goto done;
    seq = PySequence_Fast(inputs, "inputs must be a sequence");
    if (seq == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {     /* an input's memory: not new */
        PyObject *x = PySequence_Fast_GET_ITEM(seq, i);
        if (Py_TYPE(x) != Ndarray_T)
            continue;
        int hit;
        if (is_input_memory(x, d, &hit) < 0)
            goto fail;
        if (hit)
            goto done;
    }
    rc = keep(m, d, t);
    goto done;
fail:
    rc = -1;
done:
    Py_XDECREF(seq);
    Py_DECREF(d);
    return rc;
}

static PyObject *CpuMemory_record_outputs(CpuMemory *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "record_outputs(outputs, inputs, t) takes 3 arguments");
        return NULL;
    }
    long long t = as_ll(args[2]);
    if (t == -1 && PyErr_Occurred())
        return NULL;
    if (rec_outputs(self, args[0], args[1], t) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *CpuMemory_record_arrays(CpuMemory *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "record_arrays(out, inputs, t) takes 3 arguments");
        return NULL;
    }
    long long t = as_ll(args[2]);
    if (t == -1 && PyErr_Occurred())
        return NULL;
    if (rec_arrays(self, args[0], args[1], t) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* The weak reference's callback when a counted array dies: no longer live; a free record while recording. */
static PyObject *CpuMemory_on_free(CpuMemory *self, PyObject *ref)
{
    if (!PyObject_TypeCheck(ref, &CountedRef_T)) {
        PyErr_SetString(PyExc_TypeError, "on_free expects a CountedRef");
        return NULL;
    }
    void *addr = ((CountedRef *)ref)->addr;
    Py_ssize_t nbytes = ((CountedRef *)ref)->nbytes;
    if (self->active && append6(self->records, now_ns(), thread_id(), -(long long)nbytes, addr) < 0)
        return NULL;
    /* the table holds the only strong reference to the weak reference, which the interpreter passes to its callback
     * borrowed: releasing it frees it (read above, not used after) */
    Py_ssize_t i = live_find(self, addr);
    if (i >= 0 && self->live[i].ref == ref)
        Py_DECREF(live_take(self, (size_t)i));
    Py_RETURN_NONE;
}

static PyObject *CpuMemory_live_count(CpuMemory *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(self->nlive);
}

static PyMethodDef CpuMemory_methods[] = {
    {"record_outputs", (PyCFunction)(void (*)(void))CpuMemory_record_outputs, METH_FASTCALL,
     "record_outputs(outputs, inputs, t): the op's outputs' new memory at time t (ns)."},
    {"record_arrays", (PyCFunction)(void (*)(void))CpuMemory_record_arrays, METH_FASTCALL,
     "record_arrays(out, inputs, t): record_outputs for an op run on arrays."},
    {"on_free", (PyCFunction)CpuMemory_on_free, METH_O, "A counted array's weak-reference callback."},
    {"live_count", (PyCFunction)CpuMemory_live_count, METH_NOARGS, "The arrays counted and alive."},
    {NULL, NULL, 0, NULL},
};

static int CpuMemory_init(CpuMemory *self, PyObject *args, PyObject *kw)
{
    PyObject *records;
    static char *kwlist[] = {"records", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!", kwlist, &PyByteArray_Type, &records))
        return -1;
    if (Tensor_T == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "profiler._crecord.setup() has not been called");
        return -1;
    }
    if (self->on_free != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "CpuMemory is initialized once");
        return -1;
    }
    Py_INCREF(records);
    self->records = records;
    self->on_free = PyObject_GetAttrString((PyObject *)self, "on_free");
    if (self->on_free == NULL)
        return -1;
    self->ref_args = PyTuple_Pack(2, Py_None, self->on_free);
    return self->ref_args == NULL ? -1 : 0;
}

static int CpuMemory_traverse(CpuMemory *self, visitproc visit, void *arg)
{
    if (self->live != NULL)
        for (size_t i = 0; i <= self->mask; i++)
            Py_VISIT(self->live[i].ref);
    Py_VISIT(self->records);
    Py_VISIT(self->on_free);
    Py_VISIT(self->ref_args);
    return 0;
}

/* The table is let go first and its references released after: releasing a weak reference runs no callback, but the
 * table is not walked while anything can run. */
static int CpuMemory_clear(CpuMemory *self)
{
    LiveSlot *t = self->live;
    size_t cap = t == NULL ? 0 : self->mask + 1;
    self->live = NULL;
    self->mask = 0;
    self->nlive = 0;
    for (size_t i = 0; i < cap; i++)
        Py_XDECREF(t[i].ref);
    PyMem_Free(t);
    Py_CLEAR(self->records);
    Py_CLEAR(self->on_free);
    Py_CLEAR(self->ref_args);
    return 0;
}

static void CpuMemory_dealloc(CpuMemory *self)
{
    PyObject_GC_UnTrack(self);
    CpuMemory_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef CpuMemory_members[] = {
    {"active", T_BOOL, offsetof(CpuMemory, active), 0, "Free records are made (MemoryRecorder.active)."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject CpuMemory_T = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "profiler._crecord.CpuMemory",
    .tp_basicsize = sizeof(CpuMemory),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "CpuMemory(records): MemoryRecorder's CPU recording (record_outputs, record_arrays, on_free).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)CpuMemory_init,
    .tp_traverse = (traverseproc)CpuMemory_traverse,
    .tp_clear = (inquiry)CpuMemory_clear,
    .tp_dealloc = (destructor)CpuMemory_dealloc,
    .tp_methods = CpuMemory_methods,
    .tp_members = CpuMemory_members,
};

/* ---- OpHooks: Recorder's hook methods --------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *tls;          /* the recorder's threading.local: `buf` is this thread's record list */
    PyObject *shapes_ids;   /* recorder._SHAPES_IDS (record_shapes), or None */
    PyObject *shapes_id;    /* recorder.shapes_id: its answer when the key is new or holds a tensor list */
    PyObject *arrays_id;    /* recorder.arrays_shapes_id, likewise for op_arrays */
    PyObject *as_arrays;    /* recorder._as_arrays: a kernel's NumPy scalar as a 0-d array */
    PyObject *tags;         /* recorder._RANGE_TAGS */
    PyObject *range_tag;    /* recorder.range_tag: a new kind's tag */
    PyObject *op_tag;       /* range_tag("op") */
    PyObject *last_kind, *last_tag;     /* tag_of's last answer (a kind's tag never changes), or NULL */
    CpuMemory *mem;         /* profile_memory's recorder, or NULL */
    PyObject *stack_of;     /* with_stack: Recorder._stack (its frames from the dispatcher's caller), else None */
    PyObject *raw_inputs;   /* recorder._raw_inputs: with_stack and record_shapes, the signature per op */
    PyObject *raw_arrays;   /* the same of an op_arrays call's arrays (_raw_inputs on arrays), or None */
    PyObject *extra_ids;    /* recorder._EXTRA_IDS: extra -> id */
    PyObject *extra_id;     /* recorder.extra_id: a new extra's id */
    int extended;           /* records carry the extra's id (record_shapes, profile_memory, ...) */
    int shapes;             /* record_shapes: the extra id from the inputs' shapes and dtypes */
    struct StackEntry *stacks;  /* with_stack: the stack cache (stack_find), NULL until first used */
    int nstacks;            /* its filed entries */
    PyObject *stack_keep;   /* list: what its entries point at (code objects, stacks, extra ids), kept alive */
} OpHooks;

/* tensorlib._crecorded's Records API (its capsule), or NULL where that module is not built: buffers are lists */
static RecordsAPI *rapi = NULL;

/* with_stack's extra id of an op or range (the stack cache, below) */
static PyObject *stack_extra(OpHooks *h, PyObject *inputs, int tensors, int shapes);

/* The buffer this thread's records go to (new reference): tls.buf, by the Records API where it is loaded (the
 * thread's attribute dict of the local, cached per thread) */
static inline PyObject *buffer(OpHooks *h)
{
    return rapi != NULL ? rapi->buffer(h->tls) : PyObject_GetAttr(h->tls, s_buf);
}

/* buf.append(rec): a list's, or the recorder's counter's once max_events is reached */
static int append_to(PyObject *buf, PyObject *rec)
{
    untrack_atoms(rec);
    if (PyList_CheckExact(buf))
        return PyList_Append(buf, rec);
    PyObject *r = PyObject_CallMethodOneArg(buf, s_append, rec);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

static int push(OpHooks *h, PyObject *rec)
{
    PyObject *buf = buffer(h);
    if (buf == NULL)
        return -1;
    int rc = append_to(buf, rec);
    Py_DECREF(buf);
    return rc;
}

static PyObject *tuple_times(PyObject **objs, int n, long long t0, long long t1);

/* The record (objs[0..n), t0, t1) -- (objs..., t1) with t0 < 0 -- pushed: by the Records API (kept as it is in a
 * Records buffer, no tuple or int made), else appended as a tuple */
static int push_objs(OpHooks *h, PyObject **objs, int n, long long t0, long long t1)
{
    PyObject *buf = buffer(h);
    if (buf == NULL)
        return -1;
    int rc;
    if (rapi != NULL)
        rc = rapi->push(buf, objs, n, t0, t1);
    else {
        PyObject *rec = tuple_times(objs, n, t0, t1);
        rc = rec == NULL ? -1 : append_to(buf, rec);
        Py_XDECREF(rec);
    }
    Py_DECREF(buf);
    return rc;
}

/* push_objs while an exception is on its way out: the exception is kept (a failing push replaces it) */
static void push_objs_keeping_error(OpHooks *h, PyObject **objs, int n, long long t0, long long t1)
{
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    if (push_objs(h, objs, n, t0, t1) < 0) {
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(tb);
        return;
    }
    PyErr_Restore(et, ev, tb);
}

/* The flat key of recorder.shapes_id (tensors=1) or arrays_shapes_id (tensors=0): per tensor (array) its
 * array's shape and dtype, per other argument its type. Py_None when an argument is a tensor list (the Python
 * function answers with the full signature). New reference. */
static PyObject *shapes_key(PyObject *inputs, int tensors)
{
    PyObject *seq = PySequence_Fast(inputs, "inputs must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    Py_ssize_t size = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *a = items[i];
        if (tensors ? IS_TENSOR(a) : (Py_TYPE(a) == Ndarray_T || PyObject_TypeCheck(a, Generic_T)))
            size += 2;
        else {
            if (PyList_Check(a) || PyTuple_Check(a)) {
                Py_ssize_t len = PySequence_Size(a);
                if (len < 0)
                    goto fail;
                if (len) {
                    PyObject *first = PySequence_GetItem(a, 0);
                    if (first == NULL)
                        goto fail;
                    int list_of = tensors ? IS_TENSOR(first)
                                          : (PyObject_TypeCheck(first, Ndarray_T) || PyObject_TypeCheck(first, Generic_T));
                    Py_DECREF(first);
                    if (list_of) {
                        Py_DECREF(seq);
                        Py_RETURN_NONE;
                    }
                }
            }
            size += 1;
        }
    }
    PyObject *key = PyTuple_New(size);
    if (key == NULL)
        goto fail;
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *a = items[i];
        int is_t = tensors ? IS_TENSOR(a) : (Py_TYPE(a) == Ndarray_T || PyObject_TypeCheck(a, Generic_T));
        if (is_t) {
            PyObject *d = tensors ? PyObject_GetAttr(a, s_data) : (Py_INCREF(a), a);
            if (d == NULL) {
                Py_DECREF(key);
                goto fail;
            }
            PyObject *shape = PyObject_GetAttr(d, s_shape);
            PyObject *dtype = shape ? PyObject_GetAttr(d, s_dtype) : NULL;
            Py_DECREF(d);
            if (dtype == NULL) {
                Py_XDECREF(shape);
                Py_DECREF(key);
                goto fail;
            }
            PyTuple_SET_ITEM(key, k++, shape);
            PyTuple_SET_ITEM(key, k++, dtype);
        }
        else {
            Py_INCREF(Py_TYPE(a));
            PyTuple_SET_ITEM(key, k++, (PyObject *)Py_TYPE(a));
        }
    }
    Py_DECREF(seq);
    return key;
fail:
    Py_DECREF(seq);
    return NULL;
}

/* ---- the signature cache: an op's inputs' extra id without a Python object made ---------------------------
 *
 * shapes_key makes a tuple per call (a shape tuple per array, the key, its hash and the dict's comparison of it):
 * about 2000 instructions per recorded op in a detailed profile. The cache files the same key as machine words:
 * per array its dimension count, dimensions and dtype object's address, per other argument its type's address,
 * hashed and compared without a call, read off NumPy's array struct. That struct (PyArrayObject_fields: data,
 * nd, dimensions, strides, base, descr after the object head; the same in NumPy 1 and 2) is checked by setup()
 * on arrays it makes (probe_layout) and the cache is off where it is not so. The dtype and type objects of every
 * filed key are kept alive (sig_keep), as recorder._SHAPES_IDS keeps its keys', so no address is reused for
 * another; ids are the process's (recorder.extra_id), so the cache is too. Arguments it cannot file (a tensor list,
 * a NumPy scalar, a tensor whose class does not hold its array in Tensor's slot or whose array is not an
 * ndarray, a key too long) take shapes_key's path, which answers for every case. The GIL guards the table (no
 * call inside a lookup); without a GIL (free-threaded builds) the cache is off. */

/* (ArrayHead: tensorlib/_native_common.h) */

static PyObject *base_of(PyObject *x)
{
    if (layout_ok && Py_TYPE(x) == Ndarray_T) {
        PyObject *b = ((ArrayHead *)x)->base;
        return Py_NewRef(b != NULL ? b : Py_None);
    }
    return PyObject_GetAttr(x, s_base);
}

#define SIG_WORDS 48                /* the longest key filed, in words (a list of eight 3-d arrays and more) */
#define SIG_SLOTS 1024              /* table size (a power of two); filing stops at 3/4 of it */
#define SIG_ARRAY ((uint64_t)1 << 62)   /* an array's first word: this tag | its dimension count */
#define SIG_TYPE ((uint64_t)2 << 62)    /* another argument's word: this tag, its type's address follows */
#define SIG_LIST ((uint64_t)3 << 62)    /* a tensor list's: this tag | its length, its type's address, its arrays */

typedef struct {
    uint64_t hash;                  /* 0: an empty slot */
    int n;
    PyObject *eid;
    uint64_t w[SIG_WORDS];
} SigEntry;

static int sig_on = 0;              /* probe_layout passed (and a GIL) */
static Py_ssize_t data_off = -1;    /* Tensor's `_data` slot */
static PyTypeObject *sig_tensor_types[8];   /* Tensor and its subclasses seen whose `_data` is Tensor's slot */
static int sig_ntensor_types = 0;
static SigEntry *sig_table = NULL;
static int sig_filed = 0;
static PyObject *sig_keep = NULL;   /* list: the dtypes and types of the filed keys */
static PyObject *data_descr = NULL; /* Tensor's `_data` member descriptor */
static PyObject *sig_dict = NULL;   /* the shapes_ids dict whose ids the table holds (recorder._SHAPES_IDS) */

/* whether tp (a Tensor subclass) holds its array in Tensor's `_data` slot */
static int sig_tensor_type(PyTypeObject *tp)
{
    for (int i = 0; i < sig_ntensor_types; i++)
        if (sig_tensor_types[i] == tp)
            return 1;
    if (sig_ntensor_types == 8 || !PyType_IsSubtype(tp, Tensor_T) || _PyType_Lookup(tp, s_data) != data_descr)
        return 0;
    Py_INCREF(tp);
    sig_tensor_types[sig_ntensor_types++] = tp;
    return 1;
}

/* The array whose signature stands for argument a (tensors: a tensor's ndarray, held in Tensor's slot; else an
 * ndarray itself): 1 with *d set (borrowed), 0 for another kind of argument, -1 for one the cache does not file
 * (a NumPy scalar or ndarray subclass among arrays, a tensor over something else) */
static int sig_array(PyObject *a, int tensors, PyObject **d)
{
    PyTypeObject *tp = Py_TYPE(a);
    if (tensors) {
        if (tp == Tensor_T || (PyType_IsSubtype(tp, Tensor_T) && sig_tensor_type(tp))) {
            *d = SLOT(a, data_off);
            return *d != NULL && Py_TYPE(*d) == Ndarray_T ? 1 : -1;
        }
        return IS_TENSOR(a) ? -1 : 0;
    }
    if (tp == Ndarray_T) {
        *d = a;
        return 1;
    }
    return PyType_IsSubtype(tp, Ndarray_T) || PyType_IsSubtype(tp, Generic_T) ? -1 : 0;
}

/* array d's words at w[*k]: its dimension count, dimensions, dtype's address; 0, or -1 where they do not fit */
static int sig_put_array(PyObject *d, uint64_t *w, int *k)
{
    ArrayHead *h = (ArrayHead *)d;
    int nd = h->nd;
    if (nd < 0 || *k + nd + 2 > SIG_WORDS)
        return -1;
    w[(*k)++] = SIG_ARRAY | (uint64_t)nd;
    for (int j = 0; j < nd; j++)
        w[(*k)++] = (uint64_t)h->dimensions[j];
    w[(*k)++] = (uint64_t)(uintptr_t)h->descr;
    return 0;
}

/* The words of inputs' key (tensors: shapes_id's, else arrays_shapes_id's) into w; their count, or -1 where the
 * cache does not file these inputs */
static int sig_words(PyObject *inputs, int tensors, uint64_t *w)
{
    if (!PyTuple_CheckExact(inputs))
        return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(inputs);
    int k = 0;
    w[k++] = (uint64_t)tensors;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *a = PyTuple_GET_ITEM(inputs, i), *d;
        int r = sig_array(a, tensors, &d);
        if (r < 0 || (r > 0 && sig_put_array(d, w, &k) < 0))
            return -1;
        if (r > 0)
            continue;
        if (PyList_CheckExact(a) || PyTuple_CheckExact(a)) {
            Py_ssize_t len = PyList_CheckExact(a) ? PyList_GET_SIZE(a) : PyTuple_GET_SIZE(a);
            PyObject **items = PyList_CheckExact(a) ? ((PyListObject *)a)->ob_item : ((PyTupleObject *)a)->ob_item;
            if (len && (r = sig_array(items[0], tensors, &d)) != 0) {  /* a tensor (array) list: its arrays */
                if (r < 0 || k + 2 > SIG_WORDS)
                    return -1;
                w[k++] = SIG_LIST | (uint64_t)len;
                w[k++] = (uint64_t)(uintptr_t)Py_TYPE(a);
                for (Py_ssize_t j = 0; j < len; j++)
                    if (sig_array(items[j], tensors, &d) <= 0 || sig_put_array(d, w, &k) < 0)
                        return -1;
                continue;
            }
        }
        else if (PyList_Check(a) || PyTuple_Check(a))
            return -1;      /* a list or tuple subclass: shapes_key's path */
        if (k + 2 > SIG_WORDS)
            return -1;
        w[k++] = SIG_TYPE;
        w[k++] = (uint64_t)(uintptr_t)Py_TYPE(a);
    }
    return k;
}

static uint64_t sig_hash(const uint64_t *w, int n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    for (int i = 0; i < n; i++) {
        h ^= w[i];
        h *= 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
    }
    return h ? h : 1;
}

/* the filed id of key w (borrowed), or NULL */
static PyObject *sig_find(const uint64_t *w, int n, uint64_t h)
{
    for (uint64_t i = h & (SIG_SLOTS - 1);; i = (i + 1) & (SIG_SLOTS - 1)) {
        SigEntry *e = &sig_table[i];
        if (e->hash == 0)
            return NULL;
        if (e->hash == h && e->n == n && memcmp(e->w, w, (size_t)n * sizeof(uint64_t)) == 0)
            return e->eid;
    }
}

/* files key w -> eid, keeping inputs' dtypes and types alive; errors are cleared (the key is then not filed) */
static void sig_file(PyObject *inputs, int tensors, const uint64_t *w, int n, uint64_t h, PyObject *eid)
{
    if (sig_filed >= SIG_SLOTS / 4 * 3)
        return;
    Py_ssize_t na = PyTuple_GET_SIZE(inputs);
    for (Py_ssize_t i = 0; i < na; i++) {
        PyObject *a = PyTuple_GET_ITEM(inputs, i), *d;
        int rc = 0;
        if (sig_array(a, tensors, &d) > 0)
            rc = PyList_Append(sig_keep, ((ArrayHead *)d)->descr);
        else {
            rc = PyList_Append(sig_keep, (PyObject *)Py_TYPE(a));
            Py_ssize_t len = PyList_CheckExact(a) ? PyList_GET_SIZE(a) : PyTuple_CheckExact(a) ? PyTuple_GET_SIZE(a) : 0;
            for (Py_ssize_t j = 0; j < len && rc == 0; j++) {
                PyObject *x = PyList_CheckExact(a) ? PyList_GET_ITEM(a, j) : PyTuple_GET_ITEM(a, j);
                if (sig_array(x, tensors, &d) > 0)
                    rc = PyList_Append(sig_keep, ((ArrayHead *)d)->descr);
            }
        }
        if (rc < 0) {
            PyErr_Clear();
            return;
        }
    }
    uint64_t i = h & (SIG_SLOTS - 1);
    while (sig_table[i].hash != 0)
        i = (i + 1) & (SIG_SLOTS - 1);
    SigEntry *e = &sig_table[i];
    memcpy(e->w, w, (size_t)n * sizeof(uint64_t));
    e->n = n;
    Py_INCREF(eid);
    e->eid = eid;
    e->hash = h;
    sig_filed++;
}

/* setup()'s check of NumPy's array struct on arrays it makes: 1 where ArrayHead reads it, else 0 (errors cleared) */
static int probe_layout(void)
{
    static const char *shapes[] = {"(3, 5, 7)", "(11,)", "()", "(2, 0, 4, 6)"};
    int ok = 1;
    for (int s = 0; s < 4 && ok; s++) {
        PyObject *shape = PyRun_String(shapes[s], Py_eval_input, PyEval_GetBuiltins(), PyEval_GetBuiltins());
        PyObject *a = shape ? PyObject_CallMethod(Numpy, "empty", "Os", shape, s % 2 ? "float64" : "float32") : NULL;
        PyObject *dt = a ? PyObject_GetAttr(a, s_dtype) : NULL;
        PyObject *base = a ? PyObject_GetAttr(a, s_base) : NULL;
        ok = dt != NULL && base != NULL && Py_TYPE(a) == Ndarray_T;
        if (ok) {
            ArrayHead *h = (ArrayHead *)a;
            Py_ssize_t nd = PyTuple_GET_SIZE(shape);
            ok = h->nd == nd && h->descr == dt && h->base == (base == Py_None ? NULL : base);
            for (Py_ssize_t j = 0; ok && j < nd; j++)
                ok = h->dimensions[j] == PyLong_AsSsize_t(PyTuple_GET_ITEM(shape, j));
            PyObject *v = ok ? PyObject_GetItem(a, Py_Ellipsis) : NULL;      /* a view: its base is a */
            ok = v != NULL && Py_TYPE(v) == Ndarray_T && ((ArrayHead *)v)->base == a && ((ArrayHead *)v)->nd == nd;
            Py_XDECREF(v);
        }
        Py_XDECREF(shape);
        Py_XDECREF(a);
        Py_XDECREF(dt);
        Py_XDECREF(base);
    }
    PyErr_Clear();
    return ok;
}

static int sig_setup(void)
{
    layout_ok = sig_on = 0;
#ifdef Py_GIL_DISABLED
    return 0;
#else
    PyObject *d = Tensor_T->tp_dict ? PyDict_GetItemWithError(Tensor_T->tp_dict, s_data) : NULL;  /* borrowed */
    if (d == NULL) {
        PyErr_Clear();
        return 0;
    }
    if (slot_offset(Tensor_T, "_data", &data_off) < 0) {
        PyErr_Clear();
        return 0;
    }
    Py_INCREF(d);
    Py_XSETREF(data_descr, d);
    if (sig_table == NULL) {
        sig_table = PyMem_Calloc(SIG_SLOTS, sizeof(SigEntry));
        if (sig_table == NULL)
            return -1;
    }
    if (sig_keep == NULL && (sig_keep = PyList_New(0)) == NULL)
        return -1;
    layout_ok = probe_layout();
    sig_on = layout_ok;
    return 0;
#endif
}

/* The extra id of an op's inputs' signature (shapes_id / arrays_shapes_id): one dict lookup of the flat key,
 * the Python function on a new key or a tensor list (it builds the signature and files the key). */
static PyObject *extra_of_key(OpHooks *h, PyObject *inputs, int tensors)
{
    PyObject *key = shapes_key(inputs, tensors);
    if (key == NULL)
        return NULL;
    if (key != Py_None) {
        PyObject *eid = PyDict_GetItemWithError(h->shapes_ids, key);
        Py_DECREF(key);
        if (eid != NULL) {
            Py_INCREF(eid);
            return eid;
        }
        if (PyErr_Occurred())
            return NULL;
    }
    else
        Py_DECREF(key);
    return PyObject_CallOneArg(tensors ? h->shapes_id : h->arrays_id, inputs);
}

/* extra_of_key through the signature cache: a filed key's id, else extra_of_key's (filed for next time) */
static PyObject *extra_of(OpHooks *h, PyObject *inputs, int tensors)
{
    uint64_t w[SIG_WORDS];
    if (sig_dict == NULL && sig_on && PyDict_Check(h->shapes_ids)) {
        Py_INCREF(h->shapes_ids);
        sig_dict = h->shapes_ids;
    }
    int n = h->shapes_ids == sig_dict ? sig_words(inputs, tensors, w) : -1;
    if (n < 0)
        return extra_of_key(h, inputs, tensors);
    uint64_t hash = sig_hash(w, n);
    PyObject *eid = sig_find(w, n, hash);
    if (eid != NULL) {
        Py_INCREF(eid);
        return eid;
    }
    eid = extra_of_key(h, inputs, tensors);
    if (eid != NULL)
        sig_file(inputs, tensors, w, n, hash, eid);
    return eid;
}

static PyObject *get_name(PyObject *op) { return rapi != NULL ? rapi->op_name(op) : PyObject_GetAttr(op, s_name); }


/* op_enter(op, inputs, attrs, phase, seq) -> (op.name, phase, seq, extra id, t0, inputs); the extra id is the
 * inputs' signature's (record_shapes), their signature's and stack's (with_stack: stack_extra), else 0 */
static PyObject *OpHooks_op_enter(OpHooks *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "op_enter(op, inputs, attrs, phase, seq) takes 5 arguments");
        return NULL;
    }
    PyObject *name = get_name(args[0]);
    if (name == NULL)
        return NULL;
    PyObject *eid = self->stack_of != Py_None ? stack_extra(self, args[1], 1, self->shapes)
                    : self->shapes ? extra_of(self, args[1], 1) : PyLong_FromLong(0);
    if (eid == NULL) {
        Py_DECREF(name);
        return NULL;
    }
    PyObject *t0 = PyLong_FromLongLong(now_ns());
    if (t0 == NULL || eid == NULL) {
        Py_DECREF(name);
        Py_XDECREF(eid);
        Py_XDECREF(t0);
        return NULL;
    }
    PyObject *tok = PyTuple_New(6);
    if (tok == NULL) {
        Py_DECREF(name);
        Py_DECREF(eid);
        Py_DECREF(t0);
        return NULL;
    }
    PyTuple_SET_ITEM(tok, 0, name);
    Py_INCREF(args[3]);
    PyTuple_SET_ITEM(tok, 1, args[3]);
    Py_INCREF(args[4]);
    PyTuple_SET_ITEM(tok, 2, args[4]);
    PyTuple_SET_ITEM(tok, 3, eid);
    PyTuple_SET_ITEM(tok, 4, t0);
    Py_INCREF(args[1]);
    PyTuple_SET_ITEM(tok, 5, args[1]);
    return tok;
}

/* token[:5] + (t1,) */

/* op_exit(token, outputs): the outputs' new memory (profile_memory), then the record */
static PyObject *OpHooks_op_exit(OpHooks *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyTuple_CheckExact(args[0]) || PyTuple_GET_SIZE(args[0]) != 6) {
        PyErr_SetString(PyExc_TypeError, "op_exit(token, outputs): token is op_enter's");
        return NULL;
    }
    long long t1 = now_ns();
    PyObject *tok = args[0], *outputs = args[1];
    if (self->mem != NULL) {
        PyObject *inputs = PyTuple_GET_ITEM(tok, 5);
        Py_ssize_t n = PyObject_Length(inputs);
        if (n < 0)
            return NULL;
        int inplace = 0;
        if (n) {
            PyObject *first = PySequence_GetItem(inputs, 0);
            if (first == NULL)
                return NULL;
            inplace = first == outputs;       /* an in-place op's output: no new memory */
            Py_DECREF(first);
        }
        if (!inplace && rec_outputs(self->mem, outputs, inputs, t1 - 1) < 0)   /* a nanosecond before the end */
            return NULL;
    }
    long long t0 = as_ll(PyTuple_GET_ITEM(tok, 4));
    if (t0 == -1 && PyErr_Occurred())
        return NULL;
    PyObject *objs[4] = {PyTuple_GET_ITEM(tok, 0), PyTuple_GET_ITEM(tok, 1), PyTuple_GET_ITEM(tok, 2),
                         PyTuple_GET_ITEM(tok, 3)};
    if (push_objs(self, objs, 4, t0, t1) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* a tuple of the objects (new references taken) and two times: (objs..., t0, t1), or (objs..., t1) with t0 < 0 */
static PyObject *tuple_times(PyObject **objs, int n, long long t0, long long t1)
{
    PyObject *rec = PyTuple_New(n + (t0 >= 0 ? 2 : 1));
    if (rec == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        Py_INCREF(objs[i]);
        PyTuple_SET_ITEM(rec, i, objs[i]);
    }
    if (t0 >= 0) {
        PyObject *a = PyLong_FromLongLong(t0);
        if (a == NULL) {
            Py_DECREF(rec);
            return NULL;
        }
        PyTuple_SET_ITEM(rec, n++, a);
    }
    PyObject *b = PyLong_FromLongLong(t1);
    if (b == NULL) {
        Py_DECREF(rec);
        return NULL;
    }
    PyTuple_SET_ITEM(rec, n, b);
    return rec;
}


/* op_arrays(op, arrays, attrs, phase, seq) -> op.kernel(numpy, *arrays, **attrs), recorded as the dispatched op */
/* op_arrays' end, once its kernel gave `out` (stolen): the outputs' memory where profile_memory (a NumPy scalar made
 * the 0-d array its tensor would hold) and the record (objs, t0, t1) pushed; `out` as recorded, or NULL */
static PyObject *arrays_done(OpHooks *self, PyObject **objs, PyObject *arrays, PyObject *out, long long t0,
                             long long t1)
{
    if (self->mem != NULL) {
        if (Py_TYPE(out) != Ndarray_T && out != Py_None) {     /* a NumPy scalar: the 0-d array its tensor will hold */
            PyObject *o = PyObject_CallOneArg(self->as_arrays, out);
            Py_DECREF(out);
            out = o;
            if (out == NULL)
                return NULL;
        }
        if (rec_arrays(self->mem, out, arrays, t1 - 1) < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    if (push_objs(self, objs, 4, t0, t1) < 0)
        Py_CLEAR(out);
    return out;
}

static PyObject *OpHooks_op_arrays(OpHooks *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "op_arrays(op, arrays, attrs, phase, seq) takes 5 arguments");
        return NULL;
    }
    PyObject *op = args[0], *arrays = args[1], *attrs = args[2];
    PyObject *eid = self->stack_of != Py_None ? stack_extra(self, arrays, 0, self->shapes)
                    : self->shapes ? extra_of(self, arrays, 0) : PyLong_FromLong(0);
    if (eid == NULL)
        return NULL;
    PyObject *name = NULL, *kernel = NULL, *seq = NULL, *out = NULL;
    name = get_name(op);
    if (name == NULL)
        goto end;
    kernel = PyObject_GetAttr(op, s_kernel);
    if (kernel == NULL)
        goto end;
    seq = PySequence_Fast(arrays, "arrays must be a sequence");
    if (seq == NULL)
        goto end;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *small[8];
    PyObject **argv = n + 1 <= 8 ? small : PyMem_Malloc((n + 1) * sizeof(PyObject *));
    if (argv == NULL) {
        PyErr_NoMemory();
        goto end;
    }
    argv[0] = Numpy;
    for (Py_ssize_t i = 0; i < n; i++)
        argv[i + 1] = PySequence_Fast_GET_ITEM(seq, i);
    PyObject *kw = (attrs != Py_None && PyDict_Check(attrs) && PyDict_GET_SIZE(attrs)) ? attrs : NULL;
    long long t0 = now_ns();
    out = PyObject_VectorcallDict(kernel, argv, (size_t)(n + 1), kw);
    long long t1 = now_ns();
    if (argv != small)
        PyMem_Free(argv);
    PyObject *objs[4] = {name, args[3], args[4], eid};
    if (out == NULL) {
        push_objs_keeping_error(self, objs, 4, t0, t1);
        goto end;
    }
    out = arrays_done(self, objs, arrays, out, t0, t1);
end:
    Py_XDECREF(seq);
    Py_XDECREF(kernel);
    Py_XDECREF(name);
    Py_DECREF(eid);
    return out;
}

/* op_done(op, arrays, attrs, phase, seq, out, t0, t1) -> out as recorded: the record op_arrays makes of an op that ran
 * elsewhere (a C loop that ran and timed it: tensorlib/_cmath.c's Adam step, dispatch.record_ran; the engine's
 * formulas in C, run_recorded.call_as_arrays) with result `out` (None for an in-place op) between t0 and t1 -- its
 * Input Shapes from `arrays` and its outputs' memory, as op_arrays's; `out` returned as op_arrays returns it */
static PyObject *OpHooks_op_done(OpHooks *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "op_done(op, arrays, attrs, phase, seq, out, t0, t1) takes 8 arguments");
        return NULL;
    }
    long long t0 = as_ll(args[6]), t1 = as_ll(args[7]);
    if (PyErr_Occurred())
        return NULL;
    PyObject *eid = self->stack_of != Py_None ? stack_extra(self, args[1], 0, self->shapes)
                    : self->shapes ? extra_of(self, args[1], 0) : PyLong_FromLong(0);
    if (eid == NULL)
        return NULL;
    PyObject *name = get_name(args[0]), *out = NULL;
    if (name != NULL) {
        PyObject *objs[4] = {name, args[3], args[4], eid};
        out = arrays_done(self, objs, args[1], Py_NewRef(args[5]), t0, t1);
    }
    Py_XDECREF(name);
    Py_DECREF(eid);
    return out;     /* (as recorded: a NumPy scalar made the 0-d array counted, as op_arrays returns it) */
}


/* The tag of a range kind: _RANGE_TAGS' entry, range_tag's for a new kind (borrowed from the dict or new). */
static PyObject *tag_of(OpHooks *self, PyObject *kind)
{
    if (kind == self->last_kind)        /* (the engine's regions: one interned kind after another) */
        return Py_NewRef(self->last_tag);
    PyObject *tag = PyDict_GetItemWithError(self->tags, kind);
    if (tag != NULL)
        Py_INCREF(tag);
    else if (PyErr_Occurred() || (tag = PyObject_CallOneArg(self->range_tag, kind)) == NULL)
        return NULL;
    Py_INCREF(kind);
    Py_XSETREF(self->last_kind, kind);
    Py_XSETREF(self->last_tag, Py_NewRef(tag));
    return tag;
}

static PyObject *range_token(OpHooks *self, PyObject *name, PyObject *tag, PyObject *eid)
{
    PyObject *objs[4] = {name, tag, minus_one, eid};
    return tuple_times(objs, self->extended ? 4 : 3, -1, now_ns());
}

/* range_enter(name, kind) -> (name, tag, -1[, 0], t0) */
static PyObject *OpHooks_range_enter(OpHooks *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "range_enter(name, kind) takes 2 arguments");
        return NULL;
    }
    PyObject *tag = tag_of(self, args[1]);
    if (tag == NULL)
        return NULL;
    /* with_stack: the id of (None, stack, 0) (stack_extra; a module's range is the Python method's: its extra names
     * the module) */
    PyObject *eid = self->stack_of != Py_None ? stack_extra(self, Py_None, 1, 0) : Py_NewRef(zero), *tok = NULL;
    if (eid != NULL)
        tok = range_token(self, args[0], tag, eid);
    Py_DECREF(tag);
    Py_XDECREF(eid);
    return tok;
}

/* a composite op's region's extra id given its arguments (op_enter's for them; 0 without shapes or stacks): new ref */
static PyObject *op_range_eid(OpHooks *self, PyObject *args)
{
    return self->stack_of != Py_None ? stack_extra(self, args, 1, self->shapes)
           : self->shapes ? extra_of(self, args, 1) : Py_NewRef(zero);
}

/* op_range_enter(name, args) -> (name, op tag, -1[, extra id], t0): a composite op's region (its extra id as
 * op_enter's) */
static PyObject *OpHooks_op_range_enter(OpHooks *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "op_range_enter(name, args) takes 2 arguments");
        return NULL;
    }
    PyObject *eid = op_range_eid(self, args[1]);
    if (eid == NULL)
        return NULL;
    PyObject *tok = range_token(self, args[0], self->op_tag, eid);
    Py_DECREF(eid);
    return tok;
}

/* range_exit(token): the record is the token and the exit time */
static PyObject *OpHooks_range_exit(OpHooks *self, PyObject *tok)
{
    long long t1 = now_ns();
    if (!PyTuple_CheckExact(tok)) {
        PyErr_SetString(PyExc_TypeError, "range_exit(token): token is range_enter's");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(tok);
    if ((n == 4 || n == 5) && PyLong_CheckExact(PyTuple_GET_ITEM(tok, n - 1))) {   /* (objs..., t0): range_token's */
        long long t0 = as_ll(PyTuple_GET_ITEM(tok, n - 1));
        if (t0 == -1 && PyErr_Occurred())
            return NULL;
        PyObject *objs[4];
        for (Py_ssize_t i = 0; i < n - 1; i++)
            objs[i] = PyTuple_GET_ITEM(tok, i);
        if (push_objs(self, objs, (int)(n - 1), t0, t1) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    PyObject *rec = PyTuple_New(n + 1);
    if (rec == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PyTuple_GET_ITEM(tok, i);
        Py_INCREF(v);
        PyTuple_SET_ITEM(rec, i, v);
    }
    PyObject *t = PyLong_FromLongLong(t1);
    if (t == NULL) {
        Py_DECREF(rec);
        return NULL;
    }
    PyTuple_SET_ITEM(rec, n, t);
    int rc = push(self, rec);
    Py_DECREF(rec);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* a region's record where no stack is read, (name, tag, -1[, 0], t0, t1): op_step's, op_steps_at's, c_range's */
static int push_range(OpHooks *h, PyObject *name, PyObject *tag, long long t0, long long t1)
{
    PyObject *objs[4] = {name, tag, minus_one, zero};
    return push_objs(h, objs, h->extended ? 4 : 3, t0, t1);
}

/* fn(*argv) timed and recorded as a region of kind "op" (name, op tag, -1[, eid]), also when it raises (the error
 * kept): op_step's and op_region's call */
static PyObject *timed_region(OpHooks *self, PyObject *name, PyObject *eid, PyObject *fn, PyObject *const *argv,
                              Py_ssize_t n)
{
    PyObject *objs[4] = {name, self->op_tag, minus_one, eid};
    int nobj = self->extended ? 4 : 3;
    long long t0 = now_ns();
    PyObject *res = PyObject_Vectorcall(fn, argv, (size_t)n, NULL);
    long long t1 = now_ns();
    if (res == NULL)
        push_objs_keeping_error(self, objs, nobj, t0, t1);
    else if (push_objs(self, objs, nobj, t0, t1) < 0)
        Py_CLEAR(res);
    return res;
}

/* op_step(name, fn, *args) -> fn(*args), recorded as a region named `name` (the kernel steps of an op) */
static PyObject *OpHooks_op_step(OpHooks *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError, "op_step(name, fn, *args) takes at least 2 arguments");
        return NULL;
    }
    return timed_region(self, args[0], zero, args[1], args + 2, nargs - 2);
}

/* op_region(name, args, fn, *fargs) -> fn(*fargs), recorded as a composite op's region (kind "op") given its arguments
 * `args`: what op_range_enter(name, args), the call, then range_exit(token) record, in one call (tensorlib._hooks.
 * op_region; where op_step records: no stacks) */
static PyObject *OpHooks_op_region(OpHooks *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 3) {
        PyErr_SetString(PyExc_TypeError, "op_region(name, args, fn, *fargs) takes at least 3 arguments");
        return NULL;
    }
    PyObject *eid = op_range_eid(self, args[1]);
    if (eid == NULL)
        return NULL;
    PyObject *res = timed_region(self, args[0], eid, args[2], args + 3, nargs - 3);
    Py_DECREF(eid);
    return res;
}

/* op_steps_at(names, times): the records op_step(names[k], ...) leaves of steps a C loop ran and timed itself, times
 * an int64 array of (start, end) pairs, one per name (Adam's step_t.item(): its aten::item region and the read,
 * _local_scalar_dense, inside it). Where op_step records (no stacks) */
static PyObject *OpHooks_op_steps_at(OpHooks *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t n = timed_entries(args, nargs, &view, "op_steps_at");
    if (n < 0)
        return NULL;
    int ok = 1;
    const long long *t = (const long long *)view.buf;
    for (Py_ssize_t k = 0; ok && k < n; k++)
        ok = push_range(self, PyTuple_GET_ITEM(args[0], k), self->op_tag, t[2 * k], t[2 * k + 1]) == 0;
    PyBuffer_Release(&view);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

/* ---- c_range: range_enter + range_exit in one C call (tensorlib/_range_api.h) ---------------------------------- */

/* the record range_enter(name, kind) at t0 then range_exit(token) at t1 leave where no stack is read (stack_of None) */
static int range_c_record(PyObject *hooks, PyObject *name, PyObject *kind, long long t0, long long t1)
{
    OpHooks *self = (OpHooks *)hooks;
    PyObject *tag = tag_of(self, kind);
    if (tag == NULL)
        return -1;
    int rc = push_range(self, name, tag, t0, t1);
    Py_DECREF(tag);
    return rc;
}

static void range_c_free(PyObject *cap)
{
    RangeC *rc = PyCapsule_GetPointer(cap, RANGE_C_CAPSULE);
    if (rc != NULL) {
        Py_XDECREF(rc->self);
        PyMem_Free(rc);
    }
}

/* c_range() -> the capsule of this object's RangeC (Hook.c_range), or None where range_enter does more than take the
 * time (with_stack: it reads the stack) or records are not kept in C buffers (lists: the recorder's watchdog swaps
 * range_exit for a counter once max_events is reached, which a C form would bypass) */
static PyObject *OpHooks_c_range(OpHooks *self, PyObject *unused)
{
    if (self->stack_of != Py_None || rapi == NULL)
        Py_RETURN_NONE;
    RangeC *rc = PyMem_Malloc(sizeof(RangeC));
    if (rc == NULL)
        return PyErr_NoMemory();
    rc->record = range_c_record;
    rc->self = Py_NewRef((PyObject *)self);
    PyObject *cap = PyCapsule_New(rc, RANGE_C_CAPSULE, range_c_free);
    if (cap == NULL) {
        Py_DECREF(self);
        PyMem_Free(rc);
    }
    return cap;
}

/* ---- with_stack's stack cache -------------------------------------------------------------------------------
 *
 * Recorder._stack makes a key of the Python stack per op (frames_key: per frame its code's id and line, as ints in a
 * tuple, then a dict lookup), and op_exit an extra of (signature, stack, 0) whose tuple hash walks the stack's
 * strings: about 2.5 µs per op with a dozen frames. The cache keys the stack by machine words instead, per frame
 * from the dispatcher's up its code object's address and its last instruction (3.11+; the line before), hashed and
 * compared without a Python object made, and answers the stack tuple Recorder._stack gave for it the first time
 * (a finer key than its own: the same stack for one key) with that stack's extra ids (stack_extra: one without a
 * signature, one per the inputs' shapes_id id with record_shapes). The code objects, stacks and ids are kept alive
 * by the hooks (stack_keep), so no address is reused; the
 * table is the hooks', as Recorder._stacks is the recorder's. Deeper stacks than STACK_DEPTH and a full table
 * take Recorder._stack's path. */

#define STACK_DEPTH 96
#define STACK_SLOTS 512

typedef struct StackEntry {
    uint64_t hash;          /* 0: an empty slot */
    int n;                  /* words */
    uint64_t *w;
    PyObject *st;           /* the stack tuple (borrowed from stack_keep) */
    PyObject *eid;          /* the id of (None, st, 0), or NULL until an op without a signature asks */
    PyObject *by_shape;     /* dict: shapes_id's id of an op's inputs -> the id of (their signature, st, 0), or NULL
                             * until an op with record_shapes asks (borrowed from stack_keep) */
} StackEntry;

/* The words of the calling Python stack into w (2 per frame); their count, or -1 (too deep, an error cleared) */
static int stack_words(uint64_t *w)
{
    PyFrameObject *f = PyEval_GetFrame();      /* borrowed */
    Py_XINCREF(f);
    int n = 0;
    while (f != NULL) {
        if (n + 2 > 2 * STACK_DEPTH) {
            Py_DECREF(f);
            return -1;
        }
        PyCodeObject *code = PyFrame_GetCode(f);
        w[n++] = (uint64_t)(uintptr_t)code;
        Py_DECREF(code);        /* (the frame holds it) */
#if PY_VERSION_HEX >= 0x030B0000
        w[n++] = (uint64_t)(uint32_t)PyFrame_GetLasti(f);
#else
        w[n++] = (uint64_t)(uint32_t)PyFrame_GetLineNumber(f);
#endif
        PyFrameObject *b = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = b;
    }
    return n;
}

static StackEntry *stack_find(OpHooks *h, const uint64_t *w, int n, uint64_t hash)
{
    if (h->stacks == NULL)
        return NULL;
    for (uint64_t i = hash & (STACK_SLOTS - 1);; i = (i + 1) & (STACK_SLOTS - 1)) {
        StackEntry *e = &h->stacks[i];
        if (e->hash == 0)
            return NULL;
        if (e->hash == hash && e->n == n && memcmp(e->w, w, (size_t)n * sizeof(uint64_t)) == 0)
            return e;
    }
}

/* files key w -> st, keeping the stack's code objects and st alive; the entry, or NULL (not filed, no error) */
static StackEntry *stack_file(OpHooks *h, const uint64_t *w, int n, uint64_t hash, PyObject *st)
{
    if (h->nstacks >= STACK_SLOTS / 4 * 3)
        return NULL;
    if (h->stacks == NULL) {
        h->stacks = PyMem_Calloc(STACK_SLOTS, sizeof(StackEntry));
        if (h->stacks == NULL) {
            PyErr_Clear();
            return NULL;
        }
    }
    if (h->stack_keep == NULL && (h->stack_keep = PyList_New(0)) == NULL) {
        PyErr_Clear();
        return NULL;
    }
    uint64_t *copy = PyMem_Malloc((size_t)n * sizeof(uint64_t) + 1);
    if (copy == NULL || PyList_Append(h->stack_keep, st) < 0) {
        PyMem_Free(copy);
        PyErr_Clear();
        return NULL;
    }
    for (int k = 0; k < n; k += 2)        /* the code objects: w's addresses stay theirs */
        if (PyList_Append(h->stack_keep, (PyObject *)(uintptr_t)w[k]) < 0) {
            PyMem_Free(copy);
            PyErr_Clear();
            return NULL;
        }
    memcpy(copy, w, (size_t)n * sizeof(uint64_t));
    uint64_t i = hash & (STACK_SLOTS - 1);
    while (h->stacks[i].hash != 0)
        i = (i + 1) & (STACK_SLOTS - 1);
    StackEntry *e = &h->stacks[i];
    e->w = copy;
    e->n = n;
    e->st = st;
    e->eid = NULL;
    e->by_shape = NULL;
    e->hash = hash;
    h->nstacks++;
    return e;
}

static void stacks_free(OpHooks *h)
{
    if (h->stacks != NULL) {
        for (int i = 0; i < STACK_SLOTS; i++)
            PyMem_Free(h->stacks[i].w);
        PyMem_Free(h->stacks);
        h->stacks = NULL;
    }
    h->nstacks = 0;
    Py_CLEAR(h->stack_keep);
}

/* The calling stack's tuple (new reference) and its cache entry (*entry, NULL where not filed): the cache's, else
 * Recorder._stack's (filed for next time) */
static PyObject *stack_now(OpHooks *h, StackEntry **entry)
{
    uint64_t w[2 * STACK_DEPTH];
    *entry = NULL;
    int n = stack_words(w);
    if (n < 0) {
        PyErr_Clear();
        return PyObject_CallNoArgs(h->stack_of);
    }
    uint64_t hash = sig_hash(w, n);
    StackEntry *e = stack_find(h, w, n, hash);
    if (e != NULL) {
        *entry = e;
        return Py_NewRef(e->st);
    }
    PyObject *st = PyObject_CallNoArgs(h->stack_of);
    if (st != NULL)
        *entry = stack_file(h, w, n, hash, st);
    return st;
}

/* The extra id of an op with_stack records (new reference): the id of (its inputs' signature or None, the calling
 * stack, 0). With a cached stack (stack_now) the id is the entry's: one per stack without a signature, one per
 * the inputs' shapes_id id with it (the signature cache finds that id; the signature, a Python call, is made only for
 * a pair not seen before); else the extra is made and looked up. tensors: inputs are an op's arguments, else an
 * op_arrays call's arrays; shapes: with their signature (record_shapes; a range has none). */
static PyObject *stack_extra(OpHooks *h, PyObject *inputs, int tensors, int shapes)
{
    PyObject *raw_of = tensors ? h->raw_inputs : h->raw_arrays;
    if (shapes && raw_of == Py_None) {
        PyErr_SetString(PyExc_RuntimeError, "these hooks have no signature function for arrays");
        return NULL;
    }
    StackEntry *e = NULL;
    PyObject *st = stack_now(h, &e);
    if (st == NULL)
        return NULL;
    PyObject *key = NULL, **slot = NULL, *id = NULL;
    if (e != NULL && !shapes)
        slot = &e->eid;
    else if (e != NULL && PyDict_Check(h->shapes_ids)) {
        if (e->by_shape == NULL) {
            PyObject *d = PyDict_New();
            if (d != NULL && PyList_Append(h->stack_keep, d) == 0)
                e->by_shape = d;        /* (borrowed from stack_keep) */
            Py_XDECREF(d);
        }
        key = e->by_shape != NULL ? extra_of(h, inputs, tensors) : NULL;
        if (key == NULL) {
            Py_DECREF(st);
            return NULL;
        }
        id = PyDict_GetItemWithError(e->by_shape, key);
        if (id != NULL) {
            Py_DECREF(key);
            Py_DECREF(st);
            return Py_NewRef(id);
        }
        if (PyErr_Occurred())
            goto fail;
    }
    if (slot != NULL && *slot != NULL) {
        Py_DECREF(st);
        return Py_NewRef(*slot);
    }
    /* the extra made and looked up (filed in the entry, where there is one) */
    PyObject *raw = shapes ? PyObject_CallOneArg(raw_of, inputs) : Py_NewRef(Py_None);
    PyObject *ex = raw ? PyTuple_Pack(3, raw, st, zero) : NULL;
    Py_XDECREF(raw);
    id = ex ? PyDict_GetItemWithError(h->extra_ids, ex) : NULL;
    Py_XINCREF(id);
    if (id == NULL && ex != NULL && !PyErr_Occurred())
        id = PyObject_CallOneArg(h->extra_id, ex);
    Py_XDECREF(ex);
    if (id == NULL)
        goto fail;
    if (key != NULL) {
        if (PyDict_SetItem(e->by_shape, key, id) < 0) {
            Py_DECREF(id);
            goto fail;
        }
    }
    else if (slot != NULL) {
        if (PyList_Append(h->stack_keep, id) == 0)
            *slot = id;     /* (borrowed from stack_keep) */
        else
            PyErr_Clear();  /* (the id left unfiled) */
    }
    Py_XDECREF(key);
    Py_DECREF(st);
    return id;
fail:
    Py_XDECREF(key);
    Py_DECREF(st);
    return NULL;
}

static PyMethodDef OpHooks_methods[] = {
    {"op_enter", (PyCFunction)(void (*)(void))OpHooks_op_enter, METH_FASTCALL, "Recorder.op_enter"},
    {"op_exit", (PyCFunction)(void (*)(void))OpHooks_op_exit, METH_FASTCALL, "Recorder.op_exit"},
    {"op_arrays", (PyCFunction)(void (*)(void))OpHooks_op_arrays, METH_FASTCALL, "Recorder.op_arrays"},
    {"op_done", (PyCFunction)(void (*)(void))OpHooks_op_done, METH_FASTCALL, "Recorder.op_done"},
    {"range_enter", (PyCFunction)(void (*)(void))OpHooks_range_enter, METH_FASTCALL, "Recorder.range_enter"},
    {"op_range_enter", (PyCFunction)(void (*)(void))OpHooks_op_range_enter, METH_FASTCALL, "Recorder.op_range_enter"},
    {"range_exit", (PyCFunction)OpHooks_range_exit, METH_O, "Recorder.range_exit"},
    {"op_step", (PyCFunction)(void (*)(void))OpHooks_op_step, METH_FASTCALL, "Recorder.op_step"},
    {"op_region", (PyCFunction)(void (*)(void))OpHooks_op_region, METH_FASTCALL, "Recorder.op_region"},
    {"c_range", (PyCFunction)OpHooks_c_range, METH_NOARGS, "c_range() -> Recorder.c_range: the capsule, or None"},
    {"op_steps_at", (PyCFunction)(void (*)(void))OpHooks_op_steps_at, METH_FASTCALL,
     "Recorder.op_steps_at(names, times): op_step's records of steps timed elsewhere"},
    {NULL, NULL, 0, NULL},
};

static int OpHooks_init(OpHooks *self, PyObject *args, PyObject *kw)
{
    PyObject *tls, *shapes_ids, *shapes_id, *arrays_id, *as_arrays, *tags, *range_tag, *op_tag, *mem;
    int extended, shapes;
    static char *kwlist[] = {"tls", "shapes_ids", "shapes_id", "arrays_id", "as_arrays", "tags", "range_tag",
                             "op_tag", "memory", "extended", "shapes", "stack_of", "raw_inputs", "extra_ids",
                             "extra_id", "raw_arrays", NULL};
    PyObject *stack_of = Py_None, *raw_inputs = Py_None, *extra_ids = Py_None, *extra_id = Py_None;
    PyObject *raw_arrays = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOO!OOOpp|OOOOO", kwlist, &tls, &shapes_ids, &shapes_id, &arrays_id,
                                     &as_arrays, &PyDict_Type, &tags, &range_tag, &op_tag, &mem, &extended, &shapes, &stack_of, &raw_inputs, &extra_ids,
                                     &extra_id, &raw_arrays))
        return -1;
    if (Tensor_T == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "profiler._crecord.setup() has not been called");
        return -1;
    }
    if (shapes && !PyDict_Check(shapes_ids)) {
        PyErr_SetString(PyExc_TypeError, "shapes_ids must be a dict when shapes is true");
        return -1;
    }
    if (mem != Py_None && !PyObject_TypeCheck(mem, &CpuMemory_T)) {
        PyErr_SetString(PyExc_TypeError, "memory must be a CpuMemory or None");
        return -1;
    }
    if (stack_of != Py_None && (!PyDict_Check(extra_ids) || !PyCallable_Check(extra_id) ||
                                !PyCallable_Check(raw_inputs))) {
        PyErr_SetString(PyExc_TypeError, "stack_of needs extra_ids (a dict), extra_id and raw_inputs");
        return -1;
    }
    PyObject **slots[] = {&self->tls, &self->shapes_ids, &self->shapes_id, &self->arrays_id, &self->as_arrays,
                          &self->tags, &self->range_tag, &self->op_tag, &self->stack_of, &self->raw_inputs,
                          &self->extra_ids, &self->extra_id, &self->raw_arrays};
    PyObject *vals[] = {tls, shapes_ids, shapes_id, arrays_id, as_arrays, tags, range_tag, op_tag, stack_of,
                        raw_inputs, extra_ids, extra_id, raw_arrays};
    for (int i = 0; i < 13; i++) {
        Py_INCREF(vals[i]);
        Py_XSETREF(*slots[i], vals[i]);
    }
    Py_XINCREF(mem == Py_None ? NULL : mem);
    Py_XSETREF(self->mem, mem == Py_None ? NULL : (CpuMemory *)mem);
    Py_CLEAR(self->last_kind);      /* (tags and range_tag set anew) */
    Py_CLEAR(self->last_tag);
    self->extended = extended;
    self->shapes = shapes;
    return 0;
}

static int OpHooks_traverse(OpHooks *self, visitproc visit, void *arg)
{
    Py_VISIT(self->tls);
    Py_VISIT(self->shapes_ids);
    Py_VISIT(self->shapes_id);
    Py_VISIT(self->arrays_id);
    Py_VISIT(self->as_arrays);
    Py_VISIT(self->tags);
    Py_VISIT(self->range_tag);
    Py_VISIT(self->op_tag);
    Py_VISIT(self->last_kind);
    Py_VISIT(self->last_tag);
    Py_VISIT(self->stack_of);
    Py_VISIT(self->raw_inputs);
    Py_VISIT(self->raw_arrays);
    Py_VISIT(self->extra_ids);
    Py_VISIT(self->extra_id);
    Py_VISIT(self->mem);
    Py_VISIT(self->stack_keep);
    return 0;
}

static int OpHooks_clear(OpHooks *self)
{
    Py_CLEAR(self->tls);
    Py_CLEAR(self->shapes_ids);
    Py_CLEAR(self->shapes_id);
    Py_CLEAR(self->arrays_id);
    Py_CLEAR(self->as_arrays);
    Py_CLEAR(self->tags);
    Py_CLEAR(self->range_tag);
    Py_CLEAR(self->op_tag);
    Py_CLEAR(self->last_kind);
    Py_CLEAR(self->last_tag);
    Py_CLEAR(self->stack_of);
    Py_CLEAR(self->raw_inputs);
    Py_CLEAR(self->raw_arrays);
    Py_CLEAR(self->extra_ids);
    Py_CLEAR(self->extra_id);
    Py_CLEAR(self->mem);
    stacks_free(self);
    return 0;
}

static void OpHooks_dealloc(OpHooks *self)
{
    PyObject_GC_UnTrack(self);
    OpHooks_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject OpHooks_T = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "profiler._crecord.OpHooks",
    .tp_basicsize = sizeof(OpHooks),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "OpHooks(...): a Recorder's hook methods (op_enter, op_exit, op_arrays, range_enter, range_exit, ...).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)OpHooks_init,
    .tp_traverse = (traverseproc)OpHooks_traverse,
    .tp_clear = (inquiry)OpHooks_clear,
    .tp_dealloc = (destructor)OpHooks_dealloc,
    .tp_methods = OpHooks_methods,
};

/* ---- module -------------------------------------------------------------------------------------------- */

static PyObject *mod_setup(PyObject *m, PyObject *args)
{
    PyObject *tensor, *ndarray, *generic, *numpy;
    if (!PyArg_ParseTuple(args, "O!O!O!O", &PyType_Type, &tensor, &PyType_Type, &ndarray, &PyType_Type, &generic,
                          &numpy))
        return NULL;
    Py_INCREF(tensor);
    Py_XSETREF(Tensor_T, (PyTypeObject *)tensor);
    Py_INCREF(ndarray);
    Py_XSETREF(Ndarray_T, (PyTypeObject *)ndarray);
    Py_INCREF(generic);
    Py_XSETREF(Generic_T, (PyTypeObject *)generic);
    Py_INCREF(numpy);
    Py_XSETREF(Numpy, numpy);
    if (sig_setup() < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *mod_signature_cache(PyObject *m, PyObject *unused)
{
    return Py_BuildValue("{sOsi}", "on", sig_on ? Py_True : Py_False, "filed", sig_filed);
}

static PyObject *mod_perf_counter_ns(PyObject *m, PyObject *unused) { return PyLong_FromLongLong(now_ns()); }

static PyObject *mod_native_id(PyObject *m, PyObject *unused) { return PyLong_FromLong(thread_id()); }

/* frames_key(skip) -> (id(code), line, id(code), line, ...): recorder.Recorder._stack's key of the Python stack,
 * innermost first, from `skip` frames above the calling Python function's frame (the C function has none) */
static PyObject *mod_frames_key(PyObject *m, PyObject *arg)
{
    long skip = PyLong_AsLong(arg);
    if (skip == -1 && PyErr_Occurred())
        return NULL;
    PyFrameObject *f = PyEval_GetFrame();      /* borrowed */
    Py_XINCREF(f);
    for (long i = 0; i < skip && f != NULL; i++) {
        PyFrameObject *b = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = b;
    }
    PyObject *items = PyList_New(0);
    if (items == NULL) {
        Py_XDECREF(f);
        return NULL;
    }
    while (f != NULL) {
        PyCodeObject *code = PyFrame_GetCode(f);
        PyObject *id = PyLong_FromVoidPtr((void *)code);
        Py_DECREF(code);
        PyObject *line = id ? PyLong_FromLong(PyFrame_GetLineNumber(f)) : NULL;
        int rc = line == NULL ? -1 : 0;
        if (rc == 0)
            rc = PyList_Append(items, id);
        if (rc == 0)
            rc = PyList_Append(items, line);
        Py_XDECREF(id);
        Py_XDECREF(line);
        PyFrameObject *b = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = b;
        if (rc < 0) {
            Py_XDECREF(f);
            Py_DECREF(items);
            return NULL;
        }
    }
    PyObject *key = PyList_AsTuple(items);
    Py_DECREF(items);
    return key;
}

static PyMethodDef module_methods[] = {
    {"setup", mod_setup, METH_VARARGS, "setup(Tensor, ndarray, generic, numpy): the types the hooks test against."},
    {"signature_cache", mod_signature_cache, METH_NOARGS,
     "{'on': whether the signature cache runs (NumPy's array struct as expected), 'filed': keys filed}"},
    {"perf_counter_ns", mod_perf_counter_ns, METH_NOARGS, "The records' clock (time.perf_counter_ns's)."},
    {"native_id", mod_native_id, METH_NOARGS, "The records' thread id (threading.get_native_id's), cached."},
    {"frames_key", mod_frames_key, METH_O, "frames_key(skip): Recorder._stack's key of the Python stack."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_crecord", "The profiler recorder's per-op work in C (see profiler/_native.py).", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__crecord(void)
{
    CountedRef_T.tp_base = &_PyWeakref_RefType;
    if (PyType_Ready(&CountedRef_T) < 0 || PyType_Ready(&CpuMemory_T) < 0 || PyType_Ready(&OpHooks_T) < 0)
        return NULL;
#define INTERN(var, s) if ((var = PyUnicode_InternFromString(s)) == NULL) return NULL
    INTERN(s_data, "_data");
    INTERN(s_base, "base");
    INTERN(s_nbytes, "nbytes");
    INTERN(s_shape, "shape");
    INTERN(s_dtype, "dtype");
    INTERN(s_name, "name");
    INTERN(s_buf, "buf");
    INTERN(s_kernel, "kernel");
    INTERN(s_append, "append");
#undef INTERN
    if ((minus_one = PyLong_FromLong(-1)) == NULL || (zero = PyLong_FromLong(0)) == NULL)
        return NULL;
    pthread_atfork(NULL, NULL, forget_tid);
    rapi = PyCapsule_Import(RECORDS_API_CAPSULE, 0);      /* NULL (lists) where tensorlib._crecorded is not built */
    if (rapi == NULL)
        PyErr_Clear();
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL)
        return NULL;
    Py_INCREF(&CountedRef_T);
    Py_INCREF(&CpuMemory_T);
    Py_INCREF(&OpHooks_T);
    if (PyModule_AddObject(m, "CountedRef", (PyObject *)&CountedRef_T) < 0 ||
        PyModule_AddObject(m, "CpuMemory", (PyObject *)&CpuMemory_T) < 0 ||
        PyModule_AddObject(m, "OpHooks", (PyObject *)&OpHooks_T) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
