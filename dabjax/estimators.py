"""Gradient estimators for hard functions, all behind one call shape.

An estimator is an object with two methods::

  params = estimator.init(key, x, *args)
  y, aux = estimator.apply(params, x, *args, rng=None)

``params`` are the estimator's own trainable parameters (a bridge for DAB, a
control variate for RELAX, ``{}`` for the rest), always passed explicitly.
``y`` is what the model sees. ``aux`` is an `EstimatorAux`:

* ``aux.loss`` is the estimator's own loss, a scalar the model adds to its
  task loss. It trains only ``params`` and never moves ``x``; it is 0 for
  estimators without parameters.
* ``aux.output`` is what the estimator's network produced (the bridge
  output for DAB), for diagnostics; ``None`` otherwise.
* ``aux.log_prob`` is, for estimators that sample, the log-probability of
  the sample given ``x``, ``[batch]``. Score-function estimators (REINFORCE,
  RELAX) return it and the model adds
  ``stop_gradient(task_loss - baseline) * log_prob`` to its loss.

``rng`` is a PRNG key for estimators that sample and is ignored by the
rest, so a model switches estimators by changing one argument.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

PyTree = Any


class EstimatorAux(NamedTuple):
  """What an estimator returns beside the hard output.

  Attributes:
    loss: the estimator's own scalar loss (the γ-weighted bridge loss for
      DAB); its gradient reaches only the estimator's parameters.
    output: the estimator network's output (a pytree like ``y``), or
      ``None``. Gradients through it reach only the estimator's parameters.
    log_prob: ``[batch]`` log-probability of a sampled output, or ``None``.

  Example:
    >>> import jax.numpy as jnp
    >>> aux = EstimatorAux(loss=jnp.float32(0.0))
    >>> aux.output is None and aux.log_prob is None
    True
  """

  loss: jax.Array
  output: PyTree = None
  log_prob: jax.Array | None = None


class Estimator(Protocol):
  """The call shape shared by DAB and the estimators it is compared with."""

  def init(self, key: jax.Array, x: PyTree, *args: Any) -> PyTree: ...

  def apply(
    self, params: PyTree, x: PyTree, *args: Any, rng: jax.Array | None = None
  ) -> tuple[PyTree, EstimatorAux]: ...


def _no_loss() -> EstimatorAux:
  return EstimatorAux(loss=jnp.zeros((), jnp.float32))


@dataclasses.dataclass(frozen=True)
class StraightThrough:
  """Straight-through estimator: the backward pass treats ``fn`` as identity.

  The forward value is ``fn(x, *args)``; the gradient into ``x`` is the
  incoming cotangent unchanged. This only makes sense when ``fn`` keeps the
  shape of its input, so shape-changing functions are refused.

  Attributes:
    fn: the hard function.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from dabjax import hard
    >>> ste = StraightThrough(hard.sign)
    >>> x = jnp.array([-0.5, 2.0])
    >>> jax.grad(lambda x: ste.apply({}, x)[0].sum())(x)
    Array([1., 1.], dtype=float32)
  """

  fn: Any

  def init(self, key: jax.Array, x: PyTree, *args: Any) -> PyTree:
    """Returns ``{}``: the straight-through estimator has no parameters."""
    del key, x, args
    return {}

  def apply(
    self, params: PyTree, x: PyTree, *args: Any, rng: jax.Array | None = None
  ) -> tuple[PyTree, EstimatorAux]:
    """Returns ``fn(x, *args)`` with an identity backward pass.

    Raises:
      ValueError: if ``fn`` changes the structure or shape of ``x``.
    """
    del params, rng
    y = self.fn(x, *args)
    x_leaves, x_def = jax.tree.flatten(x)
    y_leaves, y_def = jax.tree.flatten(y)
    x_shapes = [jnp.shape(a) for a in x_leaves]
    y_shapes = [jnp.shape(a) for a in y_leaves]
    if x_def != y_def or x_shapes != y_shapes:
      raise ValueError(
        "StraightThrough: the hard function must keep its input's shape, "
        "since the backward pass is the identity. Got input shapes "
        f"{x_shapes} and output shapes {y_shapes}. Use dab_bridge, whose "
        "bridge maps one shape to the other."
      )
    y = jax.tree.map(
      lambda a, b: a + jax.lax.stop_gradient(b - a).astype(a.dtype), x, y
    )
    return y, _no_loss()


@dataclasses.dataclass(frozen=True)
class GumbelSoftmax:
  """Gumbel-Softmax (Concrete) relaxation of a sampled one-hot or bit.

  With ``binary=False`` the input holds logits ``[..., categories]`` and the
  sample is ``softmax((x + gumbel_noise) / temperature)``. With
  ``binary=True`` each entry of ``x`` is the logit of one bit and the sample
  is ``sigmoid((x + logistic_noise) / temperature)``. With
  ``straight_through=True`` the forward value is the hard sample (one-hot of
  the argmax, or the bit) and the backward pass uses the relaxed sample's
  gradient. The temperature may be a traced scalar, so an annealing schedule
  can be computed inside a jitted step and set with `dataclasses.replace`.

  Attributes:
    temperature: positive relaxation temperature.
    straight_through: whether the forward value is the hard sample.
    binary: independent bits instead of one categorical per row.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> est = GumbelSoftmax(temperature=0.5, straight_through=True)
    >>> y, aux = est.apply({}, jnp.zeros((2, 4)), rng=jax.random.key(0))
    >>> y.sum(axis=-1)
    Array([1., 1.], dtype=float32)
  """

  temperature: float | jax.Array = 1.0
  straight_through: bool = False
  binary: bool = False

  def init(self, key: jax.Array, x: PyTree, *args: Any) -> PyTree:
    """Returns ``{}``: the relaxation has no parameters."""
    del key, x, args
    return {}

  def apply(
    self, params: PyTree, x: jax.Array, *args: Any, rng: jax.Array | None = None
  ) -> tuple[jax.Array, EstimatorAux]:
    """Samples a relaxed (or straight-through hard) output from logits ``x``.

    Raises:
      ValueError: if ``rng`` is missing.
    """
    del params, args
    if rng is None:
      raise ValueError(
        "GumbelSoftmax: sampling needs a PRNG key. Got rng=None. Pass "
        "rng=jax.random.key(...) to apply."
      )
    if self.binary:
      noise = jax.random.logistic(rng, x.shape, x.dtype)
      soft = jax.nn.sigmoid((x + noise) / self.temperature)
      hard = (x + noise > 0).astype(x.dtype)
    else:
      noise = jax.random.gumbel(rng, x.shape, x.dtype)
      soft = jax.nn.softmax((x + noise) / self.temperature, axis=-1)
      hard = jax.nn.one_hot(
        jnp.argmax(x + noise, -1), x.shape[-1], dtype=x.dtype
      )
    if self.straight_through:
      return soft + jax.lax.stop_gradient(hard - soft), _no_loss()
    return soft, _no_loss()
