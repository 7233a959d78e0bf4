"""Trains a discrete-code autoencoder on Fashion-MNIST and evaluates its code.

The paper's first domain: an autoencoder whose code passes through a hard
function (binary sign, categorical one-hot or vector quantisation), trained
with DAB or one of the estimators it is compared with. The training loss is
the reconstruction negative log-likelihood (a Bernoulli likelihood of the
pixel intensities, summed over pixels, averaged over the batch) plus the
bridge loss (DAB) and the codebook loss (VQ).

Evaluation uses the hard code alone, with no bridge and no noise:

- ``nll``: test reconstruction negative log-likelihood per image, in nats;
- ``probe_accuracy``: a linear softmax classifier, fit with optax on the
  frozen codes of the first ``probe_train_size`` training images, scored on
  the codes of the test images;
- ``perplexity`` and ``usage`` (categorical and VQ codes): the exponential
  of the entropy of how often each choice is made (averaged over the
  categorical variables), and the fraction of choices made at least once.
"""

import math
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax import struct
from matplotlib.backends import backend_agg
from matplotlib.figure import Figure

import dabjax
from examples.common import images, loop, parallel
from examples.representation import model as model_lib

RECONSTRUCTIONS_NAME = "reconstructions.png"


@struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array


def make_model(
  config: ml_collections.ConfigDict,
) -> model_lib.CodeAutoencoder:
  """Returns the autoencoder the config asks for.

  Raises:
    ValueError: if ``config.code`` or ``config.estimator`` is unknown.
  """
  for field, allowed in (
    ("code", model_lib.CODES),
    ("estimator", model_lib.ESTIMATORS),
  ):
    if config[field] not in allowed:
      raise ValueError(
        f"representation: config.{field} must be one of {allowed}. Got "
        f"{config[field]!r}. Set --config.{field} to one of them."
      )
  return model_lib.CodeAutoencoder(
    code=config.code,
    estimator=config.estimator,
    bits=config.bits,
    num_variables=config.num_variables,
    classes=config.classes,
    vectors=config.vectors,
    dim=config.dim,
    centroids=config.centroids,
    hidden=tuple(config.hidden),
    bridge_hidden=tuple(config.bridge_hidden),
    gamma=config.gamma,
    commitment=config.commitment,
  )


def temperature(config: ml_collections.ConfigDict, step: jax.Array):
  """Gumbel temperature: exponential decay from ``temperature_start`` at step
  0 to ``temperature_end`` at ``num_steps``."""
  fraction = jnp.minimum(step / config.num_steps, 1.0)
  ratio = config.temperature_end / config.temperature_start
  return config.temperature_start * jnp.power(ratio, fraction)


def reconstruction_nll(logits: jax.Array, x: jax.Array) -> jax.Array:
  """``[batch]`` Bernoulli negative log-likelihood of intensities, in nats."""
  return jnp.sum(optax.sigmoid_binary_cross_entropy(logits, x), axis=-1)


def linear_probe(
  train_codes: jax.Array,
  train_labels: jax.Array,
  test_codes: jax.Array,
  test_labels: jax.Array,
  *,
  num_classes: int = 10,
  steps: int = 500,
  learning_rate: float = 1e-2,
  weight_decay: float = 1e-4,
) -> jax.Array:
  """Test accuracy of a linear softmax classifier fit on frozen codes.

  Each feature is standardised with the training codes' mean and standard
  deviation, then the weights are fit by full-batch AdamW on the mean
  cross-entropy. Works under ``jit``.

  Args:
    train_codes: ``[n_train, features]`` codes.
    train_labels: ``[n_train]`` int labels.
    test_codes: ``[n_test, features]`` codes.
    test_labels: ``[n_test]`` int labels.
    num_classes: number of classes.
    steps: optimisation steps.
    learning_rate: AdamW learning rate.
    weight_decay: AdamW weight decay.

  Returns:
    The scalar accuracy on the test codes.
  """
  mean = jnp.mean(train_codes, 0, keepdims=True)
  std = jnp.std(train_codes, 0, keepdims=True) + 1e-6
  train_codes = (train_codes - mean) / std
  test_codes = (test_codes - mean) / std
  features = train_codes.shape[-1]
  params = {
    "w": jnp.zeros((features, num_classes), train_codes.dtype),
    "b": jnp.zeros((1, num_classes), train_codes.dtype),
  }
  tx = optax.adamw(learning_rate, weight_decay=weight_decay)

  def logits_fn(params, codes):
    return codes @ params["w"] + params["b"]

  def loss_fn(params):
    ce = optax.softmax_cross_entropy_with_integer_labels(
      logits_fn(params, train_codes), train_labels
    )
    return jnp.mean(ce)

  def step(carry, _):
    params, opt_state = carry
    grads = jax.grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), None

  (params, _), _ = jax.lax.scan(
    step, (params, tx.init(params)), None, length=steps
  )
  predicted = jnp.argmax(logits_fn(params, test_codes), -1)
  return jnp.mean(predicted == test_labels)


