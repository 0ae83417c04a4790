# Two commands set up a fresh machine:  make demo  (the main job)  and  make test.
VENV          ?= .venv
PYTHON        ?= python3
PY            := $(VENV)/bin/python
UNISEG        := $(VENV)/bin/uniseg
OUT           ?= runs/demo
TORCH_VERSION ?= 2.13.0
# Empty: pip's usual index. https://download.pytorch.org/whl/cpu gives a small CPU-only build
# anywhere; https://download.pytorch.org/whl/cu126 (etc.) a given CUDA build.
TORCH_INDEX   ?=

.PHONY: install demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==$(TORCH_VERSION) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))   # torch first, so the project's pin cannot pull another build
	$(PY) -m pip install -q -e '.[dev]' torch==$(TORCH_VERSION) $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))   # torch named again: timm's torchvision must match it, not replace it
	touch $@

install: $(VENV)/.installed

# The main job on the embedded default: the whole UniSeg method on the synthetic road world
# (CE baseline, Null BCE, relation mining, class-relational BCE, unseen-dataset Table 1).
demo: $(VENV)/.installed
	$(UNISEG) demo --out $(OUT)

test: $(VENV)/.installed
	$(PY) -m pytest

bench: $(VENV)/.installed
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
