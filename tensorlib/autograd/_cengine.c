/* tensorlib.autograd._cengine: the backward engine's loop in C (Linux), for backward() passes.
 *
 * tensorlib/autograd/engine.py's `_drain` stays the reference and the fallback (TENSORLIB_NATIVE=0, a build
 * without a compiler, and every autograd.grad / backward(inputs=) pass, which capture gradients). drain() here
 * does what `_drain` does when nothing is captured, step for step and in the same order: the ready leaves first,
 * then the next node (the one kept out of the heap, or the heap's newest), its hooks, its formula, its release,
 * its gradients passed on to the nodes they feed (counted down, summed in a buffer where several arrive), its
 * region closed. Everything a node does beyond the loop's bookkeeping is the Python functions' it is configured
 * with (engine.py's _run_node, _run_hooked, _hooks_and_captures, _store_grad, _accumulate, ...), except the
 * commonest node: a plain Node (no hooks, no anomaly trace, no ctx) with one real gradient, whose formula it calls
 * itself -- in a quiet pass its op's `quiet_backward`, else as _run_formula runs it (phase and sequence number set,
 * the node's region opened, its sink or backward formula) -- and whose gradients it checks against the inputs'
 * metadata as _run_node does (a mismatch goes to _fix_grads); and .grad's steal of a gradient it alone holds.
 *
 * deps(root) counts the edges into each node reachable from one root, as run_backward's walk does.
 *
 * tests/tensorlib/test_native_engine.py runs backward passes through this and through `_drain` and compares
 * what they leave behind; change the two together.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include "../_native_common.h"
#include "../_native_slots.h"
#include "../_range_api.h"
#include "../_state_api.h"

static PyTypeObject *Node_T, *Acc_T, *Tensor_T, *ndarray_T;
static PyObject *run_node, *run_hooked, *hooks_and_captures, *check_saved, *run_formula, *fix_grads, *store_grad,
    *accumulate_fn, *sum_in_node, *ops_add, *hooks_dict, *dispatch_dict, *state, *refs_probe;
static PyObject *s_tensor_hooks, *s_retained, *s_node_hooks, *s_quiet_backward, *s_dtype, *s_kind, *s_shape,
    *s_hooks, *s_post_acc_hooks, *s_anomaly_users, *s_anomaly, *s_anomaly_check_nan, *s_release, *s_freed, *s_c,
    *s_trace, *s_ctx_data, *s_grad, *s_base, *s_grad_fn, *s_requires_grad, *s_flags, *s_writeable, *s_nbase,
    *s_version, *s_backward, *s_range_pair, *s_range_c, *s_op, *s_sink_linear, *s_name,
    *s_node_name, *s_node_name_of, *s_node_name_dim, *s_sink_formulas, *s_grad_enabled, *s_sink_backward, *s_acc_region,
    *s_run_recorded, *s_op_at, *s_add, *s_add_, *s_tensor_of, *s_detach, *s_mark_view, *s_detached, *s_view,
    *s_sink_view, *s_sink_only, *s_range_hooks, *s_op_step, *s_call_as, *s_call_as_arrays, *s_keepdim, *s_reshape,
    *s_transpose, *s_swapaxes,
    *s_as_strided, *s_dim, *s_dim0, *s_dim1, *s_dims, *s_multi_view, *s_nondiff_outputs;
static StateAPI *sapi;          /* tensorlib._cstate's: the thread's phase and backward seq (enter/leave_backward) */
static PyObject *minus_one;     /* the seq of AccumulateGrad's backward work: linked to no forward op */
static PyObject *zero_obj;      /* 0: the sum's dim in addmm's formula */
static Py_ssize_t off_op, off_seq, off_edges, off_inputs, off_versions, off_out_data, off_out_refs, off_in_meta,
    off_out_meta, off_ref, off_data, off_attrs;
static PyObject *loop_refs;     /* what _store_grad's getrefcount sees for a gradient only drain() holds */
static PyObject *np_add;        /* numpy.add: the kernel of add and add_ on two arrays of one shape and dtype */

static PyObject *mod_configure(PyObject *self, PyObject *args)
{
    PyObject *node, *acc, *tensor, *ndarray;
    if (run_node != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tensorlib.autograd._cengine is configured once");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!O!O!O!OOOOOOOOOOO!O!OO", &PyType_Type, &node, &PyType_Type, &acc, &PyType_Type,
                          &tensor, &PyType_Type, &ndarray, &run_node, &run_hooked, &hooks_and_captures,
                          &check_saved, &run_formula, &fix_grads, &store_grad, &accumulate_fn, &sum_in_node,
                          &ops_add, &PyDict_Type, &hooks_dict, &PyDict_Type, &dispatch_dict, &state, &refs_probe)) {
        run_node = NULL;
        return NULL;
    }
    Node_T = (PyTypeObject *)node;
    Acc_T = (PyTypeObject *)acc;
    Tensor_T = (PyTypeObject *)tensor;
    ndarray_T = (PyTypeObject *)ndarray;
    if (slot_offset(Node_T, "op", &off_op) < 0 || slot_offset(Node_T, "seq", &off_seq) < 0 ||
        slot_offset(Node_T, "edges", &off_edges) < 0 || slot_offset(Node_T, "inputs", &off_inputs) < 0 ||
        slot_offset(Node_T, "versions", &off_versions) < 0 || slot_offset(Node_T, "out_data", &off_out_data) < 0 ||
        slot_offset(Node_T, "out_refs", &off_out_refs) < 0 || slot_offset(Node_T, "in_meta", &off_in_meta) < 0 ||
        slot_offset(Node_T, "_out_meta", &off_out_meta) < 0 || slot_offset(Acc_T, "_ref", &off_ref) < 0 ||
        slot_offset(Node_T, "attrs", &off_attrs) < 0 || slot_offset(Tensor_T, "_data", &off_data) < 0) {
        run_node = NULL;
        return NULL;
    }
    /* what sys.getrefcount reports inside a Python function called from here with an object that one C local
     * holds: _store_grad's `refs` for drain()'s own gradients (as engine._LOOP_REFS for _drain's) */
    PyObject *probe = PyList_New(0);
    if (probe == NULL) {
        run_node = NULL;
        return NULL;
    }
    loop_refs = PyObject_CallOneArg(refs_probe, probe);
    Py_DECREF(probe);
    PyObject *numpy = loop_refs != NULL ? PyImport_ImportModule("numpy") : NULL;
    np_add = numpy != NULL ? PyObject_GetAttrString(numpy, "add") : NULL;
    Py_XDECREF(numpy);
    if (np_add == NULL) {
        run_node = NULL;
        return NULL;
    }
    PyObject *keep[] = {node, acc, tensor, ndarray, run_node, run_hooked, hooks_and_captures, check_saved,
                        run_formula, fix_grads, store_grad, accumulate_fn, sum_in_node, ops_add, hooks_dict,
                        dispatch_dict, state, refs_probe};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        Py_INCREF(keep[i]);     /* held for the process's life */
    Py_RETURN_NONE;
}

/* ---- the ready nodes: a heap of (seq, counter, node, buffer), the newest node (highest seq) first, ties by
 * the order they were pushed (engine.py's heap of (-seq, counter, node, buf) tuples) ---- */
typedef struct {
    long long seq;
    Py_ssize_t counter;
    PyObject *node, *buf;       /* owned */
} Entry;

typedef struct {
    Entry *a;
    Py_ssize_t n, cap;
} Heap;

static inline int before(const Entry *x, const Entry *y)
{
    return x->seq > y->seq || (x->seq == y->seq && x->counter < y->counter);
}

static int heap_push(Heap *h, Entry e)      /* steals e's references, also on failure */
{
    if (h->n == h->cap) {
        Py_ssize_t cap = h->cap ? h->cap * 2 : 16;
        Entry *a = PyMem_Realloc(h->a, cap * sizeof(Entry));
        if (a == NULL) {
            Py_DECREF(e.node);
            Py_XDECREF(e.buf);
            PyErr_NoMemory();
            return -1;
        }
        h->a = a, h->cap = cap;
    }
    Py_ssize_t i = h->n++;
    while (i > 0) {
        Py_ssize_t p = (i - 1) / 2;
        if (!before(&e, &h->a[p]))
            break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = e;
    return 0;
}

static Entry heap_pop(Heap *h)      /* h->n > 0; the caller owns the entry's references */
{
    Entry top = h->a[0], last = h->a[--h->n];
    Py_ssize_t i = 0, n = h->n;
    for (;;) {
        Py_ssize_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(&h->a[c + 1], &h->a[c]))
            c++;
        if (!before(&h->a[c], &last))
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (n > 0)
        h->a[i] = last;
    return top;
}

/* ---- the ready leaves' sinks: a FIFO of (AccumulateGrad, gradient or NULL for None) ---- */
typedef struct {
    PyObject **a;       /* pairs, owned */
    Py_ssize_t head, n, cap;
} Queue;

static int queue_push(Queue *q, PyObject *node, PyObject *g)    /* steals both (g may be NULL), also on failure */
{
    if (q->head + q->n == q->cap) {
        if (q->head > 0) {
            memmove(q->a, q->a + 2 * q->head, 2 * q->n * sizeof(PyObject *));
            q->head = 0;
        }
        if (q->n == q->cap) {
            Py_ssize_t cap = q->cap ? q->cap * 2 : 16;
            PyObject **a = PyMem_Realloc(q->a, 2 * cap * sizeof(PyObject *));
            if (a == NULL) {
                Py_DECREF(node);
                Py_XDECREF(g);
                PyErr_NoMemory();
                return -1;
            }
            q->a = a, q->cap = cap;
        }
    }
    Py_ssize_t i = 2 * (q->head + q->n++);
    q->a[i] = node;
    q->a[i + 1] = g;
    return 0;
}

static void heap_clear(Heap *h)
{
    for (Py_ssize_t i = 0; i < h->n; i++) {
        Py_DECREF(h->a[i].node);
        Py_XDECREF(h->a[i].buf);
    }
    PyMem_Free(h->a);
}

static void queue_clear(Queue *q)
{
    for (Py_ssize_t i = q->head; i < q->head + q->n; i++) {
        Py_DECREF(q->a[2 * i]);
        Py_XDECREF(q->a[2 * i + 1]);
    }
    PyMem_Free(q->a);
}

static int node_seq(PyObject *node, long long *seq)
{
    PyObject *s = SLOT(node, off_seq);
    if (s == NULL) {
        PyErr_SetString(PyExc_AttributeError, "a node without a sequence number reached the engine");
        return -1;
    }
    *seq = PyLong_AsLongLong(s);
    return (*seq == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* a plain Node: exactly Node, with none of the rare fields an instance sets in its dict (tensor hooks, retained
 * grads, node hooks, an anomaly trace, a custom Function's ctx; not freed): 1, 0, or -1 on error */
static int plain(PyObject *node)
{
    if (Py_TYPE(node) != Node_T)
        return 0;
    PyObject *names[] = {s_tensor_hooks, s_retained, s_node_hooks, s_trace, s_ctx_data, s_freed};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int r = attr_truth(node, names[i]);
        if (r != 0)
            return r < 0 ? -1 : 0;
    }
    return 1;
}

static PyObject *call(PyObject *fn, PyObject **args, size_t n)
{
    return PyObject_Vectorcall(fn, args, n, NULL);
}

/* the number of outputs of node fn (_graph.n_outputs) */
static Py_ssize_t n_outputs(PyObject *fn)
{
    PyObject *m = SLOT(fn, off_out_meta);
    if (m == NULL) {
        m = PyObject_GetAttrString(fn, "_out_meta");     /* raises as the Python read would */
        if (m == NULL)
            return -1;
        Py_DECREF(m);
    }
    return PyTuple_CheckExact(m) ? PyTuple_GET_SIZE(m) : 1;
}

/* engine._check_saved's test for a node not freed: each saved input's version (its base's, for a view) is the one
 * saved. 1 when all are, 0 when one is not or the fields are not the usual sequences (_check_saved decides), -1 on
 * error */
static int versions_unchanged(PyObject *node)
{
    PyObject *vs = SLOT(node, off_versions), *ins = SLOT(node, off_inputs);
    if (vs == NULL || ins == NULL || !(PyTuple_Check(vs) || PyList_Check(vs)) || !PyTuple_Check(ins) ||
        PyTuple_GET_SIZE(ins) < PySequence_Fast_GET_SIZE(vs))
        return 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(vs); i++) {
        PyObject *v = PySequence_Fast_GET_ITEM(vs, i);
        if (v == Py_None)
            continue;
        PyObject *t = PyTuple_GET_ITEM(ins, i);
        PyObject *b = PyObject_GetAttr(t, s_base);
        if (b == NULL)
            return -1;
        PyObject *now = PyObject_GetAttr(b != Py_None ? b : t, s_version);
        Py_DECREF(b);
        if (now == NULL)
            return -1;
        int eq = PyObject_RichCompareBool(now, v, Py_EQ);
        Py_DECREF(now);
        if (eq <= 0)
            return eq;
    }
    return 1;
}

/* An op's attributes the loop reads per node, at their slots' offsets for an op of exactly OpDef's class
 * (set_op_class; ~250 instructions a getattr, a load here), else by getattr */
enum { OP_BACKWARD, OP_NODE_NAME, OP_QUIET, OP_SINK_BACKWARD, OP_SINK_VIEW, OP_SINK_LINEAR, OP_NAME_OF, OP_NAME_DIM,
       OP_NONDIFF, OP_NSLOTS };
static const char *op_slot_names[OP_NSLOTS] = {"backward", "node_name", "quiet_backward", "sink_backward",
                                               "sink_view", "sink_linear", "node_name_of", "node_name_dim",
                                               "nondiff_outputs"};
static PyObject **op_slot_strs[OP_NSLOTS] = {&s_backward, &s_node_name, &s_quiet_backward, &s_sink_backward,
                                             &s_sink_view, &s_sink_linear, &s_node_name_of, &s_node_name_dim,
                                             &s_nondiff_outputs};
static PyTypeObject *opdef_T;
static Py_ssize_t op_off[OP_NSLOTS];

static PyObject *mod_set_op_class(PyObject *self, PyObject *cls)
{
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "set_op_class(OpDef): a class");
        return NULL;
    }
    Py_ssize_t off[OP_NSLOTS];
    for (int i = 0; i < OP_NSLOTS; i++)
        if (slot_offset((PyTypeObject *)cls, op_slot_names[i], &off[i]) < 0)
            return NULL;
    memcpy(op_off, off, sizeof off);
    Py_INCREF(cls);
    Py_XSETREF(opdef_T, (PyTypeObject *)cls);
    Py_RETURN_NONE;
}

