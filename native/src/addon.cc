// beacon.node: the N-API face of the native engine (used by src/backend/cuda/index.ts).
//
//   probe()                      -> { available, reason, library, devices: [...] }
//   loadEngine(spec)             -> Promise<Engine>   weights are read on a worker thread
//   Engine: kvBytesPerRow, info(), memory(), resetPeak(), newSequence(), timeMatmul(m,n,k,iters), dispose()
//   Sequence: length, step(req) -> Promise<{logits, selection?}>, retain(rows), kvBytes(), snapshot(),
//             restore(snap), dispose()
//
// Steps run on libuv's thread pool (the event loop keeps drawing progress). Everything that touches
// an engine's buffers holds the engine's mutex, so one step runs at a time per engine.

#include <napi.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "cpu_kernels.h"
#include "cuda_loader.h"
#include "engine.h"

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
  in.positions = getArray<int32_t, napi_int32_array>(req, "positions", false);
  in.ranges = getArray<int32_t, napi_int32_array>(req, "ranges", false);
  in.logitRows = getArray<int32_t, napi_int32_array>(req, "logitRows", true);
  in.invFreq = getArray<float, napi_float32_array>(req, "invFreq", true);
  Napi::Value scale = req.Get("ropeScale");
  in.ropeScale = scale.IsNumber() ? scale.As<Napi::Number>().FloatValue() : 1.0f;
  in.reportSelection = req.Get("reportSelection").ToBoolean();
  Napi::Value sel = req.Get("select");
  if (sel.IsObject()) {
    Napi::Object s = sel.As<Napi::Object>();
    ctx::SelectParams p;
    p.nInit = getInt(s, "nInit");
    p.topK = getInt(s, "topK");
    p.nLocal = getInt(s, "nLocal");
    Napi::Value c = s.Get("reuseCosine");
    if (c.IsNumber()) {
      p.reuse = true;
      p.reuseCosine = c.As<Napi::Number>().FloatValue();
    }
    in.select = p;
  }
  return in;
}

// ---- per-environment constructors -------------------------------------------------------------

struct AddonData {
  Napi::FunctionReference engineCtor;
  Napi::FunctionReference sequenceCtor;
};

// ---- Sequence -----------------------------------------------------------------------------------

