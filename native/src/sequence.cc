// A sequence's KV rows and the computation of a step's layers (see sequence.h). Host code: it says
// what runs on the kernel set (kernels.h), which does the arithmetic on the CPU or on a GPU.

#include "sequence.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>

namespace ctx {

namespace {

// MLP rows per pass: bounds the [rows, intermediate] f32 gate/up buffers (4096 × 18944 × 4 B = 310 MB).
constexpr int32_t kMlpChunkRows = 4096;

std::string fmt(const char* f, long long a) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a);
  return buf;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Storage

Sequence::Sequence(std::shared_ptr<DeviceModel> model) : model_(std::move(model)) {
  const int32_t L = model_->shape().layers;
  keys_.assign(L, nullptr);
  values_.assign(L, nullptr);
}

Sequence::~Sequence() {
  std::lock_guard<std::mutex> lock(model_->mutex());
  if (model_->stepOwner == this) model_->stepOwner = nullptr;
  freeStorage();
}

void Sequence::freeStorage() {
  Kernels& K = model_->kernels();
  for (std::vector<void*>* store : {&keys_, &values_}) {
    for (void*& p : *store) {
      if (p) K.release(p);
      p = nullptr;
    }
  }
  capacity_ = 0;
  rows_ = 0;
}

void Sequence::dispose() {
  if (disposed_) return;
  abort();
  freeStorage();
  disposed_ = true;
}

void Sequence::checkUsable() const {
  if (disposed_) fail("the sequence was disposed");
  if (model_->disposed()) fail("the backend was disposed");
}

void Sequence::checkIdle() const {
  checkUsable();
  if (step_) fail("a step of this sequence is in progress");
}

size_t Sequence::kvBytes() const { return static_cast<size_t>(rows_) * model_->kvBytesPerRow(); }

/** Grows every layer's K/V storage to hold `rows` rows, keeping the stored ones. */
void Sequence::ensureCapacity(int32_t rows) {
  if (rows <= capacity_) return;
  Kernels& K = model_->kernels();
  const ModelShape& s = model_->shape();
  const size_t rowBytes = static_cast<size_t>(s.kvHeads) * s.headDim * dtypeSize(K.kvType());
  // Grow by a quarter at least, in multiples of 256 rows: few reallocations, little waste.
  int64_t cap = std::max<int64_t>(rows, static_cast<int64_t>(capacity_) + capacity_ / 4);
  cap = (cap + 255) / 256 * 256;
  for (size_t l = 0; l < keys_.size(); l++) {
    for (std::vector<void*>* store : {&keys_, &values_}) {
      void* fresh = K.alloc(static_cast<size_t>(cap) * rowBytes);
      void*& old = (*store)[l];
      if (old) {
        if (rows_ > 0) K.copy(fresh, old, static_cast<size_t>(rows_) * rowBytes);
        K.release(old);
      }
      old = fresh;
    }
  }
  capacity_ = static_cast<int32_t>(cap);
}

void Sequence::retain(const std::vector<int32_t>& rows) {
  checkIdle();
  // Checked in TypeScript (step/plan.ts, checkRetain); this keeps a bad call inside the buffers.
  for (int32_t r : rows) {
    if (r < 0 || r >= rows_) fail(fmt("retain: row %lld is outside the stored rows", r));
  }
  const int32_t count = static_cast<int32_t>(rows.size());
  if (count == 0) {
    rows_ = 0;
    return;
  }
  Kernels& K = model_->kernels();
  const ModelShape& s = model_->shape();
  const size_t rowBytes = static_cast<size_t>(s.kvHeads) * s.headDim * dtypeSize(K.kvType());
  DeviceModel::Buffers& B = model_->buffers();
  int32_t* idx = B.retainIdx.as<int32_t>(count);
  K.upload(idx, rows.data(), count * sizeof(int32_t));
  void* tmp = B.kvTmp.get(static_cast<size_t>(count) * rowBytes);
  // Gather into a temporary, then copy back: the storage keeps its capacity, so the next step's
  // append does not reallocate.
  for (size_t l = 0; l < keys_.size(); l++) {
    for (void* store : {keys_[l], values_[l]}) {
      K.gatherRows(tmp, store, idx, count, rowBytes);
      K.copy(store, tmp, static_cast<size_t>(count) * rowBytes);
    }
  }
  rows_ = count;
  K.synchronize();
}

Snapshot Sequence::snapshot() {
  checkIdle();
  Kernels& K = model_->kernels();
  const ModelShape& s = model_->shape();
  const size_t elems = static_cast<size_t>(rows_) * s.kvHeads * s.headDim;
  Snapshot snap;
  snap.rows = rows_;
  float* tmp = static_cast<float*>(model_->buffers().kvTmp.get(std::max<size_t>(elems, 1) * 4));
  for (size_t l = 0; l < keys_.size(); l++) {
    for (int which = 0; which < 2; which++) {
      std::vector<float> host(elems);
      if (elems) {
        K.convert(tmp, DType::F32, which == 0 ? keys_[l] : values_[l], K.kvType(), elems);
        K.download(host.data(), tmp, elems * 4);
      }
      (which == 0 ? snap.keys : snap.values).push_back(std::move(host));
    }
  }
  return snap;
}

void Sequence::restore(const Snapshot& snap) {
  checkIdle();
  Kernels& K = model_->kernels();
  const ModelShape& s = model_->shape();
  const size_t rowElems = static_cast<size_t>(s.kvHeads) * s.headDim;
  const size_t elems = static_cast<size_t>(snap.rows) * rowElems;
  if (snap.keys.size() != keys_.size() || snap.values.size() != keys_.size()) fail("snapshot has the wrong layer count");
  for (size_t l = 0; l < keys_.size(); l++) {
    if (snap.keys[l].size() != elems || snap.values[l].size() != elems) fail("snapshot arrays have the wrong size");
  }
  rows_ = 0;
  ensureCapacity(snap.rows);
  float* tmp = static_cast<float*>(model_->buffers().kvTmp.get(std::max<size_t>(elems, 1) * 4));
  for (size_t l = 0; l < keys_.size(); l++) {
    for (int which = 0; which < 2; which++) {
      if (!elems) continue;
      K.upload(tmp, (which == 0 ? snap.keys : snap.values)[l].data(), elems * 4);
      K.convert(which == 0 ? keys_[l] : values_[l], K.kvType(), tmp, DType::F32, elems);
      K.synchronize();  // tmp is reused for the next array
    }
  }
  rows_ = snap.rows;
}

// ---------------------------------------------------------------------------------------------
// A step

std::vector<float> Sequence::step(const StepInput& in, const LayerKeys& keys) {
  begin(in);
  try {
    LayerResult r;
    while (!r.done) r = advance(keys);  // every layer the same keys: uploaded once
    return std::move(r.logits);
  } catch (...) {
    abort();
    throw;
  }
}

void Sequence::abort() {
  if (!step_) return;
  step_.reset();
  if (model_->stepOwner == this) model_->stepOwner = nullptr;
}

std::vector<float> Sequence::begin(const StepInput& in) {
  checkIdle();
  DeviceModel& E = *model_;
  if (E.stepOwner) fail("another sequence of this backend is in the middle of a step");
  Kernels& K = E.kernels();
  DeviceModel::Buffers& B = E.buffers();
  const ModelShape& s = E.shape();
  const int32_t n = static_cast<int32_t>(in.tokens.size());
  const int64_t T = static_cast<int64_t>(rows_) + n;

  // The request was checked in TypeScript (src/backend/step/plan.ts); these checks only keep a
  // bad call from reading or writing outside a buffer.
  if (n <= 0) fail("step: no tokens");
  if (T > INT32_MAX / 2) fail("step: too many rows");
  if (static_cast<int32_t>(in.invFreq.size()) != s.headDim / 2) fail("step: invFreq must have head_dim/2 entries");
  if (!in.beacon.empty() && static_cast<int32_t>(in.beacon.size()) != n) fail("step: beacon flags must have one entry per token");
  const DeviceModel::Weight* beaconEmbed = E.find(-1, "beaconEmbed.weight");
  int32_t nBeacon = 0;
  for (int32_t i = 0; i < n; i++) {
    const bool isBeacon = !in.beacon.empty() && in.beacon[i];
    nBeacon += isBeacon;
    if (!isBeacon && (in.tokens[i] < 0 || in.tokens[i] >= s.vocab)) fail(fmt("step: token id %lld is outside the vocabulary", in.tokens[i]));
  }
  if (nBeacon > 0 && (!beaconEmbed || !E.find(0, "beaconQ.weight"))) fail("step: beacon rows need a beacon checkpoint");
  for (int32_t r : in.logitRows) {
    if (r < 0 || r >= n) fail(fmt("step: logit row %lld is outside the step's rows", r));
  }

  ensureCapacity(static_cast<int32_t>(T));
  StepState st;
  st.n = n;
  st.M = rows_;
  st.T = static_cast<int32_t>(T);
  st.logitRows = in.logitRows;
  st.ropeScale = in.ropeScale;
  st.queryScale = in.queryScale;
  st.meanQueryAt = in.meanQueryAt;
  st.allBeacon = nBeacon == n;
  st.mixed = nBeacon > 0 && nBeacon < n;

  int32_t* dTokens = B.tokens.as<int32_t>(n);
  K.upload(dTokens, in.tokens.data(), n * sizeof(int32_t));
  uint8_t* dBeacon = nullptr;
  if (nBeacon > 0) {
    dBeacon = B.beacon.as<uint8_t>(n);
    K.upload(dBeacon, in.beacon.data(), n);
  }
  K.upload(B.invFreq.as<float>(s.headDim / 2), in.invFreq.data(), (s.headDim / 2) * sizeof(float));
  // Rows that use the beacon projections vs the base ones (only matters when both kinds are present).
  if (st.mixed) {
    for (int32_t i = 0; i < n; i++) (in.beacon[i] ? st.beaconRows : st.rawRows).push_back(i);
    K.upload(B.rawIdx.as<int32_t>(st.rawRows.size()), st.rawRows.data(), st.rawRows.size() * sizeof(int32_t));
    K.upload(B.beaconIdx.as<int32_t>(st.beaconRows.size()), st.beaconRows.data(), st.beaconRows.size() * sizeof(int32_t));
  }
  float* x = B.x.as<float>(static_cast<size_t>(n) * s.hidden);
  K.embed(x, E.matrix(-1, "embed.weight"), beaconEmbed ? &beaconEmbed->matrix : nullptr, dTokens, dBeacon, n);

  step_ = std::move(st);
  E.stepOwner = this;
  try {
    project();
    return step_->meanQueryAt >= 0 ? meanQuery() : std::vector<float>{};
  } catch (...) {
    abort();
    throw;
  }
}

/** The current layer's h = norm(x) and q, k, v = h·Wᵀ (+ b), beacon rows through the beacon weights; K/V appended. */
void Sequence::project() {
  DeviceModel& E = *model_;
  Kernels& K = E.kernels();
  DeviceModel::Buffers& B = E.buffers();
  const ModelShape& s = E.shape();
  const StepState& st = *step_;
  const int32_t l = st.layer, n = st.n, hidden = s.hidden;
  const int32_t qDim = s.heads * s.headDim, kvDim = s.kvHeads * s.headDim;
  const DType act = K.computeType(), kvt = K.kvType();
  const size_t actSize = dtypeSize(act), kvRowBytes = static_cast<size_t>(kvDim) * dtypeSize(kvt);
  const size_t nRaw = st.rawRows.size(), nBeacon = st.beaconRows.size();

  void* h = B.h.get(static_cast<size_t>(n) * hidden * actSize);
  K.rmsnorm(h, act, B.x.as<float>(0), E.vector(l, "inputNorm.weight"), n, hidden, s.eps);
  void* hRaw = nullptr;
  void* hBeacon = nullptr;
  if (st.mixed) {
    hRaw = B.hRaw.get(nRaw * hidden * actSize);
    hBeacon = B.hBeacon.get(nBeacon * hidden * actSize);
    K.gatherRows(hRaw, h, B.rawIdx.as<int32_t>(nRaw), static_cast<int32_t>(nRaw), hidden * actSize);
    K.gatherRows(hBeacon, h, B.beaconIdx.as<int32_t>(nBeacon), static_cast<int32_t>(nBeacon), hidden * actSize);
  }
  // out[n, rows(base)] = h · Wᵀ (+ bias), beacon rows through `beacon` (the same tensors as base
  // where the checkpoint has no beacon projection: model/tensors.ts).
  auto projectRows = [&](float* outRows, const char* role, const char* beaconRole) {
    const DeviceModel::Linear base = E.linear(l, role);
    const DeviceModel::Linear beacon = E.find(l, std::string(beaconRole) + ".weight") ? E.linear(l, beaconRole) : base;
    const bool same = base.w.data == beacon.w.data && base.bias == beacon.bias;
    if (!st.mixed || same) {
      const DeviceModel::Linear& W = st.allBeacon ? beacon : base;
      K.matmul(outRows, h, W.w, W.bias, n, false);
      return;
    }
    const int32_t outDim = base.w.rows;
    float* sub = B.sub.as<float>(static_cast<size_t>(n) * outDim);
    const DeviceModel::Linear* W[2] = {&base, &beacon};
    void* in[2] = {hRaw, hBeacon};
    Scratch* idx[2] = {&B.rawIdx, &B.beaconIdx};
    const int32_t counts[2] = {static_cast<int32_t>(nRaw), static_cast<int32_t>(nBeacon)};
    for (int g = 0; g < 2; g++) {
      K.matmul(sub, in[g], W[g]->w, W[g]->bias, counts[g], false);
      K.scatterRows(outRows, sub, idx[g]->as<int32_t>(counts[g]), counts[g], outDim * sizeof(float));
    }
  };
  float* kNew = B.k.as<float>(static_cast<size_t>(n) * kvDim);
  float* vNew = B.v.as<float>(static_cast<size_t>(n) * kvDim);
  projectRows(B.q.as<float>(static_cast<size_t>(n) * qDim), "q", "beaconQ");
  projectRows(kNew, "k", "beaconK");
  projectRows(vNew, "v", "beaconV");

  // Append the new rows' K (pre-RoPE) and V to the layer's storage.
  const size_t at = static_cast<size_t>(st.M) * kvRowBytes;
  K.convert(static_cast<char*>(keys_[l]) + at, kvt, kNew, DType::F32, static_cast<size_t>(n) * kvDim);
  K.convert(static_cast<char*>(values_[l]) + at, kvt, vNew, DType::F32, static_cast<size_t>(n) * kvDim);
}

/** q̄ = mean_i RoPE(q_i, meanQueryAt + i) of the current layer, kept on the device for vote() and returned. */
std::vector<float> Sequence::meanQuery() {
  DeviceModel& E = *model_;
  Kernels& K = E.kernels();
  DeviceModel::Buffers& B = E.buffers();
  const ModelShape& s = E.shape();
  const int32_t qDim = s.heads * s.headDim;
  // Plain RoPE (no YaRN attention factor), as the TypeScript backends rotate q̄.
  float* qbar = B.qbar.as<float>(qDim);
  K.meanRotatedQuery(qbar, B.q.as<float>(0), step_->n, s.heads, s.headDim, step_->meanQueryAt, B.invFreq.as<float>(0), 1.0f);
  std::vector<float> host(qDim);
  K.download(host.data(), qbar, qDim * sizeof(float));
  return host;
}

std::vector<int32_t> Sequence::vote(int32_t from, int32_t to, int32_t k) {
  checkUsable();
  if (!step_ || step_->meanQueryAt < 0) fail("vote: no TokenSelect step is in progress");
  if (from < 0 || to > step_->T || from >= to || k < 0 || k > to - from) fail("vote: candidates or k out of range");
  if (k == 0) return {};
  DeviceModel& E = *model_;
  Kernels& K = E.kernels();
  DeviceModel::Buffers& B = E.buffers();
  const ModelShape& s = E.shape();
  const int32_t count = to - from;
  float* vote = B.vote.as<float>(count);
  int32_t* dTop = B.top.as<int32_t>(k);
  K.selectVote(vote, B.qbar.as<float>(0), keys_[step_->layer], from, to, s.heads, s.kvHeads, s.headDim);
  K.topK(dTop, vote, count, k, from);
  std::vector<int32_t> top(k);
  K.download(top.data(), dTop, k * sizeof(int32_t));
  return top;
}

LayerResult Sequence::attend(const LayerKeys& keys) {
  checkUsable();
  if (!step_) fail("attend: no step is in progress");
  step_->keysOnDevice = nullptr;  // another layer's keys
  return advance(keys);
}

LayerResult Sequence::advance(const LayerKeys& keys) {
  attention(keys);
  outputAndMlp();
  StepState& st = *step_;
  LayerResult r;
  if (++st.layer < model_->shape().layers) {
    project();
    if (st.meanQueryAt >= 0) r.qbar = meanQuery();
    return r;
  }
  r.logits = logits();
  r.done = true;
  rows_ = st.T;
  abort();  // the step is complete: release it
  return r;
}

/** The current layer's attention over `keys`: writes Buffers::attn. */
void Sequence::attention(const LayerKeys& keys) {
  DeviceModel& E = *model_;
  Kernels& K = E.kernels();
  DeviceModel::Buffers& B = E.buffers();
  const ModelShape& s = E.shape();
  StepState& st = *step_;
  const int32_t n = st.n, T = st.T, D = s.headDim, l = st.layer;
  const bool gathered = !keys.rows.empty();
  const int32_t count = gathered ? static_cast<int32_t>(keys.rows.size()) : T;

  // Planned in TypeScript (step/plan.ts); these checks only keep a bad call inside the buffers.
  if (static_cast<int32_t>(keys.positions.size()) != n || keys.firstNew + n != count) fail("attend: keys do not end with the step's rows");
  for (int32_t r : keys.rows) {
    if (r < 0 || r >= T) fail(fmt("attend: key row %lld is outside the rows", r));
  }
  if (!keys.ranges.empty() && (gathered || static_cast<int32_t>(keys.ranges.size()) != 6 * n)) fail("attend: ranges need all rows and 6 entries per row");
  for (int32_t v : keys.ranges) {
    if (v < 0 || v > count) fail("attend: a mask range is outside the keys");
  }

  // Positions (keys before firstNew at their index, then the new rows'), gathered rows, ranges:
  // uploaded once per LayerKeys (a dense step's every layer shares them).
  if (st.keysOnDevice != &keys) {
    std::vector<int32_t> keyPos(count);
    std::iota(keyPos.begin(), keyPos.begin() + keys.firstNew, 0);
    std::copy(keys.positions.begin(), keys.positions.end(), keyPos.begin() + keys.firstNew);
    K.upload(B.keyPos.as<int32_t>(count), keyPos.data(), count * sizeof(int32_t));
    K.upload(B.qpos.as<int32_t>(n), keys.positions.data(), n * sizeof(int32_t));
    if (gathered) K.upload(B.keyRows.as<int32_t>(count), keys.rows.data(), count * sizeof(int32_t));
    if (!keys.ranges.empty()) K.upload(B.ranges.as<int32_t>(6 * n), keys.ranges.data(), 6 * n * sizeof(int32_t));
    st.keysOnDevice = &keys;
  }
  AttentionMask mask;
  mask.causalOffset = keys.firstNew;
  if (!keys.ranges.empty()) {
    mask.ranges = B.ranges.as<int32_t>(0);
    mask.keysLo = keys.rangesLo;
    mask.keysHi = keys.rangesHi;
  }

  const DType kvt = K.kvType();
  const size_t kvRowBytes = static_cast<size_t>(s.kvHeads) * D * dtypeSize(kvt);
  const int32_t* rowIdx = gathered ? B.keyRows.as<int32_t>(0) : nullptr;
  const float* invFreq = B.invFreq.as<float>(0);
  void* keysRot = B.keysRot.get(static_cast<size_t>(count) * kvRowBytes);
  K.rope(keysRot, kvt, keys_[l], kvt, rowIdx, B.keyPos.as<int32_t>(0), count, s.kvHeads, D, invFreq, st.ropeScale);
  const void* values = values_[l];
  if (gathered) {
    void* valsSel = B.valsSel.get(static_cast<size_t>(count) * kvRowBytes);
    K.gatherRows(valsSel, values_[l], rowIdx, count, kvRowBytes);
    values = valsSel;
  }
  float* qr = B.qr.as<float>(static_cast<size_t>(n) * s.heads * D);
  K.rope(qr, DType::F32, B.q.as<float>(0), DType::F32, nullptr, B.qpos.as<int32_t>(0), n, s.heads, D, invFreq, st.ropeScale);
  void* attn = B.attn.get(static_cast<size_t>(n) * s.heads * D * dtypeSize(K.computeType()));
  // (s·q)·k/√D: the query scale joins the score scale.
  K.attention(attn, K.computeType(), qr, keysRot, values, n, count, s.heads, s.kvHeads, D,
              st.queryScale / std::sqrt(static_cast<float>(D)), mask);
}

/** x += attn · Woᵀ (+ b) (beacon rows through beaconO), then x += down(silu(gate(norm(x))) * up(norm(x))). */
void Sequence::outputAndMlp() {
  DeviceModel& E = *model_;
  Kernels& K = E.kernels();
  DeviceModel::Buffers& B = E.buffers();
  const ModelShape& s = E.shape();
  const StepState& st = *step_;
  const int32_t l = st.layer, n = st.n, hidden = s.hidden, qDim = s.heads * s.headDim;
  const DType act = K.computeType();
  const size_t actSize = dtypeSize(act);
  float* x = B.x.as<float>(0);
  void* attn = B.attn.get(0);

  const DeviceModel::Linear o = E.linear(l, "o");
  const DeviceModel::Linear bo = E.find(l, "beaconO.weight") ? E.linear(l, "beaconO") : o;
  if (!st.mixed || (o.w.data == bo.w.data && o.bias == bo.bias)) {
    const DeviceModel::Linear& W = st.allBeacon ? bo : o;
    K.matmul(x, attn, W.w, W.bias, n, true);
  } else {
    float* oFull = B.oFull.as<float>(static_cast<size_t>(n) * hidden);
    void* attnSub = B.attnSub.get(static_cast<size_t>(n) * qDim * actSize);
    float* sub = B.sub.as<float>(static_cast<size_t>(n) * hidden);
    const std::vector<int32_t>* rowsOf[2] = {&st.rawRows, &st.beaconRows};
    Scratch* idxOf[2] = {&B.rawIdx, &B.beaconIdx};
    const DeviceModel::Linear* W[2] = {&o, &bo};
    for (int g = 0; g < 2; g++) {
      const int32_t cnt = static_cast<int32_t>(rowsOf[g]->size());
      const int32_t* idx = idxOf[g]->as<int32_t>(cnt);
      K.gatherRows(attnSub, attn, idx, cnt, qDim * actSize);
      K.matmul(sub, attnSub, W[g]->w, W[g]->bias, cnt, false);
      K.scatterRows(oFull, sub, idx, cnt, hidden * sizeof(float));
    }
    K.addInPlace(x, oFull, static_cast<size_t>(n) * hidden);
  }

  // The MLP in row chunks (bounded gate/up buffers).
  const DeviceModel::Linear gate = E.linear(l, "gate"), up = E.linear(l, "up"), down = E.linear(l, "down");
  const float* postNorm = E.vector(l, "postNorm.weight");
  const int32_t inter = s.intermediate;
  const int32_t chunk = std::min(n, kMlpChunkRows);
  void* h = B.h.get(static_cast<size_t>(n) * hidden * actSize);
  float* g = B.gate.as<float>(static_cast<size_t>(chunk) * inter);
  float* u = B.up.as<float>(static_cast<size_t>(chunk) * inter);
  void* a = B.act.get(static_cast<size_t>(chunk) * inter * actSize);
  for (int32_t r0 = 0; r0 < n; r0 += chunk) {
    const int32_t rows = std::min(chunk, n - r0);
    float* xr = x + static_cast<size_t>(r0) * hidden;
    K.rmsnorm(h, act, xr, postNorm, rows, hidden, s.eps);
    K.matmul(g, h, gate.w, gate.bias, rows, false);
    K.matmul(u, h, up.w, up.bias, rows, false);
    K.swiglu(a, act, g, u, static_cast<size_t>(rows) * inter);
    K.matmul(xr, a, down.w, down.bias, rows, true);
  }
}

/** lm_head(norm(x[logitRows])) -> [logitRows, V] on the host. */
std::vector<float> Sequence::logits() {
  DeviceModel& E = *model_;
  Kernels& K = E.kernels();
  DeviceModel::Buffers& B = E.buffers();
  const ModelShape& s = E.shape();
  const StepState& st = *step_;
  const int32_t nl = static_cast<int32_t>(st.logitRows.size()), hidden = s.hidden;
  std::vector<float> out;
  if (nl > 0) {
    int32_t* dRows = B.logitIdx.as<int32_t>(nl);
    K.upload(dRows, st.logitRows.data(), nl * sizeof(int32_t));
    float* xs = B.xs.as<float>(static_cast<size_t>(nl) * hidden);
    K.gatherRows(xs, B.x.as<float>(0), dRows, nl, hidden * sizeof(float));
    void* hs = B.hs.get(static_cast<size_t>(nl) * hidden * dtypeSize(K.computeType()));
    K.rmsnorm(hs, K.computeType(), xs, E.vector(-1, "finalNorm.weight"), nl, hidden, s.eps);
    float* logits = B.logits.as<float>(static_cast<size_t>(nl) * s.vocab);
    const DeviceModel::Linear head = E.linear(-1, "lmHead");
    K.matmul(logits, hs, head.w, head.bias, nl, false);
    out.resize(static_cast<size_t>(nl) * s.vocab);
    K.download(out.data(), logits, out.size() * sizeof(float));
  }
  K.synchronize();
  return out;
}

}  // namespace ctx