/* op's attribute `which` (new reference), NULL with an error set */
static inline PyObject *op_attr(PyObject *op, int which)
{
    return slot_or_attr(op, opdef_T, op_off[which], *op_slot_strs[which]);
}

/* node.name() (_graph.Node.name): op.node_name, read here where op has no node_name_of or node_name_dim (the ops
 * whose node name depends on the node); else the method. New reference. */
static PyObject *node_name(PyObject *node, PyObject *op)
{
    PyObject *of = op_attr(op, OP_NAME_OF);
    if (of == NULL)
        return NULL;
    if (of != Py_None) {        /* node_name_of(node): a name that depends on the node's arguments */
        PyObject *name = PyObject_CallOneArg(of, node);
        Py_DECREF(of);
        return name;
    }
    Py_DECREF(of);
    PyObject *alt = op_attr(op, OP_NAME_DIM);
    if (alt == NULL)
        return NULL;
    if (alt != Py_None) {       /* node_name_dim where the node's attrs give a dim (not None) */
        PyObject *attrs = SLOT(node, off_attrs), *dim = NULL;
        if (attrs != NULL && PyDict_Check(attrs) && (dim = PyDict_GetItemWithError(attrs, s_dim)) == NULL &&
            PyErr_Occurred()) {
            Py_DECREF(alt);
            return NULL;
        }
        if (attrs != NULL && !PyDict_Check(attrs) && attrs != Py_None) {   /* (not a dict: Node.name's reading) */
            Py_DECREF(alt);
            return PyObject_CallMethodNoArgs(node, s_name);
        }
        if (dim != NULL && dim != Py_None)
            return alt;
    }
    Py_DECREF(alt);
    return op_attr(op, OP_NODE_NAME);
}

/* Backward work the loop runs itself (a node's formula, a leaf's store, a gradient sum) runs with STATE's phase
 * "backward" and the seq it is linked to; 0, or -1 with an error set */
static int enter_backward(PyObject *seq)
{
    ThreadPhase *t = sapi->current();
    if (t == NULL)
        return -1;
    phase_enter_backward(t, seq);
    return 0;
}

/* The end of that work, once the caller has fetched any error (et, ev, tb) and done its clean-up (`ok`: whether
 * that succeeded): STATE's phase back to "forward", then `out` (stolen) where nothing failed, else NULL with the
 * first error: the fetched one, else the clean-up's or the reset's */
static PyObject *leave_backward(PyObject *out, int ok, PyObject *et, PyObject *ev, PyObject *tb)
{
    ThreadPhase *t = sapi->current();     /* (the thread's: found by enter_backward, so no error here) */
    if (t == NULL)
        ok = 0;
    else
        t->backward = 0;
    if (et != NULL) {
        PyErr_Clear();
        PyErr_Restore(et, ev, tb);
    } else if (ok && !PyErr_Occurred())
        return out;
    else if (!PyErr_Occurred())
        PyErr_SetString(PyExc_RuntimeError, "the engine could not end a node's backward work");
    Py_XDECREF(out);
    return NULL;
}

/* What the loop reads of the hook registry (_hooks' range_pair, range_c, range_hooks, op_step) and of the dispatcher's
 * flags (dispatch's _sink_formulas, _sink_only): module globals that change only when the registry, the sink or the
 * modes do (_hooks._refresh and its subscribers, dispatch._copy_flags among them), copied here on the first read after
 * each such change (hooks_changed, subscribed by engine.py after the dispatcher: it empties the copy), instead of a
 * dict lookup or two per node and per recorded op. The objects are new references; NULL for None. */
static struct {
    int valid;
    PyObject *range_pair, *range_c, *op_step;
    int range_hooks, sink_formulas, sink_only;
} hk;

static void hooks_forget(void)
{
    hk.valid = 0;
    Py_CLEAR(hk.range_pair);    /* (the profile's capsule and methods let go with its hook) */
    Py_CLEAR(hk.range_c);
    Py_CLEAR(hk.op_step);
}

/* global `name` of module dict d: its value (borrowed), or NULL with a RuntimeError where it is missing */
static PyObject *global_of(PyObject *d, PyObject *name)
{
    PyObject *v = PyDict_GetItemWithError(d, name);
    if (v == NULL && !PyErr_Occurred())
        PyErr_Format(PyExc_RuntimeError, "the engine's global %R is missing", name);
    return v;
}

/* hk filled; 0, or -1 with an error set (hk left empty) */
static int hooks_fill(void)
{
    hooks_forget();
    PyObject *rp = global_of(hooks_dict, s_range_pair), *rc = rp ? global_of(hooks_dict, s_range_c) : NULL;
    PyObject *step = rc ? global_of(hooks_dict, s_op_step) : NULL;
    PyObject *rh = step ? global_of(hooks_dict, s_range_hooks) : NULL;
    PyObject *sf = rh ? global_of(dispatch_dict, s_sink_formulas) : NULL;
    PyObject *so = sf ? global_of(dispatch_dict, s_sink_only) : NULL;
    if (so == NULL)
        return -1;
    if (rp != Py_None && (!PyTuple_Check(rp) || PyTuple_GET_SIZE(rp) != 2)) {
        PyErr_SetString(PyExc_TypeError, "range_pair is (enter, exit)");
        return -1;
    }
    if (rc != Py_None && !PyCapsule_IsValid(rc, RANGE_C_CAPSULE)) {
        PyErr_SetString(PyExc_TypeError, "range_c is a " RANGE_C_CAPSULE " capsule");
        return -1;
    }
    int on = truth(rh), sfo = on < 0 ? -1 : truth(sf);
    if (sfo < 0)
        return -1;
    hk.range_hooks = on;
    hk.sink_formulas = sfo;
    hk.sink_only = so == Py_True;
    hk.range_pair = rp != Py_None ? Py_NewRef(rp) : NULL;
    hk.range_c = rc != Py_None ? Py_NewRef(rc) : NULL;
    hk.op_step = step != Py_None ? Py_NewRef(step) : NULL;
    hk.valid = 1;
    return 0;
}

/* hk filled where it is not; 0, or -1 with an error set */
static inline int hooks_read(void)
{
    return hk.valid ? 0 : hooks_fill();
}

static PyObject *mod_hooks_changed(PyObject *self, PyObject *unused)
{
    hooks_forget();
    Py_RETURN_NONE;
}

/* _H.range_pair, (enter, exit), as a new reference: NULL with no error where no range hook listens, NULL with an
 * error set where it is not a pair */
static PyObject *range_pair(void)
{
    if (hooks_read() < 0)
        return NULL;
    return Py_XNewRef(hk.range_pair);
}

/* A region the engine times itself and records by the only region hook's C form (_H.range_c, tensorlib/_range_api.h)
 * where it has one: a node's, open while its gradients are passed on (drain closes it), or AccumulateGrad's. The
 * same record as range_pair's enter then exit at the same two points, without the token tuple, the (exit, token)
 * pair in `held` and the two calls. cap: the capsule (held while the region is open, so that a profile stopped
 * inside it cannot free what it points at), NULL where none is open. */
typedef struct {
    PyObject *cap, *name, *kind;    /* (kind: borrowed, an interned name) */
    long long t0;
} Region;

/* _H.range_c as a new reference: NULL with no error where there is none (no region hook, several, or one without
 * a C form), NULL with an error set where it is not the capsule */
static PyObject *range_c(void)
{
    if (hooks_read() < 0)
        return NULL;
    return Py_XNewRef(hk.range_c);
}

/* the region r of `kind` opened now: cap and name stolen */
static inline void region_open(Region *r, PyObject *cap, PyObject *name, PyObject *kind)
{
    r->cap = cap;
    r->name = name;
    r->kind = kind;
    r->t0 = now_ns();
}

/* r's record (a region not open: nothing), r left closed; an exception on its way out is kept (a failing record
 * replaces it). 0, or -1 with an error set */
static int region_close(Region *r)
{
    if (r->cap == NULL)
        return 0;
    long long t1 = now_ns();
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    RangeC *rc = PyCapsule_GetPointer(r->cap, RANGE_C_CAPSULE);
    int ok = rc != NULL && rc->record(rc->self, r->name, r->kind, r->t0, t1) == 0;
    Py_CLEAR(r->cap);
    Py_CLEAR(r->name);
    if (!ok) {
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(tb);
        return -1;
    }
    PyErr_Restore(et, ev, tb);
    return 0;
}

/* ---- the view ops' backward in an observed pass, in C (OpDef.sink_view) ----
 *
 * A view op's sink formula (ops/shape.py: reshape's, t's, transpose's, permute's) is one recorded op whose kernel is
 * one region step around the gradient array's view method, then the result made a tensor marked a view of the
 * gradient (dispatch.run_recorded_view). Where the op sink alone records (a default profile) the engine does the
 * same here: `call_as` (tensorlib/_crecorded.c) times and records the op around _H.op_step's region and the
 * array's method, and the tensor and its view mark are made as dispatch.run_recorded_view / _graph.mark_view make
 * them -- the same records, in the same order, without the formula's five Python frames. op.sink_view is
 * (the op recorded, kind): */
enum { VIEW_RESHAPE, VIEW_T, VIEW_TRANSPOSE, VIEW_PERMUTE, VIEW_KINDS };

static PyObject *tensor_over(PyObject *r);

static int arrays_ok = 0;       /* NumPy's array struct reads as ArrayHead (setup_arrays) */
#define C_CONTIGUOUS 0x0001     /* NPY_ARRAY_C_CONTIGUOUS */
#define F_CONTIGUOUS 0x0002     /* NPY_ARRAY_F_CONTIGUOUS */

/* setup_arrays(probes): probes a tuple of (array, its flags.num, its base, its ndim) made by NumPy; the C view
 * formulas read arrays' flags and bases off NumPy's struct (_native_common.h's ArrayHead) only where every probe
 * reads so (a base of None is NULL there). Returns whether they do. */
static PyObject *mod_setup_arrays(PyObject *self, PyObject *probes)
{
    if (!PyTuple_Check(probes) || ndarray_T == NULL) {
        PyErr_SetString(PyExc_TypeError, "setup_arrays(probes): a tuple, after configure()");
        return NULL;
    }
    int ok = PyTuple_GET_SIZE(probes) > 0;
    for (Py_ssize_t i = 0; ok && i < PyTuple_GET_SIZE(probes); i++) {
        PyObject *p = PyTuple_GET_ITEM(probes, i);
        if (!PyTuple_Check(p) || PyTuple_GET_SIZE(p) != 4 || Py_TYPE(PyTuple_GET_ITEM(p, 0)) != ndarray_T) {
            ok = 0;
            break;
        }
        ArrayHead *h = (ArrayHead *)PyTuple_GET_ITEM(p, 0);
        long flags = PyLong_AsLong(PyTuple_GET_ITEM(p, 1)), nd = PyLong_AsLong(PyTuple_GET_ITEM(p, 3));
        if (PyErr_Occurred())
            return NULL;
        ok = h->flags == flags && h->nd == nd && (h->base != NULL ? h->base : Py_None) == PyTuple_GET_ITEM(p, 2);
    }
    arrays_ok = ok;
    return PyBool_FromLong(ok);
}

/* (the inverse permutation of dims, a tuple of ints) as a new tuple, NULL with no error where dims is not one */
static PyObject *inverse_dims(PyObject *dims)
{
    if (!PyTuple_Check(dims))
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(dims);
    PyObject *inv = PyTuple_New(n);
    if (inv == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        long d = PyLong_Check(PyTuple_GET_ITEM(dims, i)) ? PyLong_AsLong(PyTuple_GET_ITEM(dims, i)) : -1;
        if (d < 0 || d >= n || PyTuple_GET_ITEM(inv, d) != NULL) {
            PyErr_Clear();
            Py_DECREF(inv);     /* (unfilled items are NULL: tupledealloc skips them) */
            return NULL;
        }
        PyTuple_SET_ITEM(inv, d, PyLong_FromSsize_t(i));
        if (PyTuple_GET_ITEM(inv, d) == NULL) {
            Py_DECREF(inv);
            return NULL;
        }
    }
    return inv;
}

