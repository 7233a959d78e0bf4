"""Linen and NNX models with a hard layer inside train through the bridge."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from absl.testing import absltest, parameterized
from flax import nnx

import dabjax
from dabjax import hard

IN, HIDDEN, BATCH, STEPS = 8, 4, 256, 400


def _teacher_batch(step):
  """A regression target that is a linear read-out of hidden signs."""
  teacher = jax.random.normal(jax.random.key(42), (IN, HIDDEN))
  readout = jax.random.normal(jax.random.key(43), (HIDDEN,))
  x = jax.random.normal(
    jax.random.fold_in(jax.random.key(0), step), (BATCH, IN)
  )
  t = jnp.sign(x @ teacher) @ readout
  return x, t


class LinenNet(nn.Module):
  block: bool = False

  @nn.compact
  def __call__(self, x, train=True):
    h = nn.Dense(HIDDEN)(x)
    if self.block:
      h = jax.lax.stop_gradient(h)
    h = dabjax.linen.DabLayer(hard.sign, dabjax.DenseBridge(hidden=(64,)))(
      h, train=train
    )
    return nn.Dense(1)(h)[:, 0]


class NnxNet(nnx.Module):
  def __init__(self, block, rngs):
    self.block = block
    self.encoder = nnx.Linear(IN, HIDDEN, rngs=rngs)
    self.hard = dabjax.nnx.DabLayer(
      hard.sign,
      jnp.zeros((BATCH, HIDDEN)),
      bridge=dabjax.DenseBridge(hidden=(64,)),
      rngs=rngs,
    )
    self.head = nnx.Linear(HIDDEN, 1, rngs=rngs)

  def __call__(self, x, train=True):
    h = self.encoder(x)
    if self.block:
      h = jax.lax.stop_gradient(h)
    return self.head(self.hard(h, train=train))[:, 0]


def _train_linen(block):
  model = LinenNet(block)
  params = model.init(jax.random.key(1), _teacher_batch(0)[0])["params"]
  tx = optax.adam(3e-3)
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, x, t):
    def loss_fn(params):
      pred, state = model.apply(
        {"params": params}, x, mutable=[dabjax.linen.COLLECTION]
      )
      bridge_loss, _ = dabjax.bridge_losses(state)
      task = jnp.mean((pred - t) ** 2)
      return task + bridge_loss, (task, bridge_loss)

    grads, (task, bridge_loss) = jax.grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, task, bridge_loss

  history = []
  for i in range(STEPS):
    params, opt_state, task, bridge_loss = step(
      params, opt_state, *_teacher_batch(i)
    )
    history.append((float(task), float(bridge_loss)))
  x, t = _teacher_batch(STEPS)
  test = jnp.mean((model.apply({"params": params}, x, train=False) - t) ** 2)
  return history, float(test)


def _train_nnx(block):
  model = NnxNet(block, nnx.Rngs(1))
  optimizer = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer, x, t):
    def loss_fn(model):
      task = jnp.mean((model(x) - t) ** 2)
      bridge_loss, _ = dabjax.bridge_losses(model)
      return task + bridge_loss, (task, bridge_loss)

    grads, aux = nnx.grad(loss_fn, has_aux=True)(model)
    optimizer.update(model, grads)
    return aux

  history = []
  for i in range(STEPS):
    task, bridge_loss = step(model, optimizer, *_teacher_batch(i))
    history.append((float(task), float(bridge_loss)))
  x, t = _teacher_batch(STEPS)
  test = jnp.mean((model(x, train=False) - t) ** 2)
  return history, float(test)


class LayersTrainTest(parameterized.TestCase):
  @parameterized.named_parameters(("linen", _train_linen), ("nnx", _train_nnx))
  def test_trains_through_hard_layer(self, train):
    history, test = train(block=False)
    _, blocked_test = train(block=True)
    first, last = history[0], history[-1]
    # The task loss falls, and beats the model whose encoder gets no gradient.
    self.assertLess(last[0], 0.5 * first[0])
    self.assertLess(test, 0.8 * blocked_test)
    # The bridge learns to imitate the sign.
    self.assertLess(last[1], 0.5 * first[1])


if __name__ == "__main__":
  absltest.main()
