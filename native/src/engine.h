// The native engine: a model's weights on one kernel set, and sequences that run steps.
//
// This is the host-side orchestration of src/backend/contract.ts, shared by the CPU and CUDA kernel
// sets (kernels.h). It owns the layer loop, the per-layer KV storage (append, retain), the masks,
// the TokenSelect selection (scores and top-k run as kernels; the reuse cache, the selected set and
// the compact positions are decided here) and which logits rows are computed.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels.h"

namespace ctx {

struct ModelShape {
  int32_t vocab = 0, hidden = 0, intermediate = 0, layers = 0, heads = 0, kvHeads = 0, headDim = 0;
  float eps = 1e-6f;
};

/**
 * One tensor of the model's table (src/model/tensors.ts, resolved in TypeScript): where its bytes
 * are (a safetensors file, an absolute offset, a dtype) and its shape. 2-D tensors are loaded as
 * matrices in the kernel set's compute type, others as f32 vectors.
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

struct SelectParams {
  int32_t nInit = 0, topK = 0, nLocal = 0;
  bool reuse = false;
  float reuseCosine = 0;
};

/** One step of contract.ts's StepRequest, copied out of JS memory. */
struct StepInput {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> beacon;     // empty = no beacon rows
  std::vector<int32_t> positions;  // [n] (ignored with select)
  std::vector<int32_t> ranges;     // [n*6], empty = causal
  std::optional<SelectParams> select;
  std::vector<int32_t> logitRows;
  std::vector<float> invFreq;      // [D/2]
  float ropeScale = 1;
  bool reportSelection = false;
};

struct StepOutput {
  std::vector<float> logits;                   // [logitRows, V]
  std::vector<std::vector<int32_t>> selection;  // per layer when asked
};

struct SelectCacheEntry {
  std::vector<float> qbar;   // [Hq*D]
  std::vector<int32_t> top;  // ascending key indices
};

struct Snapshot {
  int32_t rows = 0;
  std::vector<std::vector<float>> keys, values;  // per layer [rows, Hkv*D] f32
  std::vector<std::optional<SelectCacheEntry>> selectCache;
};

class Sequence;

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

class Engine : public std::enable_shared_from_this<Engine> {
 public:
  /** Loads (or, for benchmarks, generates) the weights onto the kernel set. */
  Engine(std::shared_ptr<Kernels> kernels, const ModelSpec& spec);
  ~Engine();

  const ModelShape& shape() const { return shape_; }
  Kernels& kernels() { return *k_; }
  /** KV bytes per stored row across all layers. */
  size_t kvBytesPerRow() const;
  std::shared_ptr<Sequence> newSequence();
  /** Frees weights and scratch; later calls on the engine or its sequences throw. */
  void dispose();
  bool disposed() const { return disposed_; }
  /** One step (or retain, snapshot, ...) at a time per engine: they share the scratch buffers. */
  std::mutex& mutex() { return mu_; }

 public:
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

 private:
  friend class Sequence;
  /** Loads tensor `index` (matrices in computeType(), vectors in f32), or fills it (random weights). */
  void loadTensor(const ModelSpec& spec, int32_t index);

  std::shared_ptr<Kernels> k_;
  ModelShape shape_;
  std::vector<Weight> weights_;  // by tensor index
  RoleMap modelRoles_;
  std::vector<RoleMap> layerRoles_;
  std::vector<void*> owned_;  // every weight allocation, once
  std::mutex mu_;
  bool disposed_ = false;

 public:
  // Scratch space of a step, shared by all sequences of the engine (guarded by mutex()).
  struct Buffers {
    explicit Buffers(Kernels* k)
        : tokens(k), beacon(k), qpos(k), keyPos(k), ranges(k), rawIdx(k), beaconIdx(k), invFreq(k), selIdx(k),
          iota(k), vote(k), top(k), qbar(k), x(k), h(k), hRaw(k), hBeacon(k), q(k), k(k), v(k), qr(k), sub(k),
          attn(k), attnSub(k), oFull(k), keysRot(k), valsSel(k), gate(k), up(k), act(k), logitIdx(k), xs(k), hs(k),
          logits(k), kvTmp(k) {}
    Scratch tokens, beacon, qpos, keyPos, ranges, rawIdx, beaconIdx, invFreq, selIdx, iota, vote, top, qbar;
    Scratch x, h, hRaw, hBeacon, q, k, v, qr, sub, attn, attnSub, oFull, keysRot, valsSel, gate, up, act;
    Scratch logitIdx, xs, hs, logits, kvTmp;
    int32_t iotaLen = 0;
  };
  std::unique_ptr<Buffers> buffers_;
};

class Sequence {
 public:
  explicit Sequence(std::shared_ptr<Engine> engine);
  ~Sequence();
  int32_t length() const { return rows_; }
  const std::shared_ptr<Engine>& engine() const { return engine_; }
  StepOutput step(const StepInput& in);
  void retain(const std::vector<int32_t>& rows);
  size_t kvBytes() const;
  Snapshot snapshot();
  void restore(const Snapshot& s);
  void dispose();

 private:
  void ensureCapacity(int32_t rows);
  void checkUsable() const;
  void freeStorage();
  // One layer's attention for the step: writes Buffers::attn.
  void attendDense(int32_t layer, int32_t n, int32_t M, const float* invFreq, float ropeScale,
                   const AttentionMask& mask, const int32_t* qpos, const int32_t* keyPos);
  std::vector<int32_t> selectKeys(int32_t layer, int32_t n, int32_t M, const SelectParams& sp,
                                  const float* invFreq, float ropeScale);

  std::shared_ptr<Engine> engine_;
  int32_t rows_ = 0;
  int32_t capacity_ = 0;
  std::vector<void*> keys_, values_;  // per layer [capacity, Hkv*D] kvType
  std::vector<std::optional<SelectCacheEntry>> selectCache_;
  bool disposed_ = false;
};

}  // namespace ctx
