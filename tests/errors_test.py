"""Every misuse raises at trace time with a message that says how to fix it."""

import flax.linen as nn
import jax
import jax.numpy as jnp
from absl.testing import absltest, parameterized

import dabjax
from dabjax import hard

X = jnp.linspace(-1.0, 1.0, 12).reshape(3, 4)


class _TwoLeaves(nn.Module):
  @nn.compact
  def __call__(self, x):
    return {"a": nn.Dense(4)(x), "b": nn.Dense(3)(x).astype(jnp.bfloat16)}


class DabBridgeErrorsTest(parameterized.TestCase):
  def test_non_callable_fn(self):
    with self.assertRaisesRegex(
      TypeError, r"dab_bridge: fn must be callable\. Got int"
    ):
      dabjax.dab_bridge(3)

  def test_bridge_class_instead_of_instance(self):
    with self.assertRaisesRegex(
      TypeError, r"bridge must be a flax.linen Module instance\. Got type"
    ):
      dabjax.dab_bridge(hard.sign, dabjax.DenseBridge)

  def test_every_bad_option_listed_at_once(self):
    with self.assertRaisesRegex(
      ValueError,
      r"feature_reduction='max'.*mode='fwd'.*batch_ndim=-1",
    ):
      dabjax.dab_bridge(
        hard.sign, feature_reduction="max", mode="fwd", batch_ndim=-1
      )

  def test_integer_output_points_to_one_hot(self):
    bridged = dabjax.dab_bridge(lambda x: jnp.argmax(x, -1))
    with self.assertRaisesRegex(
      TypeError, r"must return floating arrays.*int32\[3\].*one_hot_argmax"
    ):
      bridged.init(jax.random.key(0), X)

  def test_boolean_output(self):
    bridged = dabjax.dab_bridge(lambda x: x > 0, dabjax.DenseBridge())
    params = dabjax.dab_bridge(hard.binarize).init(jax.random.key(0), X)
    with self.assertRaisesRegex(TypeError, r"bool\[3, 4\].*astype"):
      bridged.apply(params, X)

  def test_bridge_shape_mismatch_names_shapes(self):
    bridged = dabjax.dab_bridge(hard.argsort_matrix, dabjax.DenseBridge())
    with self.assertRaisesRegex(
      ValueError,
      r"match fn's output in shape and dtype.*<root>: bridge "
      r"float32\[3, 4\] vs fn float32\[3, 4, 4\].*out_shape",
    ):
      bridged.init(jax.random.key(0), X)

  def test_every_mismatched_leaf_listed(self):
    def fn(x):
      return {"a": hard.sign(x), "b": hard.sign(x)}

    bridged = dabjax.dab_bridge(fn, _TwoLeaves())
    with self.assertRaisesRegex(
      ValueError,
      r"\['b'\]: bridge bfloat16\[3, 3\] vs fn float32\[3, 4\]",
    ):
      bridged.init(jax.random.key(0), X)

  def test_structure_mismatch(self):
    bridged = dabjax.dab_bridge(hard.sign, _TwoLeaves())
    with self.assertRaisesRegex(
      ValueError, r"must have the structure of fn's output.*\['a'\]"
    ):
      bridged.init(jax.random.key(0), X)

  def test_params_in_wrong_position(self):
    bridged = dabjax.dab_bridge(hard.sign)
    params = bridged.init(jax.random.key(0), X)
    with self.assertRaisesRegex(
      TypeError, r"takes the bridge parameters first.*apply\(params, x"
    ):
      bridged.apply(X, params)

  def test_params_not_a_mapping(self):
    bridged = dabjax.dab_bridge(hard.sign)
    with self.assertRaisesRegex(TypeError, r"Got list\. Call params ="):
      bridged.apply([1.0], X)

  def test_default_bridge_needs_one_array(self):
    bridged = dabjax.dab_bridge(lambda x: {"a": hard.sign(x["u"])})
    with self.assertRaisesRegex(TypeError, r"default bridge needs a single"):
      bridged.init(jax.random.key(0), {"u": X})

  def test_default_bridge_needs_shared_leading_axes(self):
    with self.assertRaisesRegex(ValueError, r"input shape \(3, 4\).*\(12,\)"):
      dabjax.default_bridge(
        jax.ShapeDtypeStruct((3, 4), jnp.float32),
        jax.ShapeDtypeStruct((12,), jnp.float32),
      )

  def test_batch_ndim_larger_than_output(self):
    bridged = dabjax.dab_bridge(hard.sign, batch_ndim=2)
    params = dabjax.dab_bridge(hard.sign).init(jax.random.key(0), X[0])
    with self.assertRaisesRegex(ValueError, r"batch_ndim=2.*batch_ndim=0"):
      bridged.apply(params, X[0])

  def test_errors_raise_under_jit_at_trace_time(self):
    bridged = dabjax.dab_bridge(hard.argsort_matrix, dabjax.DenseBridge())
    params = dabjax.dab_bridge(hard.sign).init(jax.random.key(0), X)
    with self.assertRaisesRegex(ValueError, r"bridge float32\[3, 4\]"):
      jax.jit(bridged.apply)(params, X)


