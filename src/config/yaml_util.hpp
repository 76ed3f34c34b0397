// Schema helpers for reading YAML into typed structs with file:line:col diagnostics.
// Internal to src/config/ (the only yaml-cpp user): include only from src/config/*.cpp.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace dg::config {

class Reader {
 public:
  Reader(std::string file, Diagnostics& diags) : file_(std::move(file)), diags_(diags) {}

  const std::string& file() const { return file_; }
  Diagnostics& diags() { return diags_; }

  // Loads a whole file; reports unreadable files and YAML syntax errors.
  std::optional<YAML::Node> load_file();
  // Same for text already in memory (tests, docs examples); diagnostics still name file().
  std::optional<YAML::Node> load_text(const std::string& text);

  void error(const YAML::Node& at, std::string message);
  void error_at(int line, int col, std::string message);

  // A map with only these keys; each unknown key is an error naming it. `what` names the section.
  bool map(const YAML::Node& node, std::string_view what, std::initializer_list<std::string_view> keys);
  bool map(const YAML::Node& node, std::string_view what, const std::vector<std::string>& keys);
  bool is_map(const YAML::Node& node, std::string_view what);
  bool is_seq(const YAML::Node& node, std::string_view what);

  // Typed scalars. `key` names the value in messages. A missing/null node returns nullopt
  // without error; a wrong type reports and returns nullopt.
  std::optional<std::string> str(const YAML::Node& node, std::string_view key);
  std::optional<bool> boolean(const YAML::Node& node, std::string_view key);
  std::optional<int64_t> integer(const YAML::Node& node, std::string_view key, int64_t min, int64_t max);
  // "250ms", "5s", "2m", "24h", "7d" or a bare number of seconds; result in milliseconds.
  std::optional<uint64_t> duration_ms(const YAML::Node& node, std::string_view key);
  // "512", "64KiB", "1MiB", "2GiB", "10MB" (1000-based), "1k"...; result in bytes.
  std::optional<uint64_t> size_bytes(const YAML::Node& node, std::string_view key);
  // A string or a list of strings.
  std::optional<std::vector<std::string>> str_list(const YAML::Node& node, std::string_view key);
  // True when the scalar was written quoted (or tagged !!str): lets a key insist on a string where
  // YAML tools disagree about the plain form (0660 is octal in YAML 1.1, decimal in YAML 1.2).
  static bool is_quoted(const YAML::Node& node);

  // Required child: reports "missing key" at the parent when absent.
  YAML::Node required(const YAML::Node& parent, std::string_view key, std::string_view what);

 private:
  std::string file_;
  Diagnostics& diags_;
};

// A path relative to the directory of `relative_to_file`, made absolute and lexically normal.
std::string resolve_path(const std::string& relative_to_file, const std::string& p);

// Parses "tcp://host:port", "tcp://[::1]:port", "unix:///path" into an Address.
tl::expected<Address, std::string> parse_address(const std::string& text);

}  // namespace dg::config
