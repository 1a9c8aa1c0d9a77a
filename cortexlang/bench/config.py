"""What one benchmark run measures: models, sizes, batches, passes, baselines."""

from __future__ import annotations

from dataclasses import dataclass

MODELS = ("treelstm", "treegru", "treefc", "mvrnn", "dagrnn")
# The two optimisations `--quick` ablates: batching by height, and fusing the levels into
# one persistent launch (its row shows the launch count change, 1 against one per level).
QUICK_ABLATION = ("dynamic_batching", "fuse_levels")


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
    ablate: tuple[str, ...] | None = None   # optimisations the ablation switches off (None: all)

    @staticmethod
    def quick_config() -> BenchConfig:
        """Seconds, not minutes: proves the benchmark works end to end (CI runs it), with
        indicative numbers only. Its ablation switches off two optimisations, not all:
        with empty kernel caches each configuration is a fresh OpenCL build, and the full
        ablation was most of a cold quick run (21 of 37 s here)."""
        return BenchConfig(models=("treelstm", "dagrnn"), hiddens=(64,), batches=(1, 10),
                           passes=2, max_passes=4, trees_used=40, quick=True,
                           ablate=QUICK_ABLATION)
