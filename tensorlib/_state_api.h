/* The C API of tensorlib._cstate (the phase and sequence number of _state.STATE in C, see _cstate.c), for the recorded
 * paths (tensorlib/_crecorded.c) and the engine (tensorlib/autograd/_cengine.c): imported once through the capsule
 * "tensorlib._cstate._state_api". */
#ifndef TENSORLIB_STATE_API_H
#define TENSORLIB_STATE_API_H
#include <Python.h>

/* A thread's phase and seq: what STATE.phase and STATE.seq read and write on that thread */
typedef struct {
    PyObject_HEAD
    int backward;       /* STATE.phase: 0 "forward", 1 "backward" */
    PyObject *seq;      /* STATE.seq: an int (a strong reference), -1 until set */
} ThreadPhase;

/* _state.seq_counter where this module is used: next() gives the next forward sequence number, as itertools.count()
 * does; C takes one without making an int object (seq_take) */
typedef struct {
    PyObject_HEAD
    long long next;
} SeqCounter;

typedef struct {
    /* current(): the calling thread's ThreadPhase (borrowed: it lives as long as the thread's state), made on the
     * thread's first call; NULL with an error set (no memory) */
    ThreadPhase *(*current)(void);
    PyObject *forward, *backward;     /* the phase names, interned ("forward", "backward") */
    PyTypeObject *counter_type;       /* SeqCounter's */
} StateAPI;

#define STATE_API_CAPSULE "tensorlib._cstate._state_api"

/* The phase and seq set for backward work linked to seq (the engine's enter_backward); never fails */
static inline void phase_enter_backward(ThreadPhase *t, PyObject *seq)
{
    Py_INCREF(seq);
    Py_SETREF(t->seq, seq);
    t->backward = 1;
}
#endif
