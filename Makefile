# imagebuild: build, test, demo, SDK and benchmarks. `make test` and `make demo` set up a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ENV := source scripts/env.sh
PLUGIN := target/debug/pulumi-resource-imagebuild
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

.PHONY: setup setup-engine20-first build dist sdk-dist lint lint-code lint-workflows unit-test rust-test rust-test-engine20 rust-test-engine29 rust-test-buildkit e2e-test test demo sdk sdk-check sdk-install bench bench-plugin bench-monorepo bench-slots bench-cache clean-state

setup:
	scripts/setup.sh

# What the Engine 20.10 suites need; the Go tools go on building in the background (scripts/setup.sh).
setup-engine20-first:
	scripts/setup.sh --engine20-first

build:
	cargo build --bins

lint: lint-code lint-workflows

lint-code:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	shellcheck -x -P SCRIPTDIR -S warning scripts/*.sh examples/*.sh tests/codebuild_double/*.sh

lint-workflows:
	$(ENV) && scripts/build-actionlint.sh >/dev/null && "$$IMAGEBUILD_ACTIONLINT_DIR/actionlint" .github/workflows/*.yml

# Unit tests and the Rust integration tests (real dockerd, registry, moto, CodeBuild double).
rust-test: rust-test-engine20 rust-test-engine29 rust-test-buildkit

# Suites that always build on Engine 29 whatever DOCKER_HOST says: rust-test-engine29 runs them.
ENGINE29_SUITES := local_cache_export local_named_contexts
# Suites on the standalone BuildKit daemon: rust-test-buildkit runs them.
BUILDKIT_SUITES := builder_buildkit builder_buildkit_cache
ENGINE20_SUITES := $(filter-out $(ENGINE29_SUITES) $(BUILDKIT_SUITES),$(basename $(notdir $(wildcard tests/*.rs))))

# Everything but ENGINE29_SUITES against Engine 20.10: needs no Go tool but buildx (the reads
# oracle), which it compiles beside; so `make test` runs it while the other tools still build.
rust-test-engine20: build
	cargo test --no-run --lib --bins $(addprefix --test ,$(ENGINE20_SUITES))
	$(ENV) && scripts/build-buildx.sh >/dev/null && tests/codebuild_double/start.sh \
	  && cargo test --lib --bins $(addprefix --test ,$(ENGINE20_SUITES)) -- --test-threads=2 \
	  && cargo test --doc

# Every local engine suite, the reads oracle (with heredocs, COPY --exclude and named contexts)
# and the base-image pins against the second daemon, Docker Engine 29 (containerd image store,
# BuildKit v0.33), with the same assertions as on Engine 20.10: part of `make test`.
rust-test-engine29: build
	$(ENV) && DOCKER_HOST="$$IMAGEBUILD_TEST_DOCKER29_HOST" IMAGEBUILD_READS_ORACLE_CASES=300 \
	  cargo test --no-fail-fast --test 'local_*' --test plan_buildkit_oracle --test plan_base_pins \
	  -- --test-threads=2

sdk:
	$(ENV) && scripts/gen-sdk.sh sdk-python

# Fails when the committed SDK differs from what the schema generates.
sdk-check:
	$(ENV) && scripts/gen-sdk.sh "$$(mktemp -d)/sdk" --compare sdk-python

# Release files in dist/: the linux-amd64 plugin archive (one release build), the SDK wheel and
# sdist, and their SHA-256 checksums; scripts/dist.py fails when the versions disagree.
dist:
	cargo build --release --bins
	$(ENV) && python scripts/dist.py --binary target/release/pulumi-resource-imagebuild --out dist

# The SDK wheel and sdist alone (python -m build), into dist/.
sdk-dist:
	$(ENV) && python scripts/dist.py --sdk-only --out dist

# The tests and the demo use the SDK as users get it: installed from its wheel.
sdk-install: sdk-dist
	$(ENV) && pip install -q --force-reinstall --no-deps dist/pulumi_imagebuild-$(VERSION)-py3-none-any.whl

# ContainerImage's engine on a standalone BuildKit daemon (`builder`): unix socket and mTLS TCP.
# One binary at a time (cargo's default): the cache suite empties the builder's cache.
rust-test-buildkit: build
	$(ENV) && scripts/build-buildkit.sh && scripts/start-buildkitd.sh \
	  && cargo test --no-fail-fast $(addprefix --test ,$(BUILDKIT_SUITES)) -- --test-threads=2

# End-to-end tests: the real Pulumi CLI drives the plugin from Python programs (test_builder.py
# on the standalone BuildKit daemon).
e2e-test: build sdk-install
	$(ENV) && tests/codebuild_double/start.sh && scripts/build-buildkit.sh && scripts/start-buildkitd.sh \
	  && pytest -q tests/e2e

# In this order (make runs prerequisites left to right): the Engine 20.10 part first, while the Go
# tools build in the background, then the rest of set-up (it waits for them) and the suites that need them.
test: setup-engine20-first lint-code rust-test-engine20 setup lint-workflows rust-test-engine29 rust-test-buildkit sdk-check e2e-test

demo: setup build sdk-install
	$(ENV) && examples/run-demo.sh

# The benches run the plugin users run: the release build (IMAGEBUILD_PLUGIN_DIR, tests/e2e/conftest.py).
BENCH_PLUGIN := IMAGEBUILD_PLUGIN_DIR=target/release

bench-plugin:
	cargo build --release --bins

bench: setup bench-plugin
	$(ENV) && cargo bench --bench context
	$(ENV) && cargo bench --bench local
	$(ENV) && cargo bench --bench remote
	$(ENV) && tests/codebuild_double/start.sh && $(BENCH_PLUGIN) python tests/e2e/bench_fast_wait.py
	$(ENV) && $(BENCH_PLUGIN) python benches/monorepo/bench.py
	$(ENV) && $(BENCH_PLUGIN) python benches/monorepo/slots.py
	$(ENV) && $(BENCH_PLUGIN) python benches/monorepo/cache.py

# The monorepo workload: pulumi up vs a sequential and a parallel docker build loop (benches/monorepo/README.md).
bench-monorepo: setup bench-plugin
	$(ENV) && $(BENCH_PLUGIN) python benches/monorepo/bench.py

# Which default number of build slots serves that workload (benches/monorepo/slots.py).
bench-slots: setup bench-plugin
	$(ENV) && $(BENCH_PLUGIN) python benches/monorepo/slots.py

# A fresh CI runner after a shared package changed, with and without `cacheTo` (Engine 29).
bench-cache: setup bench-plugin
	$(ENV) && $(BENCH_PLUGIN) python benches/monorepo/cache.py

clean-state:
	rm -rf tests/.state examples/.pulumi-state examples/*/.pulumi-state
