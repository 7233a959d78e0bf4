"""The gradient contract of `dab_bridge`, checked against a stop-gradient
oracle for every hard function, under every transformation."""

import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import dabjax
from dabjax import hard
from tests.tolerance import tolerance

sg = jax.lax.stop_gradient
BATCH, FEATURES = 8, 6
CENTROIDS = jnp.array(
  [[0.0, 0.0], [1.0, 0.5], [-1.0, 0.5], [0.5, -1.0], [-0.5, -1.0]]
)

# name, hard function, input shape, extra args, bridge.
CASES = (
  ("signum", hard.signum, (BATCH, FEATURES), (0.5,), None),
  ("sign", hard.sign, (BATCH, FEATURES), (), None),
  ("binarize", hard.binarize, (BATCH, FEATURES), (), None),
  ("one_hot_argmax", hard.one_hot_argmax, (BATCH, FEATURES), (), None),
  ("top_k_mask", hard.top_k_mask, (BATCH, FEATURES), (2,), None),
  ("sort", hard.sort, (BATCH, FEATURES), (), None),
  ("argsort_matrix", hard.argsort_matrix, (BATCH, FEATURES), (), None),
  ("quantize", hard.quantize, (BATCH, 3, 2), (CENTROIDS,), None),
  (
    "quantize_one_hot",
    hard.quantize_one_hot,
    (BATCH, 3, 2),
    (CENTROIDS,),
    None,
  ),
  ("round_to_levels", hard.round_to_levels, (BATCH, FEATURES), (4,), None),
  (
    "sign_elementwise",
    hard.sign,
    (BATCH, FEATURES),
    (),
    dabjax.ElementwiseBridge(hidden=(8,)),
  ),
  (
    "signum_conv",
    hard.signum,
    (BATCH, 4, 4, 2),
    (),
    dabjax.ConvBridge(features=(4,)),
  ),
)


def _inputs(shape, seed=0):
  return jax.random.normal(jax.random.key(seed), shape)


def _task_loss(y):
  """A task loss whose cotangent differs per feature and per example."""
  weights = jnp.cos(jnp.arange(y.shape[-1], dtype=y.dtype))
  weights = jnp.broadcast_to(weights, y.shape)
  return jnp.sum(jnp.sin(y) * weights) + 0.5 * jnp.sum(y**2)


def _oracle(bridged, params, x, args):
  """The stop-gradient formula of design.md."""
  bridge_apply = bridged._bridge_for(x, bridged.fn(x, *args)).apply
  y_hard = bridged.fn(x, *args)
  s = bridge_apply(sg(params), x)
  y = sg(y_hard) + s - sg(s)
  s_params = bridge_apply(params, sg(x))
  per_example = jnp.sum(
    (s_params - sg(y_hard)) ** 2, axis=tuple(range(1, y_hard.ndim))
  )
  return y, bridged.gamma * jnp.mean(per_example)


def _setup(fn, shape, args, bridge, mode="vjp"):
  bridged = dabjax.dab_bridge(fn, bridge, gamma=3.0, mode=mode)
  x = _inputs(shape)
  params = bridged.init(jax.random.key(1), x, *args)
  return bridged, params, x


