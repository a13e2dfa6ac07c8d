// ctx_native.node: the N-API face of the native backend (used by src/backend/native/addon.ts).
//
//   probe()                  -> { available, reason, library, devices: [...] }
//   loadModel(spec)          -> Promise<Model>   weights are read on a worker thread
//   Model: kvBytesPerRow, info(), memory(), resetPeak(), newSequence(), timeMatmul(m,n,k,iters), dispose()
//   releaseFilePages(path) -> bytes advised     trimHeap() -> boolean     (process_memory.h)
//   softVoteTopK(qbar, keys, D, from, to, k, threads) -> Int32Array             (select_kernels.h)
//   gatherRotated({ keys, values, D, rotaryDim, rows, cos, sin, scale, unitLength, outK, outV, threads })
//                            synchronous, over the cpu backend's KV arrays in place (select_kernels.h)
//   attendCausal(q, rows, heads, headDim, keys[], values[], T, offset, out, threads)
//                            the cpu backend's decoded row's attention, synchronous (attention_rows.h)
//   Sequence: length, step(req, keys) -> Promise<Float32Array logits>        a dense step
//             begin(req) -> Promise<Float32Array q̄>, vote(from, to, k) -> Promise<Int32Array>,
//             attend(keys) -> Promise<{ qbar } | { logits }>, abort()       a step layer by layer
//             retain(rows), kvBytes(), snapshot(), restore(snap), dispose()
//   signals: { watch(), heard() -> number, acknowledge(), hold(), termAsInt(), release() -> number }
//                            before and around a long call on the main thread (signals.h)
//
// Steps and layers run on libuv's thread pool (the event loop keeps drawing progress). Everything
// that touches a model's buffers holds the model's mutex, so one call runs at a time per model.

#include <napi.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "attention_rows.h"
#include "cpu_kernels.h"
#include "cuda_loader.h"
#include "device_model.h"
#include "process_memory.h"
#include "select_kernels.h"
#include "sequence.h"
#include "signals.h"

namespace {

using ctx::DType;

// ---- small conversion helpers ------------------------------------------------------------------

[[noreturn]] void typeError(Napi::Env env, const std::string& what) { throw Napi::TypeError::New(env, what); }

int32_t getInt(const Napi::Object& o, const char* key, int32_t fallback = INT32_MIN) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    if (fallback != INT32_MIN) return fallback;
    typeError(o.Env(), std::string("missing number \"") + key + "\"");
  }
  if (!v.IsNumber()) typeError(o.Env(), std::string("\"") + key + "\" must be a number");
  return v.As<Napi::Number>().Int32Value();
}

template <typename T, napi_typedarray_type Kind>
std::vector<T> getArray(const Napi::Object& o, const char* key, bool required) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    if (required) typeError(o.Env(), std::string("missing typed array \"") + key + "\"");
    return {};
  }
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != Kind) {
    typeError(o.Env(), std::string("\"") + key + "\" has the wrong typed-array type");
  }
  auto arr = v.As<Napi::TypedArrayOf<T>>();
  return std::vector<T>(arr.Data(), arr.Data() + arr.ElementLength());
}

Napi::Float32Array toFloat32Array(Napi::Env env, const std::vector<float>& v) {
  auto out = Napi::Float32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(out.Data(), v.data(), v.size() * sizeof(float));
  return out;
}

Napi::Int32Array toInt32Array(Napi::Env env, const std::vector<int32_t>& v) {
  auto out = Napi::Int32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(out.Data(), v.data(), v.size() * sizeof(int32_t));
  return out;
}

/** A { "<role>.<key>": tensorIndex } object. */
ctx::RoleMap getRoles(Napi::Value v, size_t tensorCount) {
  if (!v.IsObject()) typeError(v.Env(), "a role map must be an object");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Array keys = o.GetPropertyNames();
  ctx::RoleMap roles;
  for (uint32_t i = 0; i < keys.Length(); i++) {
    const std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
    const int32_t index = getInt(o, key.c_str());
    if (index < 0 || static_cast<size_t>(index) >= tensorCount) typeError(v.Env(), "role \"" + key + "\" names no tensor");
    roles[key] = index;
  }
  return roles;
}

