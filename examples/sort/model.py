"""The sorting networks: the paper's MLP with a hard layer, and a Ptr-Net.

Shapes: ``[batch, n]`` input sequences, ``[batch, n, n]`` logits where row
``i`` scores, over the ``n`` input positions, which one holds the ``i``-th
smallest value.
"""

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

import dabjax

ESTIMATORS = ("dab", "ste", "none", "ptrnet")
BRIDGES = ("dense", "elementwise")


class SortMLP(nn.Module):
  """n -> 128 -> 128 -> 256 (tanh) -> hard signum -> n*n logits.

  Attributes:
    estimator: how the hard layer is differentiated: ``"dab"`` (a bridge),
      ``"ste"`` (straight-through) or ``"none"`` (no hard layer: the
      continuous reference).
    bridge: ``"dense"`` (the paper's 256 -> 128 -> 128 -> 256) or
      ``"elementwise"`` (a scalar MLP shared across the 256 features).
    bridge_hidden: hidden widths of the bridge.
    hidden: widths of the encoder; the last is the hard layer's width.
    margin: the signum's dead zone.
    gamma: weight γ of the bridge loss.
  """

  estimator: str = "dab"
  bridge: str = "dense"
  bridge_hidden: Sequence[int] = (128, 128)
  hidden: Sequence[int] = (128, 128, 256)
  margin: float = 0.5
  gamma: float = 10.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    n = x.shape[-1]
    h = x
    for width in self.hidden:
      h = jnp.tanh(nn.Dense(width)(h))

    signum = functools.partial(dabjax.hard.signum, margin=self.margin)
    if self.estimator == "dab":
      bridge = (
        dabjax.DenseBridge(hidden=self.bridge_hidden)
        if self.bridge == "dense"
        else dabjax.ElementwiseBridge(hidden=self.bridge_hidden)
      )
      h = dabjax.linen.DabLayer(signum, bridge, gamma=self.gamma)(
        h, train=train
      )
    elif self.estimator == "ste":
      h, _ = dabjax.StraightThrough(signum).apply({}, h)

    return nn.Dense(n * n)(h).reshape(x.shape[0], n, n)


class PtrNet(nn.Module):
  """A pointer network: an LSTM encoder and an attention-pointer decoder.

  At each output step the decoder attends over the encoder states and the
  attention scores are the logits over input positions; positions already
  chosen are masked out. Training feeds the true previous choice (teacher
  forcing); evaluation feeds the greedy choice.

  Attributes:
    hidden: LSTM and attention width.
  """

  hidden: int = 128

  @nn.compact
  def __call__(
    self, x: jax.Array, targets: jax.Array | None = None
  ) -> jax.Array:
    batch, n = x.shape
    embed = nn.Dense(self.hidden, name="embed")(x[..., None])
    carry, encoded = nn.RNN(
      nn.OptimizedLSTMCell(self.hidden), return_carry=True, name="encoder"
    )(embed)
    keys = nn.Dense(self.hidden, use_bias=False, name="keys")(encoded)
    query = nn.Dense(self.hidden, use_bias=False, name="query")
    score = nn.Dense(1, use_bias=False, name="score")
    cell = nn.OptimizedLSTMCell(self.hidden, name="decoder")

    start = self.param("start", nn.initializers.normal(0.1), (self.hidden,))
    inputs = jnp.broadcast_to(start, (batch, self.hidden))
    chosen = jnp.zeros((batch, n), bool)
    all_logits = []
    for i in range(n):
      carry, out = cell(carry, inputs)
      logits = score(jnp.tanh(keys + query(out)[:, None, :]))[..., 0]
      logits = jnp.where(chosen, -1e9, logits)
      all_logits.append(logits)
      pick = jnp.argmax(logits, -1) if targets is None else targets[:, i]
      picked = jax.nn.one_hot(pick, n, dtype=bool)
      chosen = chosen | picked
      inputs = jnp.einsum("bn,bnh->bh", picked.astype(embed.dtype), embed)
    return jnp.stack(all_logits, axis=1)