/* _graph.mark_view(t, g) for t over a view of g's array: its base is g's array or that array's base (NumPy's views
 * point at the owner), else mark_view itself runs. 0, or -1 on error */
static int mark_view_of(PyObject *t, PyObject *g)
{
    PyObject *r = SLOT(t, off_data), *d = SLOT(g, off_data);
    PyObject *base = ((ArrayHead *)r)->base;
    if (base == NULL)
        return 0;
    if (base != d && base != ((ArrayHead *)d)->base) {
        PyObject *mv = PyDict_GetItemWithError(dispatch_dict, s_mark_view);     /* borrowed */
        if (mv == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_RuntimeError, "dispatch.mark_view is missing");
            return -1;
        }
        PyObject *a[] = {t, g};
        PyObject *m = PyObject_Vectorcall(mv, a, 2, NULL);
        Py_XDECREF(m);
        return m == NULL ? -1 : 0;
    }
    return set_view_base(t, g, s_base, s_multi_view);
}

/* The arrays and attributes run_recorded(op, *arrays, **attrs) would take, for rr.call_as_arrays (a detailed profile's
 * record of an op the formulas below compute themselves: Input Shapes from the arrays, the outputs' memory): *ar a
 * tuple of the n arrays, *at a dict of the nk (key, value) pairs in kv. 0, or -1 with an error set (both NULL). */
static int op_args(PyObject **ar, PyObject **at, PyObject *const *arrays, int n, PyObject *const *kv, int nk)
{
    *ar = PyTuple_New(n);
    *at = *ar != NULL ? PyDict_New() : NULL;
    if (*at == NULL) {
        Py_CLEAR(*ar);
        return -1;
    }
    for (int i = 0; i < n; i++)
        PyTuple_SET_ITEM(*ar, i, Py_NewRef(arrays[i]));
    for (int i = 0; i < nk; i++)
        if (PyDict_SetItem(*at, kv[2 * i], kv[2 * i + 1]) < 0) {
            Py_CLEAR(*ar);
            Py_CLEAR(*at);
            return -1;
        }
    return 0;
}

/* rr.call_as(op, <pre...>, fn, *args) where the op sink alone records (ar NULL), else rr.call_as_arrays(op, ar, at,
 * <pre...>, fn, *args) (a detailed profile: ar and at the op's arrays and attributes, op_args; both stolen): n items
 * in `rest` (the region steps, fn and its arguments) */
static PyObject *call_as_rec(PyObject *rr, PyObject *op, PyObject *ar, PyObject *at, PyObject *const *rest, size_t n)
{
    PyObject *argv[4 + 12];
    size_t k = 0;
    argv[k++] = rr;
    argv[k++] = op;
    if (ar != NULL)
        argv[k++] = ar, argv[k++] = at;
    for (size_t i = 0; i < n && i < 12; i++)
        argv[k++] = rest[i];
    PyObject *r = PyObject_VectorcallMethod(ar != NULL ? s_call_as_arrays : s_call_as, argv, k, NULL);
    Py_XDECREF(ar);
    Py_XDECREF(at);
    return r;
}

/* Array d's method `meth` (margs: its nm arguments) run as op `outer`'s kernel runs it, by rr.call_as (rr:
 * dispatch.run_recorded): inside _H.op_step's regions `steps` (ns of them, nested in order) where range hooks listen,
 * else called as it is; the op timed and recorded by the op sink, or with ar and at (the op's arrays and attributes,
 * stolen; NULL: the op sink's record) by the only op hook (call_as_rec). The method's result (new reference),
 * NotImplemented where neither records through rr (nothing run), or NULL with an error set */
static PyObject *recorded_method(PyObject *rr, PyObject *outer, PyObject *const *steps, int ns, PyObject *d,
                                 PyObject *meth, PyObject *const *margs, int nm, PyObject *ar, PyObject *at)
{
    if (hooks_read() < 0) {
        Py_XDECREF(ar);
        Py_XDECREF(at);
        return NULL;
    }
    int on = hk.range_hooks;
    PyObject *step = Py_XNewRef(hk.op_step);    /* (held: a registry change in a call below lets go of hk's) */
    if (on && step == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_hooks.op_step is None while range hooks listen");
        Py_XDECREF(ar);
        Py_XDECREF(at);
        return NULL;
    }
    /* the method as NumPy's array class holds it, called with d first, where d is exactly an ndarray (no bound method
     * made per call: ~300 instructions), else d's bound method */
    PyObject *desc = Py_TYPE(d) == ndarray_T ? _PyType_Lookup(ndarray_T, meth) : NULL;     /* borrowed */
    int unbound = desc != NULL && Py_TYPE(desc) == &PyMethodDescr_Type;
    PyObject *fn = unbound ? Py_NewRef(desc) : PyObject_GetAttr(d, meth);
    if (fn == NULL) {
        Py_XDECREF(step);
        Py_XDECREF(ar);
        Py_XDECREF(at);
        return NULL;
    }
    /* rr.call_as(outer, op_step, step0[, op_step, step1], fn, [d,] *margs), or call_as_arrays' */
    PyObject *argv[2 * 2 + 2 + 2];
    size_t n = 0;
    for (int i = 0; on && i < ns && i < 2; i++)
        argv[n++] = step, argv[n++] = steps[i];
    argv[n++] = fn;
    if (unbound)
        argv[n++] = d;
    for (int i = 0; i < nm && i < 2; i++)
        argv[n++] = margs[i];
    PyObject *r = call_as_rec(rr, outer, ar, at, argv, n);
    Py_DECREF(fn);
    Py_XDECREF(step);
    return r;
}

/* reshape's strided path as _reshape_bwd_sink runs it (ops/shape.py _reshape_strided) for a gradient d that is not
 * C-contiguous: the region "reshape" (kind "op", recorded by the only region hook's C form, range_c; no region where
 * no region hook listens) around, where d's strides allow `shape` as a view, _reshape_alias's record (spec[2], by
 * rr.call_as) of d.reshape(shape), else (*copied set) clone's of a contiguous copy (spec[3], its kernel by
 * run_recorded with memory_format=spec[5]) and _unsafe_view's (spec[4]) of that copy in `shape`. The result (new
 * reference); NULL without an error where this path does not take the case (region hooks without a C form; the op
 * sink records by the Python path), NULL with an error on error. */
static PyObject *kw_memory_format, *kw_shape;   /* ("memory_format",), ("shape",): run_recorded's keyword names */

static PyObject *recorded_alias(PyObject *rr, PyObject *spec, PyObject *d, PyObject *shape, int *copied, int arr)
{
    PyObject *probe = PyObject_CallMethodOneArg(d, s_reshape, shape);     /* (_viewable's test: no copy made) */
    if (probe == NULL)
        return NULL;
    PyObject *pb = ((ArrayHead *)probe)->base;
    int view = Py_TYPE(probe) == ndarray_T && pb != NULL && (pb == d || pb == ((ArrayHead *)d)->base);
    Py_DECREF(probe);
    if (!view && PyTuple_GET_SIZE(spec) < 7)
        return NULL;
    *copied = !view;
    if (hooks_read() < 0)
        return NULL;
    int on = hk.range_hooks;
    PyObject *cap = NULL;
    if (on && (cap = range_c()) == NULL)
        return NULL;    /* (an error, or hooks without a C form: the Python formula) */
    Region reg = {NULL, NULL, NULL, 0};
    if (cap != NULL)
        region_open(&reg, cap, Py_NewRef(s_reshape), s_op);
    PyObject *r = NULL;
    if (view) {
        PyObject *bound = PyObject_GetAttr(d, s_reshape), *ar = NULL, *at = NULL;
        PyObject *kv[] = {s_shape, shape};
        if (bound != NULL && (!arr || op_args(&ar, &at, &d, 1, kv, 1) == 0)) {
            PyObject *rest[] = {bound, shape};
            r = call_as_rec(rr, PyTuple_GET_ITEM(spec, 2), ar, at, rest, 2);
        }
        Py_XDECREF(bound);
    } else {    /* run_recorded(CLONE, d, memory_format=contiguous), then run_recorded(UNSAFE_VIEW, c, shape=shape) */
        PyObject *ca[] = {PyTuple_GET_ITEM(spec, 3), d, PyTuple_GET_ITEM(spec, 5)};
        PyObject *c = PyObject_Vectorcall(rr, ca, 2, kw_memory_format);
        if (c != NULL) {
            PyObject *va[] = {PyTuple_GET_ITEM(spec, 4), c, shape};
            r = PyObject_Vectorcall(rr, va, 2, kw_shape);
            Py_DECREF(c);
        }
    }
    if (r == Py_NotImplemented) {   /* nothing run, nothing to record: the Python formula */
        Py_CLEAR(r);
        Py_CLEAR(reg.cap);
        Py_CLEAR(reg.name);
        return NULL;
    }
    if (region_close(&reg) < 0)
        Py_CLEAR(r);
    return r;
}

/* The node's view formula (spec: op.sink_view, (op recorded, kind[, reshape's strided path's ops...])) on gradient g
 * over an ndarray, recorded as its
 * sink formula records it: (the view as a tensor,), a new reference; NULL without an error where this path does not
 * take the case (the op sink is not alone or records by the Python path, a reshape of a gradient that is not
 * C-contiguous: reshape's strided path), NULL with an error on error */
static PyObject *view_sink(PyObject *node, PyObject *g, PyObject *spec)
{
    if (!arrays_ok || !PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 2 || PyTuple_GET_SIZE(spec) > 7)
        return NULL;
    if (hooks_read() < 0 || hk.sink_formulas <= 0)
        return NULL;
    int arr = !hk.sink_only;    /* a detailed profile: each op recorded with its arrays and attributes */
    PyObject *rr = global_of(dispatch_dict, s_run_recorded);        /* borrowed */
    if (rr == NULL)
        return NULL;
    PyObject *d = SLOT(g, off_data), *outer = PyTuple_GET_ITEM(spec, 0), *ar = NULL, *at = NULL;
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(spec, 1));
    if (kind < 0 || kind >= VIEW_KINDS) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "sink_view: an unknown kind");
        return NULL;
    }
    /* the array method, its arguments (owned), the region steps around it (torch's names, as the kernels' op_step) */
    PyObject *meth, *margs[2] = {NULL, NULL}, *steps[2] = {NULL, NULL};
    int nm = 0, ns = 1, copied = 0;
    PyObject *out = NULL, *r = NULL;
    if (kind == VIEW_RESHAPE) {
        PyObject *meta = SLOT(node, off_in_meta), *m0, *shape;
        if (meta == NULL || !PyTuple_Check(meta) || PyTuple_GET_SIZE(meta) < 1 ||
            !PyTuple_Check(m0 = PyTuple_GET_ITEM(meta, 0)) || PyTuple_GET_SIZE(m0) != 2 ||
            !PyTuple_CheckExact(shape = PyTuple_GET_ITEM(m0, 0)))
            return NULL;
        if (!(((ArrayHead *)d)->flags & C_CONTIGUOUS)) {    /* the strided path */
            if (PyTuple_GET_SIZE(spec) < 3 || (r = recorded_alias(rr, spec, d, shape, &copied, arr)) == NULL)
                return NULL;
            goto got;
        }
        meth = s_reshape, margs[nm++] = Py_NewRef(shape), steps[0] = s_view;
        PyObject *kv[] = {s_shape, shape};
        if (arr && op_args(&ar, &at, &d, 1, kv, 1) < 0)
            goto done;
    } else {
        PyObject *attrs = SLOT(node, off_attrs);
        PyObject *kv[4];
        int nk = 0;
        if (kind == VIEW_T)
            meth = s_transpose, steps[0] = s_transpose, steps[1] = s_as_strided, ns = 2;
        else if (attrs == NULL || !PyDict_CheckExact(attrs))
            return NULL;
        else if (kind == VIEW_TRANSPOSE) {
            PyObject *d0 = PyDict_GetItemWithError(attrs, s_dim0), *d1 = d0 ? PyDict_GetItemWithError(attrs, s_dim1) : NULL;
            if (d1 == NULL)
                return NULL;
            meth = s_swapaxes, margs[nm++] = Py_NewRef(d0), margs[nm++] = Py_NewRef(d1), steps[0] = s_as_strided;
            kv[0] = s_dim0, kv[1] = d0, kv[2] = s_dim1, kv[3] = d1, nk = 2;
        } else {
            PyObject *dims = PyDict_GetItemWithError(attrs, s_dims), *inv = dims ? inverse_dims(dims) : NULL;
            if (inv == NULL)
                return NULL;
            meth = s_transpose, margs[nm++] = inv, steps[0] = s_as_strided;
            kv[0] = s_dims, kv[1] = inv, nk = 1;
        }
        if (arr && op_args(&ar, &at, &d, 1, kv, nk) < 0)
            goto done;
    }
    r = recorded_method(rr, outer, steps, ns, d, meth, margs, nm, ar, at);
    if (r == NULL || r == Py_NotImplemented)    /* (NotImplemented: the op sink records by dispatch.py's Python path) */
        goto done;
