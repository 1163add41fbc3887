"""torchrun with 2 CPU processes (gloo) against one process: same first-step loss, same weights after it."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common import distributed
from common.data import Split

REPO = Path(__file__).resolve().parents[1]


def run(cmd: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_two_gloo_processes_match_one_process_on_the_same_global_batch(tmp_path):
    run([sys.executable, "tests/ddp_one_step.py", str(tmp_path / "one")])
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "tests/ddp_one_step.py", str(tmp_path / "two")])
    one, two = (torch.load(tmp_path / d / "result.pt", weights_only=True) for d in ("one", "two"))
    assert (one["world"], two["world"]) == (1, 2)
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-5)
    for name, w in one["weights"].items():
        assert torch.allclose(w, two["weights"][name], rtol=1e-4, atol=1e-6), name
    torch.manual_seed(0)
    from common.models import resnet18
    init = resnet18(10, norm="ln", width=4).state_dict()
    assert not torch.equal(init["linear.weight"], one["weights"]["linear.weight"])  # the step did something
    # rank 0 alone wrote the run folder's files
    assert len((tmp_path / "two" / "history.csv").read_text().splitlines()) == 2


def test_shards_are_equal_disjoint_and_cover_all_but_the_remainder():
    split = Split(torch.zeros(11, 3, 2, 2, dtype=torch.uint8), torch.arange(11), torch.arange(11))
    shards = [distributed.shard(split, r, 3) for r in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]
    assert sorted(torch.cat([s.index for s in shards]).tolist()) == list(range(9))


def test_global_batch_must_divide_by_the_processes(monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 4)
    assert distributed.local_batch_size(128) == 32
    with pytest.raises(distributed.UserError, match="--batch-size 130 is the global batch"):
        distributed.local_batch_size(130)
