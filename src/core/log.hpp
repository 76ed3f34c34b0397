// Structured logging: one line per event, JSON (default) or a human "text" format.
// Lines are buffered and written once per loop iteration (app calls flush() from a uv_check
// handle), so a busy proxy does one write(2) per iteration, not one per request.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace dg::log {

enum class Format { Json, Text };
enum class Level { Debug, Info, Warn, Error };

// path empty = stderr. Re-opening (SIGHUP) is the same call.
bool configure(Format format, const std::string& path, Level min_level, std::string* error);
void flush();
Format format();

// Builder for one line: Line(Level::Info, "request").str("method", m).num("status", 200).emit();
// The line is written straight into the thread's pending buffer (no allocation, no copy) unless
// another Line is being built on the thread at the same time; a line never emitted is dropped, and
// one below the configured level costs nothing. Keys are ASCII identifiers (not escaped).
class Line {
 public:
  Line(Level level, std::string_view event);
  ~Line();
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;
  Line& str(std::string_view key, std::string_view value);
  Line& num(std::string_view key, int64_t value);
  Line& boolean(std::string_view key, bool value);
  Line& dbl(std::string_view key, double value);
  void emit();

 private:
  void key(std::string_view k);
  void head(std::string_view event);
  Level level_;
  std::string* buf_ = nullptr;  // the thread's pending buffer or own_; null = filtered out
  std::string own_;
  bool direct_ = false, json_ = true, emitted_ = false;
};

void info(std::string_view event, std::string_view message);
void warn(std::string_view event, std::string_view message);
void error(std::string_view event, std::string_view message);

}  // namespace dg::log
