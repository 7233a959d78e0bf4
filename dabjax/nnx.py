"""`DabLayer` for Flax NNX models.

NNX modules build their parameters eagerly, so the layer is given an example
input when constructed. Each training call stores the bridge loss and the
fidelity metrics in `BridgeLoss` variables on the layer; `dabjax.bridge_losses`
gathers them from a whole model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

from dabjax.diagnostics import bridge_metrics
from dabjax.transform import dab_bridge


class BridgeLoss(nnx.Variable):
  """The latest bridge loss and fidelity metrics of a `DabLayer`.

  Being its own variable type, it can be picked out of a model's state
  (``nnx.state(model, BridgeLoss)``) and is never trained as a parameter.

  Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import dabjax
    >>> x = jnp.ones((2, 3))
    >>> layer = dabjax.nnx.DabLayer(dabjax.hard.sign, x, rngs=nnx.Rngs(0))
    >>> state = nnx.state(layer, BridgeLoss)
    >>> sorted(state.keys())
    ['bridge_loss', 'bridge_metrics']
  """


class DabLayer(nnx.Module):
  """A hard layer trained through a bridge (see `dabjax.dab_bridge`).

  The bridge is a Flax Linen module, as for `dabjax.dab_bridge`; its
  variables live in the layer as `nnx.Param` leaves.

  Example:
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import dabjax
    >>> x = jnp.array([[0.5, -2.0]])
    >>> layer = dabjax.nnx.DabLayer(
    ...     dabjax.hard.sign, x, bridge=dabjax.DenseBridge(hidden=(8,)),
    ...     rngs=nnx.Rngs(0))
    >>> y = layer(x)
    >>> y
    Array([[ 1., -1.]], dtype=float32)
    >>> total, metrics = dabjax.bridge_losses(layer)
    >>> total.shape
    ()
  """

  def __init__(
    self,
    fn: Callable[..., Any],
    example_input: Any,
    *args: Any,
    bridge: nn.Module | None = None,
    gamma: float = 10.0,
    batch_ndim: int = 1,
    mode: Literal["vjp", "jvp"] = "vjp",
    rngs: nnx.Rngs,
  ):
    """Builds the layer and initialises its bridge.

    Args:
      fn: the hard function, ``fn(x, *args)``.
      example_input: an input of the shape the layer will see (only its
        shape and dtype are used).
      *args: example extra arguments of ``fn``.
      bridge: the bridge module; ``None`` picks the default bridge.
      gamma: weight γ of the bridge loss.
      batch_ndim: number of leading batch axes.
      mode: ``"vjp"`` or ``"jvp"``, as in `dabjax.dab_bridge`.
      rngs: NNX random streams; ``rngs.params()`` initialises the bridge.
    """
    self.bridged = nnx.static(
      dab_bridge(fn, bridge, gamma=gamma, batch_ndim=batch_ndim, mode=mode)
    )
    variables = self.bridged.init(rngs.params(), example_input, *args)
    self.bridge_params = nnx.data(jax.tree.map(nnx.Param, variables))
    metric_shapes = jax.eval_shape(
      lambda: bridge_metrics(
        *self.bridged.apply(variables, example_input, *args),
        batch_ndim=batch_ndim,
      )
    )
    self.bridge_loss = BridgeLoss(jnp.zeros((), jnp.float32))
    self.bridge_metrics = BridgeLoss(
      {name: jnp.zeros((), s.dtype) for name, s in metric_shapes.items()}
    )

  def __call__(self, x: Any, *args: Any, train: bool = True) -> Any:
    """Returns ``fn(x, *args)``; with ``train`` it records the bridge loss.

    Args:
      x: input of the hard function, ``[batch, ...]``.
      *args: extra arguments of ``fn`` (no gradient reaches them).
      train: whether to run the bridge; ``False`` runs ``fn`` alone.

    Returns:
      The hard output.
    """
    if not train:
      return self.bridged.inference(x, *args)
    params = jax.tree.map(
      lambda p: p[...], self.bridge_params, is_leaf=_is_param
    )
    y, aux = self.bridged.apply(params, x, *args)
    self.bridge_loss.set_value(aux.loss)
    self.bridge_metrics.set_value(
      bridge_metrics(y, aux, batch_ndim=self.bridged.batch_ndim)
    )
    return y


def _is_param(leaf: Any) -> bool:
  return isinstance(leaf, nnx.Param)
