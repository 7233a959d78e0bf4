"""`dab_bridge`: run a hard function forward, a learned bridge backward.

Notation: ``fn`` is the hard function, ``x`` its input, ``g(φ, x)`` the
bridge with parameters ``φ``, ``y = fn(x)`` what the model sees and
``s = g(φ, x)`` the bridge output. Arrays are ``[batch, ...features]``:
the first ``batch_ndim`` axes index examples and the rest are features.

The contract, which `DabBridge.apply` implements with one bridge forward:

* forward value: ``y = fn(x, *args)`` bit for bit;
* task gradient into ``x``: ``J_x g(φ, x)ᵀ · ∂L/∂y``, the bridge's VJP;
* task gradient into ``φ``: none;
* bridge loss: ``γ · Σ_features (s - y)²`` per example, mean over the batch;
* bridge-loss gradient into ``φ``: the ordinary gradient of that loss;
* bridge-loss gradient into ``x``: none;
* extra arguments ``args`` of ``fn``: none (arrays get zero cotangents);
* inference (`DabBridge.inference`): ``fn`` alone, no bridge.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dabjax import bridges
from dabjax.estimators import EstimatorAux

PyTree = Any


def _is_array(leaf: Any) -> bool:
  return isinstance(leaf, jax.Array | np.ndarray | np.generic)


def _split_args(args: tuple) -> tuple[list, Callable[[list], tuple]]:
  """Splits ``args`` into array leaves (traced) and the rest (static)."""
  leaves, treedef = jax.tree.flatten(args)
  dynamic = [leaf for leaf in leaves if _is_array(leaf)]

  def merge(new_dynamic: list) -> tuple:
    it = iter(new_dynamic)
    return treedef.unflatten(
      [next(it) if _is_array(leaf) else leaf for leaf in leaves]
    )

  return dynamic, merge


def _describe(tree: PyTree) -> dict[str, str]:
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {
    jax.tree_util.keystr(path) or "<root>": f"{leaf.dtype}{list(leaf.shape)}"
    for path, leaf in flat
  }


def _check_hard_output(y: PyTree) -> None:
  flat, _ = jax.tree_util.tree_flatten_with_path(y)
  bad = {
    jax.tree_util.keystr(path) or "<root>": f"{leaf.dtype}{list(leaf.shape)}"
    for path, leaf in flat
    if not jnp.issubdtype(leaf.dtype, jnp.floating)
  }
  if bad:
    raise TypeError(
      "dab_bridge: fn must return floating arrays, since the bridge loss is "
      f"a squared error. Got {bad}. Return a float form instead, e.g. "
      "dabjax.hard.one_hot_argmax rather than jnp.argmax, or cast a boolean "
      "mask with .astype(jnp.float32)."
    )


def _check_bridge_output(s: PyTree, y: PyTree) -> None:
  s_desc, y_desc = _describe(s), _describe(y)
  if jax.tree.structure(s) != jax.tree.structure(y):
    raise ValueError(
      "dab_bridge: the bridge output must have the structure of fn's output. "
      f"Got bridge output {s_desc} and fn output {y_desc}. Make the bridge "
      "return the same pytree as fn."
    )
  bad = [
    f"{path}: bridge {s_desc[path]} vs fn {y_desc[path]}"
    for path in y_desc
    if s_desc[path] != y_desc[path]
  ]
  if bad:
    raise ValueError(
      "dab_bridge: the bridge output must match fn's output in shape and "
      f"dtype leaf by leaf. Mismatched: {'; '.join(bad)}. Give the bridge "
      "the output shape of fn (e.g. DenseBridge(out_shape=...)) and dtype."
    )


def _check_params(params: Any, x: Any) -> None:
  if _is_array(params) and isinstance(x, Mapping):
    raise TypeError(
      "dab_bridge: apply takes the bridge parameters first, then x. Got an "
      "array where the parameters go and a mapping where x goes. Call "
      "apply(params, x, *args)."
    )
  if not isinstance(params, Mapping):
    raise TypeError(
      "dab_bridge: params must be the variables that init returned (a "
      f"mapping). Got {type(params).__name__}. Call "
      "params = bridged.init(key, x) and pass it as the first argument."
    )


@dataclasses.dataclass(frozen=True)
class DabBridge:
  """A hard function paired with a bridge; made by `dab_bridge`.

  Attributes:
    fn: the hard function, called as ``fn(x, *args)``.
    bridge: the Flax bridge module, called as ``bridge.apply(params, x)``;
      ``None`` picks `dabjax.bridges.default_bridge` from the shapes.
    gamma: weight γ of the bridge loss.
    feature_reduction: ``"sum"`` (the paper) or ``"mean"`` over features.
    batch_reduction: ``"mean"`` (the paper), ``"sum"`` or ``"none"`` (one
      loss per example, ``[batch]``) over the batch axes.
    batch_ndim: how many leading axes are batch axes; 0 inside `jax.vmap`.
    mode: ``"vjp"`` (a `jax.custom_vjp`, the default) or ``"jvp"`` (a
      `jax.custom_jvp` with the same reverse-mode gradients that also
      supports `jax.jvp` and `jax.jacfwd`).

  Example:
    >>> import jax, jax.numpy as jnp
    >>> import dabjax
    >>> bridged = dabjax.dab_bridge(dabjax.hard.argsort_matrix)
    >>> x = jnp.array([[0.3, 0.1, 0.2]])
    >>> params = bridged.init(jax.random.key(0), x)
    >>> y, aux = bridged.apply(params, x)
    >>> y.shape, aux.output.shape
    ((1, 3, 3), (1, 3, 3))
    >>> grad = jax.grad(lambda x: bridged.apply(params, x)[0][0, 0, 1])(x)
    >>> bool(jnp.any(grad != 0))  # the bridge's Jacobian, not argsort's zero
    True
    >>> bridged.inference(x)[0, 0]
    Array([0., 1., 0.], dtype=float32)
  """

  fn: Callable[..., PyTree]
  bridge: nn.Module | None = None
  gamma: float = 10.0
  feature_reduction: Literal["sum", "mean"] = "sum"
  batch_reduction: Literal["mean", "sum", "none"] = "mean"
  batch_ndim: int = 1
  mode: Literal["vjp", "jvp"] = "vjp"

  def _bridge_for(self, x: PyTree, y: PyTree) -> nn.Module:
    if self.bridge is not None:
      return self.bridge
    is_leaf = jax.tree_util.treedef_is_leaf
    if not (is_leaf(jax.tree.structure(x)) and is_leaf(jax.tree.structure(y))):
      raise TypeError(
        "dab_bridge: the default bridge needs a single array in and out. "
        f"Got input {_describe(x)} and output {_describe(y)}. Pass a bridge "
        "module written for these pytrees."
      )
    return bridges.default_bridge(x, y)

  def init(self, key: jax.Array, x: PyTree, *args: Any) -> PyTree:
    """Initialises the bridge parameters for inputs shaped like ``x``.

    Args:
      key: PRNG key.
      x: an example input, ``[batch, ...]``.
      *args: extra arguments of ``fn``.

    Returns:
      The bridge's Flax variables, to pass to `apply`.

    Raises:
      TypeError: if ``fn`` returns non-floating arrays.
      ValueError: if the bridge output does not match ``fn``'s output.
    """
    y = jax.eval_shape(lambda x: self.fn(x, *args), x)
    _check_hard_output(y)
    bridge = self._bridge_for(x, y)
    params = bridge.init(key, x)
    _check_bridge_output(jax.eval_shape(bridge.apply, params, x), y)
    return params

  def inference(self, x: PyTree, *args: Any) -> PyTree:
    """Returns ``fn(x, *args)``; the bridge is not evaluated."""
    return self.fn(x, *args)

  def apply(
    self, params: PyTree, x: PyTree, *args: Any, rng: jax.Array | None = None
  ) -> tuple[PyTree, EstimatorAux]:
    """Runs ``fn`` forward with the bridge's gradient backward.

    Args:
      params: bridge variables from `init`.
      x: input of ``fn``, ``[batch, ...]``.
      *args: extra arguments of ``fn``. Arrays are traced and receive zero
        gradient; other values (ints, floats, strings) are held static.
      rng: ignored; accepted so that every estimator shares one call shape.

    Returns:
      ``(y, aux)``: ``y = fn(x, *args)`` and an `EstimatorAux` whose
      ``loss`` is the γ-weighted bridge loss and ``output`` the bridge
      output ``s``.

    Raises:
      TypeError: if ``params`` is misplaced or ``fn`` returns non-floats.
      ValueError: if the bridge output does not match ``fn``'s output.
    """
    del rng
    _check_params(params, x)
    dynamic, merge = _split_args(args)

    def hard(x, dynamic):
      return self.fn(x, *merge(dynamic))

    y_shape = jax.eval_shape(hard, x, dynamic)
    _check_hard_output(y_shape)
    bridge = self._bridge_for(x, y_shape)
    _check_bridge_output(jax.eval_shape(bridge.apply, params, x), y_shape)
    self._check_batch_ndim(y_shape)

    core = _vjp_core if self.mode == "vjp" else _jvp_core
    y, s = core(hard, bridge.apply)(params, x, dynamic)
    return y, EstimatorAux(loss=self._loss(s, y), output=s)

  def _check_batch_ndim(self, y: PyTree) -> None:
    flat, _ = jax.tree_util.tree_flatten_with_path(y)
    short = {
      jax.tree_util.keystr(path) or "<root>": list(leaf.shape)
      for path, leaf in flat
      if leaf.ndim < self.batch_ndim
    }
    if short:
      raise ValueError(
        f"dab_bridge: with batch_ndim={self.batch_ndim} every output needs "
        f"at least that many axes. Got shapes {short}. Inside jax.vmap, pass "
        "batch_ndim=0."
      )

  def _loss(self, s: PyTree, y: PyTree) -> jax.Array:
    """γ · Σ_features (s - sg(y))², reduced over the batch axes."""
    reduce_features = jnp.sum if self.feature_reduction == "sum" else jnp.mean
    per_example = sum(
      reduce_features(
        jnp.square(a - jax.lax.stop_gradient(b)).astype(jnp.float32),
        axis=tuple(range(self.batch_ndim, a.ndim)),
      )
      for a, b in zip(jax.tree.leaves(s), jax.tree.leaves(y), strict=True)
    )
    if self.batch_reduction == "mean":
      per_example = jnp.mean(per_example)
    elif self.batch_reduction == "sum":
      per_example = jnp.sum(per_example)
    return self.gamma * per_example


def _zeros_like(tree: PyTree) -> PyTree:
  return jax.tree.map(jnp.zeros_like, tree)


def _vjp_core(hard: Callable, bridge_apply: Callable) -> Callable:
  """``(params, x, dynamic) -> (y, s)`` with the DAB cotangent routing."""

  @jax.custom_vjp
  def core(params, x, dynamic):
    return hard(x, dynamic), bridge_apply(params, x)

  def fwd(params, x, dynamic):
    s, pullback = jax.vjp(bridge_apply, params, x)
    return (hard(x, dynamic), s), (pullback, dynamic)

  def bwd(residuals, ct):
    pullback, dynamic = residuals
    ct_y, ct_s = ct
    # The task cotangent reaches only x, the bridge-loss one only params.
    # Under jit the unused half of each pullback is dead code and removed.
    _, ct_x = pullback(ct_y)
    ct_params, _ = pullback(ct_s)
    return ct_params, ct_x, _zeros_like(dynamic)

  core.defvjp(fwd, bwd)
  return core


def _jvp_core(hard: Callable, bridge_apply: Callable) -> Callable:
  """Like `_vjp_core`, as a `jax.custom_jvp` so forward mode works too."""

  @jax.custom_jvp
  def core(params, x, dynamic):
    return hard(x, dynamic), bridge_apply(params, x)

  @core.defjvp
  def core_jvp(primals, tangents):
    params, x, dynamic = primals
    t_params, t_x, _ = tangents
    # Two JVPs of the bridge: x's tangent feeds y, params' tangent feeds s.
    # Under jit the shared primal computation is deduplicated.
    s, t_y = jax.jvp(lambda x: bridge_apply(params, x), (x,), (t_x,))
    _, t_s = jax.jvp(lambda p: bridge_apply(p, x), (params,), (t_params,))
    return (hard(x, dynamic), s), (t_y, t_s)

  return core


def dab_bridge(
  fn: Callable[..., PyTree] | None = None,
  bridge: nn.Module | None = None,
  *,
  gamma: float = 10.0,
  feature_reduction: Literal["sum", "mean"] = "sum",
  batch_reduction: Literal["mean", "sum", "none"] = "mean",
  batch_ndim: int = 1,
  mode: Literal["vjp", "jvp"] = "vjp",
) -> DabBridge | Callable[[Callable[..., PyTree]], DabBridge]:
  """Pairs a hard function with a learned bridge for its backward pass.

  The result ``bridged`` is a `DabBridge`: ``bridged.init(key, x)`` makes
  the bridge parameters and ``bridged.apply(params, x, *args)`` returns
  ``(fn(x, *args), aux)``, where ``aux.loss`` is the γ-weighted bridge loss
  from the same bridge forward that serves the backward pass. Add it to the
  task loss and take one gradient: the task loss moves ``x`` through the
  bridge's Jacobian and never the bridge; the bridge loss trains the bridge
  and never moves ``x``. `DabBridge.inference` runs ``fn`` alone.

  Parameters are an explicit argument, so the result composes with `jit`,
  `vmap` (use ``batch_ndim=0`` inside), `grad`, `pmap`, `shard_map` and
  sharded `jit`. Used without ``fn`` it is a decorator.

  .. warning::
    Forward-mode differentiation (`jax.jvp`, `jax.jacfwd`) fails through
    the default ``mode="vjp"``; use ``mode="jvp"``.

  Args:
    fn: the hard function, ``fn(x, *args)``, returning floating arrays.
      Bind static settings with `functools.partial` or pass them in
      ``args``; array arguments in ``args`` receive no gradient.
    bridge: a Flax Linen module mapping ``x`` to an array shaped like
      ``fn(x)``; ``None`` uses `dabjax.bridges.default_bridge`.
    gamma: weight γ of the bridge loss (the paper uses 10).
    feature_reduction: ``"sum"`` (the paper) or ``"mean"`` over features.
    batch_reduction: ``"mean"`` (the paper), ``"sum"`` or ``"none"``.
    batch_ndim: number of leading batch axes of ``x`` and ``fn(x)``.
    mode: ``"vjp"`` or ``"jvp"``, see the warning.

  Returns:
    A `DabBridge`, or a decorator that makes one when ``fn`` is omitted.

  Raises:
    TypeError: if ``fn`` is not callable or ``bridge`` is not a Flax module.
    ValueError: if an option has a value outside its choices.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> import dabjax
    >>> @dabjax.dab_bridge(bridge=dabjax.DenseBridge(hidden=(16,)))
    ... def binary_code(x):
    ...   return dabjax.hard.sign(x)
    >>> x = jnp.array([[-0.3, 0.8, 0.1]])
    >>> params = binary_code.init(jax.random.key(0), x)
    >>> y, aux = binary_code.apply(params, x)
    >>> y
    Array([[-1.,  1.,  1.]], dtype=float32)
    >>> aux.loss.shape
    ()
  """
  options = dict(
    bridge=bridge,
    gamma=gamma,
    feature_reduction=feature_reduction,
    batch_reduction=batch_reduction,
    batch_ndim=batch_ndim,
    mode=mode,
  )
  if fn is None:
    return functools.partial(dab_bridge, **options)
  if not callable(fn):
    raise TypeError(
      f"dab_bridge: fn must be callable. Got {type(fn).__name__}. Pass the "
      "hard function itself, e.g. dab_bridge(dabjax.hard.sign, bridge)."
    )
  if bridge is not None and not isinstance(bridge, nn.Module):
    raise TypeError(
      "dab_bridge: bridge must be a flax.linen Module instance. Got "
      f"{type(bridge).__name__}. Pass e.g. dabjax.DenseBridge(), not a class "
      "or a function."
    )
  choices = {
    "feature_reduction": (feature_reduction, ("sum", "mean")),
    "batch_reduction": (batch_reduction, ("mean", "sum", "none")),
    "mode": (mode, ("vjp", "jvp")),
  }
  bad = [
    f"{name}={value!r} (choose from {allowed})"
    for name, (value, allowed) in choices.items()
    if value not in allowed
  ]
  if batch_ndim < 0:
    bad.append(f"batch_ndim={batch_ndim} (must be >= 0)")
  if bad:
    raise ValueError(
      f"dab_bridge: options out of range. Got {', '.join(bad)}. Use one of "
      "the listed values."
    )
  return DabBridge(fn=fn, **options)
