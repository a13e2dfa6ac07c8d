// The CPU kernel set (cpu_kernels.cc): loops on the host, always compiled into the addon.
// computeType F32 is the normal mode; BF16 emulates the CUDA bf16 path's roundings.
#pragma once

#include <memory>

#include "kernels.h"

namespace ctx {

std::shared_ptr<Kernels> createCpuKernels(DType computeType);

}  // namespace ctx
