# dmzbench — build, dependencies, tests, benchmarks.
#
#   make            install missing Debian packages, build build/dmzbench
#   make test       ... and run every test (tests/run.sh prints "N passed, N failed")
#   make bench      ... and run the paper's experiment, then draw its figures
#   make bench-wan  mlp/cnn x sync/async-ps over emulated RTT x rate, with the alpha-beta model
#   make test-san   the tests under AddressSanitizer + UBSan (build-san/)
#   make test-race  the kernels on the emulator under ThreadSanitizer: races, barriers, warp rules
#   make kernel-resources  registers/shared memory/spills per kernel for sm_61 sm_70 sm_75 sm_90
#   make gpu-bundle / check-gpu  a folder that validates a GPU machine in one call, one verdict file
#   make bench-data CSV parse speed and cache-load time at EMNIST's size
#   make bench-kernels every op at the models' shapes: ours (cuda) vs cuBLAS/cuDNN vs cpu
#   make bench-peer the paper's TensorFlow program (mlp and cnn) and PyTorch beside dmzbench
#   make fuzz       libFuzzer on every reader (tests/fuzz/, clang), FUZZ_SECONDS in all
#
# Switches: NO_CUDA=1 NO_MPI=1 NO_NCCL=1 NO_PAPI=1 NO_HWLOC=1 NO_NVML=1 NO_CUPTI=1,
#           CUDA_HOME=/usr/local/cuda NVCC=... CUDA_ARCH="80 90", SAN=1, RACE=1, V=1,
#           PORTABLE=1 (baseline x86-64 instead of -march=native, in build-portable/),
#           MARCH=x86-64-v3 (that -march instead of native, in build-x86-64-v3/).
# CUDA: with nvcc, kernels/cuda/*.cu are built for the GPU (the "cuda" backend);
# with or without it, they are also built for the CPU emulator and tested.

# Debian packages this build needs (make deps installs what is missing).
DEB_PACKAGES := build-essential pkg-config libcsv-dev libcurl4-openssl-dev zlib1g-dev \
                libcjson-dev nettle-dev libzip-dev libinih-dev libcmocka-dev \
                gnuplot-nox dataset-fashion-mnist xz-utils \
                $(if $(NO_MPI),,libopenmpi-dev openmpi-bin) \
                $(if $(NO_HWLOC),,libhwloc-dev) $(if $(NO_PAPI),,libpapi-dev)

.DEFAULT_GOAL := all
.SECONDARY:
.PHONY: all build deps test test-san test-race kernel-resources check-pascal gpu-bundle check-gpu bench bench-data bench-kernels bench-peer clean help config fuzz fuzz-build

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
RACE ?=
PORTABLE ?=
MARCH ?=
BUILD ?= $(if $(SAN),build-san,$(if $(RACE),build-race,$(if $(MARCH),build-$(MARCH),$(if $(PORTABLE),build-portable,build))))
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
# MARCH=NAME builds for that -march (e.g. x86-64-v3, AVX2+FMA: what the GPU bundle
# uses, so that it runs on another machine's CPU) in build-NAME/.
ARCH_FLAGS := $(if $(MARCH),-march=$(MARCH),$(if $(PORTABLE),,-march=native))
NATIVE_MARCH := $(if $(MARCH)$(PORTABLE),,$(shell $(CC) -march=native -Q --help=target 2>/dev/null | awk '$$1 == "-march=" {print $$2; exit}'))
CFG_ARCH := $(if $(MARCH),-march=$(MARCH) (MARCH=$(MARCH)),$(if $(PORTABLE),compiler default (PORTABLE=1: baseline$(comma) no -march),-march=native$(if $(NATIVE_MARCH), (= $(NATIVE_MARCH)))$(comma) PORTABLE=1 for baseline x86-64))
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
# MPI: the C flags and libraries mpicc would use (Open MPI, MPICH: both answer -show*).
MPICC ?= mpicc
MPI_FOUND := $(if $(NO_MPI),,$(shell command -v $(MPICC) 2>/dev/null))
MPI_CFLAGS := $(if $(MPI_FOUND),$(shell $(MPICC) --showme:compile 2>/dev/null || $(MPICC) -compile_info 2>/dev/null | cut -d' ' -f2-))
MPI_LIBS := $(if $(MPI_FOUND),$(shell $(MPICC) --showme:link 2>/dev/null || $(MPICC) -link_info 2>/dev/null | cut -d' ' -f2-))
USE_MPI := $(if $(MPI_FOUND),1)
CFG_MPI   := $(call have,MPI,$(if $(MPI_FOUND),yes ($(MPICC) at $(MPI_FOUND): --mode sync and async-ps),no ($(MPICC) not found: apt-get install libopenmpi-dev openmpi-bin; only --mode single)))
# Counters (counters/): hwloc and PAPI linked when found; NVML and CUPTI loaded at run time.
USE_HWLOC := $(if $(NO_HWLOC),,$(shell $(PKG_CONFIG) --exists hwloc 2>/dev/null && echo 1))
USE_PAPI  := $(if $(NO_PAPI),,$(shell $(PKG_CONFIG) --exists papi 2>/dev/null && echo 1))
CFG_PAPI  := $(call have,PAPI,$(if $(USE_PAPI),yes (papi $(shell $(PKG_CONFIG) --modversion papi): --papi-events; whether this machine has counters is said at run time),no (apt-get install libpapi-dev)))
CFG_HWLOC := $(call have,HWLOC,$(if $(USE_HWLOC),yes (hwloc $(shell $(PKG_CONFIG) --modversion hwloc): topology and --bind),no (apt-get install libhwloc-dev)))
CFG_NVML  := $(call have,NVML,yes (loaded at run time: dlopen libnvidia-ml.so.1 or DMZBENCH_NVML_LIB; no nvml.h needed))

