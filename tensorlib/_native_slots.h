/* What the executor's and the engine's C twins (tensorlib/_cexecute.c, tensorlib/autograd/_cengine.c) read the Python
 * objects they are configured with by: a class's object slot by its member descriptor's offset, and a flag's truth
 * (a slot's or an attribute's). */
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

#endif
