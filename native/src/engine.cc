// The native engine's orchestration (see engine.h). Everything here is host code: it decides what
// runs; the kernel set (kernels.h) does the arithmetic, on the CPU or on a GPU.

#include "engine.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>

#include "dtype.h"

namespace ctx {

namespace {

// MLP rows per pass: bounds the [rows, intermediate] f32 gate/up buffers (4096 × 18944 × 4 B = 310 MB).
constexpr int32_t kMlpChunkRows = 4096;
// Weight bytes read from disk per chunk while loading.
constexpr size_t kLoadChunkBytes = 64u << 20;

std::string fmt(const char* f, long long a) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a);
  return buf;
}

[[noreturn]] void fail(const std::string& why) { throw std::invalid_argument(why); }

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
// Engine: weights

Engine::Engine(std::shared_ptr<Kernels> kernels, const ModelSpec& spec) : k_(std::move(kernels)), shape_(spec.shape) {
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

Engine::~Engine() { dispose(); }

void Engine::dispose() {
  if (disposed_) return;
  disposed_ = true;
  buffers_.reset();
  for (void* p : owned_) k_->release(p);
  owned_.clear();
  weights_.clear();
}

size_t Engine::kvBytesPerRow() const {
  return 2ull * shape_.layers * shape_.kvHeads * shape_.headDim * dtypeSize(k_->kvType());
}

std::shared_ptr<Sequence> Engine::newSequence() {
  if (disposed_) fail("the backend was disposed");
  return std::make_shared<Sequence>(shared_from_this());
}

void Engine::loadTensor(const ModelSpec& spec, int32_t index) {
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

const Engine::Weight* Engine::find(int32_t layer, const std::string& key) const {
  const RoleMap& roles = layer < 0 ? modelRoles_ : layerRoles_[layer];
  const auto it = roles.find(key);
  return it == roles.end() ? nullptr : &weights_[it->second];
}

const Matrix& Engine::matrix(int32_t layer, const std::string& key) const {
  const Weight* w = find(layer, key);
  if (!w || !w->matrix.data) fail("the model has no matrix \"" + key + "\"");
  return w->matrix;
}

const float* Engine::vector(int32_t layer, const std::string& key) const {
  const Weight* w = find(layer, key);
  return w ? w->vector : nullptr;
}

Engine::Linear Engine::linear(int32_t layer, const std::string& role) const {
  return Linear{matrix(layer, role + ".weight"), vector(layer, role + ".bias")};
}

// ---------------------------------------------------------------------------------------------
// Sequence: storage

Sequence::Sequence(std::shared_ptr<Engine> engine) : engine_(std::move(engine)) {
  const int32_t L = engine_->shape().layers;
  keys_.assign(L, nullptr);
  values_.assign(L, nullptr);
  selectCache_.assign(L, std::nullopt);
}

Sequence::~Sequence() {
  std::lock_guard<std::mutex> lock(engine_->mutex());
  freeStorage();
}

void Sequence::freeStorage() {
  Kernels& K = engine_->kernels();
  for (void*& p : keys_) {
    if (p) K.release(p);
    p = nullptr;
  }
  for (void*& p : values_) {
    if (p) K.release(p);
    p = nullptr;
  }
  capacity_ = 0;
  rows_ = 0;
}

void Sequence::dispose() {
  if (disposed_) return;
  freeStorage();
  for (auto& c : selectCache_) c.reset();
  disposed_ = true;
}

void Sequence::checkUsable() const {
  if (disposed_) fail("the sequence was disposed");
  if (engine_->disposed()) fail("the backend was disposed");
}

size_t Sequence::kvBytes() const { return static_cast<size_t>(rows_) * engine_->kvBytesPerRow(); }

/** Grows every layer's K/V storage to hold `rows` rows, keeping the stored ones. */
void Sequence::ensureCapacity(int32_t rows) {
  if (rows <= capacity_) return;
  Kernels& K = engine_->kernels();
  const ModelShape& s = engine_->shape();
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
  checkUsable();
  for (int32_t r : rows) {
    if (r < 0 || r >= rows_) fail(fmt("retain: row %lld is outside the stored rows", r) + " (0.." +
                                  std::to_string(rows_ - 1) + ")");
  }
  const int32_t count = static_cast<int32_t>(rows.size());
  if (count == 0) {
    rows_ = 0;
    for (auto& c : selectCache_) c.reset();
    return;
  }
  Kernels& K = engine_->kernels();
  const ModelShape& s = engine_->shape();
  const size_t rowBytes = static_cast<size_t>(s.kvHeads) * s.headDim * dtypeSize(K.kvType());
  Engine::Buffers& B = *engine_->buffers_;
  int32_t* idx = B.selIdx.as<int32_t>(count);
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
  // Cached selections index rows that may have moved (the reference backend drops them too).
  for (auto& c : selectCache_) c.reset();
}

Snapshot Sequence::snapshot() {
  checkUsable();
  Kernels& K = engine_->kernels();
  const ModelShape& s = engine_->shape();
  const size_t elems = static_cast<size_t>(rows_) * s.kvHeads * s.headDim;
  Snapshot snap;
  snap.rows = rows_;
  float* tmp = static_cast<float*>(engine_->buffers_->kvTmp.get(std::max<size_t>(elems, 1) * 4));
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
  snap.selectCache = selectCache_;
  return snap;
}

void Sequence::restore(const Snapshot& snap) {
  checkUsable();
  Kernels& K = engine_->kernels();
  const ModelShape& s = engine_->shape();
  const size_t rowElems = static_cast<size_t>(s.kvHeads) * s.headDim;
  const size_t elems = static_cast<size_t>(snap.rows) * rowElems;
  if (snap.keys.size() != keys_.size() || snap.values.size() != keys_.size()) fail("snapshot has the wrong layer count");
  for (size_t l = 0; l < keys_.size(); l++) {
    if (snap.keys[l].size() != elems || snap.values[l].size() != elems) fail("snapshot arrays have the wrong size");
  }
  if (!snap.selectCache.empty() && snap.selectCache.size() != keys_.size()) fail("snapshot select cache has the wrong layer count");
  rows_ = 0;
  ensureCapacity(snap.rows);
  float* tmp = static_cast<float*>(engine_->buffers_->kvTmp.get(std::max<size_t>(elems, 1) * 4));
  for (size_t l = 0; l < keys_.size(); l++) {
    for (int which = 0; which < 2; which++) {
      if (!elems) continue;
      K.upload(tmp, (which == 0 ? snap.keys : snap.values)[l].data(), elems * 4);
      K.convert(which == 0 ? keys_[l] : values_[l], K.kvType(), tmp, DType::F32, elems);
      K.synchronize();  // tmp is reused for the next array
    }
  }
  rows_ = snap.rows;
  selectCache_ = snap.selectCache;
  if (selectCache_.empty()) selectCache_.assign(keys_.size(), std::nullopt);
}

// ---------------------------------------------------------------------------------------------
// Sequence: one step

namespace {

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); i++) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  if (na == 0 || nb == 0) return 0;
  return dot / std::sqrt(na * nb);
}

}  // namespace