config:
	@echo "dmzbench build configuration ($(BUILD)/, git $(GIT_REV))"
	@echo "  cc     : $(shell $(CC) --version | head -1)"
	@echo "  openmp : yes (-fopenmp)"
	@echo "  isa    : $(CFG_ARCH)"
	@echo "  cuda   : $(CFG_CUDA)"
	@echo "  cudaemu: $(CFG_CUDA_EMU)"
	@echo "  mpi    : $(CFG_MPI)"
	@echo "  nccl   : $(CFG_NCCL)"
	@echo "  cublas : $(CFG_CUBLAS)"
	@echo "  cudnn  : $(CFG_CUDNN)"
	@echo "  papi   : $(CFG_PAPI)"
	@echo "  hwloc  : $(CFG_HWLOC)"
	@echo "  nvml   : $(CFG_NVML)"
	@echo "  bench-kernels GPU half: $(CFG_BENCH_GPU)"
	@echo "  cupti  : $(CFG_CUPTI)"
	@echo "  gnuplot: $(if $(shell command -v gnuplot 2>/dev/null),yes,no (figures skipped; apt-get install gnuplot-nox))"

ifneq ($(USE_MPI),)
  CFLAGS_ALL += -DDMZ_HAVE_MPI $(MPI_CFLAGS)
  LDLIBS_ALL += $(MPI_LIBS)
