# Every user-facing command. `make help` lists them.
# Variables passed to the scripts: EPOCHS DATASET DATA_DIR DEVICE OUT RESUME (a run folder) ARGS (extra flags, quoted),
# NPROC (CPU threads, as OMP_NUM_THREADS) and NGPU (processes on this node, through torchrun).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
READY  := $(VENV)/.ready

SCRIPT_ARGS = $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(DATASET),--dataset $(DATASET)) \
              $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(if $(DEVICE),--device $(DEVICE)) \
              $(if $(OUT),--out $(OUT)) $(if $(RESUME),--resume $(RESUME)) $(ARGS)
RUN = $(if $(NPROC),OMP_NUM_THREADS=$(NPROC)) PYTHONUNBUFFERED=1 $(PY)
# Training scripts: one process, or NGPU processes on this node through torchrun (DDP).
TRAIN = $(if $(NGPU),$(if $(NPROC),OMP_NUM_THREADS=$(NPROC)) PYTHONUNBUFFERED=1 $(VENV)/bin/torchrun --standalone \
        --nproc_per_node $(NGPU),$(RUN))

.PHONY: help setup lint test smoke bench report gpu-check gpu-carry cifar-ln cifar-ln-check cifar-transfer catsdogs \
        inaturalist inaturalist-sweep inaturalist-data clean clean-runs

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 20

# The venv is built once, and again only when requirements.txt changes.
$(READY): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

setup: $(READY)  ## build .venv from requirements.txt (done automatically by every target)

lint: $(READY)  ## ruff: pyflakes, pycodestyle, import order, bugbear (the rules: pyproject.toml)
	$(VENV)/bin/ruff check .

test: $(READY)  ## fast CPU test suite
	$(PY) -m pytest

smoke: $(READY)  ## every task, tiny, on synthetic data, on the CPU -> runs/smoke/<task>/, then runs/smoke/report/
	rm -rf runs/smoke
	$(RUN) task_resnet_ln/train.py --dataset synthetic --subset 1500 --width 8 --epochs 3 --batch-size 32 \
	    --device cpu --out runs/smoke/task_resnet_ln
	$(RUN) task_resnet_ln/eval.py --checkpoint runs/smoke/task_resnet_ln/checkpoint.pt --device cpu
	@# task_cifar_transfer: every part. Configs 1 and 3 of (b); config 3 "pretrained" from a stand-in
	@# weights file (a random torchvision resnet18, NOT ImageNet; TORCHVISION_WEIGHTS_DIR: your own files, not
	@# hash-checked) so that the weights path runs offline.
	$(PY) -c "import pathlib, torch, torchvision; p = pathlib.Path('runs/smoke/weights'); \
	    p.mkdir(parents=True, exist_ok=True); torch.manual_seed(0); torch.save(torchvision.models.resnet18().state_dict(), p / 'resnet18-f37072fd.pth')"
	TORCHVISION_WEIGHTS_DIR=runs/smoke/weights $(RUN) task_cifar_transfer/train.py --dataset synthetic --subset 600 --width 8 \
	    --epochs 2 --batch-size 32 --warmup-epochs 0.5 --configs 1 3 --tiny-train 300 --tiny-test 100 \
	    --device cpu --out runs/smoke/task_cifar_transfer
	$(RUN) task_cifar_transfer/eval.py --checkpoint runs/smoke/task_cifar_transfer/b/config3-32px/checkpoint.pt \
	    --activations --device cpu
	@# task_catsdogs: two seeds of the twin experiment on a generated folder of stripes (JPEG and PNG of 40-120 px,
	@# gray, CMYK and RGBA files, a truncated JPEG and a text file named .jpg), 32 px, no checkpoints (190 MB each).
	$(RUN) -m common.export_folder synthetic --per-class 16 --odd-files --out runs/smoke/catsdogs_folder
	$(RUN) task_catsdogs/train.py --dataset folder --data-dir runs/smoke/catsdogs_folder --image-size 32 \
	    --train-size 16 --val-size 4 --test-size 8 --epochs 2 --batch-size 8 --seeds 0 1 --no-checkpoints \
	    --device cpu --out runs/smoke/task_catsdogs
	@# task_inaturalist: a 2-trial sweep, the best configuration retrained and tested once, and part B's head-only
	@# strategy from a stand-in weights file (a random torchvision resnet50, NOT ImageNet), on a generated 10-class
	@# folder in the iNaturalist layout (train/, val/), 32 px.
	$(PY) -c "import pathlib, torch, torchvision; p = pathlib.Path('runs/smoke/weights'); \
	    torch.manual_seed(0); torch.save(torchvision.models.resnet50().state_dict(), p / 'resnet50-11ad3fa6.pth')"
	$(RUN) -m common.export_folder synthetic --classes 10 --per-class 8 --test-per-class 3 --odd-files \
	    --out runs/smoke/inaturalist_folder
	$(RUN) task_inaturalist/train.py --sweep --trials 2 --dataset folder --data-dir runs/smoke/inaturalist_folder \
	    --image-size 32 --epochs 2 --device cpu --out runs/smoke/task_inaturalist/sweep
	TORCHVISION_WEIGHTS_DIR=runs/smoke/weights $(RUN) task_inaturalist/train.py \
	    --config runs/smoke/task_inaturalist/sweep/best_config.json --dataset folder \
	    --data-dir runs/smoke/inaturalist_folder --image-size 32 --epochs 2 --strategies head --ft-epochs 1 \
	    --ft-batch-size 16 --device cpu --out runs/smoke/task_inaturalist/run
	$(RUN) task_inaturalist/eval.py --checkpoint runs/smoke/task_inaturalist/run/a/checkpoint.pt --device cpu
	$(RUN) -m report --runs runs/smoke --out runs/smoke/report

