"""An autoencoder whose code passes through a hard function.

Shapes: ``[batch, pixels]`` flattened images in ``[0, 1]``; the code is
``[batch, bits]`` (binary), ``[batch, variables, classes]`` (categorical)
or ``[batch, vectors, dim]`` (vector quantisation); the decoder returns
``[batch, pixels]`` Bernoulli logits.

The encoder is a ReLU MLP ending in a linear layer whose output ``z`` feeds
the code:

- binary: the code is ``sign(tanh(z))`` in {-1, +1} (DAB and
  straight-through); Gumbel reads ``z`` as the logits of independent bits and
  maps its {0, 1} sample to {-1, +1}.
- categorical: the code is ``one_hot_argmax(softmax(z))`` per variable (DAB
  and straight-through); Gumbel samples from the logits ``z``.
- vq: ``z`` is a set of vectors, each replaced by its nearest centroid of a
  learned codebook (DAB and straight-through); Gumbel samples a relaxed
  one-hot over centroids from the negative squared distances and mixes the
  centroids with it. The codebook gets no gradient through the hard
  function, so every estimator adds the same codebook and commitment loss.

In evaluation (``train=False``) every estimator runs the hard function alone:
no bridge, no noise.
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

import dabjax

CODES = ("binary", "categorical", "vq")
ESTIMATORS = ("dab", "gumbel", "gumbel_st", "ste")


def squared_distances(h: jax.Array, codebook: jax.Array) -> jax.Array:
  """``[..., centroids]`` squared distances of ``h`` ``[..., dim]``."""
  cross = jnp.einsum("...d,kd->...k", h, codebook)
  h_norm = jnp.sum(jnp.square(h), -1, keepdims=True)
  c_norm = jnp.sum(jnp.square(codebook), -1)
  c_norm = c_norm.reshape((1,) * (h.ndim - 1) + c_norm.shape)
  return h_norm - 2 * cross + c_norm


class CodeAutoencoder(nn.Module):
  """Encoder -> hard code -> decoder, with the code's gradient estimator.

  Attributes:
    code: ``"binary"``, ``"categorical"`` or ``"vq"``.
    estimator: ``"dab"``, ``"gumbel"`` (relaxed), ``"gumbel_st"``
      (straight-through Gumbel) or ``"ste"`` (straight-through).
    bits: number of binary code units.
    num_variables: number of categorical variables.
    classes: classes per categorical variable.
    vectors: number of vectors quantised per image.
    dim: size of each quantised vector.
    centroids: size of the VQ codebook.
    hidden: widths of the encoder's hidden layers (the decoder mirrors them).
    bridge_hidden: hidden widths of the DAB bridge.
    gamma: weight γ of the bridge loss.
    commitment: weight of the commitment term of the VQ loss.
    pixels: size of a flattened image.
  """

  code: str = "binary"
  estimator: str = "dab"
  bits: int = 128
  num_variables: int = 30
  classes: int = 10
  vectors: int = 32
  dim: int = 4
  centroids: int = 16
  hidden: Sequence[int] = (512, 256)
  bridge_hidden: Sequence[int] = (256,)
  gamma: float = 10.0
  commitment: float = 0.25
  pixels: int = 784

  @nn.compact
  def __call__(
    self,
    x: jax.Array,
    *,
    train: bool = True,
    temperature: float | jax.Array = 1.0,
    rng: jax.Array | None = None,
  ) -> tuple[jax.Array, dict[str, Any]]:
    """Encodes, passes through the hard code, decodes.

    Args:
      x: ``[batch, pixels]`` images.
      train: whether to use the estimator (``False``: the hard code alone).
      temperature: Gumbel temperature (ignored by the other estimators).
      rng: PRNG key for the Gumbel noise.

    Returns:
      ``(logits, extras)``: ``[batch, pixels]`` decoder logits and a dict
      with ``"code"`` (what the decoder saw), ``"assignment"`` (the one-hot
      choices of categorical and VQ codes, ``[batch, groups, choices]``)
      and, for VQ, ``"codebook_loss"``.
    """
    batch = x.shape[0]
    h = x
    for width in self.hidden:
      h = nn.relu(nn.Dense(width)(h))

    if self.code == "binary":
      code, extras = self._binary(
        nn.Dense(self.bits)(h), train, temperature, rng
      )
    elif self.code == "categorical":
      z = nn.Dense(self.num_variables * self.classes)(h)
      z = z.reshape(batch, self.num_variables, self.classes)
      code, extras = self._categorical(z, train, temperature, rng)
    else:
      z = nn.Dense(self.vectors * self.dim)(h).reshape(
        batch, self.vectors, self.dim
      )
      code, extras = self._vq(z, train, temperature, rng)
    extras["code"] = code

    h = code.reshape(batch, -1)
    for width in reversed(self.hidden):
      h = nn.relu(nn.Dense(width)(h))
    return nn.Dense(self.pixels)(h), extras

  def _bridged(self, fn, h, *args, train):
    bridge = dabjax.DenseBridge(hidden=tuple(self.bridge_hidden))
    return dabjax.linen.DabLayer(fn, bridge, gamma=self.gamma, name="dab")(
      h, *args, train=train
    )

  def _gumbel(self, temperature, binary):
    return dabjax.GumbelSoftmax(
      temperature=temperature,
      straight_through=self.estimator == "gumbel_st",
      binary=binary,
    )

  def _sample_rng(self, rng):
    if rng is None:
      raise ValueError(
        f"CodeAutoencoder: estimator {self.estimator!r} samples in training "
        "and needs a PRNG key. Got rng=None. Pass rng=jax.random.key(...)."
      )
    return rng

  def _binary(self, z, train, temperature, rng):
    if not train:
      return dabjax.hard.sign(z), {}
    if self.estimator == "dab":
      return self._bridged(dabjax.hard.sign, jnp.tanh(z), train=train), {}
    if self.estimator == "ste":
      code, _ = dabjax.StraightThrough(dabjax.hard.sign).apply({}, jnp.tanh(z))
      return code, {}
    bit, _ = self._gumbel(temperature, binary=True).apply(
      {}, z, rng=self._sample_rng(rng)
    )
    return 2 * bit - 1, {}

  def _categorical(self, z, train, temperature, rng):
    hard = dabjax.hard.one_hot_argmax
    if not train:
      code = hard(z)
    elif self.estimator == "dab":
      code = self._bridged(hard, jax.nn.softmax(z, -1), train=train)
    elif self.estimator == "ste":
      code, _ = dabjax.StraightThrough(hard).apply({}, jax.nn.softmax(z, -1))
    else:
      code, _ = self._gumbel(temperature, binary=False).apply(
        {}, z, rng=self._sample_rng(rng)
      )
    return code, {"assignment": hard(z)}

  def _vq(self, z, train, temperature, rng):
    codebook = self.param(
      "codebook", nn.initializers.normal(1.0), (self.centroids, self.dim)
    )
    assignment = dabjax.hard.quantize_one_hot(z, codebook)
    nearest = dabjax.hard.quantize(z, codebook)
    sg = jax.lax.stop_gradient
    # k-means step for the centroids, commitment for the encoder; summed
    # over the vectors of an image, averaged over the batch.
    codebook_loss = jnp.mean(
      jnp.sum(jnp.square(sg(z) - nearest), (1, 2))
      + self.commitment * jnp.sum(jnp.square(z - sg(nearest)), (1, 2))
    )
    extras = {"assignment": assignment, "codebook_loss": codebook_loss}
    if not train:
      return nearest, extras
    if self.estimator == "dab":
      return self._bridged(
        dabjax.hard.quantize, z, codebook, train=train
      ), extras
    if self.estimator == "ste":
      code, _ = dabjax.StraightThrough(dabjax.hard.quantize).apply(
        {}, z, codebook
      )
      return code, extras
    weights, _ = self._gumbel(temperature, binary=False).apply(
      {}, -squared_distances(z, codebook), rng=self._sample_rng(rng)
    )
    return jnp.einsum("bvk,kd->bvd", weights, codebook), extras