ctx::ModelSpec parseSpec(const Napi::Object& spec) {
  Napi::Env env = spec.Env();
  ctx::ModelSpec m;
  Napi::Object shape = spec.Get("shape").As<Napi::Object>();
  m.shape.vocab = getInt(shape, "vocab");
  m.shape.hidden = getInt(shape, "hidden");
  m.shape.intermediate = getInt(shape, "intermediate");
  m.shape.layers = getInt(shape, "layers");
  m.shape.heads = getInt(shape, "heads");
  m.shape.kvHeads = getInt(shape, "kvHeads");
  m.shape.headDim = getInt(shape, "headDim");
  m.shape.eps = shape.Get("eps").As<Napi::Number>().FloatValue();

  Napi::Array tensors = spec.Get("tensors").As<Napi::Array>();
  for (uint32_t i = 0; i < tensors.Length(); i++) {
    Napi::Object t = tensors.Get(i).As<Napi::Object>();
    ctx::TensorSource s;
    s.file = t.Get("file").As<Napi::String>().Utf8Value();
    s.offset = t.Get("offset").As<Napi::Number>().Int64Value();
    s.dtype = t.Get("dtype").As<Napi::String>().Utf8Value();
    Napi::Array dims = t.Get("shape").As<Napi::Array>();
    for (uint32_t d = 0; d < dims.Length(); d++) s.shape.push_back(dims.Get(d).As<Napi::Number>().Int64Value());
    if (s.shape.empty() || s.shape.size() > 2) typeError(env, "tensor shapes must have 1 or 2 dimensions");
    s.norm = t.Get("norm").ToBoolean();
    m.tensors.push_back(std::move(s));
  }
  if (m.tensors.empty()) typeError(env, "spec.tensors is empty");
  m.model = getRoles(spec.Get("model"), m.tensors.size());
  Napi::Array layers = spec.Get("layers").As<Napi::Array>();
  for (uint32_t i = 0; i < layers.Length(); i++) m.layers.push_back(getRoles(layers.Get(i), m.tensors.size()));
  Napi::Value rnd = spec.Get("randomSeed");
  if (rnd.IsNumber()) {
    m.randomWeights = true;
    m.seed = static_cast<uint64_t>(rnd.As<Napi::Number>().Int64Value());
  }
  return m;
}

ctx::StepInput parseStep(const Napi::Object& req) {
  ctx::StepInput in;
  in.tokens = getArray<int32_t, napi_int32_array>(req, "tokens", true);
  in.beacon = getArray<uint8_t, napi_uint8_array>(req, "beacon", false);
  in.logitRows = getArray<int32_t, napi_int32_array>(req, "logitRows", true);
  in.invFreq = getArray<float, napi_float32_array>(req, "invFreq", true);
  Napi::Value scale = req.Get("ropeScale");
  in.ropeScale = scale.IsNumber() ? scale.As<Napi::Number>().FloatValue() : 1.0f;
  Napi::Value queryScale = req.Get("queryScale");
  in.queryScale = queryScale.IsNumber() ? queryScale.As<Napi::Number>().FloatValue() : 1.0f;
  in.meanQueryAt = getInt(req, "meanQueryAt", -1);
  return in;
}

ctx::LayerKeys parseKeys(const Napi::Object& k) {
  ctx::LayerKeys keys;
  keys.rows = getArray<int32_t, napi_int32_array>(k, "rows", false);
  keys.firstNew = getInt(k, "firstNew");
  keys.positions = getArray<int32_t, napi_int32_array>(k, "positions", true);
  keys.ranges = getArray<int32_t, napi_int32_array>(k, "ranges", false);
  keys.rangesLo = getInt(k, "rangesLo", 0);
  keys.rangesHi = getInt(k, "rangesHi", 0);
  return keys;
}

