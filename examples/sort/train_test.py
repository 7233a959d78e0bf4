"""Smoke runs of every sort estimator, and the command line under stress:
killed and resumed, and split over two processes."""

import pathlib
import signal
import tempfile
import time

import jax
import numpy as np
from absl.testing import absltest, parameterized

from examples.common import checkpoints, processes
from examples.sort import train
from examples.sort.configs import smoke

TIMEOUT_S = processes.TIMEOUT_S
LONG_RUN = (
  "--config=examples/sort/configs/smoke.py",
  "--config.num_steps=300",
  "--config.checkpoint_every=50",
  "--config.eval_every=150",
  "--config.log_every=100",
)


def _start(workdir, devices, *flags):
  return processes.start("examples.sort.main", workdir, devices, *flags)


def _final_params(workdir, config):
  """The parameters of the latest checkpoint, on one device."""
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
    jax.eval_shape(train.make_task(config)["init_fn"], jax.random.key(0)),
  )
  with checkpoints.manager(pathlib.Path(workdir) / "checkpoints", 3) as mngr:
    step, state = checkpoints.restore_latest(mngr, target)
  return step, jax.tree.map(np.asarray, state.params)


def _long_config():
  config = smoke.get_config()
  config.unlock()
  config.num_steps = 300
  return config


class SmokeTest(parameterized.TestCase):
  @parameterized.named_parameters(
    ("dab_dense", {"estimator": "dab"}),
    ("dab_elementwise", {"estimator": "dab", "bridge": "elementwise"}),
    ("dab_warmup", {"bridge_warmup_steps": 5, "bridge_learning_rate": 3e-3}),
    ("ste", {"estimator": "ste"}),
    ("none", {"estimator": "none"}),
    ("ptrnet", {"estimator": "ptrnet"}),
  )
  def test_estimator_runs_with_finite_metrics(self, overrides):
    config = smoke.get_config()
    config.update(overrides)
    with tempfile.TemporaryDirectory() as workdir:
      metrics = train.train_and_evaluate(config, workdir)
      written = sorted(p.name for p in pathlib.Path(workdir).iterdir())
    for key in ("eval/all_or_none", "eval/per_position", "eval/task_loss"):
      self.assertTrue(np.isfinite(metrics[key]), key)
    self.assertBetween(metrics["eval/per_position"], 0.0, 1.0)
    # Within reach of chance (10 · ln 10) after a few steps: nothing diverged.
    self.assertLess(metrics["eval/task_loss"], 2 * 10 * np.log(10))
    if config.estimator == "dab":
      self.assertEqual(metrics["train/bridge_finite"], 1.0)
      self.assertGreater(metrics["train/bridge_loss"], 0.0)
    self.assertContainsSubset(
      ["checkpoints", "learning_curves.png", "metrics.jsonl", "results.json"],
      written,
    )

  @parameterized.parameters(("estimator", "gumbel"), ("bridge", "conv"))
  def test_bad_choice_is_named(self, field, value):
    config = smoke.get_config()
    config[field] = value
    with self.assertRaisesRegex(
      ValueError, rf"config.{field} must be one of .*Got '{value}'"
    ):
      train.make_model(config)


class CommandLineTest(absltest.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._tempdir = tempfile.TemporaryDirectory()
    cls.root = pathlib.Path(cls._tempdir.name)
    processes.finish(_start(cls.root / "uninterrupted", 2, *LONG_RUN))

  @classmethod
  def tearDownClass(cls):
    cls._tempdir.cleanup()
    super().tearDownClass()

  def test_killed_run_resumes_to_the_same_parameters(self):
    workdir = self.root / "killed"
    killed = _start(workdir, 2, *LONG_RUN)
    deadline = time.monotonic() + TIMEOUT_S
    ckpt = workdir / "checkpoints"
    while not (ckpt.is_dir() and any(p.name.isdigit() for p in ckpt.iterdir())):
      self.assertIsNone(killed.poll(), "the run ended before a checkpoint")
      self.assertLess(time.monotonic(), deadline)
      time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    processes.finish(killed, returncode=-signal.SIGKILL)
    self.assertFalse((workdir / "results.json").exists())

    output = processes.finish(_start(workdir, 2, *LONG_RUN))

    self.assertRegex(output, r"Restored checkpoint of step [1-9]")
    config = _long_config()
    step, resumed = _final_params(workdir, config)
    _, expected = _final_params(self.root / "uninterrupted", config)
    self.assertEqual(step, 300)
    jax.tree.map(np.testing.assert_array_equal, resumed, expected)

  def test_two_processes_match_one_process(self):
    port = processes.free_port()
    workdir = self.root / "two_processes"
    runs = [
      _start(
        workdir,
        1,
        *LONG_RUN,
        f"--coordinator_address=localhost:{port}",
        "--num_processes=2",
        f"--process_id={index}",
      )
      for index in range(2)
    ]
    for process in runs:
      processes.finish(process)
    config = _long_config()
    _, distributed = _final_params(workdir, config)
    _, expected = _final_params(self.root / "uninterrupted", config)
    # Two devices either way; the reduction order may differ in the last bit.
    jax.tree.map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
      distributed,
      expected,
    )


if __name__ == "__main__":
  absltest.main()
