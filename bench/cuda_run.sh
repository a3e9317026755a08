#!/usr/bin/env bash
# The GPU backends (torch-cuda, torch-cuda-tf32) in one short run on a machine with an NVIDIA GPU
# and a CUDA build of torch, hypothesis and pytest installed (no tox needed):
#
#     OUT=cuda-results bash bench/cuda_run.sh [SECONDS]
#
# Runs, side by side (each job stopped with SIGINT after SECONDS, default 360, so that pytest
# still writes its result file):
#   1. the suite on torch-cuda and on torch-cuda-tf32 with the ci profile (25 examples a property);
#   2. the suite on torch-cuda with the ci profile's example counts and the thorough profile's sizes
#      (LSTM_CONFORMANCE_SIZES=thorough: units to 1024, batch to 256, steps to 512);
#   3. bench/error_at_size.py on both (float32 error as a multiple of the unscaled table);
#   4. bench/cuda_activations.py (the sigmoid and tanh inside nn.LSTM and nn.LSTMCell, CPU and CUDA).
# Everything lands in $OUT/cuda.tar.gz, and a summary in $OUT/summary.txt.
set -u
seconds=${1:-360}
out=${OUT:-cuda-results}
mkdir -p "$out/work/ci" "$out/work/thorough"
work="$out/work"
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 LSTM_CONFORMANCE_STRICT=1
py=${PYTHON:-python3}
{
    date -u
    nvidia-smi -L
    $py -c "import torch, numpy, hypothesis; print('torch', torch.__version__, 'cuDNN', torch.backends.cudnn.version(), 'cuda', torch.version.cuda, 'numpy', numpy.__version__, 'hypothesis', hypothesis.__version__); print('defaults: cudnn.allow_tf32', torch.backends.cudnn.allow_tf32, 'matmul.allow_tf32', torch.backends.cuda.matmul.allow_tf32)"
} > "$work/machine.txt" 2>&1

suite() {  # name backend results-dir [env...]
    local name=$1 backend=$2 dir=$3
    shift 3
    env HYPOTHESIS_PROFILE=ci "$@" timeout -s INT "$seconds" $py -m pytest conformance/suite --backend "$backend" \
        -p no:cacheprovider -q -rfE --results "$dir" > "$work/$name.log" 2>&1
    echo "exit $?" >> "$work/$name.log"
}
suite ci-torch-cuda torch-cuda "$work/ci" &
suite ci-torch-cuda-tf32 torch-cuda-tf32 "$work/ci" &
suite thorough-torch-cuda torch-cuda "$work/thorough" LSTM_CONFORMANCE_SIZES=thorough &
for backend in torch-cuda torch-cuda-tf32; do
    timeout -s INT "$seconds" $py bench/error_at_size.py "$backend" --json "$work/error-$backend.json" \
        > "$work/error-$backend.log" 2>&1 &
done
$py bench/cuda_activations.py > "$work/activations.log" 2>&1
wait
{
    cat "$work/machine.txt"
    for f in "$work"/*.log; do
        echo "== $(basename "$f")"
        grep -E "passed|failed|exit |Error|error|ulp" "$f" | tail -8
    done
} > "$out/summary.txt"
tar -czf "$out/cuda.tar.gz" -C "$out" work
rm -rf "$work"
cat "$out/summary.txt"
