// One lane's share of a weight row's dot product, the order every one-token product kernel
// sums a row in: matvec_id_combine.comp calls it; matvec.comp, matvec_fused.comp and
// matvec_id.comp follow it for each of a lane's rows (matvec_rows.glsl), matvec_id_swiglu.comp
// too with both products' loads interleaved, so that fusing changes no result.
// The including shader defines unit_dot (matvec_unit.glsl), LANES, ROWS and
// `shared float partial[ROWS][LANES]` (matvec_row_total.glsl).

// Lane `lane`'s partial sum of row wr (a row of the stack): units lane, lane + LANES, ...,
// four in flight per step.
float lane_partial(uint wr, uint lane) {
    const uint n_units = pc.cols / UNIT;
    float acc = 0.0;
    uint u = lane;
    for (; u + 3u * LANES < n_units; u += 4u * LANES) {
        const float s0 = unit_dot(wr, u), s1 = unit_dot(wr, u + LANES);
        const float s2 = unit_dot(wr, u + 2u * LANES), s3 = unit_dot(wr, u + 3u * LANES);
        acc += (s0 + s1) + (s2 + s3);
    }
    for (; u < n_units; u += LANES) acc += unit_dot(wr, u);
    return acc;
}
