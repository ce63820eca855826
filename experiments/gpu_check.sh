#!/usr/bin/env bash
# The device check: on a lent GPU, in at most about 8 minutes, the CUDA tests and then the
# benchmark suite at paper scale (robustnas bench suite), figures written as they come.
#
#   experiments/gpu_check.sh                      # on the GPU: tests (~2 min), suite (~6 min)
#   experiments/gpu_check.sh --device cpu --quick # the same path on a CPU, tiny sizes
#   experiments/gpu_check.sh --out DIR --budget SECONDS
#
# Leaves in --out (default runs/gpu_check): cuda_tests.txt (pytest -m cuda), results.jsonl
# (one JSON line per benchmark job, each with its command and environment), results.md
# (the tables), and prints the line that updates experiments/BENCHMARKS.md's CUDA section.
# A run cut short keeps everything measured so far.
set -uo pipefail
cd "$(dirname "$0")/.."
device=cuda quick="" out=runs/gpu_check budget=480
while [ $# -gt 0 ]; do
    case "$1" in
        --device) device=$2; shift 2 ;;
        --quick) quick=--quick; shift ;;
        --out) out=$2; shift 2 ;;
        --budget) budget=$2; shift 2 ;;
        *) echo "gpu_check.sh: unknown option $1 (--device D --quick --out DIR --budget S)" >&2
           exit 2 ;;
    esac
done
mkdir -p "$out"
start=$(date +%s)
{
    echo "# device check $(date -u +%FT%TZ)"
    python -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
"gpus", torch.cuda.device_count(), *(torch.cuda.get_device_name(i)
for i in range(torch.cuda.device_count())))'
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
} | tee "$out/environment.txt"

# 1. The CUDA tests: a quarter of the budget. On a CPU (--device cpu) they run on the CPU,
#    which checks the tests themselves.
test_limit=$((budget / 4))
[ "$device" = cpu ] && export ROBUSTNAS_DEVICE_TESTS_ON_CPU=1
timeout "$test_limit" python -m pytest -m cuda -q -p no:cacheprovider tests/test_device.py \
    2>&1 | tee "$out/cuda_tests.txt"
tests_status=${PIPESTATUS[0]}
[ "$tests_status" = 124 ] && echo "cuda tests: stopped at their ${test_limit} s limit" \
    | tee -a "$out/cuda_tests.txt"

# 2. The benchmarks with what is left of the budget (each job its own process and limit).
left=$((budget - ($(date +%s) - start)))
[ "$left" -lt 30 ] && left=30
python -m robustnas bench suite --device "$device" --out "$out" --budget "$left" $quick
suite_status=$?
echo "device check done in $(( $(date +%s) - start )) s: tests exit $tests_status, suite exit $suite_status; files in $out"
[ "$tests_status" = 0 ] && [ "$suite_status" = 0 ]
