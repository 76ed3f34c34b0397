// The Engine API route table (up to API 1.50) and operation groups.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dg::policy {

// How an operation is classed for the `<area>:read` / `<area>:write` groups. Sensitive operations
// (logs, archive, export, join tokens, attach...) are only in `<area>:*`, `all`, their named
// group, or allowed by name.
enum class OpClass : uint8_t { Read, Write, Sensitive };

struct OpInfo {
  std::string_view name;   // Engine API operation id
  uint32_t flags;          // OpFlag bits
  std::string_view area;   // containers, images, ...
  OpClass cls;
  std::string_view extra;  // extra group membership ("containers:logs"), or ""
};

struct Route {
  std::string_view method;   // "GET"...; "*" = any
  std::string_view pattern;  // "/containers/{name}/json": {name} greedy (may hold '/'), {id} one segment
  int op;                    // index into operations()
  bool versioned = true;     // also reachable under /vX.Y
};

std::span<const OpInfo> operations();
std::span<const Route> routes();
int find_operation(std::string_view name);  // -1 when unknown

// Expands an operation name or a group ("containers:read", "all", "exec") into operation indices.
// nullopt when the name is neither.
std::optional<std::vector<int>> expand_operations(std::string_view name_or_group);
// Every group name, for docs and lint messages.
std::vector<std::string> group_names();

struct RouteMatch {
  int op = -1;
  std::string_view param_name;  // of the route table ("" when the route has none)
  std::string_view param;       // a piece of `path`
  bool ambiguous = false;
};

// Matches a decoded canonical path (without version prefix) against the table. Allocates nothing.
RouteMatch match_route(std::string_view method, std::string_view path, bool versioned);

}  // namespace dg::policy
