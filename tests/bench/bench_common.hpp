// Small helpers shared by the benchmark origin and load generator (no dockgate code).
#pragma once

#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

namespace bench {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

inline uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

inline bool set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL, 0);
  return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

inline void raise_nofile() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = char(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = char(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Incremental decoder for a chunked body. feed() consumes bytes and reports the payload bytes it
// saw through on_data(ptr, len); it returns how many input bytes it used (less than given only
// once the body is complete), or -1 on a framing error.
class ChunkedDecoder {
 public:
  template <class F>
  long feed(const char* p, size_t n, F&& on_data) {
    size_t i = 0;
    while (i < n && state_ != State::Done) {
      char c = p[i];
      switch (state_) {
        case State::Size:
          if (c == '\r') {
            state_ = State::SizeLf;
          } else if (c == ';') {
            state_ = State::Ext;
          } else {
            int d = hexval(c);
            if (d < 0 || ++digits_ > 15) return -1;
            remaining_ = remaining_ * 16 + uint64_t(d);
          }
          ++i;
          break;
        case State::Ext:
          if (c == '\r') state_ = State::SizeLf;
          ++i;
          break;
        case State::SizeLf:
          if (c != '\n' || digits_ == 0) return -1;
          ++i;
          digits_ = 0;
          state_ = remaining_ == 0 ? State::Trailer : State::Data;
          line_len_ = 0;
          break;
        case State::Data: {
          size_t take = n - i < remaining_ ? n - i : size_t(remaining_);
          on_data(p + i, take);
          total_ += take;
          remaining_ -= take;
          i += take;
          if (remaining_ == 0) state_ = State::DataCr;
          break;
        }
        case State::DataCr:
          if (c != '\r') return -1;
          state_ = State::DataLf;
          ++i;
          break;
        case State::DataLf:
          if (c != '\n') return -1;
          state_ = State::Size;
          ++i;
          break;
        case State::Trailer:  // trailer lines until an empty one
          if (c == '\r') {
            state_ = State::TrailerLf;
          } else {
            ++line_len_;
          }
          ++i;
          break;
        case State::TrailerLf:
          if (c != '\n') return -1;
          ++i;
          if (line_len_ == 0) {
            state_ = State::Done;
          } else {
            line_len_ = 0;
            state_ = State::Trailer;
          }
          break;
        case State::Done:
          break;
      }
    }
    return long(i);
  }
  bool done() const { return state_ == State::Done; }
  uint64_t total() const { return total_; }
  void reset() { *this = ChunkedDecoder{}; }

 private:
  enum class State { Size, Ext, SizeLf, Data, DataCr, DataLf, Trailer, TrailerLf, Done };
  static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  State state_ = State::Size;
  uint64_t remaining_ = 0;
  uint64_t total_ = 0;
  int digits_ = 0;
  size_t line_len_ = 0;
};

}  // namespace bench
