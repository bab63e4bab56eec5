#version 450
// The device's cooperative-matrix rate, the prefill GEMMs' compute roofline
// (vulkan_coopmat_rate.cpp): the 16x16x16 f16 products the GEMMs and the prefill attention
// take (GL_NV_cooperative_matrix, as gemm.comp), in a loop with nothing else.
// coopmat_rate: each subgroup keeps 2 x 4 independent sums and its A and B fragments in
//   registers: 8 products an iteration, none waiting on another's result.
// coopmat_rate_shared: every iteration loads 2 A and 2 B fragments from shared memory at
//   gemm.comp's row pitch and multiplies them into 2 x 2 sums: gemm.comp's inner loop (4
//   loads to 4 products) without the staging, to tell the loads' cost from the products'.
// coopmat_rate_f16acc: the first with f16 sums, whether the device runs those faster.
// The values are small and the sums are written out, so nothing is optimised away.
//! variant coopmat_rate
//! variant coopmat_rate_shared -DFROM_SHARED
//! variant coopmat_rate_f16acc -DACC_F16
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(local_size_x = 128) in;  // 4 subgroups of 32, as gemm.comp's cooperative kernel

layout(std430, binding = 0) writeonly buffer Out { float o[]; };
layout(push_constant) uniform Push { uint iterations; } pc;

#define KP 40  // gemm.comp's row pitch (BK + 8)
shared float16_t tile[64 * KP];

#ifdef ACC_F16
#define SUM fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#else
#define SUM fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#endif
#define F16 fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#ifdef FROM_SHARED
#define NB 2u
#else
#define NB 4u
#endif

void main() {
    for (uint i = gl_LocalInvocationIndex; i < 64u * KP; i += 128u)
        tile[i] = float16_t(float((i * 7u) % 13u) * (1.0 / 4096.0));
    barrier();
    SUM acc[2][NB];
    for (uint i = 0u; i < 2u; ++i)
        for (uint j = 0u; j < NB; ++j) acc[i][j] = SUM(0.0);
    F16 a[2], b[NB];
    for (uint i = 0u; i < 2u; ++i) coopMatLoadNV(a[i], tile, 16u * i * KP, KP, false);
    for (uint j = 0u; j < NB; ++j) coopMatLoadNV(b[j], tile, (16u * j) % 64u * KP + 16u, KP, true);
    for (uint it = 0u; it < pc.iterations; ++it) {
#ifdef FROM_SHARED
        const uint kk = (it & 1u) * 16u;
        for (uint i = 0u; i < 2u; ++i) coopMatLoadNV(a[i], tile, 16u * i * KP + kk, KP, false);
        for (uint j = 0u; j < NB; ++j) coopMatLoadNV(b[j], tile, (32u + 16u * j) * KP + kk, KP, true);
#endif
        for (uint i = 0u; i < 2u; ++i)
            for (uint j = 0u; j < NB; ++j) acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
    }
    SUM total = acc[0][0];
    for (uint i = 0u; i < 2u; ++i)
        for (uint j = 0u; j < NB; ++j)
            if (i + j > 0u) total = total + acc[i][j];
    const uint sg = gl_LocalInvocationIndex / 32u;
#ifdef ACC_F16
    fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> out32 = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(total);
    coopMatStoreNV(out32, o, (gl_WorkGroupID.x * 4u + sg) * 256u, 16u, false);
#else
    coopMatStoreNV(total, o, (gl_WorkGroupID.x * 4u + sg) * 256u, 16u, false);
#endif
}
