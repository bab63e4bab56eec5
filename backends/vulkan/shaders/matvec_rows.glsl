// Several weight rows per lane for the one-token products (matvec.comp and its fused forms
// in matvec_fused.comp, the dense family; matvec_id.comp, the combine family's down products):
// a lane takes PER_LANE consecutive rows (P in MST_VULKAN_MATVEC_TUNING=dense=LxRxP, and
// combine=LxRxP) and, unit by unit, loads the unit's x once
// (unit_x: for matvec_fused.comp's norm variants also the multiplies that normalise it) and
// multiplies it into each row's weights. With one row a lane every weight byte came with
// as many x bytes or more, and each weight load waited on its own x; here P weight loads
// share one x, so more loads of weights are in flight per instruction issued.
// Each row's sum keeps lane_partial's order (matvec_id_row.glsl: units lane, lane + LANES,
// ..., four in flight per step), so at PER_LANE 1 this is today's kernel, and at any P a
// fused kernel sums every row as the unfused one at the same P does.
// The including shader defines unit_x and unit_dot_x (matvec_unit.glsl), LANES and pc.cols;
// matvec_fused.comp's qkv variants include this file once per product with
// lane_partials and unit_dot_x renamed.

#ifndef MATVEC_ROWS_DEFINED
#define MATVEC_ROWS_DEFINED
layout(constant_id = 4) const uint PER_LANE = 1;
// The lane's partial sums of its rows (a private array: after specialisation its size and
// every index are constants, so it lives in registers).
float row_acc[PER_LANE];
#endif

// Adds a lane's partial sums of rows r0 .. r0 + PER_LANE - 1 to row_acc, from its unit u0
// on: the lane's units are u0, u0 + LANES, ..., u0 its lane (or, in matvec_fused.comp's
// router, where the first steps it took from weights loaded earlier stopped). Rows past
// `last` (the product's last row) read row `last` again, in bounds and never stored, so
// that the loop has no branch per row.
void lane_partials(uint r0, uint last, uint u0) {
    const uint n_units = pc.cols / UNIT;
    uint u = u0;
    for (; u + 3u * LANES < n_units; u += 4u * LANES) {
        const UnitX x0 = unit_x(u), x1 = unit_x(u + LANES), x2 = unit_x(u + 2u * LANES), x3 = unit_x(u + 3u * LANES);
        for (uint p = 0u; p < PER_LANE; ++p) {
            const uint r = PER_LANE == 1u ? r0 : min(r0 + p, last);
            const float s0 = unit_dot_x(r, u, x0), s1 = unit_dot_x(r, u + LANES, x1);
            const float s2 = unit_dot_x(r, u + 2u * LANES, x2), s3 = unit_dot_x(r, u + 3u * LANES, x3);
            row_acc[p] += (s0 + s1) + (s2 + s3);
        }
    }
    for (; u < n_units; u += LANES) {
        const UnitX x0 = unit_x(u);
        for (uint p = 0u; p < PER_LANE; ++p) row_acc[p] += unit_dot_x(PER_LANE == 1u ? r0 : min(r0 + p, last), u, x0);
    }
}
