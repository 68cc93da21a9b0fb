/* tensorlib._crecorded: the dispatcher's recorded paths in C (Linux), for when a profiler observes ops.
 *
 * The Python functions of tensorlib/dispatch.py stay the reference and the fallback (TENSORLIB_NATIVE=0, or a
 * build without a compiler); each method here does what its Python twin does, in the same order:
 *   sink(op, args, attrs)    _dispatch_recorded(op, args, attrs, (), False): the op sink alone (a default
 *                            profile) -- phase and sequence number, execute, one OpRecord tuple
 *                            (name, phase, seq, t0_ns, t1_ns) appended to the sink's per-thread list
 *   pair(op, args, attrs)    _dispatch_one_pair(op, args, attrs, pair): one op hook alone (a detailed profile)
 * and RunRecorded, dispatch.run_recorded itself: run_recorded(op, *arrays, **attrs) while the sink or that
 * hook's op_arrays is the only observer (a backward formula's or an optimizer's op run on arrays), through the
 * Recorded set on it.
 * A Recorded object is made by dispatch._copy_flags whenever the hook registry changes, holding what it reads
 * per op (the sink's threading.local, the hook's bound methods), as the Python paths read module globals, and
 * set on run_recorded.
 * Clock: time.perf_counter_ns() is CLOCK_MONOTONIC on Linux; dispatch.py checks that at import.
 * Also walk(), tensorlib.memory's count of the bytes live CPU tensors hold (a profile_memory profile's start).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "_native_common.h"
#include "_native_slots.h"
#include "_records_api.h"
#include "_state_api.h"
#include <stddef.h>
#include "structmember.h"
#include <string.h>

#include <time.h>

static PyObject *s_forward, *s_backward, *s_name, *s_buf, *s_kernel, *s_append, *minus_one;
static StateAPI *sapi;      /* tensorlib._cstate's: the thread's phase and backward seq */

typedef struct {
    PyObject_HEAD
    PyObject *execute;          /* _execute.execute(op, args, attrs, seq) */
    PyObject *backward_passes;  /* _state.backward_passes: a list, non-empty while some backward runs */
    PyObject *seq_counter;      /* _state.seq_counter: next() gives a forward sequence number */
    PyObject *numpy;            /* an array kernel's first argument */
    PyObject *tls;              /* the op sink's threading.local (its `buf`), or None */
    PyObject *enter, *exit_;    /* the only op hook's op_enter and op_exit, or None */
    PyObject *arrays_hook;      /* that hook's op_arrays, or None */
    PyObject *arrays_done;      /* and its op_done (the record of an op that ran elsewhere), or None */
} Recorded;

/* A record's int fields (a sequence number, -1, an extra's id) are kept in their slots as tagged integers, (v << 1) | 1
 * (an object's address is even), not as references: the op sink's sequence number, a new int object per op, is then
 * freed after its op (its memory reused by the next one's) instead of kept with the record -- a third of the memory a
 * long profile touches for the first time, each new page costing microseconds here (a fault, and in a VM the host's).
 * Ints beyond +-2^61, and every field on 32-bit builds, are kept as references. */
#define REC_TAG_MAX ((long long)1 << 61)

static inline int rec_tagged(PyObject *o) { return ((uintptr_t)o & 1u) != 0; }

/* v (within +-2^61) as a tagged int */
static inline PyObject *rec_tag(long long v) { return (PyObject *)(intptr_t)(((unsigned long long)v << 1) | 1u); }

/* o as a record keeps it: a tagged int, or a new reference (o itself where already tagged: a record's seq) */
static inline PyObject *rec_keep(PyObject *o)
{
#if SIZEOF_VOID_P == 8
    if (rec_tagged(o))
        return o;
    if (PyLong_CheckExact(o)) {
        /* a one-digit int (below 2^30: a sequence number, -1, an extra's id) read directly */
#if PY_VERSION_HEX >= 0x030C0000
        if (PyUnstable_Long_IsCompact((PyLongObject *)o))
            return rec_tag(PyUnstable_Long_CompactValue((PyLongObject *)o));
#else
        Py_ssize_t size = Py_SIZE(o);
        if (size >= -1 && size <= 1)
            return rec_tag(size * (long long)((PyLongObject *)o)->ob_digit[0]);
#endif
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (!overflow && v > -REC_TAG_MAX && v < REC_TAG_MAX)     /* (no error for an exact int: overflow is the flag) */
            return rec_tag(v);
    }
#endif
    return Py_NewRef(o);
}

/* a kept field as an object (new reference; NULL on a failed int allocation) */
static inline PyObject *rec_field(PyObject *o)
{
    return rec_tagged(o) ? PyLong_FromLongLong((long long)((intptr_t)o >> 1)) : Py_NewRef(o);
}

/* The op's phase and sequence numbers, as _state.phase_seq: ("backward", STATE.seq, -1) inside a backward pass,
 * else ("forward", n, n) with n = next(seq_counter); new references. run_seq NULL: an op whose seq only its record
 * keeps (an op run on arrays: RunRecorded's kernel path, call_as, record_times), a forward op's seq taken from the C
 * counter as a tagged int (rec_keep keeps it as it is; no int object made and freed per op), released by
 * seq_release. 0, or -1 with an error set. */
static int phase_seq(Recorded *r, PyObject **phase, PyObject **seq, PyObject **run_seq)
{
    if (PyList_GET_SIZE(r->backward_passes)) {
        ThreadPhase *t = sapi->current();
        if (t == NULL)
            return -1;
        if (t->backward) {
            *seq = Py_NewRef(t->seq);
            *phase = Py_NewRef(s_backward);
            if (run_seq != NULL)
                *run_seq = Py_NewRef(minus_one);
            return 0;
        }
    }
#if SIZEOF_VOID_P == 8
    if (run_seq == NULL && Py_TYPE(r->seq_counter) == sapi->counter_type) {
        SeqCounter *c = (SeqCounter *)r->seq_counter;
        if (c->next >= 0 && c->next < REC_TAG_MAX) {     /* (past 2^61: an int object, below) */
            *seq = rec_tag(c->next++);
            *phase = Py_NewRef(s_forward);
            return 0;
        }
    }
#endif
    *seq = PyIter_Next(r->seq_counter);
    if (*seq == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "the sequence counter is exhausted");
        return -1;
    }
    if (run_seq != NULL)
        *run_seq = Py_NewRef(*seq);
    *phase = Py_NewRef(s_forward);
    return 0;
}

static inline void seq_release(PyObject *seq)
{
    if (!rec_tagged(seq))
        Py_DECREF(seq);
}

/* ---- a recorder's per-thread buffer: tls.buf ----
 * tls is the profiler's _ThreadBuffer (a threading.local) or its overflow counter. threading.local finds the calling
 * thread's attribute dict on every getattr (about 360 instructions on CPython 3.11, for each record). Here the dict
 * is kept per thread, beside a weak reference to its local: the dict lives as long as both its thread and its local
 * do, and only its own thread reads this cache, so the entry is good while the weak reference still gives the local
 * (a local that died and another made at its address fail that test). Two entries: the op sink's local and the
 * hooks' may differ. What a dead thread's cache held, two weak references, is not freed. */
