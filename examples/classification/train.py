"""Trains an image classifier with a sort between its trunk and its head.

The paper's classification domain: the hidden features are sorted within
groups, and the estimators differ only in how the gradient crosses the
sort. The loss is the mean cross-entropy plus, for DAB, γ times the bridge
loss. Test accuracy and loss are measured with the hard sort alone.
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
from examples.classification import model as classification_model
from examples.common import images, loop, parallel


@struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any


def make_model(
  config: ml_collections.ConfigDict, num_classes: int = 10
) -> classification_model.SortClassifier:
  """Returns the classifier the config asks for.

  Raises:
    ValueError: if ``config.estimator`` or ``config.bridge`` is unknown.
  """
  for field, allowed in (
    ("estimator", classification_model.ESTIMATORS),
    ("bridge", classification_model.BRIDGES),
  ):
    if config[field] not in allowed:
      raise ValueError(
        f"classification: config.{field} must be one of {allowed}. Got "
        f"{config[field]!r}. Set --config.{field} to one of them."
      )
  return classification_model.SortClassifier(
    estimator=config.estimator,
    num_classes=num_classes,
    conv_features=tuple(config.conv_features),
    groups=config.groups,
    group_size=config.group_size,
    bridge=config.bridge,
    bridge_hidden=tuple(config.bridge_hidden),
    gamma=config.gamma,
    temperature=config.temperature,
  )


def load_data(config: ml_collections.ConfigDict) -> dict[str, np.ndarray]:
  """The train and test images and labels the config names.

  ``config.train_size`` and ``config.eval_size`` (0: all) keep the first
  examples of each split.
  """
  data_dir = config.data_dir or None
  data = {}
  for split, size in (("train", config.train_size), ("test", config.eval_size)):
    x, y = images.load_images(config.dataset, split, data_dir)
    size = size or len(x)
    data[f"{split}_images"], data[f"{split}_labels"] = x[:size], y[:size]
  return data


def _is_bridge(path: tuple) -> bool:
  return "bridge_params" in path


def make_optimizer(config: ml_collections.ConfigDict):
  """Adam for the classifier and Adam for the bridge, each at its own rate."""
  bridge_lr = config.bridge_learning_rate or config.learning_rate

  def labels(params):
    flat = traverse_util.flatten_dict(params)
    return traverse_util.unflatten_dict(
      {k: "bridge" if _is_bridge(k) else "model" for k in flat}
    )

  return optax.multi_transform(
    {
      "model": optax.adam(config.learning_rate),
      "bridge": optax.adam(bridge_lr),
    },
    labels,
  )


def _task_metrics(logits, labels):
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
  return {
    "loss": jnp.mean(loss),
    "accuracy": accuracy,
    "error_rate": 1.0 - accuracy,
  }


def _fidelity(bridge_state):
  """The bridge loss and how closely the bridge output matches the sort."""
  total, metrics = dabjax.bridge_losses(bridge_state)
  layer = {k.rsplit("/", 1)[1]: v for k, v in metrics.items()}
  return total, {"bridge_loss": total} | {
    f"bridge_{name}": layer[name] for name in ("mse", "cosine", "finite")
  }


def make_task(
  config: ml_collections.ConfigDict, data: dict[str, np.ndarray]
) -> dict[str, Any]:
  """Returns the keyword arguments of `loop.run` for this experiment."""
  num_classes = int(
    max(data["train_labels"].max(), data["test_labels"].max()) + 1
  )
  net = make_model(config, max(num_classes, config.num_classes))
  tx = make_optimizer(config)
  bridged = config.estimator == "dab"
  example = jnp.zeros((2, *data["train_images"].shape[1:]), jnp.float32)

  def init_fn(key):
    params = net.init(key, example)["params"]
    return TrainState(
      step=jnp.array(0), params=params, opt_state=tx.init(params)
    )

  def train_step(state, batch):
    def loss_fn(params):
      variables = {"params": params}
      if bridged:
        logits, bridge_state = net.apply(
          variables, batch["image"], mutable=[dabjax.linen.COLLECTION]
        )
      else:
        logits = net.apply(variables, batch["image"])
      metrics = _task_metrics(logits, batch["label"])
      loss = metrics["loss"]
      if bridged:
        bridge_loss, fidelity = _fidelity(bridge_state)
        loss, metrics = loss + bridge_loss, metrics | fidelity
      return loss, metrics

    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params)
    return loop.apply_gradients(state, tx, grads), metrics

  rows = parallel.local_rows(config.batch_size)
  global_batch = images.make_batch_fn(
    {"image": data["train_images"], "label": data["train_labels"]},
    config.batch_size,
    seed=config.seed,
  )

  def batch_fn(step):
    return jax.tree.map(lambda a: a[rows], global_batch(step))

  chunk = min(config.eval_chunk, len(data["test_labels"]))
  chunks = len(data["test_labels"]) // chunk
  test_images = data["test_images"][: chunks * chunk].reshape(
    chunks, chunk, *data["test_images"].shape[1:]
  )
  test_labels = data["test_labels"][: chunks * chunk].reshape(chunks, chunk)

  @jax.jit
  def evaluate(params, test_images, test_labels):
    def one(chunk):
      x, labels = chunk
      # The hard sort alone, as at inference.
      metrics = _task_metrics(
        net.apply({"params": params}, x, train=False), labels
      )
      if bridged:
        _, bridge_state = net.apply(
          {"params": params}, x, mutable=[dabjax.linen.COLLECTION]
        )
        metrics |= _fidelity(bridge_state)[1]
      return metrics

    return jax.tree.map(jnp.mean, jax.lax.map(one, (test_images, test_labels)))

  def eval_fn(state):
    metrics = evaluate(state.params, test_images, test_labels)
    return {k: float(v) for k, v in metrics.items()}

  return dict(
    init_fn=init_fn, train_step=train_step, batch_fn=batch_fn, eval_fn=eval_fn
  )


def train_and_evaluate(
  config: ml_collections.ConfigDict,
  workdir: str | pathlib.Path,
  data: dict[str, np.ndarray] | None = None,
) -> dict[str, float]:
  """Trains, evaluates and writes every artefact under ``workdir``.

  Args:
    config: the run's config (see ``configs/default.py``).
    workdir: the run's directory.
    data: what `load_data` returns for this config; loaded when omitted.
      The comparison driver loads it once for all of its runs.

  Returns:
    The final metrics: ``train/<name>`` averaged over the last log interval
    and ``eval/<name>`` on the test split (accuracy, error rate,
    cross-entropy; bridge fidelity for DAB), with the hard sort alone.

  Raises:
    ValueError: if the config names an unknown estimator or bridge.
    FileNotFoundError: if the dataset is not on this machine.
  """
  if data is None:
    data = load_data(config)
  return loop.run(config, workdir, **make_task(config, data)).metrics
