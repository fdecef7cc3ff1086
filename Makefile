# The two commands of the README: `make demo` and `make test`. Both set up everything
# themselves on a fresh Debian 12 machine.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
PARALLAX := $(BUILD_DIR)/parallax
# libFuzzer entries (tests/fuzz/README.md): their own clang build, each run FUZZ_SECONDS.
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 20

.PHONY: all deps js-deps configure build test demo bench fuzz clean

all: build

deps:
	bash scripts/install-deps.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The JavaScript references and tokenizer files the conformance tests use (pinned, cached);
# the e2e client installs its own packages (tests/e2e/run.sh).
js-deps:
	bash scripts/fetch-test-data.sh

test: build js-deps
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

$(FUZZ_DIR)/build.ninja:
	cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DPARALLAX_BUILD_FUZZ=ON -DPARALLAX_BUILD_TESTS=OFF

# Builds every entry and runs each over its seed corpus for a smoke test (CI); long runs:
# tests/fuzz/run.sh $(FUZZ_DIR) 600 ENTRY.
fuzz: deps $(FUZZ_DIR)/build.ninja
	cmake --build $(FUZZ_DIR) -j $(JOBS) --target fuzzers
	bash tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS)

demo: build
	bash scripts/demo.sh $(PARALLAX)

clean:
	rm -rf $(BUILD_DIR) $(FUZZ_DIR)
