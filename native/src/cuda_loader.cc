#include "cuda_loader.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace ctx {

namespace {

struct Library {
  void* handle = nullptr;
  CtxCudaProbeFn probe = nullptr;
  CtxCudaCreateFn create = nullptr;
};

/** The folder this addon was loaded from (ctx_cuda_kernels.so is built beside it). */
std::string addonFolder() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&addonFolder), &info) == 0 || !info.dli_fname) return ".";
  std::string path = info.dli_fname;
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

Library library;
CudaProbe probe;
std::once_flag probed;

void runProbe() {
  // CTX_CUDA_LIBRARY names another library file (tests); CTX_DISABLE_CUDA=1 pretends there is no GPU.
  if (const char* off = std::getenv("CTX_DISABLE_CUDA"); off && std::string(off) == "1") {
    probe.reason = "CUDA disabled by CTX_DISABLE_CUDA=1";
    return;
  }
  const char* override = std::getenv("CTX_CUDA_LIBRARY");
  probe.library = override && *override ? override : addonFolder() + "/ctx_cuda_kernels.so";
  struct stat st{};
  if (::stat(probe.library.c_str(), &st) != 0) {
    probe.reason = "ctx was built without CUDA (no nvcc when the native addon was built)";
    probe.library.clear();
    return;
  }
  library.handle = ::dlopen(probe.library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library.handle) {
    const char* err = ::dlerror();
    probe.reason = std::string("cannot open ctx_cuda_kernels.so: ") + (err ? err : "unknown error");
    return;
  }
  auto abi = reinterpret_cast<CtxCudaAbiVersionFn>(::dlsym(library.handle, "ctx_cuda_abi_version"));
  library.probe = reinterpret_cast<CtxCudaProbeFn>(::dlsym(library.handle, "ctx_cuda_probe"));
  library.create = reinterpret_cast<CtxCudaCreateFn>(::dlsym(library.handle, "ctx_cuda_create_kernels"));
  if (!abi || !library.probe || !library.create) {
    probe.reason = "ctx_cuda_kernels.so lacks the ctx entry points (a stale build? run npm run build:native)";
    return;
  }
  if (abi() != kKernelsAbiVersion) {
    probe.reason = "ctx_cuda_kernels.so was built from another version of ctx (run npm run build:native)";
    return;
  }
  CtxCudaDevice devices[16];
  char err[512] = {0};
  const int32_t count = library.probe(devices, 16, err, sizeof err);
  if (count < 0) {
    probe.reason = err;
    return;
  }
  if (count == 0) {
    probe.reason = "no CUDA device found";
    return;
  }
  probe.devices.assign(devices, devices + count);
  for (int32_t i = 0; i < count; i++) {
    if (devices[i].major >= 8) {
      probe.usableDevice = i;
      break;
    }
  }
  if (probe.usableDevice < 0) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "%s has compute capability %d.%d; ctx's CUDA kernels need 8.0 (Ampere) or newer",
                  devices[0].name, devices[0].major, devices[0].minor);
    probe.reason = buf;
    return;
  }
  probe.available = true;
}

}  // namespace

const CudaProbe& probeCuda() {
  std::call_once(probed, runProbe);
  return probe;
}

std::shared_ptr<Kernels> createCudaKernels(DType computeType) {
  const CudaProbe& p = probeCuda();
  if (!p.available) throw std::runtime_error("no GPU: " + p.reason);
  char err[512] = {0};
  Kernels* k = library.create(p.usableDevice, static_cast<int32_t>(computeType), err, sizeof err);
  if (!k) throw std::runtime_error(std::string("cannot start the CUDA kernels: ") + err);
  // The library stays open for the life of the process, so deleting through the vtable is safe.
  return std::shared_ptr<Kernels>(k);
}

}  // namespace ctx
