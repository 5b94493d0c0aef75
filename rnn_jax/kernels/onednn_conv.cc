// 2-D convolutions for XLA:CPU through oneDNN, as one typed XLA FFI handler.
//
// Why: on CPU, XLA's own convolutions (Eigen / YNNPACK) are 1.3-4x slower than oneDNN's for the
// small NHWC convolutions of CPU-sized ResNets, most of all for kernel gradients (see
// docs/performance.md). rnn_jax/kernels/build.py compiles this file once per machine;
// rnn_jax/kernels/conv.py calls it.
//
// Layouts are JAX's: activations NHWC, kernels HWIO, float32, no dilation, one group. The batch
// is split into one slice per thread of XLA's intra-op pool; every slice runs single-threaded
// oneDNN (OpenMP pinned to one thread, so oneDNN never competes with XLA's own threads).
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

extern "C" void omp_set_num_threads(int);

namespace ffi = xla::ffi;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {

enum Kind : int64_t { kForward = 0, kBackwardData = 1, kBackwardWeights = 2 };

// A compiled oneDNN primitive for one (kind, slice shape, stride, padding).
struct Plan {
  dnnl::primitive prim;
  dnnl::memory::desc first_md;   // operand 1: x (forward, weight gradient) or dy (data gradient)
  dnnl::memory::desc second_md;  // operand 2 when it is an activation: dy (weight gradient)
  dnnl::memory::desc out_md;     // the activation result: y (forward) or dx (data gradient)
  dnnl::memory::desc user_w_md;  // HWIO, as JAX holds kernels
  dnnl::memory::desc w_md;       // oneDNN's preferred (blocked) kernel layout
  dnnl::memory::desc scratch_md;
  dnnl::reorder w_reorder;       // HWIO -> blocked (forward, data gradient) or back (weight gradient)
};

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

std::mutex plans_mutex;
std::map<std::vector<int64_t>, std::unique_ptr<Plan>> plans;  // entries are never erased

// key: kind, N, H, W, C, OH, OW, O, KH, KW, stride h/w, pad top/bottom/left/right
const Plan& GetPlan(const std::vector<int64_t>& k) {
  std::lock_guard<std::mutex> lock(plans_mutex);
  auto found = plans.find(k);
  if (found != plans.end()) return *found->second;
  const int64_t kind = k[0];
  dnnl::memory::dims src_dims{k[1], k[4], k[2], k[3]}, dst_dims{k[1], k[7], k[5], k[6]},
      w_dims{k[7], k[4], k[8], k[9]}, strides{k[10], k[11]}, pad_l{k[12], k[14]}, pad_r{k[13], k[15]};
  auto& engine = Engine();
  auto src_md = dnnl::memory::desc(src_dims, dt::f32, tag::nhwc);
  auto dst_md = dnnl::memory::desc(dst_dims, dt::f32, tag::nhwc);
  auto user_w_md = dnnl::memory::desc(w_dims, dt::f32, tag::hwio);
  auto any_w_md = dnnl::memory::desc(w_dims, dt::f32, tag::any);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // per-thread scratch: slices run concurrently
  auto forward = dnnl::convolution_forward::primitive_desc(
      engine, dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src_md, any_w_md,
      dst_md, strides, pad_l, pad_r, attr);
  auto plan = std::make_unique<Plan>();
  plan->user_w_md = user_w_md;
  if (kind == kForward) {
    plan->prim = dnnl::convolution_forward(forward);
    plan->first_md = src_md;
    plan->out_md = dst_md;
    plan->w_md = forward.weights_desc();
    plan->scratch_md = forward.scratchpad_desc();
    plan->w_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(engine, user_w_md, engine, plan->w_md));
  } else if (kind == kBackwardData) {
    auto pd = dnnl::convolution_backward_data::primitive_desc(
        engine, dnnl::algorithm::convolution_direct, src_md, any_w_md, dst_md, strides, pad_l, pad_r,
        forward, attr);
    plan->prim = dnnl::convolution_backward_data(pd);
    plan->first_md = dst_md;
    plan->out_md = src_md;
    plan->w_md = pd.weights_desc();
    plan->scratch_md = pd.scratchpad_desc();
    plan->w_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(engine, user_w_md, engine, plan->w_md));
  } else {
    auto pd = dnnl::convolution_backward_weights::primitive_desc(
        engine, dnnl::algorithm::convolution_direct, src_md, any_w_md, dst_md, strides, pad_l, pad_r,
        forward, attr);
    plan->prim = dnnl::convolution_backward_weights(pd);
    plan->first_md = src_md;
    plan->second_md = dst_md;
    plan->w_md = pd.diff_weights_desc();
    plan->scratch_md = pd.scratchpad_desc();
    plan->w_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(engine, plan->w_md, engine, user_w_md));
  }
  const Plan& ref = *plan;
  plans.emplace(k, std::move(plan));
  return ref;
}

