"""torch.func's transforms on tensorlib's tape: grad, grad_and_value, vjp, jvp, jacrev, jacfwd, hessian, vmap.

torch's functorch wraps tensors per transform level; tensorlib has one tape, so a transform gets its level's
separation another way. Each differentiated argument becomes a new tensor: a leaf of its own (detached,
requiring grad), or a differentiable alias (view_as) where the argument already requires grad and grad mode
is on, so that an enclosing transform, or the caller's own autograd, differentiates through the result. A
result leaves the transform ("unwrapped") with its history only where that history reaches a tensor from
outside the transform (an enclosing transform's argument, a captured parameter): one that depends only on
the transform's own leaves is detached, as torch's is. So grad(f)(x) never accumulates into x.grad (it calls
autograd.grad, never backward), works under torch.no_grad() (it differentiates f regardless, as torch's; the
results then carry no history), and nests: grad(grad(f)), jacrev(jacrev(f)), vmap(grad(f)).

What differs from torch, by design of a tape without forward mode or batching rules:
- vmap runs `func` once per batch element on `select`ed slices and stacks the results (correct values and
  shapes; a loop, not vectorised). It therefore also allows what torch's vmap refuses (data-dependent
  control flow, .item()); an output with out_dims=None is refused, as torch's BatchedTensor is, when it
  differs between batch elements. randomness='different' is the loop's own behaviour; 'same' replays each
  generator's state from the first element; 'error' (the default) refuses any draw inside the function.
- jvp is computed by the double backward trick (torch.autograd.functional.jvp's), and jacfwd as jacrev's
  reverse mode (one backward per output element): the same values; hessian is jacfwd(jacrev(f)) as torch's.
"""
from __future__ import annotations

import copy
import functools

from .._tensor import Tensor
from ..autograd.grad_mode import enable_grad, is_grad_enabled

