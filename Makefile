# Thin wrapper: the build is CMake's, the tests are CTest's.
BUILD ?= build
JOBS  ?= $(shell nproc)

.PHONY: all deps build test unit e2e run bench fuzz clean
all: build
deps:
	@scripts/install-deps
build: deps
	@mkdir -p $(BUILD)
	@{ cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build $(BUILD) -j $(JOBS); } \
	  >$(BUILD)/build.log 2>&1 || { cat $(BUILD)/build.log; exit 1; }
# Quiet on success (the summary only); everything on failure.
test: build
	@cd $(BUILD) && { ctest -j $(JOBS) --output-on-failure $(CTEST_ARGS) >ctest.log 2>&1 \
	  && grep -E "tests passed|^Total Test time" ctest.log || { cat ctest.log; exit 1; }; }
unit: build
	@cd $(BUILD) && ctest -j $(JOBS) --output-on-failure -L unit
e2e: build
	@cd $(BUILD) && ctest -j $(JOBS) --output-on-failure -L e2e
run: build
	@scripts/demo $(BUILD)/sessiond
# Not a test: prints figures and writes bench/results/; see bench/run for settings.
bench: build
	@bench/run $(BUILD)
# The parsers under libFuzzer with ASan/UBSan, 60 s (FUZZ_SECONDS); not part of make test.
fuzz:
	@scripts/install-deps clang libclang-rt-14-dev
	@cmake -S . -B build-fuzz -DSESSIOND_FUZZ=ON -DSESSIOND_SANITIZE=ON -DCMAKE_CXX_COMPILER=clang++ >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target parsers_fuzz >/dev/null
	@mkdir -p build-fuzz/corpus && build-fuzz/parsers_fuzz -max_total_time=$(or $(FUZZ_SECONDS),60) \
	  -print_final_stats=1 build-fuzz/corpus tests/fuzz/seeds 2>&1 | tail -n 12
clean:
	rm -rf $(BUILD) build-fuzz var