/** Runs f() under the model's mutex on the JS thread; its exceptions become JS errors. */
template <typename F>
auto underLock(ctx::DeviceModel& model, Napi::Env env, F&& f) -> decltype(f()) {
  std::lock_guard<std::mutex> lock(model.mutex());
  try {
    return f();
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

// ---- per-environment constructors -------------------------------------------------------------

struct AddonData {
  Napi::FunctionReference modelCtor;
  Napi::FunctionReference sequenceCtor;
};

/**
 * Runs `work` on libuv's thread pool and resolves the returned promise with toJs(its result), or
 * rejects it with the exception's message.
 */
template <typename R>
class Worker : public Napi::AsyncWorker {
 public:
  Worker(Napi::Env env, const char* name, std::function<R()> work, std::function<Napi::Value(Napi::Env, R&)> toJs)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        toJs_(std::move(toJs)) {}

  static Napi::Promise run(Napi::Env env, const char* name, std::function<R()> work,
                           std::function<Napi::Value(Napi::Env, R&)> toJs) {
    auto* w = new Worker(env, name, std::move(work), std::move(toJs));
    Napi::Promise p = w->deferred_.Promise();
    w->Queue();
    return p;
  }

  void Execute() override {
    try {
      result_ = work_();
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(toJs_(Env(), result_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<R()> work_;
  std::function<Napi::Value(Napi::Env, R&)> toJs_;
  R result_{};
};

// ---- Sequence -----------------------------------------------------------------------------------

class SequenceWrap : public Napi::ObjectWrap<SequenceWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Sequence",
                       {InstanceAccessor<&SequenceWrap::Length>("length"), InstanceMethod<&SequenceWrap::Step>("step"),
                        InstanceMethod<&SequenceWrap::Begin>("begin"), InstanceMethod<&SequenceWrap::Vote>("vote"),
                        InstanceMethod<&SequenceWrap::Attend>("attend"), InstanceMethod<&SequenceWrap::Abort>("abort"),
                        InstanceMethod<&SequenceWrap::Retain>("retain"), InstanceMethod<&SequenceWrap::KvBytes>("kvBytes"),
                        InstanceMethod<&SequenceWrap::Snapshot>("snapshot"),
                        InstanceMethod<&SequenceWrap::Restore>("restore"),
                        InstanceMethod<&SequenceWrap::Dispose>("dispose")});
  }

  explicit SequenceWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SequenceWrap>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) typeError(info.Env(), "Sequence is created by Model.newSequence()");
    seq_ = *info[0].As<Napi::External<std::shared_ptr<ctx::Sequence>>>().Data();
    model_ = seq_->model();
  }

 private:
  template <typename F>
  auto locked(Napi::Env env, F&& f) -> decltype(f()) {
    return underLock(*model_, env, std::forward<F>(f));
  }

  /** Runs f(sequence) on the thread pool under the model's mutex. */
  template <typename R>
  Napi::Promise async(Napi::Env env, const char* name, std::function<R(ctx::Sequence&)> f,
                      std::function<Napi::Value(Napi::Env, R&)> toJs) {
    auto model = model_;
    auto seq = seq_;
    return Worker<R>::run(
        env, name,
        [model, seq, f]() {
          std::lock_guard<std::mutex> lock(model->mutex());
          return f(*seq);
        },
        std::move(toJs));
  }

  Napi::Value Length(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), locked(info.Env(), [&] { return seq_->length(); }));
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    if (info.Length() != 2 || !info[0].IsObject() || !info[1].IsObject()) typeError(info.Env(), "step(request, keys) takes two objects");
    auto in = parseStep(info[0].As<Napi::Object>());
    auto keys = parseKeys(info[1].As<Napi::Object>());
    return async<std::vector<float>>(
        info.Env(), "ctx.step", [in, keys](ctx::Sequence& s) { return s.step(in, keys); },
        [](Napi::Env env, std::vector<float>& logits) -> Napi::Value { return toFloat32Array(env, logits); });
  }

  Napi::Value Begin(const Napi::CallbackInfo& info) {
    if (info.Length() != 1 || !info[0].IsObject()) typeError(info.Env(), "begin(request) takes one object");
    auto in = parseStep(info[0].As<Napi::Object>());
    return async<std::vector<float>>(
        info.Env(), "ctx.begin", [in](ctx::Sequence& s) { return s.begin(in); },
        [](Napi::Env env, std::vector<float>& qbar) -> Napi::Value { return toFloat32Array(env, qbar); });
  }

  Napi::Value Vote(const Napi::CallbackInfo& info) {
    if (info.Length() != 3) typeError(info.Env(), "vote(from, to, k)");
    const int32_t from = info[0].As<Napi::Number>().Int32Value(), to = info[1].As<Napi::Number>().Int32Value();
    const int32_t k = info[2].As<Napi::Number>().Int32Value();
    return async<std::vector<int32_t>>(
        info.Env(), "ctx.vote", [from, to, k](ctx::Sequence& s) { return s.vote(from, to, k); },
        [](Napi::Env env, std::vector<int32_t>& top) -> Napi::Value { return toInt32Array(env, top); });
  }

  Napi::Value Attend(const Napi::CallbackInfo& info) {
    if (info.Length() != 1 || !info[0].IsObject()) typeError(info.Env(), "attend(keys) takes one object");
    auto keys = parseKeys(info[0].As<Napi::Object>());
    return async<ctx::LayerResult>(
        info.Env(), "ctx.attend", [keys](ctx::Sequence& s) { return s.attend(keys); },
        [](Napi::Env env, ctx::LayerResult& r) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          if (r.done) o.Set("logits", toFloat32Array(env, r.logits));
          else o.Set("qbar", toFloat32Array(env, r.qbar));
          return o;
        });
  }

  Napi::Value Abort(const Napi::CallbackInfo& info) {
    locked(info.Env(), [&] { seq_->abort(); });
    return info.Env().Undefined();
  }

  Napi::Value Retain(const Napi::CallbackInfo& info) {
    if (info.Length() != 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      typeError(info.Env(), "retain(rows) takes an Int32Array");
    }
    auto arr = info[0].As<Napi::Int32Array>();
    std::vector<int32_t> rows(arr.Data(), arr.Data() + arr.ElementLength());
    locked(info.Env(), [&] { seq_->retain(rows); });
    return info.Env().Undefined();
  }

  Napi::Value KvBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(locked(info.Env(), [&] { return seq_->kvBytes(); })));
  }

  Napi::Value Snapshot(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ctx::Snapshot s = locked(env, [&] { return seq_->snapshot(); });
    Napi::Object o = Napi::Object::New(env);
    o.Set("rows", s.rows);
    Napi::Array keys = Napi::Array::New(env, s.keys.size()), values = Napi::Array::New(env, s.values.size());
    for (size_t l = 0; l < s.keys.size(); l++) {
      keys.Set(l, toFloat32Array(env, s.keys[l]));
      values.Set(l, toFloat32Array(env, s.values[l]));
    }
    o.Set("keys", keys);
    o.Set("values", values);
    return o;
  }

  Napi::Value Restore(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsObject()) typeError(env, "restore(snapshot) takes one object");
    Napi::Object o = info[0].As<Napi::Object>();
    ctx::Snapshot s;
    s.rows = getInt(o, "rows");
    auto floats = [&](Napi::Value v) {
      if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
        typeError(env, "snapshot arrays must be Float32Array");
      }
      auto a = v.As<Napi::Float32Array>();
      return std::vector<float>(a.Data(), a.Data() + a.ElementLength());
    };
    Napi::Array keys = o.Get("keys").As<Napi::Array>(), values = o.Get("values").As<Napi::Array>();
    for (uint32_t l = 0; l < keys.Length(); l++) s.keys.push_back(floats(keys.Get(l)));
    for (uint32_t l = 0; l < values.Length(); l++) s.values.push_back(floats(values.Get(l)));
    locked(env, [&] { seq_->restore(s); });
    return env.Undefined();
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    locked(info.Env(), [&] { seq_->dispose(); });
    return info.Env().Undefined();
  }

  std::shared_ptr<ctx::Sequence> seq_;
  std::shared_ptr<ctx::DeviceModel> model_;
};

