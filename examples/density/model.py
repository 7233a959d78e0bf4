"""The VAE with Bernoulli latents: encoder, decoder and the terms of its bound.

Shapes: ``[batch, pixels]`` binary images (784 for 28x28),
``[batch, latents]`` Bernoulli logits and samples. The two architectures of
the binary-latent literature:

* ``"linear"``: 784 -> latents logits; latents -> 784 pixel logits;
* ``"nonlinear"``: 784-200-200-latents and latents-200-200-784, with
  LeakyReLU(0.3) after each hidden layer.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

ARCHITECTURES = ("linear", "nonlinear")


class MLP(nn.Module):
  """Dense layers with LeakyReLU(0.3) between them.

  Attributes:
    features: widths of the layers; the last one is the output.
  """

  features: tuple[int, ...]

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for width in self.features[:-1]:
      x = nn.leaky_relu(nn.Dense(width)(x), 0.3)
    return nn.Dense(self.features[-1])(x)


def networks(architecture: str, latents: int, hidden: int, pixels: int):
  """The encoder and decoder of an architecture.

  Raises:
    ValueError: for an unknown architecture.
  """
  if architecture not in ARCHITECTURES:
    raise ValueError(
      f"density: the architecture must be one of {ARCHITECTURES}. Got "
      f"{architecture!r}. Set --config.architecture to one of them."
    )
  widths = () if architecture == "linear" else (hidden, hidden)
  return MLP((*widths, latents)), MLP((*widths, pixels))


def log_likelihood(pixel_logits: jax.Array, x: jax.Array) -> jax.Array:
  """``log p(x | b)`` of binary pixels, ``[batch]``."""
  return -jnp.sum(optax.sigmoid_binary_cross_entropy(pixel_logits, x), -1)


def kl_bernoulli(logits: jax.Array, prior_logits: jax.Array) -> jax.Array:
  """``KL(q || p)`` of independent bits, summed over latents, ``[batch]``.

  Args:
    logits: ``[batch, latents]`` of ``q``.
    prior_logits: ``[batch, latents]`` of ``p``.
  """
  q = jax.nn.sigmoid(logits)
  on = jax.nn.log_sigmoid(logits) - jax.nn.log_sigmoid(prior_logits)
  off = jax.nn.log_sigmoid(-logits) - jax.nn.log_sigmoid(-prior_logits)
  return jnp.sum(q * on + (1.0 - q) * off, -1)
