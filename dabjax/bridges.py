"""Bridge networks: small Flax modules that learn to imitate a hard function.

A bridge maps the hard function's input to an array of the hard function's
output shape. Only its Jacobian reaches the rest of the model, so it should
be smooth (``tanh`` by default, as in the paper). Shapes:

* ``[..., features]``: leading axes (batch, sequence, ...) then features;
* ``[batch, height, width, channels]``: image-shaped input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class DenseBridge(nn.Module):
  """An MLP over the last axis, reshaped to the hard output's trailing shape.

  The paper's sorting bridge is ``DenseBridge(hidden=(128, 128))`` on 256
  features: 256 -> 128 -> 128 -> 256 with ``tanh`` between layers.

  Attributes:
    hidden: widths of the hidden layers.
    out_shape: trailing shape of the output per leading index, e.g.
      ``(10, 10)`` for `argsort_matrix` of 10 features. ``None`` keeps the
      input's feature count.
    activation: non-linearity between layers.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> bridge = DenseBridge(hidden=(16,), out_shape=(3, 3))
    >>> x = jnp.ones((2, 3))
    >>> params = bridge.init(jax.random.key(0), x)
    >>> bridge.apply(params, x).shape
    (2, 3, 3)
  """

  hidden: Sequence[int] = (128, 128)
  out_shape: Sequence[int] | None = None
  activation: Callable[[jax.Array], jax.Array] = jnp.tanh

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    out_shape = (
      (x.shape[-1],) if self.out_shape is None else tuple(self.out_shape)
    )
    h = x
    for width in self.hidden:
      h = self.activation(nn.Dense(width)(h))
    h = nn.Dense(math.prod(out_shape))(h)
    return h.reshape(x.shape[:-1] + out_shape)


class ElementwiseBridge(nn.Module):
  """A scalar MLP applied to every entry, with weights shared across entries.

  Fits element-wise hard functions (`signum`, `sign`, `binarize`,
  `round_to_levels`) with far fewer parameters than `DenseBridge`; the
  paper's variant is ``hidden=(256, 256)``.

  Attributes:
    hidden: widths of the hidden layers of the scalar MLP.
    activation: non-linearity between layers.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> bridge = ElementwiseBridge(hidden=(8,))
    >>> x = jnp.ones((2, 5))
    >>> params = bridge.init(jax.random.key(0), x)
    >>> bridge.apply(params, x).shape
    (2, 5)
  """

  hidden: Sequence[int] = (32, 32)
  activation: Callable[[jax.Array], jax.Array] = jnp.tanh

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = x[..., None]
    for width in self.hidden:
      h = self.activation(nn.Dense(width)(h))
    return nn.Dense(1)(h)[..., 0]


class ConvBridge(nn.Module):
  """A stack of same-padded convolutions for image-shaped input.

  Attributes:
    features: channel counts of the hidden convolutions.
    out_channels: channels of the output; ``None`` keeps the input's.
    kernel_size: spatial size of every kernel.
    activation: non-linearity between layers.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> bridge = ConvBridge(features=(4,))
    >>> x = jnp.ones((2, 8, 8, 3))
    >>> params = bridge.init(jax.random.key(0), x)
    >>> bridge.apply(params, x).shape
    (2, 8, 8, 3)
  """

  features: Sequence[int] = (32, 32)
  out_channels: int | None = None
  kernel_size: tuple[int, int] = (3, 3)
  activation: Callable[[jax.Array], jax.Array] = jnp.tanh

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    out_channels = (
      x.shape[-1] if self.out_channels is None else self.out_channels
    )
    h = x
    for width in self.features:
      h = self.activation(nn.Conv(width, self.kernel_size)(h))
    return nn.Conv(out_channels, self.kernel_size)(h)


def default_bridge(
  x: jax.ShapeDtypeStruct, y: jax.ShapeDtypeStruct
) -> nn.Module:
  """The bridge `dab_bridge` uses when none is given.

  Every hard function in `dabjax.hard` keeps its input's leading axes and
  changes at most the trailing ones (`argsort_matrix` adds one,
  `quantize_one_hot` swaps ``dim`` for ``centroids``), so one rule serves
  them all: a `DenseBridge` over the last input axis whose output takes the
  hard output's trailing shape beyond those leading axes.

  Args:
    x: shape and dtype of the hard function's input, ``[..., features]``.
    y: shape and dtype of its output.

  Returns:
    A `DenseBridge` with two hidden layers of 128 units.

  Raises:
    ValueError: if ``y`` does not share ``x``'s leading axes.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> x = jax.ShapeDtypeStruct((32, 10), jnp.float32)
    >>> y = jax.ShapeDtypeStruct((32, 10, 10), jnp.float32)
    >>> default_bridge(x, y).out_shape
    (10, 10)
  """
  lead = x.shape[:-1]
  if x.ndim == 0 or y.shape[: len(lead)] != lead:
    raise ValueError(
      "default_bridge: the hard output must keep every input axis but the "
      f"last. Got input shape {x.shape} and output shape {y.shape}. Pass a "
      "bridge module that maps one to the other."
    )
  return DenseBridge(hidden=(128, 128), out_shape=y.shape[len(lead) :])
