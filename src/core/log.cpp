#include "core/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
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
thread_local bool t_line_open = false;  // a Line is being written into t_pending directly
thread_local size_t t_open_start = 0;   // ... starting there: flush() leaves it in place

std::string_view level_name(Level l) {
  switch (l) {
    case Level::Debug: return "debug";
    case Level::Info: return "info";
    case Level::Warn: return "warn";
    case Level::Error: return "error";
  }
  return "info";
}

// "2026-11-23T14:45:27.123Z"; strftime runs once per second per thread, not once per line.
void now_iso(std::string& out) {
  thread_local time_t t_sec = -1;
  thread_local char t_prefix[32];
  thread_local size_t t_len = 0;
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec != t_sec) {
    tm t{};
    gmtime_r(&ts.tv_sec, &t);
    t_len = strftime(t_prefix, sizeof t_prefix, "%Y-%m-%dT%H:%M:%S", &t);
    t_sec = ts.tv_sec;
  }
  auto ms = static_cast<unsigned>(ts.tv_nsec / 1000000);
  const char frac[5] = {'.', static_cast<char>('0' + ms / 100), static_cast<char>('0' + ms / 10 % 10),
                        static_cast<char>('0' + ms % 10), 'Z'};
  out.append(t_prefix, t_len);
  out.append(frac, sizeof frac);
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
  size_t n = t_line_open ? t_open_start : t_pending.size();
  if (n == 0) return;
  write_all(state().fd.load(), t_pending.data(), n);
  t_pending.erase(0, n);
  t_open_start = 0;
}

Line::Line(Level level, std::string_view event) : level_(level) {
  const State& s = state();
  if (level < s.min_level) return;
  json_ = s.format == Format::Json;
  if (!t_line_open) {
    t_line_open = direct_ = true;
    buf_ = &t_pending;
  } else {
    buf_ = &own_;
  }
  if (direct_) t_open_start = t_pending.size();
  try {
    head(event);
  } catch (...) {  // out of memory: leave no half line behind, nor the thread's buffer marked open
    if (direct_) {
      t_pending.resize(t_open_start);
      t_line_open = direct_ = false;
    }
    throw;
  }
}

void Line::head(std::string_view event) {
  std::string& b = *buf_;
  if (json_) {
    b += "{\"time\":\"";
    now_iso(b);
    b += "\",\"level\":\"";
    b += level_name(level_);
    b += "\",\"event\":";
    append_json_string(b, event);
  } else {
    now_iso(b);
    b += ' ';
    b += level_name(level_);
    b += ' ';
    b += event;
  }
}

Line::~Line() {
  if (!direct_) return;
  if (!emitted_) t_pending.resize(t_open_start);
  t_line_open = false;
}

void Line::key(std::string_view k) {
  std::string& b = *buf_;
  if (json_) {
    b += ",\"";
    b += k;
    b += "\":";
  } else {
    b += ' ';
    b += k;
    b += '=';
  }
}

Line& Line::str(std::string_view k, std::string_view value) {
  if (!buf_ || emitted_) return *this;
  key(k);
  if (json_ || value.empty() || value.find_first_of(" \"=\t\r\n\\") != std::string_view::npos)
    append_json_string(*buf_, value);
  else
    *buf_ += value;
  return *this;
}

Line& Line::num(std::string_view k, int64_t value) {
  if (!buf_ || emitted_) return *this;
  key(k);
  char b[24];
  auto r = std::to_chars(b, b + sizeof b, value);
  buf_->append(b, static_cast<size_t>(r.ptr - b));
  return *this;
}

Line& Line::dbl(std::string_view k, double value) {
  if (!buf_ || emitted_) return *this;
  key(k);
  char b[32];
  snprintf(b, sizeof b, "%.3f", value);
  *buf_ += b;
  return *this;
}

Line& Line::boolean(std::string_view k, bool value) {
  if (!buf_ || emitted_) return *this;
  key(k);
  *buf_ += value ? "true" : "false";
  return *this;
}

void Line::emit() {
  if (!buf_ || emitted_) return;
  emitted_ = true;
  if (json_) *buf_ += '}';
  *buf_ += '\n';
  if (direct_) {
    t_line_open = false;
    direct_ = false;
  } else if (t_line_open) {
    t_pending.insert(t_open_start, own_);  // before the line still being written
    t_open_start += own_.size();
  } else {
    t_pending += own_;
  }
  if (t_pending.size() > 32 * 1024 || level_ >= Level::Warn) flush();
}

void info(std::string_view event, std::string_view message) { Line(Level::Info, event).str("msg", message).emit(); }
void warn(std::string_view event, std::string_view message) { Line(Level::Warn, event).str("msg", message).emit(); }
void error(std::string_view event, std::string_view message) { Line(Level::Error, event).str("msg", message).emit(); }

}  // namespace dg::log
