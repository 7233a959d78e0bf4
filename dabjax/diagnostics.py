"""How faithfully a bridge imitates its hard function, cheap enough per step.

All metrics are scalars computed under `jax.lax.stop_gradient` from the hard
output ``y`` ``[batch, ...]`` and the bridge output ``s`` of the same shape,
both of which `DabBridge.apply` already returns. NaN or Inf are never
masked: they propagate into the metrics and ``finite`` drops to 0.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from dabjax.estimators import EstimatorAux

PyTree = Any


def _rows(tree: PyTree, batch_ndim: int) -> jax.Array:
  """Concatenates every leaf into ``[examples, features]``."""
  leaves = jax.tree.leaves(jax.lax.stop_gradient(tree))
  n = math.prod(leaves[0].shape[:batch_ndim])
  return jnp.concatenate(
    [leaf.reshape(n, -1).astype(jnp.float32) for leaf in leaves], axis=1
  )


def bridge_metrics(
  y: PyTree, aux: EstimatorAux, batch_ndim: int = 1
) -> dict[str, jax.Array]:
  """Fidelity of a bridge to its hard function, as scalar metrics.

  Args:
    y: the hard output from `DabBridge.apply`, ``[batch, ...]``.
    aux: the `EstimatorAux` from the same call.
    batch_ndim: number of leading batch axes.

  Returns:
    A dict of float32 scalars:

    * ``loss``: the γ-weighted bridge loss, as returned in ``aux``;
    * ``mse``: mean squared difference per entry;
    * ``sign_agreement``: fraction of entries with ``y != 0`` where the
      bridge has the sign of ``y``;
    * ``argmax_agreement``: fraction of rows (along the last axis of the
      first leaf) where the bridge's argmax is ``y``'s;
    * ``cosine``: mean over examples of the cosine between ``s`` and ``y``;
    * ``finite``: 1.0 if the loss, ``y`` and ``s`` are all finite, else 0.0.

  Raises:
    ValueError: if ``aux`` carries no bridge output.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> import dabjax
    >>> bridged = dabjax.dab_bridge(dabjax.hard.sign, gamma=1.0)
    >>> x = jnp.array([[0.5, -1.0, 2.0]])
    >>> y, aux = bridged.apply(bridged.init(jax.random.key(0), x), x)
    >>> sorted(bridge_metrics(y, aux))
    ['argmax_agreement', 'cosine', 'finite', 'loss', 'mse', 'sign_agreement']
  """
  if aux.output is None:
    raise ValueError(
      "bridge_metrics: aux must carry a bridge output. Got aux.output=None, "
      "as estimators without a bridge return. Pass the aux of a DabBridge."
    )
  y_rows = _rows(y, batch_ndim)
  s_rows = _rows(aux.output, batch_ndim)

  nonzero = y_rows != 0
  same_sign = jnp.sign(s_rows) == jnp.sign(y_rows)
  sign_agreement = jnp.sum(same_sign & nonzero) / jnp.maximum(
    jnp.sum(nonzero), 1
  )
  y_last = jax.tree.leaves(y)[0]
  s_last = jax.tree.leaves(aux.output)[0]
  argmax_agreement = jnp.mean(
    jnp.argmax(s_last, axis=-1) == jnp.argmax(y_last, axis=-1)
  )
  norms = jnp.linalg.norm(y_rows, axis=1) * jnp.linalg.norm(s_rows, axis=1)
  cosine = jnp.mean(
    jnp.sum(y_rows * s_rows, axis=1) / jnp.maximum(norms, 1e-12)
  )
  loss = jax.lax.stop_gradient(aux.loss)
  finite = (
    jnp.all(jnp.isfinite(loss))
    & jnp.all(jnp.isfinite(y_rows))
    & jnp.all(jnp.isfinite(s_rows))
  )
  return {
    "loss": jnp.mean(loss).astype(jnp.float32),
    "mse": jnp.mean(jnp.square(s_rows - y_rows)),
    "sign_agreement": sign_agreement.astype(jnp.float32),
    "argmax_agreement": argmax_agreement.astype(jnp.float32),
    "cosine": cosine,
    "finite": finite.astype(jnp.float32),
  }
