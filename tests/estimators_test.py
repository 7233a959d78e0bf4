"""Straight-through and Gumbel-Softmax behind the shared call shape."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

import dabjax
from dabjax import hard

LOGITS = jnp.array([[2.0, 0.0, -1.0, 0.5], [-1.0, -1.0, 3.0, 0.0]])


class StraightThroughTest(absltest.TestCase):
  def test_forward_is_hard_backward_is_identity(self):
    ste = dabjax.StraightThrough(hard.signum)
    x = jnp.array([[-0.9, 0.1, 0.7]])
    y, aux = ste.apply(ste.init(jax.random.key(0), x), x)
    np.testing.assert_array_equal(y, hard.signum(x))
    self.assertEqual(float(aux.loss), 0.0)
    self.assertIsNone(aux.output)
    weights = jnp.array([[1.0, -2.0, 3.0]])
    grad = jax.grad(lambda x: jnp.sum(ste.apply({}, x)[0] * weights))(x)
    np.testing.assert_array_equal(grad, weights)


class GumbelSoftmaxTest(parameterized.TestCase):
  def test_relaxed_sample_is_a_distribution(self):
    est = dabjax.GumbelSoftmax(temperature=0.5)
    y, _ = est.apply({}, LOGITS, rng=jax.random.key(0))
    np.testing.assert_allclose(y.sum(-1), jnp.ones(2), rtol=1e-6)
    self.assertTrue(bool(jnp.all((y > 0) & (y < 1))))

  def test_straight_through_is_one_hot_with_soft_gradient(self):
    key = jax.random.key(1)
    hard_est = dabjax.GumbelSoftmax(0.5, straight_through=True)
    soft_est = dabjax.GumbelSoftmax(0.5)
    y, _ = hard_est.apply({}, LOGITS, rng=key)
    np.testing.assert_array_equal(y.sum(-1), jnp.ones(2))
    np.testing.assert_array_equal(jnp.max(y, -1), jnp.ones(2))
    weights = jnp.arange(8.0).reshape(2, 4)
    grad = lambda est: jax.grad(
      lambda x: jnp.sum(est.apply({}, x, rng=key)[0] * weights)
    )(LOGITS)
    np.testing.assert_allclose(grad(hard_est), grad(soft_est), rtol=1e-6)

  @parameterized.parameters(False, True)
  def test_samples_follow_the_logits(self, binary):
    n = 20000
    est = dabjax.GumbelSoftmax(1.0, straight_through=True, binary=binary)
    keys = jax.random.split(jax.random.key(2), n)
    samples = jax.vmap(lambda k: est.apply({}, LOGITS, rng=k)[0])(keys)
    freq = samples.mean(0)
    probs = jax.nn.sigmoid(LOGITS) if binary else jax.nn.softmax(LOGITS, -1)
    # Four standard errors of a Bernoulli frequency.
    bound = 4 * jnp.sqrt(probs * (1 - probs) / n) + 1e-3
    self.assertTrue(bool(jnp.all(jnp.abs(freq - probs) < bound)))

  def test_traced_temperature_under_jit(self):
    est = dabjax.GumbelSoftmax()

    @jax.jit
    def sample(temperature):
      annealed = dataclasses.replace(est, temperature=temperature)
      return annealed.apply({}, LOGITS, rng=jax.random.key(3))[0]

    cold, warm = sample(0.01), sample(10.0)
    self.assertGreater(float(cold.max(-1).min()), 0.99)
    self.assertLess(float(warm.max(-1).max()), 0.6)


class CallShapeTest(parameterized.TestCase):
  @parameterized.named_parameters(
    ("dab", dabjax.dab_bridge(hard.one_hot_argmax)),
    ("ste", dabjax.StraightThrough(hard.one_hot_argmax)),
    ("gumbel", dabjax.GumbelSoftmax(straight_through=True)),
  )
  def test_one_argument_switches_estimator(self, estimator):
    params = estimator.init(jax.random.key(0), LOGITS)
    y, aux = jax.jit(estimator.apply)(params, LOGITS, rng=jax.random.key(1))
    self.assertEqual(y.shape, LOGITS.shape)
    self.assertEqual(aux.loss.shape, ())
    grad = jax.grad(
      lambda x: jnp.sum(estimator.apply(params, x, rng=jax.random.key(1))[0])
    )(LOGITS)
    self.assertEqual(grad.shape, LOGITS.shape)


if __name__ == "__main__":
  absltest.main()
