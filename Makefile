# Two commands set up a fresh machine:  make demo  (the main job)  and  make test.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
UNISEG := $(VENV)/bin/uniseg
OUT    ?= runs/demo

.PHONY: install demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0   # the CPU build first, so nothing pulls CUDA wheels
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# The main job on the embedded default: build the synthetic road world, check it, build the
# union of the four training datasets and remap their labels into it.
demo: $(VENV)/.installed
	$(UNISEG) data synth --out $(OUT)/synth
	$(UNISEG) data check cityscapes $(OUT)/synth/cityscapes
	$(UNISEG) labels union cityscapes bdd idd mapillary --out $(OUT)/union
	$(UNISEG) labels remap --dataset mapillary --union $(OUT)/union $(OUT)/synth/mapillary --out $(OUT)/unified/mapillary

test: $(VENV)/.installed
	$(PY) -m pytest

bench: $(VENV)/.installed
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
