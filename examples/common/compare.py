"""Comparison driver: every estimator, the same budget, several seeds.

Each example's ``compare.py`` names its variants (config overrides) and the
metrics to report; `run_grid` trains each variant for each seed in its own
workdir, and `summarize` turns the final metrics into a table of mean ± std
with a candidate's relative change against a baseline.
"""

import json
import math
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ml_collections
import numpy as np
from absl import logging
from matplotlib.backends import backend_agg
from matplotlib.figure import Figure

from examples.common import metrics as metrics_lib


def run_grid(
  train_and_evaluate: Callable[[Any, pathlib.Path], Mapping[str, float]],
  config: ml_collections.ConfigDict,
  variants: Mapping[str, Mapping[str, Any]],
  seeds: Sequence[int],
  workdir: str | pathlib.Path,
) -> dict[str, list[dict[str, float]]]:
  """Trains every variant with every seed, each in ``workdir/<name>/<seed>``.

  A variant whose run already finished (its workdir resumes to the end) is
  not trained again, so a killed comparison picks up where it stopped.

  Args:
    train_and_evaluate: the example's entry point.
    config: the shared config.
    variants: name to the config fields it overrides.
    seeds: the seeds to run.
    workdir: the comparison's directory.

  Returns:
    Name to the final metrics of each seed, in seed order.
  """
  results = {}
  for name, overrides in variants.items():
    results[name] = []
    for seed in seeds:
      run_config = ml_collections.ConfigDict(config.to_dict())
      run_config.update(dict(overrides), seed=seed)
      run_dir = pathlib.Path(workdir) / name / str(seed)
      logging.info("Comparison: %s, seed %d, in %s", name, seed, run_dir)
      results[name].append(dict(train_and_evaluate(run_config, run_dir)))
  return results


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
  return float(np.mean(values)), float(
    np.std(values, ddof=1 if len(values) > 1 else 0)
  )


def summarize(
  results: Mapping[str, Sequence[Mapping[str, float]]],
  metrics: Mapping[str, str],
  *,
  candidate: str,
  baseline: str,
) -> tuple[str, dict[str, Any]]:
  """A markdown table and its JSON form: mean ± std per variant and metric.

  The relative change of ``candidate`` against ``baseline`` is
  ``(candidate - baseline) / |baseline|`` of the means, for every metric;
  whether higher or lower is better is stated by each metric's label.

  Args:
    results: what `run_grid` returned.
    metrics: metric key (e.g. ``"eval/accuracy"``) to its column label.
    candidate: the variant whose change is reported (usually DAB).
    baseline: the variant it is compared against.

  Returns:
    ``(markdown, table)``.

  Raises:
    KeyError: if ``candidate`` or ``baseline`` is not among the results.
  """
  for name in (candidate, baseline):
    if name not in results:
      raise KeyError(
        f"compare.summarize: {name!r} is not among the variants "
        f"{sorted(results)}. Name variants that were run."
      )
  table: dict[str, Any] = {"variants": {}, "relative_change": {}}
  header = "| variant | seeds | " + " | ".join(metrics.values()) + " |"
  lines = [header, "|" + " --- |" * (len(metrics) + 2)]
  for name, runs in results.items():
    row = {}
    for key in metrics:
      mean, std = _mean_std([run[key] for run in runs])
      row[key] = {"mean": mean, "std": std, "values": [r[key] for r in runs]}
    table["variants"][name] = row
    cells = " | ".join(
      f"{row[k]['mean']:.4g} ± {row[k]['std']:.2g}" for k in metrics
    )
    lines.append(f"| {name} | {len(runs)} | {cells} |")
  changes = []
  for key, label in metrics.items():
    base = table["variants"][baseline][key]["mean"]
    cand = table["variants"][candidate][key]["mean"]
    change = (cand - base) / abs(base) if base else math.nan
    table["relative_change"][key] = change
    changes.append(f"{label}: {change:+.1%}")
  lines.append("")
  lines.append(
    f"Relative change of {candidate} against {baseline}: "
    + "; ".join(changes)
    + "."
  )
  return "\n".join(lines) + "\n", table


def write_summary(
  workdir: str | pathlib.Path, markdown: str, table: Mapping[str, Any]
) -> None:
  """Writes ``comparison.md`` and ``comparison.json`` under ``workdir``."""
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / "comparison.md").write_text(markdown)
  (workdir / "comparison.json").write_text(json.dumps(table, indent=2) + "\n")


def overlay_curves(
  workdir: str | pathlib.Path,
  variants: Sequence[str],
  keys: Sequence[str],
  path: str | pathlib.Path,
) -> None:
  """One panel per metric key, one line per variant (seeds averaged).

  Args:
    workdir: the comparison's directory, as given to `run_grid`.
    variants: the variant names to draw.
    keys: metric keys from ``metrics.jsonl``, e.g. ``"eval/accuracy"``.
    path: the PNG to write.
  """
  figure = Figure(figsize=(5 * len(keys), 3.5), layout="constrained")
  backend_agg.FigureCanvasAgg(figure)
  for index, key in enumerate(keys):
    axes = figure.add_subplot(1, len(keys), index + 1)
    for name in variants:
      per_seed = []
      for run_dir in sorted((pathlib.Path(workdir) / name).iterdir()):
        history = metrics_lib.read_jsonl(run_dir / metrics_lib.JSONL_NAME)
        per_seed.append({r["step"]: r[key] for r in history if key in r})
      steps = sorted(set.intersection(*(set(s) for s in per_seed)))
      mean = [np.mean([s[step] for s in per_seed]) for step in steps]
      axes.plot(steps, mean, label=name)
    axes.set_title(key)
    axes.set_xlabel("step")
    axes.grid(alpha=0.3)
    axes.legend()
  figure.savefig(path, dpi=100)
