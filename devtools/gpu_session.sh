#!/bin/bash
# Everything only a GPU shows, in one run (`make test-gpu`; on a lent GPU machine one call: CuPy and torch are
# there, our pure-Python needs travel as wheels in .whl/, see benchmarks/README.md "On a GPU machine"). Logs land
# in $OUT (one file per step, at most 8); the end of each is printed. Timing steps run alone; the test suite
# and the real programs run side by side after them; timeouts keep the whole under about 7 minutes. Exit
# status 1 when a check failed (tests, programs, gpu_check, ncu), naming them; the benchmarks only report.
#
#     bash devtools/gpu_session.sh [steps...]    (default: env overhead training tests programs check ncu)
#     steps also: traces (devtools/gpu_traces.py: torch's and our GPU traces of the same steps, as traces.tar.gz)
set -u
OUT=${OUT:-/tmp/gpu-session}
PY=${PYTHON:-python3}           # the interpreter that has CuPy (make test-gpu passes its PYTHON)
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if ls .whl/*.whl > /dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
STEPS=${*:-env overhead training tests programs check ncu}

FAILED=""
run() {   # run NAME TIMEOUT CMD...: log to $OUT/NAME.log, print its tail
    local name=$1 t=$2
    shift 2
    local t0=$SECONDS rc
    timeout "$t" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    echo "rc=$rc in $((SECONDS - t0)) s" >> "$OUT/$name.log"
    # (ncu_nvtx_check's status 2: no ncu on this machine, said in its log, not a failure)
    if [ $rc -ne 0 ] && ! { [ "$name" = ncu ] && [ $rc -eq 2 ]; }; then FAILED="$FAILED $name"; fi
    echo "=== $name: $*"
    tail -n "${TAIL:-30}" "$OUT/$name.log"
}

has() { [[ " $STEPS " == *" $1 "* ]]; }

if has env; then
    run env 60 env PY="$PY" bash -c 'nvidia-smi -L; nvidia-smi --query-gpu=driver_version,clocks.sm,clocks.mem,temperature.gpu \
        --format=csv; "$PY" -c "import sys, numpy, cupy, torch; print(sys.version.split()[0], \"numpy\",
        numpy.__version__, \"cupy\", cupy.__version__, \"torch\", torch.__version__, \"cuda runtime\",
        cupy.cuda.runtime.runtimeGetVersion(), \"driver\", cupy.cuda.runtime.driverGetVersion())";
        "$PY" -c "import orjson, msgspec, textual, nvtx; print(\"carried wheels import\")";
        "$PY" -c "import cupti; print(\"cupti-python\", cupti.__version__ if hasattr(cupti, \"__version__\") else \"?\")";
        "$PY" -c "import tensorlib as tl; print(\"tensorlib sees\", tl.cuda.device_count(), \"GPU(s):\",
        tl.cuda.get_device_name(0))"'
fi
has overhead && TAIL=45 run overhead 60 "$PY" benchmarks/gpu_overhead.py --n 5000 --profile
# the timed table, then where tensorlib's small step goes (cProfile, after the timing)
has training && TAIL=70 run training 100 env PY="$PY" bash -c '"$PY" benchmarks/training_step.py --device cuda --steps 20 &&
    "$PY" benchmarks/training_step.py --device cuda --steps 20 --configs small --profile | grep -v "^ *$"'

if has tests || has programs; then
    # side by side: 16 cores; CuPy's kernel cache on disk is shared and written atomically
    if has tests; then
        timeout 180 "$PY" -m pytest -q -p no:cacheprovider -m cuda -n 6 --timeout 90 \
            --continue-on-collection-errors -rfEs tests > "$OUT/tests.log" 2>&1 &
        tests_pid=$!
    fi
    if has programs; then
        timeout 180 "$PY" devtools/gpu_programs.py --steps 4 --jobs 8 --timeout 160 \
            --log "$OUT/programs_errors.log" > "$OUT/programs.log" 2>&1 &
        programs_pid=$!
    fi
    collect() {   # collect NAME PID: wait for a step run in the background, note its status
        wait "$2"
        local rc=$?
        echo "rc=$rc" >> "$OUT/$1.log"
        if [ $rc -ne 0 ]; then FAILED="$FAILED $1"; fi
        echo "=== $1"
    }
    if has tests; then
        collect tests $tests_pid
        grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -n 60
        grep "^SKIPPED" "$OUT/tests.log" | cut -c1-150
    fi
    if has programs; then
        collect programs $programs_pid
        tail -n 30 "$OUT/programs.log"
    fi
fi
has check && TAIL=40 run check 110 "$PY" devtools/gpu_check.py
has traces && run traces 150 "$PY" devtools/gpu_traces.py --out "$OUT/traces.tar.gz"
# Nsight Compute: on PATH, or where the CUDA image keeps it
command -v ncu > /dev/null || export NCU=${NCU:-$(ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -n 1)}
has ncu && TAIL=15 run ncu 40 "$PY" devtools/ncu_nvtx_check.py
# the benchmarks report figures against targets; a missed target is not a failure of the run
FAILED=$(for f in $FAILED; do case $f in overhead|training) ;; *) echo -n " $f";; esac; done)
if [ -n "$FAILED" ]; then
    echo "gpu_session: failed:$FAILED (logs in $OUT)"
    exit 1
fi
echo "gpu_session: every check passed (logs in $OUT)"
