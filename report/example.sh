#!/usr/bin/env bash
# The committed example report (docs/example-report/): the four tasks as short CPU runs on Fashion-MNIST,
# not on the assignments' datasets, then the report built from them (its time: report/README.md).
# On cores shared with other jobs, OMP_NUM_THREADS=1 bash report/example.sh avoids stalled threads.
#
#   bash report/example.sh                 # PY=path/to/python to use another interpreter
#
# Needs Debian's Fashion-MNIST (apt-get install -y dataset-fashion-mnist). No ImageNet weights are used:
# task_cifar_transfer runs only config 1 of part (b) (from scratch), and task_inaturalist skips part B,
# so the report shows those parts as "not run yet".
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
FM=${FM:-/usr/share/datasets/fashion-mnist}
OUT=runs/example
CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
rm -rf "$OUT"
mkdir -p "$OUT"

step() {  # step NAME COMMAND...: run it, log it, and time it
  local name=$1 start=$SECONDS
  shift
  echo "== $name: $*"
  "$@" > "$OUT/$name.log" 2>&1 || { tail -20 "$OUT/$name.log"; exit 1; }
  echo "   $((SECONDS - start)) s" | tee -a "$OUT/durations.txt"
}

step resnet_ln $PY task_resnet_ln/train.py --dataset fashion-mnist --data-dir "$FM" --subset 12000 --width 16 \
    --epochs 4 --device cpu --out $OUT/task_resnet_ln
step cifar_transfer $PY task_cifar_transfer/train.py --dataset fashion-mnist --data-dir "$FM" --subset 10000 \
    --width 16 --epochs 2 --batch-size 128 --lr 0.05 --warmup-epochs 0.3 --configs 1 --tiny-train 1000 \
    --tiny-test 500 --device cpu --out $OUT/task_cifar_transfer
# (c) again with more steps (16 at batch 128 learnt nothing): the report takes the latest run of each part
step cifar_transfer_c $PY task_cifar_transfer/train.py --part c --dataset fashion-mnist --data-dir "$FM" --width 16 \
    --epochs 4 --batch-size 64 --lr 0.05 --warmup-epochs 0.5 --tiny-train 1000 --tiny-test 500 --dropouts 0.0 0.2 0.4 \
    --device cpu --out $OUT/task_cifar_transfer_c
step export_catsdogs $PY -m common.export_folder fashion-mnist --data-dir "$FM" --classes 0 6 --per-class 300 \
    --out $OUT/fashion-mnist_tshirt_vs_shirt
step catsdogs $PY task_catsdogs/train.py --dataset folder --data-dir $OUT/fashion-mnist_tshirt_vs_shirt \
    --image-size 32 --seeds 0 1 2 --no-checkpoints --device cpu --out $OUT/task_catsdogs
step export_inaturalist $PY -m common.export_folder fashion-mnist --data-dir "$FM" --classes 0 1 2 3 4 5 6 7 8 9 \
    --per-class 500 --test-per-class 100 --out $OUT/fashion-mnist_10_classes
step inaturalist_sweep $PY task_inaturalist/train.py --sweep --trials 6 --epochs 2 --dataset folder \
    --data-dir $OUT/fashion-mnist_10_classes --image-size 32 --max-macs 2e7 --device cpu \
    --out $OUT/task_inaturalist/sweep
step inaturalist_a $PY task_inaturalist/train.py --config $OUT/task_inaturalist/sweep/best_config.json --part a \
    --epochs 6 --dataset folder --data-dir $OUT/fashion-mnist_10_classes --image-size 32 --device cpu \
    --out $OUT/task_inaturalist/run

$PY -m report --runs $OUT --out docs/example-report --image-width 1200 \
    --note "An example: every figure below was measured on Fashion-MNIST (as arrays, or exported as JPEG folders), in short runs on a CPU ($CPU), not on the assignments' datasets (CIFAR-10, cats and dogs, iNaturalist-12K). It shows what the report looks like, not the assignments' results."

# The root README's screenshot: the top of the page in headless Chromium (the check outside CI), 1024 px wide.
$PY -m report.check_browser docs/example-report/index.html --png $OUT/screenshot.png
$PY -c "from PIL import Image
page = Image.open('$OUT/screenshot.png').convert('RGB').crop((0, 0, 1280, 1800)).resize((1024, 1440), Image.LANCZOS)
page.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save('docs/report-screenshot.png', optimize=True)"
