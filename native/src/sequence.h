// A sequence's KV rows on the device, and the computation of a step's layers on them.
//
// TypeScript decides what a step computes (src/backend/step/): it checks the request, plans which
// keys each row attends to (LayerKeys), and for TokenSelect picks each layer's selection from the
// q̄ and the vote computed here. So this file says only how: the projections, the attention over
// the keys it is given, the MLP, the logits, on the kernel set (kernels.h).
//
// A dense step is one call (step()). A TokenSelect step runs layer by layer, because a layer's
// selection depends on that layer's queries: begin() (embeddings, layer 0's projections and q̄),
// then per layer vote() when the selection is not reused, and attend() (that layer's attention,
// o_proj and MLP, then the next layer's projections and q̄, or the logits after the last layer).
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "device_model.h"

namespace ctx {

/** A step's rows and what to compute for them (src/backend/contract.ts, StepRequest, checked in TypeScript). */
struct StepInput {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> beacon;  // [n], empty = no beacon rows
  std::vector<int32_t> logitRows;
  std::vector<float> invFreq;  // [D/2]
  float ropeScale = 1;
  /** Multiplies the rotated queries (CLEX's log_scale); applied as the attention's score scale. */
  float queryScale = 1;
  /** >= 0: compute each layer's q̄ = mean_i RoPE(q_i, meanQueryAt + i) (TokenSelect's nLocal). */
  int32_t meanQueryAt = -1;
};

/** The keys one layer attends to (src/backend/step/plan.ts, LayerKeys). */
struct LayerKeys {
  std::vector<int32_t> rows;       // gathered rows, ascending; empty = all T rows
  int32_t firstNew = 0;            // index among the keys of the step's first new row (the last n)
  std::vector<int32_t> positions;  // [n] RoPE positions of the new rows; keys before firstNew sit at their index
  std::vector<int32_t> ranges;     // [n, 6] half-open key ranges per row; empty = causal
  int32_t rangesLo = 0, rangesHi = 0;  // bounds of every range
};

/** What attend() produced: the next layer's q̄, or (after the last layer) the logits [logitRows, V]. */
struct LayerResult {
  bool done = false;
  std::vector<float> qbar;
  std::vector<float> logits;
};

struct Snapshot {
  int32_t rows = 0;
  std::vector<std::vector<float>> keys, values;  // per layer [rows, Hkv*D] f32
};

class Sequence {
 public:
  explicit Sequence(std::shared_ptr<DeviceModel> model);
  ~Sequence();
  int32_t length() const { return rows_; }
  const std::shared_ptr<DeviceModel>& model() const { return model_; }

  /** A dense step: every layer attends to `keys`; returns the logits [logitRows, V]. */
  std::vector<float> step(const StepInput& in, const LayerKeys& keys);

  /** Starts a step: embeddings and layer 0's projections; returns layer 0's q̄ when asked for. */
  std::vector<float> begin(const StepInput& in);
  /** The k rows of [from, to) with the largest soft vote of the current layer's q̄, ascending. */
  std::vector<int32_t> vote(int32_t from, int32_t to, int32_t k);
  /** The current layer attends to `keys`, then runs o_proj and the MLP, then moves on (LayerResult). */
  LayerResult attend(const LayerKeys& keys);
  /** Drops the step in progress, if any: nothing of it is kept. */
  void abort();

  void retain(const std::vector<int32_t>& rows);
  size_t kvBytes() const;
  Snapshot snapshot();
  void restore(const Snapshot& s);
  void dispose();

 private:
  /** A step in progress: the rows, and how far it got. Activations live in the model's buffers. */
  struct StepState {
    int32_t n = 0, M = 0, T = 0, layer = 0;
    bool mixed = false, allBeacon = false;  // beacon rows among others / only beacon rows
    std::vector<int32_t> rawRows, beaconRows;
    std::vector<int32_t> logitRows;
    float ropeScale = 1;
    float queryScale = 1;
    int32_t meanQueryAt = -1;
    const LayerKeys* keysOnDevice = nullptr;  // whose positions, rows and ranges are uploaded (within one call)
  };

  void ensureCapacity(int32_t rows);
  void checkUsable() const;
  void checkIdle() const;
  void freeStorage();
  void project();
  std::vector<float> meanQuery();
  /** attend() without forgetting the uploaded keys (a dense step passes the same keys every layer). */
  LayerResult advance(const LayerKeys& keys);
  void attention(const LayerKeys& keys);
  void outputAndMlp();
  std::vector<float> logits();

  std::shared_ptr<DeviceModel> model_;
  int32_t rows_ = 0;
  int32_t capacity_ = 0;
  std::vector<void*> keys_, values_;  // per layer [capacity, Hkv*D] kvType
  std::optional<StepState> step_;
  bool disposed_ = false;
};

}  // namespace ctx
