"""The public surface is exactly what __init__ promises."""

from absl.testing import absltest

import dabjax

EXPECTED = {
  "ConvBridge",
  "DabBridge",
  "DenseBridge",
  "ElementwiseBridge",
  "Estimator",
  "EstimatorAux",
  "GumbelSoftmax",
  "StraightThrough",
  "bridge_losses",
  "bridge_metrics",
  "dab_bridge",
  "default_bridge",
  "hard",
  "linen",
  "nnx",
}

HARD = {
  "argsort_matrix",
  "binarize",
  "one_hot_argmax",
  "quantize",
  "quantize_one_hot",
  "round_to_levels",
  "sign",
  "signum",
  "sort",
  "top_k_mask",
}


class PublicApiTest(absltest.TestCase):
  def test_names(self):
    self.assertEqual(set(dabjax.__all__), EXPECTED)
    for name in EXPECTED:
      self.assertTrue(hasattr(dabjax, name), name)

  def test_hard_functions(self):
    public = {n for n in dir(dabjax.hard) if not n.startswith("_")}
    self.assertEqual(public - {"annotations", "jax", "jnp"}, HARD)

  def test_every_public_callable_has_a_docstring(self):
    for name in EXPECTED | {f"hard.{n}" for n in HARD}:
      obj = dabjax
      for part in name.split("."):
        obj = getattr(obj, part)
      self.assertTrue(obj.__doc__ and obj.__doc__.strip(), name)


if __name__ == "__main__":
  absltest.main()
