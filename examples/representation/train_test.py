"""Smoke runs of every code and estimator on small IDX files, and the pieces
of the evaluation (linear probe, code usage, temperature) on known inputs."""

import itertools
import os
import pathlib
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from examples.common import images
from examples.representation import model, train
from examples.representation.configs import smoke


def _write_fashion_dir(directory, train_size=64, test_size=64):
  """Small Fashion-MNIST-shaped IDX files: 28x28 uint8 images, 10 labels."""
  rng = np.random.default_rng(0)
  for prefix, n in (("train", train_size), ("t10k", test_size)):
    labels = (np.arange(n) % 10).astype(np.uint8)
    # Each class lights a different band of rows, plus noise.
    pictures = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
    for index, label in enumerate(labels):
      pictures[index, 2 * label : 2 * label + 6] = 230
    images.write_idx(
      os.path.join(directory, f"{prefix}-images-idx3-ubyte"), pictures
    )
    images.write_idx(
      os.path.join(directory, f"{prefix}-labels-idx1-ubyte"), labels
    )


def _config(code, estimator, data_dir):
  config = smoke.get_config()
  config.update(code=code, estimator=estimator, data_dir=data_dir)
  return config


class SmokeTest(parameterized.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._tempdir = tempfile.TemporaryDirectory()
    cls.data_dir = cls._tempdir.name
    _write_fashion_dir(cls.data_dir)

  @classmethod
  def tearDownClass(cls):
    cls._tempdir.cleanup()
    super().tearDownClass()

  @parameterized.named_parameters(
    (f"{code}_{estimator}", code, estimator)
    for code, estimator in itertools.product(model.CODES, model.ESTIMATORS)
  )
  def test_every_combination_trains_with_finite_metrics(self, code, estimator):
    config = _config(code, estimator, self.data_dir)
    task = train.make_task(config)
    state = jax.jit(task["init_fn"])(jax.random.key(0))
    step = jax.jit(task["train_step"])
    for index in range(2):
      state, metrics = step(state, task["batch_fn"](index))
    evaluated = task["eval_fn"](state)

    self.assertEqual(int(state.step), 2)
    for name, value in metrics.items():
      self.assertTrue(np.isfinite(value), name)
    # Near the cross-entropy of random logits (784 ln 2): nothing diverged.
    self.assertLess(float(metrics["nll"]), 2 * 784 * np.log(2))
    self.assertLess(evaluated["nll"], 2 * 784 * np.log(2))
    self.assertBetween(evaluated["probe_accuracy"], 0.0, 1.0)
    if code == "binary":
      self.assertNotIn("perplexity", evaluated)
    else:
      choices = config.classes if code == "categorical" else config.centroids
      self.assertBetween(evaluated["perplexity"], 1.0, choices)
      self.assertBetween(evaluated["usage"], 1.0 / choices, 1.0)
    if estimator == "dab":
      self.assertEqual(float(metrics["bridge_finite"]), 1.0)
      self.assertGreater(float(metrics["bridge_loss"]), 0.0)
    else:
      self.assertNotIn("bridge_loss", metrics)

  def test_code_is_hard_in_evaluation(self):
    for code in model.CODES:
      config = _config(code, "gumbel", self.data_dir)
      net = train.make_model(config)
      x = jnp.linspace(0.0, 1.0, 3 * 784).reshape(3, 784)
      params = jax.jit(net.init)(jax.random.key(0), x, rng=jax.random.key(1))
      _, extras = jax.jit(net.apply, static_argnames="train")(
        params, x, train=False
      )
      code_values = np.asarray(extras["code"])
      if code == "binary":
        np.testing.assert_array_equal(np.abs(code_values), 1.0)
      elif code == "categorical":
        np.testing.assert_array_equal(code_values.sum(-1), 1.0)
        np.testing.assert_array_equal(code_values.max(-1), 1.0)
      else:
        codebook = np.asarray(params["params"]["codebook"])
        hits = (code_values[..., None, :] == codebook).all(-1).any(-1)
        self.assertTrue(hits.all())

  def test_command_writes_every_artefact(self):
    config = _config("binary", "dab", self.data_dir)
    config.update(num_steps=4, eval_every=4, checkpoint_every=4)
    with tempfile.TemporaryDirectory() as workdir:
      metrics = train.train_and_evaluate(config, workdir)
      written = sorted(p.name for p in pathlib.Path(workdir).iterdir())
    self.assertContainsSubset(
      [
        "checkpoints",
        "learning_curves.png",
        "metrics.jsonl",
        "reconstructions.png",
        "results.json",
      ],
      written,
    )
    self.assertTrue(np.isfinite(metrics["eval/nll"]))
    self.assertIn("eval/probe_accuracy", metrics)

  def test_batches_are_a_pure_function_of_the_step(self):
    config = _config("binary", "dab", self.data_dir)
    first = train.make_task(config)["batch_fn"](7)["x"]
    again = train.make_task(config)["batch_fn"](7)["x"]
    other = train.make_task(config)["batch_fn"](8)["x"]
    np.testing.assert_array_equal(first, again)
    self.assertFalse(np.array_equal(first, other))

  def test_bad_estimator_is_named(self):
    config = _config("binary", "relax", self.data_dir)
    with self.assertRaisesRegex(ValueError, r"config.estimator .* Got 'relax'"):
      train.make_model(config)


class EvaluationTest(absltest.TestCase):
  def test_linear_probe_separates_separable_codes(self):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 600).astype(np.int32)
    # One ±1 block of 4 bits per class, plus random bits.
    codes = rng.choice([-1.0, 1.0], (600, 48)).astype(np.float32)
    codes[:, :40] = -1.0
    for index, label in enumerate(labels):
      codes[index, 4 * label : 4 * label + 4] = 1.0
    accuracy = jax.jit(train.linear_probe)(
      codes[:400], labels[:400], codes[400:], labels[400:]
    )
    self.assertGreaterEqual(float(accuracy), 0.99)

  def test_linear_probe_is_near_chance_on_random_labels(self):
    rng = np.random.default_rng(1)
    codes = rng.choice([-1.0, 1.0], (2000, 16)).astype(np.float32)
    labels = rng.integers(0, 10, 2000).astype(np.int32)
    accuracy = train.linear_probe(
      codes[:1000], labels[:1000], codes[1000:], labels[1000:]
    )
    self.assertLess(float(accuracy), 0.2)

  def test_code_usage_of_known_assignments(self):
    # Two groups of four choices: the first always picks choice 2, the
    # second picks each choice equally often.
    first = jax.nn.one_hot(jnp.full((8,), 2), 4)
    second = jax.nn.one_hot(jnp.arange(8) % 4, 4)
    perplexity, usage = train.code_usage(jnp.stack([first, second], axis=1))
    np.testing.assert_allclose(perplexity, (1.0 + 4.0) / 2, rtol=1e-6)
    np.testing.assert_allclose(usage, (1 + 4) / 8, rtol=1e-6)

  def test_temperature_decays_exponentially(self):
    config = smoke.get_config()
    config.update(num_steps=100, temperature_start=1.0, temperature_end=0.5)
    np.testing.assert_allclose(train.temperature(config, 0), 1.0)
    np.testing.assert_allclose(train.temperature(config, 50), 0.5**0.5)
    np.testing.assert_allclose(train.temperature(config, 100), 0.5)
    np.testing.assert_allclose(train.temperature(config, 200), 0.5)

  def test_nll_of_known_logits(self):
    x = jnp.full((2, 784), 0.5)
    # Zero logits give probability 1/2 to every intensity: 784 ln 2.
    np.testing.assert_allclose(
      train.reconstruction_nll(jnp.zeros((2, 784)), x),
      np.full(2, 784 * np.log(2)),
      rtol=1e-6,
    )


if __name__ == "__main__":
  absltest.main()
