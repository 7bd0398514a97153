"""Elementwise activations: one definition, one public object.

An activation is written once, as a small class body holding its scalar
``forward(x, *params)``, its scalar derivative ``grad(x, *params)`` and,
where the derivative is a function of the output, ``grad_from_output(y,
*params)``. The parameters and their defaults are read from ``forward``'s
signature, the docstring from the class. ``@elementwise`` turns that body
into an :class:`Elementwise` object whose methods run kernels generated from
the definition (see ``fastact._cpu``)::

    @elementwise(torch="F.leaky_relu")
    class leaky_relu:
        '''LeakyReLU ...'''

        def forward(x, negative_slope=0.01):
            return x if x > 0 else negative_slope * x

        def grad(x, negative_slope=0.01):
            ...
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import numpy as np

from fastact import _cpu
from fastact._arrays import F32, F64, Arg, check_out, compute_dtype, finish, real_param
from fastact._compile import scalar_jit, specialize
from fastact._dispatch import backend


def _fast_out(out: Any, x: np.ndarray) -> bool:
    """True when the short path may write a C-contiguous x's result into
    ``out=``: an array of x's shape and dtype, C-contiguous and writeable, that
    is x itself or shares no memory with it. Anything else takes the regular
    path, which checks it (and copies through a temporary on partial overlap).
    Two arrays that each own their memory cannot share it: that check is a
    quarter of the cost of np.may_share_memory, the commonest case's."""
    if type(out) is not np.ndarray or out.dtype != x.dtype or out.shape != x.shape:
        return False
    f = out.flags
    return (f.c_contiguous and f.writeable
            and (out is x or (f.owndata and x.flags.owndata) or not np.may_share_memory(out, x)))


class Definition:
    """The scalar functions and parameters of one activation (hashable by identity)."""

    def __init__(self, name: str, forward: Callable, grad: Callable,
                 grad_from_output: Callable | None, check: Callable | None):
        sig = inspect.signature(forward)
        names = list(sig.parameters)[1:]
        if list(inspect.signature(grad).parameters)[1:] != names:
            raise TypeError(f"{name}: forward and grad must take the same parameters")
        self.name = name
        self.forward = forward
        self.grad = grad
        self.grad_from_output = grad_from_output
        self.check = check
        self.param_names = tuple(names)
        # whether the scalar code calls the math primitives (exp, log, erfc, ...)
        self.transcendental = any("_math" in f.__code__.co_names for f in (forward, grad))
        self.defaults = {
            k: p.default for k, p in sig.parameters.items()
            if k in names and p.default is not inspect.Parameter.empty
        }

    # Compiled scalar functions, created on first use (nothing compiles at
    # import) and inlined into the kernels, which are what is cached on disk.
    @functools.cached_property
    def forward_jit(self):
        return scalar_jit(specialize(self.forward, f"{self.name}_forward"))

    @functools.cached_property
    def grad_jit(self):
        return scalar_jit(specialize(self.grad, f"{self.name}_grad"))

    @functools.cached_property
    def grad_from_output_jit(self):
        if self.grad_from_output is None:
            return None
        return scalar_jit(specialize(self.grad_from_output, f"{self.name}_grad_from_output"))


