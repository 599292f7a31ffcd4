#!/usr/bin/env bash
# kernels/cuda/tools/kernel_resources.sh — registers, shared memory, stack and
# spills of every kernel of kernels/cuda/*.cu, per GPU architecture:
#   sm_61 (Pascal: TITAN Xp, GTX 1080 Ti) and sm_70 (Volta): NVRTC 12.9 (device code
#     only: host code is behind #ifndef __CUDACC_RTC__) then ptxas 12.9, from the
#     PyPI wheels nvidia-cuda-nvrtc-cu12 / nvidia-cuda-nvcc-cu12, installed on
#     demand into $CUDA12_DIR (CUDA 13 cannot target either);
#   sm_75 and sm_90: the nvcc found by the Makefile (-cubin -Xptxas -v).
# Prints a table (and writes OUT/kernel-resources.csv); fails when a kernel does
# not compile or spills registers.
#
#   kernel_resources.sh OUTDIR NVRTC_PTX_TOOL [pascal]
#     pascal: only the NVRTC 12.9 part (make check-pascal)
# Environment: CUDA12_DIR (default ~/.cache/dmzbench/cuda12), NVCC (may be empty).
set -uo pipefail
out=${1:?usage: kernel_resources.sh OUTDIR NVRTC_PTX_TOOL [pascal]}
tool=${2:?usage: kernel_resources.sh OUTDIR NVRTC_PTX_TOOL [pascal]}
only=${3:-}
cd "$(dirname "$0")/../../.."
CUDA12_DIR=${CUDA12_DIR:-$HOME/.cache/dmzbench/cuda12}
NVCC=${NVCC:-}
mkdir -p "$out/resources"
rows="$out/resources/rows.txt"
: >"$rows"
status=0

# ptxas -v output on stdin -> "kernel arch compiler regs smem stack spill_st spill_ld" rows
parse() { # arch compiler
  awk -v arch="$1" -v comp="$2" '
    /Compiling entry function/ { split($0, q, "\047"); fn = q[2]; entry = 1; next }
    /bytes stack frame/ && entry { stack = $1; st = $5; ld = $9 }
    /Used [0-9]+ registers/ && entry {
      regs = $0; sub(/.*Used /, "", regs); sub(/ registers.*/, "", regs)
      smem = 0; if (match($0, /[0-9]+ bytes smem/)) { smem = substr($0, RSTART, RLENGTH); sub(/ .*/, "", smem) }
      print fn, arch, comp, regs, smem, stack, st, ld; entry = 0 }'
}

# ---------------------------------------------------------------- NVRTC + ptxas 12.9
nvrtc_lib="$CUDA12_DIR/nvidia/cuda_nvrtc/lib/libnvrtc.so.12"
ptxas12="$CUDA12_DIR/nvidia/cuda_nvcc/bin/ptxas"
if [ ! -x "$ptxas12" ] || [ ! -e "$nvrtc_lib" ]; then
  echo "kernel-resources: installing NVRTC and ptxas 12.9 (PyPI wheels) into $CUDA12_DIR"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$CUDA12_DIR" \
    "nvidia-cuda-nvrtc-cu12==12.9.*" "nvidia-cuda-nvcc-cu12==12.9.*" >"$out/resources/pip.log" 2>&1 || true