typedef struct {
    PyObject *wr;           /* weak reference to the local (owned), or NULL */
    PyObject *dict;         /* its attribute dict for this thread (borrowed, see above) */
} LocalEntry;

static __thread LocalEntry local_cache[2] TLS_IE;
static __thread int local_next TLS_IE;
static PyTypeObject *local_T;       /* _thread._local */

/* whether weak reference wr still gives obj */
static inline int refers_to(PyObject *wr, PyObject *obj)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *o = NULL;
    if (PyWeakref_GetRef(wr, &o) < 0)
        PyErr_Clear();
    Py_XDECREF(o);      /* (compared by address only: obj is alive, held by the caller) */
    return o == obj;
#else
    return PyWeakref_GET_OBJECT(wr) == obj;     /* (the macro: a load, where the function's checks cost a call) */
#endif
}

/* The buffer this thread last looked up (a training loop's, a worker's), per thread: weak references to its local and
 * to the buffer (a Records), and the observers' generation it was read in (buf_gen, bumped by every Recorded made:
 * whenever the observers change, a local's `buf` is read afresh). A hit costs a compare and two weak references'
 * tests, where the dict lookup below costs ~140 instructions a record. Per thread, not per thread identifier: a
 * thread that starts after another ended often gets its identifier (pthread's are reused) but always an empty entry,
 * so it records into its own buffer. Weak references: the entry keeps neither the local nor the buffer alive (a
 * finished profile's records are freed with it), and what a dead thread's entry holds, two weak references, is not
 * freed. Lists (the Python twins' buffers) take no weak reference: their threads take the lookup. */
static PyTypeObject Records_T;      /* (below) */

typedef struct {
    PyObject *wr_local, *wr_buf;    /* (owned) */
    unsigned long gen;
} LastBuf;

static __thread LastBuf last TLS_IE;
static unsigned long buf_gen = 1;

/* the object weak reference wr gives (new reference), or NULL (dead; no error set) */
static inline PyObject *weak_target(PyObject *wr)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *o = NULL;
    if (PyWeakref_GetRef(wr, &o) < 0)
        PyErr_Clear();
    return o;
#else
    PyObject *o = PyWeakref_GET_OBJECT(wr);
    return o != Py_None ? Py_NewRef(o) : NULL;
#endif
}

static PyObject *local_buf(PyObject *tls)
{
    if (last.gen == buf_gen && refers_to(last.wr_local, tls)) {
        PyObject *buf = weak_target(last.wr_buf);
        if (buf != NULL)
            return buf;
    }
    PyObject *d = NULL, *wr_local = NULL;
    for (int i = 0; i < 2 && d == NULL; i++)
        if (local_cache[i].wr != NULL && refers_to(local_cache[i].wr, tls))
            d = local_cache[i].dict, wr_local = local_cache[i].wr;
    if (d == NULL) {
        if (local_T == NULL || !PyObject_TypeCheck(tls, local_T))
            return PyObject_GetAttr(tls, s_buf);
        PyObject *wr = PyWeakref_NewRef(tls, NULL);
        if (wr == NULL)
            return NULL;
        d = PyObject_GetAttrString(tls, "__dict__");    /* (the thread's first: made, __init__ run) */
        if (d == NULL || !PyDict_Check(d)) {
            Py_DECREF(wr);
            Py_XDECREF(d);
            return d == NULL ? NULL : PyObject_GetAttr(tls, s_buf);
        }
        Py_DECREF(d);       /* held by the local for this thread */
        LocalEntry *e = &local_cache[local_next];
        local_next ^= 1;
        Py_XSETREF(e->wr, wr);
        e->dict = d;
        wr_local = wr;
    }
    PyObject *buf = PyDict_GetItemWithError(d, s_buf);
    if (buf == NULL)
        return PyErr_Occurred() ? NULL : PyObject_GetAttr(tls, s_buf);     /* (a class attribute, or the error) */
    if (Py_TYPE(buf) == &Records_T) {
        PyObject *wr_buf = PyWeakref_NewRef(buf, NULL);
        if (wr_buf == NULL)
            PyErr_Clear();      /* (the entry stays as it was: the lookup above serves) */
        else {
            Py_INCREF(wr_local);
            Py_XSETREF(last.wr_local, wr_local);
            Py_XSETREF(last.wr_buf, wr_buf);
            last.gen = buf_gen;
        }
    }
    return Py_NewRef(buf);
}

/* op.name and op.kernel: OpDef's slots read at their offsets (set_op_class) for an op of exactly that class, else the
 * getattr (~160 instructions a record, where the slot is a load). New references. */
static PyTypeObject *opdef_T;
static Py_ssize_t off_op_name, off_op_kernel;

static inline PyObject *op_name_of(PyObject *op) { return slot_or_attr(op, opdef_T, off_op_name, s_name); }
static inline PyObject *op_kernel_of(PyObject *op) { return slot_or_attr(op, opdef_T, off_op_kernel, s_kernel); }

static PyObject *mod_set_op_class(PyObject *m, PyObject *cls)
{
    Py_ssize_t off, koff;
    if (!PyType_Check(cls) || slot_offset((PyTypeObject *)cls, "name", &off) < 0 ||
        slot_offset((PyTypeObject *)cls, "kernel", &koff) < 0)
        return NULL;
    Py_XSETREF(opdef_T, (PyTypeObject *)Py_NewRef(cls));
    off_op_name = off;
    off_op_kernel = koff;
    Py_RETURN_NONE;
}

static int records_push(PyObject *buf, PyObject *const *objs, int n, long long t0, long long t1);
typedef struct Records Records;
static inline int records_keep(Records *r, PyObject *const *objs, int n, long long t0, long long t1);

/* (op.name, phase, seq, t0, t1) pushed into the thread's buffer (records_push); an exception on its way out is
 * kept (a failing record replaces it) */
static int record(Recorded *r, PyObject *op, PyObject *phase, PyObject *seq, long long t0, long long t1)
{
    PyObject *et, *ev, *tb;
    int failing = PyErr_Occurred() != NULL;
    if (failing)
        PyErr_Fetch(&et, &ev, &tb);
    PyObject *buf = local_buf(r->tls);
    int rc = -1;
    if (buf != NULL && Py_TYPE(buf) == &Records_T && Py_TYPE(op) == opdef_T && SLOT(op, off_op_name) != NULL) {
        PyObject *objs[3] = {SLOT(op, off_op_name), phase, seq};     /* (the name borrowed: the op holds it) */
        rc = records_keep((Records *)buf, objs, 3, t0, t1);
    } else if (buf != NULL) {
        PyObject *name = op_name_of(op);
        if (name != NULL) {
            PyObject *objs[3] = {name, phase, seq};
            rc = records_push(buf, objs, 3, t0, t1);
            Py_DECREF(name);
        }
    }
    Py_XDECREF(buf);
    if (failing) {
        if (rc < 0) {
            Py_XDECREF(et);
            Py_XDECREF(ev);
            Py_XDECREF(tb);
        }
        else
            PyErr_Restore(et, ev, tb);
    }
    return rc;
}

static PyObject *run_execute(Recorded *r, PyObject *op, PyObject *args, PyObject *attrs, PyObject *run_seq)
{
    PyObject *argv[4] = {op, args, attrs, run_seq};
    return PyObject_Vectorcall(r->execute, argv, 4, NULL);
}

