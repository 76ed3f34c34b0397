// libuv RAII and the close discipline.
//
// A handle's memory is allocated apart from its owner and freed only in uv_close's callback, so
// the owner may be destroyed at any time: destroying a UvHandle clears handle->data and calls
// uv_close. Every callback must begin with `auto* self = owner<T>(handle); if (!self) return;`
// (write/shutdown/connect requests completing with UV_ECANCELED after close see data == nullptr).
#pragma once

#include <uv.h>

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