# RUNS: a folder to search (default runs/, where runs/smoke is skipped), or run folders ("dir1 dir2").
report: $(READY)  ## every task's latest run beside the original reports -> runs/report/index.html, REPORT.md (RUNS, OUT)
	$(RUN) -m report $(if $(RUNS),--runs $(RUNS)) --out $(or $(OUT),runs/report)

# Pass DEVICE=cuda ARGS=--compile on a GPU. Run it on a quiet machine: on the CPU, another busy process
# makes the OpenMP threads wait on each other and every figure falls (we saw 100x on 2 cores).
bench: $(READY)  ## speed: ours vs the original pipeline -> docs/BENCHMARKS.md, docs/bench-<device>.json
	$(RUN) bench/bench.py $(if $(DEVICE),--device $(DEVICE)) $(ARGS)

# make gpu-check runs without the venv, on the GPU machine's own Python (torch >= 2.11, torchvision >= 0.26) with
# what it lacks carried in: CARRY (default .carry/, filled by `make gpu-carry` on a machine with network) holds
# wheels/ (unpacked into site/, put on PYTHONPATH), fashion-mnist/ and COMMIT. GPU_PYTHON: that Python (default: .venv's if built, else
# python3). DEVICE=cpu: the dry run, tiny, on the CPU. ARGS: e.g. --budget 300, --only bench.
CARRY      ?= .carry
CARRY_PY   ?= 3.12
GPU_PYTHON ?= $(if $(wildcard $(PY)),$(PY),python3)
gpu-check:  ## every GPU question in one command, <= 8 min on one H100/H200 -> docs/gpu-check.json, docs/GPU-CHECK.md
	@if [ -d $(CARRY)/wheels ]; then rm -rf $(CARRY)/site && for w in $(CARRY)/wheels/*.whl; do \
	    $(GPU_PYTHON) -m zipfile -e "$$w" $(CARRY)/site || exit 1; done; echo "unpacked $(CARRY)/wheels into $(CARRY)/site"; fi
	PYTHONPATH=$(CARRY)/site$(if $(PYTHONPATH),:$(PYTHONPATH)) PYTHONUNBUFFERED=1 $(GPU_PYTHON) bench/gpu_check.py \
	    $(if $(DEVICE),--device $(DEVICE)) --carry $(CARRY) \
	    --data-dir $(or $(DATA_DIR),$(if $(wildcard $(CARRY)/fashion-mnist),$(CARRY)/fashion-mnist,/usr/share/datasets/fashion-mnist)) $(ARGS)

gpu-carry: $(READY)  ## what gpu-check needs on an offline GPU machine -> CARRY (.carry/; CARRY_PY: its Python version)
	$(PY) bench/gpu_check.py --make-carry $(CARRY) --carry-python $(CARRY_PY) \
	    --data-dir $(or $(DATA_DIR),/usr/share/datasets/fashion-mnist)

cifar-ln:  $(READY)  ## ResNet-18 with LayerNorm everywhere on CIFAR-10 (EPOCHS=40; RESUME=run folder, NGPU=4)
	$(TRAIN) task_resnet_ln/train.py $(SCRIPT_ARGS)

# The width-64 check: two CPU epochs on 6,000 Fashion-MNIST images with the default recipe; passes at
# >= 61.2% validation with no step loss above 3.0 (task_resnet_ln/README.md). About 15 min on 2 cores.
CHECK_DIR ?= runs/cifar-ln-check
cifar-ln-check: $(READY)  ## does cifar-ln learn at full width? (width 64, 2 CPU epochs, Fashion-MNIST)
	$(RUN) task_resnet_ln/train.py --dataset fashion-mnist --data-dir $(or $(DATA_DIR),/usr/share/datasets/fashion-mnist) \
	    --subset 6000 --epochs 2 --device cpu --out $(CHECK_DIR) $(ARGS)
	$(PY) task_resnet_ln/check_full_width.py $(CHECK_DIR)

# PART=a|b|c runs one part; PART=d saves the activation maps of a trained part-(a) or part-(b) model,
# CHECKPOINT=path/checkpoint.pt (default: the newest part-(a) run under runs/task_cifar_transfer/).
PART ?= all
CHECKPOINT ?= $(lastword $(sort $(wildcard runs/task_cifar_transfer/*/a/checkpoint.pt)))

