"""The process group of a stage run: one process, or many started by ``torchrun`` (gloo on CPUs, NCCL on GPUs).

A single process gets a process group of its own too (world size 1, a file store), so the same code paths
(FSDP2's ``fully_shard``, ``torch.distributed.checkpoint``) run with one process as with many, and a
sharded checkpoint written by N processes resumes in any other number.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

if TYPE_CHECKING:
    from torch.distributed.device_mesh import DeviceMesh


@dataclass(frozen=True)
class Dist:
    """Who this process is in the run, and its device."""

    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        """Whether this is the process that writes shared files (rank 0)."""
        return self.rank == 0

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` summed over all processes (in place; returned)."""
        if self.world > 1:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def barrier(self) -> None:
        """Wait for every process."""
        if self.world > 1:
            dist.barrier()

    def mesh(self) -> DeviceMesh:
        """A one-dimensional device mesh over every process (what FSDP2 shards over)."""
        from torch.distributed.device_mesh import init_device_mesh

        return init_device_mesh(self.device.type, (self.world,))


@contextlib.contextmanager
def process_group() -> Iterator[Dist]:
    """Join the run's process group (``torchrun``'s environment, or a world of one) and leave it at the end.

    An existing group (a caller's) is used as is and left open.
    """
    cuda = torch.cuda.is_available()
    owned = not dist.is_initialized()
    store_file = None
    if owned:
        backend = "cpu:gloo,cuda:nccl" if cuda else "gloo"
        if "WORLD_SIZE" in os.environ and "MASTER_ADDR" in os.environ:
            dist.init_process_group(backend)
        else:
            fd, store_file = tempfile.mkstemp(prefix="vocab_expansion_pg_")
            os.close(fd)
            dist.init_process_group(backend, init_method=f"file://{store_file}", rank=0, world_size=1)
    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    try:
        yield Dist(rank, world, local_rank, device)
    finally:
        if owned:
            dist.destroy_process_group()
            if store_file and os.path.exists(store_file):
                os.remove(store_file)
