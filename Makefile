# Thin wrapper: the build is CMake's, the tests are CTest's.
BUILD ?= build
SAN   ?= build-asan
JOBS  ?= $(shell nproc)
PORT  ?= 8080
PREFIX ?= /usr/local

# Configures and builds tree $(1) with cmake flags $(2). What cmake says goes
# to $(1)/build.log, shown whole when it fails. The terminal gets one short
# line of what is being done when there is something to do (the first build
# takes minutes): configuring a new tree, how far the build is; nothing when
# everything is built already.
define cmake_build
	@mkdir -p $(1)
	@[ -f $(1)/CMakeCache.txt ] || echo "configuring $(1)/ (cmake)"
	@cmake -S . -B $(1) $(2) >$(1)/build.log 2>&1 || { cat $(1)/build.log; exit 1; }
	@{ cmake --build $(1) -j $(JOBS) 2>&1; echo "cmake-build-exit $$?"; } | awk -v tree=$(1) -v start=$$(date +%s) '\
	  $$1 == "cmake-build-exit" { status = $$2; next } \
	  { print >> (tree "/build.log") } \
	  /^\[ *[0-9]+%\] (Building|Linking)/ && !said { \
	    printf "building %s/ (%s jobs, log %s/build.log):", tree, $(JOBS), tree; said = 1 } \
	  /^\[ *[0-9]+%\]/ && said { \
	    pct = substr($$0, 2, index($$0, "%") - 2) + 0; \
	    while (pct >= shown + 10 && shown < 100) { shown += 10; printf " %d%%", shown } \
	    fflush() } \
	  END { close(tree "/build.log"); \
	    if (said) { "date +%s" | getline now; printf "%s\n", status ? " failed" : sprintf(", done in %ds", now - start) } \
	    exit status }' \
	  || { cat $(1)/build.log; exit 1; }
endef
# Runs ctest in tree $(1): what it runs, then the summary on success, or
# everything on failure.
define ctest_quiet
	@cd $(1) && printf 'testing %s/ (%s tests, %s at once)... ' $(1) "$$(ctest -N $(CTEST_ARGS) | sed -n 's/^Total Tests: //p')" $(JOBS) \
	  && { ctest -j $(JOBS) --output-on-failure $(CTEST_ARGS) >ctest.log 2>&1 \
	  && grep -E "tests passed" ctest.log || { echo; cat ctest.log; exit 1; }; }
endef

.PHONY: all deps build build-asan test unit e2e run run-php install bench fuzz clean
all: build
deps:
	@scripts/install-deps
build: deps
	$(call cmake_build,$(BUILD),-DCMAKE_BUILD_TYPE=RelWithDebInfo)
# The same sources with AddressSanitizer and UBSan (any finding fails the test).
build-asan: deps
	$(call cmake_build,$(SAN),-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSESSIOND_SANITIZE=ON)
# Every test, in the normal build and again under the sanitizers.
test: build build-asan
	$(call ctest_quiet,$(BUILD))
	$(call ctest_quiet,$(SAN))
unit: build
	@cd $(BUILD) && ctest -j $(JOBS) --output-on-failure -L unit
e2e: build
	@cd $(BUILD) && ctest -j $(JOBS) --output-on-failure -L e2e
# The demo on http://127.0.0.1:$(PORT)/ (make run PORT=8081); Ctrl-C stops it.
run: build
	@PORT=$(PORT) scripts/demo $(BUILD)/sessiond
# The same demo in PHP (sample_php/), in a php-fpm of its own behind sessiond.
run-php: build
	@PORT=$(PORT) scripts/demo --php $(BUILD)/sessiond
# bin/sessiond, the man page, the units, the snippets and the example config
# under $(PREFIX) (make install PREFIX=/usr DESTDIR=/tmp/pkg for a package).
install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)
# Not a test: prints figures and writes bench/results/ (a table and its chart); see bench/run for settings.
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
	rm -rf $(BUILD) $(SAN) build-fuzz var
