// A model's weights on one kernel set (see device_model.h): loading them by the table TypeScript
// passes in, and looking them up by role.

#include "device_model.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "dtype.h"
#include "sequence.h"

namespace ctx {

void fail(const std::string& why) { throw std::invalid_argument(why); }

namespace {

// Weight bytes read from disk per chunk while loading.
constexpr size_t kLoadChunkBytes = 64u << 20;

size_t sourceElemSize(const std::string& dtype) {
  if (dtype == "F32") return 4;
  if (dtype == "BF16" || dtype == "F16") return 2;
  fail("tensor dtype " + dtype + " is not supported (F32, BF16, F16)");
}

/** Reads exactly `bytes` at `offset` of an open file. */
void readAt(int fd, const std::string& path, void* dst, size_t bytes, int64_t offset) {
  auto* p = static_cast<char*>(dst);
  while (bytes > 0) {
    const ssize_t got = ::pread(fd, p, bytes, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(path + ": read failed (" + std::strerror(errno) + ")");
    }
    if (got == 0) throw std::runtime_error(path + ": unexpected end of file");
    p += got;
    bytes -= static_cast<size_t>(got);
    offset += got;
  }
}

/** Converts count source elements (F32/BF16/F16 bytes) to the target type. */
void convertHost(const std::string& srcType, const void* src, DType dst, void* out, size_t count) {
  if (srcType == "F32") {
    const auto* s = static_cast<const float*>(src);
    if (dst == DType::F32) std::memcpy(out, s, count * 4);
    else for (size_t i = 0; i < count; i++) static_cast<uint16_t*>(out)[i] = floatToBf16(s[i]);
    return;
  }
  const auto* s = static_cast<const uint16_t*>(src);
  if (srcType == "BF16") {
    if (dst == DType::BF16) std::memcpy(out, s, count * 2);
    else for (size_t i = 0; i < count; i++) static_cast<float*>(out)[i] = bf16ToFloat(s[i]);
    return;
  }
  // F16
  for (size_t i = 0; i < count; i++) {
    const float f = halfToFloat(s[i]);
    if (dst == DType::F32) static_cast<float*>(out)[i] = f;
    else static_cast<uint16_t*>(out)[i] = floatToBf16(f);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Scratch

void* Scratch::get(size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes > bytes_) {
    free();
    p_ = k_->alloc(bytes);
    bytes_ = bytes;
  }
  return p_;
}

void Scratch::free() {
  if (p_) k_->release(p_);
  p_ = nullptr;
  bytes_ = 0;
}

// ---------------------------------------------------------------------------------------------
// DeviceModel

DeviceModel::DeviceModel(std::shared_ptr<Kernels> kernels, const ModelSpec& spec) : k_(std::move(kernels)), shape_(spec.shape) {
  const ModelShape& s = shape_;
  if (s.vocab <= 0 || s.hidden <= 0 || s.intermediate <= 0 || s.layers <= 0 || s.heads <= 0 || s.kvHeads <= 0 ||
      s.headDim <= 0 || s.headDim % 2 != 0 || s.heads % s.kvHeads != 0) {
    fail("invalid model shape");
  }
  if (static_cast<int32_t>(spec.layers.size()) != s.layers) fail("layer list does not match the layer count");
  buffers_ = std::make_unique<Buffers>(k_.get());
  modelRoles_ = spec.model;
  layerRoles_ = spec.layers;
  weights_.assign(spec.tensors.size(), Weight{});
  try {
    for (int32_t i = 0; i < static_cast<int32_t>(spec.tensors.size()); i++) loadTensor(spec, i);
    k_->synchronize();
  } catch (...) {
    buffers_.reset();
    for (void* p : owned_) k_->release(p);
    owned_.clear();
    throw;
  }
}

DeviceModel::~DeviceModel() { dispose(); }

void DeviceModel::dispose() {
  if (disposed_) return;
  disposed_ = true;
  buffers_.reset();
  for (void* p : owned_) k_->release(p);
  owned_.clear();
  weights_.clear();
}

size_t DeviceModel::kvBytesPerRow() const {
  return 2ull * shape_.layers * shape_.kvHeads * shape_.headDim * dtypeSize(k_->kvType());
}

std::shared_ptr<Sequence> DeviceModel::newSequence() {
  if (disposed_) fail("the backend was disposed");
  return std::make_shared<Sequence>(shared_from_this());
}

void DeviceModel::loadTensor(const ModelSpec& spec, int32_t index) {
  const TensorSource& t = spec.tensors[index];
  size_t numel = 1;
  for (int64_t d : t.shape) numel *= static_cast<size_t>(d);
  const bool asMatrix = t.shape.size() == 2;
  const DType target = asMatrix ? k_->computeType() : DType::F32;
  const size_t outSize = dtypeSize(target);
  void* dev = k_->alloc(numel * outSize);
  owned_.push_back(dev);
  Weight& w = weights_[index];
  if (asMatrix) w.matrix = Matrix{dev, target, static_cast<int32_t>(t.shape[0]), static_cast<int32_t>(t.shape[1])};
  else w.vector = static_cast<float*>(dev);

  if (spec.randomWeights) {
    // Benchmarks: values don't change the speed, only the shapes do. Norm weights ~1, matrices with
    // rows of unit-ish norm so activations stay finite.
    const uint64_t seed = spec.seed * 1000003ull + static_cast<uint64_t>(index);
    if (!asMatrix) k_->fillRandom(dev, target, numel, seed, 0.05f, t.norm ? 1.0f : 0.0f);
    else k_->fillRandom(dev, target, numel, seed, std::sqrt(3.0f / static_cast<float>(t.shape[1])), 0.0f);
    return;
  }

  const size_t inSize = sourceElemSize(t.dtype);
  const int fd = ::open(t.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(t.file + ": cannot open (" + std::strerror(errno) + ")");
  try {
    const size_t chunk = std::max<size_t>(1, kLoadChunkBytes / inSize);
    std::vector<char> raw(std::min(numel, chunk) * inSize);
    std::vector<char> conv(std::min(numel, chunk) * outSize);
    for (size_t done = 0; done < numel; done += chunk) {
      const size_t count = std::min(chunk, numel - done);
      readAt(fd, t.file, raw.data(), count * inSize, t.offset + static_cast<int64_t>(done * inSize));
      convertHost(t.dtype, raw.data(), target, conv.data(), count);
      k_->upload(static_cast<char*>(dev) + done * outSize, conv.data(), count * outSize);
    }
    k_->synchronize();  // the host buffers die at the end of this scope
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

const DeviceModel::Weight* DeviceModel::find(int32_t layer, const std::string& key) const {
  const RoleMap& roles = layer < 0 ? modelRoles_ : layerRoles_[layer];
  const auto it = roles.find(key);
  return it == roles.end() ? nullptr : &weights_[it->second];
}

const Matrix& DeviceModel::matrix(int32_t layer, const std::string& key) const {
  const Weight* w = find(layer, key);
  if (!w || !w->matrix.data) fail("the model has no matrix \"" + key + "\"");
  return w->matrix;
}

const float* DeviceModel::vector(int32_t layer, const std::string& key) const {
  const Weight* w = find(layer, key);
  return w ? w->vector : nullptr;
}

DeviceModel::Linear DeviceModel::linear(int32_t layer, const std::string& role) const {
  return Linear{matrix(layer, role + ".weight"), vector(layer, role + ".bias")};
}


}  // namespace ctx
