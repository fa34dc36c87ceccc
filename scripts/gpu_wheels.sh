#!/usr/bin/env bash
# Download the pure-Python wheels that the GPU machine's image lacks into .whl/ (ignored by
# git), for scripts/gpu_check.sh. Run here, where pip can reach an index; the GPU machine
# cannot. Versions: those of this checkout's .venv when there is one, else these pins.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
pins=(pyro-ppl==1.9.2 pyro-api==0.1.2 arviz==0.23.4 xarray-einstats==0.9.1 h5netcdf==1.8.2)
rm -rf .whl && mkdir -p .whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation py --platform any -d .whl "${pins[@]}"
ls .whl