/* fn(*argv) (vectorcall's arguments) timed and recorded as op with its phase and seq in the op sink's list: the
 * result, or NULL (an error of the call or of its record) -- the op sink's one timed call, for a dispatch (sink), a
 * kernel on arrays (RunRecorded) and a callable standing for the kernel (call_as) */
static PyObject *timed_call(Recorded *r, PyObject *op, PyObject *phase, PyObject *seq, PyObject *fn,
                            PyObject *const *argv, size_t nargsf, PyObject *kwnames)
{
    long long t0 = now_ns();
    PyObject *out = PyObject_Vectorcall(fn, argv, nargsf, kwnames);
    long long t1 = now_ns();
    if (record(r, op, phase, seq, t0, t1) < 0)
        Py_CLEAR(out);
    return out;
}

static PyObject *Recorded_sink(Recorded *r, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "sink(op, args, attrs) takes 3 arguments");
        return NULL;
    }
    if (r->tls == Py_None) {
        PyErr_SetString(PyExc_RuntimeError, "this Recorded has no op sink");
        return NULL;
    }
    PyObject *phase, *seq, *run_seq;
    if (phase_seq(r, &phase, &seq, &run_seq) < 0)
        return NULL;
    PyObject *argv[4] = {args[0], args[1], args[2], run_seq};
    PyObject *out = timed_call(r, args[0], phase, seq, r->execute, argv, 4, NULL);
    Py_DECREF(phase);
    Py_DECREF(seq);
    Py_DECREF(run_seq);
    return out;
}

static PyObject *Recorded_pair(Recorded *r, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "pair(op, args, attrs) takes 3 arguments");
        return NULL;
    }
    if (r->enter == Py_None) {
        PyErr_SetString(PyExc_RuntimeError, "this Recorded has no op hook");
        return NULL;
    }
    PyObject *phase, *seq, *run_seq;
    if (phase_seq(r, &phase, &seq, &run_seq) < 0)
        return NULL;
    PyObject *eargv[5] = {args[0], args[1], args[2], phase, seq};
    PyObject *tok = PyObject_Vectorcall(r->enter, eargv, 5, NULL);
    PyObject *out = NULL;
    if (tok != NULL) {
        out = run_execute(r, args[0], args[1], args[2], run_seq);
        /* exit(tok, out) as a finally: out is None when the op raised; an error of exit's replaces the op's */
        PyObject *et = NULL, *ev = NULL, *tb = NULL;
        if (out == NULL)
            PyErr_Fetch(&et, &ev, &tb);
        PyObject *xargv[2] = {tok, out ? out : Py_None};
        PyObject *res = PyObject_Vectorcall(r->exit_, xargv, 2, NULL);
        if (res == NULL) {
            Py_CLEAR(out);
            if (et != NULL) {       /* chain the op's error as the exit's context, as a finally would */
                PyObject *ev2, *et2, *tb2;
                PyErr_Fetch(&et2, &ev2, &tb2);
                PyErr_NormalizeException(&et, &ev, &tb);
                PyErr_NormalizeException(&et2, &ev2, &tb2);
                if (tb != NULL)
                    PyException_SetTraceback(ev, tb);
                PyException_SetContext(ev2, ev);        /* steals ev */
                Py_XDECREF(et);
                Py_XDECREF(tb);
                PyErr_Restore(et2, ev2, tb2);
            }
        }
        else {
            Py_DECREF(res);
            if (et != NULL)
                PyErr_Restore(et, ev, tb);
        }
        Py_DECREF(tok);
    }
    Py_DECREF(phase);
    Py_DECREF(seq);
    Py_DECREF(run_seq);
    return out;
}

static PyMethodDef Recorded_methods[] = {
    {"sink", (PyCFunction)(void (*)(void))Recorded_sink, METH_FASTCALL,
     "sink(op, args, attrs): dispatch._dispatch_recorded(op, args, attrs, (), False)"},
    {"pair", (PyCFunction)(void (*)(void))Recorded_pair, METH_FASTCALL,
     "pair(op, args, attrs): dispatch._dispatch_one_pair(op, args, attrs, (op_enter, op_exit))"},
    {NULL, NULL, 0, NULL},
};

static int Recorded_init(Recorded *r, PyObject *args, PyObject *kw)
{
    PyObject *execute, *bp, *counter, *numpy, *tls, *enter, *exit_, *arrays_hook, *arrays_done = Py_None;
    static char *kwlist[] = {"execute", "backward_passes", "seq_counter", "numpy", "tls", "op_enter", "op_exit",
                             "op_arrays", "op_done", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO!OOOOOO|O", kwlist, &execute, &PyList_Type, &bp, &counter,
                                     &numpy, &tls, &enter, &exit_, &arrays_hook, &arrays_done))
        return -1;
    if (!PyIter_Check(counter)) {
        PyErr_SetString(PyExc_TypeError, "seq_counter must be an iterator");
        return -1;
    }
    buf_gen++;      /* the observers changed (dispatch._copy_flags): a local's `buf` is read afresh */
    if ((enter == Py_None) != (exit_ == Py_None)) {
        PyErr_SetString(PyExc_TypeError, "op_enter and op_exit come together");
        return -1;
    }
    if (arrays_done != Py_None && arrays_hook == Py_None) {
        PyErr_SetString(PyExc_TypeError, "op_done comes with op_arrays");
        return -1;
    }
    PyObject **slots[] = {&r->execute, &r->backward_passes, &r->seq_counter, &r->numpy, &r->tls, &r->enter,
                          &r->exit_, &r->arrays_hook, &r->arrays_done};
    PyObject *vals[] = {execute, bp, counter, numpy, tls, enter, exit_, arrays_hook, arrays_done};
    for (int i = 0; i < 9; i++) {
        Py_INCREF(vals[i]);
        Py_XSETREF(*slots[i], vals[i]);
    }
    return 0;
}

static int Recorded_traverse(Recorded *r, visitproc visit, void *arg)
{
    Py_VISIT(r->execute);
    Py_VISIT(r->backward_passes);
    Py_VISIT(r->seq_counter);
    Py_VISIT(r->numpy);
    Py_VISIT(r->tls);
    Py_VISIT(r->enter);
    Py_VISIT(r->exit_);
    Py_VISIT(r->arrays_hook);
    Py_VISIT(r->arrays_done);
    return 0;
}

static int Recorded_clear(Recorded *r)
{
    Py_CLEAR(r->execute);
    Py_CLEAR(r->backward_passes);
    Py_CLEAR(r->seq_counter);
    Py_CLEAR(r->numpy);
    Py_CLEAR(r->tls);
    Py_CLEAR(r->enter);
    Py_CLEAR(r->exit_);
    Py_CLEAR(r->arrays_hook);
    Py_CLEAR(r->arrays_done);
    return 0;
}