__all__ = ["grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "vmap"]


def _ops():
    from .. import ops
    return ops


# --- pytrees (torch.utils._pytree's tuples, lists, dicts and namedtuples; anything else is a leaf) ----------

class _LeafSpec:
    num_leaves = 1

    def __repr__(self, indent: int = 0) -> str:
        return "*"

    def __eq__(self, other) -> bool:
        return isinstance(other, _LeafSpec)

    __hash__ = None  # type: ignore[assignment]


_LEAF = _LeafSpec()


class TreeSpec:
    """A container's structure, printed as torch's TreeSpec (error messages quote it)."""

    def __init__(self, type_, context, children):
        self.type = type_
        self._context = context
        self._children = children
        self.num_leaves = sum(c.num_leaves for c in children)

    def __repr__(self, indent: int = 0) -> str:
        text = ""
        if self._children:
            indent += 2
            text = self._children[0].__repr__(indent) + ("," if len(self._children) > 1 else "")
            text += ",".join("\n" + " " * indent + c.__repr__(indent) for c in self._children[1:])
        return f"TreeSpec({self.type.__name__}, {self._context}, [{text}])"

    def __eq__(self, other) -> bool:
        return (isinstance(other, TreeSpec) and self.type is other.type and self._context == other._context
                and self._children == other._children)

    __hash__ = None  # type: ignore[assignment]


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _children(tree):
    """(type, context, children) of a container, or None for a leaf."""
    if type(tree) is tuple or type(tree) is list:
        return type(tree), None, list(tree)
    if _is_namedtuple(tree):
        return type(tree), type(tree), list(tree)
    if isinstance(tree, dict):
        keys = list(tree)
        return type(tree), keys, [tree[k] for k in keys]
    return None


def tree_flatten(tree):
    node = _children(tree)
    if node is None:
        return [tree], _LEAF
    type_, context, kids = node
    leaves: list = []
    specs = []
    for k in kids:
        sub, spec = tree_flatten(k)
        leaves += sub
        specs.append(spec)
    return leaves, TreeSpec(type_, context, specs)


def tree_unflatten(leaves, spec):
    it = iter(leaves)

    def build(s):
        if isinstance(s, _LeafSpec):
            return next(it)
        kids = [build(c) for c in s._children]
        if s.type is tuple or s.type is list:
            return s.type(kids)
        if isinstance(s._context, type):        # a namedtuple
            return s.type(*kids)
        return s.type(zip(s._context, kids))
    return build(spec)


def _tree_map(fn, tree):
    leaves, spec = tree_flatten(tree)
    return tree_unflatten([fn(x) for x in leaves], spec)


def _broadcast_to_and_flatten(prefix, spec):
    """`prefix` (in_dims, out_dims) spread over the leaves of `spec`: a leaf of the prefix covers a whole
    subtree; containers must match in type and length (dicts in keys). None where they do not."""
    out: list = []

    def rec(p, s):
        node = _children(p)
        if node is None:
            out.extend([p] * s.num_leaves)
            return True
        if isinstance(s, _LeafSpec):
            return False
        type_, context, kids = node
        if type_ is not s.type or len(kids) != len(s._children):
            return False
        if isinstance(p, dict):
            if set(p) != set(s._context):
                return False
            kids = [p[k] for k in s._context]
        return all(rec(k, c) for k, c in zip(kids, s._children))
    return out if rec(prefix, spec) else None


# --- argnums ----------------------------------------------------------------------------------------------

def _validate_and_wrap_argnum(argnum, num_args):
    if not isinstance(argnum, int):
        raise RuntimeError(f"argnum must be int, got: {type(argnum)}")
    if 0 <= argnum < num_args:
        return argnum
    if -num_args <= argnum < 0:
        return argnum + num_args
    raise RuntimeError(f"Got argnum={argnum}, but only {num_args} positional inputs")


def _slice_argnums(args, argnums, as_tuple=True):
    """The arguments at argnums, with torch's errors; (wrapped argnums, the arguments)."""
    if not isinstance(argnums, (int, tuple)):
        raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    if isinstance(argnums, int):
        argnums = _validate_and_wrap_argnum(argnums, len(args))
        return argnums, ((args[argnums],) if as_tuple else args[argnums])
    argnums = tuple(_validate_and_wrap_argnum(a, len(args)) for a in argnums)
    if len(argnums) == 0:
        raise RuntimeError("argnums must be non-empty")
    if len(set(argnums)) != len(argnums):
        raise RuntimeError(f"argnums elements must be unique, got {argnums}")
    return argnums, tuple(args[i] for i in argnums)


def _replace_args(args, new, argnums):
    if isinstance(argnums, int):
        return tuple(new if i == argnums else a for i, a in enumerate(args))
    return tuple(new[argnums.index(i)] if i in argnums else a for i, a in enumerate(args))


# --- a transform's own tensors ----------------------------------------------------------------------------

class _Level:
    """One transform application: whether grad mode was on where it was called, and the leaves it made."""

    def __init__(self):
        self.grad_outside = is_grad_enabled()
        self.leaves: dict[int, Tensor] = {}     # id -> leaf (held, so that the ids stay theirs)

    def differentiable(self, x):
        if not isinstance(x, Tensor):
            raise ValueError(f"Thing passed to transform API must be Tensor, got {type(x)}")
        if self.grad_outside and x.requires_grad:
            return x.view_as(x)          # differentiable back to the caller's x (an enclosing transform's)
        y = x.detach().requires_grad_()
        self.leaves[id(y)] = y
        return y

    def reaches_outside(self, t) -> bool:
        """Whether `t`'s history reaches a tensor requiring grad that this transform did not make."""
        if not isinstance(t, Tensor) or not t.requires_grad:
            return False
        fn = t.grad_fn
        if fn is None:
            return id(t) not in self.leaves
        from ..autograd.graph import AccumulateGrad
        seen = {id(fn)}
        stack = [fn]
        while stack:
            node = stack.pop()
            for nxt, _ in node.edges:
                if nxt is None or id(nxt) in seen:
                    continue
                seen.add(id(nxt))
                if isinstance(nxt, AccumulateGrad):
                    v = nxt.variable
                    if v is None or id(v) not in self.leaves:
                        return True
                else:
                    stack.append(nxt)
        return False

    def unwrap(self, t, aux=False):
        """A result as it leaves the transform: history kept only where it reaches outside (and grad mode
        was on outside)."""
        if not isinstance(t, Tensor):
            if aux:
                raise RuntimeError(f"Expected tensors, got unsupported type {type(t)}")
            return t
        if t.requires_grad and not (self.grad_outside and self.reaches_outside(t)):
            return t.detach()
        return t

    def unwrap_tree(self, tree, aux=False):
        return _tree_map(lambda t: self.unwrap(t, aux), tree)


def _autograd_grad(level, outputs, inputs, grad_outputs=None, retain_graph=False, create_graph=True):
    """Gradients of the outputs that require grad; zeros for inputs they do not reach (torch.func's)."""
    from ..autograd import grad as autograd_grad
    ops = _ops()
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if not pairs:
        return tuple(ops.zeros_like(i) for i in inputs)
    create_graph = create_graph and level.grad_outside and (
        any(level.reaches_outside(o) for o, _ in pairs)
        or any(isinstance(g, Tensor) and g.requires_grad for _, g in pairs))
    with enable_grad() if create_graph else _nullcontext():
        # an enclosing differentiation of these gradients runs back through the forward graph too: kept
        res = autograd_grad([o for o, _ in pairs], list(inputs), [g for _, g in pairs],
                            retain_graph=retain_graph or create_graph, create_graph=create_graph, allow_unused=True)
    return tuple(ops.zeros_like(i) if r is None else r for r, i in zip(res, inputs))


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _split_aux(output, api):
    if not (isinstance(output, tuple) and len(output) == 2):
        raise RuntimeError(f"{api}: output of function f should be a tuple: (output, aux) if has_aux is True")
    return output


def _check_outputs(flat, api, output):
    if len(flat) == 0:
        raise RuntimeError(f"{api}: Expected f to be a function that has non-empty output (got output = {output})")
    for o in flat:
        if not isinstance(o, Tensor):
            raise RuntimeError(f"{api}: expected f(*primals) to return only tensors, got unsupported type {type(o)}")


# --- grad, grad_and_value ---------------------------------------------------------------------------------

def grad_and_value(func, argnums=0, has_aux=False):
    """torch.func.grad_and_value: a function returning (gradient of func's scalar output with respect to the
    arguments at argnums, that output); with has_aux, func returns (output, aux) and the value is (output,
    aux). The gradient has the structure of args[argnums] (a tuple of them for a tuple of argnums)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return _grad_and_value(func, argnums, has_aux, args, kwargs)
    return wrapper


def _grad_and_value(func, argnums, has_aux, args, kwargs):
    api = "grad_and_value(f)(*args)"
    level = _Level()
    with enable_grad():
        argnums, diff_args = _slice_argnums(args, argnums, as_tuple=False)
        flat, spec = tree_flatten(diff_args)
        flat = [level.differentiable(x) for x in flat]
        diff_args = tree_unflatten(flat, spec)
        output = func(*_replace_args(args, diff_args, argnums), **kwargs)
        aux = None
        if has_aux:
            output, aux = _split_aux(output, api)
        if not isinstance(output, Tensor):
            raise RuntimeError(f"{api}: Expected f(*args) to return a Tensor, got {type(output)}")
        if output.dim() != 0:
            raise RuntimeError(f"{api}: Expected f(*args) to return a scalar Tensor, got tensor with "
                               f"{output.dim()} dims. Maybe you wanted to use the vjp or jacrev APIs instead?")
        grads = _autograd_grad(level, [output], flat)
        grad_input = level.unwrap_tree(tree_unflatten(list(grads), spec))
        output = level.unwrap(output)
        if has_aux:
            aux = level.unwrap_tree(aux, aux=True)
            return grad_input, (output, aux)
        return grad_input, output


def grad(func, argnums=0, has_aux=False):
    """torch.func.grad: a function returning the gradient of func's scalar output with respect to the
    arguments at argnums (with has_aux, (gradient, aux)). Nothing accumulates into any .grad."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        results = _grad_and_value(func, argnums, has_aux, args, kwargs)
        if has_aux:
            g, (_, aux) = results
            return g, aux
        return results[0]
    return wrapper


# --- vjp, jvp ---------------------------------------------------------------------------------------------

def vjp(func, *primals, has_aux=False):
    """torch.func.vjp: (func(*primals), vjp_fn[, aux]); vjp_fn(cotangents) returns the tuple of vector-Jacobian
    products with respect to every primal (cotangents structured as the output). vjp_fn may be called again
    (retain_graph=True by default); create_graph defaults to whether grad mode is on where it is called."""
    return _vjp_with_argnums(func, primals, None, has_aux)


def _vjp_with_argnums(func, primals, argnums, has_aux, api="vjp(f, *primals)"):
    level = _Level()
    with enable_grad():
        if argnums is None:
            flat, primals_spec = tree_flatten(primals)
            flat = [level.differentiable(x) for x in flat]
            primals = tree_unflatten(flat, primals_spec)
        else:
            argnums, diff = _slice_argnums(primals, argnums, as_tuple=False)
            flat, primals_spec = tree_flatten(diff)
            flat = [level.differentiable(x) for x in flat]
            primals = _replace_args(primals, tree_unflatten(flat, primals_spec), argnums)
        primals_out = func(*primals)
        aux = None
        if has_aux:
            primals_out, aux = _split_aux(primals_out, "vjp(f, *primals)")
            aux = level.unwrap_tree(aux, aux=True)
        flat_out, out_spec = tree_flatten(primals_out)
        _check_outputs(flat_out, api, primals_out)
        for o in flat_out:
            if not (o.is_floating_point() or o.is_complex()):
                raise RuntimeError(f"vjp(f, ...): All outputs of f must be floating-point or complex Tensors, got "
                                   f"Tensor with dtype {o.dtype}")
        results = level.unwrap_tree(primals_out)

    def vjp_fn(cotangents, retain_graph=True, create_graph=None):
        if create_graph is None:
            create_graph = is_grad_enabled()
        flat_cot, cot_spec = tree_flatten(cotangents)
        if cot_spec != out_spec:
            raise RuntimeError("Expected pytree structure of cotangents to be the same as pytree structure of "
                               f"outputs to the function. cotangents: {_pprint(cot_spec)}, primal output: "
                               f"{_pprint(out_spec)}")
        res = _autograd_grad(level, flat_out, flat, flat_cot, retain_graph=retain_graph, create_graph=create_graph)
        if not create_graph:
            res = tuple(r.detach() if r.requires_grad else r for r in res)
        return level.unwrap_tree(tree_unflatten(list(res), primals_spec))

    if has_aux:
        return results, vjp_fn, aux
    return results, vjp_fn


def _pprint(spec):
    """torch's treespec_pprint: the structure with * for each leaf."""
    return repr(tree_unflatten([_Star()] * spec.num_leaves, spec))


class _Star:
    def __repr__(self):
        return "*"


def jvp(func, primals, tangents, *, strict=False, has_aux=False):
    """torch.func.jvp: (func(*primals), J tangents[, aux]), primals a tuple and tangents of its structure.
    Computed by the double backward trick (see the module's docstring): the same values as forward mode."""
    return _jvp_with_argnums(func, primals, tangents, None, strict=strict, has_aux=has_aux)


def _jvp_with_argnums(func, primals, tangents, argnums, *, strict=False, has_aux=False):
    api = "jvp(f, primals, tangents)"
    if not isinstance(primals, tuple):
        raise RuntimeError(f"{api}: Expected primals to be a tuple. E.g. it should be valid to call f(*primals).")
    if argnums is None:
        diff_args = primals
    else:
        argnums, diff_args = _slice_argnums(primals, argnums)
    flat, primals_spec = tree_flatten(diff_args)
    flat_tangents, tangents_spec = tree_flatten(tangents)
    if primals_spec != tangents_spec:
        raise RuntimeError(f"{api}: Expected primals and tangents to have the same python structure. For example, "
                           "if primals is a tuple of 3 tensors, tangents also must be. Got primals with structure "
                           f"{primals_spec} and tangents with structure {tangents_spec}")
    for name, lst in (("primals", flat), ("tangents", flat_tangents)):
        if len(lst) == 0:
            raise RuntimeError(f"{api}: Expected {name} to contain at least one Tensor.")
        for o in lst:
            if not isinstance(o, Tensor):
                raise RuntimeError(f"{api}: Expected {name} to only contain Tensors, got {type(o)}")
    ops = _ops()
    level = _Level()
    with enable_grad():
        flat = [level.differentiable(x) for x in flat]
        if argnums is None:
            args = tree_unflatten(flat, primals_spec)
        else:
            new = tree_unflatten(flat, primals_spec)
            args = _replace_args(primals, new[0] if isinstance(argnums, int) else new, argnums)
        out = func(*args)
        aux = None
        if has_aux:
            out, aux = _split_aux(out, api)
            aux = level.unwrap_tree(aux, aux=True)
        flat_out, out_spec = tree_flatten(out)
        _check_outputs(flat_out, api, out)
        # g(u) = J^T u for grad_outputs u (zeros requiring grad); the gradient of g(u) . v in u is J v
        us = [ops.zeros_like(o, requires_grad=True) if o.requires_grad else None for o in flat_out]
        for u in us:
            if u is not None:
                level.leaves[id(u)] = u
        diff = [(o, u) for o, u in zip(flat_out, us) if u is not None]
        tangents_out: list = [None] * len(flat_out)
        if diff:
            from ..autograd import grad as autograd_grad
            g = autograd_grad([o for o, _ in diff], flat, [u for _, u in diff], create_graph=True, allow_unused=True)
            pairs = [(gi, t) for gi, t in zip(g, flat_tangents) if gi is not None]
            if pairs:
                ju = _autograd_grad(level, [gi for gi, _ in pairs], [u for _, u in diff], [t for _, t in pairs])
                it = iter(ju)
                tangents_out = [next(it) if u is not None else None for u in us]
        for i, (o, t) in enumerate(zip(flat_out, tangents_out)):
            if t is None:
                if strict:
                    raise RuntimeError("jvp(f, primals, tangents, strict=True): The output of f is independent of "
                                       "the inputs. This is not allowed with strict=True.")
                tangents_out[i] = ops.zeros_like(o)
        primals_out = tree_unflatten([level.unwrap(o) for o in flat_out], out_spec)
        tangents_out = tree_unflatten([level.unwrap(t) for t in tangents_out], out_spec)
    if has_aux:
        return primals_out, tangents_out, aux
    return primals_out, tangents_out


# --- jacrev, jacfwd, hessian ------------------------------------------------------------------------------

def _error_if_complex(api, args, is_input):
    for idx, t in enumerate(tree_flatten(args)[0]):
        if isinstance(t, Tensor) and t.is_complex():
            kind = "inputs" if is_input else "outputs"
            raise RuntimeError(f"{api}: Expected all {kind} to be real but received complex tensor at flattened "
                               f"input idx: {idx}")


def _jacobian(func, argnums, has_aux, api, args):
    """J[output][input] of func at args, by one vector-Jacobian product per output element."""
    ops = _ops()
    _error_if_complex(api, args, is_input=True)
    vjp_out = _vjp_with_argnums(func, args, argnums, has_aux)
    output, vjp_fn = vjp_out[0], vjp_out[1]
    flat_output, output_spec = tree_flatten(output)
    _error_if_complex(api, flat_output, is_input=False)
    numels = [o.numel() for o in flat_output]
    _, primals = _slice_argnums(args, argnums)
    flat_primals, primals_spec = tree_flatten(primals)
    rows: list[list] = [[] for _ in flat_primals]
    for k, out in enumerate(flat_output):
        for j in range(numels[k]):
            basis = [ops.zeros_like(o) for o in flat_output]
            basis[k].view(-1)[j] = 1
            res = tree_flatten(vjp_fn(tree_unflatten(basis, output_spec)))[0]
            for r, row in zip(res, rows):
                row.append(r)
    total = sum(numels)
    per_input = [ops.stack(row, 0) if total else p.new_zeros((0, *p.shape)) for row, p in zip(rows, flat_primals)]
    flat_in_flat_out = [tuple(s.view(tuple(o.shape) + tuple(p.shape))
                              for s, o in zip(ops.split(r, numels, dim=0), flat_output))
                        for r, p in zip(per_input, flat_primals)]
    flat_out_input = tuple(tree_unflatten(list(ins), primals_spec) for ins in zip(*flat_in_flat_out))
    if isinstance(argnums, int):
        flat_out_input = tuple(ins[0] for ins in flat_out_input)
    jac = tree_unflatten(list(flat_out_input), output_spec)
    if has_aux:
        return jac, vjp_out[2]
    return jac


def jacrev(func, argnums=0, *, has_aux=False, chunk_size=None, _preallocate_and_copy=False):
    """torch.func.jacrev: a function returning the Jacobian of func with respect to the arguments at argnums,
    nested as the output's structure, then the arguments' (a tensor of shape out.shape + arg.shape where both
    are single tensors). chunk_size is checked as torch's and does not change the values (rows are computed
    one at a time)."""
    if not (chunk_size is None or chunk_size > 0):
        raise ValueError("jacrev: `chunk_size` should be greater than 0.")

    @functools.wraps(func)
    def wrapper(*args):
        return _jacobian(func, argnums, has_aux, "jacrev", args)
    return wrapper


def jacfwd(func, argnums=0, has_aux=False, *, randomness="error"):
    """torch.func.jacfwd: jacrev's result (tensorlib computes it in reverse mode: the same values and
    structure). randomness as vmap's: with 'error', a random draw inside func raises as torch's does."""
    @functools.wraps(func)
    def wrapper(*args):
        _check_randomness_arg(randomness)
        with _Randomness(randomness):
            return _jacobian(func, argnums, has_aux, "jacfwd", args)
    return wrapper


def hessian(func, argnums=0):
    """torch.func.hessian: jacfwd(jacrev(func, argnums), argnums)."""
    return jacfwd(jacrev(func, argnums), argnums)


# --- vmap -------------------------------------------------------------------------------------------------

_RANDOM_ERROR = ("vmap: called random operation while in randomness error mode. Please either use the 'same' or "
                 "'different' randomness flags on vmap or perform the randomness operation out of vmap")


def _check_randomness_arg(randomness):
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or 'same'. Got {randomness}")


class _Randomness:
    """A vmap level's randomness mode while its function runs: the guard tensorlib.random calls before each
    draw refuses draws under any 'error' level, and a 'same' level notes each generator's state before its
    first draw, for `replay` to give the next batch element the same draws."""
    active: list = []

    def __init__(self, mode):
        self.mode = mode
        self.saved: dict[int, tuple] = {}

    def __enter__(self):
        from .. import random
        _Randomness.active.append(self)
        random._draw_guard = _guard
        return self

    def __exit__(self, *exc):
        from .. import random
        _Randomness.active.remove(self)
        if not _Randomness.active:
            random._draw_guard = None
        return False

    def replay(self):
        for gen, rng in self.saved.values():
            gen._rng = copy.deepcopy(rng)


def _guard(gen):
    for level in _Randomness.active:
        if level.mode == "error":
            raise RuntimeError(_RANDOM_ERROR)
    for level in _Randomness.active:
        if level.mode == "same" and id(gen) not in level.saved:
            level.saved[id(gen)] = (gen, copy.deepcopy(gen._rng))


def _get_name(func):
    if hasattr(func, "__name__"):
        return func.__name__
    if isinstance(func, functools.partial):
        return f"functools.partial({_get_name(func.func)}, ...)"
    return repr(func)


def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    """torch.func.vmap: func mapped over dimension in_dims of its arguments (an int, or a tuple nested as the
    arguments with None for an argument not mapped), results stacked at out_dims. tensorlib runs func once
    per batch element and stacks (see the module's docstring); chunk_size is checked as torch's and does not
    change the results. Keyword arguments are passed to every call unmapped."""
    _check_randomness_arg(randomness)
    if not (chunk_size is None or chunk_size > 0):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        return _vmap_impl(func, in_dims, out_dims, randomness, args, kwargs)
    return wrapped


def _process_batched_inputs(in_dims, args, func):
    name = _get_name(func)
    if not isinstance(in_dims, (int, tuple)):
        raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): expected `in_dims` to be int or a "
                         f"(potentially nested) tuple matching the structure of inputs, got: {type(in_dims)}.")
    if len(args) == 0:
        raise ValueError(f"vmap({name})(<inputs>): got no inputs. Maybe you forgot to add inputs, or you are trying "
                         "to vmap over a function with no inputs. The latter is unsupported.")
    flat_args, args_spec = tree_flatten(args)
    flat_in_dims = _broadcast_to_and_flatten(in_dims, args_spec)
    if flat_in_dims is None:
        raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): in_dims is not compatible with the "
                         f"structure of `inputs`. in_dims has structure {tree_flatten(in_dims)[1]} but inputs has "
                         f"structure {args_spec}.")
    for i, (arg, in_dim) in enumerate(zip(flat_args, flat_in_dims)):
        if not isinstance(in_dim, int) and in_dim is not None:
            raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={in_dim} for an input but "
                             "in_dim must be either an integer dimension or None.")
        if isinstance(in_dim, int) and not isinstance(arg, Tensor):
            raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={in_dim} for an input but "
                             f"the input is of type {type(arg)}. We cannot vmap over non-Tensor arguments, please "
                             "use None as the respective in_dim")
        if in_dim is not None and (in_dim < -arg.dim() or in_dim >= arg.dim()):
            raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={in_dim} for some input, "
                             f"but that input is a Tensor of dimensionality {arg.dim()} so expected in_dim to "
                             f"satisfy -{arg.dim()} <= in_dim < {arg.dim()}.")
        if in_dim is not None and in_dim < 0:
            flat_in_dims[i] = in_dim % arg.dim()
    sizes = [arg.size(d) for d, arg in zip(flat_in_dims, flat_args) if d is not None]
    if not sizes:
        raise ValueError("vmap: Expected at least one Tensor to vmap over")
    if any(s != sizes[0] for s in sizes):
        raise ValueError(f"vmap: Expected all tensors to have the same size in the mapped dimension, got sizes "
                         f"{sizes} for the mapped dimension")
    return sizes[0], flat_in_dims, flat_args, args_spec