// A growable buffer aligned for oneDNN's vector loads (std::vector<char> is only 16-byte aligned).
class AlignedBuffer {
 public:
  void* Get(size_t size) {
    if (size > size_) {
      data_.reset(static_cast<char*>(std::aligned_alloc(kAlign, (size + kAlign - 1) / kAlign * kAlign)));
      if (!data_) throw std::bad_alloc();
      size_ = size;
    }
    return data_.get();
  }

 private:
  static constexpr size_t kAlign = 4096;
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  std::unique_ptr<char, Free> data_;
  size_t size_ = 0;
};

// One batch slice on the calling thread. a: x or dy; b: w (HWIO) or dy; out: y, dx or dw (HWIO).
void RunSlice(int64_t kind, const Plan& p, const float* a, const float* b, float* out) {
  omp_set_num_threads(1);
  thread_local AlignedBuffer scratch, blocked_w;
  auto& engine = Engine();
  dnnl::stream stream(engine);
  dnnl::memory first(p.first_md, engine, const_cast<float*>(a));
  dnnl::memory w(p.w_md, engine, blocked_w.Get(p.w_md.get_size()));
  dnnl::memory pad(p.scratch_md, engine, scratch.Get(p.scratch_md.get_size()));
  if (kind == kBackwardWeights) {
    dnnl::memory second(p.second_md, engine, const_cast<float*>(b));
    dnnl::memory user_w(p.user_w_md, engine, out);
    p.prim.execute(stream, {{DNNL_ARG_SRC, first}, {DNNL_ARG_DIFF_DST, second},
                            {DNNL_ARG_DIFF_WEIGHTS, w}, {DNNL_ARG_SCRATCHPAD, pad}});
    p.w_reorder.execute(stream, w, user_w);
  } else {
    dnnl::memory user_w(p.user_w_md, engine, const_cast<float*>(b));
    dnnl::memory result(p.out_md, engine, out);
    p.w_reorder.execute(stream, user_w, w);
    if (kind == kForward) {
      p.prim.execute(stream, {{DNNL_ARG_SRC, first}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, result},
                              {DNNL_ARG_SCRATCHPAD, pad}});
    } else {
      p.prim.execute(stream, {{DNNL_ARG_DIFF_DST, first}, {DNNL_ARG_WEIGHTS, w},
                              {DNNL_ARG_DIFF_SRC, result}, {DNNL_ARG_SCRATCHPAD, pad}});
    }
  }
  stream.wait();
}

