"""What every source and sink shares: an idempotent ``close()`` and use as a context manager."""
from __future__ import annotations


class ClosingStage:
    description: str = ""

    def close(self) -> None:  # subclasses release their device/file; must be idempotent
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
