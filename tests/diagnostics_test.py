"""Bridge fidelity metrics report what they see, NaN included."""

import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

import dabjax

Y = jnp.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 1.0]])


def _aux(s, loss=1.5):
  return dabjax.EstimatorAux(loss=jnp.float32(loss), output=s)


class BridgeMetricsTest(absltest.TestCase):
  def test_perfect_bridge(self):
    m = dabjax.bridge_metrics(Y, _aux(Y))
    self.assertEqual(float(m["mse"]), 0.0)
    self.assertEqual(float(m["sign_agreement"]), 1.0)
    self.assertEqual(float(m["argmax_agreement"]), 1.0)
    np.testing.assert_allclose(m["cosine"], 1.0, rtol=1e-6)
    self.assertEqual(float(m["finite"]), 1.0)
    self.assertEqual(float(m["loss"]), 1.5)

  def test_known_values(self):
    s = jnp.array([[0.5, 0.5, 0.0], [-1.0, 1.0, 2.0]])
    m = dabjax.bridge_metrics(Y, _aux(s))
    # Squared errors 0.25, 2.25, 0, 0, 0, 1 over 6 entries.
    np.testing.assert_allclose(m["mse"], 3.5 / 6, rtol=1e-6)
    # Nonzero targets: 5; signs agree on 4 of them.
    np.testing.assert_allclose(m["sign_agreement"], 0.8, rtol=1e-6)
    # Row 0: argmax 0 (tie broken to the first) vs 0; row 1: 2 vs 1.
    np.testing.assert_allclose(m["argmax_agreement"], 0.5, rtol=1e-6)

  def test_nan_is_reported_not_hidden(self):
    s = Y.at[0, 0].set(jnp.nan)
    m = dabjax.bridge_metrics(Y, _aux(s, loss=jnp.nan))
    self.assertEqual(float(m["finite"]), 0.0)
    self.assertTrue(bool(jnp.isnan(m["loss"])))
    self.assertTrue(bool(jnp.isnan(m["mse"])))

  def test_inf_loss_is_reported(self):
    m = dabjax.bridge_metrics(Y, _aux(Y, loss=jnp.inf))
    self.assertEqual(float(m["finite"]), 0.0)


if __name__ == "__main__":
  absltest.main()
