"""One training step through common.training.fit, run as one process or by torchrun (gloo, CPU):
    python tests/ddp_one_step.py OUT
    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_one_step.py OUT
32 training images with --batch-size 32: one process takes one step on all of them; two processes
each hold a shard of 16 and step on it, and DDP averages the gradients. Rank 0 saves the first-step
loss (all-reduced) and the weights after the step to OUT/result.pt.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from common import distributed  # noqa: E402
from common.data import ImageData, Split, make_synthetic  # noqa: E402
from common.models import resnet18  # noqa: E402
from common.training import Checkpointer, TrainConfig, fit  # noqa: E402

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
if distributed.launched_by_torchrun():
    distributed.setup("cpu")
x, y = make_synthetic(40, seed=3)
train, val = Split(x[:32], y[:32], torch.arange(32)), Split(x[32:], y[32:], torch.arange(32, 40))
data = ImageData("synthetic", [str(k) for k in range(10)], distributed.shard(train), distributed.shard(val), val,
                 (0.3, 0.3, 0.3), (0.25, 0.25, 0.25))
assert len(data.train) == 32 // distributed.world_size()
torch.manual_seed(0)
model = resnet18(10, norm="ln", width=4)
cfg = TrainConfig(epochs=1, batch_size=32, lr=0.1, warmup_epochs=0, anneal_epochs=0, save_checkpoints=False)
history = fit(model, data, cfg, Checkpointer(out, cfg.save_checkpoints), augment=None,
              generator=torch.Generator().manual_seed(distributed.rank()))
if distributed.is_main():
    torch.save({"loss": history[0]["train_loss"], "world": distributed.world_size(),
                "weights": model.state_dict()}, out / "result.pt")
distributed.teardown()