class Elementwise:
    """An elementwise activation: call it for the forward pass.

    Methods: ``grad(x)`` (dy/dx), ``backward(grad_output, x)`` (the
    vector-Jacobian product ``grad_output * dy/dx`` in one pass),
    ``value_and_grad(x)`` (both in one pass). Parameters are keywords, the same
    on every method; ``out=`` writes into an existing array.
    """

    def __init__(self, defn: Definition, name: str | None = None, fixed: dict | None = None,
                 doc: str | None = None, torch: str | None = None):
        self._defn = defn
        self.__name__ = self.name = name or defn.name
        self._global = self.name
        self._fixed = dict(fixed or {})
        self.param_names = tuple(p for p in defn.param_names if p not in self._fixed)
        self.defaults = {k: v for k, v in defn.defaults.items() if k in self.param_names}
        self.torch = torch
        self.__doc__ = doc
        self.from_output = defn.grad_from_output is not None
        self._default_params: dict = {}
        # (dtype, keyword parameters with their types) -> resolved parameters,
        # for the short path of calls that pass them (see _fast_with)
        self._given_params: dict = {}
        # (kind, dtype) -> (compiled entry point, parameters): the short path
        # of small contiguous calls with default parameters (see _fast).
        self._short: dict = {}
        # dtype -> (entry point, default parameters): the forward short path,
        # in one lookup (see __call__)
        self._forward1: dict = {}
        self._shift = _cpu.parallel_shift(defn)
        self.__signature__ = inspect.Signature(
            [inspect.Parameter("x", inspect.Parameter.POSITIONAL_ONLY)]
            + [inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY,
                                 default=self.defaults.get(p, inspect.Parameter.empty))
               for p in self.param_names]
            + [inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, default=None)]
        )

    def __reduce__(self) -> str:
        # Pickled by reference, as functions are: the name of the module
        # global that holds this object (worker processes import fastact).
        return self._global

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={self.defaults[k]!r}" if k in self.defaults else k
                           for k in self.param_names)
        return f"<fastact elementwise function {self.name}({params})>"

    def with_fixed(self, name: str, doc: str, torch: str | None = None, **fixed: Any) -> "Elementwise":
        """A new public function sharing this one's kernels with some parameters fixed."""
        f = Elementwise(self._defn, name, {**self._fixed, **fixed}, doc, torch)
        f.__module__ = self.__module__
        return f

    # --- parameters --------------------------------------------------------

    def _params(self, method: str, kwargs: dict, dtype: np.dtype) -> tuple:
        if not kwargs:  # the defaults: validated and cast once per dtype
            cached = self._default_params.get(dtype)
            if cached is not None:
                return cached
            self._default_params[dtype] = cached = self._resolve(method, kwargs, dtype)
            return cached
        return self._resolve(method, kwargs, dtype)

    def _resolve(self, method: str, kwargs: dict, dtype: np.dtype) -> tuple:
        fname = self.name if method == "__call__" else f"{self.name}.{method}"
        unknown = set(kwargs) - set(self.param_names)
        if unknown:
            bad = sorted(unknown)[0]
            raise TypeError(f"{fname}() got an unexpected keyword argument {bad!r}; "
                            f"parameters are {list(self.param_names) or 'none'}")
        values = {}
        for p in self._defn.param_names:
            if p in self._fixed:
                values[p] = self._fixed[p]
            elif p in kwargs:
                values[p] = real_param(kwargs[p], fname, p)
            elif p in self.defaults:
                values[p] = self.defaults[p]
            else:
                raise TypeError(f"{fname}() missing required keyword argument {p!r}")
        if self._defn.check is not None:
            self._defn.check(fname, **values)
        cdt = compute_dtype(dtype).type
        return tuple(cdt(values[p]) for p in self._defn.param_names)

    # --- methods -------------------------------------------------------------

    def _fast(self, kind: str, x: np.ndarray, g: Any = None, params: tuple | None = None,
              out: Any = None):
        """The result of a call by its short path, or None when it does not apply.

        The per-call cost of a small array is Python's, not the kernel's, and
        the regular path's ~7 us are as much as the parallel kernel's on
        2^13 float32 elements. The short path serves calls on C-contiguous
        float32 or float64 arrays (``g``, for backward, of the same shape
        and dtype; ``out=``, if given, as _fast_out says), once a regular call
        of that kind and dtype has compiled the kernel: it allocates the
        result (or takes ``out``) and calls the compiled serial loop's entry
        point directly, or from the parallel threshold on the parallel
        loop's (_cpu.run_flat). ``params`` are the parameters already resolved for
        x's dtype (the layers keep them); None means the defaults, once a
        call with the defaults resolved them.
        """
        entry = self._short.get((kind, x.dtype))
        if params is None:
            params = self._default_params.get(x.dtype)
        if entry is None or params is None or not x.flags.c_contiguous or not x.size:
            return None
        if out is None:
            y = np.empty_like(x)
        elif _fast_out(out, x):
            y = out
        else:
            return None
        if g is None:
            args = (x.ravel(), y.ravel(), params)
        else:
            if type(g) is not np.ndarray or g.dtype is not x.dtype or g.shape != x.shape \
                    or not g.flags.c_contiguous \
                    or (out is not None and out is not g and np.may_share_memory(out, g)):
                return None
            args = (g.ravel(), x.ravel(), y.ravel(), params)
        self._run_short(kind, entry, args)
        return y

    def _run_short(self, kind: str, entry, args: tuple) -> None:
        """The short path's kernel call: the serial entry point below the
        parallel threshold, the parallel loop's from it on."""
        if args[0].size < _cpu.PARALLEL_THRESHOLD >> self._shift:
            entry(*args)
        else:
            _cpu.run_flat(self._defn, kind, args)

    def _fast_with(self, kind: str, method: str, x: np.ndarray, kwargs: dict, g: Any = None,
                   out: Any = None):
        """_fast for a call that passes keyword parameters (see _given)."""
        if (kind, x.dtype) not in self._short:
            return None
        params = self._given(method, kwargs, x.dtype)
        return None if params is None else self._fast(kind, x, g, params, out)

    def _given(self, method: str, kwargs: dict, dtype: np.dtype) -> tuple | None:
        """The parameters of a call that passes them, validated as the regular
        path does and kept for the next call that passes the same values (of
        the same types: True is refused where 1 is taken); None for a value
        that cannot be kept (the regular path says what is wrong with it)."""
        if not kwargs:
            return self._default_params.get(dtype)
        try:
            key = (dtype, *((k, type(v), v) for k, v in kwargs.items()))
            params = self._given_params.get(key)
        except TypeError:  # unhashable
            return None
        if params is None:
            params = self._resolve(method, kwargs, dtype)
            if len(self._given_params) >= 64:
                self._given_params.clear()
            self._given_params[key] = params
        return params

    def _fast_pair(self, x: np.ndarray, kwargs: dict, out: Any):
        """value_and_grad's short path (as _fast): the pair, or None."""
        entry = self._short.get(("value_and_grad", x.dtype))
        if entry is None or not x.flags.c_contiguous or not x.size:
            return None
        params = self._given("value_and_grad", kwargs, x.dtype)
        if params is None:
            return None
        if out is None:
            y, d = np.empty_like(x), np.empty_like(x)
        elif type(out) is tuple and len(out) == 2 and _fast_out(out[0], x) and _fast_out(out[1], x):
            y, d = out
            if y is d or not (y.flags.owndata and d.flags.owndata) and np.may_share_memory(y, d):
                return None
        else:
            return None
        args = (x.ravel(), y.ravel(), d.ravel(), params)
        self._run_short("value_and_grad", entry, args)
        return y, d

    def _enable_fast(self, kind: str, dtype: np.dtype) -> None:
        if dtype in (F32, F64) and (kind, dtype) not in self._short:
            self._short[(kind, dtype)] = _cpu.serial_entry(self._defn, kind, dtype)
        if kind == "forward" and dtype not in self._forward1 and (kind, dtype) in self._short:
            params = self._default_params.get(dtype)
            if params is not None:
                self._forward1[dtype] = (self._short[(kind, dtype)], params)

    def _unary(self, kind: str, method: str, x: Any, out: Any, kwargs: dict) -> Any:
        fname = self.name if method == "__call__" else f"{self.name}.{method}"
        other = backend(fname, x=x, out=out)
        if other is not None:
            return other.call(self, method, (x,), {"out": out, **kwargs})
        a = Arg(x, fname, "x")
        params = self._params(method, kwargs, a.dtype)
        if out is not None:
            check_out(out, a.value.shape, a.dtype, fname)
        dest = _dest(out, a)
        _cpu.run(self._defn, kind, (a.value,), (dest,), params, fresh=dest is not out)
        self._enable_fast(kind, a.dtype)
        return finish(_store(dest, out, a), a.scalar, out)

    def __call__(self, x: Any, *, out: np.ndarray | None = None, **params: float) -> Any:
        if type(x) is np.ndarray and not params:
            dt = x.dtype
            short = self._forward1.get(dt)
            # the commonest small call, inlined (each step here costs ~50 ns;
            # np.empty(n, dt) ~100 ns less than np.empty_like(x), ravel() 60 ns
            # less than reshape(-1))
            if short is not None and (nd := x.ndim) and x.flags.c_contiguous \
                    and 0 < (n := x.size) < _cpu.PARALLEL_THRESHOLD >> self._shift:
                if out is None:
                    y = np.empty(n, dt) if nd == 1 else np.empty_like(x)
                elif _fast_out(out, x):
                    y = out
                else:
                    y = None
                if y is not None:
                    if nd == 1:
                        short[0](x, y, short[1])
                    else:
                        short[0](x.ravel(), y.ravel(), short[1])
                    return y
            if x.ndim:
                y = self._fast("forward", x, out=out)
                if y is not None:
                    return y
        elif type(x) is np.ndarray and x.ndim:
            y = self._fast_with("forward", "__call__", x, params, out=out)
            if y is not None:
                return y
        return self._unary("forward", "__call__", x, out, params)

    def grad(self, x: Any, *, out: np.ndarray | None = None, **params: float) -> Any:
        """The elementwise derivative dy/dx."""
        if type(x) is np.ndarray and x.ndim:
            y = self._fast_with("grad", "grad", x, params, out=out) if params \
                else self._fast("grad", x, out=out)
            if y is not None:
                return y
        return self._unary("grad", "grad", x, out, params)

    def backward(self, grad_output: Any, x: Any = None, *, y: Any = None,
                 out: np.ndarray | None = None, **params: float) -> Any:
        """The vector-Jacobian product ``grad_output * dy/dx``, fused in one pass.

        Pass the forward input ``x``; functions whose derivative is a function
        of their output (sigmoid, tanh, relu) also accept ``y=`` instead.
        ``grad_output`` must broadcast to the shape of ``x`` (or ``y``).
        """
        if (x is None) != (y is None):
            kind, a = ("backward", x) if y is None else ("backward_y", y)
            if type(a) is np.ndarray and a.ndim and (y is None or self.from_output):
                gx = self._fast_with(kind, "backward", a, params, grad_output, out) if params \
                    else self._fast(kind, a, grad_output, out=out)
                if gx is not None:
                    return gx
        fname = f"{self.name}.backward"
        if (x is None) == (y is None):
            raise TypeError(f"{fname}() takes the forward input x or, where supported, "
                            "the output y=, exactly one of them")
        if y is not None and not self.from_output:
            raise TypeError(f"{fname}() does not accept y=: the derivative of {self.name} "
                            "is not a function of its output; pass the input x")
        other = backend(fname, grad_output=grad_output, x=x, y=y, out=out)
        if other is not None:
            return other.call(self, "backward", (grad_output, x), {"y": y, "out": out, **params})
        kind, name, value = ("backward", "x", x) if y is None else ("backward_y", "y", y)
        a = Arg(value, fname, name)
        g = Arg(grad_output, fname, "grad_output", dtype=a.dtype)
        shape = a.value.shape
        bshape = shape
        if g.value.shape != shape:
            try:
                bshape = np.broadcast_shapes(g.value.shape, shape)
            except ValueError:
                bshape = None
        if bshape != shape:
            raise ValueError(f"{fname}(): grad_output has shape {g.value.shape}, "
                             f"which does not broadcast to the shape {shape} of {name}")
        params = self._params("backward", params, a.dtype)
        if out is not None:
            check_out(out, shape, a.dtype, fname)
        dest = _dest(out, a)
        _cpu.run(self._defn, kind, (g.value, a.value), (dest,), params, fresh=dest is not out)
        self._enable_fast(kind, a.dtype)
        return finish(_store(dest, out, a), a.scalar, out)

    def value_and_grad(self, x: Any, *, out: tuple | None = None, **params: float) -> tuple:
        """``(f(x), f'(x))`` computed in one pass; ``out`` is a pair of arrays."""
        if type(x) is np.ndarray and x.ndim:
            pair = self._fast_pair(x, params, out)
            if pair is not None:
                return pair
        fname = f"{self.name}.value_and_grad"
        outs = out if isinstance(out, tuple) and len(out) == 2 else (None, None)
        other = backend(fname, x=x, out0=outs[0], out1=outs[1])
        if other is not None:
            return other.call(self, "value_and_grad", (x,), {"out": out, **params})
        a = Arg(x, fname, "x")
        params = self._params("value_and_grad", params, a.dtype)
        if out is not None:
            if not isinstance(out, tuple) or len(out) != 2:
                raise TypeError(f"{fname}(): out must be a tuple of two arrays")
            check_out(out[0], a.value.shape, a.dtype, fname, "out[0]")
            check_out(out[1], a.value.shape, a.dtype, fname, "out[1]")
            if np.may_share_memory(out[0], out[1]):
                raise ValueError(f"{fname}(): out[0] and out[1] must not share memory")
            outs = out
        else:
            outs = (None, None)
        dests = tuple(_dest(o, a) for o in outs)
        _cpu.run(self._defn, "value_and_grad", (a.value,), dests, params)
        self._enable_fast("value_and_grad", a.dtype)
        return tuple(finish(_store(d, o, a), a.scalar, o) for d, o in zip(dests, outs))


