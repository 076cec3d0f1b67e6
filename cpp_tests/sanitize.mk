# The CPU kernels built with AddressSanitizer + UndefinedBehaviorSanitizer and run on the fuzz corpus's shapes
# and values (cpp_tests/sanitize_kernels.cpp). Run from the repository root: `make sanitize-test` (part of
# `make test`). Objects are kept in $(BUILD), so only changed kernels are rebuilt.
BUILD ?= build/sanitize
CXXFLAGS = -std=c++17 -O1 -g -fno-omit-frame-pointer -fno-math-errno -fopenmp -Icsrc \
  -fsanitize=address,undefined -fno-sanitize-recover=all
SOURCES = $(wildcard csrc/kernels/*.cpp)
OBJECTS = $(patsubst csrc/kernels/%.cpp,$(BUILD)/%.o,$(SOURCES))
HEADERS = $(wildcard csrc/kernels/*.h) cpp_tests/check.h

.PHONY: run
run: $(BUILD)/sanitize_kernels
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  OMP_NUM_THREADS=2 $(BUILD)/sanitize_kernels

$(BUILD)/%.o: csrc/kernels/%.cpp $(HEADERS)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(BUILD)/sanitize_kernels: cpp_tests/sanitize_kernels.cpp $(OBJECTS) $(HEADERS)
	$(CXX) $(CXXFLAGS) $< $(OBJECTS) -o $@
