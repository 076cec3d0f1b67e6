# The two quick-start commands: `make demo` (install, then the main job) and `make test` (install, then the
# whole test suite). Both build the CUDA kernels when a CUDA toolkit is present (no GPU needed to compile).
PYTHON ?= python3
CUDA_HOME ?= $(wildcard /usr/local/cuda)
export CUDA_HOME
export TORCH_CUDA_ARCH_LIST ?= 8.0;9.0
export MAX_JOBS ?= 2

.PHONY: install demo test cpp-test

install:
	$(PYTHON) -m pip install -q "torch==2.14.1" ninja setuptools wheel
	$(PYTHON) -m pip install -q --no-build-isolation -e ".[test,image]"

demo: install
	pydenoise info
	$(PYTHON) -m pydenoise.demo

test: install
	$(PYTHON) -m pytest -q
	$(MAKE) cpp-test

cpp-test:
	cmake -S . -B build/cmake -DCMAKE_BUILD_TYPE=Release > /dev/null
	cmake --build build/cmake -j 2 > /dev/null
	ctest --test-dir build/cmake --output-on-failure
