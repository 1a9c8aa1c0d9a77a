"""Solutions to lesson 5: kernels."""

from __future__ import annotations


def tile_nodes(start, count, tile, node_tile, gpu):
    """Tile t covers positions t * T .. t * T + T - 1 of the batch.

    CPU plan: a full tile (t * T + T <= count) computes its T nodes start + t * T + i together;
    a partial one computes the nodes left, start + n for n from t * T to count - 1 (in
    sub-tiles of halving sizes, each node once). GPU plan (and any tile of one node): lane i
    computes node start + min(t * T + i, count - 1): past the end of the batch it recomputes
    the last node (so every lane has valid data to load, on the same code path as the
    others) and does not store (the guard `t * T + i < count`)."""
    first = tile * node_tile
    if not gpu and first + node_tile > count:
        return [(start + n, True) for n in range(first, count)]
    return [(start + min(first + lane, count - 1), first + lane < count)
            for lane in range(node_tile)]


def treefc_level_kernel():
    """One work-item per (node of the batch, unit j): h[node, j] = tanh(b[j] +
    sum_k W[j, k] (h[left, k] + h[right, k]))."""
    return """
__kernel void treefc_level(__global const float* W, __global const float* b,
                           __global float* h, __global const int* children,
                           const int start, const int H) {
    const int node = start + get_global_id(0);
    const int j = get_global_id(1);
    const int left = children[2 * node];
    const int right = children[2 * node + 1];
    float sum = b[j];
    for (int k = 0; k < H; ++k) {
        sum += W[j * H + k] * (h[left * H + k] + h[right * H + k]);
    }
    h[node * H + j] = tanh(sum);
}
"""
