"""The benchmark suite: every question, one JSON line per configuration.

  python -m benchmarks.run --out=benchmarks/results/cpu.jsonl
  python -m benchmarks.run --platform=gpu --dtype=bfloat16 \\
    --out=benchmarks/results/gpu.jsonl

Runs, in one process so that compiled steps are shared, the scripts
`throughput`, `examples_throughput` (the image examples' models),
`overhead`, `roofline`, `inference`, `scaling` (which starts one worker
process per device count) and `memory`; writes their records to
``--out`` (replacing it), the batch-size PNG beside it, and a Markdown
summary of the tables, ``<stem>_summary.md``, beside it too. ``--quick`` is
a seconds-long run of the same code with tiny batches, for the test.
"""

import pathlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from absl import app, logging

from benchmarks import (
  common,
  examples_throughput,
  inference,
  memory,
  overhead,
  roofline,
  scaling,
  throughput,
)

SCRIPTS = (
  throughput,
  examples_throughput,
  overhead,
  roofline,
  inference,
  scaling,
  memory,
)


def run(options: common.Options) -> list[dict[str, Any]]:
  """Runs every benchmark; writes the records, plot and summary."""
  out = pathlib.Path(options.out)
  common.write_records(out, [], mode="w")
  records = []
  for script in SCRIPTS:
    name = script.__name__.rsplit(".", 1)[1]
    start = time.perf_counter()
    mine = script.measure(options)
    for r in mine:
      common.log_record(r)
    common.write_records(out, mine)
    records += mine
    logging.info(
      "%s: %d records in %.1f s", name, len(mine), time.perf_counter() - start
    )
  summary = out.with_name(f"{out.stem}_summary.md")
  summary.write_text(summary_markdown(records))
  logging.info("Wrote %s, %s and %s", out, scaling.plot_path(options), summary)
  return records


# --- the Markdown summary --------------------------------------------------


def _table(
  header: Sequence[str],
  rows: Sequence[Sequence[Any]],
) -> list[str]:
  lines = ["| " + " | ".join(header) + " |"]
  lines.append("| " + " | ".join("---" for _ in header) + " |")
  lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
  return lines + [""]


def _f(value: Any, spec: str) -> str:
  return "n/a" if value is None else format(value, spec)


def _ms(r: dict[str, Any], prefix: str = "step_") -> str:
  return (
    f"{r[prefix + 'median_s'] * 1e3:.2f} (±{r[prefix + 'spread'] * 50:.0f}%)"
  )


def _yes(value: Any) -> str:
  return {True: "yes", False: "**no**", None: "n/a"}[value]


def _pick(
  records: Sequence[dict[str, Any]], benchmark: str, **match: Any
) -> list[dict[str, Any]]:
  return [
    r
    for r in records
    if r["benchmark"] == benchmark
    and all(r.get(k) == v for k, v in match.items())
  ]


Section = Callable[[Sequence[dict[str, Any]]], list[str]]


_THROUGHPUT_HEAD = (
  "estimator",
  "batch",
  "lower s",
  "compile s",
  "step ms",
  "samples/s",
)


def _throughput_rows(records, benchmark, leading=()):
  """One row per record: ``leading`` fields, then the throughput columns."""
  return [
    tuple(r[key] for key in leading)
    + (
      r["estimator"],
      r["batch_size"],
      _f(r["lower_s"], ".2f"),
      _f(r["compile_s"], ".2f"),
      _ms(r),
      _f(r["samples_per_s"], ",.0f"),
    )
    for r in _pick(records, benchmark)
  ]


def _throughput(records):
  return _table(_THROUGHPUT_HEAD, _throughput_rows(records, "throughput"))


def _examples_throughput(records):
  return _table(
    ("model", *_THROUGHPUT_HEAD),
    _throughput_rows(records, "examples_throughput", ("model",)),
  )


def _examples_overhead(records):
  return _table(
    (
      "model",
      "step",
      "batch",
      "step ms",
      "baseline step ms",
      "time ratio (IQR of pairs)",
      "FLOP ratio",
    ),
    [
      (
        r["model"],
        f"{r['estimator']} / {r['baseline']}",
        r["batch_size"],
        _ms(r),
        _ms(r, "baseline_step_"),
        f"{r['time_ratio']:.2f} ({r['time_pair_ratio_q1']:.2f}–"
        f"{r['time_pair_ratio_q3']:.2f})",
        _f(r["flop_ratio"], ".2f"),
      )
      for r in _pick(records, "examples_overhead")
    ],
  )


def _overhead(records):
  return _table(
    (
      "step",
      "GFLOP",
      "baseline GFLOP",
      "FLOP ratio",
      "time ratio (IQR of pairs)",
      "time / FLOP ratio",
      "target ≤ 1.1",
    ),
    [
      (
        f"{r['estimator']} / {r['baseline']}",
        _f(r["flops"] / 1e9, ".3f"),
        _f(r["baseline_flops"] / 1e9, ".3f"),
        _f(r["flop_ratio"], ".2f"),
        f"{r['time_ratio']:.2f} ({r['time_pair_ratio_q1']:.2f}–"
        f"{r['time_pair_ratio_q3']:.2f})",
        _f(r["time_over_flop_ratio"], ".2f"),
        _yes(r["meets_target"]),
      )
      for r in _pick(records, "overhead")
    ],
  )


