// The CPU kernel set (cpu_kernels.cc): float32 loops on the host, always compiled into the addon.
#pragma once

#include <memory>

#include "kernels.h"

namespace ctx {

std::shared_ptr<Kernels> createCpuKernels();

}  // namespace ctx
