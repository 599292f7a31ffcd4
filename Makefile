# dmzbench — build, dependencies, tests, benchmarks.
#
#   make            install missing Debian packages, build build/dmzbench
#   make test       ... and run every test (tests/run.sh prints "N passed, N failed")
#   make bench      ... and run the paper's experiment, then draw its figures
#   make test-san   the tests under AddressSanitizer + UBSan (build-san/)
#   make bench-data CSV parse speed and cache-load time at EMNIST's size
#   make bench-peer the paper's TensorFlow program (mlp and cnn) and PyTorch beside dmzbench
#
# Switches: NO_CUDA=1 NO_MPI=1 NO_NCCL=1 NO_PAPI=1 NO_HWLOC=1 NO_NVML=1,
#           CUDA_HOME=/usr/local/cuda NVCC=... CUDA_ARCH="80 90", SAN=1, V=1,
#           PORTABLE=1 (baseline x86-64 instead of -march=native, in build-portable/).
# CUDA: with nvcc, kernels/cuda/*.cu are built for the GPU (the "cuda" backend);
# with or without it, they are also built for the CPU emulator and tested.

# Debian packages this build needs (make deps installs what is missing).
DEB_PACKAGES := build-essential pkg-config libcsv-dev libcurl4-openssl-dev zlib1g-dev \
                libcjson-dev nettle-dev libzip-dev libinih-dev libcmocka-dev \
                gnuplot-nox dataset-fashion-mnist

.DEFAULT_GOAL := all
.SECONDARY:
.PHONY: all build deps test test-san bench bench-data bench-peer clean help config

all: deps
	@$(MAKE) --no-print-directory build

# ---------------------------------------------------------------- dependencies
deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "deps: missing Debian packages:$$missing (no apt-get here; install them by hand)"; exit 1; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "deps: missing Debian packages. Run:"; \
	  echo "  sudo apt-get update && sudo apt-get install -y$$missing"; exit 1; fi; \
	echo "deps: installing$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq && apt-get install -y -qq --no-install-recommends$$missing >/dev/null \
	  || { echo "deps: apt-get install failed for:$$missing"; exit 1; }

# ---------------------------------------------------------------- configuration
SAN ?=
PORTABLE ?=
BUILD ?= $(if $(SAN),build-san,$(if $(PORTABLE),build-portable,build))
CC ?= cc
PKG_CONFIG ?= pkg-config
# libcsv ships no .pc file: it is linked by name.
PKGS := libcurl zlib libcjson nettle libzip inih
GIT_REV := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)

comma := ,
CSTD := -std=c11 -D_GNU_SOURCE
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
OPT  := -O3 -g
# Vector ISA: the host's (-march=native, e.g. AVX2+FMA) unless PORTABLE=1, which
# keeps the compiler's default target (baseline x86-64: SSE2) in build-portable/.
ARCH_FLAGS := $(if $(PORTABLE),,-march=native)
NATIVE_MARCH := $(if $(PORTABLE),,$(shell $(CC) -march=native -Q --help=target 2>/dev/null | awk '$$1 == "-march=" {print $$2; exit}'))
CFG_ARCH := $(if $(PORTABLE),compiler default (PORTABLE=1: baseline$(comma) no -march),-march=native$(if $(NATIVE_MARCH), (= $(NATIVE_MARCH)))$(comma) PORTABLE=1 for baseline x86-64)
CFLAGS_ALL := $(CSTD) $(WARN) $(OPT) $(ARCH_FLAGS) -fopenmp -I. \
              $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null) \
              -DDMZ_GIT_REV=\"$(GIT_REV)\" -DDMZ_SOURCE_DIR=\"$(CURDIR)\" \
              '-DDMZ_ARCH_FLAGS="$(if $(ARCH_FLAGS),$(ARCH_FLAGS),none (PORTABLE=1))"' '-DDMZ_NATIVE_MARCH="$(NATIVE_MARCH)"'