endif

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
EMU_SRCS  := $(wildcard kernels/cuda/emu/*.cpp)
EMU_OBJS  := $(CUDA_SRCS:%.cu=$(BUILD)/obj-emu/%.o) $(EMU_SRCS:%.cpp=$(BUILD)/obj-emu/%.o)
NVCC_GENCODE := $(foreach a,$(CUDA_ARCH),-gencode arch=compute_$(a),code=sm_$(a)) \
                -gencode arch=compute_$(CUDA_PTX),code=compute_$(CUDA_PTX)
NVCC_WARN ?= -Xcompiler -Wall,-Wextra,-Werror,-Wno-unused-parameter $(if $(filter 9 10 11,$(NVCC_MAJOR)),,-Werror all-warnings)
NVCC_FLAGS := -O3 -std=c++17 -lineinfo -I. -Wno-deprecated-gpu-targets $(NVCC_GENCODE) $(NVCC_WARN) '-DDMZ_NVCC_VERSION="$(NVCC_VERSION)"' '-DDMZ_CUDA_ARCH="$(CUDA_ARCH)"'
EMU_CXXFLAGS := -std=c++17 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter $(OPT) -I. $(SAN_FLAGS)
EMU_CU_FLAGS := -x c++ -include kernels/cuda/emu/cuda_emu.h -DDMZ_CUDA_EMU
# RACE=1 (make test-race, build-race/): the kernel files under ThreadSanitizer,
# the emulator itself uninstrumented but built as the race detector.
EMU_CU_FLAGS += $(if $(RACE),-fsanitize=thread)
EMU_RT_FLAGS := $(if $(RACE),-DDMZ_EMU_RACE=1)
LDLIBS_ALL += $(if $(RACE),-fsanitize=thread)

ifneq ($(USE_CUDA),)
  CUDA_TOO_OLD := $(if $(filter 13 14 15,$(NVCC_MAJOR)),$(filter 3% 5% 60 61 62 70 72,$(CUDA_ARCH)))
  ifneq ($(CUDA_TOO_OLD),)
    $(error CUDA_ARCH="$(CUDA_ARCH)": nvcc $(NVCC_VERSION) cannot target $(CUDA_TOO_OLD:%=sm_%) (CUDA 13 starts at Turing, sm_75). Pascal GPUs (TITAN Xp, GTX 1080 Ti) need CUDA 11.8 or 12.x: point NVCC/CUDA_HOME at one, or build with NO_CUDA=1)
  endif
  CFLAGS_ALL += -DDMZ_HAVE_CUDA '-DDMZ_NVCC_VERSION="$(NVCC_VERSION)"' '-DDMZ_CUDA_ARCH="$(CUDA_ARCH)"'
  LDLIBS_ALL += -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcudart -lstdc++
  GPU_TEST_BIN := $(BUILD)/tests/test_cuda_gpu $(BUILD)/tests/test_cuda_step_gpu
endif
# NCCL: the gradient all-reduce on device buffers (sync mode, --backend cuda); needs CUDA and MPI.
NCCL_HEADER := $(firstword $(wildcard $(CUDA_HOME)/include/nccl.h /usr/include/nccl.h))
NCCL_LIB := $(firstword $(wildcard $(CUDA_LIBDIR)/libnccl.so /usr/lib/x86_64-linux-gnu/libnccl.so))
USE_NCCL := $(if $(NO_NCCL),,$(if $(USE_CUDA),$(if $(USE_MPI),$(if $(NCCL_HEADER),$(if $(NCCL_LIB),1)))))
CFG_NCCL := $(call have,NCCL,$(if $(USE_NCCL),yes ($(NCCL_HEADER)$(comma) $(NCCL_LIB): sync all-reduce on GPU memory),no (needs nvcc$(comma) MPI$(comma) nccl.h and libnccl.so; found: cuda=$(if $(USE_CUDA),yes,no) mpi=$(if $(USE_MPI),yes,no) header=$(if $(NCCL_HEADER),yes,no) lib=$(if $(NCCL_LIB),yes,no))))
ifneq ($(USE_NCCL),)
  CFLAGS_ALL += -DDMZ_HAVE_NCCL
  LDLIBS_ALL += -L$(dir $(NCCL_LIB)) -Wl,-rpath,$(patsubst %/,%,$(dir $(NCCL_LIB))) -lnccl
endif
$(BUILD)/obj/net/comm_nccl.o: CFLAGS_ALL += $(if $(USE_NCCL),-isystem $(dir $(NCCL_HEADER)) -isystem $(CUDA_HOME)/include)
# cuBLAS / cuDNN: the comparison backends (kernels/cuda/vendor/), compiled by nvcc when
# the headers are here; the libraries are dlopen'ed at run time (not linked: a
# driver-only machine and the GPU bundle still run, and say which library is missing).
CUBLAS_HEADER := $(firstword $(wildcard $(CUDA_HOME)/include/cublas_v2.h /usr/include/cublas_v2.h))
CUBLAS_LIB := $(firstword $(wildcard $(CUDA_LIBDIR)/libcublas.so /usr/lib/x86_64-linux-gnu/libcublas.so))
CUDNN_HEADER := $(firstword $(wildcard $(CUDA_HOME)/include/cudnn.h /usr/include/cudnn.h /usr/include/x86_64-linux-gnu/cudnn.h))
CUDNN_LIB := $(firstword $(wildcard $(CUDA_LIBDIR)/libcudnn.so /usr/lib/x86_64-linux-gnu/libcudnn.so))
USE_CUBLAS := $(if $(NO_CUBLAS),,$(if $(USE_CUDA),$(if $(CUBLAS_HEADER),1)))
USE_CUDNN := $(if $(NO_CUDNN),,$(if $(USE_CUBLAS),$(if $(CUDNN_HEADER),1)))
CFG_CUBLAS := $(call have,CUBLAS,$(if $(USE_CUBLAS),yes ($(CUBLAS_HEADER); $(if $(CUBLAS_LIB),$(CUBLAS_LIB),no libcublas.so here) loaded at run time: --backend cublas),no (needs nvcc and cublas_v2.h; found: cuda=$(if $(USE_CUDA),yes,no) header=$(if $(CUBLAS_HEADER),yes,no)$(if $(NO_CUBLAS),$(comma) NO_CUBLAS=1))))
CFG_CUDNN := $(call have,CUDNN,$(if $(USE_CUDNN),yes ($(CUDNN_HEADER); $(if $(CUDNN_LIB),$(CUDNN_LIB),no libcudnn.so here) loaded at run time: --backend cudnn),no (needs cuBLAS and cudnn.h; found: cublas=$(if $(USE_CUBLAS),yes,no) header=$(if $(CUDNN_HEADER),yes,no)$(if $(NO_CUDNN),$(comma) NO_CUDNN=1))))
VENDOR_SRCS := $(if $(USE_CUBLAS),kernels/cuda/vendor/backend_cublas.cu) $(if $(USE_CUDNN),kernels/cuda/vendor/backend_cudnn.cu)
VENDOR_OBJS := $(VENDOR_SRCS:%.cu=$(BUILD)/obj-cuda/%.o)
ifneq ($(USE_CUBLAS),)
  CFLAGS_ALL += -DDMZ_HAVE_CUBLAS
  LDLIBS_ALL += -ldl
endif
ifneq ($(USE_CUDNN),)
  CFLAGS_ALL += -DDMZ_HAVE_CUDNN
endif
$(VENDOR_OBJS): NVCC_FLAGS += $(if $(CUDNN_HEADER),-isystem $(dir $(CUDNN_HEADER)))
# bench-kernels' GPU half (tests/bench_kernels_gpu.cu): our kernels beside cuBLAS and
# cuDNN, which it dlopens at run time (the GPU bundle cannot carry them); nvcc needs
# their headers to build it.
BENCH_GPU_HEADERS := $(firstword $(wildcard $(CUDA_HOME)/include/cublas_v2.h /usr/include/cublas_v2.h)) \
                     $(firstword $(wildcard $(CUDA_HOME)/include/cudnn.h /usr/include/cudnn.h /usr/include/x86_64-linux-gnu/cudnn.h))
USE_BENCH_GPU := $(if $(USE_CUDA),$(if $(word 2,$(BENCH_GPU_HEADERS)),1))
CFG_BENCH_GPU := $(if $(USE_BENCH_GPU),yes (cublas_v2.h and cudnn.h found: cuBLAS/cuDNN columns on a GPU; the libraries are dlopened there),no (needs nvcc$(comma) cublas_v2.h and cudnn.h; found: cuda=$(if $(USE_CUDA),yes,no) headers=$(or $(strip $(BENCH_GPU_HEADERS)),none)))
$(BUILD)/obj/tests/bench_kernels.o: CFLAGS_ALL += $(if $(USE_BENCH_GPU),-DDMZ_BENCH_GPU)
LIBS := $(BUILD)/libdmz.a $(if $(USE_CUDA),$(BUILD)/libdmz_cuda.a)

# ---------------------------------------------------------------- counters
# CUPTI: cupti.h from the toolkit at build time (CUDA builds); libcupti is
# dlopen'ed at run time (DMZBENCH_CUPTI_LIB, else libcupti.so, else CUPTI_LIBDIR).
CUPTI_HEADER := $(firstword $(wildcard $(CUDA_HOME)/include/cupti.h $(CUDA_HOME)/extras/CUPTI/include/cupti.h))
CUPTI_LIBDIR := $(patsubst %/,%,$(dir $(firstword $(wildcard $(CUDA_HOME)/lib64/libcupti.so $(CUDA_HOME)/extras/CUPTI/lib64/libcupti.so))))
USE_CUPTI := $(if $(NO_CUPTI),,$(if $(USE_CUDA),$(if $(CUPTI_HEADER),1)))
CFG_CUPTI := $(call have,CUPTI,$(if $(USE_CUPTI),yes ($(CUPTI_HEADER); libcupti loaded at run time$(if $(CUPTI_LIBDIR), from $(CUPTI_LIBDIR))),no (needs nvcc and cupti.h under $(CUDA_HOME); kernels are then timed with CUDA events)))
ifneq ($(USE_HWLOC),)
  CFLAGS_ALL += -DDMZ_HAVE_HWLOC $(shell $(PKG_CONFIG) --cflags hwloc)
  LDLIBS_ALL += $(shell $(PKG_CONFIG) --libs hwloc)
endif
ifneq ($(USE_PAPI),)
  CFLAGS_ALL += -DDMZ_HAVE_PAPI $(shell $(PKG_CONFIG) --cflags papi)
  LDLIBS_ALL += $(shell $(PKG_CONFIG) --libs papi)
endif
CFLAGS_ALL += $(if $(NO_NVML),-DDMZ_NO_NVML)
LDLIBS_ALL += -ldl -lpthread
CFLAGS_ALL += $(if $(USE_CUPTI),-DDMZ_HAVE_CUPTI)
$(BUILD)/obj/counters/kernels.o: CFLAGS_ALL += $(if $(USE_CUDA),-isystem $(CUDA_HOME)/include) \
  $(if $(USE_CUPTI),-isystem $(dir $(CUPTI_HEADER)) -DDMZ_CUPTI_LIBDIR=\"$(CUPTI_LIBDIR)\")
# A stand-in for libnvidia-ml.so.1 (tests/fake_nvml.c): the tests load it with DMZBENCH_NVML_LIB.
FAKE_NVML := $(BUILD)/tests/fake-nvml/libnvidia-ml.so.1

# Objects that depend on the CUDA choice are rebuilt when it changes.
CUDA_STAMP := $(BUILD)/.cuda-config
CUDA_CONFIG := cuda=$(USE_CUDA) nvcc=$(NVCC) arch=$(CUDA_ARCH) mpi=$(USE_MPI) nccl=$(NO_NCCL) cublas=$(USE_CUBLAS) cudnn=$(USE_CUDNN) hwloc=$(USE_HWLOC) papi=$(USE_PAPI) cupti=$(USE_CUPTI) nvml=$(NO_NVML)
$(shell mkdir -p $(BUILD) && { [ "$$(cat $(CUDA_STAMP) 2>/dev/null)" = "$(CUDA_CONFIG)" ] || echo "$(CUDA_CONFIG)" > $(CUDA_STAMP); })
# ---------------------------------------------------------------- sources
LIB_SRCS  := $(wildcard common/*.c datasets/*.c kernels/*.c kernels/cpu/*.c net/*.c net/wanem/*.c bench/*.c counters/*.c)
LIB_SRCS  := $(filter-out bench/main.c,$(LIB_SRCS))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_SRCS := $(wildcard tests/test_*.c)
BENCH_SRCS := $(wildcard tests/bench_*.c)
TEST_SUPPORT_SRCS := $(filter-out $(TEST_SRCS) $(BENCH_SRCS) tests/faultinject.c tests/fake_nvml.c,$(wildcard tests/*.c))
TEST_SUPPORT_OBJS := $(TEST_SUPPORT_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
BENCH_BINS := $(BENCH_SRCS:tests/%.c=$(BUILD)/tests/%)
# tests/fuzz/fuzz_NAME.c: a libFuzzer harness; with tests/fuzz/replay.c also the
# test program test_fuzz_NAME, which replays the kept inputs (see "fuzzing" below).
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY_BINS := $(FUZZ_NAMES:%=$(BUILD)/tests/test_fuzz_%)
BIN := $(BUILD)/dmzbench

ifeq ($(V),)
  Q := @
  say = @printf '  %-6s %s\n' $(1) $(2);
else
  Q :=
  say =
endif

build: config $(BIN) $(TEST_BINS) $(GPU_TEST_BIN) $(BENCH_BINS) $(FUZZ_REPLAY_BINS) $(BUILD)/tests/libfaultinject.so $(FAKE_NVML)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

# The SGEMM micro-kernel's and the Winograd transforms' multiply-adds are fused
# where the ISA has FMA.
$(BUILD)/obj/kernels/cpu/sgemm.o $(BUILD)/obj/kernels/cpu/conv2d_winograd.o: CFLAGS_ALL += -ffp-contract=fast
# Adam's sqrtf vectorises once it need not set errno (its argument is never negative).
$(BUILD)/obj/kernels/cpu/adam.o: CFLAGS_ALL += -fno-math-errno

$(BUILD)/libdmz.a: $(LIB_OBJS)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(BIN): $(BUILD)/obj/bench/main.o $(LIBS)
	$(call say,LD,$@)$(CC) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_SUPPORT_OBJS) $(LIBS)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) -o $@ $^ $(LDLIBS_ALL) $(shell $(PKG_CONFIG) --libs cmocka) -lpthread

# An LD_PRELOAD shim that fails writes (tests/test_faults.c); never sanitized:
# it is loaded into the program under test.
$(BUILD)/tests/libfaultinject.so: tests/faultinject.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CSTD) $(WARN) -O1 -g -shared -fPIC -o $@ $< -ldl

$(FAKE_NVML): tests/fake_nvml.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CSTD) $(WARN) -O1 -g -shared -fPIC -Wl,-soname,libnvidia-ml.so.1 -o $@ $<

$(BUILD)/tests/test_fuzz_%: $(BUILD)/obj/tests/fuzz/replay-%.o $(BUILD)/obj/tests/fuzz/fuzz_%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) -o $@ $^ $(LDLIBS_ALL) $(shell $(PKG_CONFIG) --libs cmocka)

$(BUILD)/obj/tests/fuzz/replay-%.o: tests/fuzz/replay.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CFLAGS_ALL) '-DFUZZ_NAME="$*"' -MMD -MP -c $< -o $@

# ---------------------------------------------------------------- CUDA rules (variables above)
$(BUILD)/obj/kernels/backend.o $(BUILD)/obj/bench/meta.o $(BUILD)/obj/bench/info.o $(BUILD)/obj/net/comm_mpi.o \
  $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard counters/*.c)) $(BUILD)/obj/bench/counters_run.o \
  $(BUILD)/obj/net/comm_nccl.o $(BUILD)/obj/bench/experiment.o $(BUILD)/obj/tests/bench_kernels.o \
  $(BUILD)/obj/tests/test_cuda_ops.o $(BUILD)/obj/tests/test_cuda_step.o $(CUDA_OBJS) $(VENDOR_OBJS) \
  $(BUILD)/obj/kernels/backend.o: $(CUDA_STAMP)

$(BUILD)/obj-cuda/%.o: %.cu
	@mkdir -p $(dir $@)
	$(call say,NVCC,$<)$(NVCC) $(NVCC_FLAGS) -MMD -MF $(@:.o=.d) -c $< -o $@

$(BUILD)/libdmz_cuda.a: $(CUDA_OBJS) $(VENDOR_OBJS)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(BUILD)/obj-emu/%.o: %.cu
	@mkdir -p $(dir $@)
	$(call say,CXX,$<)$(CXX) $(EMU_CU_FLAGS) $(EMU_CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj-emu/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(call say,CXX,$<)$(CXX) $(EMU_CXXFLAGS) $(EMU_RT_FLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libdmz_cuda_emu.a: $(EMU_OBJS)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/test_cuda_ops: $(BUILD)/obj/tests/test_cuda_ops.o $(BUILD)/obj-emu/tests/cuda_selftest.o \
                              $(TEST_SUPPORT_OBJS) $(BUILD)/libdmz_cuda_emu.a $(LIBS)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CXX) -o $@ $^ $(LDLIBS_ALL) $(shell $(PKG_CONFIG) --libs cmocka) -lpthread

$(BUILD)/tests/test_cuda_step: $(BUILD)/obj/tests/test_cuda_step.o $(TEST_SUPPORT_OBJS) $(BUILD)/libdmz_cuda_emu.a $(LIBS)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CXX) -o $@ $^ $(LDLIBS_ALL) $(shell $(PKG_CONFIG) --libs cmocka) -lpthread

$(BUILD)/obj/tests/test_cuda_step_gpu.o: tests/test_cuda_step.c $(CUDA_STAMP)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CFLAGS_ALL) -DDMZ_TEST_CUDA_GPU -MMD -MP -c $< -o $@

$(BUILD)/tests/test_race: $(BUILD)/obj/tests/test_race.o $(BUILD)/obj-emu/tests/race_kernels.o \
                          $(TEST_SUPPORT_OBJS) $(BUILD)/libdmz_cuda_emu.a $(LIBS)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CXX) -o $@ $^ $(LDLIBS_ALL) $(shell $(PKG_CONFIG) --libs cmocka) -lpthread

# the GPU half before the libraries it calls into (libdmz_cuda.a)
$(BUILD)/tests/bench_kernels: $(BUILD)/obj/tests/bench_kernels.o $(if $(USE_BENCH_GPU),$(BUILD)/obj-cuda/tests/bench_kernels_gpu.o) \
                              $(TEST_SUPPORT_OBJS) $(LIBS)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) -o $@ $^ $(LDLIBS_ALL) $(if $(USE_BENCH_GPU),-ldl) -lpthread

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

# The emulator as a race detector (kernels/cuda/emu/emu_race.cpp): the kernel
# files under ThreadSanitizer in build-race/, blocks on two OS threads. The
# buggy kernels of tests/race_kernels.cu must each be reported with their line
# (tests/test_race); every real kernel (tests/test_cuda_ops) must report
# nothing, under the default schedule, a seeded one, and the Pascal warp rules.
# OpenMP runs one thread: libgomp is not instrumented.
RACE_TESTS := build-race/tests/test_cuda_ops build-race/tests/test_cuda_step build-race/tests/test_race
RACE_SEED ?= 7
test-race: deps
	@$(MAKE) --no-print-directory RACE=1 NO_CUDA=1 config $(RACE_TESTS)
	@export OMP_NUM_THREADS=1; \
	  echo "test-race: default schedule"; tests/run.sh build-race/tests && \
	  echo "test-race: DMZ_EMU_SEED=$(RACE_SEED) (shuffled blocks, seeded thread orders), Pascal warp rules" && \
	  DMZ_EMU_SEED=$(RACE_SEED) DMZ_EMU_WARP_RULES=pascal tests/run.sh build-race/tests

BENCH_ARGS ?= --model mlp --steps 2000 --batch 100 --lr 0.01 --repeat 2 --data emnist-balanced
bench: deps
	@$(MAKE) --no-print-directory build
	@bench/paper.sh $(BIN) $(BENCH_ARGS)

# Emulated sites (dmzbench wan, net/wanem/): mlp and cnn, sync and async-ps,
# over RTT x rate, the alpha-beta model beside every point (bench/wan_sweep.sh).
# Short by default (minutes); WAN_FULL=1 for the night; WAN_RTTS, WAN_RATES, ...
.PHONY: bench-wan
bench-wan: deps
	@$(MAKE) --no-print-directory build
	@bench/wan_sweep.sh $(BIN)

# Every kernel's registers, shared memory, stack and spills per architecture:
# sm_61/sm_70 through NVRTC + ptxas 12.9 (PyPI wheels, installed on demand into
# CUDA12_DIR; skipped with one line when no registry answers), sm_75/sm_90
# through nvcc. Fails on a compile error or any spill. check-pascal: sm_61/sm_70 only.
CUDA12_DIR ?= $(HOME)/.cache/dmzbench/cuda12
NVRTC_PTX := $(BUILD)/tools/nvrtc_ptx
$(NVRTC_PTX): kernels/cuda/tools/nvrtc_ptx.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CSTD) $(WARN) -O2 -o $@ $< -ldl

kernel-resources: $(NVRTC_PTX)
	@CUDA12_DIR=$(CUDA12_DIR) NVCC=$(NVCC) kernels/cuda/tools/kernel_resources.sh $(BUILD) $(NVRTC_PTX)

check-pascal: $(NVRTC_PTX)
	@CUDA12_DIR=$(CUDA12_DIR) kernels/cuda/tools/kernel_resources.sh $(BUILD) $(NVRTC_PTX) pascal

# A folder to carry to a GPU machine that has only a driver: the nvcc build,
# the libraries it loads, a data set, run.sh (tests/gpu_check.sh), which
# writes one verdict file. check-gpu runs it here (NO-GPU without a device).
# Its host code is built for GPU_BUNDLE_MARCH, not -march=native: the GPU machine's CPU is another one;
# without NCCL (its library alone is 218 MB, over the bundle's 64 MiB; one GPU needs no NCCL).
GPU_BUNDLE_MARCH ?= x86-64-v3
GPU_BUNDLE_BUILD := build-$(GPU_BUNDLE_MARCH)
GPU_BUNDLE := $(GPU_BUNDLE_BUILD)/gpu-bundle
gpu-bundle: deps
	@$(MAKE) --no-print-directory MARCH=$(GPU_BUNDLE_MARCH) NO_NCCL=1 build
	@tests/gpu_bundle.sh $(GPU_BUNDLE_BUILD) $(GPU_BUNDLE) "$(NVCC_VERSION)" "$(CUDA_ARCH)"

check-gpu: gpu-bundle
	@$(GPU_BUNDLE)/run.sh $(GPU_BUNDLE_BUILD)/gpu-check

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
	@/usr/bin/python3 bench/peers/pytorch_peer.py --dmzbench $(BIN) $(PEER_ARGS)

bench-data: deps
	@$(MAKE) --no-print-directory build
	@$(BUILD)/tests/bench_data

# Every op at the paper's and the cnn's shapes (batch 100, 256, 1024): ours, cuBLAS/cuDNN
# and cpu (tests/bench_kernels.c). Without a GPU only the cpu rows run, and it says so.
BENCH_KERNELS_ARGS ?=
bench-kernels: deps
	@$(MAKE) --no-print-directory build
	@$(BUILD)/tests/bench_kernels $(BENCH_KERNELS_ARGS)

# ---------------------------------------------------------------- fuzzing
# The harnesses with clang's libFuzzer + ASan/UBSan in build-fuzz/, over the
# readers' sources only (no OpenMP: the loader's two sections run in turn).
# `make fuzz` runs each for FUZZ_SECONDS / (number of harnesses), at least 10 s,
# growing build-fuzz/corpus/NAME from tests/fuzz/corpus/NAME; an input that
# crashes, hangs or runs out of memory is saved as tests/fuzz/regressions/NAME-*
# (commit it with the fix: test_fuzz_NAME replays it in `make test`), and the
# target fails. FUZZ_SECONDS=28800 for a night.
FUZZ_SECONDS ?= 180
FUZZ_CC ?= $(firstword $(shell command -v clang-14 clang 2>/dev/null))
FUZZ_BUILD := build-fuzz
FUZZ_LIB_SRCS := $(wildcard common/*.c datasets/*.c) $(wildcard bench/report*.c) bench/results.c \
                 $(wildcard bench/compare*.c bench/project*.c) bench/devices.c
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := $(CSTD) -Wall -Wextra -Werror -Wno-unused-parameter -Wno-unknown-pragmas -g -O1 -I. \
               $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null) \
               -DDMZ_GIT_REV=\"$(GIT_REV)\" -DDMZ_SOURCE_DIR=\"$(CURDIR)\" $(FUZZ_SAN)
FUZZ_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lcsv -lm
FUZZ_BINS := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CLANG,$<)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/libdmz_fuzz.a: $(FUZZ_LIB_SRCS:%.c=$(FUZZ_BUILD)/obj/%.o)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libdmz_fuzz.a
	$(call say,LD,$@)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LIBS)

-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)

FUZZ_PACKAGES := clang libclang-rt-dev
fuzz-build: deps
	@$(MAKE) --no-print-directory DEB_PACKAGES="$(FUZZ_PACKAGES)" deps
	@if [ -z "$(FUZZ_CC)" ]; then echo "fuzz: clang not found (apt-get install clang)"; exit 1; fi
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

fuzz: fuzz-build
	@tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_NAMES)

clean:
	rm -rf build build-san build-race build-fuzz build-portable

help:
	@sed -n '2,19p' Makefile
