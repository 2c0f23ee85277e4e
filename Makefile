# natmeter: two commands from a fresh clone.
#   make demo   build natmeter and report on the shipped sample events (no AWS account needed)
#   make test   install what the tests need, start the emulators they need, run every test
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
SAMPLE := events/sample
NATMETER := target/debug/natmeter

.PHONY: help demo build test test-rust lint test-infra test-e2e test-package package package-x86_64 package-arm64 smoke-arm64 bench fuzz load clean-tools

help:
	@echo "make demo      build natmeter and print the report of $(SAMPLE)"
	@echo "make test      fmt + clippy + unit/property/CLI tests + Terraform checks + end-to-end (LocalStack)"
	@echo "make package   Lambda zips (arm64 and x86_64) via cargo-lambda"
	@echo "make test-package  the bad-input matrix and the panic test against the packaged x86_64 bootstrap"
	@echo "make smoke-arm64  the end-to-end tests with the arm64 zip under qemu-user"
	@echo "make bench     throughput benchmarks vs a Python handler and the inflate+JSON floor"
	@echo "make fuzz      cargo-fuzz targets (FUZZ_SECONDS each, default 60)"
	@echo "make load      1,000 events through the real bootstrap against LocalStack"

# One compilation serves the lint and the tests. `cargo clippy` is `cargo check` with clippy-driver
# as the compiler of the workspace's crates (RUSTC_WORKSPACE_WRAPPER) and its `-- -D warnings` in
# CLIPPY_ARGS; the same two variables on `cargo build` lint the workspace while building it, so
# the dependencies compile once (built) instead of twice (checked for clippy, then built). Every
# cargo command of `make test` sets them alike, so none rebuilds what another built
# (docs/testing.md §1). `make lint` is the plain `cargo clippy`, for use on its own.
CLIPPY_DRIVER := $(shell rustc --print sysroot 2>/dev/null)/bin/clippy-driver
LINTED := RUSTC_WORKSPACE_WRAPPER=$(CLIPPY_DRIVER) CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

build:
	$(LINTED) $(CARGO) build --workspace --all-targets

demo:
	$(CARGO) build -p natmeter-cli
	$(NATMETER) report --nat-gateways @$(SAMPLE)/nat-gateways.json \
	    --log-format "$$(cat $(SAMPLE)/log-format.txt)" --region us-east-1 $(SAMPLE)/events

# Off the critical path, in the background: the Python environments (LocalStack, moto, checkov:
# minutes of downloads on a fresh clone) while cargo builds, and the packaged x86_64 bootstrap
# (a release build with fat LTO, ~8 minutes on 2 cores) at the lowest priority, on the CPU the
# debug build, the tests and the emulators leave idle. Its log: target/test-package-build.log.
test:
	@mkdir -p target; set -e; \
	( tests/e2e/run.sh --setup-only && tests/infra/run.sh --setup-only ) > target/test-setup.log 2>&1 & setup=$$!; \
	( $(MAKE) -s $(LAMBDA_VENV)/.stamp && nice -n 19 $(MAKE) -s package-x86_64 ) \
	    > target/test-package-build.log 2>&1 & package=$$!; \
	stop() { wait $$setup || true; wait $$package || true; exit 1; }; \
	$(CARGO) fmt --all -- --check || stop; \
	$(MAKE) test-rust || stop; \
	wait $$setup || { echo "make test: installing the test environments failed:"; cat target/test-setup.log; wait $$package || true; exit 1; }; \
	$(MAKE) test-infra test-e2e || stop; \
	wait $$package || { echo "make test: building the package failed:"; tail -50 target/test-package-build.log; exit 1; }; \
	$(MAKE) test-package
	@echo "make test: all passed"

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-rust: build
	$(LINTED) $(CARGO) test --workspace

test-infra: build
	NATMETER_BIN=$(CURDIR)/$(NATMETER) tests/infra/run.sh

test-e2e: build
	NATMETER_BIN=$(CURDIR)/$(NATMETER) BOOTSTRAP_BIN=$(CURDIR)/target/debug/bootstrap tests/e2e/run.sh

