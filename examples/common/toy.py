"""A toy regression that the tests of `examples/common` train with the loop.

A one-hidden-layer MLP with Adam learns `y = sin(x @ w)` from fresh Gaussian
inputs each step, with input noise drawn from the train state's key, so that
resuming exercises every part of the loop. This file is also its own config
file and entry point:

    python -m examples.common.toy --config=examples/common/toy.py \\
      --workdir=/tmp/toy

The final parameters are written to `<workdir>/final_params.npz`.
"""

import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct, traverse_util

from examples.common import cli, loop, parallel

PARAMS_NAME = "final_params.npz"


def get_config() -> ml_collections.ConfigDict:
  """Returns the toy's config: the loop's fields and the model's."""
  config = ml_collections.ConfigDict()
  config.num_steps = 60
  config.batch_size = 16
  config.log_every = 10
  config.eval_every = 30
  config.checkpoint_every = 20
  config.seed = 0
  config.features = 4
  config.hidden = 16
  config.learning_rate = 0.02
  config.input_noise = 0.05
  # Seconds that batch_fn sleeps, to give a test time to kill the run.
  config.batch_delay_s = 0.0
  return config


@struct.dataclass
class TrainState:
  """The toy's train state."""

  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array


def make_task(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Returns the keyword arguments of `loop.run` for the toy.

  Args:
    config: from `get_config`.

  Returns:
    `init_fn`, `train_step`, `batch_fn` and `eval_fn`.
  """
  optimizer = optax.adam(config.learning_rate)
  rows = parallel.local_rows(config.batch_size)
  eval_x, eval_y = _data(config, np.random.default_rng([config.seed, 1, 0]))

  def init_fn(key):
    hidden_key, out_key, rng = jax.random.split(key, 3)
    params = {
      "hidden": {
        "w": jax.random.normal(hidden_key, (config.features, config.hidden))
        / np.sqrt(config.features),
        "b": jnp.zeros((config.hidden,)),
      },
      "out": {
        "w": jax.random.normal(out_key, (config.hidden, 1))
        / np.sqrt(config.hidden),
        "b": jnp.zeros((1,)),
      },
    }
    return TrainState(
      step=jnp.zeros((), jnp.int32),
      params=params,
      opt_state=optimizer.init(params),
      rng=rng,
    )

  def loss_fn(params, x, y):
    h = jnp.tanh(x @ params["hidden"]["w"] + params["hidden"]["b"][None])
    prediction = h @ params["out"]["w"] + params["out"]["b"][None]
    return jnp.mean((prediction - y) ** 2)

  def train_step(state, batch):
    noise_key = jax.random.fold_in(state.rng, state.step)
    x = batch["x"] + config.input_noise * jax.random.normal(
      noise_key, batch["x"].shape
    )
    loss, grads = jax.value_and_grad(loss_fn)(state.params, x, batch["y"])
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    state = state.replace(
      step=state.step + 1,
      params=optax.apply_updates(state.params, updates),
      opt_state=opt_state,
    )
    return state, {"loss": loss}

  def batch_fn(step):
    time.sleep(config.batch_delay_s)
    x, y = _data(config, np.random.default_rng([config.seed, 0, step]))
    return {"x": x[rows], "y": y[rows]}

  eval_loss = jax.jit(loss_fn)

  def eval_fn(state):
    return {"loss": float(eval_loss(state.params, eval_x, eval_y))}

  return {
    "init_fn": init_fn,
    "train_step": train_step,
    "batch_fn": batch_fn,
    "eval_fn": eval_fn,
  }


def _data(config, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  """Returns a global batch `x: [batch, features]`, `y: [batch, 1]`."""
  teacher = np.random.default_rng([config.seed, 2, 0]).normal(
    size=(config.features, 1)
  )
  x = rng.normal(size=(config.batch_size, config.features))
  return x.astype(np.float32), np.sin(x @ teacher).astype(np.float32)


def train_and_evaluate(
  config: ml_collections.ConfigDict, workdir: str
) -> dict[str, float]:
  """Trains the toy, writes its final parameters and returns its metrics."""
  result = loop.run(config, workdir, **make_task(config))
  if jax.process_index() == 0:
    flat = traverse_util.flatten_dict(result.state.params, sep="/")
    np.savez(
      pathlib.Path(workdir) / PARAMS_NAME,
      **{name: np.asarray(value) for name, value in flat.items()},
    )
  return result.metrics


if __name__ == "__main__":
  cli.run(train_and_evaluate)