class HardFunctionErrorsTest(parameterized.TestCase):
  def test_integer_input(self):
    with self.assertRaisesRegex(
      TypeError, r"sign: the input must be a floating array\. Got dtype int32"
    ):
      hard.sign(jnp.arange(3))

  def test_negative_margin(self):
    with self.assertRaisesRegex(ValueError, r"margin must be non-negative"):
      hard.signum(X, margin=-0.1)

  @parameterized.parameters(0, 5)
  def test_top_k_out_of_range(self, k):
    with self.assertRaisesRegex(ValueError, rf"k must lie in \[1, 4\].*k={k}"):
      hard.top_k_mask(X, k)

  def test_codebook_shape(self):
    with self.assertRaisesRegex(
      ValueError, r"centroids must have shape \[centroids, dim\].*\(5, 3\)"
    ):
      hard.quantize(X, jnp.zeros((5, 3)))
    with self.assertRaisesRegex(ValueError, r"quantize_one_hot: centroids"):
      hard.quantize_one_hot(X, jnp.zeros((4,)))

  def test_round_to_levels_range(self):
    with self.assertRaisesRegex(ValueError, r"levels=1, low=0.0, high=1.0"):
      hard.round_to_levels(X, 1)
    with self.assertRaisesRegex(ValueError, r"high > low"):
      hard.round_to_levels(X, 3, low=1.0, high=1.0)


class EstimatorErrorsTest(absltest.TestCase):
  def test_straight_through_refuses_shape_change(self):
    ste = dabjax.StraightThrough(hard.argsort_matrix)
    with self.assertRaisesRegex(
      ValueError, r"must keep its input's shape.*\[\(3, 4, 4\)\].*dab_bridge"
    ):
      ste.apply({}, X)

  def test_gumbel_needs_rng(self):
    with self.assertRaisesRegex(ValueError, r"needs a PRNG key.*rng=None"):
      dabjax.GumbelSoftmax().apply({}, X)

  def test_metrics_need_bridge_output(self):
    y, aux = dabjax.StraightThrough(hard.sign).apply({}, X)
    with self.assertRaisesRegex(ValueError, r"aux.output=None"):
      dabjax.bridge_metrics(y, aux)

  def test_bridge_losses_target_type(self):
    with self.assertRaisesRegex(TypeError, r"Got list"):
      dabjax.bridge_losses([])

  def test_bridge_losses_without_bridges(self):
    with self.assertRaisesRegex(ValueError, r"no bridge loss found"):
      dabjax.bridge_losses({"params": {}})


if __name__ == "__main__":
  absltest.main()
