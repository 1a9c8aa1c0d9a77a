# cortexlang: `make demo` to see it work, `make test` to check it, `make typecheck` to check
# the types.
#
# `make setup` is idempotent and fast when nothing changed: system packages are checked on
# every run (cheap) and installed only when missing; the virtual environment is (re)installed
# only when pyproject.toml or this Makefile is newer than its stamp file.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SETUP_STAMP := $(VENV)/.cortexlang-setup
BENCH_STAMP := $(VENV)/.cortexlang-bench
SYSTEM_PACKAGES := pocl-opencl-icd ocl-icd-libopencl1 ocl-icd-opencl-dev clinfo graphviz chromium
POCL_ICD := /etc/OpenCL/vendors/pocl.icd

.PHONY: setup system-packages demo test test-all typecheck bench check-wheel gpu-check \
	lesson-conclusions \
	gpu-wheels clean distclean

setup: system-packages $(SETUP_STAMP)

# OpenCL on the CPU (Debian's PoCL: the PoCL inside the pyopencl wheel cannot build kernels on
# every machine), Graphviz for the pictures, Chromium for screenshots of the HTML explorer.
system-packages:
	@missing=""; \
	command -v dot >/dev/null 2>&1 || missing="$$missing dot"; \
	command -v clinfo >/dev/null 2>&1 || missing="$$missing clinfo"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	test -f $(POCL_ICD) || missing="$$missing $(POCL_ICD)"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	echo "setup: missing:$$missing"; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "setup: not a Debian/Ubuntu system; install an OpenCL ICD (PoCL), clinfo,"; \
		echo "       Graphviz and Chromium with your package manager, then run make again"; \
		exit 0; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	else \
		echo "setup: not root and no sudo; as root run:"; \
		echo "       apt-get update && apt-get install -y $(SYSTEM_PACKAGES)"; \
		exit 0; \
	fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$sudo apt-get update && \
	$$sudo apt-get install -y $(filter-out chromium,$(SYSTEM_PACKAGES)) && \
	{ $$sudo apt-get install -y chromium || \
	  echo "setup: chromium could not be installed; only HTML screenshots need it"; }

# The test extra for `make test`, the dev extra (mypy, ruff) for `make typecheck`.
$(SETUP_STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[test,dev,ray]'
	touch $@

demo: setup
	$(BIN)/cortexlang run examples/treelstm.cx --trees examples/data/sample.ptb
	$(BIN)/cortexlang viz examples/treelstm.cx --trees examples/data/sample.ptb -o out/viz

# `make test`: the default tier, seeded covering sets instead of the full sweeps (the seed is
# printed in the header; `make test PYTEST_ARGS='--seed 1234'` repeats a run). `make test-all`
# adds the tests marked `exhaustive`: every subset of the optimisations, every option set of
# every model, a thousand random programs.
PYTEST_ARGS ?=
# Tests run in one pytest-xdist worker per core (TEST_WORKERS=0 runs them in this process);
# the Ray tests share one worker and so one local cluster (--dist loadgroup).
TEST_WORKERS ?= auto
XDIST = -n $(TEST_WORKERS) --dist loadgroup

test: setup
	$(BIN)/python -m pytest -q $(XDIST) $(PYTEST_ARGS)

test-all: setup
	$(BIN)/python -m pytest -q --all $(XDIST) $(PYTEST_ARGS)

# mypy over the package (the `packages` of [tool.mypy] in pyproject.toml: cortexlang/), then
# over the renderers in viz/, which are installed as cortexlang.viz and so checked apart.
# `make lesson-conclusions`: every lesson twice, as the course's tests run them; exit 1 if a
# conclusion computed from timings differs between the runs (run it on a quiet machine).
lesson-conclusions: setup
	$(BIN)/python scripts/lesson-conclusions

typecheck: setup
	$(BIN)/python -m mypy
	$(BIN)/python -m mypy viz

$(BENCH_STAMP): $(SETUP_STAMP)
	$(BIN)/python -m pip install -e '.[bench]'
	touch $@

bench: setup $(BENCH_STAMP)
	$(BIN)/cortexlang bench

# The compiled backend on a GPU machine where nothing of ours is installed and no package index
# answers (scripts/gpu-check says what it runs; under five minutes). `make gpu-wheels` first,
# on a machine with an index: the Python 3.12 wheels it needs, into .whl/ (carry that folder).
gpu-check:
	bash scripts/gpu-check

GPU_WHEELS := pyopencl==2026.1.4 pytools==2026.1.1 platformdirs==4.14.9 siphash24==1.9 \
	lark==1.3.1 graphviz==0.21
GPU_FALLBACK_WHEELS := numpy==2.4.6 typing_extensions==4.16.0
GPU_PLATFORMS := --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
	--platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
	--platform manylinux2014_x86_64

gpu-wheels: setup
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: $(GPU_PLATFORMS) \
		-d .whl $(GPU_WHEELS)
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: $(GPU_PLATFORMS) \
		-d .whl/fallback $(GPU_FALLBACK_WHEELS)

# Build the wheel, install it into a scratch environment, and check that it carries every
# Python file of the checkout, the grammar (found through importlib.resources), and no
# top-level import name besides cortexlang.
check-wheel: setup
	rm -rf build/check-wheel && mkdir -p build/check-wheel
	$(BIN)/python -m pip wheel . --no-deps -q -w build/check-wheel
	$(PYTHON) -m venv build/check-wheel/venv
	build/check-wheel/venv/bin/python -m pip install -q --no-deps build/check-wheel/*.whl
	cd build/check-wheel && venv/bin/python -I -c "$$CHECK_WHEEL"

define CHECK_WHEEL
import glob, importlib.resources, os, sys, zipfile
[wheel] = glob.glob('*.whl')
names = set(zipfile.ZipFile(wheel).namelist())
grammar = importlib.resources.files('cortexlang.grammar').joinpath('cortex.lark')
os.chdir('../..')
wanted = {path for path in glob.glob('cortexlang/**/*.py', recursive=True)}
wanted |= {'cortexlang/grammar/' + os.path.basename(path)
           for path in glob.glob('grammar/*.py') + glob.glob('grammar/*.lark')}
missing = sorted(wanted - names)
tops = sorted({name.split('/')[0] for name in names if '.dist-info' not in name})
problems = [f'not in the wheel (add its package to pyproject.toml): {path}' for path in missing]
problems += [f'unexpected top-level names in the wheel: {tops}'] if tops != ['cortexlang'] else []
problems += [] if 'site-packages' in str(grammar) and grammar.is_file() else [
    f'the grammar does not resolve inside the installed wheel: {grammar}']
print('\n'.join(problems) or f'{wheel}: {len(names)} files, grammar at {grammar}')
sys.exit(1 if problems else 0)
endef
export CHECK_WHEEL

clean:
	rm -rf build dist out viz-out .pytest_cache .mypy_cache .ruff_cache .hypothesis
	rm -rf *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