StepOutput Sequence::step(const StepInput& in) {
  checkUsable();
  Engine& E = *engine_;
  Kernels& K = E.kernels();
  Engine::Buffers& B = *E.buffers_;
  const ModelShape& s = E.shape();
  const int32_t n = static_cast<int32_t>(in.tokens.size());
  const int32_t M = rows_;
  const int64_t T64 = static_cast<int64_t>(M) + n;
  const int32_t D = s.headDim, Hq = s.heads, Hkv = s.kvHeads;
  const int32_t qDim = Hq * D, kvDim = Hkv * D, hidden = s.hidden;
  const DType act = K.computeType(), kvt = K.kvType();
  const size_t actSize = dtypeSize(act), kvRowBytes = static_cast<size_t>(kvDim) * dtypeSize(kvt);

  // ---- check the request (a malformed one is a bug in the caller; say which field) ----
  if (n <= 0) fail("step: no tokens");
  if (T64 > INT32_MAX / 2) fail("step: too many rows");
  const int32_t T = static_cast<int32_t>(T64);
  if (static_cast<int32_t>(in.invFreq.size()) != D / 2) fail("step: rope.invFreq must have head_dim/2 entries");
  if (!in.beacon.empty() && static_cast<int32_t>(in.beacon.size()) != n) fail("step: beacon flags must have one entry per token");
  if (!in.select) {
    if (static_cast<int32_t>(in.positions.size()) != n) fail("step: positions must have one entry per token");
    if (!in.ranges.empty() && static_cast<int32_t>(in.ranges.size()) != 6 * n) fail("step: mask.ranges must have 6 entries per token");
  }
  int32_t nBeacon = 0;
  for (int32_t i = 0; i < n; i++) {
    const bool isBeacon = !in.beacon.empty() && in.beacon[i];
    nBeacon += isBeacon;
    if (!isBeacon && (in.tokens[i] < 0 || in.tokens[i] >= s.vocab)) {
      fail(fmt("step: token id %lld is outside the vocabulary", in.tokens[i]));
    }
  }
  const Engine::Weight* beaconEmbed = E.find(-1, "beaconEmbed.weight");
  if (nBeacon > 0 && (!beaconEmbed || !E.find(0, "beaconQ.weight"))) fail("step: beacon rows need a beacon checkpoint");
  int32_t keysLo = T, keysHi = 0;
  if (!in.select && !in.ranges.empty()) {
    for (int32_t i = 0; i < n; i++) {
      bool any = false;
      for (int r = 0; r < 3; r++) {
        const int32_t a = in.ranges[6 * i + 2 * r], b = in.ranges[6 * i + 2 * r + 1];
        if (b <= a) continue;
        if (a < 0 || b > T) fail(fmt("step: mask range of row %lld is outside the keys", i));
        any = true;
        keysLo = std::min(keysLo, a);
        keysHi = std::max(keysHi, b);
      }
      if (!any) fail(fmt("step: row %lld of the mask sees no key", i));
    }
  }
  for (int32_t r : in.logitRows) {
    if (r < 0 || r >= n) fail(fmt("step: logit row %lld is outside the step's rows", r));
  }
  if (in.select) {
    const SelectParams& sp = *in.select;
    if (sp.nInit < 0 || sp.topK < 0 || sp.nLocal < 0) fail("step: select sizes must be non-negative");
  }

  ensureCapacity(T);

  // ---- inputs to the device ----
  int32_t* dTokens = B.tokens.as<int32_t>(n);
  K.upload(dTokens, in.tokens.data(), n * sizeof(int32_t));
  uint8_t* dBeacon = nullptr;
  if (nBeacon > 0) {
    dBeacon = B.beacon.as<uint8_t>(n);
    K.upload(dBeacon, in.beacon.data(), n);
  }
  float* dInvFreq = B.invFreq.as<float>(D / 2);
  K.upload(dInvFreq, in.invFreq.data(), (D / 2) * sizeof(float));

  // Rows that use the beacon projections vs the base ones (only matters when both kinds are present).
  std::vector<int32_t> rawRows, beaconRows;
  const bool mixed = nBeacon > 0 && nBeacon < n;
  if (mixed) {
    for (int32_t i = 0; i < n; i++) (in.beacon[i] ? beaconRows : rawRows).push_back(i);
    K.upload(B.rawIdx.as<int32_t>(rawRows.size()), rawRows.data(), rawRows.size() * sizeof(int32_t));
    K.upload(B.beaconIdx.as<int32_t>(beaconRows.size()), beaconRows.data(), beaconRows.size() * sizeof(int32_t));
  }
  const bool allBeacon = nBeacon == n;

  // Dense attention: query positions and key positions (stored rows sit at their storage index).
  int32_t* dQpos = B.qpos.as<int32_t>(n);
  int32_t* dKeyPos = B.keyPos.as<int32_t>(T);
  AttentionMask denseMask;
  {
    std::vector<int32_t> keyPos(T);
    std::iota(keyPos.begin(), keyPos.begin() + M, 0);
    if (in.select) {
      // Used only when the selection covers every row: plain causal attention, positions = index.
      std::iota(keyPos.begin() + M, keyPos.end(), M);
    } else {
      std::copy(in.positions.begin(), in.positions.end(), keyPos.begin() + M);
    }
    K.upload(dKeyPos, keyPos.data(), T * sizeof(int32_t));
    K.upload(dQpos, keyPos.data() + M, n * sizeof(int32_t));
    denseMask.causalOffset = M;
    if (!in.select && !in.ranges.empty()) {
      int32_t* dRanges = B.ranges.as<int32_t>(6 * n);
      K.upload(dRanges, in.ranges.data(), 6 * n * sizeof(int32_t));
      denseMask.ranges = dRanges;
      denseMask.keysLo = keysLo;
      denseMask.keysHi = keysHi;
    }
  }

  // ---- the layers ----
  float* x = B.x.as<float>(static_cast<size_t>(n) * hidden);
  K.embed(x, E.matrix(-1, "embed.weight"), beaconEmbed ? &beaconEmbed->matrix : nullptr, dTokens, dBeacon, n);
  void* h = B.h.get(static_cast<size_t>(n) * hidden * actSize);
  float* q = B.q.as<float>(static_cast<size_t>(n) * qDim);
  float* kNew = B.k.as<float>(static_cast<size_t>(n) * kvDim);
  float* vNew = B.v.as<float>(static_cast<size_t>(n) * kvDim);
  void* attn = B.attn.get(static_cast<size_t>(n) * qDim * actSize);

  StepOutput out;
  if (in.reportSelection) out.selection.resize(s.layers);

  for (int32_t l = 0; l < s.layers; l++) {
    const Engine::Linear Lq = E.linear(l, "q"), Lk = E.linear(l, "k"), Lv = E.linear(l, "v"), Lo = E.linear(l, "o");
    // Beacon rows' projections: the beacon ones on beacon checkpoints (the same tensors as q/k/v/o
    // where the checkpoint lacks them: model/tensors.ts), the base ones otherwise.
    const bool hasBeacon = E.find(l, "beaconQ.weight") != nullptr;

    // -- attention block: h = norm(x); q,k,v = h·Wᵀ (+b), beacon rows with the beacon weights --
    K.rmsnorm(h, act, x, E.vector(l, "inputNorm.weight"), n, hidden, s.eps);
    void* hRaw = nullptr;
    void* hBeacon = nullptr;
    if (mixed) {
      hRaw = B.hRaw.get(rawRows.size() * hidden * actSize);
      hBeacon = B.hBeacon.get(beaconRows.size() * hidden * actSize);
      K.gatherRows(hRaw, h, B.rawIdx.as<int32_t>(rawRows.size()), static_cast<int32_t>(rawRows.size()), hidden * actSize);
      K.gatherRows(hBeacon, h, B.beaconIdx.as<int32_t>(beaconRows.size()), static_cast<int32_t>(beaconRows.size()),
                   hidden * actSize);
    }
    // out[n, rows(base)] = h · Wᵀ (+ bias), beacon rows through `beacon`.
    auto project = [&](float* outRows, const Engine::Linear& base, const Engine::Linear& beacon) {
      const bool same = base.w.data == beacon.w.data && base.bias == beacon.bias;
      if (!mixed || same) {
        const Engine::Linear& W = allBeacon ? beacon : base;
        K.matmul(outRows, h, W.w, W.bias, n, false);
        return;
      }
      const int32_t outDim = base.w.rows;
      float* sub = B.sub.as<float>(static_cast<size_t>(n) * outDim);
      const std::pair<const Engine::Linear*, std::pair<void*, Scratch*>> groups[2] = {
          {&base, {hRaw, &B.rawIdx}}, {&beacon, {hBeacon, &B.beaconIdx}}};
      const size_t counts[2] = {rawRows.size(), beaconRows.size()};
      for (int g = 0; g < 2; g++) {
        const int32_t cnt = static_cast<int32_t>(counts[g]);
        K.matmul(sub, groups[g].second.first, groups[g].first->w, groups[g].first->bias, cnt, false);
        K.scatterRows(outRows, sub, groups[g].second.second->as<int32_t>(cnt), cnt, outDim * sizeof(float));
      }
    };
    const Engine::Linear bq = hasBeacon ? E.linear(l, "beaconQ") : Lq;
    const Engine::Linear bk = hasBeacon ? E.linear(l, "beaconK") : Lk;
    const Engine::Linear bv = hasBeacon ? E.linear(l, "beaconV") : Lv;
    const Engine::Linear bo = hasBeacon ? E.linear(l, "beaconO") : Lo;
    project(q, Lq, bq);
    project(kNew, Lk, bk);
    project(vNew, Lv, bv);

    // Append the new rows' K (pre-RoPE) and V to the layer's storage.
    K.convert(static_cast<char*>(keys_[l]) + static_cast<size_t>(M) * kvRowBytes, kvt, kNew, DType::F32,
              static_cast<size_t>(n) * kvDim);
    K.convert(static_cast<char*>(values_[l]) + static_cast<size_t>(M) * kvRowBytes, kvt, vNew, DType::F32,
              static_cast<size_t>(n) * kvDim);

    // Attention over [stored ; new] rows: dense (causal / ranges) or over a TokenSelect selection.
    if (in.select) {
      std::vector<int32_t> sel = selectKeys(l, n, M, *in.select, dInvFreq, in.ropeScale);
      if (sel.empty()) {  // the selection covers every row
        attendDense(l, n, M, dInvFreq, in.ropeScale, denseMask, dQpos, dKeyPos);
        if (in.reportSelection) {
          out.selection[l].resize(T);
          std::iota(out.selection[l].begin(), out.selection[l].end(), 0);
        }
      } else if (in.reportSelection) {
        out.selection[l] = std::move(sel);
      }
    } else {
      attendDense(l, n, M, dInvFreq, in.ropeScale, denseMask, dQpos, dKeyPos);
    }

    // x += attn · Woᵀ (beacon rows through beacon_o_proj when the checkpoint has one)
    const bool sameO = Lo.w.data == bo.w.data && Lo.bias == bo.bias;
    if (!mixed || sameO) {
      const Engine::Linear& O = allBeacon ? bo : Lo;
      K.matmul(x, attn, O.w, O.bias, n, true);
    } else {
      float* oFull = B.oFull.as<float>(static_cast<size_t>(n) * hidden);
      void* attnSub = B.attnSub.get(static_cast<size_t>(n) * qDim * actSize);
      float* sub = B.sub.as<float>(static_cast<size_t>(n) * hidden);
      const std::vector<int32_t>* rowsOf[2] = {&rawRows, &beaconRows};
      Scratch* idxOf[2] = {&B.rawIdx, &B.beaconIdx};
      const Engine::Linear* W[2] = {&Lo, &bo};
      for (int g = 0; g < 2; g++) {
        const int32_t cnt = static_cast<int32_t>(rowsOf[g]->size());
        const int32_t* idx = idxOf[g]->as<int32_t>(cnt);
        K.gatherRows(attnSub, attn, idx, cnt, qDim * actSize);
        K.matmul(sub, attnSub, W[g]->w, W[g]->bias, cnt, false);
        K.scatterRows(oFull, sub, idx, cnt, hidden * sizeof(float));
      }
      K.addInPlace(x, oFull, static_cast<size_t>(n) * hidden);
    }

    // -- MLP block, in row chunks: x += down(silu(gate(norm(x))) * up(norm(x))) --
    const int32_t inter = s.intermediate;
    const Engine::Linear gate = E.linear(l, "gate"), up = E.linear(l, "up"), down = E.linear(l, "down");
    const int32_t chunk = std::min(n, kMlpChunkRows);
    float* g = B.gate.as<float>(static_cast<size_t>(chunk) * inter);
    float* u = B.up.as<float>(static_cast<size_t>(chunk) * inter);
    void* a = B.act.get(static_cast<size_t>(chunk) * inter * actSize);
    for (int32_t r0 = 0; r0 < n; r0 += chunk) {
      const int32_t rows = std::min(chunk, n - r0);
      float* xr = x + static_cast<size_t>(r0) * hidden;
      K.rmsnorm(h, act, xr, E.vector(l, "postNorm.weight"), rows, hidden, s.eps);
      K.matmul(g, h, gate.w, gate.bias, rows, false);
      K.matmul(u, h, up.w, up.bias, rows, false);
      K.swiglu(a, act, g, u, static_cast<size_t>(rows) * inter);
      K.matmul(xr, a, down.w, down.bias, rows, true);
    }
  }

  // ---- logits of the rows asked for: lm_head(norm(x[rows])) ----
  const int32_t nl = static_cast<int32_t>(in.logitRows.size());
  if (nl > 0) {
    int32_t* dRows = B.logitIdx.as<int32_t>(nl);
    K.upload(dRows, in.logitRows.data(), nl * sizeof(int32_t));
    float* xs = B.xs.as<float>(static_cast<size_t>(nl) * hidden);
    K.gatherRows(xs, x, dRows, nl, hidden * sizeof(float));
    void* hs = B.hs.get(static_cast<size_t>(nl) * hidden * actSize);
    K.rmsnorm(hs, act, xs, E.vector(-1, "finalNorm.weight"), nl, hidden, s.eps);
    float* logits = B.logits.as<float>(static_cast<size_t>(nl) * s.vocab);
    const Engine::Linear head = E.linear(-1, "lmHead");
    K.matmul(logits, hs, head.w, head.bias, nl, false);
    out.logits.resize(static_cast<size_t>(nl) * s.vocab);
    K.download(out.logits.data(), logits, out.logits.size() * sizeof(float));
  }
  K.synchronize();
  rows_ = T;
  return out;
}

