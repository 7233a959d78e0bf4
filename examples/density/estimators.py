"""Gradient estimators for a layer of independent Bernoulli latents.

Every estimator has the dabjax call shape (`dabjax.Estimator`)::

  params = estimator.init(key, logits)
  y, aux = estimator.apply(params, logits, rng=key)

``logits`` are ``[batch, latents]`` Bernoulli logits ``l`` from the encoder;
``y`` is what the decoder sees, ``[batch, latents]``; ``aux`` is a
`dabjax.EstimatorAux` whose ``log_prob`` is ``log q(b | l)`` of the sample
``b``, ``[batch]``. Each sample is ``b = H(l + ε)`` with ``H`` the
Heaviside step and ``ε`` standard logistic noise, which is a draw from
``Bernoulli(sigmoid(l))``. The estimators differ in what the decoder sees
and in how a gradient reaches ``l``:

* `DabBernoulli` (``"dab"``): ``y = b``; a small bridge sees the pair
  ``(l, ε)`` and its Jacobian in ``l`` carries the gradient (dabjax's
  `dab_bridge`). ``aux.loss`` is the γ-weighted bridge loss.
* `StraightThroughBernoulli` (``"ste"``): ``y = b`` forward; backward, the
  gradient of ``b`` is that of its mean ``sigmoid(l)``.
* ``"concrete"``: `dabjax.GumbelSoftmax` with ``binary=True``: ``y`` is
  the relaxed sample ``sigmoid((l + ε) / τ)``.
* `Reinforce` (``"reinforce"``): ``y = stop_gradient(b)``. The caller adds
  the surrogate ``stop_gradient(f(b) - baseline) * aux.log_prob`` to the
  objective, where ``f`` is the quantity whose expectation is maximised.
* `Relax` (``"relax"``): ``y = stop_gradient(b)``. The encoder's gradient is
  RELAX (Grathwohl et al. 2018), formed by `Relax.logit_gradient` from the
  same key; its control variate is trained by `Relax.variance_loss`.

The score-function estimators need ``f(b)``, which only the model knows, so
the model forms their surrogate from ``aux.log_prob`` (REINFORCE) or from
the per-example logit gradient that `Relax.logit_gradient` returns
(RELAX): adding ``-sum(stop_gradient(g) * logits) / batch`` to a loss that
is minimised gives the encoder the gradient ``Jᵀ g / batch``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

import dabjax
from dabjax import hard

PyTree = Any
NAMES = ("dab", "reinforce", "relax", "concrete", "ste")


def bernoulli_log_prob(b: jax.Array, logits: jax.Array) -> jax.Array:
  """``log q(b | logits)`` of independent bits, summed over latents.

  Args:
    b: ``[batch, latents]`` of 0 and 1.
    logits: ``[batch, latents]`` Bernoulli logits.

  Returns:
    ``[batch]`` log-probabilities.
  """
  per_bit = b * jax.nn.log_sigmoid(logits) + (1.0 - b) * jax.nn.log_sigmoid(
    -logits
  )
  return jnp.sum(per_bit, axis=-1)


def _require_rng(rng: jax.Array | None, who: str) -> None:
  if rng is None:
    raise ValueError(
      f"{who}: sampling needs a PRNG key. Got rng=None. Pass "
      "rng=jax.random.key(...) to apply."
    )


def _logistic(rng: jax.Array | None, shape, dtype, who: str) -> jax.Array:
  _require_rng(rng, who)
  return jax.random.logistic(rng, shape, dtype)


def _threshold(x: tuple[jax.Array, jax.Array]) -> jax.Array:
  """The hard function of `DabBernoulli`: ``H(logits + noise)``."""
  logits, noise = x
  return hard.binarize(logits + noise)


class LogisticBridge(nn.Module):
  """Bridge of ``H(l + ε)``: a scalar MLP of the pair ``(l, ε)`` per bit.

  The weights are shared across latents, since every bit is the same
  function of its own logit and noise.

  Attributes:
    hidden: widths of the hidden layers (``tanh`` between them).
  """

  hidden: Sequence[int] = (32, 32)

  @nn.compact
  def __call__(self, x: tuple[jax.Array, jax.Array]) -> jax.Array:
    logits, noise = x
    h = jnp.stack([logits, noise], axis=-1)
    for width in self.hidden:
      h = jnp.tanh(nn.Dense(width)(h))
    return nn.Dense(1)(h)[..., 0]


@dataclasses.dataclass(frozen=True)
class DabBernoulli:
  """DAB for Bernoulli latents: ``b = H(l + ε)``, a bridge of ``(l, ε)``.

  Attributes:
    hidden: hidden widths of the `LogisticBridge`.
    gamma: weight γ of the bridge loss.
  """

  hidden: Sequence[int] = (32, 32)
  gamma: float = 10.0

  @property
  def bridged(self) -> dabjax.DabBridge:
    """The `dabjax.DabBridge` of the threshold and its bridge."""
    return dabjax.dab_bridge(
      _threshold, LogisticBridge(tuple(self.hidden)), gamma=self.gamma
    )

  def init(self, key: jax.Array, x: jax.Array) -> PyTree:
    """Returns the bridge variables for logits shaped like ``x``."""
    return self.bridged.init(key, (x, jnp.zeros_like(x)))

  def apply(
    self, params: PyTree, x: jax.Array, rng: jax.Array | None = None
  ) -> tuple[jax.Array, dabjax.EstimatorAux]:
    """Samples bits; the gradient into ``x`` is the bridge's Jacobian.

    Raises:
      ValueError: if ``rng`` is missing.
    """
    noise = _logistic(rng, x.shape, x.dtype, "DabBernoulli")
    y, aux = self.bridged.apply(params, (x, noise))
    return y, aux._replace(log_prob=bernoulli_log_prob(y, x))


def _bernoulli_from_uniform(p: jax.Array, u: jax.Array) -> jax.Array:
  return (u < p).astype(p.dtype)


@dataclasses.dataclass(frozen=True)
class StraightThroughBernoulli:
  """Straight-through: the sample's gradient is that of its mean.

  Forward, ``b ~ Bernoulli(sigmoid(l))``; backward, ``∂b/∂l`` is taken as
  ``sigmoid'(l)`` (`dabjax.StraightThrough` around ``sigmoid(l)``).
  """

  def init(self, key: jax.Array, x: jax.Array) -> PyTree:
    """Returns ``{}``: there are no parameters."""
    del key, x
    return {}

  def apply(
    self, params: PyTree, x: jax.Array, rng: jax.Array | None = None
  ) -> tuple[jax.Array, dabjax.EstimatorAux]:
    """Samples bits with a straight-through gradient.

    Raises:
      ValueError: if ``rng`` is missing.
    """
    _require_rng(rng, "StraightThroughBernoulli")
    u = jax.random.uniform(rng, x.shape, x.dtype)
    ste = dabjax.StraightThrough(_bernoulli_from_uniform)
    y, aux = ste.apply(params, jax.nn.sigmoid(x), u)
    log_prob = bernoulli_log_prob(jax.lax.stop_gradient(y), x)
    return y, aux._replace(log_prob=log_prob)


@dataclasses.dataclass(frozen=True)
class Reinforce:
  """The score function: the sample is constant, ``log q(b)`` is returned.

  With ``f`` the quantity to maximise and ``c`` a baseline that does not
  depend on ``b``, the gradient of
  ``stop_gradient(f(b) - c) * aux.log_prob`` is an unbiased estimate of
  ``∇ E[f(b)]``. The baseline here is a moving average kept by the model.
  """

  def init(self, key: jax.Array, x: jax.Array) -> PyTree:
    """Returns ``{}``: a moving-average baseline is not a parameter."""
    del key, x
    return {}

  def apply(
    self, params: PyTree, x: jax.Array, rng: jax.Array | None = None
  ) -> tuple[jax.Array, dabjax.EstimatorAux]:
    """Samples bits that carry no gradient, with their log-probability.

    Raises:
      ValueError: if ``rng`` is missing.
    """
    del params
    noise = _logistic(rng, x.shape, x.dtype, "Reinforce")
    b = jax.lax.stop_gradient(hard.binarize(x + noise))
    return b, dabjax.EstimatorAux(
      loss=jnp.zeros((), jnp.float32), log_prob=bernoulli_log_prob(b, x)
    )


class _ControlNet(nn.Module):
  """``r_ρ``: an MLP from the relaxed sample to one number per example."""

  hidden: Sequence[int]

  @nn.compact
  def __call__(self, soft: jax.Array) -> jax.Array:
    h = soft
    for width in self.hidden:
      h = nn.leaky_relu(nn.Dense(width)(h), 0.3)
    return nn.Dense(1, kernel_init=nn.initializers.zeros)(h)[..., 0]


@dataclasses.dataclass(frozen=True)
class Relax:
  """RELAX (Grathwohl et al. 2018) for independent Bernoulli bits.

  With ``u, v ~ U(0, 1)`` per bit, the relaxed sample is
  ``z = l + logit(u)``, the bit ``b = H(z)``, and the conditional relaxed
  sample ``z̃ ~ p(z | b)`` (REBAR's construction) is ``l + logit(u')``
  with ``u' = 1 - θ + vθ`` if ``b = 1`` and ``u' = v(1 - θ)`` if ``b = 0``,
  where ``θ = sigmoid(l)``; both are differentiable in ``l``. The
  estimator of ``∇_l E[f(b)]`` is

      g = [f(b) - c(z̃)] ∇_l log q(b | l) + ∇_l c(z) - ∇_l c(z̃),

  unbiased for any control variate ``c``. Here
  ``c(z) = η f_relaxed(sigmoid(z / τ)) + r_ρ(sigmoid(z))``, with
  ``f_relaxed`` the model's ``f`` evaluated at a relaxed sample (the
  concrete term of REBAR; left out when the caller has none) and ``r_ρ`` an
  MLP whose last layer starts at zero. The parameters ``φ = (η, log τ, ρ)``
  are trained to minimise ``E[g²]`` through `variance_loss`.

  Attributes:
    hidden: hidden widths of ``r_ρ``.
    temperature: initial ``τ``.
    eta: initial ``η``.
  """

  hidden: Sequence[int] = (200,)
  temperature: float = 0.5
  eta: float = 1.0

  def init(self, key: jax.Array, x: jax.Array) -> PyTree:
    """Returns ``φ`` for logits shaped like ``x``."""
    return {
      "eta": jnp.asarray(self.eta, jnp.float32),
      "log_temperature": jnp.log(jnp.asarray(self.temperature, jnp.float32)),
      "net": _ControlNet(tuple(self.hidden)).init(key, x),
    }

  def _noise(self, rng, x):
    _require_rng(rng, "Relax")
    tiny = jnp.finfo(x.dtype).tiny
    u_key, v_key = jax.random.split(rng)
    u = jax.random.uniform(u_key, x.shape, x.dtype, tiny, 1.0)
    v = jax.random.uniform(v_key, x.shape, x.dtype, tiny, 1.0)
    return u, v

  def apply(
    self, params: PyTree, x: jax.Array, rng: jax.Array | None = None
  ) -> tuple[jax.Array, dabjax.EstimatorAux]:
    """Samples bits that carry no gradient, with their log-probability.

    ``aux.output`` holds the relaxed samples ``{"z": z, "z_tilde": z̃}``.

    Raises:
      ValueError: if ``rng`` is missing.
    """
    del params
    u, v = self._noise(rng, x)
    z, b, z_tilde = _relaxed_samples(x, u, v)
    b = jax.lax.stop_gradient(b)
    return b, dabjax.EstimatorAux(
      loss=jnp.zeros((), jnp.float32),
      output={"z": z, "z_tilde": z_tilde},
      log_prob=bernoulli_log_prob(b, x),
    )

  def control(
    self,
    params: PyTree,
    z: jax.Array,
    f_relaxed: Callable[[jax.Array], jax.Array] | None = None,
  ) -> jax.Array:
    """``c(z)``, ``[batch]``, for relaxed samples ``z`` ``[batch, latents]``."""
    net = _ControlNet(tuple(self.hidden))
    c = net.apply(params["net"], jax.nn.sigmoid(z))
    if f_relaxed is not None:
      soft = jax.nn.sigmoid(z / jnp.exp(params["log_temperature"]))
      c = c + params["eta"] * f_relaxed(soft)
    return c

  def logit_gradient(
    self,
    params: PyTree,
    logits: jax.Array,
    rng: jax.Array,
    f_b: jax.Array,
    f_relaxed: Callable[[jax.Array], jax.Array] | None = None,
  ) -> jax.Array:
    """The RELAX estimate ``g`` of ``∇_l E[f(b)]`` for each example.

    Args:
      params: ``φ`` from `init`.
      logits: ``[batch, latents]``; no gradient flows back into them.
      rng: the key given to `apply`, so that ``b`` is the same sample.
      f_b: ``[batch]`` values ``f(b)`` of that sample (held constant).
      f_relaxed: ``soft -> [batch]``, ``f`` at a relaxed sample, or
        ``None`` for a control variate of ``r_ρ`` alone.

    Returns:
      ``[batch, latents]``; differentiable in ``params``, which is how
      `variance_loss` trains them.
    """
    u, v = self._noise(rng, logits)
    logits = jax.lax.stop_gradient(logits)
    f_b = jax.lax.stop_gradient(f_b)
    _, b, z_tilde_fixed = _relaxed_samples(logits, u, v)
    # The coefficient of the score is constant in l but not in φ.
    coefficient = f_b - self.control(params, z_tilde_fixed, f_relaxed)

    def surrogate(logit):
      z, _, z_tilde = _relaxed_samples(logit, u, v)
      score = coefficient * bernoulli_log_prob(b, logit)
      c_z = self.control(params, z, f_relaxed)
      c_z_tilde = self.control(params, z_tilde, f_relaxed)
      return jnp.sum(score + c_z - c_z_tilde)

    return jax.grad(surrogate)(logits)

  def variance_loss(
    self,
    params: PyTree,
    logits: jax.Array,
    rng: jax.Array,
    f_b: jax.Array,
    f_relaxed: Callable[[jax.Array], jax.Array] | None = None,
    pullback: Callable[[jax.Array], PyTree] | None = None,
  ) -> jax.Array:
    """The single-sample estimate of ``E[ĝ²]`` whose gradient trains ``φ``.

    ``ĝ`` is the gradient of the parameters upstream of the logits,
    ``pullback(g)`` (the encoder's VJP of the batch-mean estimate); without
    a ``pullback`` it is the per-example logit gradient ``g`` itself. Since
    the estimator is unbiased for every ``φ``, minimising ``E[ĝ²]``
    minimises its variance.

    Args:
      params: ``φ``.
      logits, rng, f_b, f_relaxed: as for `logit_gradient`.
      pullback: ``[batch, latents] -> pytree``, linear, or ``None``.

    Returns:
      A scalar: ``Σ ĝ²`` (summed over the pullback's leaves), or the mean
      over the batch of ``Σ_latents g²`` without a pullback.
    """
    g = self.logit_gradient(params, logits, rng, f_b, f_relaxed)
    if pullback is None:
      return jnp.mean(jnp.sum(jnp.square(g), axis=-1))
    leaves = jax.tree.leaves(pullback(g / g.shape[0]))
    return sum(jnp.sum(jnp.square(leaf)) for leaf in leaves)


def _relaxed_samples(logits, u, v):
  """``z``, ``b = H(z)`` and the conditional ``z̃ ~ p(z | b)``."""
  z = logits + jnp.log(u) - jnp.log1p(-u)
  b = hard.binarize(z)
  log_theta = jax.nn.log_sigmoid(logits)
  log_one_minus_theta = jax.nn.log_sigmoid(-logits)
  theta = jax.nn.sigmoid(logits)
  # b = 1: u' = 1 - θ(1 - v), so 1 - u' = θ(1 - v).
  on = jnp.log1p(-theta * (1.0 - v)) - (log_theta + jnp.log1p(-v))
  # b = 0: u' = v(1 - θ).
  off = (jnp.log(v) + log_one_minus_theta) - jnp.log1p(
    -v * jax.nn.sigmoid(-logits)
  )
  z_tilde = logits + jnp.where(b > 0, on, off)
  return z, b, z_tilde


def make(name: str, config: Any) -> Any:
  """The estimator called ``name``, with settings from ``config``.

  Args:
    name: one of `NAMES`.
    config: holds ``bridge_hidden``, ``gamma``, ``concrete_temperature``,
      ``relax_hidden`` and ``relax_temperature``.

  Returns:
    An object with the `dabjax.Estimator` call shape.

  Raises:
    ValueError: for an unknown name.
  """
  if name == "dab":
    return DabBernoulli(tuple(config.bridge_hidden), config.gamma)
  if name == "reinforce":
    return Reinforce()
  if name == "relax":
    return Relax(tuple(config.relax_hidden), config.relax_temperature)
  if name == "concrete":
    return dabjax.GumbelSoftmax(config.concrete_temperature, binary=True)
  if name == "ste":
    return StraightThroughBernoulli()
  raise ValueError(
    f"density: the estimator must be one of {NAMES}. Got {name!r}. Set "
    "--config.estimator to one of them."
  )
