/* tensorlib._cexecute: the executor's common case in C (Linux), for every op that is not observed.
 *
 * tensorlib/_execute.py's `execute` stays the reference and the fallback (TENSORLIB_NATIVE=0, or a build without
 * a compiler). execute(op, args, attrs, seq) here takes the commonest case of it -- one, two or three positional
 * arguments, the tensors' arrays NumPy arrays, no promotion to do, no special executor; or no argument at all (a
 * factory) -- and does what the Python function does for it, in the same order: unwrap, kernel, then the autograd
 * node (record_node: the fields _graph.make_node1/2/3 set, in their order; those functions themselves for the cases
 * record_node leaves to them) or the wrapped result; a 0-d result NumPy gives as a scalar (a full reduction, a mean
 * loss) is recorded as the Python path records it (make_node3, or for one or two inputs the general make_node), or
 * wrapped as its 0-d array. Everything else, before anything has run, is handed to the Python function unchanged,
 * so the cases it decides (devices, CUDA, sparse operands, promotion, three or more arguments, errors) are decided
 * in one place. A kernel's ValueError is handed over too: the Python function runs the kernel again and raises
 * torch's error for it (shape_error); a kernel on arrays is pure (a factory's error, which shape_error leaves as it
 * is, propagates from here: its kernel may draw random numbers). In-place ops outside autograd take
 * execute_inplace_op's fast path here too (`inplace`, below).
 *
 * configure() and configure_graph() give it the Python objects it reads (tensorlib/_execute.py, at import).
 * tests/tensorlib/test_native_execute.py runs every op's sample call through this and the Python executor and
 * compares what they leave behind; change the two together.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include "_native_slots.h"

static PyTypeObject *Tensor_T, *ndarray_T;
static PyTypeObject *op_T;      /* the op type whose slot offsets are below (OpDef), found on first use */
static PyObject *numpy_mod, *state, *grad_off, *seq_counter, *py_execute, *make_node1, *make_node2, *make_node3, *wrap_result,
    *mark_view, *inplace_special, *list_special;
static PyObject *s_requires_grad, *s_grad_enabled, *s_dtype, *s_kind, *s_f;
/* the graph layer's (tensorlib/_graph.py), for the nodes recorded here */
static PyTypeObject *Node_T;
static PyObject *graph_globals, *no_edge, *leaf_edge, *grad_dtypes, *np_generic, *np_asarray, *np_int64;
static PyObject *s_slow_any, *s_base, *s_rebase_gen, *s_detached, *s_grad_fn, *s_output_nr, *s_acc_edge,
    *s_inference, *s_version, *s_shape, *s_save, *s_output_nr_zero, *int_one, *s_np_base, *s_multi_view, *s_make_node;
static Py_ssize_t off_n_op, off_n_seq, off_n_edges, off_n_inputs, off_n_versions, off_n_out_data, off_n_out_refs,
    off_n_attrs, off_n_in_meta, off_n_out_meta, off_save, off_nondiff;

/* slot offsets, read from the classes' member descriptors at configure() */
static Py_ssize_t off_data;                                           /* Tensor._data */
static Py_ssize_t off_special, off_kernel, off_promote, off_view, off_differentiable;   /* OpDef's */

static PyObject *mod_configure(PyObject *self, PyObject *args)
{
    PyObject *tensor, *ndarray;
    if (py_execute != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tensorlib._cexecute is configured once");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!O!OOO!OOOOOOOOO", &PyType_Type, &tensor, &PyType_Type, &ndarray, &numpy_mod,
                          &state, &PyList_Type, &grad_off, &seq_counter, &py_execute, &make_node1, &make_node2,
                          &make_node3, &wrap_result, &mark_view, &inplace_special, &list_special))
        return NULL;
    Tensor_T = (PyTypeObject *)tensor;
    ndarray_T = (PyTypeObject *)ndarray;
    if (slot_offset(Tensor_T, "_data", &off_data) < 0) {
        py_execute = NULL;
        return NULL;
    }
    PyObject *keep[] = {tensor, ndarray, numpy_mod, state, grad_off, seq_counter, py_execute, make_node1,
                        make_node2, make_node3, wrap_result, mark_view, inplace_special, list_special};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        Py_INCREF(keep[i]);     /* held for the process's life, as the module's globals hold them */
    Py_RETURN_NONE;
}

static PyObject *mod_configure_graph(PyObject *self, PyObject *args)
{
    PyObject *node, *globals;
    if (Node_T != NULL || numpy_mod == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tensorlib._cexecute's graph is configured once, after configure()");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!O!O!OO!", &PyType_Type, &node, &PyDict_Type, &globals, &PyTuple_Type, &no_edge,
                          &leaf_edge, &PySet_Type, &grad_dtypes))
        return NULL;
    PyTypeObject *tp = (PyTypeObject *)node;
    if (slot_offset(tp, "op", &off_n_op) < 0 || slot_offset(tp, "seq", &off_n_seq) < 0 ||
        slot_offset(tp, "edges", &off_n_edges) < 0 || slot_offset(tp, "inputs", &off_n_inputs) < 0 ||
        slot_offset(tp, "versions", &off_n_versions) < 0 || slot_offset(tp, "out_data", &off_n_out_data) < 0 ||
        slot_offset(tp, "out_refs", &off_n_out_refs) < 0 || slot_offset(tp, "attrs", &off_n_attrs) < 0 ||
        slot_offset(tp, "in_meta", &off_n_in_meta) < 0 || slot_offset(tp, "_out_meta", &off_n_out_meta) < 0)
        return NULL;
    if ((np_generic = PyObject_GetAttrString(numpy_mod, "generic")) == NULL ||
        (np_asarray = PyObject_GetAttrString(numpy_mod, "asarray")) == NULL ||
        (np_int64 = PyObject_CallMethod(numpy_mod, "dtype", "s", "int64")) == NULL)
        return NULL;
    graph_globals = globals;
    PyObject *keep[] = {node, globals, no_edge, leaf_edge, grad_dtypes};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        Py_INCREF(keep[i]);
    Node_T = tp;
    Py_RETURN_NONE;
}

