/* tensorlib._cstate: _state.STATE's phase and seq kept in C, per thread, and the forward sequence numbers' counter
 * (see tensorlib/_native.py).
 *
 * The backward engine sets a thread's phase and sequence number around every node's work and each op recorded in it
 * reads both (_crecorded.c's phase_seq): as attributes of the threading.local, each such write cost about 190 machine
 * instructions (a dict insert) and each read 130, several times a node. Here they are two fields of a small object per
 * thread, ThreadPhase (_state_api.h), found by a thread-local pointer: a read or write is a few instructions for C,
 * and Python reads and writes STATE.phase and STATE.seq as before, through the two data descriptors this module
 * makes (`phase`, `seq`), which tensorlib/_state.py installs on STATE's class when it loads this module.
 *
 * A thread's ThreadPhase is kept in the thread state's dict (PyThreadState_GetDict, cleared when the thread ends, so
 * its seq goes with it); the thread-local pointer only finds it again, and forgets it when the object dies on its own
 * thread. phase takes "forward" or "backward" only; seq an int. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "_state_api.h"

#define TLS_IE __attribute__((tls_model("initial-exec")))
static __thread ThreadPhase *tp_cache TLS_IE;

static PyObject *s_forward, *s_backward, *minus_one, *tp_key;

static void ThreadPhase_dealloc(ThreadPhase *t)
{
    if (tp_cache == t)          /* (dying on its own thread, as a thread's end clears its dict) */
        tp_cache = NULL;
    Py_XDECREF(t->seq);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyTypeObject ThreadPhase_T = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tensorlib._cstate.ThreadPhase",
    .tp_basicsize = sizeof(ThreadPhase),
    .tp_dealloc = (destructor)ThreadPhase_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A thread's phase and sequence number (STATE.phase, STATE.seq).",
};

static ThreadPhase *current_slow(void)
{
    PyObject *d = PyThreadState_GetDict();      /* borrowed */
    if (d == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tensorlib._cstate: the thread has no state dict");
        return NULL;
    }
    PyObject *t = PyDict_GetItemWithError(d, tp_key);      /* borrowed */
    if (t == NULL) {
        if (PyErr_Occurred())
            return NULL;
        ThreadPhase *n = PyObject_New(ThreadPhase, &ThreadPhase_T);
        if (n == NULL)
            return NULL;
        n->backward = 0;
        n->seq = Py_NewRef(minus_one);
        int rc = PyDict_SetItem(d, tp_key, (PyObject *)n);
        Py_DECREF(n);
        if (rc < 0)
            return NULL;
        t = (PyObject *)n;
    } else if (Py_TYPE(t) != &ThreadPhase_T) {
        PyErr_SetString(PyExc_TypeError, "tensorlib._cstate: the thread state's entry is not a ThreadPhase");
        return NULL;
    }
    tp_cache = (ThreadPhase *)t;
    return tp_cache;
}

static ThreadPhase *current(void)
{
    ThreadPhase *t = tp_cache;
    return t != NULL ? t : current_slow();
}

/* The descriptors: STATE.phase (which 0) and STATE.seq (which 1) of the calling thread */
typedef struct {
    PyObject_HEAD
    int which;
} Field;

static PyObject *Field_get(Field *f, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None)      /* (read on the class: the descriptor) */
        return Py_NewRef((PyObject *)f);
    ThreadPhase *t = current();
    if (t == NULL)
        return NULL;
    if (f->which == 0)
        return Py_NewRef(t->backward ? s_backward : s_forward);
    return Py_NewRef(t->seq);
}

static int Field_set(Field *f, PyObject *obj, PyObject *v)
{
    ThreadPhase *t = current();
    if (t == NULL)
        return -1;
    if (f->which == 0) {
        int fwd = 0, bwd = 0;
        if (v != NULL && PyUnicode_Check(v)) {
            fwd = PyUnicode_Compare(v, s_forward) == 0;
            bwd = !fwd && PyUnicode_Compare(v, s_backward) == 0;
        }
        if (PyErr_Occurred())
            return -1;
        if (v != NULL && !fwd && !bwd) {
            PyErr_Format(PyExc_ValueError, "STATE.phase is 'forward' or 'backward', not %.100R", v);
            return -1;
        }
        t->backward = bwd;      /* (deleted: back to the default, "forward") */
        return 0;
    }
    if (v != NULL && !PyLong_Check(v)) {
        PyErr_Format(PyExc_TypeError, "STATE.seq is an int, not %.100s", Py_TYPE(v)->tp_name);
        return -1;
    }
    PyObject *n = v != NULL ? PyNumber_Index(v) : Py_NewRef(minus_one);     /* (an int subclass: its int value) */
    if (n == NULL)
        return -1;
    Py_SETREF(t->seq, n);
    return 0;
}