cifar-transfer: $(READY)  ## ResNet-18: scratch, transfer, augmentation study, activation maps (PART=a|b|c|d)
ifeq ($(PART),d)
	$(RUN) task_cifar_transfer/eval.py --activations --checkpoint "$(CHECKPOINT)" \
	    $(if $(DEVICE),--device $(DEVICE)) $(if $(OUT),--out $(OUT)) $(ARGS)
else
	$(TRAIN) task_cifar_transfer/train.py $(if $(RESUME),,--part $(PART)) $(SCRIPT_ARGS)
endif

# Oxford-IIIT Pet by default (downloaded into DATA_DIR, default data/); any two-class folder with
# DATASET=folder DATA_DIR=path/PetImages. Five seeds (0 1 2 3 4, train.py's default) unless ARGS="--seeds 0"
# (one); RESUME=<run folder> continues a run with its own.
catsdogs: $(READY)  ## cats vs dogs: twin ResNet-50s, 3-of-10 augmentation, 5 seeds, paired difference (DATASET=folder)
	$(TRAIN) task_catsdogs/train.py $(SCRIPT_ARGS)

# iNaturalist-12K in DATA_DIR (default data/: inaturalist_12K/, or nature_12K.zip, unpacked on first use).
# Part A runs the original's best configuration unless ARGS="--config runs/task_inaturalist/sweep/best_config.json".
inaturalist: $(READY)  ## iNaturalist: the 5-block CNN (part A), then ResNet-50 fine-tuning strategies (part B)
	$(TRAIN) task_inaturalist/train.py $(SCRIPT_ARGS)

# The study lives in OUT (default runs/task_inaturalist/sweep/study.db): the same command continues it up to TRIALS
# finished trials. Many machines on one study: OPTUNA_STORAGE=postgresql://user:password@host/db in each one's
# environment (kept out of the command line, `ps` and config.json). The command is echoed with any password hidden.
# Each trial trains EPOCHS epochs (default 10 here, not part A's 40).
TRIALS ?= 20
SWEEP = $(RUN) task_inaturalist/train.py --sweep --trials $(TRIALS) $(if $(EPOCHS),,--epochs 10) $(SCRIPT_ARGS)
inaturalist-sweep: $(READY)  ## part A's optuna sweep: TRIALS=20 trials of EPOCHS=10 -> trials.csv, best_config.json, plots
	@echo '$(SWEEP)' | sed -E 's#(://[^:/@ ]*):[^/@ ]*@#\1:***@#g'
	@$(SWEEP)

inaturalist-data: $(READY)  ## download and unpack nature_12K.zip into DATA_DIR (offline: says where to put it)
	$(RUN) task_inaturalist/data.py --data-dir $(or $(DATA_DIR),data)

clean:  ## remove caches only (__pycache__, .pytest_cache); keeps runs/, data/ and .venv
	rm -rf .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

clean-runs:  ## DELETE runs/: every trained model, result and sweep study in it (asks nothing)
	rm -rf runs
