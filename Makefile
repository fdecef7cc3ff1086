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

# The JavaScript references (@huggingface/jinja, tokenizer data) for conformance tests; the
# e2e client installs its own packages (tests/e2e/run.sh).
js-deps:
	@if command -v npm >/dev/null 2>&1; then \
	  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then \
	    npm ci --no-audit --no-fund --loglevel=error; fi; \
	else echo "js-deps: npm not found; JavaScript conformance tests will be skipped"; fi

test: build js-deps
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

demo: build
	bash scripts/demo.sh $(PARALLAX)

clean:
	rm -rf $(BUILD_DIR)
