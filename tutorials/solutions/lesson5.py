"""Solutions to lesson 5: kernels."""

from __future__ import annotations


def tile_nodes(start, count, tile, node_tile):
    """Lane i of tile t computes node start + min(t * T + i, count - 1): past the end of the
    batch it recomputes the last node (so every lane has valid data to load) and does not
    store (the guard `t * T + i < count`)."""
    return [(start + min(tile * node_tile + lane, count - 1), tile * node_tile + lane < count)
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