static PyObject *Field_repr(Field *f)
{
    return PyUnicode_FromFormat("<tensorlib._cstate field %s>", f->which == 0 ? "phase" : "seq");
}

static PyTypeObject Field_T = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tensorlib._cstate.Field",
    .tp_basicsize = sizeof(Field),
    .tp_dealloc = (destructor)PyObject_Del,
    .tp_repr = (reprfunc)Field_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A data descriptor for STATE.phase or STATE.seq: the calling thread's value, kept in C.",
    .tp_descr_get = (descrgetfunc)Field_get,
    .tp_descr_set = (descrsetfunc)Field_set,
};

/* Counter(): the forward sequence numbers, as itertools.count() gives them (next(), __next__), kept as a C integer */
static PyObject *SeqCounter_next(SeqCounter *c)
{
    return PyLong_FromLongLong(c->next++);
}

static PyObject *SeqCounter_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    if (PyTuple_GET_SIZE(args) || (kw != NULL && PyDict_GET_SIZE(kw))) {
        PyErr_SetString(PyExc_TypeError, "Counter() takes no arguments");
        return NULL;
    }
    SeqCounter *c = (SeqCounter *)tp->tp_alloc(tp, 0);
    if (c != NULL)
        c->next = 0;
    return (PyObject *)c;
}

static PyObject *SeqCounter_repr(SeqCounter *c)
{
    return PyUnicode_FromFormat("tensorlib._cstate.Counter(next=%lld)", c->next);
}

static PyTypeObject SeqCounter_T = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tensorlib._cstate.Counter",
    .tp_basicsize = sizeof(SeqCounter),
    .tp_dealloc = (destructor)PyObject_Del,
    .tp_repr = (reprfunc)SeqCounter_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Counter(): the forward sequence numbers from 0, as itertools.count() gives them.",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)SeqCounter_next,
    .tp_new = SeqCounter_new,
};

static StateAPI state_api;

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "tensorlib._cstate",
    "_state.STATE's phase and seq per thread in C (the descriptors `phase` and `seq`), the forward sequence numbers"
    " (Counter), and the capsule _state_api.",
    -1, NULL,
};

PyMODINIT_FUNC PyInit__cstate(void)
{
    if (PyType_Ready(&ThreadPhase_T) < 0 || PyType_Ready(&Field_T) < 0 || PyType_Ready(&SeqCounter_T) < 0)
        return NULL;
    if ((s_forward = PyUnicode_InternFromString("forward")) == NULL ||
        (s_backward = PyUnicode_InternFromString("backward")) == NULL ||
        (minus_one = PyLong_FromLong(-1)) == NULL ||
        (tp_key = PyUnicode_InternFromString("tensorlib._cstate.ThreadPhase")) == NULL)
        return NULL;
    state_api.current = current;
    state_api.forward = s_forward;
    state_api.backward = s_backward;
    state_api.counter_type = &SeqCounter_T;
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL)
        return NULL;
    for (int which = 0; which < 2; which++) {
        Field *f = PyObject_New(Field, &Field_T);
        if (f == NULL || (f->which = which, PyModule_AddObject(m, which ? "seq" : "phase", (PyObject *)f)) < 0) {
            Py_XDECREF(f);
            Py_DECREF(m);
            return NULL;
        }
    }
    Py_INCREF(&SeqCounter_T);
    if (PyModule_AddObject(m, "Counter", (PyObject *)&SeqCounter_T) < 0) {
        Py_DECREF(&SeqCounter_T);
        Py_DECREF(m);
        return NULL;
    }
    PyObject *api = PyCapsule_New(&state_api, STATE_API_CAPSULE, NULL);
    if (api == NULL || PyModule_AddObject(m, "_state_api", api) < 0) {
        Py_XDECREF(api);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
