#!/usr/bin/env bash
# Runs the benchmark suite on a CUDA GPU machine, in bfloat16 and float32.
#
#   bash benchmarks/gpu.sh            # from the repository root
#
# Needs a CUDA build of jaxlib: this script installs the repository with
# jax[cuda12] into .venv-gpu when that environment does not exist yet. The
# records go to benchmarks/results/gpu_<dtype>.jsonl, with the batch-size
# PNG and the Markdown summary beside them; add the summaries to
# benchmarks/README.md next to the CPU tables.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-gpu}

if [[ ! -x "${VENV}/bin/python" ]]; then
  python3 -m venv "${VENV}"
  "${VENV}/bin/pip" install --quiet --upgrade pip
  "${VENV}/bin/pip" install --quiet -e '.[test]' 'jax[cuda12]'
fi

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
"${VENV}/bin/python" -c 'import jax; print(jax.__version__, jax.devices())'

for dtype in bfloat16 float32; do
  "${VENV}/bin/python" -m benchmarks.run --platform=gpu --dtype="${dtype}" \
    --out="benchmarks/results/gpu_${dtype}.jsonl"
done
