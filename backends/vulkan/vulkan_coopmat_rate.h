// The prefill GEMMs' compute roofline, measured on the device as vulkan_bandwidth.h measures
// the decode's: the rate of the 16x16x16 f16 cooperative-matrix products (f32 sums) that
// gemm.comp, gemm_tuned.comp and attention_flash.comp issue, in a loop with nothing else
// (shaders/coopmat_rate.comp); the same with the fragments loaded from shared memory every
// step (gemm.comp's inner loop without its staging); and with f16 sums. bench_vulkan_prefill
// divides its GEMMs' FLOP/s by the first.
#pragma once

#include <string>

#include "backends/vulkan/vulkan_backend.h"

namespace mst {

struct VulkanCoopmatRate {
    bool measured = false;
    std::string why_not;           // when not measured: the device has no cooperative matrices
    double flops = 0;              // products from registers, f32 sums (FLOP/s)
    double shared_flops = 0;       // fragments loaded from shared memory every step
    double f16_sum_flops = 0;      // products from registers, f16 sums
};

VulkanCoopmatRate vulkan_measure_coopmat_rate(VulkanBackend &backend);

}  // namespace mst