got:
    if (Py_TYPE(r) != ndarray_T) {
        PyErr_SetString(PyExc_TypeError, "a view formula's result is no NumPy array");
        goto done;
    }
    if (copied) {   /* the view of reshape's copy: tensor_of_result's tensor (a base tensor over the copy) */
        PyObject *t = PyObject_CallOneArg(PyTuple_GET_ITEM(spec, 6), r);
        if (t != NULL) {
            out = PyTuple_Pack(1, t);
            Py_DECREF(t);
        }
        goto done;
    }
    PyObject *t = tensor_over(r);
    r = NULL;
    if (t == NULL)
        goto done;
    if (mark_view_of(t, g) == 0)
        out = PyTuple_Pack(1, t);
    Py_DECREF(t);
done:
    Py_XDECREF(r);
    for (int i = 0; i < nm; i++)
        Py_XDECREF(margs[i]);
    return out;
}

/* ---- addmm's and mm's backward in an observed pass, in C (OpDef.sink_linear) ----
 *
 * addmm's sink formula where the op sink alone records (ops/linalg.py: _addmm_bwd_arrays with sink, then
 * _sink_bias_grad and _called_mm_grads; mm's: _mm_bwd_arrays with _sink_mm_grads, the same without a bias) on 2-D
 * float32/float64 operands of one dtype whose shapes agree, beta and alpha 1: the bias's gradient as sum(dim=0,
 * keepdim=True) and its view to the bias's shape (or the gradient itself where the bias has its shape), then
 * mm_mat1_backward's and mm_mat2_backward's t and mm (a column-major mat2, a transposed weight, gets its gradient in
 * its own layout: t(mm(t(g), a))) -- the same ops recorded in the same order by rr.call_as, their results as
 * tensor_of_result makes them, without the formula's six Python frames.
 * spec (op.sink_linear): (SUM, VIEW, T, MM, _fastmath.add_reduce, linalg._product, numpy, _graph.tensor_of_result,
 * float32, float64 dtypes). */

/* rr.call_as(op, fn, *args) (n args, at most 6) where the op sink alone records (arr 0), else rr.call_as_arrays with
 * the op's arrays (na of them) and attributes (nk key-value pairs in kv): the result, NotImplemented where neither
 * records through rr, or NULL */
static PyObject *call_as_op(PyObject *rr, PyObject *op, int arr, PyObject *const *arrays, int na, PyObject *const *kv,
                            int nk, PyObject *fn, PyObject *const *args, int n)
{
    PyObject *ar = NULL, *at = NULL, *rest[1 + 6];
    if (arr && op_args(&ar, &at, arrays, na, kv, nk) < 0)
        return NULL;
    rest[0] = fn;
    for (int i = 0; i < n && i < 6; i++)
        rest[1 + i] = args[i];
    return call_as_rec(rr, op, ar, at, rest, 1 + (size_t)n);
}

/* rr.call_as(op, fn, *args): call_as_op's op-sink record */
static PyObject *call_as(PyObject *rr, PyObject *op, PyObject *fn, PyObject *const *args, int n)
{
    return call_as_op(rr, op, 0, NULL, 0, NULL, 0, fn, args, n);
}

/* t's record of 2-D array d (its kernel's regions, transpose then as_strided, around the array's transpose); with
 * arr, with its arrays (d,) and no attributes (a detailed profile) */
static PyObject *t_of(PyObject *rr, PyObject *t_op, PyObject *d, int arr)
{
    PyObject *steps[2] = {s_transpose, s_as_strided}, *ar = NULL, *at = NULL;
    if (arr && op_args(&ar, &at, &d, 1, NULL, 0) < 0)
        return NULL;
    return recorded_method(rr, t_op, steps, 2, d, s_transpose, NULL, 0, ar, at);
}

/* r (stolen) through tensor_of_result (tor), NULL passed on */
static PyObject *result_tensor(PyObject *tor, PyObject *r)
{
    if (r == NULL)
        return NULL;
    PyObject *t = PyObject_CallOneArg(tor, r);
    Py_DECREF(r);
    return t;
}

/* spec's product mm(x, y) by call_as (call_as_arrays with arr), NULL passed on (x: borrowed; y: stolen) */
static PyObject *mm_of(PyObject *rr, PyObject *spec, PyObject *x, PyObject *y, int arr)
{
    if (y == NULL)
        return NULL;
    PyObject *args[3] = {PyTuple_GET_ITEM(spec, 6), x, y};
    PyObject *r = call_as_op(rr, PyTuple_GET_ITEM(spec, 3), arr, args + 1, 2, NULL, 0, PyTuple_GET_ITEM(spec, 5),
                             args, 3);
    Py_DECREF(y);
    return r;
}

/* The formula's (gc, ga, gb) as a new tuple; NULL without an error where this path does not take the case (the Python
 * formula runs; nothing was recorded), NULL with an error on error */
static PyObject *linear_sink(PyObject *node, PyObject *g, PyObject *spec)
{
    if (!arrays_ok || !PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 10)
        return NULL;
    if (hooks_read() < 0 || hk.sink_formulas <= 0)
        return NULL;
    int arr = !hk.sink_only;    /* a detailed profile: each op recorded with its arrays and attributes */
    PyObject *rr = global_of(dispatch_dict, s_run_recorded);        /* borrowed */
    if (rr == NULL)
        return NULL;
    PyObject *attrs = SLOT(node, off_attrs), *inputs = SLOT(node, off_inputs), *edges = SLOT(node, off_edges);
    PyObject *meta = SLOT(node, off_in_meta);
    if (attrs != NULL && attrs != Py_None) {     /* beta and alpha 1 or not given (else the Python formula) */
        if (!PyDict_CheckExact(attrs))
            return NULL;
        PyObject *k, *v;
        Py_ssize_t pos = 0;
        while (PyDict_Next(attrs, &pos, &k, &v)) {
            int ov = 0;
            if (!PyLong_CheckExact(v) || PyLong_AsLongAndOverflow(v, &ov) != 1 || ov)
                return NULL;    /* (an int of another value, or a float: the Python formula compares it) */
            if (!PyUnicode_Check(k) || (PyUnicode_CompareWithASCIIString(k, "beta") != 0 &&
                                        PyUnicode_CompareWithASCIIString(k, "alpha") != 0))
                return NULL;
        }
    }
    /* addmm's (bias, mat1, mat2), or mm's (mat1, mat2) */
    Py_ssize_t k = inputs != NULL && PyTuple_CheckExact(inputs) ? PyTuple_GET_SIZE(inputs) : 0;
    if ((k != 3 && k != 2) || edges == NULL || !PyTuple_CheckExact(edges) || PyTuple_GET_SIZE(edges) != k ||
        meta == NULL || !PyTuple_Check(meta) || PyTuple_GET_SIZE(meta) < 1)
        return NULL;
    PyObject *ta = PyTuple_GET_ITEM(inputs, k - 2), *tb = PyTuple_GET_ITEM(inputs, k - 1);
    if (Py_TYPE(ta) != Tensor_T || Py_TYPE(tb) != Tensor_T)
        return NULL;
    PyObject *gd = SLOT(g, off_data), *ad = SLOT(ta, off_data), *bd = SLOT(tb, off_data);
    if (gd == NULL || ad == NULL || bd == NULL || Py_TYPE(gd) != ndarray_T || Py_TYPE(ad) != ndarray_T ||
        Py_TYPE(bd) != ndarray_T)
        return NULL;
    ArrayHead *G = (ArrayHead *)gd, *A = (ArrayHead *)ad, *B = (ArrayHead *)bd;
    if ((G->descr != PyTuple_GET_ITEM(spec, 8) && G->descr != PyTuple_GET_ITEM(spec, 9)) || A->descr != G->descr ||
        B->descr != G->descr || G->nd != 2 || A->nd != 2 || B->nd != 2 ||
        G->dimensions[1] != B->dimensions[1] || G->dimensions[0] != A->dimensions[0])
        return NULL;
    int need[3] = {0, 0, 0};     /* the bias's (addmm only), mat1's, mat2's */
    for (Py_ssize_t i = 0; i < k; i++) {
        PyObject *e = PyTuple_GET_ITEM(edges, i);
        if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) < 1)
            return NULL;
        need[i + 3 - k] = PyTuple_GET_ITEM(e, 0) != Py_None;
    }
    PyObject *m0 = PyTuple_GET_ITEM(meta, 0), *shape = NULL;
    int bias_row = 0;
    if (need[0]) {      /* the bias's gradient: a row summed (its shape (n,)), or the gradient itself */
        if (!PyTuple_Check(m0) || PyTuple_GET_SIZE(m0) != 2 || !PyTuple_CheckExact(shape = PyTuple_GET_ITEM(m0, 0)))
            return NULL;
        Py_ssize_t ns = PyTuple_GET_SIZE(shape);
        Py_ssize_t s0 = ns >= 1 ? PyLong_AsSsize_t(PyTuple_GET_ITEM(shape, 0)) : -1;
        Py_ssize_t s1 = ns == 2 ? PyLong_AsSsize_t(PyTuple_GET_ITEM(shape, 1)) : -1;
        if (PyErr_Occurred()) {     /* (sizes that are not ints: the Python formula) */
            PyErr_Clear();
            return NULL;
        }
        bias_row = ns == 1 && s0 == G->dimensions[1];
        if (!bias_row && !(ns == 2 && s0 == G->dimensions[0] && s1 == G->dimensions[1]))
            return NULL;
    }
    PyObject *tor = PyTuple_GET_ITEM(spec, 7), *t_op = PyTuple_GET_ITEM(spec, 2);
    PyObject *gc = NULL, *ga = NULL, *gb = NULL, *out = NULL;
    int first = 1;      /* (the first recorded call: NotImplemented there means nothing was run) */
    if (need[0] && bias_row) {
        PyObject *args[5] = {gd, zero_obj, Py_None, Py_None, Py_True}, *kv[4] = {s_dim, zero_obj, s_keepdim, Py_True};
        PyObject *sm = call_as_op(rr, PyTuple_GET_ITEM(spec, 0), arr, &gd, 1, kv, 2, PyTuple_GET_ITEM(spec, 4), args,
                                  5);
        if (sm == Py_NotImplemented) {
            Py_DECREF(sm);
            return NULL;
        }
        first = 0;
        if (sm == NULL)
            return NULL;
        PyObject *margs[1] = {shape}, *kv2[2] = {s_shape, shape}, *ar = NULL, *at = NULL;
        PyObject *v = Py_TYPE(sm) == ndarray_T && (!arr || op_args(&ar, &at, &sm, 1, kv2, 1) == 0) ?
            recorded_method(rr, PyTuple_GET_ITEM(spec, 1), NULL, 0, sm, s_reshape, margs, 1, ar, at) : NULL;
        if (v == NULL && !PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "addmm's bias sum is no NumPy array");
        Py_DECREF(sm);
        if ((gc = result_tensor(tor, v)) == NULL)
            return NULL;
    } else if (need[0])
        gc = Py_NewRef(g);
    if (need[1]) {      /* mm_mat1_backward: mm(g, t(b)) */
        PyObject *bt = t_of(rr, t_op, bd, arr);
        if (bt == Py_NotImplemented && first) {
            Py_DECREF(bt);
            Py_XDECREF(gc);
            return NULL;
        }
        first = 0;
        if ((ga = result_tensor(tor, mm_of(rr, spec, gd, bt, arr))) == NULL)
            goto done;
        if (Py_TYPE(ga) != Tensor_T) {
            PyErr_SetString(PyExc_RuntimeError, "addmm's C formula: the op sink stopped recording by C mid-formula");
            goto done;
        }
    }
    if (need[2]) {      /* mm_mat2_backward: mm(t(a), g), or t(mm(t(g), a)) for a column-major b */
        int col = (B->flags & F_CONTIGUOUS) && !(B->flags & C_CONTIGUOUS);
        PyObject *x = t_of(rr, t_op, col ? gd : ad, arr);
        if (x == Py_NotImplemented && first) {
            Py_DECREF(x);
            Py_XDECREF(gc);
            return NULL;
        }
        if (x == NULL)
            goto done;
        PyObject *args[3] = {PyTuple_GET_ITEM(spec, 6), x, col ? ad : gd};
        PyObject *p = call_as_op(rr, PyTuple_GET_ITEM(spec, 3), arr, args + 1, 2, NULL, 0, PyTuple_GET_ITEM(spec, 5),
                                 args, 3);
        Py_DECREF(x);
        if (col && p != NULL) {     /* t of the product */
            PyObject *pt = t_of(rr, t_op, p, arr);
            Py_DECREF(p);
            p = pt;
        }
        if ((gb = result_tensor(tor, p)) == NULL)
            goto done;
        if (Py_TYPE(gb) != Tensor_T) {
            PyErr_SetString(PyExc_RuntimeError, "addmm's C formula: the op sink stopped recording by C mid-formula");
            goto done;
        }
    }
    out = k == 3 ? PyTuple_Pack(3, gc ? gc : Py_None, ga ? ga : Py_None, gb ? gb : Py_None) :
                   PyTuple_Pack(2, ga ? ga : Py_None, gb ? gb : Py_None);
