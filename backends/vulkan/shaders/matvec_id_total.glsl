// The total of one row's lane partials (row ly of the workgroup, LANES lanes), for every
// lane: subgroupAdd where a row is one subgroup, else a tree in shared memory (the order
// matvec_id.comp has always used). Called in uniform control flow (it may hold barriers);
// the including shader declares `shared float partial[ROWS][LANES]` without subgroups.
float row_total(float acc, uint ly, uint lane) {
#ifdef USE_SUBGROUP
    return subgroupAdd(acc);
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