// ---- Model --------------------------------------------------------------------------------------

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Model",
                       {InstanceAccessor<&ModelWrap::KvBytesPerRow>("kvBytesPerRow"),
                        InstanceMethod<&ModelWrap::Info>("info"), InstanceMethod<&ModelWrap::Memory>("memory"),
                        InstanceMethod<&ModelWrap::ResetPeak>("resetPeak"),
                        InstanceMethod<&ModelWrap::NewSequence>("newSequence"),
                        InstanceMethod<&ModelWrap::TimeMatmul>("timeMatmul"),
                        InstanceMethod<&ModelWrap::Dispose>("dispose")});
  }

  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) typeError(info.Env(), "Model is created by loadModel()");
    model_ = *info[0].As<Napi::External<std::shared_ptr<ctx::DeviceModel>>>().Data();
  }

 private:
  template <typename F>
  auto locked(Napi::Env env, F&& f) -> decltype(f()) {
    return underLock(*model_, env, std::forward<F>(f));
  }

  Napi::Value KvBytesPerRow(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(model_->kvBytesPerRow()));
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ctx::KernelSetInfo ki{};
    model_->kernels().info(&ki);
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", ki.name);
    o.Set("computeType", ctx::dtypeName(model_->kernels().computeType()));
    o.Set("kvType", ctx::dtypeName(model_->kernels().kvType()));
    o.Set("totalMemoryBytes", static_cast<double>(ki.totalMemoryBytes));
    return o;
  }

  Napi::Value Memory(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("inUseBytes", static_cast<double>(model_->kernels().bytesInUse()));
    o.Set("peakBytes", static_cast<double>(model_->kernels().peakBytes()));
    return o;
  }

  Napi::Value ResetPeak(const Napi::CallbackInfo& info) {
    locked(info.Env(), [&] { model_->kernels().resetPeak(); });
    return info.Env().Undefined();
  }

  Napi::Value NewSequence(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<ctx::Sequence> seq = locked(env, [&] { return model_->newSequence(); });
    auto* data = env.GetInstanceData<AddonData>();
    return data->sequenceCtor.New({Napi::External<std::shared_ptr<ctx::Sequence>>::New(env, &seq)});
  }

  Napi::Value TimeMatmul(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 4) typeError(env, "timeMatmul(m, n, k, iters)");
    const int32_t m = info[0].As<Napi::Number>().Int32Value(), n = info[1].As<Napi::Number>().Int32Value();
    const int32_t k = info[2].As<Napi::Number>().Int32Value(), iters = info[3].As<Napi::Number>().Int32Value();
    return Napi::Number::New(env, locked(env, [&] { return model_->kernels().timeMatmul(m, n, k, iters); }));
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    locked(info.Env(), [&] { model_->dispose(); });
    return info.Env().Undefined();
  }

  std::shared_ptr<ctx::DeviceModel> model_;
};