static void Recorded_dealloc(Recorded *r)
{
    PyObject_GC_UnTrack(r);
    Recorded_clear(r);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyTypeObject Recorded_T = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tensorlib._crecorded.Recorded",
    .tp_basicsize = sizeof(Recorded),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Recorded(execute, backward_passes, seq_counter, numpy, tls, op_enter, op_exit, op_arrays, "
              "op_done=None): "
              "the dispatcher's recorded paths (sink, pair; and run_recorded's through RunRecorded).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Recorded_init,
    .tp_traverse = (traverseproc)Recorded_traverse,
    .tp_clear = (inquiry)Recorded_clear,
    .tp_dealloc = (destructor)Recorded_dealloc,
    .tp_methods = Recorded_methods,
};

/* RunRecorded(fallback): dispatch.run_recorded itself, one object for the life of the process (the op modules
 * import it by name). run_recorded(op, *arrays, **attrs) with a Recorded set by set() (dispatch._copy_flags:
 * while the sink or an op_arrays hook alone observes ops): the phase and sequence number, then the hook's
 * op_arrays(op, arrays, attrs, phase, seq), or op.kernel(numpy, *arrays, **attrs) timed and recorded in the
 * sink's list -- the kernel called with the caller's arguments as they are (no tuple, dict or Python frame
 * between a sink formula and its kernel). Without one, fallback(op, *arrays, **attrs): dispatch._run_recorded_py,
 * the Python twin. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Recorded *target;       /* NULL: the fallback runs */
    PyObject *fallback;
} RunRecorded;

static PyObject *RunRecorded_vectorcall(RunRecorded *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Recorded *r = self->target;
    if (r == NULL || nargs < 1 || (r->arrays_hook == Py_None && r->tls == Py_None))
        return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
    Py_INCREF(r);           /* set() may replace it while the kernel runs */
    PyObject *op = args[0], *out = NULL, *phase, *seq, *run_seq;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    int hooked = r->arrays_hook != Py_None;     /* (the hook gets the seq: an int object; else only the record) */
    if (phase_seq(r, &phase, &seq, hooked ? &run_seq : NULL) < 0) {
        Py_DECREF(r);
        return NULL;
    }
    if (hooked) {                           /* hook(op, arrays, attrs, phase, seq) */
        Py_DECREF(run_seq);
        PyObject *arrays = PyTuple_New(nargs - 1), *attrs = arrays ? PyDict_New() : NULL;
        if (attrs != NULL) {
            for (Py_ssize_t i = 1; i < nargs; i++)
                PyTuple_SET_ITEM(arrays, i - 1, Py_NewRef(args[i]));
            int rc = 0;
            for (Py_ssize_t i = 0; i < nkw && rc == 0; i++)
                rc = PyDict_SetItem(attrs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]);
            if (rc == 0) {
                PyObject *argv[5] = {op, arrays, attrs, phase, seq};
                out = PyObject_Vectorcall(r->arrays_hook, argv, 5, NULL);
            }
        }
        Py_XDECREF(arrays);
        Py_XDECREF(attrs);
    }
    else {                                  /* op.kernel(numpy, *arrays, **attrs), recorded */
        PyObject *kernel = op_kernel_of(op);
        if (kernel != NULL) {
            Py_ssize_t total = nargs + nkw;     /* numpy in op's place */
            PyObject *small[12];
            PyObject **argv = total <= 12 ? small : PyMem_Malloc((size_t)total * sizeof(PyObject *));
            if (argv == NULL)
                PyErr_NoMemory();
            else {
                argv[0] = r->numpy;
                for (Py_ssize_t i = 1; i < total; i++)
                    argv[i] = args[i];
                out = timed_call(r, op, phase, seq, kernel, argv, (size_t)nargs, kwnames);
                if (argv != small)
                    PyMem_Free(argv);
            }
            Py_DECREF(kernel);
        }
    }
    Py_DECREF(phase);
    seq_release(seq);
    Py_DECREF(r);
    return out;
}

static int RunRecorded_init(RunRecorded *self, PyObject *args, PyObject *kw)
{
    PyObject *fallback;
    if (!PyArg_ParseTuple(args, "O:RunRecorded", &fallback))
        return -1;
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "RunRecorded(fallback): fallback must be callable");
        return -1;
    }
    Py_XSETREF(self->fallback, Py_NewRef(fallback));
    self->vectorcall = (vectorcallfunc)RunRecorded_vectorcall;
    return 0;
}

static PyObject *RunRecorded_set(RunRecorded *self, PyObject *target)
{
    if (target != Py_None && !PyObject_TypeCheck(target, &Recorded_T)) {
        PyErr_SetString(PyExc_TypeError, "set(target): a Recorded or None");
        return NULL;
    }
    Py_XSETREF(self->target, target == Py_None ? NULL : (Recorded *)Py_NewRef(target));
    Py_RETURN_NONE;
}

static PyObject *RunRecorded_call(RunRecorded *self, PyObject *args, PyObject *kw)
{
    if (self->fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "RunRecorded is not initialized");
        return NULL;
    }
    return PyVectorcall_Call((PyObject *)self, args, kw);
}

static int RunRecorded_traverse(RunRecorded *self, visitproc visit, void *arg)
{
    Py_VISIT(self->target);
    Py_VISIT(self->fallback);
    return 0;
}

static int RunRecorded_clear(RunRecorded *self)
{
    Py_CLEAR(self->target);
    Py_CLEAR(self->fallback);
    return 0;
}

static void RunRecorded_dealloc(RunRecorded *self)
{
    PyObject_GC_UnTrack(self);
    RunRecorded_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* op's record from t0 to t1 in the op sink's list (r's), its phase and sequence number taken now as run_recorded takes
 * them: an op that a C loop ran and timed (record_times, record_ran). 0, or -1 with an error set. */
static int record_timed(Recorded *r, PyObject *op, long long t0, long long t1)
{
    PyObject *phase, *seq;
    if (phase_seq(r, &phase, &seq, NULL) < 0)
        return -1;
    int rc = record(r, op, phase, seq, t0, t1);
    Py_DECREF(phase);
    seq_release(seq);
    return rc;
}

/* record_times(ops, times): ops a tuple of OpDefs (None: a slot left out), times a C-contiguous int64 buffer of at
 * least two per op: for each op, its phase and sequence number (phase_seq) and the record (name, phase, seq,
 * times[2i], times[2i+1]) pushed into the op sink's list, as run_recorded records an op it runs -- for ops that a C
 * loop ran and timed itself (tensorlib/_cmath.c's Adam step: dispatch.record_times). Only while the op sink alone
 * records (the Recorded set has its list); else RuntimeError (dispatch.record_times then takes its Python path). */
static PyObject *RunRecorded_record_times(RunRecorded *self, PyObject *const *args, Py_ssize_t nargs)
{
    Recorded *r = self->target;
    if (r == NULL || r->tls == Py_None) {
        PyErr_SetString(PyExc_RuntimeError, "record_times: the op sink is not the only observer of ops");
        return NULL;
    }
    Py_buffer b;
    Py_ssize_t n = timed_entries(args, nargs, &b, "record_times");
    if (n < 0)
        return NULL;
    const long long *t = b.buf;
    int rc = 0;
    Py_INCREF(r);
    for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
        PyObject *op = PyTuple_GET_ITEM(args[0], i);
        if (op != Py_None)
            rc = record_timed(r, op, t[2 * i], t[2 * i + 1]);
    }
    Py_DECREF(r);
    PyBuffer_Release(&b);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* fn(*fargs) run, timed and recorded as op in the op sink's list (r's, which has one: checked by the callers) */
static PyObject *sink_call(Recorded *r, PyObject *op, PyObject *fn, PyObject *const *fargs, Py_ssize_t nf)
{
    Py_INCREF(r);           /* set() may replace it while fn runs */
    PyObject *phase, *seq, *out = NULL;
    if (phase_seq(r, &phase, &seq, NULL) == 0) {
        out = timed_call(r, op, phase, seq, fn, fargs, (size_t)nf, NULL);
        Py_DECREF(phase);
        seq_release(seq);
    }
    Py_DECREF(r);
    return out;
}

/* call_as(op, fn, *args): fn(*args) run as op's kernel, timed and recorded as op in the op sink's list, as run_recorded
 * runs and records op.kernel(numpy, *args) -- for a caller that holds the kernel's computation as another callable (the
 * engine's view formulas in C: a region step around the array's view method, autograd/_cengine.c's view_sink). Only
 * while the op sink alone records through this object (the Recorded set has its list); else NotImplemented, nothing
 * run (the caller takes its Python path). */
static PyObject *RunRecorded_call_as(RunRecorded *self, PyObject *const *args, Py_ssize_t nargs)
{
    Recorded *r = self->target;
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError, "call_as(op, fn, *args) takes at least 2 arguments");
        return NULL;
    }
    if (r == NULL || r->tls == Py_None)     /* (the op sink alone, but recording by the Python path) */
        Py_RETURN_NOTIMPLEMENTED;
    return sink_call(r, args[0], args[1], args + 2, nargs - 2);
}