class SequenceWrap : public Napi::ObjectWrap<SequenceWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Sequence",
                       {InstanceAccessor<&SequenceWrap::Length>("length"), InstanceMethod<&SequenceWrap::Step>("step"),
                        InstanceMethod<&SequenceWrap::Retain>("retain"), InstanceMethod<&SequenceWrap::KvBytes>("kvBytes"),
                        InstanceMethod<&SequenceWrap::Snapshot>("snapshot"),
                        InstanceMethod<&SequenceWrap::Restore>("restore"),
                        InstanceMethod<&SequenceWrap::Dispose>("dispose")});
  }

  explicit SequenceWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SequenceWrap>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) typeError(info.Env(), "Sequence is created by Engine.newSequence()");
    seq_ = *info[0].As<Napi::External<std::shared_ptr<ctx::Sequence>>>().Data();
    engine_ = seq_->engine();
  }

 private:
  class StepWorker : public Napi::AsyncWorker {
   public:
    StepWorker(Napi::Env env, std::shared_ptr<ctx::Engine> engine, std::shared_ptr<ctx::Sequence> seq,
               ctx::StepInput in)
        : Napi::AsyncWorker(env, "ctx.step"), deferred_(Napi::Promise::Deferred::New(env)), engine_(std::move(engine)),
          seq_(std::move(seq)), in_(std::move(in)) {}
    Napi::Promise promise() { return deferred_.Promise(); }

    void Execute() override {
      try {
        std::lock_guard<std::mutex> lock(engine_->mutex());
        out_ = seq_->step(in_);
      } catch (const std::exception& e) {
        SetError(e.what());
      }
    }
    void OnOK() override {
      Napi::Env env = Env();
      Napi::Object r = Napi::Object::New(env);
      r.Set("logits", toFloat32Array(env, out_.logits));
      if (in_.reportSelection) {
        Napi::Array sel = Napi::Array::New(env, out_.selection.size());
        for (size_t l = 0; l < out_.selection.size(); l++) sel.Set(l, toInt32Array(env, out_.selection[l]));
        r.Set("selection", sel);
      }
      deferred_.Resolve(r);
    }
    void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

   private:
    Napi::Promise::Deferred deferred_;
    std::shared_ptr<ctx::Engine> engine_;
    std::shared_ptr<ctx::Sequence> seq_;
    ctx::StepInput in_;
    ctx::StepOutput out_;
  };

  template <typename F>
  auto locked(Napi::Env env, F&& f) -> decltype(f()) {
    std::lock_guard<std::mutex> lock(engine_->mutex());
    try {
      return f();
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
  }

  Napi::Value Length(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), locked(info.Env(), [&] { return seq_->length(); }));
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    if (info.Length() != 1 || !info[0].IsObject()) typeError(info.Env(), "step(request) takes one object");
    auto* w = new StepWorker(info.Env(), engine_, seq_, parseStep(info[0].As<Napi::Object>()));
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
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
    Napi::Array cache = Napi::Array::New(env, s.selectCache.size());
    for (size_t l = 0; l < s.selectCache.size(); l++) {
      if (!s.selectCache[l]) {
        cache.Set(l, env.Null());
        continue;
      }
      Napi::Object e = Napi::Object::New(env);
      e.Set("qbar", toFloat32Array(env, s.selectCache[l]->qbar));
      e.Set("top", toInt32Array(env, s.selectCache[l]->top));
      cache.Set(l, e);
    }
    o.Set("selectCache", cache);
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
    Napi::Value cv = o.Get("selectCache");
    if (cv.IsArray()) {
      Napi::Array cache = cv.As<Napi::Array>();
      for (uint32_t l = 0; l < cache.Length(); l++) {
        Napi::Value e = cache.Get(l);
        if (!e.IsObject()) {
          s.selectCache.push_back(std::nullopt);
          continue;
        }
        Napi::Object eo = e.As<Napi::Object>();
        ctx::SelectCacheEntry entry;
        entry.qbar = floats(eo.Get("qbar"));
        entry.top = getArray<int32_t, napi_int32_array>(eo, "top", true);
        s.selectCache.push_back(std::move(entry));
      }
    }
    locked(env, [&] { seq_->restore(s); });
    return env.Undefined();
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    locked(info.Env(), [&] { seq_->dispose(); });
    return info.Env().Undefined();
  }

  std::shared_ptr<ctx::Sequence> seq_;
  std::shared_ptr<ctx::Engine> engine_;
};