// ---- loadModel(spec): weights are read on a worker thread -----------------------------------------

Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsObject()) typeError(env, "loadModel(spec) takes one object");
  Napi::Object spec = info[0].As<Napi::Object>();
  const std::string device = spec.Get("device").ToString().Utf8Value();
  const std::string dtypeName = spec.Get("dtype").ToString().Utf8Value();
  if (device != "host" && device != "cuda") typeError(env, "device must be \"host\" or \"cuda\"");
  if (dtypeName != "f32" && dtypeName != "bf16") typeError(env, "dtype must be \"f32\" or \"bf16\"");
  const DType dtype = dtypeName == "bf16" ? DType::BF16 : DType::F32;
  auto parsed = std::make_shared<ctx::ModelSpec>(parseSpec(spec));
  using ModelPtr = std::shared_ptr<ctx::DeviceModel>;
  return Worker<ModelPtr>::run(
      env, "ctx.loadModel",
      [parsed, device, dtype]() {
        std::shared_ptr<ctx::Kernels> kernels = device == "host" ? ctx::createCpuKernels(dtype) : ctx::createCudaKernels(dtype);
        return std::make_shared<ctx::DeviceModel>(std::move(kernels), *parsed);
      },
      [](Napi::Env env, ModelPtr& model) -> Napi::Value {
        auto* data = env.GetInstanceData<AddonData>();
        return data->modelCtor.New({Napi::External<ModelPtr>::New(env, &model)});
      });
}

Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ctx::CudaProbe& p = ctx::probeCuda();
  Napi::Object o = Napi::Object::New(env);
  o.Set("available", p.available);
  if (!p.available) o.Set("reason", p.reason);
  o.Set("library", p.library.empty() ? env.Null() : Napi::String::New(env, p.library));
  Napi::Array devices = Napi::Array::New(env, p.devices.size());
  for (size_t i = 0; i < p.devices.size(); i++) {
    const CtxCudaDevice& d = p.devices[i];
    Napi::Object dev = Napi::Object::New(env);
    dev.Set("name", d.name);
    dev.Set("memoryBytes", static_cast<double>(d.totalMemoryBytes));
    dev.Set("freeMemoryBytes", static_cast<double>(d.freeMemoryBytes));
    dev.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    dev.Set("multiprocessors", d.multiprocessors);
    dev.Set("driver", std::to_string(d.driverVersion / 1000) + "." + std::to_string((d.driverVersion % 1000) / 10));
    dev.Set("runtime", std::to_string(d.runtimeVersion / 1000) + "." + std::to_string((d.runtimeVersion % 1000) / 10));
    devices.Set(i, dev);
  }
  o.Set("devices", devices);
  return o;
}

