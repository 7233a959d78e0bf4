"""A training loop with one compiled step, data parallel and resumable.

An example supplies four pure pieces and a config; `run` does the rest:

- `init_fn(key) -> state`: the train state, a pytree (for example a
  `flax.struct.dataclass` with `step`, `params`, `opt_state` and `rng`).
- `train_step(state, batch) -> (state, metrics)`: one update; `metrics` is a
  dict of scalar arrays. Draw randomness from the state, for example
  `jax.random.fold_in(state.rng, state.step)`, so that a resumed run draws
  exactly what an uninterrupted one does.
- `batch_fn(step) -> batch`: the host arrays (`[local_batch, ...]`) of step
  `step`, a pure function of `step`; with several processes, the rows
  `parallel.local_rows(config.batch_size)` of the global batch.
- `eval_fn(state) -> dict of floats`, optional.

The config holds `num_steps`, `batch_size` (global, over every device),
`log_every`, `eval_every`, `checkpoint_every` and `seed`, and optionally
`checkpoints_to_keep` (3 by default).

Every process calls every piece; only process 0 writes files.

The step is traced once and runs under sharded `jit`: the batch is split over
the mesh's `'data'` axis and the state is replicated. Metrics stay on the
device until the end of each log interval, and the next batch is put on the
devices while the current step runs. Under the workdir the loop writes
`checkpoints/`, `metrics.jsonl`, `tensorboard/`, `learning_curves.png` and
`results.json`; started again on the same workdir, it resumes from the latest
readable checkpoint and ends with the same state as an uninterrupted run.
"""

import contextlib
import dataclasses
import pathlib
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
import optax
import tqdm
from absl import logging

from examples.common import checkpoints, metrics, parallel, plots

REQUIRED_FIELDS = (
  "num_steps",
  "batch_size",
  "log_every",
  "eval_every",
  "checkpoint_every",
  "seed",
)
CURVES_NAME = "learning_curves.png"


@dataclasses.dataclass(frozen=True)
class Result:
  """What `run` returns.

  Attributes:
    metrics: the final metrics: the last train interval's means
      (`"train/<name>"`) and the final evaluation (`"eval/<name>"`).
    state: the final train state, replicated over the mesh.
    start_step: the step the run started from (non-zero when resumed).
    step_traces: how many times `train_step` was traced: 1 after any number
      of steps, 0 if no step ran.
  """

  metrics: dict[str, float]
  state: Any
  start_step: int
  step_traces: int


def run(
  config: Any,
  workdir: str | pathlib.Path,
  *,
  init_fn: Callable[[jax.Array], Any],
  train_step: Callable[[Any, Any], tuple[Any, Mapping[str, jax.Array]]],
  batch_fn: Callable[[int], Any],
  eval_fn: Callable[[Any], Mapping[str, float]] | None = None,
) -> Result:
  """Trains from scratch or from the latest checkpoint in `workdir`.

  Args:
    config: an `ml_collections.ConfigDict` with the fields above.
    workdir: the run's directory; created if missing.
    init_fn: `key -> state`, called with `jax.random.key(config.seed)`.
    train_step: `(state, batch) -> (state, metrics)`, pure.
    batch_fn: `step -> batch` of host arrays, pure in `step`.
    eval_fn: `state -> {name: float}`, or `None` for no evaluation.

  Returns:
    A `Result`; `Result.metrics` is what `train_and_evaluate` returns.

  Raises:
    ValueError: if the config lacks a field or holds a bad value, if the
      batch does not split evenly over the devices, if `batch_fn` returns
      the wrong number of rows, or if no checkpoint in `workdir` can be
      restored.
  """
  start_time = time.perf_counter()
  _check_config(config)
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  primary = jax.process_index() == 0
  mesh = parallel.data_mesh()
  parallel.local_rows(config.batch_size, mesh)
  replicated = parallel.replicated(mesh)
  logging.info(
    "Training on %d %s devices over %d processes",
    jax.device_count(),
    jax.devices()[0].device_kind,
    jax.process_count(),
  )

  key = jax.random.key(config.seed)
  target = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
    jax.eval_shape(init_fn, key),
  )
  traces = 0

  def traced_step(state, batch):
    nonlocal traces
    traces += 1
    return train_step(state, batch)

  step_fn = jax.jit(
    traced_step,
    in_shardings=(replicated, parallel.batch_sharding(mesh)),
    out_shardings=replicated,
    donate_argnums=0,
  )

  def put_batch(step):
    return parallel.shard_batch(batch_fn(step), mesh, config.batch_size)

  with contextlib.ExitStack() as stack:
    # Start from the latest readable checkpoint, or from a new state.
    mngr = stack.enter_context(
      checkpoints.manager(
        workdir / "checkpoints", config.get("checkpoints_to_keep", 3)
      )
    )
    restored = checkpoints.restore_latest(mngr, target)
    if restored is None:
      step = 0
      state = jax.jit(init_fn, out_shardings=replicated)(key)
    else:
      step, state = restored
    start_step = saved_step = step
    writer = metrics.Writer(workdir, start_step=step, enabled=primary)
    stack.callback(writer.close)
    progress = _Progress(config.num_steps, step, enabled=primary)
    stack.callback(progress.close)

    def evaluate(state, step):
      scalars = {f"eval/{k}": float(v) for k, v in eval_fn(state).items()}
      writer.write(step, scalars)
      progress.eval(step, scalars)
      return step

    eval_step = None
    if eval_fn is not None and step > 0 and step % config.eval_every == 0:
      # The writer dropped the killed run's evaluation at this step.
      eval_step = evaluate(state, step)

    pending = []
    interval_start = time.perf_counter()
    if step < config.num_steps:
      batch = put_batch(step)
    while step < config.num_steps:
      state, step_metrics = step_fn(state, batch)
      step += 1
      if step < config.num_steps:
        # Built and transferred while the devices run the step above.
        batch = put_batch(step)
      pending.append(step_metrics)
      progress.update()

      if step % config.log_every == 0 or step == config.num_steps:
        scalars = _mean(jax.device_get(pending))
        now = time.perf_counter()
        scalars["steps_per_sec"] = len(pending) / (now - interval_start)
        pending, interval_start = [], now
        scalars = {f"train/{k}": v for k, v in scalars.items()}
        writer.write(step, scalars)
        progress.train(step, scalars)
      if eval_fn is not None and step % config.eval_every == 0:
        eval_step = evaluate(state, step)
      if step % config.checkpoint_every == 0:
        checkpoints.save(mngr, step, state)
        saved_step = step

    if eval_fn is not None and eval_step != step:
      evaluate(state, step)
    if saved_step != step:
      checkpoints.save(mngr, step, state)

  # Package the result.
  final = metrics.final_metrics(writer.history)
  if primary:
    if final:
      plots.learning_curves(writer.history, workdir / CURVES_NAME)
    config_dict = config.to_dict() if hasattr(config, "to_dict") else config
    metrics.write_results(
      workdir,
      metrics=final,
      config=config_dict,
      wall_time_s=time.perf_counter() - start_time,
    )
  return Result(
    metrics=final, state=state, start_step=start_step, step_traces=traces
  )


