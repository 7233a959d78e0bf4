"""Question 4: the bridge costs nothing at inference, and this shows it.

Two levels, each timed in alternation so that all variants see the same
load:

* the layer: `dabjax.DabBridge.inference` (the hard function alone) against
  the bare hard function and against `dabjax.DabBridge.apply` (the hard
  function plus the bridge forward and its loss, what training runs);
* the sort model: the ``dab`` network at inference (``train=False``, the
  bridge dropped) against the ``ste`` network at inference, which computes
  the same encoder, signum and head; and against the ``dab`` network's
  training forward, which evaluates the bridge.

Besides the time ratios, the FLOPs of the compiled executables are compared:
a FLOP ratio of 1.0 (the ``ste`` forward adds two element-wise operations
per hard-layer feature, ``x + sg(f(x) - x)``, so ``dab`` is a hair lower)
means the bridge is absent from the inference executable. The time ratio is
"within noise" of 1.0 when 1.0 lies between the quartiles of the per-round
ratios.

  python -m benchmarks.inference --out=/tmp/inference.jsonl
"""

import functools
from typing import Any

import jax
from absl import app

import dabjax
from benchmarks import common
from examples.sort import train

# Width of the sort model's hard layer.
WIDTH = 256
MARGIN = 0.5


def _compiled(fn, *args):
  compiled, _ = common.compile_timed(jax.jit(fn), *args)
  return compiled


def _layer_fns(options: common.Options, batch: int) -> dict[str, Any]:
  dtype = common.DTYPES[options.dtype]
  x = jax.random.normal(jax.random.key(2), (batch, WIDTH), dtype)
  signum = functools.partial(dabjax.hard.signum, margin=MARGIN)
  bridged = dabjax.dab_bridge(
    signum, dabjax.DenseBridge(hidden=(128, 128)), gamma=10.0
  )
  params = common.cast(bridged.init(jax.random.key(3), x), dtype)
  return {
    "reference": (_compiled(signum, x), (x,)),
    "inference": (_compiled(bridged.inference, x), (x,)),
    "apply": (_compiled(bridged.apply, params, x), (params, x)),
  }


def _model_fns(options: common.Options, batch: int) -> dict[str, Any]:
  dtype = common.DTYPES[options.dtype]
  x = jax.random.uniform(jax.random.key(4), (batch, 10), dtype)
  fns = {}
  for estimator in ("ste", "dab"):
    net = train.make_model(common.sort_config(estimator, batch))
    params = common.cast(net.init(jax.random.key(5), x)["params"], dtype)

    def infer(params, x, net=net):
      return net.apply({"params": params}, x, train=False)

    fns[estimator] = (_compiled(infer, params, x), (params, x))
    if estimator == "dab":

      def forward(params, x, net=net):
        return net.apply(
          {"params": params}, x, mutable=[dabjax.linen.COLLECTION]
        )

      fns["dab_bridge_forward"] = (_compiled(forward, params, x), (params, x))
  return fns


# (level, variant, baseline, whether the ratio must be within noise of 1).
COMPARISONS = (
  ("layer", "inference", "reference", True),
  ("layer", "apply", "inference", False),
  ("model", "dab", "ste", True),
  ("model", "dab_bridge_forward", "dab", False),
)


def measure(options: common.Options) -> list[dict[str, Any]]:
  """Returns one record per comparison."""
  batch = options.sort_batch
  levels = {
    "layer": _layer_fns(options, batch),
    "model": _model_fns(options, batch),
  }
  times = {}
  for level, fns in levels.items():
    calls = {
      name: functools.partial(compiled, *args)
      for name, (compiled, args) in fns.items()
    }
    times[level] = common.time_interleaved(
      calls, options, rounds=4 * options.repeats
    )

  records = []
  for level, variant, baseline, expect_one in COMPARISONS:
    fns = levels[level]
    flops = common.flops(fns[variant][0])
    baseline_flops = common.flops(fns[baseline][0])
    ratios = common.ratio_stats(
      times[level][variant], times[level][baseline], "time_"
    )
    within = ratios["time_pair_ratio_q1"] <= 1.0 <= ratios["time_pair_ratio_q3"]
    records.append(
      common.record(
        "inference",
        options,
        model="sort" if level == "model" else "signum_layer",
        level=level,
        variant=variant,
        baseline=baseline,
        batch_size=batch,
        flops=flops,
        baseline_flops=baseline_flops,
        **common.summarize(times[level][variant], "call_"),
        **common.summarize(times[level][baseline], "baseline_call_"),
        **ratios,
        flop_ratio=flops / baseline_flops if baseline_flops else None,
        within_noise_of_one=bool(within) if expect_one else None,
      )
    )
  return records


def main(argv):
  del argv
  common.script_main(measure)


if __name__ == "__main__":
  common.define_flags()
  app.run(main)