Napi::Value ReleaseFilePages(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) typeError(info.Env(), "releaseFilePages(path): path must be a string");
  return Napi::Number::New(info.Env(), static_cast<double>(ctx::releaseFilePages(info[0].As<Napi::String>().Utf8Value())));
}

Napi::Value TrimHeap(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), ctx::trimHeap()); }

// ---- TokenSelect on the cpu backend's KV store (select_kernels.h) -------------------------------

/** Per-KV-head arrays (all Uint16Array of f16 bits, or all Float32Array), each holding ≥ rows·D values. */
ctx::KvHeads getKvHeads(Napi::Value v, int32_t D, int64_t rows, const char* what) {
  Napi::Env env = v.Env();
  if (!v.IsArray() || v.As<Napi::Array>().Length() == 0) typeError(env, std::string(what) + " must be a non-empty array of typed arrays");
  Napi::Array a = v.As<Napi::Array>();
  ctx::KvHeads kv;
  kv.D = D;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value h = a.Get(i);
    if (!h.IsTypedArray()) typeError(env, std::string(what) + " must hold typed arrays");
    Napi::TypedArray t = h.As<Napi::TypedArray>();
    const bool half = t.TypedArrayType() == napi_uint16_array;
    if (!half && t.TypedArrayType() != napi_float32_array) typeError(env, std::string(what) + " must hold Uint16Array (f16) or Float32Array");
    if (i > 0 && half != kv.half) typeError(env, std::string(what) + " mixes f16 and f32 arrays");
    kv.half = half;
    if (static_cast<int64_t>(t.ElementLength()) < rows * D) throw Napi::RangeError::New(env, std::string(what) + " holds fewer rows than asked for");
    kv.heads.push_back(static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset());
  }
  return kv;
}

Napi::Float32Array getFloat32(Napi::Value v, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) typeError(v.Env(), std::string(what) + " must be a Float32Array");
  return v.As<Napi::Float32Array>();
}

