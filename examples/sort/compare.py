"""Every sort estimator at equal wall-clock, side by side.

    python -m examples.sort.compare --workdir=runs/sort_compare \\
      --seconds=180 --seeds=0

Each estimator's steady-state speed (steps per second, after compilation) is
measured first, back to back in this process; each then trains for as many
steps as fit its share of ``--seconds``, so a cheaper estimator sees more
samples. Writes ``comparison.md``, ``comparison.json`` and ``comparison.png``.
"""

import pathlib
import time

import jax
from absl import app, flags, logging

from examples.common import cli, compare
from examples.sort import train
from examples.sort.configs import demo

_WORKDIR = flags.DEFINE_string("workdir", "runs/sort_compare", "Output.")
_SECONDS = flags.DEFINE_float("seconds", 180.0, "Training budget per run.")
_SEEDS = flags.DEFINE_list("seeds", ["0"], "Seeds to run.")
_PROBE_STEPS = 100

VARIANTS = {
  "dab": {"estimator": "dab"},
  # The paper's element-wise bridge (1 -> 256 -> 256 -> 1 on each of 256
  # features) costs 64x the dense bridge; a narrower one fits a CPU budget.
  "dab_elementwise": {
    "estimator": "dab",
    "bridge": "elementwise",
    "bridge_hidden": (16, 16),
  },
  "ste": {"estimator": "ste"},
  "none": {"estimator": "none"},
  "ptrnet": {"estimator": "ptrnet"},
}
METRICS = {
  "eval/all_or_none": "all-or-none accuracy",
  "eval/per_position": "per-position accuracy",
  "eval/task_loss": "test cross-entropy",
  "samples": "training samples seen",
}


def steps_per_second(config) -> float:
  """Steady-state training steps per second of one config."""
  task = train.make_task(config)
  step = jax.jit(task["train_step"])
  state = task["init_fn"](jax.random.key(0))
  batches = [task["batch_fn"](i) for i in range(_PROBE_STEPS + 1)]
  state, _ = jax.block_until_ready(step(state, batches[0]))
  start = time.perf_counter()
  for batch in batches[1:]:
    state, metrics = step(state, batch)
  jax.block_until_ready((state, metrics))
  return _PROBE_STEPS / (time.perf_counter() - start)


def main(argv):
  del argv
  cli.quiet_orbax()
  base = demo.get_config()
  workdir = pathlib.Path(_WORKDIR.value)
  variants = {}
  for name, overrides in VARIANTS.items():
    config = base.copy_and_resolve_references()
    config.update(overrides)
    rate = steps_per_second(config)
    steps = max(
      base.log_every,
      int(rate * _SECONDS.value) // base.log_every * base.log_every,
    )
    logging.info("%s: %.1f steps/s, so %d steps", name, rate, steps)
    variants[name] = dict(
      overrides,
      num_steps=steps,
      eval_every=steps // 10,
      checkpoint_every=steps // 4,
    )
  seeds = [int(s) for s in _SEEDS.value]
  results = compare.run_grid(
    train.train_and_evaluate, base, variants, seeds, workdir
  )
  for name, runs in results.items():
    for run in runs:
      run["samples"] = float(variants[name]["num_steps"] * base.batch_size)
  markdown, table = compare.summarize(
    results, METRICS, candidate="dab", baseline="ste"
  )
  compare.write_summary(workdir, markdown, table)
  compare.overlay_curves(
    workdir,
    list(VARIANTS),
    ["eval/all_or_none", "eval/task_loss"],
    workdir / "comparison.png",
  )
  print(markdown)


if __name__ == "__main__":
  app.run(main)