def code_usage(assignment: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Perplexity and usage of one-hot choices ``[n, groups, choices]``.

  Returns:
    ``(perplexity, usage)``: ``exp`` of the entropy of each group's choice
    frequencies, averaged over groups (between 1 and ``choices``), and the
    fraction of (group, choice) pairs chosen at least once.
  """
  frequency = jnp.mean(assignment, axis=0)
  entropy = -jnp.sum(
    jnp.where(frequency > 0, frequency * jnp.log(frequency), 0.0), axis=-1
  )
  return jnp.mean(jnp.exp(entropy)), jnp.mean(frequency > 0)


def load_data(config: ml_collections.ConfigDict) -> dict[str, np.ndarray]:
  """Flattened train and test images in [0, 1] and their labels."""
  data = {}
  for split in ("train", "test"):
    x, y = images.load_images(config.dataset, split, config.data_dir or None)
    data[f"{split}_x"] = x.reshape(x.shape[0], -1)
    data[f"{split}_y"] = y
  return data


def _chunked(x: np.ndarray, size: int, chunk: int) -> np.ndarray:
  """The first ``size`` rows (rounded down to whole chunks) in chunks."""
  size = min(size, x.shape[0])
  chunk = min(chunk, size)
  rows = size // chunk * chunk
  return x[:rows].reshape(rows // chunk, chunk, *x.shape[1:])


def make_task(
  config: ml_collections.ConfigDict, data: dict[str, np.ndarray] | None = None
) -> dict[str, Any]:
  """Returns the keyword arguments of `loop.run` for this experiment.

  Args:
    config: the experiment's config.
    data: the arrays of `load_data`; loaded from the config when ``None``.
  """
  net = make_model(config)
  data = load_data(config) if data is None else data
  tx = optax.adam(config.learning_rate)
  pixels = data["train_x"].shape[-1]
  net = net.clone(pixels=pixels)
  is_dab = config.estimator == "dab"
  # Sign agreement for bits; argmax agreement for one-hot codes.
  agreement = "sign" if config.code == "binary" else "argmax"
  if config.code == "vq":
    agreement = "cosine"
  fidelity_names = ("mse", f"{agreement}_agreement", "cosine", "finite")

  def init_fn(key):
    param_key, rng = jax.random.split(key)
    example = jnp.zeros((2, pixels), jnp.float32)
    params = net.init(param_key, example, train=True, rng=rng)["params"]
    return TrainState(
      step=jnp.array(0),
      params=params,
      opt_state=tx.init(params),
      rng=rng,
    )

  def train_step(state, batch):
    key = jax.random.fold_in(state.rng, state.step)
    tau = temperature(config, state.step)

    def loss_fn(params):
      (logits, extras), bridge_state = net.apply(
        {"params": params},
        batch["x"],
        train=True,
        temperature=tau,
        rng=key,
        mutable=[dabjax.linen.COLLECTION],
      )
      nll = jnp.mean(reconstruction_nll(logits, batch["x"]))
      metrics = {"nll": nll}
      loss = nll
      if "codebook_loss" in extras:
        loss = loss + extras["codebook_loss"]
        metrics["codebook_loss"] = extras["codebook_loss"]
      if is_dab:
        bridge_loss, fidelity = dabjax.bridge_losses(bridge_state)
        loss = loss + bridge_loss
        metrics["bridge_loss"] = bridge_loss
        for key_name, value in fidelity.items():
          name = key_name.rsplit("/", 1)[1]
          if name in fidelity_names:
            metrics[f"bridge_{name}"] = value
      return loss, metrics | {"loss": loss}

    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params)
    metrics["temperature"] = tau
    return loop.apply_gradients(state, tx, grads), metrics

  rows = parallel.local_rows(config.batch_size)
  all_rows = images.make_batch_fn(
    data["train_x"], config.batch_size, seed=config.seed
  )

  def batch_fn(step):
    return {"x": all_rows(step)[rows]}

  test_x = _chunked(data["test_x"], config.eval_size, config.eval_chunk)
  test_y = _chunked(data["test_y"], config.eval_size, config.eval_chunk)
  probe_x = _chunked(
    data["train_x"], config.probe_train_size, config.eval_chunk
  )
  probe_y = _chunked(
    data["train_y"], config.probe_train_size, config.eval_chunk
  )

  def encode(params, chunks):
    def one(x):
      logits, extras = net.apply({"params": params}, x, train=False)
      out = {
        "nll": reconstruction_nll(logits, x),
        "code": extras["code"].reshape(x.shape[0], -1),
      }
      if "assignment" in extras:
        out["assignment"] = extras["assignment"]
      return out

    out = jax.lax.map(one, chunks)
    return jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), out)

  @jax.jit
  def evaluate(params):
    test = encode(params, test_x)
    train = encode(params, probe_x)
    metrics = {
      "nll": jnp.mean(test["nll"]),
      "probe_accuracy": linear_probe(
        train["code"],
        probe_y.reshape(-1),
        test["code"],
        test_y.reshape(-1),
        steps=config.probe_steps,
        learning_rate=config.probe_learning_rate,
      ),
    }
    if "assignment" in test:
      metrics["perplexity"], metrics["usage"] = code_usage(test["assignment"])
    return metrics

  def eval_fn(state):
    return {k: float(v) for k, v in evaluate(state.params).items()}

  def reconstruct(params, x):
    logits, _ = net.apply({"params": params}, x, train=False)
    return jax.nn.sigmoid(logits)

  return dict(
    init_fn=init_fn,
    train_step=train_step,
    batch_fn=batch_fn,
    eval_fn=eval_fn,
    reconstruct=reconstruct,
    test_images=data["test_x"],
  )


def save_reconstructions(
  originals: np.ndarray, reconstructions: np.ndarray, path, title: str = ""
) -> None:
  """A PNG grid: test images in odd rows, their reconstructions below.

  Args:
    originals: ``[n, pixels]`` images in [0, 1] with square images.
    reconstructions: ``[n, pixels]`` mean intensities.
    path: the PNG to write.
    title: the figure's title.
  """
  n, pixels = originals.shape
  side = math.isqrt(pixels)
  columns = min(n, 8)
  pairs = math.ceil(n / columns)
  figure = Figure(figsize=(columns, 2 * pairs), layout="constrained")
  backend_agg.FigureCanvasAgg(figure)
  for index in range(n):
    row, column = divmod(index, columns)
    for offset, source in enumerate((originals, reconstructions)):
      axes = figure.add_subplot(
        2 * pairs, columns, (2 * row + offset) * columns + column + 1
      )
      axes.imshow(
        source[index].reshape(side, side), cmap="gray", vmin=0, vmax=1
      )
      axes.set_axis_off()
  if title:
    figure.suptitle(title)
  figure.savefig(path, dpi=80)


def train_and_evaluate(
  config: ml_collections.ConfigDict, workdir: str | pathlib.Path
) -> dict[str, float]:
  """Trains, evaluates and writes every artefact under ``workdir``.

  Besides what `examples.common.loop.run` writes, process 0 draws
  ``reconstructions.png``: the first 16 test images and their
  reconstructions through the hard code.

  Returns:
    The final metrics: ``train/<name>`` averaged over the last log interval
    and ``eval/<name>`` on the test images (``nll``, ``probe_accuracy`` and,
    for categorical and VQ codes, ``perplexity`` and ``usage``).
  """
  task = make_task(config)
  reconstruct = task.pop("reconstruct")
  test_images = task.pop("test_images")
  result = loop.run(config, workdir, **task)
  if jax.process_index() == 0:
    originals = test_images[:16]
    params = jax.device_get(result.state.params)
    recon = np.asarray(jax.jit(reconstruct)(params, originals))
    path = pathlib.Path(workdir) / RECONSTRUCTIONS_NAME
    save_reconstructions(
      originals,
      recon,
      path,
      f"{config.code} code, {config.estimator}: test images (odd rows) and "
      "reconstructions",
    )
    logging.info("Wrote %s", path)
  return result.metrics