int32_t getCount(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) typeError(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

Napi::Value SoftVoteTopK(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 7) typeError(env, "softVoteTopK(qbar, keys, D, from, to, k, threads)");
  Napi::Float32Array qbar = getFloat32(info[0], "qbar");
  const int32_t D = getCount(info, 2, "D");
  const int32_t from = getCount(info, 3, "from");
  const int32_t to = getCount(info, 4, "to");
  const int32_t k = getCount(info, 5, "k");
  const int32_t threads = std::max(1, getCount(info, 6, "threads"));
  if (D <= 0 || from < 0 || to < from || k < 0) throw Napi::RangeError::New(env, "softVoteTopK: needs D > 0, 0 <= from <= to, k >= 0");
  const ctx::KvHeads keys = getKvHeads(info[1], D, to, "keys");
  const int32_t Hkv = static_cast<int32_t>(keys.heads.size());
  const int32_t Hq = static_cast<int32_t>(qbar.ElementLength() / D);
  if (static_cast<int64_t>(Hq) * D != static_cast<int64_t>(qbar.ElementLength()) || Hq % Hkv != 0) {
    throw Napi::RangeError::New(env, "softVoteTopK: qbar must hold Hq·D values, Hq a multiple of the KV heads");
  }
  return toInt32Array(env, ctx::softVoteTopK(qbar.Data(), Hq, keys, from, to, k, threads));
}

Napi::Value GatherRotated(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) typeError(env, "gatherRotated({ keys, values, D, rotaryDim, rows, cos, sin, scale, unitLength, outK, outV, threads })");
  Napi::Object o = info[0].As<Napi::Object>();
  const int32_t D = getInt(o, "D");
  const int32_t R = getInt(o, "rotaryDim");
  const int32_t threads = std::max(1, getInt(o, "threads", 1));
  if (D <= 0 || R < 0 || R > D || R % 2 != 0) throw Napi::RangeError::New(env, "gatherRotated: needs D > 0 and an even rotaryDim <= D");
  // rows: an Int32Array of stored rows, or a count n for rows 0..n-1.
  Napi::Value rowsValue = o.Get("rows");
  const int32_t* rows = nullptr;
  int32_t count = 0;
  if (rowsValue.IsNumber()) {
    count = rowsValue.As<Napi::Number>().Int32Value();
  } else if (rowsValue.IsTypedArray() && rowsValue.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
    Napi::Int32Array r = rowsValue.As<Napi::Int32Array>();
    rows = r.Data();
    count = static_cast<int32_t>(r.ElementLength());
  } else {
    typeError(env, "gatherRotated: rows must be an Int32Array or a row count");
  }
  if (count < 0) throw Napi::RangeError::New(env, "gatherRotated: a negative row count");
  int64_t stored = rows ? 0 : count;  // rows the KV arrays must hold
  for (int32_t i = 0; rows && i < count; i++) {
    if (rows[i] < 0) throw Napi::RangeError::New(env, "gatherRotated: a negative row");
    stored = std::max<int64_t>(stored, static_cast<int64_t>(rows[i]) + 1);
  }
  const ctx::KvHeads keys = getKvHeads(o.Get("keys"), D, stored, "keys");
  const ctx::KvHeads values = getKvHeads(o.Get("values"), D, stored, "values");
  if (values.heads.size() != keys.heads.size()) typeError(env, "gatherRotated: keys and values have different head counts");
  ctx::RopeRows rope;
  Napi::Float32Array cos = getFloat32(o.Get("cos"), "cos");
  Napi::Float32Array sin = getFloat32(o.Get("sin"), "sin");
  if (static_cast<int64_t>(std::min(cos.ElementLength(), sin.ElementLength())) < static_cast<int64_t>(count) * (R / 2)) {
    throw Napi::RangeError::New(env, "gatherRotated: cos/sin hold fewer rows than asked for");
  }
  rope.cos = cos.Data();
  rope.sin = sin.Data();
  rope.R = R;
  Napi::Value scale = o.Get("scale");
  rope.scale = scale.IsNumber() ? scale.As<Napi::Number>().FloatValue() : 1.0f;
  rope.unitLength = o.Get("unitLength").ToBoolean();
  auto outputs = [&](const char* key) {
    Napi::Value v = o.Get(key);
    if (!v.IsArray() || v.As<Napi::Array>().Length() != keys.heads.size()) typeError(env, std::string("gatherRotated: ") + key + " must hold one Float32Array per KV head");
    Napi::Array a = v.As<Napi::Array>();
    std::vector<float*> out;
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Float32Array f = getFloat32(a.Get(i), key);
      if (static_cast<int64_t>(f.ElementLength()) < static_cast<int64_t>(count) * D) throw Napi::RangeError::New(env, std::string("gatherRotated: ") + key + " holds fewer rows than asked for");
      out.push_back(f.Data());
    }
    return out;
  };
  ctx::gatherRotated(keys, values, rows, count, rope, outputs("outK"), outputs("outV"), threads);
  return env.Undefined();
}