def _check_out_dims(out_dims, func):
    for x in tree_flatten(out_dims)[0]:
        if x is not None and not isinstance(x, int):
            raise ValueError(f"vmap({_get_name(func)}, ..., out_dims={out_dims}): `out_dims` must be an int, None or "
                             "a python collection of ints representing where in the outputs the vmapped dimension "
                             "should appear.")


def _vmap_impl(func, in_dims, out_dims, randomness, args, kwargs):
    _check_out_dims(out_dims, func)
    batch_size, flat_in_dims, flat_args, args_spec = _process_batched_inputs(in_dims, args, func)
    name = _get_name(func)
    ops = _ops()
    per_element: list = []
    with _Randomness(randomness) as level:
        if batch_size == 0:
            # no element to run: func runs once on zeros shaped as one element, for the results' shapes
            sample = [a.new_zeros(tuple(s for k, s in enumerate(a.shape) if k != d)) if d is not None else a
                      for a, d in zip(flat_args, flat_in_dims)]
            per_element.append(func(*tree_unflatten(sample, args_spec), **kwargs))
        for i in range(batch_size):
            if i and randomness == "same":
                level.replay()
            elem = [a.select(d, i) if d is not None else a for a, d in zip(flat_args, flat_in_dims)]
            per_element.append(func(*tree_unflatten(elem, args_spec), **kwargs))
    flat0, out_spec = tree_flatten(per_element[0])

    def incompatible():
        raise ValueError(f"vmap({name}, ..., out_dims={out_dims})(<inputs>): out_dims is not compatible with the "
                         f"structure of `outputs`. out_dims has structure {tree_flatten(out_dims)[1]} but outputs "
                         f"has structure {out_spec}.")
    if isinstance(per_element[0], Tensor):
        if isinstance(out_dims, int) or out_dims is None:
            flat_out_dims = [out_dims]
        elif isinstance(out_dims, tuple) and len(out_dims) == 1:
            flat_out_dims = list(out_dims)
        else:
            incompatible()
    else:
        flat_out_dims = _broadcast_to_and_flatten(out_dims, out_spec)
        if flat_out_dims is None:
            incompatible()
    flats = [flat0] + [tree_flatten(o)[0] for o in per_element[1:]]
    for f in flats[1:]:
        if len(f) != len(flat0):
            raise ValueError(f"vmap({name}, ...): `{name}` returned outputs of different structures for different "
                             "batch elements (tensorlib's vmap runs it once per element)")
    results = []
    for k, out_dim in enumerate(flat_out_dims):
        column = [f[k] for f in flats]
        first = column[0]
        if out_dim is None:
            if isinstance(first, Tensor) and any(
                    not isinstance(c, Tensor) or c.shape != first.shape or not bool(ops.equal(c, first))
                    for c in column[1:]):
                raise ValueError(f"vmap({name}, ...): `{name}` can not return a BatchedTensor when out_dim is None")
            results.append(first)
            continue
        if not isinstance(first, Tensor):
            raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got type {type(first)}. Did you "
                             "mean to set out_dims= to None for output?")
        if batch_size == 0:
            stacked = ops.stack([first], dim=out_dim)
            results.append(stacked.narrow(out_dim if out_dim >= 0 else out_dim + stacked.dim(), 0, 0))
        else:
            results.append(ops.stack(column, dim=out_dim))
    return tree_unflatten(results, out_spec)