def _dest(out: np.ndarray | None, a: Arg) -> np.ndarray:
    """Where the kernel writes: ``out`` itself when its dtype is the compute dtype."""
    if out is not None and out.dtype == a.value.dtype:
        return out
    return np.empty_like(a.value)  # keeps a Fortran layout; 0-d and empty too


def _store(dest: np.ndarray, out: np.ndarray | None, a: Arg) -> np.ndarray:
    """Cast float32 results back to float16 and copy into ``out`` when needed."""
    if out is not None:
        if dest is not out:
            out[...] = dest
        return out
    if dest.dtype != a.dtype:
        return dest.astype(a.dtype)
    return dest


class Choice:
    """A function whose string parameter selects one of several definitions.

    ``gelu(x, approximate='tanh')`` dispatches to the tanh-form kernels.
    """

    def __init__(self, name: str, param: str, options: dict, default: str, doc: str, torch: str):
        self.__name__ = self.name = name
        self._param = param
        self._options = options
        self._default = default
        self.torch = torch
        self.__doc__ = doc
        self.param_names = (param,)
        self.defaults = {param: default}
        self.from_output = False
        first = next(iter(options.values()))
        self.__module__ = first.__module__  # where the choice is defined (pickling)
        self.__signature__ = first.__signature__.replace(parameters=[
            *list(first.__signature__.parameters.values())[:1],
            inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY, default=default),
            *list(first.__signature__.parameters.values())[1:],
        ])

    def __reduce__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<fastact elementwise function {self.name}({self._param}={self._default!r})>"

    def _pick(self, method: str, kwargs: dict) -> Elementwise:
        choice = kwargs.pop(self._param, self._default)
        if choice not in self._options:
            fname = self.name if method == "__call__" else f"{self.name}.{method}"
            raise ValueError(f"{fname}(): {self._param} must be one of "
                             f"{sorted(self._options)}, got {choice!r}")
        return self._options[choice]

    def __call__(self, x: Any, *, out: np.ndarray | None = None, **kwargs: Any) -> Any:
        if not kwargs:  # the default definition, without _pick's cost on small calls
            return self._options[self._default](x, out=out)
        return self._pick("__call__", kwargs)(x, out=out, **kwargs)

    def grad(self, x: Any, **kwargs: Any) -> Any:
        return self._pick("grad", kwargs).grad(x, **kwargs)

    def backward(self, grad_output: Any, x: Any = None, **kwargs: Any) -> Any:
        return self._pick("backward", kwargs).backward(grad_output, x, **kwargs)

    def value_and_grad(self, x: Any, **kwargs: Any) -> tuple:
        return self._pick("value_and_grad", kwargs).value_and_grad(x, **kwargs)


def elementwise(torch: str | None = None, name: str | None = None) -> Callable[[type], Elementwise]:
    """Class decorator: turn a definition body into an :class:`Elementwise`.

    ``name`` is the public name when it differs from the class name (the
    variants of one :class:`Choice` share their public name).
    """

    def make(body: type) -> Elementwise:
        ns = body.__dict__
        defn = Definition(body.__name__, ns["forward"], ns["grad"],
                          ns.get("grad_from_output"), ns.get("check"))
        f = Elementwise(defn, name=name, doc=inspect.cleandoc(body.__doc__ or ""), torch=torch)
        f._global = body.__name__
        f.__module__ = body.__module__
        return f

    return make
