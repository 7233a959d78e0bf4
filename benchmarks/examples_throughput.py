"""Question 1 for the image examples: step time and throughput per estimator.

The three image examples' training steps, each built with the example's own
``train.make_task`` from its ``configs/default.py`` (the same model, loss,
optimizers and batch size as training; state donated as in `loop.run`):

* ``classification``: the conv classifier with a sorting layer, estimators
  ``dab``, ``ste``, ``softsort`` and ``none``, batch 128;
* ``representation``: the MLP autoencoder with a 128-bit binary code,
  estimators ``dab``, ``gumbel``, ``gumbel_st`` and ``ste``, batch 128;
* ``density``: the linear Bernoulli VAE, estimators ``dab``, ``reinforce``,
  ``relax``, ``concrete`` and ``ste``, batch 50.

The data is Fashion-MNIST, read once per example through the example's own
loader (``density.train.make_task`` takes no data argument and reads the
files itself, so it reads them once per estimator), and every timed step
runs on real batches from the task's ``batch_fn``. For each estimator: the
time to lower and to compile the step, then the steady-state step time and
the samples per second it gives. For each model, ``dab`` is also timed in
alternation with the model's usual baseline (``ste`` for classification and
representation, ``relax`` for density), round by round, so that both see
the same load, and the time ratio is recorded.

The image models run in float32 only: with ``--dtype=bfloat16`` the script
logs why and measures nothing. ``--quick`` measures ``dab`` alone for
classification and density and ``dab`` against ``ste`` for representation,
at batch 32. When Fashion-MNIST is missing, ``--quick`` logs why and
measures nothing; a full run raises.

  python -m benchmarks.examples_throughput --out=/tmp/examples.jsonl
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
from absl import app, logging

from benchmarks import common
from examples.classification import train as classification_train
from examples.classification.configs import default as classification_default
from examples.density import train as density_train
from examples.density.configs import default as density_default
from examples.representation import train as representation_train
from examples.representation.configs import (
  default as representation_default,
)


@dataclasses.dataclass(frozen=True)
class Example:
  """One image example as the benchmark runs it.

  Attributes:
    get_config: the example's ``configs/default.py`` ``get_config``.
    make_task: ``(config, data) -> task``: the example's ``make_task``.
    load_data: ``config -> data`` (read once per example), or None when
      ``make_task`` reads the data itself.
    estimators: the estimators timed in a full run.
    baseline: the estimator ``dab`` is timed against.
    quick_estimators: the estimators timed with ``--quick``.
  """

  get_config: Callable[[], ml_collections.ConfigDict]
  make_task: Callable[[ml_collections.ConfigDict, Any], dict[str, Any]]
  load_data: Callable[[ml_collections.ConfigDict], Any] | None
  estimators: tuple[str, ...]
  baseline: str
  quick_estimators: tuple[str, ...]


def _representation_config() -> ml_collections.ConfigDict:
  config = representation_default.get_config()
  config.code = "binary"
  return config


def _density_config() -> ml_collections.ConfigDict:
  config = density_default.get_config()
  config.architecture = "linear"
  return config


EXAMPLES = {
  "classification": Example(
    get_config=classification_default.get_config,
    make_task=classification_train.make_task,
    load_data=classification_train.load_data,
    estimators=("dab", "ste", "softsort", "none"),
    baseline="ste",
    quick_estimators=("dab",),
  ),
  "representation": Example(
    get_config=_representation_config,
    make_task=representation_train.make_task,
    load_data=representation_train.load_data,
    estimators=("dab", "gumbel", "gumbel_st", "ste"),
    baseline="ste",
    quick_estimators=("dab", "ste"),
  ),
  "density": Example(
    get_config=_density_config,
    make_task=lambda config, data: density_train.make_task(config),
    load_data=None,
    estimators=("dab", "reinforce", "relax", "concrete", "ste"),
    baseline="relax",
    quick_estimators=("dab",),
  ),
}
NUM_BATCHES = 4


class TaskStep:
  """An example's compiled training step, with its state and real batches.

  Each call runs one step on the next of ``NUM_BATCHES`` device batches
  taken from the task's ``batch_fn``.

  Attributes:
    compiled: the compiled step (state donated).
    compile_times: ``lower_s`` and ``compile_s``.
    flops: FLOPs per step from XLA's cost analysis, or None.
  """

  def __init__(self, task: dict[str, Any], dtype: Any):
    self.state = common.cast(jax.jit(task["init_fn"])(jax.random.key(0)), dtype)
    self.batches = [
      jax.device_put(common.cast(task["batch_fn"](step), dtype))
      for step in range(NUM_BATCHES)
    ]
    jitted = jax.jit(task["train_step"], donate_argnums=0)
    self.compiled, self.compile_times = common.compile_timed(
      jitted, self.state, self.batches[0]
    )
    self.flops = common.flops(self.compiled)
    self._count = 0

  def __call__(self) -> tuple[Any, Any]:
    batch = self.batches[self._count % len(self.batches)]
    self._count += 1
    self.state, metrics = self.compiled(self.state, batch)
    return self.state, metrics


def _config(example: Example, estimator: str, options: common.Options):
  config = example.get_config()
  config.estimator = estimator
  if options.quick:
    config.batch_size = common.QUICK_BATCH
  return config


def _measure_example(
  name: str, example: Example, options: common.Options
) -> list[dict[str, Any]]:
  """The records of one example: one per estimator, and the ratio."""
  config = example.get_config()
  data = example.load_data(config) if example.load_data else None
  estimators = example.quick_estimators if options.quick else example.estimators
  records, steps = [], {}
  for estimator in estimators:
    config = _config(example, estimator, options)
    step = TaskStep(
      example.make_task(config, data), common.DTYPES[options.dtype]
    )
    stats = common.summarize(common.time_calls(step, options), "step_")
    records.append(
      common.record(
        "examples_throughput",
        options,
        model=name,
        estimator=estimator,
        batch_size=config.batch_size,
        **step.compile_times,
        flops=step.flops,
        **stats,
        samples_per_s=config.batch_size / stats["step_median_s"],
      )
    )
    if estimator in ("dab", example.baseline):
      steps[estimator] = step
  if len(steps) == 2:
    records.append(_ratio(name, example, steps, options))
  return records


def _ratio(
  name: str,
  example: Example,
  steps: dict[str, TaskStep],
  options: common.Options,
) -> dict[str, Any]:
  """``dab`` against the baseline, timed in alternation."""
  base = example.baseline
  times = common.time_interleaved(steps, options, rounds=2 * options.repeats)
  a, b = steps["dab"], steps[base]
  return common.record(
    "examples_overhead",
    options,
    model=name,
    estimator="dab",
    baseline=base,
    batch_size=_config(example, "dab", options).batch_size,
    flops=a.flops,
    baseline_flops=b.flops,
    flop_ratio=a.flops / b.flops if a.flops and b.flops else None,
    **common.summarize(times["dab"], "step_"),
    **common.summarize(times[base], "baseline_step_"),
    **common.ratio_stats(times["dab"], times[base], "time_"),
  )


def measure(options: common.Options) -> list[dict[str, Any]]:
  """Returns one record per example and estimator, and one ratio per model.

  Raises:
    FileNotFoundError: if Fashion-MNIST is missing and ``options.quick`` is
      false.
  """
  if options.dtype != "float32":
    # Casting these models' parameters and inputs is not enough: their DAB
    # layers then meet a float32 bridge output against a bfloat16 hard
    # output, which dab_bridge rejects.
    logging.warning(
      "examples_throughput: skipping the image models, which run in "
      "float32 only. Got --dtype=%s.",
      options.dtype,
    )
    return []
  records = []
  for name, example in EXAMPLES.items():
    try:
      records += _measure_example(name, example, options)
    except FileNotFoundError as error:
      if not options.quick:
        raise
      logging.warning(
        "examples_throughput: skipping the image models, their data is "
        "missing: %s",
        error,
      )
      return []
  return records


def main(argv):
  del argv
  common.script_main(measure)


if __name__ == "__main__":
  common.define_flags()
  app.run(main)
