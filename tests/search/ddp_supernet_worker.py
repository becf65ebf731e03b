"""One rank of a data-parallel supernet training, launched by ``torchrun`` from test_train_settings.py.

Each rank draws its own batches (patch seed + rank); the sub-network sampler shares its seed. The
rank's final weights go to ``OUT/rank{k}.pt`` for the test to compare.
"""

import sys
from pathlib import Path

import torch

import latency_models
import tasks.sr as sr
from search.sr.dnas.train import LatencyTerm, SupernetPlan, train_supernet
from spaces import SRSpace
from tasks.distributed import broadcast_module, init_from_env, rank_and_size
from tasks.sr.supernet import SRSupernet

out = Path(sys.argv[1])
assert init_from_env(), "run under torchrun with --nproc_per_node=2"
rank, size = rank_and_size()
torch.set_num_threads(1)
s21 = latency_models.load_published("s21", 2)
space = SRSpace(max_blocks=2)
patches = sr.TrainPatches(scale=2, patch_hr=24, seed=10 + rank, val_images=1)
plan = SupernetPlan(warmup_steps=2, width_steps=2, joint_steps=4, batch_size=2, patch_hr=24, threads=1,
                    eval_every=4, checkpoint_every=4)
term = LatencyTerm(s21.torch_block_latency, None, 20.0, float(s21.predict_archs([space.largest()])[0]))
torch.manual_seed(100 + rank)  # different initial weights: broadcast_module must make them one
net = SRSupernet(space, seed=1)
broadcast_module(net)
train_supernet(net, patches, patches.val_set()[:1], plan, term, out / f"ckpt{rank}.pt", lambda n, s, p: None)
first_batch = patches.batch(2)[0]  # the ranks' data really differ
torch.save({"state": net.state_dict(), "next_batch": first_batch, "size": size}, out / f"rank{rank}.pt")
