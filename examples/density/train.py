"""Trains a VAE with Bernoulli latents by one of five gradient estimators.

Images are binarised afresh each time a batch is read (the key is folded
with the step, so a resumed run reads the same bits). The objective is the
evidence lower bound ``E_q[log p(x | b)] - KL(q(b | x) || p(b))`` with the
KL term in closed form (independent bits against a learned factorised
prior), so every estimator differs only in how it estimates the encoder's
gradient of ``E_q[log p(x | b)]``; see `examples.density.estimators`.

How each estimator's gradient is formed, from one loss that is minimised:

* ``dab``, ``ste``, ``concrete``: ``-mean(log p(x | y) - KL) + aux.loss``,
  with ``y`` the estimator's output (bits, or relaxed bits for concrete).
* ``reinforce``: the same with ``y = stop_gradient(b)`` plus
  ``-mean(stop_gradient(log p(x | b) - baseline) * log q(b | x))``; the
  baseline is a bias-corrected moving average of ``log p(x | b)``.
* ``relax``: the same with ``y = stop_gradient(b)`` plus
  ``-sum(stop_gradient(g) * logits) / batch`` where ``g`` is RELAX's
  per-example logit gradient; its control variate ``φ`` takes the gradient
  of ``Σ ĝ²``, ``ĝ`` the encoder-parameter gradient (Grathwohl et al.).

Evaluation, on the first ``eval_size`` test images re-binarised at each
evaluation: the single-sample ELBO and the ``eval_samples``-sample
importance-weighted bound (nats, higher is better), the variance of the
encoder gradient over ``grad_draws`` single-sample draws on a fixed training
batch, and at the last step an ``final_iw_samples``-sample bound on the
first ``final_iw_size`` test images.
"""

import math
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct

from examples.common import images, loop, parallel
from examples.density import estimators
from examples.density import model as vae

EVAL_SEED_OFFSET = 1_000_003


@struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any
  baseline_ema: jax.Array


def _flat_images(split: str, config: ml_collections.ConfigDict) -> np.ndarray:
  x, _ = images.load_images(config.dataset, split, config.data_dir or None)
  return x.reshape(x.shape[0], -1)


def _labels(params):
  """Optimizer labels: the estimator's own parameters, and the model."""
  return {
    name: jax.tree.map(
      lambda _, name=name: "estimator" if name == "estimator" else "model",
      subtree,
    )
    for name, subtree in params.items()
  }


