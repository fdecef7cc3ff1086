# The two commands of the README: `make demo` and `make test`. Both set up everything
# themselves on a fresh Debian 12 machine.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
PARALLAX := $(BUILD_DIR)/parallax

.PHONY: all deps js-deps configure build test demo bench clean

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

demo: build
	bash scripts/demo.sh $(PARALLAX)

clean:
	rm -rf $(BUILD_DIR)
