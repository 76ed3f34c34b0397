// libuv RAII and the close discipline.
//
// A handle's memory is allocated apart from its owner and freed only in uv_close's callback, so
// the owner may be destroyed at any time: destroying a UvHandle clears handle->data and calls
// uv_close. Every callback must begin with `auto* self = owner<T>(handle); if (!self) return;`
// (write/shutdown/connect requests completing with UV_ECANCELED after close see data == nullptr).
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <utility>

namespace dg::uvx {

// Storage for any stream handle (tcp or pipe): uv_handle_t is the common prefix.
union Socket {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
};

template <class T>
T* owner(const void* handle) {
  return static_cast<T*>(static_cast<const uv_handle_t*>(handle)->data);
}

template <class H>
class Handle {
 public:
  Handle() : h_(new H{}) {}
  explicit Handle(void* owner) : h_(new H{}) { base()->data = owner; }
  ~Handle() { close(); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : h_(std::exchange(o.h_, nullptr)), live_(std::exchange(o.live_, false)) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      close();
      h_ = std::exchange(o.h_, nullptr);
      live_ = std::exchange(o.live_, false);
    }
    return *this;
  }

  H* get() const { return h_; }
  H* operator->() const { return h_; }
  uv_handle_t* base() const { return reinterpret_cast<uv_handle_t*>(h_); }
  uv_stream_t* stream() const { return reinterpret_cast<uv_stream_t*>(h_); }
  explicit operator bool() const { return h_ != nullptr && live_; }

  // Call after the uv_*_init succeeded: from then on the handle must go through uv_close.
  void initialized() { live_ = true; }
  void set_owner(void* owner) {
    if (h_) base()->data = owner;
  }
  // Gives up ownership without closing (the caller takes over the close discipline).
  H* release() {
    live_ = false;
    return std::exchange(h_, nullptr);
  }

  void close() {
    if (!h_) return;
    H* h = std::exchange(h_, nullptr);
    reinterpret_cast<uv_handle_t*>(h)->data = nullptr;
    if (live_) {
      live_ = false;
      auto* base = reinterpret_cast<uv_handle_t*>(h);
      if (!uv_is_closing(base)) {
        uv_close(base, [](uv_handle_t* hh) { delete reinterpret_cast<H*>(hh); });
        return;
      }
      // Already closing (someone else called uv_close): leak-free only if its callback frees.
      return;
    }
    delete h;
  }

 private:
  H* h_ = nullptr;
  bool live_ = false;
};

// A job for libuv's thread pool (uv_queue_work) whose owner may go away before it ends.
//
// The uv_work_t and the job live on the heap until libuv's after-work callback, which frees them.
// The owner holds a Work; destroying it (or calling detach()) lets go of the job: libuv cancels it
// if no pool thread has taken it yet, otherwise it finishes there and is dropped; `done` is never
// called for a detached job. The queued request keeps the loop alive until it ends (at most one
// job's run time once detached, as a started job cannot be stopped).
//
// Job: movable, with `void run()` that runs on a pool thread and touches nothing but the job's
// own data. done(owner, job, status) runs on the loop thread; status is 0, or a libuv error
// (the job did not run). The owner may destroy the Work from inside done.
template <class Job>
class Work {
 public:
  using Done = void (*)(void* owner, Job& job, int status);

  Work() = default;
  ~Work() { detach(); }
  Work(const Work&) = delete;
  Work& operator=(const Work&) = delete;

  bool busy() const { return req_ != nullptr; }

  // Queues the job (one at a time per Work). Returns uv_queue_work's result; on failure nothing
  // is queued and the job is dropped.
  int start(uv_loop_t* loop, Job job, void* owner, Done done) {
    detach();
    auto* r = new Req{uv_work_t{}, std::move(job), this, owner, done};
    r->req.data = r;
    int rc = uv_queue_work(
        loop, &r->req, [](uv_work_t* w) { static_cast<Req*>(w->data)->job.run(); },
        [](uv_work_t* w, int status) {
          std::unique_ptr<Req> r(static_cast<Req*>(w->data));
          if (!r->work) return;  // detached
          r->work->req_ = nullptr;
          r->done(r->owner, r->job, status);
        });
    if (rc != 0) {
      delete r;
      return rc;
    }
    req_ = r;
    return 0;
  }

  void detach() {
    if (!req_) return;
    Req* r = std::exchange(req_, nullptr);
    r->work = nullptr;
    // 0: never started, after-work runs with UV_ECANCELED; UV_EBUSY: running or done, it ends
    // on its own. Either way the after-work callback frees it.
    uv_cancel(reinterpret_cast<uv_req_t*>(&r->req));
  }

 private:
  struct Req {
    uv_work_t req;
    Job job;
    Work* work;  // nullptr once detached
    void* owner;
    Done done;
  };
  Req* req_ = nullptr;
};

inline std::string err_name(int code) { return uv_strerror(code); }

// A loop that closes every handle left on it on destruction and checks uv_loop_close() == 0.
class Loop {
 public:
  Loop() { uv_loop_init(&loop_); }
  ~Loop() { close(); }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  uv_loop_t* get() { return &loop_; }
  // Runs the loop until nothing is left; returns uv_loop_close's result (0 = nothing leaked).
  int close() {
    if (closed_) return 0;
    uv_run(&loop_, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop_);
    if (rc == 0) closed_ = true;
    return rc;
  }

 private:
  uv_loop_t loop_{};
  bool closed_ = false;
};

}  // namespace dg::uvx
