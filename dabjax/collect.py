"""`bridge_losses`: every bridge loss in a model, gathered in one call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from dabjax import linen as dab_linen
from dabjax import nnx as dab_nnx


def bridge_losses(target: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Sums the bridge losses of every `DabLayer` in a model.

  Args:
    target: for Linen, the mutable state returned by
      ``model.apply(..., mutable=[dabjax.linen.COLLECTION])`` (or the whole
      variables dict holding that collection); for NNX, the model itself,
      after a training call.

  Returns:
    ``(total, metrics)``: the sum of all bridge losses, a scalar to add to
    the task loss, and a flat dict of fidelity metrics keyed by
    ``"<layer path>/<metric>"``. A layer called several times contributes
    each call's loss, and its metrics are averaged over the calls.

  Raises:
    TypeError: if ``target`` is neither a Linen state nor an NNX module.
    ValueError: if ``target`` holds no bridge at all.

  Example:
    >>> import jax.numpy as jnp
    >>> bridge_losses({"dab": {"layer": {"loss": (jnp.float32(2.0),)}}})[0]
    Array(2., dtype=float32)
  """
  if isinstance(target, nnx.Module):
    found = _from_nnx(target)
  elif isinstance(target, Mapping):
    found = _from_linen(target.get(dab_linen.COLLECTION, {}))
  else:
    raise TypeError(
      "bridge_losses: expected a Linen state mapping or an NNX module. Got "
      f"{type(target).__name__}. Pass the state returned by apply(..., "
      "mutable=['dab']) or the NNX model."
    )
  if not found:
    raise ValueError(
      "bridge_losses: no bridge loss found. Got a target without DabLayer "
      "outputs. For Linen, pass mutable=[dabjax.linen.COLLECTION] to apply "
      "and call with train=True; for NNX, pass a model holding a DabLayer."
    )
  total = sum(loss for loss, _ in found.values())
  metrics = {
    f"{path}/{name}": value
    for path, (_, layer_metrics) in found.items()
    for name, value in layer_metrics.items()
  }
  return jnp.asarray(total, jnp.float32), metrics


def _from_linen(tree: Mapping, prefix: str = "") -> dict[str, tuple]:
  found = {}
  if "loss" in tree:
    losses = tree["loss"]
    calls = tree.get("metrics", ())
    metrics = (
      jax.tree.map(lambda *v: jnp.mean(jnp.stack(v)), *calls) if calls else {}
    )
    found[prefix or "<root>"] = (sum(losses), metrics)
  for key, sub in tree.items():
    if key not in ("loss", "metrics") and isinstance(sub, Mapping):
      found.update(_from_linen(sub, f"{prefix}/{key}" if prefix else key))
  return found


def _from_nnx(model: nnx.Module) -> dict[str, tuple]:
  found = {}
  for path, node in nnx.iter_graph(model):
    if isinstance(node, dab_nnx.DabLayer):
      name = "/".join(str(p) for p in path) or "<root>"
      found[name] = (
        node.bridge_loss.get_value(),
        node.bridge_metrics.get_value(),
      )
  return found