/* 1 when `tp` is the op type whose slots the offsets describe (learning them the first time an op type has all
 * of them: OpDef), else 0 (the op goes to the Python path) */
static int op_type(PyTypeObject *tp)
{
    if (tp == op_T)
        return 1;
    if (op_T != NULL)
        return 0;
    Py_ssize_t o[7];
    if (slot_offset(tp, "special", &o[0]) < 0 || slot_offset(tp, "kernel", &o[1]) < 0 ||
        slot_offset(tp, "promote", &o[2]) < 0 || slot_offset(tp, "view", &o[3]) < 0 ||
        slot_offset(tp, "differentiable", &o[4]) < 0 || slot_offset(tp, "save", &o[5]) < 0 ||
        slot_offset(tp, "nondiff_outputs", &o[6]) < 0) {
        PyErr_Clear();
        return 0;
    }
    off_special = o[0], off_kernel = o[1], off_promote = o[2], off_view = o[3], off_differentiable = o[4];
    off_save = o[5], off_nondiff = o[6];
    Py_INCREF(tp);
    op_T = tp;
    return 1;
}

/* truth of a tensor's _requires_grad (an instance or class attribute), -1 on error */
static inline int requires_grad(PyObject *t)
{
    return attr_truth(t, s_requires_grad);
}

/* the grad mode test of execute: `not grad_off or STATE.grad_enabled` */
static inline int grad_mode(void)
{
    if (PyList_GET_SIZE(grad_off) == 0)
        return 1;
    PyObject *v = state_get(state, s_grad_enabled);
    if (v == NULL)
        return -1;
    int r = PyObject_IsTrue(v);
    Py_DECREF(v);
    return r;
}

/* 1 when the operands of a binary op need no cast (_promote leaves them as they are): a floating array with a
 * Python float or int, or an int64 array (NumPy's own int64 dtype) with a Python int in int64's range; 0 for the
 * other cases (the Python path), -1 on error */
static int number_operand_kept(PyObject *x, PyObject *num)
{
    int is_float = PyFloat_CheckExact(num);
    if (!is_float && !PyLong_CheckExact(num))
        return 0;
    PyObject *dt = PyObject_GetAttr(x, s_dtype);
    if (dt == NULL)
        return -1;
    Py_DECREF(dt);      /* (a dtype lives as long as its array) */
    if (!is_float && dt == np_int64) {
        int overflow;
        (void)PyLong_AsLongLongAndOverflow(num, &overflow);
        return overflow == 0;
    }
    PyObject *k = PyObject_GetAttr(dt, s_kind);
    if (k == NULL)
        return -1;
    int r = PyUnicode_Compare(k, s_f) == 0;
    Py_DECREF(k);
    return r;
}

/* `x.dtype is y.dtype`, -1 on error */
static int same_dtype(PyObject *x, PyObject *y)
{
    PyObject *a = PyObject_GetAttr(x, s_dtype);
    if (a == NULL)
        return -1;
    PyObject *b = PyObject_GetAttr(y, s_dtype);
    Py_DECREF(a);       /* a dtype lives as long as its array */
    if (b == NULL)
        return -1;
    Py_DECREF(b);
    return a == b;
}

/* t's NumPy array (borrowed) when t is a tensor over one, else NULL (no error set) */
static inline PyObject *np_data(PyObject *t)
{
    if (!PyObject_TypeCheck(t, Tensor_T))
        return NULL;
    PyObject *x = SLOT(t, off_data);
    return x != NULL && Py_TYPE(x) == ndarray_T ? x : NULL;
}

static inline PyObject *fallback(PyObject *const *args)
{
    return PyObject_Vectorcall(py_execute, args, 4, NULL);
}

/* the sequence number a node records: seq, or next(seq_counter) when seq < 0 */
static PyObject *node_seq(PyObject *seq)
{
    long long s = PyLong_AsLongLong(seq);
    if (s == -1 && PyErr_Occurred())
        return NULL;
    if (s >= 0) {
        Py_INCREF(seq);
        return seq;
    }
    PyObject *n = PyIter_Next(seq_counter);
    if (n == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_RuntimeError, "the sequence counter is exhausted");
    return n;
}

/* _graph.mark_view(t, src) (t a new tensor over a NumPy array): its usual case here -- t's array has no base, or its
 * base is src's array or that array's base: t._base = src._base or src, and src's _multi_view passed on --, the rest
 * (memory that may overlap otherwise, other arrays) by the Python function. 0, or -1 on error. */
static int view_mark(PyObject *t, PyObject *src)
{
    PyObject *d = np_data(t), *s = np_data(src);
    int usual = 0;
    if (d != NULL && s != NULL) {
        PyObject *base = PyObject_GetAttr(d, s_np_base);
        if (base == NULL)
            return -1;
        Py_DECREF(base);        /* (compared by address: d holds it) */
        if (base == Py_None)
            return 0;
        usual = base == s;
        if (!usual) {
            PyObject *sb = PyObject_GetAttr(s, s_np_base);
            if (sb == NULL)
                return -1;
            Py_DECREF(sb);
            usual = base == sb;
        }
    }
    if (!usual) {
        PyObject *r = PyObject_CallFunctionObjArgs(mark_view, t, src, NULL);
        Py_XDECREF(r);
        return r == NULL ? -1 : 0;
    }
    return set_view_base(t, src, s_base, s_multi_view);
}

/* the kernel's result outside autograd, as the end of execute: an array or a NumPy scalar wrapped inline (marked a
 * view of the first argument for a view op, as _wrap_result marks it), anything else through _wrap_result. Steals
 * `out`. */
