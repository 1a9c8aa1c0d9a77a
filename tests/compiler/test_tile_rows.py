"""tile_rows: several rows per work-item of a flattened-matrix unit loop."""

from __future__ import annotations

from compiler_support import small_example
from kernel_support import GPU, given

from cortexlang.ir.kernels import RowTile, format_kernels, phase_items, verify_kernels
from cortexlang.ir.limits import DeviceLimits
from cortexlang.passes.pipeline import Options, run_pipeline
from cortexlang.passes.tile_rows import tile_rows

WIDE = DeviceLimits(preferred_vector_width=16)


def test_a_flattened_matrix_product_gets_a_row_tile() -> None:
    """MV-RNN's `W_M @ concat(A_l, A_r)`: units j = row * H + column. A work-item computes 4
    rows of its 16 columns, so each vector of a child's matrix it loads serves 4 rows; the
    vector products of the same model (no per-row value) get none."""
    before = given(small_example("mvrnn", H=64), "tile_rows", WIDE)
    result = tile_rows(before)
    verify_kernels(result.ir)
    (forward,) = result.ir.kernels
    assert forward.row_tiles == (RowTile("internal.0.0", 4, 64),)
    assert dict(forward.widths)["internal.0.0"] == 16
    # 64 x 64 units in vectors of 16, 4 rows a work-item: 64 work-items per node tile for
    # that phase (256 before).
    phase = next(p for p in forward.phases if (p.rule, p.index) == ("internal", 0))
    assert phase_items(forward, phase) == 64 and phase_items(before.kernels[0], phase) == 256
    assert "row tiles: internal.0.0=4 rows of 64" in format_kernels(result.ir)
    source = run_pipeline(small_example("mvrnn", H=64), Options(), WIDE).source
    assert "const int j = (unit / 4) * 256 + (unit % 4) * 16;" in source


def test_without_vectors_no_rows_are_tiled() -> None:
    for limits in (GPU, DeviceLimits(preferred_vector_width=1)):
        before = given(small_example("mvrnn", H=64), "tile_rows", limits)
        result = tile_rows(before)
        assert result.ir is before
        assert result.note.startswith("no vectorised unit loop is a flattened matrix")


def test_a_model_without_matrix_states_is_left_as_it_is() -> None:
    before = given(small_example("treelstm"), "tile_rows", DeviceLimits())
    assert tile_rows(before).ir is before