class GradientContractTest(chex.TestCase, parameterized.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.named_parameters(*CASES)
  def test_forward_equals_fn_bit_for_bit(self, fn, shape, args, bridge):
    bridged, params, x = _setup(fn, shape, args, bridge)
    y, aux = self.variant(lambda p, x: bridged.apply(p, x, *args))(params, x)
    np.testing.assert_array_equal(y, fn(x, *args))
    self.assertEqual(aux.output.shape, y.shape)
    np.testing.assert_array_equal(bridged.inference(x, *args), y)

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.named_parameters(*CASES)
  def test_gradients_match_oracle(self, fn, shape, args, bridge):
    bridged, params, x = _setup(fn, shape, args, bridge)

    def total(params, x):
      y, aux = bridged.apply(params, x, *args)
      return _task_loss(y) + aux.loss

    def oracle_total(params, x):
      y, loss = _oracle(bridged, params, x, args)
      return _task_loss(y) + loss

    got = self.variant(jax.grad(total, argnums=(0, 1)))(params, x)
    want = jax.grad(oracle_total, argnums=(0, 1))(params, x)
    chex.assert_trees_all_close(got, want, **tolerance())
    # The bridge really carries a gradient, so the comparison is not vacuous.
    self.assertGreater(float(jnp.abs(got[1]).max()), 0.0)

  @parameterized.named_parameters(*CASES)
  def test_task_loss_never_trains_bridge(self, fn, shape, args, bridge):
    bridged, params, x = _setup(fn, shape, args, bridge)
    task = lambda p: _task_loss(bridged.apply(p, x, *args)[0])
    grads = jax.grad(task)(params)
    for leaf in jax.tree.leaves(grads):
      np.testing.assert_array_equal(leaf, jnp.zeros_like(leaf))

  @parameterized.named_parameters(*CASES)
  def test_bridge_loss_never_moves_input(self, fn, shape, args, bridge):
    bridged, params, x = _setup(fn, shape, args, bridge)
    grad_x = jax.grad(lambda x: bridged.apply(params, x, *args)[1].loss)(x)
    np.testing.assert_array_equal(grad_x, jnp.zeros_like(x))

  def test_bridge_loss_value_is_paper_formula(self):
    bridged, params, x = _setup(hard.signum, (BATCH, FEATURES), (), None)
    y, aux = bridged.apply(params, x)
    s = bridged._bridge_for(x, y).apply(params, x)
    want = 3.0 * jnp.mean(jnp.sum((s - y) ** 2, axis=1))
    np.testing.assert_allclose(aux.loss, want, **tolerance())

  def test_array_args_get_zero_gradient(self):
    bridged, params, x = _setup(
      hard.quantize, (BATCH, 3, 2), (CENTROIDS,), None
    )
    grad_c = jax.grad(
      lambda c: _task_loss(bridged.apply(params, x, c)[0]), argnums=0
    )(CENTROIDS)
    np.testing.assert_array_equal(grad_c, jnp.zeros_like(CENTROIDS))

  @parameterized.parameters("sum", "mean")
  def test_loss_reductions(self, batch_reduction):
    bridged = dabjax.dab_bridge(
      hard.sign,
      gamma=1.0,
      feature_reduction="mean",
      batch_reduction=batch_reduction,
    )
    x = _inputs((BATCH, FEATURES))
    params = bridged.init(jax.random.key(1), x)
    y, aux = bridged.apply(params, x)
    per_example = jnp.mean((aux.output - y) ** 2, axis=1)
    reduce = jnp.sum if batch_reduction == "sum" else jnp.mean
    np.testing.assert_allclose(aux.loss, reduce(per_example), **tolerance())

  def test_pytree_input_and_output(self):
    class PairBridge(dabjax.DenseBridge):
      def __call__(self, x):
        return {"a": super().__call__(x["u"] + x["v"]), "b": x["v"] * 0.0}

    def fn(x):
      return {"a": hard.sign(x["u"] + x["v"]), "b": hard.binarize(x["v"])}

    bridged = dabjax.dab_bridge(fn, PairBridge(hidden=(4,)))
    x = {"u": _inputs((BATCH, 3)), "v": _inputs((BATCH, 3), seed=2)}
    params = bridged.init(jax.random.key(0), x)
    y, aux = bridged.apply(params, x)
    chex.assert_trees_all_equal(y, fn(x))
    grads = jax.grad(lambda x: jnp.sum(bridged.apply(params, x)[0]["a"]))(x)
    chex.assert_trees_all_close(grads["u"], grads["v"], **tolerance())


class TransformationsTest(chex.TestCase):
  def _loss_fn(self, bridged):
    def total(params, x):
      y, aux = bridged.apply(params, x)
      return _task_loss(y) + aux.loss

    return total

  def test_grad_jit_orders_agree(self):
    bridged, params, x = _setup(hard.signum, (BATCH, FEATURES), (), None)
    total = self._loss_fn(bridged)
    want = jax.grad(total, argnums=(0, 1))(params, x)
    for got in (
      jax.grad(jax.jit(total), argnums=(0, 1))(params, x),
      jax.jit(jax.grad(total, argnums=(0, 1)))(params, x),
    ):
      chex.assert_trees_all_close(got, want, **tolerance())

  def test_vmap_with_unbatched_params(self):
    bridged, params, x = _setup(hard.signum, (BATCH, FEATURES), (), None)
    per_example = dabjax.dab_bridge(
      hard.signum, bridged.bridge, gamma=bridged.gamma, batch_ndim=0
    )

    def vmapped(params, x):
      y, aux = jax.vmap(per_example.apply, in_axes=(None, 0))(params, x)
      return _task_loss(y) + jnp.mean(aux.loss)

    got = jax.grad(vmapped, argnums=(0, 1))(params, x)
    want = jax.grad(self._loss_fn(bridged), argnums=(0, 1))(params, x)
    chex.assert_trees_all_close(got, want, **tolerance())

  def test_second_call_does_not_retrace(self):
    bridged, params, x = _setup(hard.signum, (BATCH, FEATURES), (), None)
    traces = []

    @jax.jit
    def step(params, x):
      traces.append(None)
      return jax.grad(self._loss_fn(bridged))(params, x)

    step(params, x)
    step(params, x + 1.0)
    self.assertLen(traces, 1)

  def test_pmap_matches_one_device(self):
    n = 4
    self.assertGreaterEqual(jax.local_device_count(), n)
    bridged, params, x = _setup(hard.signum, (BATCH, FEATURES), (), None)
    total = self._loss_fn(bridged)

    def per_device(params, x):
      grads = jax.grad(total, argnums=(0, 1))(params, x)
      return jax.lax.pmean(grads[0], "d"), grads[1]

    grad_params, grad_x = jax.pmap(
      per_device, axis_name="d", in_axes=(None, 0), devices=jax.devices()[:n]
    )(params, x.reshape(n, BATCH // n, FEATURES))
    want = jax.grad(total, argnums=(0, 1))(params, x)
    chex.assert_trees_all_close(
      jax.tree.map(lambda a: a[0], grad_params), want[0], **tolerance()
    )
    chex.assert_trees_all_close(grad_x.reshape(x.shape), want[1], **tolerance())

  def test_shard_map_matches_one_device(self):
    mesh = jax.make_mesh((4,), ("data",), devices=jax.devices()[:4])
    bridged, params, x = _setup(hard.signum, (BATCH, FEATURES), (), None)
    total = self._loss_fn(bridged)

    @functools.partial(
      jax.shard_map, mesh=mesh, in_specs=(P(), P("data")), out_specs=P()
    )
    def sharded_grad(params, x):
      # The mean of per-shard losses is the full-batch loss; its gradient
      # into the replicated parameters is reduced across shards by JAX.
      return jax.grad(lambda p: jax.lax.pmean(total(p, x), "data"))(params)

    x_sharded = jax.device_put(x, NamedSharding(mesh, P("data")))
    got = jax.jit(sharded_grad)(params, x_sharded)
    want = jax.grad(total)(params, x)
    chex.assert_trees_all_close(got, want, **tolerance())

  def test_sharded_jit_matches_one_device(self):
    mesh = jax.make_mesh((4,), ("data",), devices=jax.devices()[:4])
    bridged, params, x = _setup(hard.signum, (BATCH, FEATURES), (), None)
    total = self._loss_fn(bridged)
    x_sharded = jax.device_put(x, NamedSharding(mesh, P("data")))
    params_replicated = jax.device_put(params, NamedSharding(mesh, P()))
    got = jax.jit(jax.grad(total, argnums=(0, 1)))(params_replicated, x_sharded)
    want = jax.grad(total, argnums=(0, 1))(params, x)
    chex.assert_trees_all_close(got, want, **tolerance())
    self.assertTrue(
      got[1].sharding.is_equivalent_to(x_sharded.sharding, x.ndim)
    )


class JvpModeTest(chex.TestCase, parameterized.TestCase):
  @parameterized.named_parameters(*CASES)
  def test_reverse_mode_equals_vjp_mode(self, fn, shape, args, bridge):
    vjp, params, x = _setup(fn, shape, args, bridge)
    jvp = dataclasses.replace(vjp, mode="jvp")

    def total(bridged):
      def f(params, x):
        y, aux = bridged.apply(params, x, *args)
        return _task_loss(y) + aux.loss

      return f

    chex.assert_trees_all_close(
      jax.grad(total(jvp), argnums=(0, 1))(params, x),
      jax.grad(total(vjp), argnums=(0, 1))(params, x),
      **tolerance(),
    )

  def test_jacfwd_and_jvp_agree_with_vjp(self):
    vjp, params, x = _setup(hard.argsort_matrix, (BATCH, FEATURES), (), None)
    jvp = dataclasses.replace(vjp, mode="jvp")
    f_vjp = lambda x: vjp.apply(params, x)[0]
    f_jvp = lambda x: jvp.apply(params, x)[0]
    chex.assert_trees_all_close(
      jax.jacfwd(f_jvp)(x), jax.jacrev(f_vjp)(x), **tolerance()
    )
    tangent = _inputs(x.shape, seed=5)
    y, t_y = jax.jvp(f_jvp, (x,), (tangent,))
    _, pullback = jax.vjp(f_vjp, x)
    np.testing.assert_array_equal(y, hard.argsort_matrix(x))
    # <J t, c> == <t, Jᵀ c> for a random cotangent c.
    ct = _inputs(y.shape, seed=6)
    np.testing.assert_allclose(
      jnp.sum(t_y * ct), jnp.sum(tangent * pullback(ct)[0]), rtol=1e-5
    )

  def test_forward_over_reverse(self):
    jvp_mode, params, x = _setup(hard.signum, (BATCH, FEATURES), (), None)
    jvp_mode = dataclasses.replace(jvp_mode, mode="jvp")
    grad_x = jax.grad(lambda x: _task_loss(jvp_mode.apply(params, x)[0]))
    tangent = _inputs(x.shape, seed=7)
    _, hvp = jax.jvp(grad_x, (x,), (tangent,))
    eps = 1e-3
    finite_diff = (grad_x(x + eps * tangent) - grad_x(x - eps * tangent)) / (
      2 * eps
    )
    # Where the hard output flips between x ± eps·t the difference jumps;
    # elsewhere it matches the exact Hessian-vector product.
    y_plus = hard.signum(x + eps * tangent)
    y_minus = hard.signum(x - eps * tangent)
    stable = jnp.all(y_plus == y_minus)
    self.assertTrue(bool(stable))
    np.testing.assert_allclose(hvp, finite_diff, rtol=2e-2, atol=2e-3)

  def test_vjp_mode_refuses_forward_mode(self):
    bridged, params, x = _setup(hard.sign, (BATCH, FEATURES), (), None)
    with self.assertRaisesRegex(TypeError, "can't apply forward-mode"):
      jax.jacfwd(lambda x: bridged.apply(params, x)[0])(x)


if __name__ == "__main__":
  absltest.main()