fi
if [ -x "$ptxas12" ] && [ -e "$nvrtc_lib" ]; then
  ptxas_version=$("$ptxas12" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')
  for cu in kernels/cuda/*.cu; do
    name=$(basename "$cu" .cu)
    for arch in 61 70; do
      ptx="$out/resources/$name.compute_$arch.ptx"
      log="$out/resources/$name.sm_$arch.log"
      # -default-device: the host declarations the headers still show are
      # device ones to NVRTC (JIT mode has no host functions); -Dstatic=: the
      # kernels are static (internal linkage) and NVRTC drops unreferenced ones.
      if ! "$tool" "$nvrtc_lib" "$cu" "$ptx" --gpu-architecture=compute_$arch --std=c++17 -lineinfo \
           -I. -Ikernels/cuda/rtc -Ikernels/cuda -default-device -Dstatic= -diag-suppress=177,20044 \
           >"$log" 2>&1; then
        grep -v "Architectures prior to" "$log" >&2
        echo "kernel-resources: $cu does not compile for compute_$arch with NVRTC $ptxas_version" >&2
        status=1
        continue
      fi
      if ! "$ptxas12" -arch=sm_$arch -v "$ptx" -o "$out/resources/$name.sm_$arch.cubin" >>"$log" 2>&1; then
        cat "$log" >&2
        echo "kernel-resources: ptxas $ptxas_version failed on $cu for sm_$arch" >&2
        status=1
        continue
      fi
      parse "sm_$arch" "nvrtc+ptxas-$ptxas_version" <"$log" >>"$rows"
    done
  done
else
  echo "kernel-resources: skipped sm_61/sm_70: NVRTC and ptxas 12.9 are not in $CUDA12_DIR and no package registry answered (see $out/resources/pip.log)"
fi

# ---------------------------------------------------------------- nvcc (13) for sm_75 and sm_90
if [ "$only" != pascal ]; then
  if [ -n "$NVCC" ] && [ -x "$NVCC" ]; then
    nvcc_version=$("$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')
    for cu in kernels/cuda/*.cu; do
      name=$(basename "$cu" .cu)
      for arch in 75 90; do
        log="$out/resources/$name.sm_$arch.log"
        if ! "$NVCC" -cubin -arch=sm_$arch -O3 -std=c++17 -I. -Xptxas -v "$cu" -o "$out/resources/$name.sm_$arch.cubin" \
             >"$log" 2>&1; then
          cat "$log" >&2
          echo "kernel-resources: nvcc $nvcc_version failed on $cu for sm_$arch" >&2
          status=1
          continue
        fi
        parse "sm_$arch" "nvcc-$nvcc_version" <"$log" >>"$rows"
      done
    done
  else
    echo "kernel-resources: skipped sm_75/sm_90: no nvcc (set NVCC or CUDA_HOME)"
  fi
fi

# ---------------------------------------------------------------- the table
if [ ! -s "$rows" ]; then
  echo "kernel-resources: no kernel compiled (nothing to show)"
  exit $status
fi
csv="$out/kernel-resources.csv"
echo "kernel,arch,compiler,registers,smem_bytes,stack_bytes,spill_store_bytes,spill_load_bytes" >"$csv"
printf '# %-28s %-6s %-20s %5s %9s %9s %9s %9s\n' kernel arch compiler regs smem stack spill_st spill_ld
printf '# %-28s %-6s %-20s %5s %9s %9s %9s %9s\n' "" "" "" n bytes bytes bytes bytes
spills=0
# demangled (the kernel's name without its parameters), sorted by kernel and architecture
while read -r fn rest; do echo "$(echo "$fn" | c++filt | sed 's/(.*//') $rest"; done <"$rows" | sort -k1,1 -k2,2 >"$rows.sorted"
while read -r k arch comp regs smem stack st ld; do
  printf '  %-28s %-6s %-20s %5s %9s %9s %9s %9s\n' "$k" "$arch" "$comp" "$regs" "$smem" "$stack" "$st" "$ld"
  echo "$k,$arch,$comp,$regs,$smem,$stack,$st,$ld" >>"$csv"
  if [ "$st" != 0 ] || [ "$ld" != 0 ]; then
    echo "kernel-resources: $k spills registers on $arch ($st bytes stored, $ld loaded)" >&2
    spills=1
  fi
done <"$rows.sorted"
echo "kernel-resources: $(wc -l <"$rows") kernel builds, $([ $spills = 0 ] && echo "no spills" || echo "SPILLS"); table in $csv"
[ $spills = 0 ] || status=1
exit $status
