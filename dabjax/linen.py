"""`DabLayer` for Flax Linen models.

The layer stores its bridge variables as one parameter, ``bridge_params``, and
sows, under the collection `COLLECTION`, the bridge loss and the fidelity
metrics of every call. Make that collection mutable in ``apply`` and hand
the returned state to `dabjax.bridge_losses`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import flax.linen as nn

from dabjax.diagnostics import bridge_metrics
from dabjax.transform import dab_bridge

COLLECTION = "dab"


class DabLayer(nn.Module):
  """A hard layer trained through a bridge (see `dabjax.dab_bridge`).

  Attributes:
    fn: the hard function, ``fn(x, *args)``.
    bridge: the bridge module; ``None`` picks the default bridge.
    gamma: weight γ of the bridge loss.
    batch_ndim: number of leading batch axes.
    mode: ``"vjp"`` or ``"jvp"``, as in `dabjax.dab_bridge`.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> import dabjax
    >>> layer = DabLayer(dabjax.hard.sign, dabjax.DenseBridge(hidden=(8,)))
    >>> x = jnp.array([[0.5, -2.0]])
    >>> variables = layer.init(jax.random.key(0), x)
    >>> y, state = layer.apply(variables, x, mutable=[COLLECTION])
    >>> y
    Array([[ 1., -1.]], dtype=float32)
    >>> total, metrics = dabjax.bridge_losses(state)
    >>> total.shape
    ()
  """

  fn: Callable[..., Any]
  bridge: nn.Module | None = None
  gamma: float = 10.0
  batch_ndim: int = 1
  mode: Literal["vjp", "jvp"] = "vjp"

  @nn.compact
  def __call__(self, x: Any, *args: Any, train: bool = True) -> Any:
    """Returns ``fn(x, *args)``; with ``train`` it also sows the bridge loss.

    Args:
      x: input of the hard function, ``[batch, ...]``.
      *args: extra arguments of ``fn`` (no gradient reaches them).
      train: whether to run the bridge; ``False`` runs ``fn`` alone.

    Returns:
      The hard output.
    """
    # A module held as a field gets bound to this one; the transform needs
    # the plain, unbound definition to init and apply it by itself.
    bridge = None if self.bridge is None else self.bridge.clone(parent=None)
    bridged = dab_bridge(
      self.fn,
      bridge,
      gamma=self.gamma,
      batch_ndim=self.batch_ndim,
      mode=self.mode,
    )
    params = self.param(
      "bridge_params", lambda key: bridged.init(key, x, *args)
    )
    if not train or self.is_initializing():
      return bridged.inference(x, *args)
    y, aux = bridged.apply(params, x, *args)
    self.sow(COLLECTION, "loss", aux.loss)
    self.sow(
      COLLECTION, "metrics", bridge_metrics(y, aux, batch_ndim=self.batch_ndim)
    )
    return y