class Task:
  """The VAE, its estimator and the pure functions `loop.run` needs."""

  def __init__(self, config: ml_collections.ConfigDict, train_images):
    self.config = config
    self.pixels = train_images.shape[-1]
    self.encoder, self.decoder = vae.networks(
      config.architecture, config.latents, config.hidden, self.pixels
    )
    self.estimator = estimators.make(config.estimator, config)
    self.tx = optax.multi_transform(
      {
        "model": optax.adam(config.learning_rate),
        "estimator": optax.adam(config.estimator_learning_rate),
      },
      _labels,
    )
    mean = np.clip(train_images.mean(0), 1e-3, 1 - 1e-3)
    self.pixel_bias = np.log(mean) - np.log1p(-mean)

  # The model.
  def init_params(self, key):
    enc_key, dec_key, est_key = jax.random.split(key, 3)
    x = jnp.zeros((2, self.pixels), jnp.float32)
    b = jnp.zeros((2, self.config.latents), jnp.float32)
    decoder = self.decoder.init(dec_key, b)
    last = f"Dense_{len(self.decoder.features) - 1}"
    # The output bias starts at the logit of the mean training image.
    decoder["params"][last]["bias"] = jnp.asarray(self.pixel_bias)
    return {
      "encoder": self.encoder.init(enc_key, x),
      "decoder": decoder,
      "prior": jnp.zeros((self.config.latents,), jnp.float32),
      "estimator": self.estimator.init(est_key, b),
    }

  def _log_lik(self, decoder_params, y, x):
    return vae.log_likelihood(self.decoder.apply(decoder_params, y), x)

  def _prior(self, params, logits):
    return jnp.broadcast_to(params["prior"], logits.shape)

  def loss_fn(self, params, x, key, baseline):
    """The minimised loss whose gradient is the estimator's; see above."""
    name = self.config.estimator
    logits = self.encoder.apply(params["encoder"], x)
    kl = vae.kl_bernoulli(logits, self._prior(params, logits))
    y, aux = self.estimator.apply(params["estimator"], logits, rng=key)
    ll = self._log_lik(params["decoder"], y, x)
    elbo = ll - kl
    loss = -jnp.mean(elbo) + aux.loss
    metrics = {
      "elbo": jnp.mean(elbo),
      "log_lik": jnp.mean(ll),
      "kl": jnp.mean(kl),
    }
    if name == "dab":
      metrics["bridge_loss"] = aux.loss
    if name == "reinforce":
      advantage = jax.lax.stop_gradient(ll - baseline)
      loss = loss - jnp.mean(advantage * aux.log_prob)
    if name == "relax":
      g = self.estimator.logit_gradient(
        jax.lax.stop_gradient(params["estimator"]),
        logits,
        key,
        ll,
        self._f_relaxed(params, x),
      )
      loss = loss - jnp.sum(jax.lax.stop_gradient(g) * logits) / x.shape[0]
    return loss, (metrics, jax.lax.stop_gradient(ll))

  def _f_relaxed(self, params, x):
    decoder = jax.lax.stop_gradient(params["decoder"])
    return lambda soft: self._log_lik(decoder, soft, x)

  def relax_grads(self, params, x, key):
    """The gradient of RELAX's variance objective in ``φ``."""
    encoder = jax.lax.stop_gradient(params["encoder"])
    logits, pullback = jax.vjp(lambda p: self.encoder.apply(p, x), encoder)
    y, _ = self.estimator.apply(params["estimator"], logits, rng=key)
    ll = self._log_lik(jax.lax.stop_gradient(params["decoder"]), y, x)
    var, grads = jax.value_and_grad(self.estimator.variance_loss)(
      params["estimator"],
      logits,
      key,
      ll,
      self._f_relaxed(params, x),
      lambda g: pullback(g)[0],
    )
    return var, grads

  # The pieces of loop.run.
  def init_fn(self, key):
    params = self.init_params(key)
    return TrainState(
      step=jnp.array(0),
      params=params,
      opt_state=self.tx.init(params),
      baseline_ema=jnp.zeros((), jnp.float32),
    )

  def _keys(self, step):
    step_key = jax.random.fold_in(jax.random.key(self.config.seed), step)
    return jax.random.split(step_key)

  def baseline(self, state):
    decay = self.config.baseline_decay
    correction = 1.0 - decay ** state.step.astype(jnp.float32)
    return jnp.where(
      state.step > 0, state.baseline_ema / jnp.maximum(correction, 1e-8), 0.0
    )

  def train_step(self, state, batch):
    data_key, sample_key = self._keys(state.step)
    x = images.binarize(data_key, batch)
    baseline = self.baseline(state)
    grads, (metrics, ll) = jax.grad(self.loss_fn, has_aux=True)(
      state.params, x, sample_key, baseline
    )
    if self.config.estimator == "relax":
      var, grads["estimator"] = self.relax_grads(state.params, x, sample_key)
      metrics["relax_log10_variance"] = jnp.log10(var)
      metrics["relax_temperature"] = jnp.exp(
        state.params["estimator"]["log_temperature"]
      )
      metrics["relax_eta"] = state.params["estimator"]["eta"]
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    decay = self.config.baseline_decay
    ema = decay * state.baseline_ema + (1.0 - decay) * jnp.mean(ll)
    return TrainState(
      step=state.step + 1,
      params=params,
      opt_state=opt_state,
      baseline_ema=ema,
    ), metrics

  # Evaluation.
  def bounds(self, params, x, key, samples):
    """Single-sample ELBO and ``samples``-sample IW bound, ``[batch]``."""
    logits = self.encoder.apply(params["encoder"], x)
    prior = self._prior(params, logits)
    noise = jax.random.logistic(key, (samples, *logits.shape))
    b = (logits[None] + noise > 0).astype(jnp.float32)
    pixel_logits = self.decoder.apply(params["decoder"], b)
    ll = vae.log_likelihood(
      pixel_logits, jnp.broadcast_to(x, (samples, *x.shape))
    )
    log_p = estimators.bernoulli_log_prob(b, jnp.broadcast_to(prior, b.shape))
    log_q = estimators.bernoulli_log_prob(b, jnp.broadcast_to(logits, b.shape))
    log_w = ll + log_p - log_q
    iw = jax.nn.logsumexp(log_w, axis=0) - math.log(samples)
    elbo = ll[0] - vae.kl_bernoulli(logits, prior)
    return elbo, iw

  def evaluate(self, params, test, key, samples, chunk):
    """Means of the bounds over ``test``, read in chunks of ``chunk``."""
    n = (test.shape[0] // chunk) * chunk
    xs = images.binarize(key, test[:n]).reshape(-1, chunk, test.shape[-1])
    keys = jax.random.split(jax.random.fold_in(key, 1), xs.shape[0])
    elbo, iw = jax.lax.map(
      lambda a: self.bounds(params, a[0], a[1], samples), (xs, keys)
    )
    return jnp.mean(elbo), jnp.mean(iw)

  def gradient_variance(self, state, x, key):
    """Total variance of the encoder gradient over single-sample draws."""
    baseline = self.baseline(state)

    def draw(k):
      grads, _ = jax.grad(self.loss_fn, has_aux=True)(
        state.params, x, k, baseline
      )
      leaves = jax.tree.leaves(grads["encoder"])
      return jnp.concatenate([leaf.reshape(-1) for leaf in leaves])

    keys = jax.random.split(key, self.config.grad_draws)
    draws = jax.lax.map(draw, keys, batch_size=10)
    return jnp.sum(jnp.var(draws, axis=0)), jnp.sum(jnp.square(draws.mean(0)))


def make_task(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Returns the keyword arguments of `loop.run` for this experiment."""
  train_images = _flat_images("train", config)
  test_images = _flat_images("test", config)
  task = Task(config, train_images)
  rows = parallel.local_rows(config.batch_size)
  batches = images.make_batch_fn(
    train_images, config.batch_size, seed=config.seed
  )
  eval_key = jax.random.key(config.seed + EVAL_SEED_OFFSET)
  test = jnp.asarray(test_images[: config.eval_size])
  final_test = jnp.asarray(test_images[: config.final_iw_size])
  grad_x = images.binarize(
    jax.random.fold_in(eval_key, 2**31 - 1),
    jnp.asarray(train_images[: config.grad_batch]),
  )

  @jax.jit
  def periodic(state):
    key = jax.random.fold_in(eval_key, state.step)
    elbo, iw = task.evaluate(
      state.params, test, key, config.eval_samples, config.eval_chunk
    )
    var, sq_norm = task.gradient_variance(
      state, grad_x, jax.random.fold_in(key, 2)
    )
    return {
      "elbo": elbo,
      f"iw{config.eval_samples}": iw,
      "grad_log10_var": jnp.log10(var),
      "grad_log10_sq_mean": jnp.log10(sq_norm),
    }

  @jax.jit
  def final(state):
    key = jax.random.fold_in(jax.random.fold_in(eval_key, state.step), 3)
    _, iw = task.evaluate(
      state.params,
      final_test,
      key,
      config.final_iw_samples,
      config.final_iw_chunk,
    )
    return iw

  def eval_fn(state):
    scalars = {k: float(v) for k, v in periodic(state).items()}
    if int(state.step) == config.num_steps and config.final_iw_samples:
      scalars[f"iw{config.final_iw_samples}"] = float(final(state))
    return scalars

  return dict(
    init_fn=task.init_fn,
    train_step=task.train_step,
    batch_fn=lambda step: batches(step)[rows],
    eval_fn=eval_fn,
  )


def train_and_evaluate(
  config: ml_collections.ConfigDict, workdir: str | pathlib.Path
) -> dict[str, float]:
  """Trains, evaluates and writes every artefact under ``workdir``.

  Returns:
    The final metrics: ``train/<name>`` averaged over the last log interval
    and ``eval/<name>``: ``elbo``, ``iw<eval_samples>``,
    ``grad_log10_var``, ``grad_log10_sq_mean`` and, at the last step,
    ``iw<final_iw_samples>``.
  """
  return loop.run(config, workdir, **make_task(config)).metrics
