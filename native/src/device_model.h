// A model's weights on one kernel set: what the native backend loads once and its sequences
// (sequence.h) run steps on.
//
// TypeScript resolves the model's tensor table (src/model/tensors.ts) and passes it in: every
// distinct tensor once (file, offset, dtype, shape) and, for the model level and for each layer,
// which tensor plays each role ("q.weight" -> index). The weights are looked up by role; this
// file lists none.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels.h"

namespace ctx {

[[noreturn]] void fail(const std::string& why);

struct ModelShape {
  int32_t vocab = 0, hidden = 0, intermediate = 0, layers = 0, heads = 0, kvHeads = 0, headDim = 0;
  float eps = 1e-6f;
};

/**
 * One tensor of the table: where its bytes are (a safetensors file, an absolute offset, a dtype)
 * and its shape. 2-D tensors are loaded as matrices in the kernel set's compute type, others as f32
 * vectors.
 */
struct TensorSource {
  std::string file;
  int64_t offset = 0;
  std::string dtype;  // "F32", "BF16" or "F16"
  std::vector<int64_t> shape;
  bool norm = false;  // a norm's weight (random weights: around 1 instead of 0)
};

/** "<role>.<key>" -> index into ModelSpec::tensors, e.g. "q.weight", "q.bias", "inputNorm.weight". */
using RoleMap = std::unordered_map<std::string, int32_t>;

struct ModelSpec {
  ModelShape shape;
  std::vector<TensorSource> tensors;
  RoleMap model;                // model-level modules (embed, finalNorm, lmHead, ...)
  std::vector<RoleMap> layers;  // each layer's modules (q, k, v, o, inputNorm, gate, ...)
  /** Fill weights with seeded random values on the device instead of reading the files (benchmarks). */
  bool randomWeights = false;
  uint64_t seed = 0;
};

/** A device buffer that only grows; its contents are not kept when it grows. */
class Scratch {
 public:
  explicit Scratch(Kernels* k) : k_(k) {}
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { free(); }
  void* get(size_t bytes);
  template <typename T>
  T* as(size_t count) { return static_cast<T*>(get(count * sizeof(T))); }
  void free();

 private:
  Kernels* k_;
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

class Sequence;

class DeviceModel : public std::enable_shared_from_this<DeviceModel> {
 public:
  /** Loads (or, for benchmarks, generates) the weights onto the kernel set. */
  DeviceModel(std::shared_ptr<Kernels> kernels, const ModelSpec& spec);
  ~DeviceModel();

  const ModelShape& shape() const { return shape_; }
  Kernels& kernels() { return *k_; }
  /** KV bytes per stored row across all layers. */
  size_t kvBytesPerRow() const;
  std::shared_ptr<Sequence> newSequence();
  /** Frees weights and scratch; later calls on the model or its sequences throw. */
  void dispose();
  bool disposed() const { return disposed_; }
  /** One call (a step, a layer, a retain, ...) at a time per model: they share the scratch buffers. */
  std::mutex& mutex() { return mu_; }

  /** A loaded tensor: a matrix (2-D, computeType()) or an f32 vector. */
  struct Weight {
    Matrix matrix;
    float* vector = nullptr;
  };
  /** A linear layer's weight and its bias (null when it has none). */
  struct Linear {
    Matrix w;
    const float* bias = nullptr;
  };
  /** The tensor playing "<role>.<key>" in `layer` (-1: the model level), or null. */
  const Weight* find(int32_t layer, const std::string& key) const;
  const Matrix& matrix(int32_t layer, const std::string& key) const;
  /** An f32 vector, or null when the model has none under that name (an optional bias). */
  const float* vector(int32_t layer, const std::string& key) const;
  Linear linear(int32_t layer, const std::string& role) const;

  /** Scratch space of a step, shared by the model's sequences (one step at a time: stepOwner). */
  struct Buffers {
    explicit Buffers(Kernels* k)
        : tokens(k), beacon(k), qpos(k), keyPos(k), keyRows(k), ranges(k), rawIdx(k), beaconIdx(k), invFreq(k),
          vote(k), top(k), qbar(k), x(k), h(k), hRaw(k), hBeacon(k), q(k), k(k), v(k), qr(k), sub(k), attn(k),
          attnSub(k), oFull(k), keysRot(k), valsSel(k), gate(k), up(k), act(k), logitIdx(k), xs(k), hs(k), logits(k),
          kvTmp(k), retainIdx(k) {}
    Scratch tokens, beacon, qpos, keyPos, keyRows, ranges, rawIdx, beaconIdx, invFreq, vote, top, qbar;
    Scratch x, h, hRaw, hBeacon, q, k, v, qr, sub, attn, attnSub, oFull, keysRot, valsSel, gate, up, act;
    Scratch logitIdx, xs, hs, logits, kvTmp, retainIdx;
  };
  Buffers& buffers() { return *buffers_; }
  /** The sequence whose step is in progress (its activations live in the buffers), or null. */
  const Sequence* stepOwner = nullptr;

 private:
  /** Loads tensor `index` (matrices in computeType(), vectors in f32), or fills it (random weights). */
  void loadTensor(const ModelSpec& spec, int32_t index);

  std::shared_ptr<Kernels> k_;
  ModelShape shape_;
  std::vector<Weight> weights_;  // by tensor index
  RoleMap modelRoles_;
  std::vector<RoleMap> layerRoles_;
  std::vector<void*> owned_;  // every weight allocation, once
  std::unique_ptr<Buffers> buffers_;
  std::mutex mu_;
  bool disposed_ = false;
};

}  // namespace ctx
