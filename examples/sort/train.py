"""Trains a network to output the argsort of 10 uniform values.

The paper's sequence-sorting experiment: fresh sequences from U(0, 1) every
step, the loss is the cross-entropy summed over output positions plus γ times
the bridge loss, averaged over the batch, and the metric is all-or-none
accuracy (the whole permutation must be right).
"""

import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct, traverse_util

import dabjax
from examples.common import loop, parallel
from examples.sort import model as sort_model

TEST_SEED_OFFSET = 1_000_003


@struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any


def make_model(config: ml_collections.ConfigDict):
  """Returns the network the config asks for."""
  if config.estimator not in sort_model.ESTIMATORS:
    raise ValueError(
      f"sort: config.estimator must be one of {sort_model.ESTIMATORS}. Got "
      f"{config.estimator!r}. Set --config.estimator to one of them."
    )
  if config.bridge not in sort_model.BRIDGES:
    raise ValueError(
      f"sort: config.bridge must be one of {sort_model.BRIDGES}. Got "
      f"{config.bridge!r}. Set --config.bridge to one of them."
    )
  if config.estimator == "ptrnet":
    return sort_model.PtrNet(hidden=config.ptrnet_hidden)
  return sort_model.SortMLP(
    estimator=config.estimator,
    bridge=config.bridge,
    bridge_hidden=tuple(config.bridge_hidden),
    margin=config.margin,
    gamma=config.gamma,
  )


def sequences(seed: int, step: int, rows: slice, length: int):
  """Rows ``rows`` of the batch of step ``step``: values and their argsort."""
  rng = np.random.default_rng([seed, step])
  x = rng.random((rows.stop, length), dtype=np.float32)[rows]
  return {"x": x, "order": np.argsort(x, axis=-1).astype(np.int32)}


def _is_bridge(path: tuple) -> bool:
  return "bridge_params" in path


def make_optimizer(config: ml_collections.ConfigDict):
  """Adam for the model and Adam for the bridge, each at its own rate.

  During the first ``config.bridge_warmup_steps`` steps only the bridge
  trains: the model's learning rate is 0.
  """
  model_lr = lambda count: jnp.where(
    count < config.bridge_warmup_steps, 0.0, config.learning_rate
  )
  bridge_lr = config.bridge_learning_rate or config.learning_rate

  def labels(params):
    flat = traverse_util.flatten_dict(params)
    return traverse_util.unflatten_dict(
      {k: "bridge" if _is_bridge(k) else "model" for k in flat}
    )

  return optax.multi_transform(
    {"model": optax.adam(model_lr), "bridge": optax.adam(bridge_lr)}, labels
  )


def _forward(net, params, x, order, train):
  """Returns the logits and, for a DAB network, the bridge state."""
  if isinstance(net, sort_model.PtrNet):
    return net.apply({"params": params}, x, order if train else None), None
  if train and net.estimator == "dab":
    return net.apply({"params": params}, x, mutable=[dabjax.linen.COLLECTION])
  return net.apply({"params": params}, x, train=train), None


def _task_metrics(logits, order):
  """Cross-entropy summed over positions, and the accuracies."""
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, order)
  correct = jnp.argmax(logits, -1) == order
  return {
    "task_loss": jnp.mean(jnp.sum(ce, -1)),
    "all_or_none": jnp.mean(jnp.all(correct, -1)),
    "per_position": jnp.mean(correct),
  }


def _fidelity(bridge_state):
  total, metrics = dabjax.bridge_losses(bridge_state)
  names = ("mse", "sign_agreement", "cosine", "finite")
  layer = {k.rsplit("/", 1)[1]: v for k, v in metrics.items()}
  return total, {"bridge_loss": total} | {
    f"bridge_{name}": layer[name] for name in names
  }


def make_task(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Returns the keyword arguments of `loop.run` for the sort experiment."""
  net = make_model(config)
  tx = make_optimizer(config)
  length = config.length
  example = jnp.zeros((2, length), jnp.float32)

  def init_fn(key):
    if isinstance(net, sort_model.PtrNet):
      params = net.init(key, example, jnp.zeros((2, length), jnp.int32))
    else:
      params = net.init(key, example)
    params = params["params"]
    return TrainState(
      step=jnp.array(0), params=params, opt_state=tx.init(params)
    )

  def train_step(state, batch):
    def loss_fn(params):
      logits, bridge_state = _forward(
        net, params, batch["x"], batch["order"], train=True
      )
      metrics = _task_metrics(logits, batch["order"])
      loss = metrics["task_loss"]
      if bridge_state is not None:
        bridge_loss, fidelity = _fidelity(bridge_state)
        loss, metrics = loss + bridge_loss, metrics | fidelity
      return loss, metrics

    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params)
    return loop.apply_gradients(state, tx, grads), metrics

  rows = parallel.local_rows(config.batch_size)

  def batch_fn(step):
    return sequences(config.seed, step, rows, length)

  test = sequences(
    config.seed + TEST_SEED_OFFSET, 0, slice(0, config.eval_size), length
  )
  chunks = config.eval_size // config.eval_chunk

  @jax.jit
  def evaluate(params):
    def one(chunk):
      x, order = chunk
      logits, _ = _forward(net, params, x, order, train=False)
      metrics = _task_metrics(logits, order)
      if isinstance(net, sort_model.PtrNet):
        # Greedy decoding can mask the true position out, so the loss is
        # the teacher-forced one; the accuracies stay greedy.
        forced, _ = _forward(net, params, x, order, train=True)
        metrics["task_loss"] = _task_metrics(forced, order)["task_loss"]
      return metrics

    xs = test["x"][: chunks * config.eval_chunk].reshape(chunks, -1, length)
    orders = test["order"][: chunks * config.eval_chunk].reshape(
      chunks, -1, length
    )
    return jax.tree.map(jnp.mean, jax.lax.map(one, (xs, orders)))

  def eval_fn(state):
    return {k: float(v) for k, v in evaluate(state.params).items()}

  return dict(
    init_fn=init_fn, train_step=train_step, batch_fn=batch_fn, eval_fn=eval_fn
  )


def train_and_evaluate(
  config: ml_collections.ConfigDict, workdir: str | pathlib.Path
) -> dict[str, float]:
  """Trains, evaluates and writes every artefact under ``workdir``.

  Returns:
    The final metrics: ``train/<name>`` averaged over the last log interval
    and ``eval/<name>`` on the test sequences (all-or-none and per-position
    accuracy, task loss), evaluated with the hard layer alone.
  """
  return loop.run(config, workdir, **make_task(config)).metrics
