# Thin wrapper: the build is CMake's, the tests are CTest's.
BUILD ?= build
JOBS  ?= $(shell nproc)

.PHONY: all deps build test unit e2e run clean
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
clean:
	rm -rf $(BUILD) var