static PyObject *wrap(PyObject *op, PyObject *targs, PyObject *a, PyObject *out)
{
    if (Py_TYPE(out) != ndarray_T && np_generic != NULL && PyObject_TypeCheck(out, (PyTypeObject *)np_generic)) {
        /* a NumPy scalar (a full reduction, an int index of a 1-d array): the 0-d array as_array makes of it */
        PyObject *arr = PyObject_CallOneArg(np_asarray, out);
        Py_DECREF(out);
        if (arr == NULL)
            return NULL;
        out = arr;
    }
    if (Py_TYPE(out) != ndarray_T) {
        PyObject *r = PyObject_CallFunctionObjArgs(wrap_result, op, targs, out, NULL);
        Py_DECREF(out);
        return r;
    }
    PyObject *t = Tensor_T->tp_alloc(Tensor_T, 0);
    if (t == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    SLOT(t, off_data) = out;    /* the new reference moves into the slot */
    int v = truth(SLOT(op, off_view));
    if (v < 0) {
        Py_DECREF(t);
        return NULL;
    }
    if (v && view_mark(t, a) < 0) {
        Py_DECREF(t);
        return NULL;
    }
    return t;
}

/* ---- the node, as _graph.make_node1/make_node2 record it ---- */

static inline int set_slot(PyObject *obj, Py_ssize_t off, PyObject *v)     /* steals v */
{
    if (v == NULL)
        return -1;
    PyObject *old = SLOT(obj, off);
    SLOT(obj, off) = v;
    Py_XDECREF(old);
    return 0;
}

static inline PyObject *new_ref(PyObject *v)
{
    Py_INCREF(v);
    return v;
}

/* An input's edge (new reference) as make_node2 computes it -- the tensor's grad_fn and output number, or its
 * accumulator's edge (made on first use by _graph._leaf_edge) -- and, with `want_version`, its saved version.
 * Returns 1 done, 0 when the Python make_node must take the node (a view whose base an in-place op rewrote: it
 * recomputes the view's grad_fn first; an inference tensor to save: it raises), -1 on error. */
static int input_edge(PyObject *a, PyObject **edge, int want_version, PyObject **version)
{
    int rg = requires_grad(a);
    if (rg < 0)
        return -1;
    PyObject *base = PyObject_GetAttr(a, s_base);
    if (base == NULL)
        return -1;
    int ret = -1;
    if (rg) {
        if (base != Py_None) {
            PyObject *g1 = PyObject_GetAttr(base, s_rebase_gen), *g2 = g1 ? PyObject_GetAttr(a, s_rebase_gen) : NULL;
            int ne = g2 ? PyObject_RichCompareBool(g1, g2, Py_NE) : -1;
            Py_XDECREF(g1);
            Py_XDECREF(g2);
            if (ne < 0)
                goto done;
            if (ne) {
                PyObject *det = PyObject_GetAttr(a, s_detached);
                int d = det ? PyObject_IsTrue(det) : -1;
                Py_XDECREF(det);
                if (d <= 0) {
                    ret = d;
                    goto done;
                }
            }
        }
        PyObject *fn = PyObject_GetAttr(a, s_grad_fn);
        if (fn == NULL)
            goto done;
        if (fn != Py_None) {
            PyObject *nr = PyObject_GetAttr(a, s_output_nr);
            if (nr == NULL) {
                Py_DECREF(fn);
                goto done;
            }
            *edge = PyTuple_Pack(2, fn, nr);
            Py_DECREF(fn);
            Py_DECREF(nr);
        } else {
            Py_DECREF(fn);
            PyObject *e = PyObject_GetAttr(a, s_acc_edge);
            int has = e ? PyObject_IsTrue(e) : -1;
            if (has < 0) {
                Py_XDECREF(e);
                goto done;
            }
            if (!has) {
                Py_DECREF(e);
                e = PyObject_CallOneArg(leaf_edge, a);
            }
            *edge = e;
        }
        if (*edge == NULL)
            goto done;
    } else
        *edge = new_ref(no_edge);
    if (want_version) {
        PyObject *inf = PyObject_GetAttr(a, s_inference);
        int i = inf ? PyObject_IsTrue(inf) : -1;
        Py_XDECREF(inf);
        if (i != 0) {
            Py_CLEAR(*edge);
            ret = i < 0 ? -1 : 0;
            goto done;
        }
        *version = PyObject_GetAttr(base != Py_None ? base : a, s_version);
        if (*version == NULL) {
            Py_CLEAR(*edge);
            goto done;
        }
    }
    ret = 1;
done:
    Py_DECREF(base);
    return ret;
}

/* (items[0], ..., items[n-1]), new reference; a NULL item as None */
static PyObject *tuple_of(PyObject **items, Py_ssize_t n)
{
    PyObject *t = PyTuple_New(n);
    if (t == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        PyTuple_SET_ITEM(t, i, new_ref(items[i] ? items[i] : Py_None));
    return t;
}

/* [items[0], ..., items[n-1]], new reference */
static PyObject *list_of(PyObject **items, Py_ssize_t n)
{
    PyObject *l = PyList_New(n);
    if (l == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        PyList_SET_ITEM(l, i, new_ref(items[i] ? items[i] : Py_None));
    return l;
}

/* (array.shape, array.dtype), new reference */
static PyObject *meta_of(PyObject *d)
{
    PyObject *shape = PyObject_GetAttr(d, s_shape);
    if (shape == NULL)
        return NULL;
    PyObject *dt = PyObject_GetAttr(d, s_dtype);
    if (dt == NULL) {
        Py_DECREF(shape);
        return NULL;
    }
    PyObject *m = PyTuple_Pack(2, shape, dt);
    Py_DECREF(shape);
    Py_DECREF(dt);
    return m;
}

/* 1 when `save` (OpDef.save: "", "i", "o", "io") names `c`, 0 when not, -1 when it is not a str */
static int saves(PyObject *save, Py_UCS4 c)
{
    if (!PyUnicode_CheckExact(save))
        return -1;
    return PyUnicode_FindChar(save, c, 0, PyUnicode_GET_LENGTH(save), 1) >= 0;
}

/* The output tensor of `op` on inputs in[0..n) attached to a new node, recorded as _graph.make_node1 (n 1: a
 * tensor), make_node2 (n 2: a tensor, then a tensor or a number) or make_node3 (n 3: two tensors, then a tensor
 * or None) records it, field for field; with `general`, as the general _graph.make_node records it (its edges and
 * input metadata lists, the output's number set, its full output metadata): a 0-d result of one or two inputs, and
 * cat's and stack's n tensors (execute_list). *done is
 * set to 0 (and NULL returned, no exception) when the Python function must take the case: an output that is not
 * one NumPy array, anomaly mode or saved-tensor hooks possibly on (_graph._slow_any), and input_edge's cases. */
static void release_inputs(PyObject **edges, Py_ssize_t n, PyObject **small)
{
    for (Py_ssize_t i = 0; i < 3 * n; i++)      /* (edges, metas and versions: 3n entries, some NULL) */
        Py_XDECREF(edges[i]);
    if (edges != small)
        PyMem_Free(edges);
}

static PyObject *record_node(PyObject *op, PyObject **in, Py_ssize_t n, PyObject *attrs, PyObject *out,
                             PyObject *seq, int general, int *done)
{
    *done = 0;
    if (Py_TYPE(out) != ndarray_T)
        return NULL;
    PyObject *slow = PyDict_GetItemWithError(graph_globals, s_slow_any);     /* borrowed */
    if (slow == NULL)
        return PyErr_Occurred() ? (*done = 1, NULL) : NULL;
    int sl = truth(slow);
    if (sl != 0)
        return sl < 0 ? (*done = 1, NULL) : NULL;
    PyObject *save = SLOT(op, off_save);
    int save_i = 0, save_o = 0;
    if (save == NULL)
        return NULL;
    if (save != Py_None) {
        save_i = saves(save, 'i');
        save_o = save_i < 0 ? -1 : saves(save, 'o');
        if (save_o < 0)
            return NULL;
    }
    /* each input's edge, metadata and saved version: on the stack for up to three inputs (nearly every op) */
    PyObject *small[9] = {NULL}, **edges = small;
    if (n > 3 && (edges = PyMem_Calloc(3 * (size_t)n, sizeof(PyObject *))) == NULL) {
        *done = 1;
        return PyErr_NoMemory();
    }
    PyObject **metas = edges + n, **versions = edges + 2 * n;
    PyObject *node = NULL, *t = NULL, *dt = NULL, *r, *vs = NULL;
    *done = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *a = in[i];
        if (PyObject_TypeCheck(a, Tensor_T)) {
            PyObject *d = SLOT(a, off_data);
            if (d == NULL) {
                *done = 0;
                goto fail;
            }
            if ((metas[i] = meta_of(d)) == NULL)
                goto fail;
            int k = input_edge(a, &edges[i], save_i, &versions[i]);
            if (k <= 0) {
                *done = k == 0 ? 0 : 1;
                goto fail;
            }
        } else {
            metas[i] = new_ref(Py_None);
            edges[i] = new_ref(no_edge);
            if (save_i)
                versions[i] = new_ref(Py_None);
        }
    }
    node = Node_T->tp_alloc(Node_T, 0);
    if (node == NULL)
        goto fail;
    if (set_slot(node, off_n_op, new_ref(op)) < 0 || set_slot(node, off_n_seq, new_ref(seq)) < 0 ||
        set_slot(node, off_n_attrs, new_ref(attrs)) < 0)
        goto fail;
    if (general) {      /* make_node's build_node keeps its lists */
        if (set_slot(node, off_n_edges, list_of(edges, n)) < 0 || set_slot(node, off_n_in_meta, list_of(metas, n)) < 0)
            goto fail;
    } else if (set_slot(node, off_n_edges, tuple_of(edges, n)) < 0 ||
               set_slot(node, off_n_in_meta, tuple_of(metas, n)) < 0)
        goto fail;
    t = Tensor_T->tp_alloc(Tensor_T, 0);
    if (t == NULL)
        goto fail;
    SLOT(t, off_data) = new_ref(out);
    dt = PyObject_GetAttr(out, s_dtype);
    if (dt == NULL)
        goto fail;
    int grad = PySet_Contains(grad_dtypes, dt);
    if (grad == 0) {
        PyObject *kind = PyObject_GetAttr(dt, s_kind);
        if (kind == NULL)
            goto fail;
        grad = PyUnicode_Check(kind) && PyUnicode_GET_LENGTH(kind) == 1 &&
               (PyUnicode_READ_CHAR(kind, 0) == 'f' || PyUnicode_READ_CHAR(kind, 0) == 'c');
        Py_DECREF(kind);
    }
    if (grad < 0)
        goto fail;
    if (grad && (PyObject_SetAttr(t, s_grad_fn, node) < 0 ||
                 (general && PyObject_SetAttr(t, s_output_nr, s_output_nr_zero) < 0) ||
                 PyObject_SetAttr(t, s_requires_grad, Py_True) < 0))
        goto fail;
    int promote = n == 2 && !general ? truth(SLOT(op, off_promote)) : 0;
    if (promote < 0)
        goto fail;
    if (promote)
        r = new_ref(dt);
    else {
        PyObject *shape = PyObject_GetAttr(out, s_shape);
        PyObject *m = shape ? PyTuple_Pack(2, shape, dt) : NULL;
        Py_XDECREF(shape);
        r = m ? PyTuple_Pack(1, m) : NULL;
        Py_XDECREF(m);
    }
    if (set_slot(node, off_n_out_meta, r) < 0)
        goto fail;
    if (save_i) {
        vs = PyList_New(n);
        if (vs == NULL || set_slot(node, off_n_inputs, tuple_of(in, n)) < 0)
            goto fail_vs;
        for (Py_ssize_t i = 0; i < n; i++)
            PyList_SET_ITEM(vs, i, new_ref(versions[i]));
        int rc = set_slot(node, off_n_versions, vs);
        vs = NULL;
        if (rc < 0)
            goto fail;
    } else if (set_slot(node, off_n_inputs, new_ref(Py_None)) < 0 ||
               set_slot(node, off_n_versions, new_ref(Py_None)) < 0)
        goto fail;
    if (save_o) {
        PyObject *ref = PyWeakref_NewRef(t, NULL);
        if (ref == NULL)
            goto fail;
        if (set_slot(node, off_n_out_data, PyTuple_Pack(1, out)) < 0 ||
            set_slot(node, off_n_out_refs, PyTuple_Pack(1, ref)) < 0) {
            Py_DECREF(ref);
            goto fail;
        }
        Py_DECREF(ref);
    } else if (set_slot(node, off_n_out_data, new_ref(Py_None)) < 0 ||
               set_slot(node, off_n_out_refs, new_ref(Py_None)) < 0)
        goto fail;
    int v = truth(SLOT(op, off_view));
    if (v < 0)
        goto fail;
    if (v) {
        if (view_mark(t, in[0]) < 0)
            goto fail;
        PyObject *b = PyObject_GetAttr(t, s_base);
        if (b == NULL)
            goto fail;
        if (b != Py_None) {
            PyObject *g = PyObject_GetAttr(b, s_rebase_gen);
            int gt = g ? PyObject_IsTrue(g) : -1;
            if (gt > 0)
                gt = PyObject_SetAttr(t, s_rebase_gen, g) < 0 ? -1 : 1;
            Py_XDECREF(g);
            if (gt < 0) {
                Py_DECREF(b);
                goto fail;
            }
        }
        Py_DECREF(b);
    }
    Py_DECREF(dt);
    Py_DECREF(node);
    release_inputs(edges, n, small);
    return t;
fail_vs:
    Py_XDECREF(vs);
fail:
    Py_XDECREF(dt);
    Py_XDECREF(t);
    Py_XDECREF(node);
    release_inputs(edges, n, small);
    return NULL;
}

/* after the kernel: the node (rg: an input requires grad) or the wrapped result. Steals `out`. */
static PyObject *finish(PyObject *op, PyObject *targs, PyObject *attrs, PyObject *seq, PyObject *out, int rg,
                        Py_ssize_t n)
{
    if (rg) {
        int g = grad_mode();
        if (g < 0) {
            Py_DECREF(out);
            return NULL;
        }
        int d = g ? truth(SLOT(op, off_differentiable)) : 0;
        if (d < 0) {
            Py_DECREF(out);
            return NULL;
        }
        if (d) {
            PyObject *s = node_seq(seq);
            if (s == NULL) {
                Py_DECREF(out);
                return NULL;
            }
            PyObject *r;
            int done = 0;
            if (Node_T != NULL) {
                PyObject *in[3] = {PyTuple_GET_ITEM(targs, 0), n >= 2 ? PyTuple_GET_ITEM(targs, 1) : NULL,
                                   n == 3 ? PyTuple_GET_ITEM(targs, 2) : NULL};
                /* a 0-d result NumPy gives as a scalar (a full reduction, a mean loss): the 0-d array its tensor
                 * holds, recorded as the Python path records it -- make_node3 itself; for one or two inputs the
                 * general make_node (torch's output number set, an elementwise op's full output metadata),
                 * unless some output of the op never carries a gradient (make_node's rule for those) */
                int scalar = 0;
                PyObject *arr = NULL;
                if (Py_TYPE(out) != ndarray_T && PyObject_TypeCheck(out, (PyTypeObject *)np_generic)) {
                    PyObject *nd = SLOT(op, off_nondiff);
                    int some = n < 3 ? truth(nd) : 0;
                    if (some < 0) {
                        Py_DECREF(s);
                        Py_DECREF(out);
                        return NULL;
                    }
                    if (!some) {
                        arr = PyObject_CallOneArg(np_asarray, out);
                        if (arr == NULL) {
                            Py_DECREF(s);
                            Py_DECREF(out);
                            return NULL;
                        }
                        scalar = 1;
                    }
                }
                r = record_node(op, in, n, attrs, scalar ? arr : out, s, scalar && n < 3, &done);
                Py_XDECREF(arr);     /* (the Python functions below take the kernel's own result) */
                if (done) {
                    Py_DECREF(s);
                    Py_DECREF(out);
                    return r;
                }
            }
            if (n == 3) {
                PyObject *cargs[] = {op, PyTuple_GET_ITEM(targs, 0), PyTuple_GET_ITEM(targs, 1),
                                     PyTuple_GET_ITEM(targs, 2), attrs, out, s};
                r = PyObject_Vectorcall(make_node3, cargs, 7, NULL);
            } else if (n == 2) {
                PyObject *cargs[] = {op, PyTuple_GET_ITEM(targs, 0), PyTuple_GET_ITEM(targs, 1), attrs, out, s};
                r = PyObject_Vectorcall(make_node2, cargs, 6, NULL);
            } else {
                PyObject *cargs[] = {op, PyTuple_GET_ITEM(targs, 0), attrs, out, s};
                r = PyObject_Vectorcall(make_node1, cargs, 5, NULL);
            }
            Py_DECREF(s);
            Py_DECREF(out);
            return r;
        }
    }
    return wrap(op, targs, PyTuple_GET_ITEM(targs, 0), out);
}

/* kernel(*kargs[1..n], **attrs), the operands held through the call whatever the kernel does to the tensors that
 * hold them (kargs[0] is free for PY_VECTORCALL_ARGUMENTS_OFFSET) */
static PyObject *call_kernel(PyObject *kernel, PyObject *attrs, PyObject **kargs, Py_ssize_t n)
{
    for (Py_ssize_t i = 1; i <= n; i++)
        Py_INCREF(kargs[i]);
    PyObject *out = PyDict_GET_SIZE(attrs) ? PyObject_VectorcallDict(kernel, kargs + 1, n, attrs)
                                           : PyObject_Vectorcall(kernel, kargs + 1, n | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    for (Py_ssize_t i = 1; i <= n; i++)
        Py_DECREF(kargs[i]);
    return out;
}

/* after a kernel of two or three operands raised: a ValueError goes to the Python path, which runs the (pure)
 * kernel again and raises torch's error for it (shape_error); anything else propagates */
static PyObject *kernel_error(PyObject *const *args)
{
    if (!PyErr_ExceptionMatches(PyExc_ValueError))
        return NULL;
    PyErr_Clear();
    return fallback(args);
}

/* an in-place op (its special: _execute.execute_inplace_op) outside autograd -- x.add_(y), x.mul_(2.0), an update
 * through p.data -- as that function's fast path does it: two or three arguments, the tensors' arrays NumPy arrays,
 * nothing to promote, the target no inference tensor, and no input requiring grad (nor the target's base) or grad
 * mode off: the kernel writes into the target's array, the version of the target (of its base, for a view) counts
 * one, and the target is returned. Everything else, and a kernel's ValueError (raised before it writes: NumPy's
 * broadcasting or read-only refusals, which the Python function words as torch), goes to the Python function. */
static PyObject *inplace(PyObject *const *args, PyObject *op, PyObject *targs, PyObject *attrs, PyObject *kernel)
{
    Py_ssize_t n = PyTuple_GET_SIZE(targs);
    if (n != 2 && n != 3)
        return fallback(args);
    int promote = truth(SLOT(op, off_promote));
    if (promote != 0)
        return promote < 0 ? NULL : fallback(args);
    PyObject *a = PyTuple_GET_ITEM(targs, 0), *x = np_data(a);
    if (x == NULL)
        return fallback(args);
    int inf = attr_truth(a, s_inference);
    if (inf != 0)
        return inf < 0 ? NULL : fallback(args);
    int rg = requires_grad(a);
    if (rg < 0)
        return NULL;
    PyObject *kargs[] = {NULL, numpy_mod, x, NULL, NULL};
    for (Py_ssize_t i = 1; i < n; i++) {
        PyObject *o = PyTuple_GET_ITEM(targs, i);
        if (PyObject_TypeCheck(o, Tensor_T)) {
            PyObject *d = np_data(o);
            if (d == NULL)
                return fallback(args);
            if (!rg && (rg = requires_grad(o)) < 0)
                return NULL;
            kargs[i + 2] = d;
        } else
            kargs[i + 2] = o;
    }
    PyObject *base = PyObject_GetAttr(a, s_base);
    if (base == NULL)
        return NULL;
    if (!rg && base != Py_None && (rg = requires_grad(base)) < 0) {
        Py_DECREF(base);
        return NULL;
    }
    if (rg) {
        int g = grad_mode();
        if (g != 0) {
            Py_DECREF(base);
            return g < 0 ? NULL : fallback(args);
        }
    }
    PyObject *out = call_kernel(kernel, attrs, kargs, n + 1);
    if (out == NULL) {
        Py_DECREF(base);
        return kernel_error(args);
    }
    Py_DECREF(out);
    PyObject *target = base != Py_None ? base : a;
    PyObject *v = PyObject_GetAttr(target, s_version);
    PyObject *v1 = v != NULL ? PyNumber_Add(v, int_one) : NULL;
    Py_XDECREF(v);
    int rc = v1 != NULL ? PyObject_SetAttr(target, s_version, v1) : -1;
    Py_XDECREF(v1);
    Py_DECREF(base);
    return rc < 0 ? NULL : Py_NewRef(a);
}

/* list_arrays_py's common case: the list of the arrays of `seq` (a list or tuple of plain Tensors on NumPy arrays
 * of one dtype) and *need_grad; NULL with no exception set for anything else, NULL with one on an error */
static PyObject *arrays_of_list(PyObject *seq, int *need_grad)
{
    if (Tensor_T == NULL || !(PyList_CheckExact(seq) || PyTuple_CheckExact(seq)))
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *arrays = PyList_New(n), *dt = NULL;
    if (arrays == NULL)
        return NULL;
    *need_grad = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = items[i];
        PyObject *d = Py_TYPE(t) == Tensor_T ? SLOT(t, off_data) : NULL;
        PyObject *di = d != NULL && Py_TYPE(d) == ndarray_T ? PyObject_GetAttr(d, s_dtype) : NULL;
        if (di == NULL || (dt != NULL && di != dt)) {
            Py_XDECREF(di);
            Py_XDECREF(dt);
            Py_DECREF(arrays);
            return NULL;
        }
        Py_XSETREF(dt, di);
        if (!*need_grad && (*need_grad = requires_grad(t)) < 0) {
            Py_DECREF(dt);
            Py_DECREF(arrays);
            return NULL;
        }
        PyList_SET_ITEM(arrays, i, Py_NewRef(d));
    }
    Py_XDECREF(dt);
    return arrays;
}

/* cat and stack (special: _execute.execute_list) in that function's common case, in its order: the first argument
 * a non-empty list or tuple of plain Tensors on NumPy arrays of one dtype (arrays_of_list), at most two more; the
 * kernel on the arrays (its errors propagate, as there), then the node -- as _graph.make_node records it
 * (record_node's general form, or make_node itself for the cases record_node leaves) -- or the wrapped result.
 * Anything else goes to the Python function before anything has run. */
static PyObject *execute_list(PyObject *const *args, PyObject *op, PyObject *targs, PyObject *attrs, PyObject *kernel)
{
    Py_ssize_t n = PyTuple_GET_SIZE(targs);
    int v = truth(SLOT(op, off_view));
    if (v != 0 || n < 1 || n > 3)
        return v < 0 ? NULL : fallback(args);
    PyObject *seq0 = PyTuple_GET_ITEM(targs, 0);
    int rg;
    PyObject *arrays = arrays_of_list(seq0, &rg);
    if (arrays == NULL || PyList_GET_SIZE(arrays) == 0) {
        Py_XDECREF(arrays);
        return PyErr_Occurred() ? NULL : fallback(args);
    }
    PyObject *kargs[] = {NULL, numpy_mod, arrays, n > 1 ? PyTuple_GET_ITEM(targs, 1) : NULL,
                         n > 2 ? PyTuple_GET_ITEM(targs, 2) : NULL};
    PyObject *out = call_kernel(kernel, attrs, kargs, n + 1);
    Py_DECREF(arrays);
    if (out == NULL)
        return NULL;
    int d = rg ? grad_mode() : 0;
    if (d > 0)
        d = truth(SLOT(op, off_differentiable));
    if (d <= 0) {
        if (d < 0) {
            Py_DECREF(out);
            return NULL;
        }
        return wrap(op, targs, NULL, out);
    }
    PyObject *tensors = PySequence_Tuple(seq0), *s = tensors ? node_seq(args[3]) : NULL, *r = NULL;
    int done = 0;
    if (s != NULL && Node_T != NULL && Py_TYPE(out) == ndarray_T) {
        int some = truth(SLOT(op, off_nondiff));     /* (an output that never carries a gradient: make_node's) */
        if (some < 0)
            done = 1;
        else if (!some)
            r = record_node(op, &PyTuple_GET_ITEM(tensors, 0), PyTuple_GET_SIZE(tensors), attrs, out, s, 1, &done);
    }
    if (s != NULL && !done) {
        PyObject *make_node = PyDict_GetItemWithError(graph_globals, s_make_node);     /* borrowed */
        if (make_node != NULL) {
            PyObject *cargs[] = {op, tensors, attrs, out, s};
            r = PyObject_Vectorcall(make_node, cargs, 5, NULL);
        } else if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "tensorlib._graph has no make_node");
    }
    Py_XDECREF(s);
    Py_XDECREF(tensors);
    Py_DECREF(out);
    return r;
}

static PyObject *mod_execute(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "execute(op, args, attrs, seq) takes 4 arguments");
        return NULL;
    }
    PyObject *op = args[0], *targs = args[1], *attrs = args[2], *seq = args[3];
    if (py_execute == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tensorlib._cexecute.execute called before configure()");
        return NULL;
    }
    if (!op_type(Py_TYPE(op)) || !PyTuple_CheckExact(targs) || !PyDict_CheckExact(attrs) || !PyLong_Check(seq))
        return fallback(args);
    PyObject *special = SLOT(op, off_special), *kernel = SLOT(op, off_kernel);
    if (kernel == NULL)
        return fallback(args);
    if (special != Py_None)
        return special == inplace_special ? inplace(args, op, targs, attrs, kernel)
             : special == list_special ? execute_list(args, op, targs, attrs, kernel) : fallback(args);
    Py_ssize_t n = PyTuple_GET_SIZE(targs);
    if (n == 0) {       /* a factory (zeros, randn, arange...): its kernel on the attrs alone, never a node */
        int v = truth(SLOT(op, off_view)), p = truth(SLOT(op, off_promote));
        if (v != 0 || p != 0)
            return v < 0 || p < 0 ? NULL : fallback(args);
        PyObject *kargs[] = {NULL, numpy_mod};
        PyObject *out = call_kernel(kernel, attrs, kargs, 1);
        if (out == NULL)    /* (as the Python path raises it: shape_error leaves an error without arrays as it is) */
            return NULL;
        return wrap(op, targs, NULL, out);
    }
    if (n == 2) {       /* a tensor and a tensor or a number, or a number and a tensor */
        PyObject *a = PyTuple_GET_ITEM(targs, 0), *b = PyTuple_GET_ITEM(targs, 1);
        if (!PyObject_TypeCheck(a, Tensor_T)) {
            /* a number first (the reflected operators: 1 - t, 2 * t): a Python float or int with a floating
             * tensor, a Python int with an int64 one, need no cast (number_operand_kept), the rest goes to the
             * Python path */
            PyObject *y = np_data(b);
            if (!(PyFloat_CheckExact(a) || PyLong_CheckExact(a)) || y == NULL)
                return fallback(args);
            int f = number_operand_kept(y, a);
            if (f <= 0)
                return f < 0 ? NULL : fallback(args);
            int rg = requires_grad(b);
            if (rg < 0)
                return NULL;
            PyObject *kargs[] = {NULL, numpy_mod, a, y};
            PyObject *out = call_kernel(kernel, attrs, kargs, 3);
            if (out == NULL)
                return kernel_error(args);
            return finish(op, targs, attrs, seq, out, rg, 2);
        }
        PyObject *x = np_data(a), *y;
        if (x == NULL)
            return fallback(args);
        int promote = truth(SLOT(op, off_promote));
        if (promote < 0)
            return NULL;
        int rg = requires_grad(a);
        if (rg < 0)
            return NULL;
        if (PyObject_TypeCheck(b, Tensor_T)) {
            y = np_data(b);
            if (y == NULL)
                return fallback(args);
            int rgb = requires_grad(b);
            if (rgb < 0)
                return NULL;
            rg = rg || rgb;
            if (promote) {
                int same = same_dtype(x, y);
                if (same <= 0)
                    return same < 0 ? NULL : fallback(args);
            }
        } else {
            y = b;
            if (promote) {
                int f = number_operand_kept(x, y);
                if (f <= 0)
                    return f < 0 ? NULL : fallback(args);
            }
        }
        PyObject *kargs[] = {NULL, numpy_mod, x, y};
        PyObject *out = call_kernel(kernel, attrs, kargs, 3);
        if (out == NULL)
            return kernel_error(args);
        return finish(op, targs, attrs, seq, out, rg, 2);
    }
    if (n == 1) {
        PyObject *a = PyTuple_GET_ITEM(targs, 0), *x = np_data(a);
        if (x == NULL)
            return fallback(args);
        int rg = requires_grad(a);
        if (rg < 0)
            return NULL;
        PyObject *kargs[] = {NULL, numpy_mod, x};
        PyObject *out = call_kernel(kernel, attrs, kargs, 2);
        if (out == NULL)        /* (the Python path translates no error of a one-operand kernel) */
            return NULL;
        return finish(op, targs, attrs, seq, out, rg, 1);
    }
    if (n == 3) {   /* two tensors and a tensor or None (linear's bias, nll_loss's weight), no promotion */
        PyObject *a = PyTuple_GET_ITEM(targs, 0), *b = PyTuple_GET_ITEM(targs, 1), *c = PyTuple_GET_ITEM(targs, 2);
        PyObject *x = np_data(a), *y = np_data(b), *z = Py_None;
        if (x == NULL || y == NULL)
            return fallback(args);
        int promote = truth(SLOT(op, off_promote));
        if (promote != 0)
            return promote < 0 ? NULL : fallback(args);
        int rg = requires_grad(a);
        if (rg == 0)
            rg = requires_grad(b);
        if (rg < 0)
            return NULL;
        if (c != Py_None) {
            z = np_data(c);
            if (z == NULL)
                return fallback(args);
            int rgc = requires_grad(c);
            if (rgc < 0)
                return NULL;
            rg = rg || rgc;
        }
        PyObject *kargs[] = {NULL, numpy_mod, x, y, z};
        PyObject *out = call_kernel(kernel, attrs, kargs, 4);
        if (out == NULL)
            return kernel_error(args);
        return finish(op, targs, attrs, seq, out, rg, 3);
    }
    return fallback(args);
}