def apply_gradients(state: Any, tx: optax.GradientTransformation, grads: Any):
  """One optimizer update of a train state, counting the step.

  Args:
    state: a `flax.struct.dataclass` with `step`, `params` and `opt_state`
      (other fields are kept as they are).
    tx: the optimizer.
    grads: gradients shaped like `state.params`.

  Returns:
    The state with updated `params` and `opt_state` and `step + 1`.
  """
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  return state.replace(
    step=state.step + 1,
    params=optax.apply_updates(state.params, updates),
    opt_state=opt_state,
  )


def _check_config(config: Any) -> None:
  """Raises one error that lists every missing or bad loop field."""
  problems = []
  for name in REQUIRED_FIELDS:
    value = config.get(name)
    if name not in config:
      problems.append(f"{name} is missing")
    elif not isinstance(value, int) or (name != "seed" and value < 1):
      problems.append(f"{name}={value!r}")
  if problems:
    raise ValueError(
      "loop.run: the config must hold positive ints "
      f"{', '.join(REQUIRED_FIELDS[:-1])} and an int seed. Got "
      f"{'; '.join(problems)}. Set these fields in the example's config."
    )


def _mean(records: list[Mapping[str, Any]]) -> dict[str, float]:
  """Averages each metric over the records of one log interval."""
  return {
    key: float(np.mean([record[key] for record in records]))
    for key in records[0]
  }


class _Progress:
  """A tqdm bar on a terminal; one absl log line per report otherwise."""

  def __init__(self, total: int, initial: int, *, enabled: bool):
    self._total = total
    self._enabled = enabled
    self._bar = None
    if enabled and sys.stderr.isatty():
      self._bar = tqdm.tqdm(total=total, initial=initial, dynamic_ncols=True)

  def update(self) -> None:
    if self._bar is not None:
      self._bar.update()

  def train(self, step: int, scalars: Mapping[str, float]) -> None:
    if self._bar is not None:
      self._bar.set_postfix_str(_format(scalars), refresh=False)
    elif self._enabled:
      logging.info("step %d/%d: %s", step, self._total, _format(scalars))

  def eval(self, step: int, scalars: Mapping[str, float]) -> None:
    if self._bar is not None:
      self._bar.write(
        f"eval at step {step}: {_format(scalars)}", file=sys.stderr
      )
    elif self._enabled:
      logging.info("eval at step %d: %s", step, _format(scalars))

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()


def _format(scalars: Mapping[str, float]) -> str:
  return ", ".join(f"{key}={value:.4g}" for key, value in scalars.items())