// ---- Engine -------------------------------------------------------------------------------------

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {InstanceAccessor<&EngineWrap::KvBytesPerRow>("kvBytesPerRow"),
                        InstanceMethod<&EngineWrap::Info>("info"), InstanceMethod<&EngineWrap::Memory>("memory"),
                        InstanceMethod<&EngineWrap::ResetPeak>("resetPeak"),
                        InstanceMethod<&EngineWrap::NewSequence>("newSequence"),
                        InstanceMethod<&EngineWrap::TimeMatmul>("timeMatmul"),
                        InstanceMethod<&EngineWrap::Dispose>("dispose")});
  }

  explicit EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) typeError(info.Env(), "Engine is created by loadEngine()");
    engine_ = *info[0].As<Napi::External<std::shared_ptr<ctx::Engine>>>().Data();
  }

 private:
  template <typename F>
  auto locked(Napi::Env env, F&& f) -> decltype(f()) {
    std::lock_guard<std::mutex> lock(engine_->mutex());
    try {
      return f();
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
  }

  Napi::Value KvBytesPerRow(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(engine_->kvBytesPerRow()));
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ctx::KernelSetInfo ki{};
    engine_->kernels().info(&ki);
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", ki.name);
    o.Set("computeType", ctx::dtypeName(engine_->kernels().computeType()));
    o.Set("kvType", ctx::dtypeName(engine_->kernels().kvType()));
    o.Set("totalMemoryBytes", static_cast<double>(ki.totalMemoryBytes));
    return o;
  }

  Napi::Value Memory(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("inUseBytes", static_cast<double>(engine_->kernels().bytesInUse()));
    o.Set("peakBytes", static_cast<double>(engine_->kernels().peakBytes()));
    return o;
  }

  Napi::Value ResetPeak(const Napi::CallbackInfo& info) {
    locked(info.Env(), [&] { engine_->kernels().resetPeak(); });
    return info.Env().Undefined();
  }

  Napi::Value NewSequence(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<ctx::Sequence> seq = locked(env, [&] { return engine_->newSequence(); });
    auto* data = env.GetInstanceData<AddonData>();
    return data->sequenceCtor.New({Napi::External<std::shared_ptr<ctx::Sequence>>::New(env, &seq)});
  }

  Napi::Value TimeMatmul(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() != 4) typeError(env, "timeMatmul(m, n, k, iters)");
    const int32_t m = info[0].As<Napi::Number>().Int32Value(), n = info[1].As<Napi::Number>().Int32Value();
    const int32_t k = info[2].As<Napi::Number>().Int32Value(), iters = info[3].As<Napi::Number>().Int32Value();
    return Napi::Number::New(env, locked(env, [&] { return engine_->kernels().timeMatmul(m, n, k, iters); }));
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    locked(info.Env(), [&] { engine_->dispose(); });
    return info.Env().Undefined();
  }

  std::shared_ptr<ctx::Engine> engine_;
};

// ---- loadEngine(spec): weights are read on a worker thread ----------------------------------------

class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, ctx::ModelSpec spec, std::string device, DType dtype)
      : Napi::AsyncWorker(env, "ctx.loadEngine"), deferred_(Napi::Promise::Deferred::New(env)), spec_(std::move(spec)),
        device_(std::move(device)), dtype_(dtype) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      std::shared_ptr<ctx::Kernels> kernels;
      if (device_ == "host") {
        kernels = ctx::createCpuKernels(dtype_);
      } else {
        kernels = ctx::createCudaKernels(dtype_);
      }
      engine_ = std::make_shared<ctx::Engine>(std::move(kernels), spec_);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    auto* data = env.GetInstanceData<AddonData>();
    deferred_.Resolve(data->engineCtor.New({Napi::External<std::shared_ptr<ctx::Engine>>::New(env, &engine_)}));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  ctx::ModelSpec spec_;
  std::string device_;
  DType dtype_;
  std::shared_ptr<ctx::Engine> engine_;
};

Napi::Value LoadEngine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsObject()) typeError(env, "loadEngine(spec) takes one object");
  Napi::Object spec = info[0].As<Napi::Object>();
  const std::string device = spec.Get("device").ToString().Utf8Value();
  const std::string dtype = spec.Get("dtype").ToString().Utf8Value();
  if (device != "host" && device != "cuda") typeError(env, "device must be \"host\" or \"cuda\"");
  if (dtype != "f32" && dtype != "bf16") typeError(env, "dtype must be \"f32\" or \"bf16\"");
  auto* w = new LoadWorker(env, parseSpec(spec), device, dtype == "bf16" ? DType::BF16 : DType::F32);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->engineCtor = Napi::Persistent(EngineWrap::Define(env));
  data->sequenceCtor = Napi::Persistent(SequenceWrap::Define(env));
  env.SetInstanceData(data);
  exports.Set("probe", Napi::Function::New(env, Probe));
  exports.Set("loadEngine", Napi::Function::New(env, LoadEngine));
  exports.Set("abiVersion", ctx::kKernelsAbiVersion);
  return exports;
}

}  // namespace

NODE_API_MODULE(beacon, Init)