/* fn(*fargs) run and timed, then recorded by r's op hook as op on arrays with attrs: op_done(op, arrays, attrs,
 * phase, seq, out, t0, t1), r's hook having op_arrays and op_done (checked by the callers). op_done's result (fn's
 * result as op_arrays would return it), or NULL. */
static PyObject *done_call(Recorded *r, PyObject *op, PyObject *arrays, PyObject *attrs, PyObject *fn,
                           PyObject *const *fargs, Py_ssize_t nf)
{
    Py_INCREF(r);           /* set() may replace it while fn runs */
    PyObject *phase, *seq, *run_seq, *out = NULL;
    if (phase_seq(r, &phase, &seq, &run_seq) == 0) {      /* (seq an int object: the hook takes it) */
        Py_DECREF(run_seq);
        long long t0 = now_ns();
        out = PyObject_Vectorcall(fn, fargs, (size_t)nf, NULL);
        long long t1 = now_ns();
        if (out != NULL) {
            PyObject *a = PyLong_FromLongLong(t0), *b = a ? PyLong_FromLongLong(t1) : NULL, *res = NULL;
            if (b != NULL) {
                PyObject *argv[8] = {op, arrays, attrs, phase, seq, out, a, b};
                res = PyObject_Vectorcall(r->arrays_done, argv, 8, NULL);
            }
            Py_XDECREF(a);
            Py_XDECREF(b);
            Py_SETREF(out, res);    /* (op_done's result: out as op_arrays returns it, a NumPy scalar made an array) */
        }
        Py_DECREF(phase);
        Py_DECREF(seq);
    }
    Py_DECREF(r);
    return out;
}

/* call_as_arrays(op, arrays, attrs, fn, *args): call_as(op, fn, *args) where the op sink alone records; where the only
 * op hook takes ops on arrays and ops that ran (op_arrays and op_done: a detailed profile), fn(*args) run and timed
 * here, then that hook's op_done(op, arrays, attrs, phase, seq, out, t0, t1): the record op_arrays(op, arrays,
 * attrs, ...) makes of op's kernel on `arrays` (Input Shapes from them, the outputs' memory), its computation
 * being fn(*args) -- for the engine's formulas in C (view_sink, linear_sink), which hold the op's arrays and
 * attributes as run_recorded(op, *arrays, **attrs) would get them. Else NotImplemented, nothing run. */
static PyObject *RunRecorded_call_as_arrays(RunRecorded *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 4 || !PyTuple_Check(args[1]) || !PyDict_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "call_as_arrays(op, arrays, attrs, fn, *args): arrays a tuple, attrs a dict");
        return NULL;
    }
    Recorded *r = self->target;
    if (r == NULL)
        Py_RETURN_NOTIMPLEMENTED;
    if (r->tls != Py_None)          /* the op sink: call_as's record */
        return sink_call(r, args[0], args[3], args + 4, nargs - 4);
    if (r->arrays_hook == Py_None || r->arrays_done == Py_None)
        Py_RETURN_NOTIMPLEMENTED;
    return done_call(r, args[0], args[1], args[2], args[3], args + 4, nargs - 4);
}

/* record_ran(op, arrays, attrs, out, t0, t1): dispatch.record_ran in C, the record of an op a C loop ran on `arrays`
 * (a tuple) with attributes `attrs` (a dict) from t0 to t1 (ints, perf_counter_ns), giving `out` (None in place):
 * its phase and sequence number as run_recorded's, then the op sink's record where it alone records, else the only
 * op hook's op_done(op, arrays, attrs, phase, seq, out, t0, t1) (Input Shapes, the outputs' memory; the times passed
 * as they are). Nothing where neither records through this object (a profile stopped meanwhile); RuntimeError
 * without a Recorded set (dispatch.record_ran_fn then gives the Python function). */
static PyObject *RunRecorded_record_ran(RunRecorded *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyTuple_Check(args[1]) || !PyDict_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "record_ran(op, arrays, attrs, out, t0, t1): arrays a tuple, attrs a dict");
        return NULL;
    }
    Recorded *r = self->target;
    if (r == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "record_ran: run_recorded has no Recorded set");
        return NULL;
    }
    PyObject *phase, *seq, *run_seq;
    int rc = 0;
    Py_INCREF(r);
    if (r->tls != Py_None) {            /* the op sink alone records */
        long long t0 = as_ll(args[4]), t1 = as_ll(args[5]);
        rc = (t0 == -1 || t1 == -1) && PyErr_Occurred() ? -1 : record_timed(r, args[0], t0, t1);
    }
    else if (r->arrays_hook != Py_None && r->arrays_done != Py_None) {
        if ((rc = phase_seq(r, &phase, &seq, &run_seq)) == 0) {      /* (seq an int object: the hook takes it) */
            Py_DECREF(run_seq);
            PyObject *argv[8] = {args[0], args[1], args[2], phase, seq, args[3], args[4], args[5]};
            PyObject *res = PyObject_Vectorcall(r->arrays_done, argv, 8, NULL);
            rc = res == NULL ? -1 : 0;
            Py_XDECREF(res);
            Py_DECREF(phase);
            Py_DECREF(seq);
        }
    }
    Py_DECREF(r);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* run_as(op, fn, *arrays): run_recorded(op, *arrays) whose kernel's work on these arrays is fn(*arrays) -- a NumPy
 * ufunc that computes what op.kernel(numpy, *arrays) does (mul's np.multiply, div's np.true_divide: the sink formulas'
 * products, ops/broadcast.py SINK): while the op sink alone records through this object, fn(*arrays) run, timed and
 * recorded as op (call_as, without the kernel's Python frame); else run_recorded(op, *arrays) itself (an op_arrays
 * hook, whose kernel call costs no more than op_done's boxed times would here, or the Python twin). No keyword
 * arguments. */
static PyObject *RunRecorded_run_as(RunRecorded *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError, "run_as(op, fn, *arrays) takes at least 2 arguments");
        return NULL;
    }
    Recorded *r = self->target;
    if (r != NULL && r->arrays_hook == Py_None && r->tls != Py_None)
        return RunRecorded_call_as(self, args, nargs);
    PyObject *small[8];
    PyObject **argv = nargs - 1 <= 8 ? small : PyMem_Malloc((size_t)(nargs - 1) * sizeof(PyObject *));
    if (argv == NULL)
        return PyErr_NoMemory();
    argv[0] = args[0];
    for (Py_ssize_t i = 2; i < nargs; i++)
        argv[i - 1] = args[i];
    PyObject *out = RunRecorded_vectorcall(self, argv, (size_t)(nargs - 1), NULL);
    if (argv != small)
        PyMem_Free(argv);
    return out;
}

