"""What one benchmark run measures: models, sizes, batches, passes, baselines."""

from __future__ import annotations

from dataclasses import dataclass

MODELS = ("treelstm", "treegru", "treefc", "mvrnn", "dagrnn")


@dataclass
class BenchConfig:
    models: tuple[str, ...] = MODELS
    hiddens: tuple[int, ...] = (256, 512)
    batches: tuple[int, ...] = (1, 10)
    trees: str | None = None
    device: str | None = None
    passes: int = 3              # timed passes at least (more until stable)
    max_passes: int = 10
    trees_used: int = 200
    baselines: bool = True
    ablation: bool = True
    quick: bool = False
    vector_width: int | None = None   # force the device's preferred vector width

    @staticmethod
    def quick_config() -> BenchConfig:
        """Seconds, not minutes: proves the benchmark works end to end (CI runs it)."""
        return BenchConfig(models=("treelstm", "dagrnn"), hiddens=(64,), batches=(1, 10),
                           passes=2, max_passes=4, trees_used=40, quick=True)
