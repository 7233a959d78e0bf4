"""Scalar metrics as JSON lines and TensorBoard events, and the results file.

A record is one line of `metrics.jsonl`: `{"step": 100, "train/loss": 0.5}`.
Train and eval scalars go in separate records, and each key is also a
TensorBoard tag. When a run resumes from the checkpoint of step `k`, records
that the killed run wrote after step `k` are dropped, so the history reads as
if the run had never stopped.
"""

import importlib.metadata
import json
import os
import pathlib
import platform
import time
from collections.abc import Mapping
from typing import Any

import jax
from absl import logging
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer import event_file_writer

JSONL_NAME = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
RESULTS_NAME = "results.json"


def read_jsonl(path: str | pathlib.Path) -> list[dict[str, Any]]:
  """Reads the records of a JSON-lines file, skipping unreadable lines.

  A run killed while writing leaves at most a truncated last line; it is
  skipped with a warning.

  Args:
    path: the file; a missing file has no records.

  Returns:
    The records in file order.
  """
  path = pathlib.Path(path)
  if not path.exists():
    return []
  records = []
  for number, line in enumerate(path.read_text().splitlines(), start=1):
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError:
      logging.warning("Skipping unreadable line %d of %s", number, path)
  return records


class Writer:
  """Writes scalar records to `metrics.jsonl` and TensorBoard event files.

  Only the writer of the first process touches the files; every writer keeps
  the records in `history`.

  Args:
    workdir: the run's directory.
    start_step: the step the run starts from: 0, or the restored checkpoint's
      step. Records after it are dropped, and so are eval records at it.
    enabled: whether this writer touches the files (process 0 only).
  """

  def __init__(
    self,
    workdir: str | pathlib.Path,
    *,
    start_step: int = 0,
    enabled: bool = True,
  ):
    self._path = pathlib.Path(workdir) / JSONL_NAME
    self._events = None
    self.history: list[dict[str, Any]] = []
    if not enabled:
      return

    self.history = [
      record
      for record in read_jsonl(self._path)
      if record["step"] < start_step
      or (record["step"] == start_step and not _is_eval(record))
    ]
    self._path.parent.mkdir(parents=True, exist_ok=True)
    temporary = self._path.with_suffix(".tmp")
    temporary.write_text("".join(json.dumps(r) + "\n" for r in self.history))
    os.replace(temporary, self._path)

    self._events = event_file_writer.EventFileWriter(
      str(pathlib.Path(workdir) / TENSORBOARD_DIR)
    )
    if start_step > 0:
      # TensorBoard drops the events at and after a START event's step.
      self._events.add_event(
        event_pb2.Event(
          wall_time=time.time(),
          step=start_step,
          session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START),
        )
      )
      for record in self.history:
        if record["step"] == start_step:
          self._add_scalars(record)
      self._events.flush()

  def write(self, step: int, scalars: Mapping[str, float]) -> None:
    """Appends one record and flushes both files.

    Args:
      step: the number of train steps done.
      scalars: metric name (`"train/loss"`) to value.
    """
    record = {"step": int(step), **{k: float(v) for k, v in scalars.items()}}
    self.history.append(record)
    if self._events is None:
      return
    with self._path.open("a") as stream:
      stream.write(json.dumps(record) + "\n")
    self._add_scalars(record)
    self._events.flush()

  def close(self) -> None:
    """Flushes and closes the TensorBoard event file."""
    if self._events is not None:
      self._events.close()

  def _add_scalars(self, record: Mapping[str, Any]) -> None:
    values = [
      summary_pb2.Summary.Value(tag=key, simple_value=value)
      for key, value in record.items()
      if key != "step"
    ]
    self._events.add_event(
      event_pb2.Event(
        wall_time=time.time(),
        step=record["step"],
        summary=summary_pb2.Summary(value=values),
      )
    )


def _is_eval(record: Mapping[str, Any]) -> bool:
  return any(key.startswith("eval/") for key in record)


def final_metrics(history: list[Mapping[str, Any]]) -> dict[str, float]:
  """Returns the last value of every metric in a history.

  >>> final_metrics([{"step": 1, "train/loss": 2.0}, {"step": 2,
  ...                "train/loss": 1.0}, {"step": 2, "eval/loss": 1.5}])
  {'train/loss': 1.0, 'eval/loss': 1.5}

  Args:
    history: records in step order.

  Returns:
    Metric name to its latest value.
  """
  final = {}
  for record in history:
    final.update({k: float(v) for k, v in record.items() if k != "step"})
  return final


def write_results(
  workdir: str | pathlib.Path,
  *,
  metrics: Mapping[str, float],
  config: Mapping[str, Any],
  wall_time_s: float,
) -> dict[str, Any]:
  """Writes `results.json`: final metrics, config, versions and devices.

  Args:
    workdir: the run's directory.
    metrics: the final metrics.
    config: the run's config as a dict.
    wall_time_s: the wall time of this invocation, in seconds.

  Returns:
    The dict written.
  """
  results = {
    "metrics": dict(metrics),
    "config": dict(config),
    "versions": {
      "python": platform.python_version(),
      **{name: _version(name) for name in ("jax", "jaxlib", "flax", "optax")},
    },
    "devices": {
      "kind": jax.devices()[0].device_kind,
      "count": jax.device_count(),
      "processes": jax.process_count(),
    },
    "wall_time_s": wall_time_s,
  }
  path = pathlib.Path(workdir) / RESULTS_NAME
  path.write_text(json.dumps(results, indent=2, default=str) + "\n")
  return results


def _version(name: str) -> str | None:
  try:
    return importlib.metadata.version(name)
  except importlib.metadata.PackageNotFoundError:
    return None
