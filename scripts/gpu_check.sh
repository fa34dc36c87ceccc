#!/usr/bin/env bash
# The device checks in one short run on a GPU machine (the workplace's device tool):
# the CUDA-parametrised tests, then the GPU benchmark (GPU vs one CPU core, float64 and
# float32, end to end with default settings). About 6 minutes on an H200.
#
#   here:   bash scripts/gpu_wheels.sh        # pure-Python wheels the GPU image lacks
#   device: run(command="bash scripts/gpu_check.sh", carry=[".whl"], timeout_s=600)
#   here:   copy bench_gpu.json from the returned files to benchmarks/results/ and run
#           python benchmarks/run_all.py --render-only   # docs/benchmarks.md
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
nvidia-smi -L | tee "$OUT/gpu.txt"
python3 -c "import torch, causal_mixtures; print(torch.__version__, torch.cuda.is_available())"
timeout 200 python3 -m pytest -q -p no:cacheprovider -p no:warnings -k cuda \
    tests/test_em.py tests/test_svi.py tests/test_density.py tests/test_representation.py \
    2>&1 | tee "$OUT/cuda_tests.log"
timeout 360 python3 benchmarks/bench_gpu.py --out "$OUT/bench_gpu.json" --no-docs \
    2>&1 | tee "$OUT/bench_gpu.log"