static PyMethodDef RunRecorded_methods[] = {
    {"set", (PyCFunction)RunRecorded_set, METH_O, "set(recorded or None): the Recorded whose arrays path runs"},
    {"record_times", (PyCFunction)(void (*)(void))RunRecorded_record_times, METH_FASTCALL,
     "record_times(ops, times): the op sink's records of ops a C loop ran, timed by times (two int64 per op)"},
    {"call_as", (PyCFunction)(void (*)(void))RunRecorded_call_as, METH_FASTCALL,
     "call_as(op, fn, *args): fn(*args) run, timed and recorded as op by the op sink (NotImplemented, nothing run, "
     "where it does not record through this object)"},
    {"record_ran", (PyCFunction)(void (*)(void))RunRecorded_record_ran, METH_FASTCALL,
     "record_ran(op, arrays, attrs, out, t0, t1): the record of an op a C loop ran (dispatch.record_ran)"},
    {"call_as_arrays", (PyCFunction)(void (*)(void))RunRecorded_call_as_arrays, METH_FASTCALL,
     "call_as_arrays(op, arrays, attrs, fn, *args): call_as, or fn(*args) recorded by the op hook's op_done as "
     "op on arrays with attrs (NotImplemented, nothing run, where neither records through this object)"},
    {"run_as", (PyCFunction)(void (*)(void))RunRecorded_run_as, METH_FASTCALL,
     "run_as(op, fn, *arrays): run_recorded(op, *arrays), fn(*arrays) standing for op's kernel where the op sink "
     "alone records through this object"},
    {NULL, NULL, 0, NULL},
};

static PyObject *RunRecorded_target(RunRecorded *self, void *closure)
{
    return Py_NewRef(self->target != NULL ? (PyObject *)self->target : Py_None);
}

static PyGetSetDef RunRecorded_getset[] = {
    {"target", (getter)RunRecorded_target, NULL, "the Recorded set, or None (the fallback runs)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject RunRecorded_T = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tensorlib._crecorded.RunRecorded",
    .tp_basicsize = sizeof(RunRecorded),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "RunRecorded(fallback): run_recorded(op, *arrays, **attrs) through the Recorded set by set(), "
              "else fallback(op, *arrays, **attrs).",
    .tp_vectorcall_offset = offsetof(RunRecorded, vectorcall),
    .tp_call = (ternaryfunc)RunRecorded_call,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)RunRecorded_init,
    .tp_traverse = (traverseproc)RunRecorded_traverse,
    .tp_clear = (inquiry)RunRecorded_clear,
    .tp_dealloc = (destructor)RunRecorded_dealloc,
    .tp_methods = RunRecorded_methods,
    .tp_getset = RunRecorded_getset,
};

/* ---- Records: a thread's records, kept in C ----
 * The recorder's per-thread list (profiler/recorder.py `_new_buffer`) when the C recorders run. A record pushed
 * from C (the op sink's (name, phase, seq, t0, t1), the hooks' (name, tag, seq[, eid], t0, t1)) is kept as its
 * objects' references and two int64 stamps: no tuple and no ints are made per record, and so no allocation that
 * counts toward the cyclic GC's threshold (a profiled step's records triggered about two collections of a
 * program's young objects each). Python appends (`append(obj)`) keep the object. Indexing and slicing give the
 * tuples the list would hold (made then: snapshot() and peek() read it once). Records hold strings, ints and
 * tuples of them, never a cycle: the type is not tracked by the GC (whose full collections walked a list of
 * records item by item: recorder.freeze's reason). */
typedef struct {
    PyObject *o[4];         /* 3 or 4 objects (o[3] NULL: 3), the stamps after them; o[1] NULL: o[0] is an appended
                             * object (48 bytes a record: the memory a long profile touches for the first time) */
    long long t0, t1;
} RecEntry;

/* how many of e's slots hold the record's objects; -1: o[0] is an appended object */
static inline int rec_n(const RecEntry *e) { return e->o[1] == NULL ? -1 : e->o[3] == NULL ? 3 : 4; }

/* The entries in blocks of REC_BLOCK, never moved: a growing array's realloc copied every record so far at each
 * doubling (~1% of a long profiled run here, in memmove, where the heap could not grow it in place). A dead Records'
 * blocks are kept for the next ones, up to REC_SPARE of them (their pages already touched: no page fault per 85
 * records in the next profile). */
#define REC_SHIFT 12
#define REC_BLOCK ((Py_ssize_t)1 << REC_SHIFT)
#define REC_SPARE 16

struct Records {
    PyObject_HEAD
    RecEntry **blocks;      /* nblocks blocks of REC_BLOCK entries, the first len in use */
    Py_ssize_t len, nblocks, cap;
    Py_ssize_t limit;       /* the most records kept (the profile's max_events; 0: no bound) */
    Py_ssize_t dropped;     /* records refused since (counted, not kept) */
    PyObject *weakrefs;     /* (local_buf's per-thread entry refers to a buffer weakly) */
};

static RecEntry *rec_spare[REC_SPARE];
static int n_spare;

static inline RecEntry *rec_at(Records *r, Py_ssize_t i)
{
    return &r->blocks[i >> REC_SHIFT][i & (REC_BLOCK - 1)];
}

/* the slot of the next record: a new block where the last is full (records_grow), else the next entry */
static RecEntry *records_grow(Records *r);

static inline RecEntry *records_slot(Records *r)
{
    return r->len < r->nblocks * REC_BLOCK ? rec_at(r, r->len) : records_grow(r);
}

