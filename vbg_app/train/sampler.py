"""How training samples reach the loop: the resumable, DDP-sharded sampler of ``(epoch, index[, size])`` keys and
the loader workers' start method and thread settings."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DistributedSampler, Sampler


class ResumableSampler(Sampler):
    """An endless stream of ``(epoch, index)`` keys: each epoch's order (and this process's shard) is
    ``DistributedSampler(shuffle=True, seed=seed)`` at that epoch; ``start`` skips that many keys of this
    process's stream (resume)."""

    def __init__(self, n: int, world: int = 1, rank: int = 0, seed: int = 0, start: int = 0,
                 sizes=(), batch_size: int = 1) -> None:
        self.n, self.world, self.rank, self.seed, self.start = n, world, rank, seed, int(start)
        # sizes: [((w, h), weight), ...]; each run of batch_size keys gets one size (the same batch), drawn
        # from (seed, batch number) so that resume and every DDP rank agree
        self.sizes = [tuple(int(v) for v in s) for s, _ in sizes]
        wsum = float(sum(wt for _, wt in sizes)) if sizes else 0.0
        self.size_p = np.array([wt / wsum for _, wt in sizes]) if sizes else None
        self.batch_size = max(1, int(batch_size))

        class _Len:
            def __len__(_self):
                return n

        self._sampler = DistributedSampler(_Len(), num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                           drop_last=False)
        self.per_epoch = len(self._sampler)

    def __iter__(self):
        epoch, skip = divmod(self.start, self.per_epoch)
        while True:
            self._sampler.set_epoch(epoch)
            for j, i in enumerate(self._sampler):
                if j >= skip:
                    if self.sizes:
                        b = (epoch * self.per_epoch + j) // self.batch_size
                        k = int(np.random.default_rng([self.seed, 7919, b]).choice(len(self.sizes), p=self.size_p))
                        yield (epoch, int(i), self.sizes[k])
                    else:
                        yield (epoch, int(i))
            skip = 0
            epoch += 1

    def __len__(self) -> int:  # endless; DataLoader only needs it for len(loader), which is not used
        return 2 ** 62


def _mp_context():
    """Loader workers are started with ``forkserver`` (``spawn`` where missing), never a bare ``fork``: a
    forked child inherits OpenCV's and OpenMP's thread pools half-locked and can hang in its first
    ``cv2`` call (seen here: a worker stuck on a futex after the BN re-calibration ran in the parent)."""
    import multiprocessing as mp

    return mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")


def _worker_init(_worker_id: int) -> None:
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