done:
    Py_XDECREF(gc);
    Py_XDECREF(ga);
    Py_XDECREF(gb);
    if (out == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_RuntimeError, "addmm's C formula failed without an error");
    return out;
}

/* _run_formula's work for the node (a plain one, one real gradient g, not versions-checked here): the phase and
 * sequence number set, the node's region opened where range hooks listen, its sink formula (OpDef.sink_backward,
 * where the op sink or op_arrays alone observes and no graph is recorded) or its backward formula; the region
 * left open in `reg` (the hook's C form, range_c) or in `held` for the caller to close once the gradients are passed
 * on, or closed here on an error */
static PyObject *observed_formula(PyObject *node, PyObject *op, PyObject **a, size_t na, PyObject *held, Region *reg)
{
    PyObject *seq = SLOT(node, off_seq), *rp = NULL, *token = NULL, *out = NULL, *cap = NULL;
    if (seq == NULL || enter_backward(seq) < 0)
        goto finish;
    if ((cap = range_c()) == NULL && PyErr_Occurred())
        goto finish;
    if (cap == NULL && (rp = range_pair()) == NULL && PyErr_Occurred())
        goto finish;
    if (cap != NULL) {
        PyObject *name = node_name(node, op);
        if (name == NULL) {
            Py_CLEAR(cap);      /* (no region opened) */
            goto finish;
        }
        region_open(reg, cap, name, s_backward);
    } else if (rp != NULL) {
        PyObject *name = node_name(node, op);
        if (name == NULL) {
            Py_CLEAR(rp);       /* (no region opened) */
            goto finish;
        }
        PyObject *a[] = {name, s_backward};
        token = call(PyTuple_GET_ITEM(rp, 0), a, 2);
        Py_DECREF(name);
        if (token == NULL) {
            Py_CLEAR(rp);       /* (no region opened) */
            goto finish;
        }
    }
    if (SLOT(node, off_versions) != NULL && SLOT(node, off_versions) != Py_None) {
        int same = versions_unchanged(node);
        if (same < 0)
            goto finish;
        if (!same) {
            PyObject *a[] = {node, op};
            PyObject *r = call(check_saved, a, 2);
            if (r == NULL)
                goto finish;
            Py_DECREF(r);
        }
    }
    if (hooks_read() < 0)
        goto finish;
    int sb_on = hk.sink_formulas;
    if (sb_on > 0) {
        PyObject *gv = state_get(state, s_grad_enabled);
        int ge = gv == NULL ? -1 : truth(gv);
        Py_XDECREF(gv);
        sb_on = ge < 0 ? -1 : !ge;
    }
    if (sb_on < 0)
        goto finish;
    if (sb_on) {
        PyObject *sv = op_attr(op, OP_SINK_VIEW);
        if (sv == NULL)
            goto finish;
        out = sv != Py_None && na == 2 ? view_sink(node, a[1], sv) : NULL;
        if (out == NULL && !PyErr_Occurred() && sv == Py_None && na == 2) {
            PyObject *sl = op_attr(op, OP_SINK_LINEAR);
            if (sl != NULL && sl != Py_None)
                out = linear_sink(node, a[1], sl);
            Py_XDECREF(sl);
        }
        Py_DECREF(sv);
        if (out != NULL || PyErr_Occurred())
            goto finish;
        PyObject *sb = op_attr(op, OP_SINK_BACKWARD);
        if (sb == NULL)
            goto finish;
        if (sb != Py_None)
            out = call(sb, a, na);
        else
            out = Py_NewRef(Py_None);
        Py_DECREF(sb);
        if (out == NULL)
            goto finish;
        if (out == Py_None)
            Py_CLEAR(out);
        else
            goto finish;
    }
    PyObject *bw = op_attr(op, OP_BACKWARD);
    if (bw == NULL)
        goto finish;
    out = call(bw, a, na);
    Py_DECREF(bw);
finish:;
    /* the region handed to `held`, or closed now on an error; st.phase = "forward" */
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    int ok = 1;
    if (rp != NULL) {
        PyObject *pair = out != NULL && et == NULL ? PyTuple_Pack(2, PyTuple_GET_ITEM(rp, 1), token) : NULL;
        if (pair != NULL) {
            ok = PyList_Append(held, pair) == 0;
            Py_DECREF(pair);
        } else {
            ok = 0;
            PyObject *r = PyObject_CallOneArg(PyTuple_GET_ITEM(rp, 1), token);
            Py_XDECREF(r);
        }
    }
    if (reg->cap != NULL && (out == NULL || et != NULL) && region_close(reg) < 0)
        ok = 0;     /* (closed now on an error, as the pair is) */
    Py_XDECREF(rp);
    Py_XDECREF(token);
    return leave_backward(out, ok, et, ev, tb);
}

#define MAX_OUTPUTS 8

/* engine._run_node's work for a plain node with one real gradient, that of its first output (its other outputs, if
 * any, are ones that never carry one, OpDef.nondiff_outputs: dropout's mask, layer_norm's statistics, attention's
 * probabilities; their gradients None, as the formulas take them): in a quiet pass its op's quiet formula (when it
 * has one), else (observed) _run_formula's; the gradients per edge (new reference), or NULL with *taken = 0 where
 * the case is not this one (nothing has run), or NULL with an error set */
static PyObject *plain_node(PyObject *node, PyObject *buf, PyObject *held, Region *reg, int quiet, int *taken)
{
    *taken = 0;
    Py_ssize_t nb = PyList_GET_SIZE(buf);
    if (nb < 1 || nb > MAX_OUTPUTS)
        return NULL;
    PyObject *g = PyList_GET_ITEM(buf, 0);
    if (g == Py_None || Py_TYPE(g) != Tensor_T)
        return NULL;
    PyObject *d = SLOT(g, off_data);
    if (d == NULL || Py_TYPE(d) != ndarray_T)
        return NULL;
    PyObject *op = SLOT(node, off_op), *edges = SLOT(node, off_edges), *in_meta = SLOT(node, off_in_meta);
    if (op == NULL || edges == NULL || in_meta == NULL || !(PyTuple_Check(edges) || PyList_Check(edges)) ||
        !(PyTuple_Check(in_meta) || PyList_Check(in_meta)))     /* (tuples, or the general make_node's lists) */
        return NULL;
    /* the formula's arguments: the node, then a gradient per output */
    PyObject *a[MAX_OUTPUTS + 1] = {node, g};
    size_t na = 1 + (size_t)nb;
    if (nb > 1) {
        PyObject *nondiff = op_attr(op, OP_NONDIFF);
        if (nondiff == NULL)
            return NULL;
        int ok = PyTuple_Check(nondiff);
        for (Py_ssize_t i = 1; ok > 0 && i < nb; i++) {
            PyObject *k = PyLong_FromSsize_t(i);
            ok = k == NULL ? -1 : PyList_GET_ITEM(buf, i) != Py_None ? 0 : PySequence_Contains(nondiff, k);
            Py_XDECREF(k);
            a[1 + i] = Py_None;
        }
        Py_DECREF(nondiff);
        if (ok <= 0)
            return NULL;    /* (-1: an error set) */
    }
    PyObject *dt = PyObject_GetAttr(d, s_dtype);
    if (dt == NULL)
        return NULL;
    PyObject *kind = PyObject_GetAttr(dt, s_kind);
    Py_DECREF(dt);
    if (kind == NULL)
        return NULL;
    int cplx = PyUnicode_Compare(kind, s_c) == 0;
    Py_DECREF(kind);
    if (cplx)               /* a complex gradient: _run_complex's, or the op's complex formula (rare) */
        return NULL;
    PyObject *qb = NULL;
    if (quiet) {
        if ((qb = op_attr(op, OP_QUIET)) == NULL)
            return NULL;
        if (qb == Py_None) {    /* (_run_node: the dispatched formula, by _run_formula) */
            Py_DECREF(qb);
            return NULL;
        }
    }
    *taken = 1;
    PyObject *out = NULL;
    Py_INCREF(op);          /* (held: the formula runs Python, which could rebind the node's fields) */
    Py_INCREF(edges);
    Py_INCREF(in_meta);
    if (!quiet) {
        if ((out = observed_formula(node, op, a, na, held, reg)) == NULL)
            goto done;
        goto got;
    }
    if (SLOT(node, off_versions) != NULL && SLOT(node, off_versions) != Py_None) {
        int same = versions_unchanged(node);
        if (same < 0)
            goto done;
        if (!same) {        /* _check_saved raises torch's error (node.check_versions) */
            PyObject *a[] = {node, op};
            PyObject *r = call(check_saved, a, 2);
            if (r == NULL)
                goto done;
            Py_DECREF(r);
        }
    }
    {
        out = call(qb, a, na);
    }
    if (out == NULL)
        goto done;
    if (out == Py_None) {   /* the formula does not take this case: the dispatched one */
        Py_DECREF(out);
        PyObject *zero = PyLong_FromSsize_t((Py_ssize_t)na - 2);     /* the missing gradients */
        if (zero == NULL)
            goto done;
        PyObject *a[] = {node, op, buf, zero, held};
        out = call(run_formula, a, 5);
        Py_DECREF(zero);
        if (out == NULL)
            goto done;
    }
got:
    if (!PyTuple_CheckExact(out)) {
        PyObject *t = (PyList_Check(out) || PyTuple_Check(out)) ? PySequence_Tuple(out) : PyTuple_Pack(1, out);
        Py_DECREF(out);
        if ((out = t) == NULL)
            goto done;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(edges), k = PyTuple_GET_SIZE(out);
    if (k < n) {            /* out + (None,) * (n - k) */
        PyObject *t = PyTuple_New(n);
        if (t == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *v = i < k ? PyTuple_GET_ITEM(out, i) : Py_None;
            Py_INCREF(v);
            PyTuple_SET_ITEM(t, i, v);
        }
        Py_DECREF(out);
        out = t;
        k = n;
    }
    /* every gradient has its input's shape and dtype, and no anomaly mode: `out` as it is, else _fix_grads */
    int fix = 0;
    Py_ssize_t m = k < n ? k : n;
    if (PySequence_Fast_GET_SIZE(in_meta) < m)
        m = PySequence_Fast_GET_SIZE(in_meta);
    for (Py_ssize_t i = 0; i < m && !fix; i++) {
        PyObject *gi = PyTuple_GET_ITEM(out, i), *e = PySequence_Fast_GET_ITEM(edges, i);
        if (gi == Py_None || !PyTuple_Check(e) || PyTuple_GET_SIZE(e) < 1 || PyTuple_GET_ITEM(e, 0) == Py_None)
            continue;
        PyObject *meta = PySequence_Fast_GET_ITEM(in_meta, i);
        PyObject *gd = Py_TYPE(gi) == Tensor_T ? SLOT(gi, off_data) : NULL;
        if (gd == NULL || !PyTuple_CheckExact(meta) || PyTuple_GET_SIZE(meta) != 2) {
            fix = 1;        /* (not a tensor of ours: _fix_grads reads its shape and dtype its own way) */
            break;
        }
        PyObject *shape = PyObject_GetAttr(gd, s_shape);
        if (shape == NULL)
            goto fail;
        int eq = PyObject_RichCompareBool(shape, PyTuple_GET_ITEM(meta, 0), Py_EQ);
        Py_DECREF(shape);
        if (eq < 0)
            goto fail;
        if (eq) {
            PyObject *gdt = PyObject_GetAttr(gd, s_dtype);
            if (gdt == NULL)
                goto fail;
            eq = PyObject_RichCompareBool(gdt, PyTuple_GET_ITEM(meta, 1), Py_EQ);
            Py_DECREF(gdt);
            if (eq < 0)
                goto fail;
        }
        fix = !eq;
    }
    if (!fix) {
        PyObject *users = PyDict_GetItemWithError(hooks_dict, s_anomaly_users);     /* borrowed */
        if (users == NULL && PyErr_Occurred())
            goto fail;
        int on = users != NULL ? truth(users) : 0;
        if (on > 0) {
            on = attr_truth(state, s_anomaly);
            if (on > 0)
                on = attr_truth(state, s_anomaly_check_nan);
        }
        if (on < 0)
            goto fail;
        fix = on;
    }
    if (fix) {
        PyObject *a[] = {node, out};
        PyObject *r = call(fix_grads, a, 2);
        Py_DECREF(out);
        out = r;
    }
done:
    Py_DECREF(op);
    Py_DECREF(edges);
    Py_DECREF(in_meta);
    Py_XDECREF(qb);
    return out;
fail:
    Py_CLEAR(out);
    goto done;
}

/* Whether _store_grad would take gradient g's memory for leaf t rather than copy it: the leaf has no .grad yet and g
 * is a plain tensor the loop alone holds (its only reference is the caller's), of a writeable NumPy array no one else
 * was handed whose memory is its own or a view's of a buffer nothing else holds (engine._shared_view). *own is set
 * where g itself may become the .grad (no base, no grad_fn, no requires_grad: AccumulateGrad's steal); else .grad is
 * a detached view of its array. 1 when so, 0 when not this case, -1 on error */
static int stealable(PyObject *t, PyObject *g, PyObject *handed, int *own)
{
    if (Py_REFCNT(g) != 1 || Py_TYPE(g) != Tensor_T)
        return 0;
    PyObject *d = SLOT(g, off_data);
    if (d == NULL || Py_TYPE(d) != ndarray_T || !PySet_Check(handed))
        return 0;
    PyObject *v = PyObject_GetAttr(t, s_grad);
    if (v == NULL)
        return -1;
    Py_DECREF(v);
    if (v != Py_None)
        return 0;
    PyObject *bt = PyObject_GetAttr(g, s_base), *fn = bt ? PyObject_GetAttr(g, s_grad_fn) : NULL;
    int r = fn == NULL ? -1 : bt != Py_None || fn != Py_None ? 0 : attr_truth(g, s_requires_grad);
    Py_XDECREF(fn);
    if (r < 0) {
        Py_XDECREF(bt);
        return -1;
    }
    *own = r == 0;
    PyObject *base = PyObject_GetAttr(d, s_nbase);
    if (base == NULL) {
        Py_DECREF(bt);
        return -1;
    }
    /* a view (a transposed product): its memory is no one else's when its base's only holders are the view, the
     * reference just taken and, where g's base tensor is held by g alone, that tensor's array slot */
    int shared = 0;
    if (base != Py_None) {
        Py_ssize_t holders = Py_REFCNT(base) - 2;
        if (bt != Py_None && Py_TYPE(bt) == Tensor_T && SLOT(bt, off_data) == base && Py_REFCNT(bt) == 2)
            holders--;
        shared = holders > 0;
    }
    Py_DECREF(base);
    Py_DECREF(bt);
    if (shared)
        return 0;
    PyObject *flags = PyObject_GetAttr(d, s_flags);
    if (flags == NULL)
        return -1;
    r = attr_truth(flags, s_writeable);
    Py_DECREF(flags);
    if (r <= 0)
        return r;
    PyObject *id = PyLong_FromVoidPtr(d);
    if (id == NULL)
        return -1;
    r = PySet_Contains(handed, id);
    Py_DECREF(id);
    return r < 0 ? -1 : !r;
}

/* leaf t's .grad set to v, whose array is marked handed out (_store_grad's handed.add); 0, or -1 on error */
static int hand(PyObject *t, PyObject *v, PyObject *handed)
{
    PyObject *id = PyLong_FromVoidPtr(SLOT(v, off_data));
    if (id == NULL)
        return -1;
    int r = PyObject_SetAttr(t, s_grad, v) < 0 || PySet_Add(handed, id) < 0 ? -1 : 0;
    Py_DECREF(id);
    return r;
}

static PyObject *sink_op(PyObject *name, PyObject **run);

/* leaf t's .grad a detached view of g's array: view (the array's view, new reference, stolen) as a tensor marked a
 * view of g (mark_view) and detached, as _store_grad makes it. 1, or -1 on error */
static int hand_view(PyObject *t, PyObject *g, PyObject *view, PyObject *handed)
{
    PyObject *mv = PyDict_GetItemWithError(dispatch_dict, s_mark_view);     /* borrowed */
    if (mv == NULL) {
        Py_XDECREF(view);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "dispatch.mark_view is missing");
        return -1;
    }
    if (view != NULL && Py_TYPE(view) != ndarray_T) {
        PyErr_SetString(PyExc_TypeError, "a gradient's detached view is no NumPy array");
        Py_CLEAR(view);
    }
    PyObject *v = tensor_over(view);
    if (v == NULL)
        return -1;
    int r;
    if (arrays_ok)      /* mark_view in C */
        r = mark_view_of(v, g);
    else {
        PyObject *b[] = {v, g};
        PyObject *m = PyObject_Vectorcall(mv, b, 2, NULL);
        r = m == NULL ? -1 : 0;
        Py_XDECREF(m);
    }
    r = r < 0 || PyObject_SetAttr(v, s_detached, Py_True) < 0 || hand(t, v, handed) < 0 ? -1 : 1;
    Py_DECREF(v);
    return r;
}