/** Dense attention of the step's n rows over all T = M + n stored rows; writes Buffers::attn. */
void Sequence::attendDense(int32_t layer, int32_t n, int32_t M, const float* invFreq, float ropeScale,
                           const AttentionMask& mask, const int32_t* qpos, const int32_t* keyPos) {
  Engine& E = *engine_;
  Kernels& K = E.kernels();
  Engine::Buffers& B = *E.buffers_;
  const ModelShape& s = E.shape();
  const int32_t T = M + n, D = s.headDim;
  const DType kvt = K.kvType();
  void* keysRot = B.keysRot.get(static_cast<size_t>(T) * s.kvHeads * D * dtypeSize(kvt));
  float* qr = B.qr.as<float>(static_cast<size_t>(n) * s.heads * D);
  K.rope(keysRot, kvt, keys_[layer], kvt, nullptr, keyPos, T, s.kvHeads, D, invFreq, ropeScale);
  K.rope(qr, DType::F32, B.q.as<float>(0), DType::F32, nullptr, qpos, n, s.heads, D, invFreq, ropeScale);
  K.attention(B.attn.get(0), K.computeType(), qr, keysRot, values_[layer], n, T, s.heads, s.kvHeads, D,
              1.0f / std::sqrt(static_cast<float>(D)), mask);
}