static RecEntry *records_grow(Records *r)
{
    if (r->nblocks == r->cap) {
        Py_ssize_t cap = r->cap ? r->cap * 2 : 16;
        RecEntry **b = PyMem_Realloc(r->blocks, (size_t)cap * sizeof(RecEntry *));
        if (b == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        r->blocks = b;
        r->cap = cap;
    }
    RecEntry *e = n_spare ? rec_spare[--n_spare] : PyMem_Malloc((size_t)REC_BLOCK * sizeof(RecEntry));
    if (e == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    r->blocks[r->nblocks++] = e;
    return rec_at(r, r->len);
}

static PyObject *Records_append(Records *r, PyObject *obj)
{
    if (r->limit && r->len >= r->limit) {
        r->dropped++;
        Py_RETURN_NONE;
    }
    RecEntry *e = records_slot(r);
    if (e == NULL)
        return NULL;
    e->o[0] = Py_NewRef(obj);
    e->o[1] = e->o[2] = e->o[3] = NULL;     /* (an appended object: rec_n) */
    r->len++;
    Py_RETURN_NONE;
}

/* the record as the list would hold it: (objs..., t0, t1), (objs..., t1) without t0, or the appended object */
static PyObject *records_item(RecEntry *e)
{
    int n = rec_n(e);
    if (n < 0)
        return Py_NewRef(e->o[0]);
    int k = n + (e->t0 >= 0 ? 2 : 1);
    PyObject *t = PyTuple_New(k);
    if (t == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        PyObject *v = rec_field(e->o[i]);
        if (v == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, v);
    }
    int i = n;
    PyObject *a = e->t0 >= 0 ? PyLong_FromLongLong(e->t0) : NULL, *b = PyLong_FromLongLong(e->t1);
    if ((e->t0 >= 0 && a == NULL) || b == NULL) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        Py_DECREF(t);
        return NULL;
    }
    if (a != NULL)
        PyTuple_SET_ITEM(t, i++, a);
    PyTuple_SET_ITEM(t, i, b);
    untrack_atoms(t);
    return t;
}

/* The record (objs[0..n), n of 3 or 4, t0, t1) kept in Records r (records_push's case of a Records buffer; record()
 * calls it directly). 0, or -1 with an error set. */
static inline int records_keep(Records *r, PyObject *const *objs, int n, long long t0, long long t1)
{
    if (r->limit && r->len >= r->limit) {     /* (the bound: one compare a record, no watchdog thread) */
        r->dropped++;
        return 0;
    }
    RecEntry *e = records_slot(r);
    if (e == NULL)
        return -1;
    for (int i = 0; i < n; i++)
        e->o[i] = rec_keep(objs[i]);
    if (n == 3)
        e->o[3] = NULL;
    e->t0 = t0;
    e->t1 = t1;
    r->len++;
    return 0;
}

/* The record (objs[0..n), t0, t1) -- (objs..., t1) with t0 < 0 -- pushed into a thread's buffer: kept as it is
 * in a Records one (no tuple or int made), else appended as the tuple a Records read gives (a list: the Python
 * twins'; the recorder's counter once max_events is reached). 0, or -1 with an error set. */
static int records_push(PyObject *buf, PyObject *const *objs, int n, long long t0, long long t1)
{
    if (n < 3 || n > 4 || objs[1] == NULL || objs[n - 1] == NULL) {
        PyErr_SetString(PyExc_SystemError, "Records: a record has 3 or 4 objects");
        return -1;
    }
    if (Py_TYPE(buf) == &Records_T)
        return records_keep((Records *)buf, objs, n, t0, t1);
    RecEntry e = {{objs[0], objs[1], objs[2], n == 4 ? objs[3] : NULL}, t0, t1};
    PyObject *rec = records_item(&e);
    if (rec == NULL)
        return -1;
    int rc;
    if (PyList_CheckExact(buf))
        rc = PyList_Append(buf, rec);
    else {
        PyObject *res = PyObject_CallMethodOneArg(buf, s_append, rec);
        rc = res == NULL ? -1 : 0;
        Py_XDECREF(res);
    }
    Py_DECREF(rec);
    return rc;
}

static Py_ssize_t Records_len(Records *r) { return r->len; }

static PyObject *Records_item(Records *r, Py_ssize_t i)      /* sq_item: iteration, `in` */
{
    if (i < 0 || i >= r->len) {
        PyErr_SetString(PyExc_IndexError, "Records index out of range");
        return NULL;
    }
    return records_item(rec_at(r, i));
}

static PyObject *Records_subscript(Records *r, PyObject *key)
{
    if (PyIndex_Check(key)) {
        Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
        if (i == -1 && PyErr_Occurred())
            return NULL;
        if (i < 0)
            i += r->len;
        if (i < 0 || i >= r->len) {
            PyErr_SetString(PyExc_IndexError, "Records index out of range");
            return NULL;
        }
        return records_item(rec_at(r, i));
    }
    if (!PySlice_Check(key)) {
        PyErr_Format(PyExc_TypeError, "Records indices must be integers or slices, not %.200s", Py_TYPE(key)->tp_name);
        return NULL;
    }
    Py_ssize_t start, stop, step;
    if (PySlice_Unpack(key, &start, &stop, &step) < 0)
        return NULL;
    Py_ssize_t n = PySlice_AdjustIndices(r->len, &start, &stop, step);
    PyObject *out = PyList_New(n);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t k = 0, i = start; k < n; k++, i += step) {
        PyObject *item = records_item(rec_at(r, i));
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, k, item);
    }
    return out;
}