def _roofline(records):
  [peak] = _pick(records, "roofline", model="matmul") or [None]
  lines = []
  if peak:
    lines += [
      f"Matmul peak: {peak['size']}² {peak['dtype']} matmul, "
      f"{peak['peak_flops_per_s'] / 1e9:.1f} GFLOP/s (before the steps "
      f"{peak['before_flops_per_s'] / 1e9:.1f}, after "
      f"{peak['flops_per_s'] / 1e9:.1f}).",
      "",
    ]
  return lines + _table(
    (
      "estimator",
      "batch",
      "GFLOP / step",
      "step ms",
      "GFLOP/s",
      "fraction of peak",
      "target ≥ 60%",
    ),
    [
      (
        r["estimator"],
        r["batch_size"],
        _f(r["flops"] / 1e9, ".3f"),
        _ms(r),
        _f(r["flops_per_s"] / 1e9, ".1f"),
        f"{r['fraction_of_peak']:.0%}",
        _yes(r["meets_target"]),
      )
      for r in _pick(records, "roofline", model="sort")
    ],
  )


def _inference(records):
  return _table(
    (
      "level",
      "variant / baseline",
      "µs / call",
      "time ratio (IQR of pairs)",
      "FLOPs",
      "FLOP ratio",
      "1.0 within noise",
    ),
    [
      (
        r["level"],
        f"{r['variant']} / {r['baseline']}",
        f"{r['call_median_s'] * 1e6:.0f} / "
        f"{r['baseline_call_median_s'] * 1e6:.0f}",
        f"{r['time_ratio']:.3f} ({r['time_pair_ratio_q1']:.3f}–"
        f"{r['time_pair_ratio_q3']:.3f})",
        f"{_f(r['flops'], '.3g')} / {_f(r['baseline_flops'], '.3g')}",
        _f(r["flop_ratio"], ".3f"),
        _yes(r["within_noise_of_one"]),
      )
      for r in _pick(records, "inference")
    ],
  )


def _devices(records):
  return _table(
    (
      "devices",
      "estimator",
      "batch",
      "step ms",
      "samples/s",
      "vs 1 device",
      "first loss matches",
    ),
    [
      (
        r["devices"],
        r["estimator"],
        r["batch_size"],
        _ms(r),
        _f(r["samples_per_s"], ",.0f"),
        _f(r.get("samples_per_s_vs_1_device"), ".2f"),
        _yes(r.get("loss_matches_1_device")),
      )
      for r in _pick(records, "scaling_devices")
    ],
  )


def _batches(records):
  sweep = _pick(records, "scaling_batch")
  estimators = list(dict.fromkeys(r["estimator"] for r in sweep))
  batches = sorted({r["batch_size"] for r in sweep})
  rate = {(r["estimator"], r["batch_size"]): r["samples_per_s"] for r in sweep}
  return _table(
    ("batch", *(f"{e} samples/s" for e in estimators)),
    [(b, *(_f(rate.get((e, b)), ",.0f") for e in estimators)) for b in batches],
  )


def _memory(records):
  mib = 2.0**20
  return _table(
    (
      "estimator",
      "batch",
      "arguments MiB",
      "temporaries MiB",
      "peak MiB",
      "peak / ste",
    ),
    [
      (
        r["estimator"],
        r["batch_size"],
        f"{r['argument_bytes'] / mib:.2f}",
        f"{r['temp_bytes'] / mib:.2f}",
        f"{r['peak_bytes'] / mib:.2f}",
        f"{r['peak_over_ste']:.2f}",
      )
      for r in _pick(records, "memory")
    ],
  )


SECTIONS: tuple[tuple[str, Section], ...] = (
  ("Throughput (question 1)", _throughput),
  ("Image examples: throughput (question 1)", _examples_throughput),
  ("Image examples: dab against its baseline (question 1)", _examples_overhead),
  ("Bridge overhead: time ratio against FLOP ratio (question 2)", _overhead),
  ("Fraction of the measured matmul peak (question 3)", _roofline),
  ("Inference with and without the bridge (question 4)", _inference),
  ("Scaling over devices (question 5)", _devices),
  ("Batch-size sweep (question 5)", _batches),
  ("Memory from the compiled executable (question 6)", _memory),
)


def summary_markdown(records: Sequence[dict[str, Any]]) -> str:
  """Returns the Markdown tables of a run's records."""
  first = records[0]
  lines = [
    f"Run of {first['date']}: {first['device_kind']} ({first['platform']}, "
    f"host {first['host_cpu']}, {first['host_cores']} cores), "
    f"dtype {first['dtype']}, jax {first['jax_version']}, load average "
    f"{min(r['load_1min'] for r in records):.1f}–"
    f"{max(r['load_1min'] for r in records):.1f} during the run"
    + (", quick mode" if first["quick"] else "")
    + ". Step times: median over the timed calls (± half the interquartile "
    "range, as a percentage of the median).",
    "",
  ]
  for title, section in SECTIONS:
    lines += [f"### {title}", ""] + section(records)
  return "\n".join(lines)


def main(argv):
  del argv
  options = common.options_from_flags()
  common.setup_platform(options)
  start = time.perf_counter()
  records = run(options)
  logging.info(
    "%d records in %.0f s, written to %s",
    len(records),
    time.perf_counter() - start,
    options.out,
  )


if __name__ == "__main__":
  common.define_flags()
  app.run(main)
