#version 450
// Second step of grouping a batch's routed experts on the device (op_experts_device_grouped.cpp):
// each expert's first row among the rows in expert order (offsets), and the tile tables the
// grouped GEMM reads (gemm.comp GROUPED): per tile of up to 64 tokens of one expert, the
// first word of its weights in the layer's stacked part (slot * part words), its first
// row and its token count; one table for gate and up (same stride), one for down. Tiles
// past the last are written with no tokens, so the worst-case grid's extra workgroups exit
// at once. One workgroup; experts with no slot (-1) and the miss group get no tiles.
layout(local_size_x = 256) in;

#define MAX_GROUPS 1025  // 1024 experts and the miss group

layout(std430, binding = 0) readonly buffer Counts { uint counts[]; };
layout(std430, binding = 1) readonly buffer Slots { int slots[]; };
layout(std430, binding = 2) writeonly buffer Offsets { uint offsets[]; };
layout(std430, binding = 3) writeonly buffer TilesGateUp { uvec4 tiles_gu[]; };
layout(std430, binding = 4) writeonly buffer TilesDown { uvec4 tiles_d[]; };

layout(push_constant) uniform Push { uint n_experts, max_tiles, gate_words, down_words; } pc;

shared uint first_row[MAX_GROUPS + 1], first_tile[MAX_GROUPS + 1];

uint tiles_of(uint e) { return e < pc.n_experts && slots[e] >= 0 ? (counts[e] + 63u) / 64u : 0u; }

void main() {
    const uint lid = gl_LocalInvocationIndex, groups = pc.n_experts + 1u;
    if (lid == 0u) {  // a few hundred entries: one invocation's scan is shorter than a parallel one's barriers
        uint row = 0u, tile = 0u;
        for (uint g = 0u; g < groups; ++g) {
            first_row[g] = row;
            first_tile[g] = tile;
            row += counts[g];
            tile += tiles_of(g);
        }
        first_row[groups] = row;
        first_tile[groups] = tile;
    }
    barrier();
    for (uint g = lid; g <= groups; g += 256u) offsets[g] = first_row[g];
    for (uint e = lid; e < pc.n_experts; e += 256u) {
        const uint n = tiles_of(e);
        for (uint i = 0u; i < n; ++i) {
            const uint t = first_tile[e] + i;
            if (t >= pc.max_tiles) break;
            const uint row = first_row[e] + 64u * i, count = min(64u, counts[e] - 64u * i);
            tiles_gu[t] = uvec4(uint(slots[e]) * pc.gate_words, row, count, 0u);
            tiles_d[t] = uvec4(uint(slots[e]) * pc.down_words, row, count, 0u);
        }
    }
    for (uint t = first_tile[groups] + lid; t < pc.max_tiles; t += 256u) {
        tiles_gu[t] = uvec4(0u);
        tiles_d[t] = uvec4(0u);
    }
}
