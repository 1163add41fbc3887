"""Does the main job learn at full width? Reads a finished task_resnet_ln run folder and checks the two
bounds of the width-64 check: validation accuracy after the run >= 61.2% (what width 16 reached with the
old defaults) and no training-step loss above 3.0. Prints the per-step loss of epoch 1.

    make cifar-ln-check          # trains the run, then calls this
    python task_resnet_ln/check_full_width.py runs/cifar-ln-check
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

MIN_VAL_ACC = 0.612
MAX_STEP_LOSS = 3.0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    run_dir = Path(argv[0]) if argv else Path("runs/cifar-ln-check")
    try:
        history = list(csv.DictReader((run_dir / "history.csv").open()))
        steps = list(csv.DictReader((run_dir / "steps.csv").open()))
        config = json.loads((run_dir / "config.json").read_text())
    except OSError as e:
        print(f"error: {run_dir} is not a task_resnet_ln run folder ({e.strerror}: {e.filename})", file=sys.stderr)
        return 2
    if not history or not steps:
        print(f"error: {run_dir} has no finished epoch yet", file=sys.stderr)
        return 2
    first = [float(r["loss"]) for r in steps if r["epoch"] == "1"]
    print(f"per-step training loss, epoch 1 ({len(first)} steps, width {config.get('width')}):")
    for i in range(0, len(first), 14):
        print("  " + " ".join(f"{v:5.2f}" for v in first[i:i + 14]))
    worst = max(float(r["loss"]) for r in steps)
    val = float(history[-1]["val_acc"])
    ok = val >= MIN_VAL_ACC and worst <= MAX_STEP_LOSS
    print(f"{'PASS' if ok else 'FAIL'}: validation {100 * val:.1f}% after {len(history)} epochs (need >= "
          f"{100 * MIN_VAL_ACC:.1f}%), largest step loss {worst:.2f} (need <= {MAX_STEP_LOSS}); plot: "
          f"{run_dir / 'steps.png'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
