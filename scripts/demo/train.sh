#!/usr/bin/env bash
# Reproduces models/demo: exports builtin:demo-train as token ids, then trains the demo GPT-J on
# one CPU core for about 45 minutes (see models/demo/README.md). Installs nothing. Needs:
#   npm dependencies (npm install), and Debian's  apt-get install python3-torch python3-numpy
# Debian's torch uses the reference BLAS unless an optimized one is installed; with
#   apt-get install libopenblas0-pthread
# training is ~7x faster (the recorded run used it). Extra arguments go to train.py,
# e.g. --steps 640 to repeat the recorded run's schedule exactly.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA="${DEMO_DATA:-/tmp/logitscope-demo}"
npx tsx scripts/demo/export-corpus.ts "$DATA"
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 scripts/demo/train.py --data "$DATA" "$@"
