#!/usr/bin/env bash
# tests/gpu_bundle.sh — make gpu-bundle: a self-contained folder (and its .tar.xz, under 64 MiB)
# that validates dmzbench on a GPU machine that has an NVIDIA driver and
# nothing else (no package registry, no toolkit):
#   bin/     dmzbench, bin/test_cuda_gpu and bin/test_cuda_step_gpu (the nvcc build)
#            and bin/bench_kernels (make bench-kernels); the cublas/cudnn backends
#            and the bench's cuBLAS/cuDNN columns load NVIDIA's libraries at run
#            time, which the bundle does not carry (over 64 MiB): where the GPU
#            machine has them they run, else they skip saying which is missing
#   lib/     every shared library they load except the C library's own and the
#            driver's (libcuda): the CUDA runtime, libstdc++, libgomp, curl, ...
#   data/    a data set (the cache's EMNIST CSVs or IDX files when present, else
#            Debian's Fashion-MNIST)
#   peers/   bench/peers/pytorch_peer.py (run where the GPU machine has PyTorch)
#   run.sh   tests/gpu_check.sh: one call, one verdict file
#   VERSION  git revision, toolkit, GPU architectures, build host
#
#   gpu_bundle.sh BUILD OUTDIR NVCC_VERSION CUDA_ARCH
set -euo pipefail
build=${1:?usage: gpu_bundle.sh BUILD OUTDIR NVCC_VERSION CUDA_ARCH}
out=${2:?usage}
nvcc_version=${3:-?}
archs=${4:-?}
cd "$(dirname "$0")/.."
if [ ! -x "$build/tests/test_cuda_gpu" ]; then
  echo "gpu-bundle: $build/tests/test_cuda_gpu is missing: the bundle needs the nvcc build (nvcc and libcudart found; see make config)" >&2
  exit 1
fi
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/data"
cp "$build/dmzbench" "$build/tests/test_cuda_gpu" "$out/bin/"
if [ -x "$build/tests/bench_kernels" ]; then cp "$build/tests/bench_kernels" "$out/bin/"; fi
if [ -x "$build/tests/test_cuda_step_gpu" ]; then cp "$build/tests/test_cuda_step_gpu" "$out/bin/"; fi

# Shared libraries: what ldd resolves, less glibc's core and the driver.
for b in "$out"/bin/*; do ldd "$b"; done | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u |
while read -r lib; do
  case $(basename "$lib") in
    libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so* | libresolv.so* | ld-linux*) continue ;;
    libcuda.so* | libnvidia-*) continue ;;
  esac
  cp -L "$lib" "$out/lib/"
done

# Data: EMNIST from the cache if it is there, else Fashion-MNIST (Debian's package).
cache=${DMZBENCH_DATA_DIR:-datasets/cache}
emnist=
for d in "$cache"/emnist*/; do # a directory that holds the data, not one a failed fetch left empty
  if [ -d "$d" ] && ls "$d" | grep -Eq '\.(csv|gz)$|-ubyte$'; then emnist=${d%/}; break; fi
done
if [ -n "$emnist" ]; then
  cp -r "$emnist" "$out/data/"
elif [ -d /usr/share/datasets/fashion-mnist ]; then
  cp -r /usr/share/datasets/fashion-mnist "$out/data/"
else
  echo "gpu-bundle: no data set: neither $cache/emnist* nor /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist)" >&2
  exit 1
fi

mkdir -p "$out/peers"
cp bench/peers/pytorch_peer.py "$out/peers/"
cp tests/gpu_check.sh "$out/run.sh"
chmod +x "$out/run.sh"
echo "dmzbench $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown), nvcc $nvcc_version, sm_$(echo $archs | sed 's/ / sm_/g'), built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)" >"$out/VERSION"

# The folder (87 MiB with five GPU architectures) travels as one xz archive, which
# must fit the 64 MiB a GPU lender carries.
archive="$out.tar.xz"
tar -C "$(dirname "$out")" -cf - "$(basename "$out")" | xz -T0 -6 >"$archive.tmp"
mv "$archive.tmp" "$archive"
bytes=$(stat -c %s "$archive")
limit=$((64 * 1024 * 1024))
echo "gpu-bundle: $out: $(($(du -sb "$out" | cut -f1) / 1024 / 1024)) MiB ($(ls "$out/lib" | wc -l) libraries, data $(ls "$out/data")), $archive: $((bytes / 1024 / 1024)) MiB"
echo "gpu-bundle: run it there as: tar xJf $(basename "$archive") && $(basename "$out")/run.sh"
if [ "$bytes" -ge "$limit" ]; then
  echo "gpu-bundle: $archive: $bytes bytes is over the 64 MiB limit" >&2
  exit 1
fi
