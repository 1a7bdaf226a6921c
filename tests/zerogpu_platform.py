"""`python -m tests.zerogpu_platform`: app.py as a ZeroGPU Space runs it, on this CPU-only machine.

The real `spaces` client runs unchanged (scheduler calls, the fork, pickling, the visitor's
token, closing on cancel). Only what the platform's machine provides and this one lacks is
supplied, and nothing else:

1. A CUDA build of torch: at import `spaces` reads `torch.version.cuda`, keeps the binding
   `torch._C._cuda_init`, and asks a forked process `torch.cuda._is_in_bad_fork` (the CUDA
   build's binding; the CPU build has a lambda there that cannot be pickled back). Here the
   version is a string, `_cuda_init` says there is no GPU and the fork check answers False.
2. A GPU in the forked task: after `/allow`, `spaces.zero.torch.init` selects the lent GPU
   (`CUDA_VISIBLE_DEVICES`) and touches it, and `spaces.zero.torch.move` copies the tensors the
   app placed on emulated CUDA to it and synchronises. Here `init` only selects, and `move` has
   nothing to copy (the tests run the models with `DAILIES_DEVICE=cpu`).

The cgroup file the scheduler is told about (`ZEROGPU_PROC_SELF_CGROUP_PATH`) and the scheduler
itself (`SPACES_ZERO_DEVICE_API_URL`, tests/zerogpu_server.py) come from the environment.
"""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import torch

torch.version.cuda = "12.8"  # 1.


def _cuda_init() -> None:  # 1.
    raise RuntimeError("this machine has no CUDA GPU")


def _cuda_is_in_bad_fork() -> bool:  # 1.
    return False


torch._C._cuda_init = _cuda_init
torch.cuda._is_in_bad_fork = _cuda_is_in_bad_fork

import spaces.zero.torch as zero_torch  # noqa: E402  (with SPACES_ZERO_GPU=true this patches torch)


def _init(nvidia_uuid: str) -> None:  # 2.
    os.environ["CUDA_VISIBLE_DEVICES"] = nvidia_uuid


def _move(callback=None) -> None:  # 2.
    pass


zero_torch.init = _init
zero_torch.move = _move

runpy.run_path(str(Path(__file__).resolve().parent.parent / "app.py"), run_name="__main__")
