"""A classifier whose hidden features pass through a sort.

A small convolutional trunk maps an image to a feature vector, which is cut
into groups and sorted in ascending order within each group; a dense layer
reads the sorted features as class logits. The sort is the network's only
non-linearity between the trunk and the head.

Shapes: ``[batch, height, width, channels]`` images, ``[batch, groups,
group_size]`` features around the sort, ``[batch, classes]`` logits.
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

import dabjax

ESTIMATORS = ("dab", "ste", "softsort", "exact", "none")
BRIDGES = ("group", "full")


def soft_sort(x: jax.Array, temperature: float) -> jax.Array:
  """A relaxed ascending sort along the last axis.

  Output position ``i`` is a softmax-weighted average of the inputs, where
  input ``j`` weighs ``exp(-|sort(x)_i - x_j| / temperature)``: the inputs
  nearest to the ``i``-th smallest value count most. The sorted values are
  held fixed (no gradient through them), so every gradient comes from the
  relaxed permutation; as the temperature goes to 0 the output becomes the
  hard sort.

  Args:
    x: ``[..., n]`` floating array.
    temperature: a positive scale of the softmax; smaller is harder.

  Returns:
    ``[..., n]`` relaxed sorted values.

  Raises:
    ValueError: if ``temperature`` is not positive.

  Example:
    >>> x = jnp.array([0.3, -1.0, 2.0])
    >>> soft_sort(x, 0.01).round(3)
    Array([-1. ,  0.3,  2. ], dtype=float32)
  """
  if not temperature > 0:
    raise ValueError(
      f"soft_sort: temperature must be positive. Got {temperature}. Pass "
      "a temperature > 0."
    )
  anchors = jax.lax.stop_gradient(dabjax.hard.sort(x))
  distance = jnp.abs(anchors[..., :, None] - x[..., None, :])
  weights = jax.nn.softmax(-distance / temperature, axis=-1)
  return jnp.einsum("...ij,...j->...i", weights, x)


def group_sort(x: jax.Array, groups: int) -> jax.Array:
  """Sorts each of ``groups`` equal slices of the last axis, in place.

  Args:
    x: ``[..., groups * group_size]`` floating array.
    groups: how many groups the last axis holds.

  Returns:
    ``[..., groups * group_size]``: every group sorted in ascending order.
  """
  grouped = x.reshape(*x.shape[:-1], groups, x.shape[-1] // groups)
  return dabjax.hard.sort(grouped).reshape(x.shape)


class SortClassifier(nn.Module):
  """Conv trunk -> features -> sort within groups -> dense head.

  Attributes:
    estimator: how the sort is differentiated while training: ``"dab"`` (a
      bridge learns the sort and its Jacobian carries the gradient),
      ``"ste"`` (straight-through: identity backward), ``"softsort"`` (the
      relaxed `soft_sort` replaces the sort while training), ``"exact"``
      (JAX's own derivative of the sort, the permutation) or ``"none"`` (no
      sort at all: the reference network). Evaluation (``train=False``)
      always uses the hard sort, except for ``"none"``.
    num_classes: number of classes.
    conv_features: output channels of each 3x3 convolution; each is
      followed by a ReLU and a 2x2 average pooling.
    groups: number of sorted groups.
    group_size: features per group; ``groups=1`` sorts the whole vector.
    bridge: ``"group"``: one MLP, shared across groups, maps a group's
      ``group_size`` values to their sorted values; ``"full"``: one MLP
      maps the whole feature vector to the group-sorted vector.
    bridge_hidden: hidden widths of the bridge MLP.
    gamma: weight γ of the bridge loss.
    temperature: temperature of `soft_sort`.
  """

  estimator: str = "dab"
  num_classes: int = 10
  conv_features: Sequence[int] = (32, 64)
  groups: int = 16
  group_size: int = 8
  bridge: str = "group"
  bridge_hidden: Sequence[int] = (64, 64)
  gamma: float = 10.0
  temperature: float = 0.1

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = True) -> jax.Array:
    batch = images.shape[0]
    h = images
    for features in self.conv_features:
      h = nn.relu(nn.Conv(features, (3, 3))(h))
      h = nn.avg_pool(h, (2, 2), (2, 2))
    width = self.groups * self.group_size
    h = nn.LayerNorm()(nn.Dense(width)(h.reshape(batch, -1)))

    h = self._sort(h.reshape(batch, self.groups, self.group_size), train)
    return nn.Dense(self.num_classes)(h.reshape(batch, width))

  def _sort(self, h: jax.Array, train: bool) -> jax.Array:
    """Sorts ``[batch, groups, group_size]`` features within each group."""
    if self.estimator == "none":
      return h
    if self.estimator == "dab":
      # The layer runs the hard sort alone when not training.
      return self._bridged_sort(h, train)
    if not train or self.estimator == "exact":
      return dabjax.hard.sort(h)
    if self.estimator == "ste":
      return dabjax.StraightThrough(dabjax.hard.sort).apply({}, h)[0]
    return soft_sort(h, self.temperature)

  def _bridged_sort(self, h: jax.Array, train: bool) -> jax.Array:
    """The sort as a `dabjax.linen.DabLayer` named ``"sort"``."""
    bridge = dabjax.DenseBridge(hidden=tuple(self.bridge_hidden))
    layer_kwargs = dict(gamma=self.gamma, name="sort")
    if self.bridge == "group":
      layer = dabjax.linen.DabLayer(dabjax.hard.sort, bridge, **layer_kwargs)
      return layer(h, train=train)
    flat = h.reshape(h.shape[0], math.prod(h.shape[1:]))
    sort_groups = lambda v: group_sort(v, self.groups)
    layer = dabjax.linen.DabLayer(sort_groups, bridge, **layer_kwargs)
    return layer(flat, train=train).reshape(h.shape)