/* _store_grad's commonest cases, in a quiet pass (stealable): .grad is g itself (AccumulateGrad's steal), or a
 * detached view of its array. 1 when done, 0 when not this case (nothing changed), -1 on error */
static int store_fast(PyObject *t, PyObject *g, PyObject *handed)
{
    int own, r = stealable(t, g, handed, &own);
    if (r <= 0)
        return r;
    if (own)
        return hand(t, g, handed) < 0 ? -1 : 1;
    return hand_view(t, g, PyObject_CallMethodNoArgs(SLOT(g, off_data), s_view), handed);
}

/* The same cases in an observed pass where the sink formulas run (a default profile, or a detailed one taking ops on
 * arrays): .grad is a detached view of g's array made by detach's kernel, run and recorded by dispatch.run_recorded
 * inside the AccumulateGrad region observed_store opened, as _store_grad's sink branch makes it. 1 when done, 0 when
 * not this case (nothing changed), -1 on error */
static int observed_store_fast(PyObject *t, PyObject *g, PyObject *handed)
{
    int own, r = stealable(t, g, handed, &own);
    if (r <= 0)
        return r;
    PyObject *rr, *detach = sink_op(s_detach, &rr);
    if (detach == NULL)
        return PyErr_Occurred() ? -1 : 0;
    /* detach's kernel (ops/misc.py: the array's view() in the region "detach"), here where the op sink alone records
     * through rr (recorded_method), else by rr */
    PyObject *view = NULL;
    if (hooks_read() < 0) {
        Py_DECREF(detach);
        return -1;
    }
    if (hk.sink_only) {
        PyObject *steps[] = {s_detach};
        view = recorded_method(rr, detach, steps, 1, SLOT(g, off_data), s_view, NULL, 0, NULL, NULL);
        if (view == Py_NotImplemented)
            Py_CLEAR(view);
        else if (view == NULL) {
            Py_DECREF(detach);
            return -1;
        }
    }
    if (view == NULL && !PyErr_Occurred()) {
        PyObject *a[] = {detach, SLOT(g, off_data)};
        view = PyObject_Vectorcall(rr, a, 2, NULL);
    }
    Py_DECREF(detach);
    return hand_view(t, g, view, handed);
}

/* engine._accumulate's work in an observed pass for a leaf without tensor hooks or post-accumulate hooks: the phase
 * ("backward", seq -1: linked to no forward op, as torch's) and the region "tensorlib::autograd::AccumulateGrad"
 * where range hooks listen, around _store_grad (called as a quiet pass calls it, with `refs` measured from C); the
 * region closed and the phase back to "forward" whatever happens, the first error kept. A new reference to
 * _store_grad's result, or NULL with an error set */
static PyObject *observed_store(PyObject *t, PyObject *g, PyObject *create_graph, PyObject *handed)
{
    PyObject *rp = NULL, *token = NULL, *out = NULL, *cap = NULL;
    Region reg = {NULL, NULL, NULL, 0};
    if (enter_backward(minus_one) < 0)
        goto finish;
    if ((cap = range_c()) == NULL && PyErr_Occurred())
        goto finish;
    if (cap != NULL)
        region_open(&reg, cap, Py_NewRef(s_acc_region), s_backward);
    else if ((rp = range_pair()) == NULL && PyErr_Occurred())
        goto finish;
    else if (rp != NULL) {
        PyObject *a[] = {s_acc_region, s_backward};
        if ((token = call(PyTuple_GET_ITEM(rp, 0), a, 2)) == NULL) {
            Py_CLEAR(rp);       /* (no region opened) */
            goto finish;
        }
    }
    int done = create_graph == Py_False ? observed_store_fast(t, g, handed) : 0;
    if (done > 0)
        out = Py_NewRef(Py_None);
    else if (done == 0) {
        PyObject *a[] = {t, g, create_graph, handed, Py_False, loop_refs};
        out = call(store_grad, a, 6);
    }
finish:;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    int ok = 1;
    if (rp != NULL) {
        PyObject *r = PyObject_CallOneArg(PyTuple_GET_ITEM(rp, 1), token);
        ok = r != NULL;
        Py_XDECREF(r);
    }
    if (region_close(&reg) < 0)
        ok = 0;
    Py_XDECREF(rp);
    Py_XDECREF(token);
    return leave_backward(out, ok, et, ev, tb);
}

/* A tensor over array r (a kernel's result): a plain tensor holding it where r is an ndarray, else
 * dispatch.tensor_of's (a NumPy scalar made a 0-d array). Steals r. */
static PyObject *tensor_over(PyObject *r)
{
    if (r == NULL)
        return NULL;
    if (Py_TYPE(r) != ndarray_T) {
        PyObject *f = PyDict_GetItemWithError(dispatch_dict, s_tensor_of);     /* borrowed */
        PyObject *t = f != NULL ? PyObject_CallOneArg(f, r) : NULL;
        if (f == NULL && !PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "dispatch.tensor_of is missing");
        Py_DECREF(r);
        return t;
    }
    PyObject *t = Tensor_T->tp_alloc(Tensor_T, 0);
    if (t == NULL) {
        Py_DECREF(r);
        return NULL;
    }
    SLOT(t, off_data) = r;
    return t;
}

/* Op `name` (new reference) and dispatch.run_recorded (*run, borrowed), where the sink formulas run (dispatch.
 * _sink_formulas): the engine's own recorded ops. NULL without an error where they do not run, with one on error. */
static PyObject *sink_op(PyObject *name, PyObject **run)
{
    if (hooks_read() < 0 || !hk.sink_formulas)
        return NULL;
    PyObject *rr = PyDict_GetItemWithError(dispatch_dict, s_run_recorded);         /* borrowed */
    PyObject *at = rr != NULL ? PyDict_GetItemWithError(dispatch_dict, s_op_at) : NULL;
    if (at == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "dispatch.run_recorded or op_at is missing");
        return NULL;
    }
    *run = rr;
    return PyObject_CallOneArg(at, name);
}

/* 1 when x and g are tensors of ours over NumPy arrays of one shape and dtype, 0 when not, -1 on error */
static int same_arrays(PyObject *x, PyObject *g)
{
    if (Py_TYPE(x) != Tensor_T || Py_TYPE(g) != Tensor_T)
        return 0;
    PyObject *xd = SLOT(x, off_data), *gd = SLOT(g, off_data);
    if (xd == NULL || gd == NULL || Py_TYPE(xd) != ndarray_T || Py_TYPE(gd) != ndarray_T)
        return 0;
    PyObject *names[] = {s_shape, s_dtype};
    for (int i = 0; i < 2; i++) {
        PyObject *a = PyObject_GetAttr(xd, names[i]), *b = a != NULL ? PyObject_GetAttr(gd, names[i]) : NULL;
        int eq = b != NULL ? PyObject_RichCompareBool(a, b, Py_EQ) : -1;
        Py_XDECREF(a);
        Py_XDECREF(b);
        if (eq <= 0)
            return eq;
    }
    return 1;
}

#define WRITEABLE 0x0400        /* NPY_ARRAY_WRITEABLE */

/* torch's InputBuffer rule for summing a second gradient g into x, the gradient a buffer holds (create_graph off):
 * in place (x.add_(g)) where x is the buffer's alone -- its only reference the buffer's, a plain tensor (no view
 * mark) over a dense writeable NumPy array that only x holds and that owns its memory -- else out of place (x + g).
 * (An array over another's memory is left out even where torch would take it, a transposed product's: whether a
 * view's base tensor is alive differs between the dispatched and the sink formulas, and both must decide alike.)
 * engine._accumulable is the Python loop's. 1, 0, or -1 on error. */
static int accumulable(PyObject *x)
{
    if (!arrays_ok || Py_REFCNT(x) != 1 || Py_TYPE(x) != Tensor_T)
        return 0;
    PyObject *xd = SLOT(x, off_data);
    if (xd == NULL || Py_TYPE(xd) != ndarray_T || Py_REFCNT(xd) != 1)
        return 0;
    ArrayHead *h = (ArrayHead *)xd;
    if (!(h->flags & WRITEABLE) || !(h->flags & (C_CONTIGUOUS | F_CONTIGUOUS)))
        return 0;
    if (h->base != NULL)
        return 0;
    PyObject *bt = PyObject_GetAttr(x, s_base);
    if (bt == NULL)
        return -1;
    Py_DECREF(bt);
    return bt == Py_None;
}

/* x + g, two gradients of one output, without recording a graph (create_graph off), where both are NumPy arrays of
 * one shape and dtype -- into x where `inplace` (accumulable(x): torch's add_), else a new sum: in a quiet pass by
 * NumPy (what the dispatched kernel computes); in an observed one where the sink formulas run, add_'s or add's
 * kernel run and recorded by dispatch.run_recorded inside the node's phase and sequence number (engine._sum_in_node
 * and _sum_grads, whose Python runs the other cases). A new reference (x itself in place); NULL without an error
 * where the case is not this one. */
