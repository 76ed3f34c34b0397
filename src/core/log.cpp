#include "core/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <atomic>

#include "core/strings.hpp"

namespace dg::log {
namespace {

// Format, level and fd are shared by every loop thread; each thread buffers its own lines and
// writes them with one write(2) (O_APPEND), so lines never interleave mid-line.
struct State {
  std::atomic<Format> format{Format::Json};
  std::atomic<Level> min_level{Level::Info};
  std::atomic<int> fd{2};
};

State& state() {
  static State s;
  return s;
}

thread_local std::string t_pending;

std::string_view level_name(Level l) {
  switch (l) {
    case Level::Debug: return "debug";
    case Level::Info: return "info";
    case Level::Warn: return "warn";
    case Level::Error: return "error";
  }
  return "info";
}

void now_iso(std::string& out) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char buf[40];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  snprintf(buf + n, sizeof buf - n, ".%03ldZ", ts.tv_nsec / 1000000);
  out += buf;
}

void write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere to report a failing log; drop
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

bool configure(Format format, const std::string& path, Level min_level, std::string* error) {
  State& s = state();
  int fd = -1;
  if (!path.empty() && path != "-" && path != "stderr") {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  } else {
    fd = ::fcntl(2, F_DUPFD_CLOEXEC, 3);
  }
  if (fd < 0) {
    if (error) *error = "cannot open log file " + path + ": " + std::strerror(errno);
    return false;
  }
  flush();
  int cur = s.fd.load();
  if (cur > 2) {
    // Re-point the fd other threads are writing to, atomically (reopen on SIGHUP).
    ::dup2(fd, cur);
    ::close(fd);
  } else {
    s.fd = fd;
  }
  s.format = format;
  s.min_level = min_level;
  return true;
}

Format format() { return state().format; }

void flush() {
  if (t_pending.empty()) return;
  write_all(state().fd.load(), t_pending.data(), t_pending.size());
  t_pending.clear();
}

Line::Line(Level level, std::string_view event) : level_(level) {
  buf_.reserve(256);
  if (state().format == Format::Json) {
    buf_ += "{\"time\":\"";
    now_iso(buf_);
    buf_ += "\",\"level\":\"";
    buf_ += level_name(level);
    buf_ += "\",\"event\":";
    append_json_string(buf_, event);
  } else {
    now_iso(buf_);
    buf_ += ' ';
    buf_ += level_name(level);
    buf_ += ' ';
    buf_ += event;
  }
}

void Line::key(std::string_view k) {
  if (state().format == Format::Json) {
    buf_ += ',';
    append_json_string(buf_, k);
    buf_ += ':';
  } else {
    buf_ += ' ';
    buf_ += k;
    buf_ += '=';
  }
}

Line& Line::str(std::string_view k, std::string_view value) {
  key(k);
  if (state().format == Format::Json) {
    append_json_string(buf_, value);
  } else {
    bool quote = value.empty() || value.find_first_of(" \"=\t") != std::string_view::npos;
    if (quote)
      append_json_string(buf_, value);
    else
      buf_ += value;
  }
  return *this;
}

Line& Line::num(std::string_view k, int64_t value) {
  key(k);
  buf_ += std::to_string(value);
  return *this;
}

Line& Line::dbl(std::string_view k, double value) {
  key(k);
  char b[32];
  snprintf(b, sizeof b, "%.3f", value);
  buf_ += b;
  return *this;
}

Line& Line::boolean(std::string_view k, bool value) {
  key(k);
  buf_ += value ? "true" : "false";
  return *this;
}

void Line::emit() {
  if (emitted_) return;
  emitted_ = true;
  State& s = state();
  if (level_ < s.min_level) return;
  if (s.format == Format::Json) buf_ += '}';
  buf_ += '\n';
  t_pending += buf_;
  if (t_pending.size() > 32 * 1024 || level_ >= Level::Warn) flush();
}

void info(std::string_view event, std::string_view message) { Line(Level::Info, event).str("msg", message).emit(); }
void warn(std::string_view event, std::string_view message) { Line(Level::Warn, event).str("msg", message).emit(); }
void error(std::string_view event, std::string_view message) { Line(Level::Error, event).str("msg", message).emit(); }

}  // namespace dg::log