/* A plain tensor holding array d (a new reference; NULL on error) */
static PyObject *plain_tensor(PyObject *d)
{
    PyObject *t = Tensor_T->tp_alloc(Tensor_T, 0);
    if (t != NULL)
        SLOT(t, off_data) = Py_NewRef(d);
    return t;
}

/* _graph.tensor_of_result(d): a sink formula's result d as a tensor; where d views an intermediate array (d.base set:
 * NumPy's views point at the owner, itself no view), that array gets a tensor of its own which the result is marked
 * a view of, by the executor's view mark (set_view_base). What is not an ndarray of NumPy's (a NumPy scalar), a base
 * that is not one, or a call before the graph is configured: _graph's Python twin. */
static PyObject *mod_tensor_of_result(PyObject *self, PyObject *d)
{
    PyObject *b = Node_T != NULL && Py_TYPE(d) == ndarray_T ? PyObject_GetAttr(d, s_np_base) : NULL;
    if (b == NULL && PyErr_Occurred())
        return NULL;
    if (b == NULL || (b != Py_None && Py_TYPE(b) != ndarray_T)) {
        Py_XDECREF(b);
        PyObject *twin = graph_globals != NULL ? PyDict_GetItemString(graph_globals, "_tensor_of_result") : NULL;
        if (twin == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "tensorlib._cexecute: _graph._tensor_of_result is missing");
            return NULL;
        }
        return PyObject_CallOneArg(twin, d);
    }
    PyObject *t = plain_tensor(d);
    if (t != NULL && b != Py_None) {
        PyObject *bt = plain_tensor(b);
        if (bt == NULL || set_view_base(t, bt, s_base, s_multi_view) < 0)
            Py_CLEAR(t);
        Py_XDECREF(bt);
    }
    Py_DECREF(b);
    return t;
}

