"""Smoke runs of every estimator of the sort classifier, and its pieces."""

import os
import pathlib
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from examples.classification import model, train
from examples.classification.configs import smoke
from examples.common import images, metrics

CLASSES = 10


def _train_quickly(config, data):
  """Trains with the task's compiled step, without the loop; evaluates."""
  task = train.make_task(config, data)
  state = jax.jit(task["init_fn"])(jax.random.key(config.seed))
  step = jax.jit(task["train_step"])
  for i in range(config.num_steps):
    state, _ = step(state, task["batch_fn"](i))
  return task["eval_fn"](state)


def _write_bars(directory, train_size=320, test_size=160):
  """Writes a small Fashion-MNIST-shaped dataset of IDX files.

  Class ``c`` is a bright horizontal bar at rows ``2c + 4`` and ``2c + 5``
  over uniform noise, so a few dozen steps separate the classes.
  """
  rng = np.random.default_rng(0)
  for prefix, n in (("train", train_size), ("t10k", test_size)):
    labels = (np.arange(n) % CLASSES).astype(np.uint8)
    pixels = rng.integers(0, 100, (n, 28, 28), dtype=np.uint8)
    for c in range(CLASSES):
      pixels[labels == c, 2 * c + 4 : 2 * c + 6, 4:24] = 255
    images.write_idx(
      os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"), pixels
    )
    images.write_idx(
      os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"), labels
    )


class SmokeTest(parameterized.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._data = tempfile.TemporaryDirectory()
    _write_bars(cls._data.name)

  @classmethod
  def tearDownClass(cls):
    cls._data.cleanup()
    super().tearDownClass()

  def _config(self, **overrides):
    config = smoke.get_config()
    config.data_dir = self._data.name
    config.update(overrides)
    return config

  def test_dab_run_learns_and_writes_its_artefacts(self):
    config = self._config(estimator="dab")
    with tempfile.TemporaryDirectory() as workdir:
      final = train.train_and_evaluate(config, workdir)
      written = sorted(p.name for p in pathlib.Path(workdir).iterdir())
      history = metrics.read_jsonl(pathlib.Path(workdir) / metrics.JSONL_NAME)

    for key in ("eval/accuracy", "eval/loss", "train/loss"):
      self.assertTrue(np.isfinite(final[key]), key)
    # Chance is 10%; the bars are easy, so a working gradient gets far above.
    self.assertGreater(final["eval/accuracy"], 0.5)
    self.assertAlmostEqual(
      final["eval/error_rate"], 1.0 - final["eval/accuracy"], places=5
    )
    self.assertEqual(final["train/bridge_finite"], 1.0)
    self.assertEqual(final["eval/bridge_finite"], 1.0)
    bridge_losses = [
      r["train/bridge_loss"] for r in history if "train/bridge_loss" in r
    ]
    # The bridge learns to sort while the classifier trains.
    self.assertLess(bridge_losses[-1], 0.7 * bridge_losses[0])
    self.assertContainsSubset(
      ["checkpoints", "learning_curves.png", "metrics.jsonl", "results.json"],
      written,
    )

  @parameterized.named_parameters(
    (name, name) for name in model.ESTIMATORS if name != "dab"
  )
  def test_estimator_learns_the_bars(self, estimator):
    # The compiled pieces alone: the loop around them is tested with DAB.
    config = self._config(estimator=estimator)
    final = _train_quickly(config, train.load_data(config))

    self.assertTrue(np.isfinite(final["loss"]))
    # Chance is 10%.
    self.assertGreater(final["accuracy"], 0.5)
    self.assertNotIn("bridge_loss", final)

  def test_bad_estimator_is_named(self):
    config = self._config(estimator="gumbel")
    with self.assertRaisesRegex(ValueError, r"config.estimator .* 'gumbel'"):
      train.make_model(config)

  def test_missing_dataset_is_an_error(self):
    with tempfile.TemporaryDirectory() as empty:
      config = self._config(data_dir=empty)
      with self.assertRaisesRegex(FileNotFoundError, "dataset-fashion-mnist"):
        train.load_data(config)


class ModelTest(parameterized.TestCase):
  @parameterized.parameters("dab", "ste", "softsort")
  def test_evaluation_uses_the_hard_sort(self, estimator):
    x = jax.random.uniform(jax.random.key(0), (4, 28, 28, 1))
    net = model.SortClassifier(
      estimator=estimator, conv_features=(4,), groups=2, group_size=3
    )
    params = net.init(jax.random.key(1), x)
    exact = model.SortClassifier(
      estimator="exact", conv_features=(4,), groups=2, group_size=3
    )
    unsorted = model.SortClassifier(
      estimator="none", conv_features=(4,), groups=2, group_size=3
    )
    logits = net.apply(params, x, train=False)
    np.testing.assert_allclose(logits, exact.apply(params, x), atol=1e-6)
    self.assertGreater(
      float(jnp.max(jnp.abs(logits - unsorted.apply(params, x)))), 1e-3
    )

  def test_soft_sort_tends_to_the_sort(self):
    x = jax.random.normal(jax.random.key(0), (5, 8))
    np.testing.assert_allclose(
      model.soft_sort(x, 1e-3), jnp.sort(x, axis=-1), atol=1e-4
    )
    # A high temperature averages: every output lies within the row's range.
    soft = model.soft_sort(x, 10.0)
    self.assertTrue(bool(jnp.all(soft >= x.min(-1, keepdims=True) - 1e-6)))
    self.assertTrue(bool(jnp.all(soft <= x.max(-1, keepdims=True) + 1e-6)))
    self.assertGreater(float(jnp.max(jnp.abs(soft - jnp.sort(x, -1)))), 0.1)

  def test_soft_sort_gradient_routes_through_the_permutation(self):
    x = jnp.array([0.3, -1.0, 2.0])
    ct = jnp.array([1.0, 0.0, 0.0])  # d(smallest output)
    grad = jax.grad(lambda v: model.soft_sort(v, 0.01) @ ct)(x)
    # The smallest value, at position 1, receives the whole gradient.
    np.testing.assert_allclose(grad, [0.0, 1.0, 0.0], atol=1e-4)

  def test_soft_sort_refuses_a_zero_temperature(self):
    with self.assertRaisesRegex(ValueError, "temperature must be positive"):
      model.soft_sort(jnp.ones(3), 0.0)

  def test_group_sort_sorts_each_group(self):
    x = jnp.array([[3.0, 1.0, 2.0, 0.0, -1.0, 5.0]])
    np.testing.assert_array_equal(
      model.group_sort(x, 2), [[1.0, 2.0, 3.0, -1.0, 0.0, 5.0]]
    )


class RealDataTest(absltest.TestCase):
  def test_fashion_mnist_beats_chance(self):
    if not os.path.isdir(images.FASHION_MNIST_DIR):
      self.skipTest(f"{images.FASHION_MNIST_DIR} is not installed")
    config = smoke.get_config()
    config.estimator = "ste"
    config.train_size = 2048
    config.eval_size = 1024
    config.eval_chunk = 256
    config.num_steps = 60
    final = _train_quickly(config, train.load_data(config))
    # Chance is 10%; 60 steps of a tiny net reach about 57%.
    self.assertGreater(final["accuracy"], 0.4)


if __name__ == "__main__":
  absltest.main()