static PyObject *sum_fast(PyObject *node, PyObject *x, PyObject *g, int quiet, int inplace)
{
    int ok = same_arrays(x, g);
    if (ok <= 0)
        return NULL;
    PyObject *xd = SLOT(x, off_data), *gd = SLOT(g, off_data);
    if (quiet) {
        if (!inplace)
            return tensor_over(PyNumber_Add(xd, gd));
        PyObject *r = PyNumber_InPlaceAdd(xd, gd);      /* (xd's own ufunc, out=xd: the same sum) */
        if (r == NULL)
            return NULL;
        Py_DECREF(r);
        return Py_NewRef(x);
    }
    PyObject *rr, *add = sink_op(inplace ? s_add_ : s_add, &rr);
    if (add == NULL)
        return NULL;
    PyObject *seq = SLOT(node, off_seq), *r = NULL;
    if (seq == NULL)
        PyErr_SetString(PyExc_AttributeError, "a node without its seq");
    else if (enter_backward(seq) == 0) {
        /* add's kernel on two arrays of one shape and dtype is np.add(x, g), add_'s np.add(x, g, out=x): run as
         * that ufunc's call where the op sink alone records (rr.call_as, no kernel frame), else run_recorded */
        PyObject *ua[] = {xd, gd, xd};
        r = call_as(rr, add, np_add, ua, inplace ? 3 : 2);
        if (r == Py_NotImplemented) {
            Py_DECREF(r);
            PyObject *a[] = {add, xd, gd};
            r = PyObject_Vectorcall(rr, a, 3, NULL);
        }
    }
    Py_DECREF(add);
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    r = leave_backward(r, 1, et, ev, tb);
    if (r == NULL)
        return NULL;
    if (inplace) {      /* (the in-place kernel's result, None) */
        Py_DECREF(r);
        return Py_NewRef(x);
    }
    return tensor_over(r);
}

/* node.release() for a plain node: its saved values dropped, `freed` set (as Node.release); others call theirs */
static int release(PyObject *node, int is_plain)
{
    if (!is_plain) {
        PyObject *r = PyObject_CallMethodNoArgs(node, s_release);
        Py_XDECREF(r);
        return r == NULL ? -1 : 0;
    }
    Py_ssize_t o[] = {off_inputs, off_out_data, off_out_refs};
    for (int i = 0; i < 3; i++) {
        PyObject *v = SLOT(node, o[i]);
        Py_INCREF(Py_None);
        SLOT(node, o[i]) = Py_None;
        Py_XDECREF(v);
    }
    return PyObject_SetAttr(node, s_freed, Py_True);
}

/* drain(ready, acc_ready, deps, buffers, handed, quiet, create_graph, retain_graph, held): engine._drain with
 * nothing captured (see the top of this file). `ready`: the heap's (-seq, counter, node, buffer) entries; `acc_ready`:
 * the (AccumulateGrad, gradient) pairs ready to run, in order. Both lists are emptied: their entries are drain's. */
static PyObject *mod_drain(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (run_node == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tensorlib.autograd._cengine is not configured");
        return NULL;
    }
    if (nargs != 9 || !PyList_Check(args[0]) || !PyList_Check(args[1]) || !PyDict_CheckExact(args[2]) ||
        !PyDict_CheckExact(args[3]) || !PyList_Check(args[8])) {
        PyErr_SetString(PyExc_TypeError, "drain(ready: list, acc_ready: list, deps: dict, buffers: dict, handed, "
                                         "quiet, create_graph, retain_graph, held: list)");
        return NULL;
    }
    PyObject *deps = args[2], *buffers = args[3], *handed = args[4], *held = args[8];
    PyObject *create_graph = args[6];
    int quiet = PyObject_IsTrue(args[5]), retain = PyObject_IsTrue(args[7]);
    if (quiet < 0 || retain < 0)
        return NULL;
    Heap heap = {NULL, 0, 0};
    Queue acc = {NULL, 0, 0, 0};
    Py_ssize_t counter = 0;
    PyObject *nxt = NULL, *nxt_buf = NULL;      /* the ready node that runs next, kept out of the heap */
    PyObject *node = NULL, *buf = NULL, *in_grads = NULL;
    Region reg = {NULL, NULL, NULL, 0};               /* the running node's region, by the hook's C form (range_c) */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(args[0]); i++) {
        PyObject *e = PyList_GET_ITEM(args[0], i);
        if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != 4) {
            PyErr_SetString(PyExc_TypeError, "drain: a ready entry is (-seq, counter, node, buffer)");
            goto error;
        }
        Entry en;
        if (node_seq(PyTuple_GET_ITEM(e, 2), &en.seq) < 0)
            goto error;
        en.counter = PyLong_AsSsize_t(PyTuple_GET_ITEM(e, 1));
        if (en.counter == -1 && PyErr_Occurred())
            goto error;
        if (en.counter >= counter)
            counter = en.counter + 1;
        en.node = Py_NewRef(PyTuple_GET_ITEM(e, 2));
        en.buf = Py_NewRef(PyTuple_GET_ITEM(e, 3));
        if (heap_push(&heap, en) < 0)
            goto error;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(args[1]); i++) {
        PyObject *e = PyList_GET_ITEM(args[1], i);
        if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != 2) {
            PyErr_SetString(PyExc_TypeError, "drain: a ready leaf is (AccumulateGrad, gradient)");
            goto error;
        }
        PyObject *g = PyTuple_GET_ITEM(e, 1);
        if (queue_push(&acc, Py_NewRef(PyTuple_GET_ITEM(e, 0)), g == Py_None ? NULL : Py_NewRef(g)) < 0)
            goto error;
    }
    /* taken over: the caller's lists hold no gradient from here on (as _drain pops its heap and deque) */
    if (PyList_SetSlice(args[0], 0, PyList_GET_SIZE(args[0]), NULL) < 0 ||
        PyList_SetSlice(args[1], 0, PyList_GET_SIZE(args[1]), NULL) < 0)
        goto error;
    for (;;) {
        if (acc.n) {        /* a leaf's sink: no edges, nothing saved to release, no hooks of its own */
            PyObject *an = acc.a[2 * acc.head], *g = acc.a[2 * acc.head + 1];
            acc.head++, acc.n--;
            if (acc.n == 0)
                acc.head = 0;
            if (g == NULL) {
                Py_DECREF(an);
                continue;
            }
            PyObject *ref = Py_TYPE(an) == Acc_T || PyObject_TypeCheck(an, Acc_T) ? SLOT(an, off_ref) : NULL;
            PyObject *t = ref != NULL ? PyObject_CallNoArgs(ref) : NULL;
            if (t == NULL) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_TypeError, "drain: a leaf's sink without its leaf's reference");
                Py_DECREF(an);
                Py_DECREF(g);
                goto error;
            }
            int store = t != Py_None;     /* a live leaf without hooks: the store alone, or with its region */
            if (store) {
                int h = attr_truth(t, s_hooks);
                int p = h == 0 ? attr_truth(t, s_post_acc_hooks) : 0;
                if (h < 0 || p < 0) {
                    Py_DECREF(an);
                    Py_DECREF(g);
                    Py_DECREF(t);
                    goto error;
                }
                store = !h && !p;
            }
            PyObject *r;
            if (store && !quiet) {
                Py_DECREF(an);
                r = observed_store(t, g, create_graph, handed);
            } else if (store) {        /* the store alone */
                Py_DECREF(an);
                int done = store_fast(t, g, handed);
                if (done < 0) {
                    Py_DECREF(t);
                    Py_DECREF(g);
                    goto error;
                }
                if (done) {
                    Py_DECREF(t);
                    Py_DECREF(g);
                    continue;
                }
                PyObject *a[] = {t, g, Py_False, handed, Py_True, loop_refs};
                r = call(store_grad, a, 6);
            } else {
                Py_DECREF(t);
                t = NULL;
                PyObject *a[] = {an, g, create_graph, handed, quiet ? Py_True : Py_False};
                r = call(accumulate_fn, a, 5);
                Py_DECREF(an);
            }
            Py_XDECREF(t);
            Py_DECREF(g);
            if (r == NULL)
                goto error;
            Py_DECREF(r);
            continue;
        }
        if (nxt != NULL) {
            node = nxt, buf = nxt_buf;
            nxt = nxt_buf = NULL;
        } else if (heap.n) {
            Entry e = heap_pop(&heap);
            node = e.node, buf = e.buf;
        } else
            break;
        if (!PyList_Check(buf)) {
            PyErr_SetString(PyExc_TypeError, "drain: a node's gradients are a list");
            goto error;
        }
        int is_plain = plain(node);
        if (is_plain < 0)
            goto error;
        PyObject *nh = NULL;
        if (!is_plain) {
            int th = attr_truth(node, s_tensor_hooks);
            if (th == 0)
                th = attr_truth(node, s_retained);
            if (th < 0)
                goto error;
            if (th) {
                PyObject *a[] = {node, buf, create_graph, Py_None, Py_None, handed};
                PyObject *r = call(hooks_and_captures, a, 6);
                if (r == NULL)
                    goto error;
                Py_DECREF(r);
            }
            if ((nh = PyObject_GetAttr(node, s_node_hooks)) == NULL)
                goto error;
        }
        int taken = 0;
        if (is_plain) {
            in_grads = plain_node(node, buf, held, &reg, quiet, &taken);
            if (in_grads == NULL && (taken || PyErr_Occurred())) {
                Py_XDECREF(nh);
                goto error;
            }
        }
        if (!taken) {
            PyObject *a[] = {node, buf, Py_None, Py_True, quiet ? Py_True : Py_False, held};
            in_grads = call(nh == NULL || nh == Py_None ? run_node : run_hooked, a, 6);
        }
        Py_XDECREF(nh);
        if (in_grads == NULL)
            goto error;
        if (!retain && ((SLOT(node, off_out_data) != NULL && SLOT(node, off_out_data) != Py_None) ||
                        (SLOT(node, off_inputs) != NULL && SLOT(node, off_inputs) != Py_None) || !is_plain)) {
            /* (a node other than a plain one decides itself whether it has something to release) */
            int rel = 1;
            if (!is_plain) {    /* node.out_data is not None or node.inputs is not None (a property may unpack) */
                PyObject *v = PyObject_GetAttrString(node, "out_data");
                if (v != NULL && v == Py_None) {
                    Py_DECREF(v);
                    v = PyObject_GetAttrString(node, "inputs");
                }
                if (v == NULL)
                    goto error;
                rel = v != Py_None;
                Py_DECREF(v);
            }
            if (rel && release(node, is_plain) < 0)
                goto error;
        }
        /* the gradients passed on: zip(node.edges, in_grads) */
        PyObject *edges = SLOT(node, off_edges);
        if (edges == NULL) {
            PyErr_SetString(PyExc_AttributeError, "'Node' object has no attribute 'edges'");
            goto error;
        }
        Py_INCREF(edges);
        PyObject *eseq = PySequence_Fast(edges, "a node's edges are a sequence");
        Py_DECREF(edges);
        PyObject *gseq = eseq != NULL ? PySequence_Fast(in_grads, "a node's gradients are a sequence") : NULL;
        if (gseq == NULL) {
            Py_XDECREF(eseq);
            goto error;
        }
        Py_ssize_t ne = PySequence_Fast_GET_SIZE(eseq), ng = PySequence_Fast_GET_SIZE(gseq);
        Py_ssize_t nn = ne < ng ? ne : ng;
        int failed = 0;
        for (Py_ssize_t i = 0; i < nn && !failed; i++) {
            PyObject *e = PySequence_Fast_GET_ITEM(eseq, i), *g = PySequence_Fast_GET_ITEM(gseq, i);
            if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != 2) {
                PyErr_SetString(PyExc_TypeError, "drain: an edge is (node, output number)");
                failed = 1;
                break;
            }
            PyObject *fn = PyTuple_GET_ITEM(e, 0), *nr = PyTuple_GET_ITEM(e, 1);
            if (fn == Py_None)
                continue;
            PyObject *c = PyDict_GetItemWithError(deps, fn);    /* borrowed */
            if (c == NULL) {
                if (!PyErr_Occurred())
                    PyErr_SetObject(PyExc_KeyError, fn);
                failed = 1;
                break;
            }
            Py_ssize_t d = PyLong_AsSsize_t(c) - 1;
            if (d == -2 && PyErr_Occurred()) {
                failed = 1;
                break;
            }
            PyObject *dv = PyLong_FromSsize_t(d);
            if (dv == NULL || PyDict_SetItem(deps, fn, dv) < 0) {
                Py_XDECREF(dv);
                failed = 1;
                break;
            }
            Py_DECREF(dv);
            int in_buffers = PyDict_Contains(buffers, fn);
            if (in_buffers < 0) {
                failed = 1;
                break;
            }
            PyObject *b;
            int is_acc = Py_TYPE(fn) == Acc_T;
            if (d == 0 && !in_buffers) {    /* its only gradient (a chain's usual case): no buffer kept */
                if (is_acc) {
                    if (queue_push(&acc, Py_NewRef(fn), g == Py_None ? NULL : Py_NewRef(g)) < 0)
                        failed = 1;
                    continue;
                }
                Py_ssize_t no = n_outputs(fn);
                if (no < 0 || (b = PyList_New(no > 1 ? no : 1)) == NULL) {
                    failed = 1;
                    break;
                }
                for (Py_ssize_t j = 0; j < PyList_GET_SIZE(b); j++)
                    PyList_SET_ITEM(b, j, Py_NewRef(Py_None));
                Py_ssize_t k = no > 1 ? PyLong_AsSsize_t(nr) : 0;
                if (k == -1 && PyErr_Occurred()) {
                    Py_DECREF(b);
                    failed = 1;
                    break;
                }
                if (PyList_SetItem(b, k, Py_NewRef(g)) < 0) {
                    Py_DECREF(b);
                    failed = 1;
                    break;
                }
            } else {
                if (g != Py_None) {
                    b = PyDict_GetItemWithError(buffers, fn);   /* borrowed */
                    if (b == NULL) {
                        Py_ssize_t no = PyErr_Occurred() ? -1 : n_outputs(fn);
                        if (no < 0 || (b = PyList_New(no)) == NULL) {
                            failed = 1;
                            break;
                        }
                        for (Py_ssize_t j = 0; j < no; j++)
                            PyList_SET_ITEM(b, j, Py_NewRef(Py_None));
                        int rc = PyDict_SetItem(buffers, fn, b);
                        Py_DECREF(b);
                        if (rc < 0) {
                            failed = 1;
                            break;
                        }
                    }
                    if (!PyList_Check(b)) {
                        PyErr_SetString(PyExc_TypeError, "drain: a gradient buffer is a list");
                        failed = 1;
                        break;
                    }
                    Py_ssize_t k = PyLong_AsSsize_t(nr);
                    if (k == -1 && PyErr_Occurred()) {
                        failed = 1;
                        break;
                    }
                    if (k < 0)
                        k += PyList_GET_SIZE(b);
                    if (k < 0 || k >= PyList_GET_SIZE(b)) {
                        PyErr_SetString(PyExc_IndexError, "list index out of range");
                        failed = 1;
                        break;
                    }
                    PyObject *x = PyList_GET_ITEM(b, k);
                    if (x == Py_None)
                        PyList_SetItem(b, k, Py_NewRef(g));
                    else {          /* two gradients of one output: summed (inside this node, when observed) */
                        int cg = truth(create_graph), inplace = cg ? 0 : accumulable(x);
                        PyObject *s = cg || inplace < 0 ? NULL : sum_fast(node, x, g, quiet, inplace);
                        Py_INCREF(x);
                        if (s != NULL || PyErr_Occurred())
                            ;
                        else if (quiet) {       /* (not NumPy arrays of one shape and dtype) */
                            PyObject *a[] = {x, g};
                            s = call(ops_add, a, 2);
                        } else {
                            PyObject *a[] = {node, x, g, create_graph, inplace ? Py_True : Py_False};
                            s = call(sum_in_node, a, 5);
                        }
                        Py_DECREF(x);
                        if (s == NULL) {
                            failed = 1;
                            break;
                        }
                        PyList_SetItem(b, k, s);
                    }
                }
                if (d)
                    continue;
                b = PyDict_GetItemWithError(buffers, fn);
                if (b == NULL) {
                    if (!PyErr_Occurred())
                        PyErr_SetObject(PyExc_KeyError, fn);
                    failed = 1;
                    break;
                }
                Py_INCREF(b);
                if (PyDict_DelItem(buffers, fn) < 0) {
                    Py_DECREF(b);
                    failed = 1;
                    break;
                }
                if (is_acc) {
                    PyObject *g0 = PyList_Check(b) && PyList_GET_SIZE(b) ? PyList_GET_ITEM(b, 0) : Py_None;
                    g0 = g0 == Py_None ? NULL : Py_NewRef(g0);
                    Py_DECREF(b);
                    if (queue_push(&acc, Py_NewRef(fn), g0) < 0)
                        failed = 1;
                    continue;
                }
            }
            /* b: a new reference. `nxt` outranks every node in the heap: set when the heap is empty (a chain:
             * no heap push and pop) or to a node that outranks it */
            long long fseq;
            if (node_seq(fn, &fseq) < 0) {
                Py_DECREF(b);
                failed = 1;
                break;
            }
            if (nxt == NULL && heap.n == 0) {
                nxt = Py_NewRef(fn), nxt_buf = b;
                continue;
            }
            long long nseq = 0;
            if (nxt != NULL && node_seq(nxt, &nseq) < 0) {
                Py_DECREF(b);
                failed = 1;
                break;
            }
            Entry en;
            if (nxt != NULL && fseq > nseq) {
                en.seq = nseq, en.counter = counter++, en.node = nxt, en.buf = nxt_buf;
                nxt = Py_NewRef(fn), nxt_buf = b;
            } else
                en.seq = fseq, en.counter = counter++, en.node = Py_NewRef(fn), en.buf = b;
            if (heap_push(&heap, en) < 0)
                failed = 1;
        }
        Py_DECREF(eseq);
        Py_DECREF(gseq);
        if (failed)
            goto error;
        if (region_close(&reg) < 0)     /* the node's region ends once its gradients are in the buffers */
            goto error;
        if (PyList_GET_SIZE(held)) {    /* (the same, opened by range_pair's enter) */
            Py_ssize_t nh = PyList_GET_SIZE(held);     /* held.pop() (a list: drain's check) */
            PyObject *pair = Py_NewRef(PyList_GET_ITEM(held, nh - 1));
            if (PyList_SetSlice(held, nh - 1, nh, NULL) < 0) {
                Py_DECREF(pair);
                goto error;
            }
            PyObject *r = NULL;
            if (PyTuple_Check(pair) && PyTuple_GET_SIZE(pair) == 2)
                r = PyObject_CallOneArg(PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1));
            else
                PyErr_SetString(PyExc_TypeError, "drain: a held region is (exit, token)");
            Py_DECREF(pair);
            if (r == NULL)
                goto error;
            Py_DECREF(r);
        }
        /* this step's references dropped before the next (a gradient whose only holder is the next node can
         * then be handed to .grad without a copy) */
        Py_CLEAR(in_grads);
        Py_CLEAR(buf);
        Py_CLEAR(node);
    }
    heap_clear(&heap);
    queue_clear(&acc);
    Py_RETURN_NONE;