ffi::Error ConvImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> a, ffi::Buffer<ffi::F32> b,
                    ffi::ResultBuffer<ffi::F32> out, int64_t kind, int64_t stride_h, int64_t stride_w,
                    int64_t pad_top, int64_t pad_bottom, int64_t pad_left, int64_t pad_right) {
  omp_set_num_threads(1);  // before oneDNN sees this thread: plans are then made for one thread too
  auto ad = a.dimensions(), bd = b.dimensions(), od = out->dimensions();
  if (ad.size() != 4 || bd.size() != 4 || od.size() != 4 || kind < kForward || kind > kBackwardWeights)
    return ffi::Error::InvalidArgument("rnn_jax_onednn_conv: expects rank-4 NHWC / HWIO float32 buffers");
  const int64_t *x, *y, *w;  // the shapes of x (NHWC), y (NHWC) and w (HWIO)
  if (kind == kForward) {
    x = ad.begin(); w = bd.begin(); y = od.begin();
  } else if (kind == kBackwardData) {
    y = ad.begin(); w = bd.begin(); x = od.begin();
  } else {
    x = ad.begin(); y = bd.begin(); w = od.begin();
  }
  const int64_t batch = x[0];
  int64_t parts = std::max<int64_t>(std::min<int64_t>(pool.num_threads(), batch), 1);
  while (parts > 1 && batch % parts) --parts;
  const int64_t slice = batch / parts;
  const std::vector<int64_t> key{kind, slice, x[1], x[2], x[3], y[1], y[2], y[3], w[0], w[1],
                                 stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right};
  try {
    const Plan* plan = &GetPlan(key);
    const bool weight_grad = kind == kBackwardWeights;
    const size_t a_step = slice * ad[1] * ad[2] * ad[3];
    const size_t b_step = weight_grad ? slice * bd[1] * bd[2] * bd[3] : 0;
    const size_t out_step = weight_grad ? 0 : slice * od[1] * od[2] * od[3];
    const size_t w_count = weight_grad ? out->element_count() : 0;
    const float* a_data = a.typed_data();
    const float* b_data = b.typed_data();
    float* out_data = out->typed_data();
    if (parts == 1) {
      RunSlice(kind, *plan, a_data, b_data, out_data);
      return ffi::Error::Success();
    }
    // Slices are claimed from a counter. The caller claims until none is left and then waits
    // only for slices another thread has already started: it never waits on a queued task,
    // which could deadlock a small pool whose threads all sit in such a wait.
    struct Shared {
      std::vector<float> partial_w;  // weight gradients of slices 1.., summed in order at the end
      std::atomic<int64_t> next{0}, done{0};
      std::mutex mutex;
      std::condition_variable finished;
    };
    auto shared = std::make_shared<Shared>();
    shared->partial_w.resize((parts - 1) * w_count);
    auto work = [shared, plan, kind, a_data, b_data, out_data, a_step, b_step, out_step, w_count,
                 parts, weight_grad]() {
      for (int64_t i; (i = shared->next.fetch_add(1)) < parts;) {
        float* dest = !weight_grad ? out_data + i * out_step
                      : i == 0     ? out_data
                                   : shared->partial_w.data() + (i - 1) * w_count;
        RunSlice(kind, *plan, a_data + i * a_step, b_data + i * b_step, dest);
        if (shared->done.fetch_add(1) + 1 == parts) {
          std::lock_guard<std::mutex> lock(shared->mutex);
          shared->finished.notify_all();
        }
      }
    };
    for (int64_t i = 1; i < parts; ++i) {
      auto task = work;
      pool.Schedule(std::move(task));
    }
    work();
    {
      std::unique_lock<std::mutex> lock(shared->mutex);
      shared->finished.wait(lock, [&] { return shared->done.load() == parts; });
    }
    for (int64_t i = 1; i < parts && weight_grad; ++i) {  // fixed order: results are deterministic
      const float* partial = shared->partial_w.data() + (i - 1) * w_count;
      for (size_t j = 0; j < w_count; ++j) out_data[j] += partial[j];
    }
  } catch (const dnnl::error& e) {
    return ffi::Error::Internal(std::string("rnn_jax_onednn_conv: oneDNN: ") + e.what());
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(RnnJaxOnednnConv, ConvImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("kind")
                                  .Attr<int64_t>("stride_h")
                                  .Attr<int64_t>("stride_w")
                                  .Attr<int64_t>("pad_top")
                                  .Attr<int64_t>("pad_bottom")
                                  .Attr<int64_t>("pad_left")
                                  .Attr<int64_t>("pad_right"));