static void Records_dealloc(Records *r)
{
    if (r->weakrefs != NULL)
        PyObject_ClearWeakRefs((PyObject *)r);
    for (Py_ssize_t i = 0; i < r->len; i++) {
        RecEntry *e = rec_at(r, i);
        int n = rec_n(e);
        for (int k = 0; k < (n < 0 ? 1 : n); k++)
            if (!rec_tagged(e->o[k]))
                Py_DECREF(e->o[k]);
    }
    for (Py_ssize_t b = 0; b < r->nblocks; b++) {
        if (n_spare < REC_SPARE)
            rec_spare[n_spare++] = r->blocks[b];
        else
            PyMem_Free(r->blocks[b]);
    }
    PyMem_Free(r->blocks);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyMethodDef Records_methods[] = {
    {"append", (PyCFunction)Records_append, METH_O, "append(obj): a record made in Python (kept as it is)"},
    {NULL, NULL, 0, NULL},
};

static int Records_init(Records *r, PyObject *args, PyObject *kwds)
{
    Py_ssize_t limit = 0;
    static char *kwlist[] = {"limit", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|n:Records", kwlist, &limit))
        return -1;
    if (limit < 0) {
        PyErr_SetString(PyExc_ValueError, "Records(limit): limit must be >= 0 (0: no bound)");
        return -1;
    }
    r->limit = limit;
    return 0;
}

static PyMemberDef Records_members[] = {
    {"limit", T_PYSSIZET, offsetof(Records, limit), READONLY, "the most records kept (0: no bound)"},
    {"dropped", T_PYSSIZET, offsetof(Records, dropped), READONLY, "records refused once the limit was reached"},
    {NULL, 0, 0, 0, NULL},
};

static PyMappingMethods Records_mapping = {(lenfunc)Records_len, (binaryfunc)Records_subscript, NULL};
static PySequenceMethods Records_sequence = {(lenfunc)Records_len, 0, 0, (ssizeargfunc)Records_item};

static PyTypeObject Records_T = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tensorlib._crecorded.Records",
    .tp_basicsize = sizeof(Records),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Records(limit=0): a thread's profiler records, kept in C (len, indexing and slicing give the tuples a "
              "list would hold; append(obj) for records made in Python); past `limit` records (0: none) each record is "
              "counted in `dropped` and not kept.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Records_init,
    .tp_members = Records_members,
    .tp_dealloc = (destructor)Records_dealloc,
    .tp_weaklistoffset = offsetof(Records, weakrefs),
    .tp_methods = Records_methods,
    .tp_as_mapping = &Records_mapping,
    .tp_as_sequence = &Records_sequence,
};

static PyObject *op_name_api(PyObject *op) { return op_name_of(op); }

static RecordsAPI records_api = {records_push, local_buf, op_name_api};

/* prefault(n) -> blocks made: up to n spare blocks (at most REC_SPARE) made and written through now, so that a
 * profile's first n * REC_BLOCK records land on pages already touched -- a first touch costs 2-9 µs a page on a VM
 * (the host backs it), ~85 records' worth, which a profile started here would otherwise pay inside the steps it
 * records. Dead buffers' blocks refill the spares, so a process pays this once. */
static PyObject *mod_prefault(PyObject *m, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t made = 0;
    while (n_spare < REC_SPARE && n_spare < n) {
        RecEntry *e = PyMem_Malloc((size_t)REC_BLOCK * sizeof(RecEntry));
        if (e == NULL)
            return PyErr_NoMemory();
        memset(e, 0, (size_t)REC_BLOCK * sizeof(RecEntry));
        rec_spare[n_spare++] = e;
        made++;
    }
    return PyLong_FromSsize_t(made);
}

static PyObject *mod_perf_counter_ns(PyObject *m, PyObject *unused) { return PyLong_FromLongLong(now_ns()); }

/* walk(objects, Tensor, ndarray) -> (bytes, tensors, buffers): tensorlib.memory._walk's loop over gc.get_objects()
 * (its Python twin): per live tensor on a NumPy array, the buffer it views (its .base chain's owner, or that
 * owner's non-array base) counted once, at the largest size seen. */
static PyObject *mod_walk(PyObject *m, PyObject *args)
{
    PyObject *objects, *tensor, *ndarray;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyList_Type, &objects, &PyType_Type, &tensor, &PyType_Type, &ndarray))
        return NULL;
    PyObject *seen = PyDict_New();
    if (seen == NULL)
        return NULL;
    static PyObject *s_data_attr = NULL, *s_base_attr = NULL, *s_nbytes_attr = NULL;
    if (s_data_attr == NULL && ((s_data_attr = PyUnicode_InternFromString("_data")) == NULL ||
                                (s_base_attr = PyUnicode_InternFromString("base")) == NULL ||
                                (s_nbytes_attr = PyUnicode_InternFromString("nbytes")) == NULL))
        goto fail;
    long long n_tensors = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(objects); i++) {
        PyObject *obj = PyList_GET_ITEM(objects, i);
        if (!PyType_IsSubtype(Py_TYPE(obj), (PyTypeObject *)tensor))      /* type(), not __class__ */
            continue;
        PyObject *d = PyObject_GetAttr(obj, s_data_attr);
        if (d == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError))
                goto fail;
            PyErr_Clear();
            continue;
        }
        if (Py_TYPE(d) != (PyTypeObject *)ndarray) {
            Py_DECREF(d);
            continue;
        }
        n_tensors++;
        PyObject *b = PyObject_GetAttr(d, s_base_attr);      /* own = d; while isinstance(own.base, ndarray) */
        while (b != NULL && PyObject_TypeCheck(b, (PyTypeObject *)ndarray)) {
            Py_DECREF(d);
            d = b;
            b = PyObject_GetAttr(d, s_base_attr);
        }
        if (b == NULL) {
            Py_DECREF(d);
            goto fail;
        }
        PyObject *key = PyLong_FromVoidPtr(b == Py_None ? (void *)d : (void *)b);
        Py_DECREF(b);
        PyObject *size = key ? PyObject_GetAttr(d, s_nbytes_attr) : NULL;
        Py_DECREF(d);
        if (size == NULL) {
            Py_XDECREF(key);
            goto fail;
        }
        PyObject *old = PyDict_GetItemWithError(seen, key);
        int rc = 0;
        if (old == NULL && PyErr_Occurred())
            rc = -1;
        else if (old == NULL || PyLong_AsLongLong(old) < PyLong_AsLongLong(size))
            rc = PyDict_SetItem(seen, key, size);
        Py_DECREF(key);
        Py_DECREF(size);
        if (rc < 0)
            goto fail;
    }
    long long total = 0;
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(seen, &pos, &k, &v))
        total += PyLong_AsLongLong(v);
    Py_ssize_t n_buffers = PyDict_GET_SIZE(seen);
    Py_DECREF(seen);
    return Py_BuildValue("(LLn)", total, n_tensors, n_buffers);
fail:
    Py_DECREF(seen);
    return NULL;
}

static PyMethodDef module_methods[] = {
    {"perf_counter_ns", mod_perf_counter_ns, METH_NOARGS, "The records' clock (time.perf_counter_ns's)."},
    {"prefault", mod_prefault, METH_O, "prefault(n) -> blocks made: up to n spare record blocks touched now"},
    {"walk", mod_walk, METH_VARARGS, "walk(objects, Tensor, ndarray) -> (bytes, tensors, buffers): memory._walk's loop."},
    {"set_op_class", mod_set_op_class, METH_O,
     "set_op_class(OpDef): the class whose `name` and `kernel` slots are read directly"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_crecorded", "The dispatcher's recorded paths in C (see tensorlib/dispatch.py).", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__crecorded(void)
{
    if (PyType_Ready(&Recorded_T) < 0 || PyType_Ready(&RunRecorded_T) < 0 || PyType_Ready(&Records_T) < 0)
        return NULL;
#define INTERN(var, s) if ((var = PyUnicode_InternFromString(s)) == NULL) return NULL
    INTERN(s_forward, "forward");
    INTERN(s_backward, "backward");
    INTERN(s_name, "name");
    INTERN(s_buf, "buf");
    INTERN(s_kernel, "kernel");
    INTERN(s_append, "append");
#undef INTERN
    if ((minus_one = PyLong_FromLong(-1)) == NULL)
        return NULL;
    if ((sapi = PyCapsule_Import(STATE_API_CAPSULE, 0)) == NULL)      /* (tensorlib._cstate: required) */
        return NULL;
    PyObject *thread_mod = PyImport_ImportModule("_thread");
    if (thread_mod == NULL)
        return NULL;
    local_T = (PyTypeObject *)PyObject_GetAttrString(thread_mod, "_local");     /* (held for the process's life) */
    Py_DECREF(thread_mod);
    if (local_T == NULL)
        return NULL;
    if (!PyType_Check(local_T)) {
        PyErr_SetString(PyExc_TypeError, "_thread._local is not a type");
        return NULL;
    }
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL)
        return NULL;
    Py_INCREF(&Recorded_T);
    if (PyModule_AddObject(m, "Recorded", (PyObject *)&Recorded_T) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&RunRecorded_T);
    if (PyModule_AddObject(m, "RunRecorded", (PyObject *)&RunRecorded_T) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&Records_T);
    PyObject *api = PyCapsule_New(&records_api, RECORDS_API_CAPSULE, NULL);
    if (PyModule_AddObject(m, "Records", (PyObject *)&Records_T) < 0 || api == NULL ||
        PyModule_AddObject(m, "_records_api", api) < 0) {
        Py_XDECREF(api);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