/* list_arrays(tensors): execute_list's common case, the arrays of a list or tuple of tensors (cat's, stack's) -- plain
 * Tensors on NumPy arrays of one dtype -- as (arrays, need_grad); None for anything else (the Python
 * loop decides: promotion, devices, subclasses, errors). _execute.list_arrays_py is its twin. */
static PyObject *mod_list_arrays(PyObject *self, PyObject *seq)
{
    int need_grad;
    PyObject *arrays = arrays_of_list(seq, &need_grad);
    if (arrays == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(NO)", arrays, need_grad ? Py_True : Py_False);
}

static PyMethodDef module_methods[] = {
    {"tensor_of_result", mod_tensor_of_result, METH_O,
     "tensor_of_result(d): tensorlib._graph.tensor_of_result in C (configure_graph binds it there)."},
    {"configure", mod_configure, METH_VARARGS,
     "configure(Tensor, ndarray, numpy, STATE, grad_off, seq_counter, execute, make_node1, make_node2, make_node3, "
     "_wrap_result, mark_view, execute_inplace_op, execute_list): the Python objects execute reads."},
    {"configure_graph", mod_configure_graph, METH_VARARGS,
     "configure_graph(Node, _graph's globals, _NO_EDGE, _leaf_edge, _GRAD_DTYPES): the graph layer's objects the "
     "nodes recorded in C need (without it, nodes are recorded by make_node1/make_node2)."},
    {"list_arrays", mod_list_arrays, METH_O,
     "list_arrays(tensors): execute_list's common case, (arrays, need_grad) or None (_execute.py's twin)."},
    {"execute", (PyCFunction)(void (*)(void))mod_execute, METH_FASTCALL,
     "execute(op, args, attrs, seq): tensorlib._execute.execute, its common case in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_cexecute", "The executor's common case in C (see tensorlib/_execute.py).", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__cexecute(void)
{
#define INTERN(var, s) if ((var = PyUnicode_InternFromString(s)) == NULL) return NULL
    INTERN(s_requires_grad, "_requires_grad");
    INTERN(s_grad_enabled, "grad_enabled");
    INTERN(s_dtype, "dtype");
    INTERN(s_kind, "kind");
    INTERN(s_f, "f");
    INTERN(s_slow_any, "_slow_any");
    INTERN(s_base, "_base");
    INTERN(s_np_base, "base");
    INTERN(s_multi_view, "_multi_view");
    INTERN(s_make_node, "make_node");
    INTERN(s_rebase_gen, "_rebase_gen");
    INTERN(s_detached, "_detached");
    INTERN(s_grad_fn, "_grad_fn");
    INTERN(s_output_nr, "_output_nr");
    INTERN(s_acc_edge, "_acc_edge");
    INTERN(s_inference, "_inference");
    INTERN(s_version, "_version");
    INTERN(s_shape, "shape");
    INTERN(s_save, "save");
    if ((s_output_nr_zero = PyLong_FromLong(0)) == NULL || (int_one = PyLong_FromLong(1)) == NULL)
        return NULL;
#undef INTERN
    return PyModule_Create(&moduledef);
}
