"""The --quick suite runs end to end and writes sound records."""

import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile

from absl.testing import absltest

from examples.common import images

REPO = pathlib.Path(__file__).resolve().parents[1]
BENCHMARKS = (
  "throughput",
  "overhead",
  "roofline",
  "inference",
  "scaling_devices",
  "scaling_batch",
  "memory",
)
IMAGE_BENCHMARKS = ("examples_throughput", "examples_overhead")
IMAGE_MODELS = ("classification", "representation", "density")
CONTEXT = ("device_kind", "jax_version", "date", "dtype", "platform")
# Fields that are measured and must be strictly positive when present.
POSITIVE_SUFFIXES = ("_s", "_per_s", "flops", "peak_bytes", "_ratio")


class QuickSuiteTest(absltest.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.TemporaryDirectory()
    cls.out = pathlib.Path(cls.tmp.name) / "cpu.jsonl"
    env = dict(os.environ)
    # One plain CPU device, whatever the test configuration forces.
    env["XLA_FLAGS"] = " ".join(
      f
      for f in env.get("XLA_FLAGS", "").split()
      if "xla_force_host_platform_device_count" not in f
    )
    env["JAX_PLATFORMS"] = "cpu"
    done = subprocess.run(
      [sys.executable, "-m", "benchmarks.run", "--quick", f"--out={cls.out}"],
      cwd=REPO,
      env=env,
      capture_output=True,
      text=True,
      timeout=600,
      check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    cls.records = [
      json.loads(line) for line in cls.out.read_text().splitlines()
    ]

  @classmethod
  def tearDownClass(cls):
    cls.tmp.cleanup()
    super().tearDownClass()

  def test_every_benchmark_writes_records_with_context(self):
    expected = set(BENCHMARKS)
    if _have_fashion_mnist():
      expected |= set(IMAGE_BENCHMARKS)
    self.assertEqual(expected, {r["benchmark"] for r in self.records})
    for r in self.records:
      for key in CONTEXT:
        self.assertIn(key, r)
      self.assertEqual(r["dtype"], "float32")
      self.assertTrue(r["quick"])

  def test_measured_numbers_are_finite_and_positive(self):
    checked = 0
    for r in self.records:
      for key, value in r.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
          continue
        self.assertTrue(math.isfinite(value), (r["benchmark"], key, value))
        self.assertGreaterEqual(value, 0, (r["benchmark"], key))
        if key.endswith(POSITIVE_SUFFIXES):
          self.assertGreater(value, 0, (r["benchmark"], key))
          checked += 1
    self.assertGreater(checked, 50)

  def test_ratios_and_derived_numbers_agree(self):
    for r in self.records:
      if r["benchmark"] == "throughput":
        self.assertAlmostEqual(
          r["samples_per_s"], r["batch_size"] / r["step_median_s"], places=3
        )
      if r["benchmark"] == "examples_throughput":
        self.assertIn(r["model"], IMAGE_MODELS)
        self.assertEqual(r["batch_size"], 32)
        self.assertAlmostEqual(
          r["samples_per_s"], r["batch_size"] / r["step_median_s"], places=3
        )
      if r["benchmark"] == "examples_overhead":
        self.assertEqual((r["estimator"], r["baseline"]), ("dab", "ste"))
        self.assertAlmostEqual(
          r["time_ratio"], r["step_median_s"] / r["baseline_step_median_s"]
        )
        # The bridge adds a network to the step: more FLOPs than STE.
        self.assertGreater(r["flop_ratio"], 1.0)
      if r["benchmark"] == "overhead" and r["baseline"] == "ste":
        # The bridge's forward and backward add arithmetic to the step.
        self.assertGreater(r["flop_ratio"], 1.5)
      if r["benchmark"] == "memory" and r["estimator"] == "dab":
        # The bridge's parameters and Adam moments are extra arguments.
        self.assertGreater(r["peak_over_ste"], 1.0)
      if r["benchmark"] == "scaling_devices":
        self.assertEqual(r["device_count"], r["devices"])

  def test_plot_and_summary_are_written(self):
    png = self.out.with_name("cpu_batch_sweep.png")
    self.assertEqual(png.read_bytes()[:8], b"\x89PNG\r\n\x1a\n")
    summary = self.out.with_name("cpu_summary.md").read_text()
    self.assertIn("### Throughput (question 1)", summary)
    self.assertIn("| dab / ste |", summary)
    if _have_fashion_mnist():
      self.assertIn("### Image examples: throughput (question 1)", summary)
      for model in IMAGE_MODELS:
        self.assertIn(f"| {model} | dab | 32 |", summary)


def _have_fashion_mnist() -> bool:
  """Whether the Fashion-MNIST files the image benchmarks read are here."""
  try:
    images.load_images("fashion_mnist", "test")
  except FileNotFoundError:
    return False
  return True


if __name__ == "__main__":
  absltest.main()
