// The total of one row's lane partials (row ly of the workgroup, LANES lanes), for every
// lane. The _sg variants (taken where LANES is a whole number of subgroups:
// VulkanBackend::matvec_family_pipeline) add each subgroup with subgroupAdd and, where a row
// spans several subgroups (MST_VULKAN_MATVEC_TUNING with LANES above the subgroup size),
// the row's subgroup sums in order through shared memory; the others add in a tree in
// shared memory (the order matvec_id.comp has always used). A row of one subgroup sums as
// before, so the default shapes keep their bits. Called in uniform control flow (it may
// hold barriers); the including shader declares `shared float partial[ROWS][LANES]` (one
// row of partials per row it sums) in every variant.
float row_total(float acc, uint ly, uint lane) {
#ifdef USE_SUBGROUP
    const float s = subgroupAdd(acc);
    if (LANES <= gl_SubgroupSize) return s;  // uniform: a row is one subgroup
    if (gl_SubgroupInvocationID == 0u) partial[ly][lane / gl_SubgroupSize] = s;
    barrier();
    float total = 0.0;
    for (uint i = 0u; i < LANES / gl_SubgroupSize; ++i) total += partial[ly][i];
    barrier();  // a later call writes partial again
    return total;
#else
    partial[ly][lane] = acc;
    barrier();
    for (uint s = LANES / 2u; s > 0u; s >>= 1) {
        if (lane < s) partial[ly][lane] += partial[ly][lane + s];
        barrier();
    }
    const float total = partial[ly][0];
    barrier();  // a later call writes partial again
    return total;
#endif
}