/**
 * TokenSelect for one layer (contract.ts, SelectSpec). Returns the selected key indices S after
 * running attention over them, or an empty list when S would be every row (the caller then runs
 * plain causal attention).
 */
std::vector<int32_t> Sequence::selectKeys(int32_t layer, int32_t n, int32_t M, const SelectParams& sp,
                                          const float* invFreq, float ropeScale) {
  Engine& E = *engine_;
  Kernels& K = E.kernels();
  Engine::Buffers& B = *E.buffers_;
  const ModelShape& s = E.shape();
  const int32_t T = M + n, D = s.headDim, qDim = s.heads * D;
  const int32_t local = std::max(sp.nLocal, n);
  if (static_cast<int64_t>(sp.nInit) + sp.topK + local >= T) return {};
  const int32_t localStart = T - local;  // candidates are [nInit, localStart)

  // q̄: the mean of the new rows' queries, each rotated at nLocal + i. The vote uses plain RoPE
  // (no YaRN attention factor), as the reference backend does.
  float* qbar = B.qbar.as<float>(qDim);
  K.meanRotatedQuery(qbar, B.q.as<float>(0), n, s.heads, D, sp.nLocal, invFreq, 1.0f);
  std::vector<float> qbarHost(qDim);
  K.download(qbarHost.data(), qbar, qDim * sizeof(float));

  std::optional<SelectCacheEntry>& cache = selectCache_[layer];
  std::vector<int32_t> top;
  if (sp.reuse && cache && cosine(qbarHost, cache->qbar) >= sp.reuseCosine) {
    for (int32_t j : cache->top) {
      if (j >= sp.nInit && j < localStart) top.push_back(j);
    }
  } else {
    const int32_t count = localStart - sp.nInit;
    float* vote = B.vote.as<float>(count);
    int32_t* dTop = B.top.as<int32_t>(std::max(sp.topK, 1));
    K.selectVote(vote, qbar, keys_[layer], sp.nInit, localStart, s.heads, s.kvHeads, D);
    top.resize(sp.topK);
    if (sp.topK > 0) {
      K.topK(dTop, vote, count, sp.topK, sp.nInit);
      K.download(top.data(), dTop, sp.topK * sizeof(int32_t));
    }
    cache = SelectCacheEntry{std::move(qbarHost), top};
  }

  // S = [0, nInit) ∪ top ∪ [localStart, T), ascending; each key's position is its rank in S.
  std::vector<int32_t> sel;
  sel.reserve(sp.nInit + top.size() + local);
  for (int32_t j = 0; j < sp.nInit; j++) sel.push_back(j);
  sel.insert(sel.end(), top.begin(), top.end());
  for (int32_t j = localStart; j < T; j++) sel.push_back(j);
  const int32_t S = static_cast<int32_t>(sel.size());

  // Ranks 0..S-1, kept on the device; the new rows are the last n entries of S.
  if (B.iotaLen < S) {
    const int32_t len = std::max(S, 2 * B.iotaLen);
    std::vector<int32_t> ranks(len);
    std::iota(ranks.begin(), ranks.end(), 0);
    K.upload(B.iota.as<int32_t>(len), ranks.data(), len * sizeof(int32_t));
    B.iotaLen = len;
  }
  const int32_t* dRanks = B.iota.as<int32_t>(0);
  int32_t* dSel = B.selIdx.as<int32_t>(S);
  K.upload(dSel, sel.data(), S * sizeof(int32_t));

  const DType kvt = K.kvType();
  const size_t kvRowBytes = static_cast<size_t>(s.kvHeads) * D * dtypeSize(kvt);
  void* keysSel = B.keysRot.get(static_cast<size_t>(S) * kvRowBytes);
  void* valsSel = B.valsSel.get(static_cast<size_t>(S) * kvRowBytes);
  float* qr = B.qr.as<float>(static_cast<size_t>(n) * qDim);
  K.rope(keysSel, kvt, keys_[layer], kvt, dSel, dRanks, S, s.kvHeads, D, invFreq, ropeScale);
  K.gatherRows(valsSel, values_[layer], dSel, S, kvRowBytes);
  K.rope(qr, DType::F32, B.q.as<float>(0), DType::F32, nullptr, dRanks + (S - n), n, s.heads, D, invFreq, ropeScale);
  AttentionMask mask;
  mask.causalOffset = S - n;
  K.attention(B.attn.get(0), K.computeType(), qr, keysSel, valsSel, n, S, s.heads, s.kvHeads, D,
              1.0f / std::sqrt(static_cast<float>(D)), mask);
  return sel;
}

}  // namespace ctx
