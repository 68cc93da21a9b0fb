/* What the executor's and the engine's C twins (tensorlib/_cexecute.c, tensorlib/autograd/_cengine.c) and the recorded
 * paths (tensorlib/_crecorded.c) read the Python objects they are configured with by: a class's object slot by its
 * member descriptor's offset, a flag's truth (a slot's or an attribute's), and _state.STATE's attributes; and the
 * end of a view's mark, which the executor and the engine share. */
#ifndef TENSORLIB_NATIVE_SLOTS_H
#define TENSORLIB_NATIVE_SLOTS_H

#include <Python.h>
#include <structmember.h>

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

/* the offset of object slot `name` of class tp (its __slots__ member descriptor), -1 with TypeError when it is not one */
static inline int slot_offset(PyTypeObject *tp, const char *name, Py_ssize_t *off)
{
    PyObject *d = tp->tp_dict ? PyDict_GetItemString(tp->tp_dict, name) : NULL;     /* borrowed */
    if (d == NULL || Py_TYPE(d) != &PyMemberDescr_Type) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a slot", tp->tp_name, name);
        return -1;
    }
    PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
    if (m->type != T_OBJECT_EX && m->type != T_OBJECT) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not an object slot", tp->tp_name, name);
        return -1;
    }
    *off = m->offset;
    return 0;
}

/* obj's attribute `name` (new reference; NULL with an error set): the object slot at offset `off` where obj is
 * exactly of class tp and the slot is set (a load, where a getattr costs ~160-250 instructions), else the getattr.
 * OpDef's per-op fields, read per record and per backward node (tensorlib/_crecorded.c, autograd/_cengine.c). */
static inline PyObject *slot_or_attr(PyObject *obj, PyTypeObject *tp, Py_ssize_t off, PyObject *name)
{
    if (Py_TYPE(obj) == tp) {
        PyObject *v = SLOT(obj, off);
        if (v != NULL)
            return Py_NewRef(v);
    }
    return PyObject_GetAttr(obj, name);
}

/* Python truth of v (a slot's value: NULL when unset counts false), -1 on error */
static inline int truth(PyObject *v)
{
    if (v == NULL || v == Py_None || v == Py_False)
        return 0;
    return v == Py_True ? 1 : PyObject_IsTrue(v);
}

/* truth of attribute `name` of obj (an instance's or its class's), -1 on error */
static inline int attr_truth(PyObject *obj, PyObject *name)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    int r = truth(v);
    Py_DECREF(v);
    return r;
}

/* _graph.mark_view's work once t's array is known to view src's (its NumPy base is src's array or that array's base):
 * t._base = src._base or src, and src's _multi_view passed on (s_base, s_multi_view: those names, interned). The C
 * executor's and the engine's view marks (tensorlib/_cexecute.c, tensorlib/autograd/_cengine.c) end alike here.
 * 0, or -1 on error. */
static inline int set_view_base(PyObject *t, PyObject *src, PyObject *s_base, PyObject *s_multi_view)
{
    PyObject *b = PyObject_GetAttr(src, s_base);
    if (b == NULL)
        return -1;
    int rc = PyObject_SetAttr(t, s_base, b != Py_None ? b : src);
    Py_DECREF(b);
    if (rc < 0)
        return -1;
    int mv = attr_truth(src, s_multi_view);
    return mv <= 0 ? mv : PyObject_SetAttr(t, s_multi_view, Py_True);
}

/* _state.STATE (a threading.local that lives as long as the process) by the calling thread's attribute dict: what
 * getattr on STATE reads once threading.local has found that dict, which is most of its cost (about 360
 * instructions a call on CPython 3.11): its grad mode (the phase and seq, which the engine writes per node, are
 * tensorlib._cstate's, through _state_api.h). The attributes read here are plain class defaults (no descriptors:
 * phase and seq are, and are not read here), so the dict alone holds what a thread has set. Cached per thread,
 * borrowed: the dict lives as long as its thread, and only its thread reads this cache. NULL with an error set. */
/* (thread-locals of the initial-exec model, here and in the modules: an access is a load off the thread pointer,
 * not a __tls_get_addr call; a few bytes of the static TLS that glibc keeps for dlopen'ed modules) */
#define TLS_IE __attribute__((tls_model("initial-exec")))
static __thread PyObject *state_cache_obj TLS_IE, *state_cache_dict TLS_IE;

static inline PyObject *state_dict(PyObject *state)
{
    if (state_cache_obj == state)
        return state_cache_dict;
    PyObject *d = PyObject_GetAttrString(state, "__dict__");
    if (d == NULL)
        return NULL;
    Py_DECREF(d);       /* (held by the thread-local object for the thread's life) */
    if (!PyDict_Check(d)) {
        PyErr_SetString(PyExc_TypeError, "STATE's __dict__ is not a dict");
        return NULL;
    }
    state_cache_obj = state, state_cache_dict = d;
    return d;
}

/* STATE.name for this thread (new reference): its value in the thread's dict, else the class default */
static inline PyObject *state_get(PyObject *state, PyObject *name)
{
    PyObject *d = state_dict(state);
    if (d == NULL)
        return NULL;
    PyObject *v = PyDict_GetItemWithError(d, name);
    if (v != NULL)
        return Py_NewRef(v);
    return PyErr_Occurred() ? NULL : PyObject_GetAttr(state, name);
}

#endif