# --- packaging: cargo-lambda and zig come from PyPI into .venv-lambda ---------------------------
LAMBDA_VENV := .venv-lambda
$(LAMBDA_VENV)/.stamp:
	python3 -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/pip install -q 'cargo-lambda==1.9.*'
	touch $@

# cargo-lambda's own flags are shown (-v): the artifact's build settings are part of what ships.
package-x86_64: $(LAMBDA_VENV)/.stamp
	rustup target add x86_64-unknown-linux-gnu
	PATH="$(CURDIR)/$(LAMBDA_VENV)/bin:$$PATH" cargo lambda build --release --x86-64 --output-format zip \
	    -p natmeter-lambda --lambda-dir target/lambda/x86_64

package-arm64: $(LAMBDA_VENV)/.stamp
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/$(LAMBDA_VENV)/bin:$$PATH" cargo lambda build --release --arm64 --output-format zip \
	    -p natmeter-lambda --lambda-dir target/lambda/arm64

package: package-arm64 package-x86_64
	mkdir -p target/lambda/bootstrap && cp target/lambda/arm64/bootstrap/bootstrap.zip target/lambda/bootstrap/bootstrap.zip
	@ls -l target/lambda/*/bootstrap/bootstrap.zip target/lambda/bootstrap/bootstrap.zip

# The artifact users deploy, tested: the x86_64 zip from `make package-x86_64`, unzipped, runs the
# function-side bad-input matrix, the panic test and a 75 MB S3 object (its peak memory) through
# the Runtime API (the arm64 zip runs the whole suite under qemu in `make smoke-arm64`).
X86_DIR := target/lambda/x86_64/unzipped
test-package: package-x86_64 build
	rm -rf $(X86_DIR) && mkdir -p $(X86_DIR)
	cd $(X86_DIR) && python3 -c "import zipfile; zipfile.ZipFile('../bootstrap/bootstrap.zip').extractall('.')" && chmod +x bootstrap
	NATMETER_BIN=$(CURDIR)/$(NATMETER) BOOTSTRAP_BIN=$(CURDIR)/$(X86_DIR)/bootstrap NATMETER_E2E_BIG_OBJECT_MB=75 \
	    tests/e2e/run.sh tests/e2e/test_bad_input_matrix.py tests/e2e/test_packaged.py \
	    tests/e2e/test_s3_delivery.py::test_a_large_object_is_streamed_in_bounded_memory

# The arm64 package, run: every end-to-end test with the arm64 bootstrap under qemu-user (the
# portable SWAR paths run for real). qemu and the arm64 C library come from Debian's apt.
ARM64_DIR := target/lambda/arm64/unzipped
smoke-arm64: package build
	@command -v qemu-aarch64 >/dev/null && [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || \
	    { apt-get update -q && apt-get install -y -q qemu-user libc6-arm64-cross; }
	rm -rf $(ARM64_DIR) && mkdir -p $(ARM64_DIR)
	cd $(ARM64_DIR) && unzip -q ../bootstrap/bootstrap.zip
	NATMETER_BIN=$(CURDIR)/$(NATMETER) BOOTSTRAP_BIN=$(CURDIR)/$(ARM64_DIR)/bootstrap \
	    BOOTSTRAP_WRAPPER="qemu-aarch64 -L /usr/aarch64-linux-gnu" tests/e2e/run.sh

# --- performance, fuzzing, load --------------------------------------------------------------
bench:
	$(CARGO) build --release -p natmeter-cli
	target/release/natmeter bench --corpus-mb $${CORPUS_MB:-200}

FUZZ_SECONDS ?= 60
FUZZ_TARGETS := subscription format record pipeline scan inventory ipranges
.tools/bin/cargo-fuzz:
	$(CARGO) install --locked --root .tools cargo-fuzz

fuzz: .tools/bin/cargo-fuzz
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	    mkdir -p corpus/$$t; \
	    RUSTC_BOOTSTRAP=1 ../.tools/bin/cargo-fuzz run $$t corpus/$$t seeds/$$t -- \
	        -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 || exit 1; \
	done

load: build
	NATMETER_BIN=$(CURDIR)/$(NATMETER) BOOTSTRAP_BIN=$(CURDIR)/target/debug/bootstrap tests/e2e/load.sh

clean-tools:
	rm -rf .venv .venv-infra .venv-lambda .tools