/** A Float32Array argument of at least `need` elements. */
float* float32Arg(const Napi::Value& v, size_t need, const char* what) {
  Napi::Float32Array a = getFloat32(v, what);
  if (a.ElementLength() < need) throw Napi::RangeError::New(v.Env(), std::string(what) + " is too short");
  return a.Data();
}

std::vector<const float*> float32Args(const Napi::Value& v, size_t need, const char* what) {
  if (!v.IsArray()) typeError(v.Env(), std::string(what) + " must be an array of Float32Arrays");
  auto list = v.As<Napi::Array>();
  std::vector<const float*> out;
  for (uint32_t i = 0; i < list.Length(); i++) out.push_back(float32Arg(list.Get(i), need, what));
  return out;
}

Napi::Value AttendCausal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 10) typeError(env, "attendCausal(q, rows, heads, headDim, keys, values, T, offset, out, threads)");
  ctx::CausalAttention a;
  a.rows = getCount(info, 1, "rows");
  a.heads = getCount(info, 2, "heads");
  a.headDim = getCount(info, 3, "headDim");
  a.T = getCount(info, 6, "T");
  a.offset = getCount(info, 7, "offset");
  if (a.rows < 0 || a.heads <= 0 || a.headDim <= 0 || a.T < 0) typeError(env, "attendCausal: negative or zero sizes");
  const size_t qSize = static_cast<size_t>(a.rows) * a.heads * a.headDim;
  const size_t kvSize = static_cast<size_t>(a.T) * a.headDim;
  a.q = float32Arg(info[0], qSize, "q");
  a.keys = float32Args(info[4], kvSize, "keys");
  a.values = float32Args(info[5], kvSize, "values");
  a.out = float32Arg(info[8], qSize, "out");
  if (a.keys.empty() || a.keys.size() != a.values.size() || a.heads % a.keys.size() != 0) typeError(env, "attendCausal: heads must be a multiple of the KV heads");
  ctx::attendCausal(a, std::max(1, getCount(info, 9, "threads")));
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->modelCtor = Napi::Persistent(ModelWrap::Define(env));
  data->sequenceCtor = Napi::Persistent(SequenceWrap::Define(env));
  env.SetInstanceData(data);
  exports.Set("probe", Napi::Function::New(env, Probe));
  exports.Set("loadModel", Napi::Function::New(env, LoadModel));
  exports.Set("releaseFilePages", Napi::Function::New(env, ReleaseFilePages));
  exports.Set("trimHeap", Napi::Function::New(env, TrimHeap));
  exports.Set("softVoteTopK", Napi::Function::New(env, SoftVoteTopK));
  exports.Set("gatherRotated", Napi::Function::New(env, GatherRotated));
  exports.Set("attendCausal", Napi::Function::New(env, AttendCausal));
  exports.Set("abiVersion", ctx::kKernelsAbiVersion);
  Napi::Object signals = Napi::Object::New(env);
  signals.Set("watch", Napi::Function::New(env, [](const Napi::CallbackInfo&) { ctx::watchSignals(); }));
  signals.Set("heard", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ctx::heardSignal()); }));
  signals.Set("acknowledge", Napi::Function::New(env, [](const Napi::CallbackInfo&) { ctx::acknowledgeSignals(); }));
  signals.Set("hold", Napi::Function::New(env, [](const Napi::CallbackInfo&) { ctx::holdSignals(); }));
  signals.Set("termAsInt", Napi::Function::New(env, [](const Napi::CallbackInfo&) { ctx::termAsInt(); }));
  signals.Set("release", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ctx::releaseSignals()); }));
  exports.Set("signals", signals);
  return exports;
}

}  // namespace

NODE_API_MODULE(ctx_native, Init)
