// Opens ctx_cuda_kernels.so (the CUDA kernel set) at run time, from the addon's own folder.
//
// The addon never links CUDA: a machine without the toolkit, a driver or a GPU still loads it. The
// library is opened the first time a probe or a CUDA kernel set is asked for, and every failure on the
// way becomes a one-line reason ("ctx was built without CUDA", "no NVIDIA driver", ...).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kernels.h"

namespace ctx {

struct CudaProbe {
  bool available = false;
  std::string reason;  // why not, when !available
  std::string library;  // path of ctx_cuda_kernels.so (empty when not built)
  std::vector<CtxCudaDevice> devices;
  int32_t usableDevice = -1;  // the first device with compute capability >= 8.0
};

/** Looks for the library and GPUs; cached after the first call. */
const CudaProbe& probeCuda();

/** A CUDA kernel set on the probe's usable device; throws with the probe's reason when none. */
std::shared_ptr<Kernels> createCudaKernels(DType computeType);

}  // namespace ctx
