"""Learning curves as a PNG, drawn with Matplotlib's Agg renderer."""

import math
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.backends import backend_agg
from matplotlib.figure import Figure


def learning_curves(
  history: Sequence[Mapping[str, Any]], path: str | pathlib.Path
) -> list[str]:
  """Draws one panel per metric, with a line for each split that logs it.

  Keys are `"<split>/<metric>"` (`"train/loss"`, `"eval/loss"`); the two
  share the `loss` panel. A key without a slash is its own panel.

  Args:
    history: records like `{"step": 100, "train/loss": 0.5}`.
    path: the PNG to write.

  Returns:
    The metric names, one per panel, in panel order.

  Raises:
    ValueError: if `history` holds no metric.
  """
  curves: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
  for record in history:
    for key, value in record.items():
      if key == "step":
        continue
      split, _, metric = key.rpartition("/")
      steps, values = curves.setdefault(metric, {}).setdefault(
        split or metric, ([], [])
      )
      steps.append(record["step"])
      values.append(value)
  if not curves:
    raise ValueError(
      "plots.learning_curves: the history must hold at least one metric. "
      f"Got {len(history)} records without metrics. Log a metric first."
    )

  columns = min(3, len(curves))
  rows = math.ceil(len(curves) / columns)
  figure = Figure(figsize=(4 * columns, 3 * rows), layout="constrained")
  backend_agg.FigureCanvasAgg(figure)
  for index, (metric, splits) in enumerate(curves.items()):
    axes = figure.add_subplot(rows, columns, index + 1)
    for split, (steps, values) in splits.items():
      axes.plot(
        steps, values, marker="." if len(steps) < 30 else None, label=split
      )
    axes.set_title(metric)
    axes.set_xlabel("step")
    axes.grid(alpha=0.3)
    axes.legend()
  pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
  figure.savefig(path, dpi=100)
  return list(curves)
