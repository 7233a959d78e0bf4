"""Smoke runs of every estimator on both architectures, on small IDX files."""

import pathlib
import tempfile

import jax
import numpy as np
from absl.testing import absltest, parameterized

from examples.common import images, loop
from examples.density import estimators, train
from examples.density.configs import smoke


def _write_dataset(directory: pathlib.Path) -> None:
  """Small Fashion-MNIST-shaped IDX files: 32 train and 16 test images."""
  rng = np.random.default_rng(0)
  for prefix, n in (("train", 32), ("t10k", 16)):
    pixels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, (n,), dtype=np.uint8)
    images.write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", pixels)
    images.write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", labels)


class SmokeTest(parameterized.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._tempdir = tempfile.TemporaryDirectory()
    cls.root = pathlib.Path(cls._tempdir.name)
    _write_dataset(cls.root)

  @classmethod
  def tearDownClass(cls):
    cls._tempdir.cleanup()
    super().tearDownClass()

  def config(self, **overrides):
    config = smoke.get_config()
    config.data_dir = str(self.root)
    config.update(overrides)
    return config

  @parameterized.product(
    estimator=estimators.NAMES, architecture=("linear", "nonlinear")
  )
  def test_estimator_trains_with_finite_bound(self, estimator, architecture):
    config = self.config(estimator=estimator, architecture=architecture)
    train_images = images.load_images(data_dir=self.root)[0].reshape(32, -1)
    task = train.Task(config, train_images)
    state = task.init_fn(jax.random.key(0))
    step = jax.jit(task.train_step)
    first = None
    for i in range(3):
      state, metrics = step(state, train_images[8 * i : 8 * (i + 1)])
      first = jax.device_get(state.params) if first is None else first

    for key, value in metrics.items():
      self.assertTrue(np.isfinite(value), key)
    # A bound on log p(x) of 784 binary pixels: negative, and far above
    # the -784 log 2 = -543 nats of a coin per pixel minus a small KL.
    self.assertBetween(float(metrics["elbo"]), -700.0, 0.0)
    self.assertEqual(int(state.step), 3)
    moved = jax.tree.map(
      lambda a, b: bool(np.any(a != b)),
      first["encoder"],
      jax.device_get(state.params["encoder"]),
    )
    self.assertTrue(all(jax.tree.leaves(moved)), "the encoder must train")
    if estimator == "dab":
      self.assertGreater(float(metrics["bridge_loss"]), 0.0)
    if estimator == "relax":
      self.assertTrue(np.isfinite(metrics["relax_log10_variance"]))

  def test_run_writes_bounds_and_artefacts(self):
    config = self.config(estimator="relax", architecture="nonlinear")
    workdir = self.root / "full"
    metrics = train.train_and_evaluate(config, workdir)

    for key in ("eval/elbo", "eval/iw4", "eval/iw8", "train/elbo"):
      self.assertBetween(metrics[key], -700.0, 0.0, key)
    self.assertTrue(np.isfinite(metrics["eval/grad_log10_var"]))
    written = sorted(p.name for p in workdir.iterdir())
    self.assertContainsSubset(
      ["checkpoints", "learning_curves.png", "metrics.jsonl", "results.json"],
      written,
    )

  def test_resumed_run_reads_the_same_bits(self):
    def pieces(config):
      # Parameters are what is compared; evaluation is left out for speed.
      task = train.make_task(config)
      del task["eval_fn"]
      return task

    config = self.config(estimator="dab", num_steps=4, checkpoint_every=2)
    whole = loop.run(config, self.root / "whole", **pieces(config)).state
    short = self.config(estimator="dab", num_steps=2, checkpoint_every=2)
    loop.run(short, self.root / "split", **pieces(short))
    resumed = loop.run(config, self.root / "split", **pieces(config))
    self.assertEqual(resumed.start_step, 2)
    jax.tree.map(
      np.testing.assert_array_equal,
      jax.device_get(resumed.state.params),
      jax.device_get(whole.params),
    )

  def test_unknown_architecture_is_named(self):
    config = self.config(architecture="conv")
    with self.assertRaisesRegex(ValueError, r"Got 'conv'"):
      train.make_task(config)


if __name__ == "__main__":
  absltest.main()
