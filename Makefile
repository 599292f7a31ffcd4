# dmzbench — build, dependencies, tests, benchmarks.
#
#   make            install missing Debian packages, build build/dmzbench
#   make test       ... and run every test (tests/run.sh prints "N passed, N failed")
#   make bench      ... and run the paper's experiment, then draw its figures
#   make test-san   the tests under AddressSanitizer + UBSan (build-san/)
#   make bench-data CSV parse speed and cache-load time at EMNIST's size
#   make bench-peer the same model in PyTorch beside dmzbench's cpu backend
#
# Switches: NO_CUDA=1 NO_MPI=1 NO_NCCL=1 NO_PAPI=1 NO_HWLOC=1 NO_NVML=1,
#           CUDA_HOME=/usr/local/cuda NVCC=... CUDA_ARCH="80 90", SAN=1, V=1.

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
BUILD ?= $(if $(SAN),build-san,build)
CC ?= cc
PKG_CONFIG ?= pkg-config
# libcsv ships no .pc file: it is linked by name.
PKGS := libcurl zlib libcjson nettle libzip inih
GIT_REV := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)

CSTD := -std=c11 -D_GNU_SOURCE
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
OPT  := -O3 -g
CFLAGS_ALL := $(CSTD) $(WARN) $(OPT) -fopenmp -I. \
              $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null) \
              -DDMZ_GIT_REV=\"$(GIT_REV)\" -DDMZ_SOURCE_DIR=\"$(CURDIR)\"
LDLIBS_ALL := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lcsv -lm -fopenmp
ifneq ($(SAN),)
  CFLAGS_ALL += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDLIBS_ALL += -fsanitize=address,undefined
endif

# Optional parts: found or not, and why (printed by `make config`).
NVCC ?= $(shell command -v nvcc 2>/dev/null || { [ -x $(CUDA_HOME)/bin/nvcc ] && echo $(CUDA_HOME)/bin/nvcc; })
CUDA_HOME ?= /usr/local/cuda
have = $(if $(NO_$(1)),no (NO_$(1)=1),$(2))
NVCC_VERSION := $(if $(NVCC),$(shell $(NVCC) --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p'))
NVCC_MAJOR := $(firstword $(subst ., ,$(NVCC_VERSION)))
# CUDA 13 dropped Pascal (sm_61: TITAN Xp, GTX 1080 Ti); those sites need CUDA 11.8 or 12.x.
CUDA_PASCAL_NOTE := $(if $(filter 13 14 15,$(NVCC_MAJOR)),cannot target Pascal sm_61 (TITAN Xp / 1080 Ti need CUDA 11.8 or 12.x),can target Pascal sm_61)
CFG_CUDA  := $(call have,CUDA,$(if $(NVCC),yes (nvcc $(NVCC_VERSION) at $(NVCC): $(CUDA_PASCAL_NOTE); no .cu sources yet),no (nvcc not found; set NVCC or CUDA_HOME)))
CFG_MPI   := $(call have,MPI,$(if $(shell command -v mpicc 2>/dev/null),yes (mpicc; not used yet),no (mpicc not found: apt-get install libopenmpi-dev)))
CFG_PAPI  := $(call have,PAPI,$(if $(shell $(PKG_CONFIG) --exists papi 2>/dev/null && echo y),yes (not used yet),no (apt-get install libpapi-dev)))
CFG_HWLOC := $(call have,HWLOC,$(if $(shell $(PKG_CONFIG) --exists hwloc 2>/dev/null && echo y),yes (not used yet),no (apt-get install libhwloc-dev)))
CFG_NVML  := $(call have,NVML,$(if $(wildcard $(CUDA_HOME)/include/nvml.h /usr/include/nvml.h),yes (not used yet),no (nvml.h not found under $(CUDA_HOME)/include or /usr/include: the cuda-nvml-dev package has it)))

config:
	@echo "dmzbench build configuration ($(BUILD)/, git $(GIT_REV))"
	@echo "  cc     : $(shell $(CC) --version | head -1)"
	@echo "  openmp : yes (-fopenmp)"
	@echo "  cuda   : $(CFG_CUDA)"
	@echo "  mpi    : $(CFG_MPI)"
	@echo "  papi   : $(CFG_PAPI)"
	@echo "  hwloc  : $(CFG_HWLOC)"
	@echo "  nvml   : $(CFG_NVML)"
	@echo "  gnuplot: $(if $(shell command -v gnuplot 2>/dev/null),yes,no (figures skipped; apt-get install gnuplot-nox))"

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

build: config $(BIN) $(TEST_BINS) $(BENCH_BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/libdmz.a: $(LIB_OBJS)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(BIN): $(BUILD)/obj/bench/main.o $(BUILD)/libdmz.a
	$(call say,LD,$@)$(CC) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_SUPPORT_OBJS) $(BUILD)/libdmz.a
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) -o $@ $^ $(LDLIBS_ALL) $(shell $(PKG_CONFIG) --libs cmocka) -lpthread

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

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

# PyTorch (Debian's python3-torch) as a peer on the same model, side by side, as ratios.
PEER_PACKAGES := python3-torch python3-pandas
PEER_ARGS ?= --data emnist-balanced --steps 2000 --repeat 3
bench-peer: deps
	@$(MAKE) --no-print-directory DEB_PACKAGES="$(PEER_PACKAGES)" deps
	@$(MAKE) --no-print-directory build
	@/usr/bin/python3 bench/peers/pytorch_mlp.py --dmzbench $(BIN) $(PEER_ARGS)

bench-data: deps
	@$(MAKE) --no-print-directory build
	@$(BUILD)/tests/bench_data

clean:
	rm -rf build build-san

help:
	@sed -n '2,12p' Makefile
