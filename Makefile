# Every user-facing command. `make help` lists them.
# Variables passed to the scripts: EPOCHS DATASET DATA_DIR DEVICE OUT ARGS (extra flags, quoted),
# and NPROC (CPU threads, as OMP_NUM_THREADS).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
READY  := $(VENV)/.ready

SCRIPT_ARGS = $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(DATASET),--dataset $(DATASET)) \
              $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(if $(DEVICE),--device $(DEVICE)) \
              $(if $(OUT),--out $(OUT)) $(ARGS)
RUN = $(if $(NPROC),OMP_NUM_THREADS=$(NPROC)) PYTHONUNBUFFERED=1 $(PY)

.PHONY: help setup test smoke cifar-ln clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

# The venv is built once, and again only when requirements.txt changes.
$(READY): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

setup: $(READY)  ## build .venv from requirements.txt (done automatically by every target)

test: $(READY)  ## fast CPU test suite
	$(PY) -m pytest

smoke: $(READY)  ## every task, tiny, on synthetic data, on the CPU -> runs/smoke/<task>/
	rm -rf runs/smoke
	$(RUN) task_resnet_ln/train.py --dataset synthetic --subset 1500 --width 8 --epochs 3 --batch-size 32 \
	    --device cpu --out runs/smoke/task_resnet_ln
	$(RUN) task_resnet_ln/eval.py --checkpoint runs/smoke/task_resnet_ln/checkpoint.pt --device cpu

cifar-ln:  $(READY)  ## ResNet-18 with LayerNorm everywhere on CIFAR-10 (EPOCHS=40 by default)
	$(RUN) task_resnet_ln/train.py $(SCRIPT_ARGS)

clean:  ## remove runs/ and caches (keeps .venv and data/)
	rm -rf runs .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
