"""Distributed data parallel: the rank of this process, and forking the other ranks of a run.

Two ways into DDP:
- launched by `torchrun` (RANK, LOCAL_RANK, WORLD_SIZE in the environment): every process builds its
  trainer and trains as its rank;
- `trainer.train()` with `world_size > 1` in a plain process: that process trains as rank 0 and forks
  ranks 1..N-1. Forking (not re-importing a generated script) keeps the trainer object as the user
  built it, subclass and callbacks included, so callbacks added before train() fire in rank 0.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import socket
import sys
import traceback
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

DDP_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def env_rank() -> tuple[int, int, int]:
    """Return (rank, local_rank, world_size) from the environment; (-1, -1, 1) outside DDP."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or "RANK" not in os.environ:
        return -1, -1, 1
    return int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"])), world


def init_process_group(backend: str, rank: int, world_size: int, timeout_s: float = 1800.0) -> None:
    """Join the run's process group (env:// rendezvous: MASTER_ADDR/MASTER_PORT)."""
    if not dist.is_initialized():
        dist.init_process_group(
            backend, rank=rank, world_size=world_size, timeout=timedelta(seconds=timeout_s)
        )


def destroy_process_group() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def any_rank(flag: bool, device: torch.device) -> bool:
    """Return True on every rank when `flag` is True on at least one (a stop must stop all ranks together)."""
    if not dist.is_initialized():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 for the rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _rank_main(train: Callable[[], None], env: dict[str, str]) -> None:
    os.environ.update(env)
    # The parent's OpenMP pool does not survive fork: a parallel region here would wait on it for ever.
    # One thread per forked rank never enters one (and ranks should not share the cores anyway).
    torch.set_num_threads(1)
    code = 0
    try:
        train()
    except BaseException:  # report and leave with an error code; the parent raises for it
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    # Skip interpreter teardown: it would run the parent's atexit handlers and flush its buffers twice.
    os._exit(code)


def run_forked(train: Callable[[], None], world_size: int) -> None:
    """Run `train` as rank 0 here and as ranks 1..N-1 in forked processes; raise if any rank failed."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        raise RuntimeError(
            "CUDA was initialised in this process before train(), so DDP ranks cannot be forked from it; "
            "start the run with torchrun (python -m torch.distributed.run --nproc_per_node=N script.py)"
        )
    base = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": str(world_size)}
    ctx = mp.get_context("fork")
    procs = []
    for rank in range(1, world_size):
        env = {**base, "RANK": str(rank), "LOCAL_RANK": str(rank)}
        p = ctx.Process(target=_rank_main, args=(train, env), name=f"ddp-rank-{rank}", daemon=False)
        p.start()
        procs.append(p)
    try:
        with _env({**base, "RANK": "0", "LOCAL_RANK": "0"}):
            train()
    except BaseException:
        for p in procs:
            if p.is_alive():
                p.terminate()
        raise
    finally:
        for p in procs:
            p.join()
    failed = [p.name for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"DDP {', '.join(failed)} failed (exit codes in the log above)")


def broadcast_from_main(values: list[Any]) -> list[Any]:
    """Return rank 0's `values` on every rank (plain picklable values)."""
    if not dist.is_initialized():
        return values
    box = list(values)
    dist.broadcast_object_list(box, src=0)
    return box
