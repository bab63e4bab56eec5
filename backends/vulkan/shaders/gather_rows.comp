#version 450
// dst[i][c] = src[rows[i]][c]: a batch's token rows in expert order for routed_swiglu,
// so each expert's products read its tokens as one contiguous slice on the device instead
// of rows gathered by the host and uploaded again.
layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer Src { float src[]; };
layout(std430, binding = 1) readonly buffer Rows { uint rows[]; };
layout(std430, binding = 2) writeonly buffer Dst { float dst[]; };

layout(push_constant) uniform Push { uint n_rows, row_len, row0; } pc;  // rows row0.. of this dispatch

void main() {
    const uint c = gl_GlobalInvocationID.x, i = pc.row0 + gl_WorkGroupID.y;
    if (c >= pc.row_len || i >= pc.n_rows) return;
    dst[i * pc.row_len + c] = src[rows[i] * pc.row_len + c];
}