error:
    region_close(&reg);     /* (a node's region ends whatever happens, as engine.run_backward ends `held`'s) */
    Py_XDECREF(in_grads);
    Py_XDECREF(buf);
    Py_XDECREF(node);
    Py_XDECREF(nxt);
    Py_XDECREF(nxt_buf);
    heap_clear(&heap);
    queue_clear(&acc);
    return NULL;
}

/* deps(root): {node: the number of edges into it} over the nodes reachable from one root, the walk of
 * run_backward for a single root (the first sight of a node is its first edge; a leaf's sink has none to walk) */
static PyObject *mod_deps(PyObject *self, PyObject *root)
{
    if (run_node == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tensorlib.autograd._cengine is not configured");
        return NULL;
    }
    PyObject *deps = PyDict_New(), *stack = PyList_New(0);
    if (deps == NULL || stack == NULL || PyList_Append(stack, root) < 0)
        goto error;
    while (PyList_GET_SIZE(stack)) {
        Py_ssize_t top = PyList_GET_SIZE(stack) - 1;
        PyObject *n = Py_NewRef(PyList_GET_ITEM(stack, top));
        if (PyList_SetSlice(stack, top, top + 1, NULL) < 0) {
            Py_DECREF(n);
            goto error;
        }
        PyObject *edges = PyObject_IsInstance(n, (PyObject *)Node_T) == 1 && SLOT(n, off_edges) != NULL
                              ? Py_NewRef(SLOT(n, off_edges)) : PyObject_GetAttrString(n, "edges");
        Py_DECREF(n);
        if (edges == NULL)
            goto error;
        PyObject *es = PySequence_Fast(edges, "a node's edges are a sequence");
        Py_DECREF(edges);
        if (es == NULL)
            goto error;
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(es); i++) {
            PyObject *e = PySequence_Fast_GET_ITEM(es, i);
            PyObject *fn = PyTuple_Check(e) && PyTuple_GET_SIZE(e) == 2 ? PyTuple_GET_ITEM(e, 0) : NULL;
            if (fn == NULL) {
                PyErr_SetString(PyExc_TypeError, "an edge is (node, output number)");
                Py_DECREF(es);
                goto error;
            }
            if (fn == Py_None)
                continue;
            PyObject *c = PyDict_GetItemWithError(deps, fn);
            PyObject *v = c == NULL ? (PyErr_Occurred() ? NULL : PyLong_FromLong(1))
                                    : PyLong_FromSsize_t(PyLong_AsSsize_t(c) + 1);
            int rc = v == NULL || PyErr_Occurred() ? -1 : PyDict_SetItem(deps, fn, v);
            Py_XDECREF(v);
            if (rc < 0 || (c == NULL && Py_TYPE(fn) != Acc_T && PyList_Append(stack, fn) < 0)) {
                Py_DECREF(es);
                goto error;
            }
        }
        Py_DECREF(es);
    }
    Py_DECREF(stack);
    return deps;
error:
    Py_XDECREF(deps);
    Py_XDECREF(stack);
    return NULL;
}

static PyMethodDef module_methods[] = {
    {"configure", mod_configure, METH_VARARGS, "configure(Node, AccumulateGrad, Tensor, ndarray, ...): once, at import"},
    {"drain", (PyCFunction)(void (*)(void))mod_drain, METH_FASTCALL,
     "drain(ready, acc_ready, deps, buffers, handed, quiet, create_graph, retain_graph, held): the engine's loop"},
    {"deps", mod_deps, METH_O, "deps(root): {node: edges into it} over the nodes reachable from root"},
    {"set_op_class", mod_set_op_class, METH_O,
     "set_op_class(OpDef): the class whose instances' attributes the loop reads at their slots' offsets"},
    {"hooks_changed", mod_hooks_changed, METH_NOARGS,
     "hooks_changed(): the registry's and the dispatcher's flags are read afresh (a _hooks.subscribe callback)"},
    {"setup_arrays", mod_setup_arrays, METH_O,
     "setup_arrays(probes): whether NumPy's array struct reads as the view formulas read it (they run where it does)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "_cengine",
                                       "The backward engine's loop in C (tensorlib/autograd/engine.py's twin)", -1,
                                       module_methods};

PyMODINIT_FUNC PyInit__cengine(void)
{
    struct {
        PyObject **p;
        const char *s;
    } names[] = {{&s_tensor_hooks, "tensor_hooks"}, {&s_retained, "retained"}, {&s_node_hooks, "node_hooks"},
                 {&s_quiet_backward, "quiet_backward"}, {&s_dtype, "dtype"}, {&s_kind, "kind"}, {&s_shape, "shape"},
                 {&s_hooks, "_hooks"}, {&s_post_acc_hooks, "_post_acc_hooks"}, {&s_anomaly_users, "anomaly_users"},
                 {&s_anomaly, "anomaly"}, {&s_anomaly_check_nan, "anomaly_check_nan"}, {&s_release, "release"},
                 {&s_freed, "freed"}, {&s_c, "c"}, {&s_trace, "trace"}, {&s_ctx_data, "ctx_data"},
                 {&s_grad, "_grad"}, {&s_base, "_base"}, {&s_grad_fn, "_grad_fn"}, {&s_requires_grad, "_requires_grad"},
                 {&s_flags, "flags"}, {&s_writeable, "writeable"}, {&s_nbase, "base"}, {&s_version, "_version"},
                 {&s_backward, "backward"},
                 {&s_range_pair, "range_pair"}, {&s_range_c, "range_c"}, {&s_op, "op"}, {&s_sink_linear, "sink_linear"},
                 {&s_name, "name"}, {&s_node_name, "node_name"},
                 {&s_node_name_of, "node_name_of"}, {&s_node_name_dim, "node_name_dim"},
                 {&s_sink_formulas, "_sink_formulas"}, {&s_grad_enabled, "grad_enabled"}, {&s_sink_backward, "sink_backward"},
                 {&s_acc_region, "tensorlib::autograd::AccumulateGrad"}, {&s_run_recorded, "run_recorded"},
                 {&s_op_at, "op_at"}, {&s_add, "add"}, {&s_add_, "add_"}, {&s_tensor_of, "tensor_of"}, {&s_detach, "detach"},
                 {&s_mark_view, "mark_view"}, {&s_detached, "_detached"}, {&s_view, "view"},
                 {&s_sink_view, "sink_view"}, {&s_sink_only, "_sink_only"}, {&s_range_hooks, "range_hooks"},
                 {&s_op_step, "op_step"}, {&s_call_as, "call_as"}, {&s_call_as_arrays, "call_as_arrays"},
                 {&s_keepdim, "keepdim"}, {&s_reshape, "reshape"},
                 {&s_transpose, "transpose"}, {&s_swapaxes, "swapaxes"}, {&s_as_strided, "as_strided"},
                 {&s_dim, "dim"}, {&s_dim0, "dim0"}, {&s_dim1, "dim1"}, {&s_dims, "dims"}, {&s_multi_view, "_multi_view"},
                 {&s_nondiff_outputs, "nondiff_outputs"}};
    if ((minus_one = PyLong_FromLong(-1)) == NULL || (zero_obj = PyLong_FromLong(0)) == NULL ||
        (kw_memory_format = Py_BuildValue("(s)", "memory_format")) == NULL ||
        (kw_shape = Py_BuildValue("(s)", "shape")) == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if ((*names[i].p = PyUnicode_InternFromString(names[i].s)) == NULL)
            return NULL;
    if ((sapi = PyCapsule_Import(STATE_API_CAPSULE, 0)) == NULL)      /* (tensorlib._cstate: required) */
        return NULL;
    return PyModule_Create(&moduledef);
}