LDLIBS_ALL := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lcsv -lm -fopenmp
SAN_FLAGS := $(if $(SAN),-fsanitize=address$(comma)undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
CFLAGS_ALL += $(SAN_FLAGS)
LDLIBS_ALL += $(if $(SAN),-fsanitize=address$(comma)undefined)

# Optional parts: found or not, and why (printed by `make config`).
NVCC ?= $(shell command -v nvcc 2>/dev/null || { [ -x $(CUDA_HOME)/bin/nvcc ] && echo $(CUDA_HOME)/bin/nvcc; })
CUDA_HOME ?= /usr/local/cuda
NVCC := $(NVCC)
have = $(if $(NO_$(1)),no (NO_$(1)=1),$(2))
NVCC_VERSION := $(if $(NVCC),$(shell $(NVCC) --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p'))
NVCC_MAJOR := $(firstword $(subst ., ,$(NVCC_VERSION)))
# The CUDA runtime to link: under CUDA_HOME, else wherever the C compiler finds it.
CUDA_LIBDIR := $(if $(NVCC),$(patsubst %/,%,$(dir $(firstword $(wildcard $(CUDA_HOME)/lib64/libcudart.so \
                 $(CUDA_HOME)/lib/libcudart.so $(CUDA_HOME)/targets/*/lib/libcudart.so) \
                 $(filter /%,$(shell $(CC) -print-file-name=libcudart.so 2>/dev/null))))))
USE_CUDA := $(if $(NO_CUDA),,$(if $(NVCC),$(if $(CUDA_LIBDIR),1)))
# GPU targets. CUDA 13 starts at Turing (sm_75); CUDA 12.x and 11.8 still reach
# Pascal (sm_61: the paper's TITAN Xp and GTX 1080 Ti) and Volta (sm_70). PTX of the
# last architecture listed is embedded too, so that newer GPUs JIT-compile it.
CUDA_ARCH_DEFAULT := $(if $(filter 13 14 15,$(NVCC_MAJOR)),75 80 86 89 90,$(if $(filter 12 11.8,$(NVCC_MAJOR) $(NVCC_VERSION)),61 70 75 80 86 89 90,61 70 75 80 86))
CUDA_ARCH ?= $(CUDA_ARCH_DEFAULT)
CUDA_PTX := $(lastword $(CUDA_ARCH))
CUDA_PASCAL_NOTE := $(if $(filter 13 14 15,$(NVCC_MAJOR)),this toolkit cannot target Pascal sm_61 (TITAN Xp / GTX 1080 Ti need CUDA 11.8 or 12.x),$(if $(filter 61,$(CUDA_ARCH)),Pascal sm_61 (TITAN Xp / GTX 1080 Ti) included,this toolkit can target Pascal sm_61: add 61 to CUDA_ARCH))
CFG_CUDA_YES = yes (nvcc $(NVCC_VERSION) at $(NVCC)$(comma) libcudart in $(CUDA_LIBDIR); kernels for $(CUDA_ARCH:%=sm_%) + compute_$(CUDA_PTX) PTX (CUDA_ARCH); $(CUDA_PASCAL_NOTE))
CFG_CUDA_NOLIB = no (nvcc $(NVCC_VERSION) at $(NVCC) but no libcudart.so under $(CUDA_HOME); set CUDA_HOME)
CFG_CUDA  := $(call have,CUDA,$(if $(NVCC),$(if $(CUDA_LIBDIR),$(CFG_CUDA_YES),$(CFG_CUDA_NOLIB)),no (nvcc not found; set NVCC or CUDA_HOME)))
CFG_CUDA_EMU = yes$(comma) always (kernels/cuda/*.cu on the CPU emulator kernels/cuda/emu$(comma) with $(CXX); tests only)
CFG_MPI   := $(call have,MPI,$(if $(shell command -v mpicc 2>/dev/null),yes (mpicc; not used yet),no (mpicc not found: apt-get install libopenmpi-dev)))
CFG_PAPI  := $(call have,PAPI,$(if $(shell $(PKG_CONFIG) --exists papi 2>/dev/null && echo y),yes (not used yet),no (apt-get install libpapi-dev)))
CFG_HWLOC := $(call have,HWLOC,$(if $(shell $(PKG_CONFIG) --exists hwloc 2>/dev/null && echo y),yes (not used yet),no (apt-get install libhwloc-dev)))
CFG_NVML  := $(call have,NVML,$(if $(wildcard $(CUDA_HOME)/include/nvml.h /usr/include/nvml.h),yes (not used yet),no (nvml.h not found under $(CUDA_HOME)/include or /usr/include: the cuda-nvml-dev package has it)))

config:
	@echo "dmzbench build configuration ($(BUILD)/, git $(GIT_REV))"
	@echo "  cc     : $(shell $(CC) --version | head -1)"
	@echo "  openmp : yes (-fopenmp)"
	@echo "  isa    : $(CFG_ARCH)"
	@echo "  cuda   : $(CFG_CUDA)"
	@echo "  cudaemu: $(CFG_CUDA_EMU)"
	@echo "  mpi    : $(CFG_MPI)"
	@echo "  papi   : $(CFG_PAPI)"
	@echo "  hwloc  : $(CFG_HWLOC)"
	@echo "  nvml   : $(CFG_NVML)"
	@echo "  gnuplot: $(if $(shell command -v gnuplot 2>/dev/null),yes,no (figures skipped; apt-get install gnuplot-nox))"

# ---------------------------------------------------------------- CUDA
# Every kernels/cuda/*.cu is compiled twice:
#  - by nvcc for the GPU, when USE_CUDA (nvcc and libcudart found, NO_CUDA unset):
#    $(BUILD)/libdmz_cuda.a, linked into dmzbench and every test, with -DDMZ_HAVE_CUDA
#    so that `--backend cuda` exists (kernels/backend.c);
#  - always, by $(CXX) as C++ for the CPU emulator (kernels/cuda/emu, force-included):
#    $(BUILD)/libdmz_cuda_emu.a ("cuda-emu"), linked only into tests/test_cuda_ops.
# tests/test_cuda_ops.c is also built as tests/test_cuda_gpu against the nvcc build:
# it runs every kernel on the GPU when one answers, and skips (saying why) otherwise.
CUDA_SRCS := $(wildcard kernels/cuda/*.cu)
CUDA_OBJS := $(CUDA_SRCS:%.cu=$(BUILD)/obj-cuda/%.o)
EMU_OBJS  := $(CUDA_SRCS:%.cu=$(BUILD)/obj-emu/%.o) $(BUILD)/obj-emu/kernels/cuda/emu/cuda_emu.o
NVCC_GENCODE := $(foreach a,$(CUDA_ARCH),-gencode arch=compute_$(a),code=sm_$(a)) \
                -gencode arch=compute_$(CUDA_PTX),code=compute_$(CUDA_PTX)
NVCC_WARN ?= -Xcompiler -Wall,-Wextra,-Werror,-Wno-unused-parameter $(if $(filter 9 10 11,$(NVCC_MAJOR)),,-Werror all-warnings)
NVCC_FLAGS := -O3 -std=c++17 -lineinfo -I. -Wno-deprecated-gpu-targets $(NVCC_GENCODE) $(NVCC_WARN)
EMU_CXXFLAGS := -std=c++17 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter $(OPT) -I. $(SAN_FLAGS)
EMU_CU_FLAGS := -x c++ -include kernels/cuda/emu/cuda_emu.h -DDMZ_CUDA_EMU

ifneq ($(USE_CUDA),)
  CUDA_TOO_OLD := $(if $(filter 13 14 15,$(NVCC_MAJOR)),$(filter 3% 5% 60 61 62 70 72,$(CUDA_ARCH)))
  ifneq ($(CUDA_TOO_OLD),)
    $(error CUDA_ARCH="$(CUDA_ARCH)": nvcc $(NVCC_VERSION) cannot target $(CUDA_TOO_OLD:%=sm_%) (CUDA 13 starts at Turing, sm_75). Pascal GPUs (TITAN Xp, GTX 1080 Ti) need CUDA 11.8 or 12.x: point NVCC/CUDA_HOME at one, or build with NO_CUDA=1)
  endif
  CFLAGS_ALL += -DDMZ_HAVE_CUDA '-DDMZ_NVCC_VERSION="$(NVCC_VERSION)"' '-DDMZ_CUDA_ARCH="$(CUDA_ARCH)"'
  LDLIBS_ALL += -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcudart -lstdc++
  GPU_TEST_BIN := $(BUILD)/tests/test_cuda_gpu
endif
LIBS := $(BUILD)/libdmz.a $(if $(USE_CUDA),$(BUILD)/libdmz_cuda.a)

# Objects that depend on the CUDA choice are rebuilt when it changes.
CUDA_STAMP := $(BUILD)/.cuda-config
CUDA_CONFIG := cuda=$(USE_CUDA) nvcc=$(NVCC) arch=$(CUDA_ARCH)
$(shell mkdir -p $(BUILD) && { [ "$$(cat $(CUDA_STAMP) 2>/dev/null)" = "$(CUDA_CONFIG)" ] || echo "$(CUDA_CONFIG)" > $(CUDA_STAMP); })
# ---------------------------------------------------------------- sources
LIB_SRCS  := $(wildcard common/*.c datasets/*.c kernels/*.c kernels/cpu/*.c net/*.c bench/*.c)
LIB_SRCS  := $(filter-out bench/main.c,$(LIB_SRCS))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_SRCS := $(wildcard tests/test_*.c)
BENCH_SRCS := $(wildcard tests/bench_*.c)
TEST_SUPPORT_SRCS := $(filter-out $(TEST_SRCS) $(BENCH_SRCS),$(wildcard tests/*.c))
TEST_SUPPORT_OBJS := $(TEST_SUPPORT_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
BENCH_BINS := $(BENCH_SRCS:tests/%.c=$(BUILD)/tests/%)
BIN := $(BUILD)/dmzbench

ifeq ($(V),)
  Q := @
  say = @printf '  %-6s %s\n' $(1) $(2);
else
  Q :=
  say =
endif

build: config $(BIN) $(TEST_BINS) $(GPU_TEST_BIN) $(BENCH_BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

# The SGEMM micro-kernel's multiply-adds are fused where the ISA has FMA.
$(BUILD)/obj/kernels/cpu/sgemm.o: CFLAGS_ALL += -ffp-contract=fast
# Adam's sqrtf vectorises once it need not set errno (its argument is never negative).
$(BUILD)/obj/kernels/cpu/adam.o: CFLAGS_ALL += -fno-math-errno

$(BUILD)/libdmz.a: $(LIB_OBJS)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(BIN): $(BUILD)/obj/bench/main.o $(LIBS)
	$(call say,LD,$@)$(CC) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_SUPPORT_OBJS) $(LIBS)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) -o $@ $^ $(LDLIBS_ALL) $(shell $(PKG_CONFIG) --libs cmocka) -lpthread

# ---------------------------------------------------------------- CUDA rules (variables above)
$(BUILD)/obj/kernels/backend.o $(BUILD)/obj/bench/meta.o $(BUILD)/obj/bench/info.o \
  $(BUILD)/obj/tests/test_cuda_ops.o $(CUDA_OBJS): $(CUDA_STAMP)

$(BUILD)/obj-cuda/%.o: %.cu
	@mkdir -p $(dir $@)
	$(call say,NVCC,$<)$(NVCC) $(NVCC_FLAGS) -MMD -MF $(@:.o=.d) -c $< -o $@

$(BUILD)/libdmz_cuda.a: $(CUDA_OBJS)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(BUILD)/obj-emu/%.o: %.cu
	@mkdir -p $(dir $@)
	$(call say,CXX,$<)$(CXX) $(EMU_CU_FLAGS) $(EMU_CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj-emu/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(call say,CXX,$<)$(CXX) $(EMU_CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libdmz_cuda_emu.a: $(EMU_OBJS)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/test_cuda_ops: $(BUILD)/obj/tests/test_cuda_ops.o $(BUILD)/obj-emu/tests/cuda_selftest.o \
                              $(TEST_SUPPORT_OBJS) $(BUILD)/libdmz_cuda_emu.a $(LIBS)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CXX) -o $@ $^ $(LDLIBS_ALL) $(shell $(PKG_CONFIG) --libs cmocka) -lpthread

$(BUILD)/obj/tests/test_cuda_gpu.o: tests/test_cuda_ops.c $(CUDA_STAMP)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CFLAGS_ALL) -DDMZ_TEST_CUDA_GPU -MMD -MP -c $< -o $@

-include $(shell find $(BUILD)/obj $(BUILD)/obj-emu $(BUILD)/obj-cuda -name '*.d' 2>/dev/null)

# ---------------------------------------------------------------- running
test: deps
	@$(MAKE) --no-print-directory build
	@DMZBENCH=$(BIN) tests/run.sh $(BUILD)/tests

test-san: deps
	@$(MAKE) --no-print-directory SAN=1 build
	@DMZBENCH=build-san/dmzbench ASAN_OPTIONS=detect_leaks=1 tests/run.sh build-san/tests

BENCH_ARGS ?= --model mlp --steps 2000 --batch 100 --lr 0.01 --repeat 2 --data emnist-balanced
bench: deps
	@$(MAKE) --no-print-directory build
	@bench/paper.sh $(BIN) $(BENCH_ARGS)

# Peers on the same models, side by side, as ratios (development-time only):
#  - the paper's own program: TensorFlow's dist_mnist in tf.compat.v1 graph mode with a
#    feed_dict per step, and the same program with the cnn (bench/peers/tf_dist_mnist.py),
#    on tensorflow-cpu from PyPI, installed on first use into TF_VENV (outside the build);
#  - Debian's PyTorch (python3-torch, a generic BLAS: a weak peer) on the mlp.
PEER_PACKAGES := python3-torch python3-pandas python3-venv
PEER_ARGS ?= --data emnist-balanced --steps 2000 --repeat 3
TF_PEER_ARGS ?= --cnn-steps 50
TF_VENV ?= $(HOME)/.cache/dmzbench/tf-venv
TF_PIP_SPEC ?= tensorflow-cpu==2.21.0
$(TF_VENV)/.installed:
	@echo "bench-peer: installing $(TF_PIP_SPEC) from PyPI into $(TF_VENV) (a development-time peer, not a dependency)"
	@python3 -m venv $(TF_VENV) && $(TF_VENV)/bin/pip install -q --upgrade pip && \
	  $(TF_VENV)/bin/pip install -q "$(TF_PIP_SPEC)" && touch $@
bench-peer: deps
	@$(MAKE) --no-print-directory DEB_PACKAGES="$(PEER_PACKAGES)" deps
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory $(TF_VENV)/.installed
	@$(TF_VENV)/bin/python bench/peers/tf_dist_mnist.py --dmzbench $(BIN) $(PEER_ARGS) $(TF_PEER_ARGS)
	@/usr/bin/python3 bench/peers/pytorch_mlp.py --dmzbench $(BIN) $(PEER_ARGS)

bench-data: deps
	@$(MAKE) --no-print-directory build
	@$(BUILD)/tests/bench_data

clean:
	rm -rf build build-san build-portable

help:
	@sed -n '2,14p' Makefile
