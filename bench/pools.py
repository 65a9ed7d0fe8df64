"""The worker pools a scenario runs on, as ``--pools`` names them."""

from dataclasses import dataclass


@dataclass(frozen=True)
class PoolConfig:
    """A worker pool and its concurrency: ``prefork:4``, ``threads:8``; ``solo`` runs one
    task at a time in the main process (concurrency 1)."""

    pool: str
    concurrency: int

    @classmethod
    def parse(cls, text: str) -> "PoolConfig":
        pool, _, concurrency = text.partition(":")
        pool = pool.strip()
        return cls(pool, 1 if pool == "solo" else int(concurrency or 4))

    def __str__(self):
        return self.pool if self.pool == "solo" else f"{self.pool}:{self.concurrency}"


def pool_label(config: dict) -> str:
    """The label of a pool in a run's results (``{"pool": ..., "concurrency": ...}``)."""
    return str(PoolConfig(config["pool"], config["concurrency"]))
