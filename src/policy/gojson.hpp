// Reading JSON bodies the way dockerd's Go encoding/json fills its structs (docker-api-notes §6),
// on top of simdjson's DOM. Nothing is copied: a Go struct is represented by the JSON objects
// that were decoded into it, in order, and each field lookup applies Go's rules over them:
//  - member names match exactly or case-insensitively with Unicode simple folding (K U+212A, ſ U+017F);
//  - scalars: the last non-null value wins, null is a no-op; every value must have the Go type;
//  - structs: successive objects merge; null resets a pointer struct;
//  - maps: merge per key; null resets;  slices: the last value replaces, null resets;
// and stricter than Go: invalid UTF-8, a BOM, trailing content, depth > 1024, the same field spelled
// differently with different values, and an array of objects assigned twice (Go merges its
// elements) are errors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <simdjson.h>

namespace dg::policy::gojson {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// Typed views of an element already known to have that type.
inline object obj_of(element e) {
  object o;
  if (e.get(o) != simdjson::SUCCESS) return object();
  return o;
}
inline array arr_of(element e) {
  array a;
  if (e.get(a) != simdjson::SUCCESS) return array();
  return a;
}

// First problem found while reading fields; once set the request is refused.
struct Errors {
  std::string first;
  bool failed() const { return !first.empty(); }
  void add(std::string msg) {
    if (first.empty()) first = std::move(msg);
  }
};

class Doc {
 public:
  Doc();
  ~Doc();
  Doc(Doc&&) noexcept;
  Doc& operator=(Doc&&) noexcept;
  // Parses a body; returns an error message or "" when fine. Empty input = the empty object.
  std::string parse(std::string_view body);
  element root() const { return root_; }
  bool is_object() const;
  bool empty_object() const;

  struct Impl;  // the thread's parser and padded buffer

 private:
  Impl* impl_ = nullptr;
  element root_;
};

// True when a JSON member name selects the Go field `field` (ASCII).
bool key_matches(std::string_view key, std::string_view field);
bool same_value(element a, element b);

// A Go struct value: the objects decoded into it, in order. present = a non-nil pointer.
class Struct {
 public:
  Struct() = default;
  explicit Struct(object o) { add(o); }
  void add(object o) {
    objs_.push_back(o);
    present_ = true;
    index_.clear();
  }
  void reset() {
    objs_.clear();
    present_ = false;
    index_.clear();
  }
  bool present() const { return present_; }
  const std::vector<object>& objects() const { return objs_; }

  // Every value assigned to `field`, in order (spelling check applied).
  std::vector<element> values(std::string_view field, Errors& err, std::string_view path) const;
  bool has(std::string_view field) const;

  std::optional<bool> boolean(std::string_view field, Errors& err, std::string_view path) const;
  std::optional<int64_t> integer(std::string_view field, Errors& err, std::string_view path,
                                 int64_t min = INT64_MIN, int64_t max = INT64_MAX) const;
  std::optional<std::string_view> string(std::string_view field, Errors& err, std::string_view path) const;
  // Nested struct (pointer = null resets; value struct = null ignored).
  Struct sub(std::string_view field, Errors& err, std::string_view path, bool pointer = true) const;
  // []string or StrSlice (a string is a one-element list). nullopt = nil.
  std::optional<std::vector<std::string_view>> strings(std::string_view field, Errors& err, std::string_view path,
                                                        bool str_slice = false) const;
  // []T of structs: each element a Struct. nullopt = nil.
  std::optional<std::vector<Struct>> structs(std::string_view field, Errors& err, std::string_view path) const;
  // map[string]T: merged entries (last value per key). nullopt = nil.
  std::optional<std::vector<std::pair<std::string_view, element>>> map(std::string_view field, Errors& err,
                                                                        std::string_view path) const;
  // map[string]string convenience.
  std::optional<std::vector<std::pair<std::string_view, std::string_view>>> string_map(std::string_view field, Errors& err,
                                                                                       std::string_view path) const;

 private:
  // Every member of objs_ in order with a cheap signature (length and folded first letter), so a
  // lookup compares names only where they can match. Built on the first lookup.
  struct Entry {
    uint32_t sig;
    std::string_view key;
    element value;
  };
  const std::vector<Entry>& index() const;

  std::vector<object> objs_;
  bool present_ = false;
  mutable std::vector<Entry> index_;
};

// Decoding a single value as Go would into a typed target.
// path/field name the value in error messages (joined only when there is one).
std::optional<int64_t> as_integer(element e, Errors& err, std::string_view path, std::string_view field, int64_t min,
                                  int64_t max);
std::optional<std::string_view> as_string(element e, Errors& err, std::string_view path, std::string_view field);
std::optional<std::vector<std::string_view>> as_strings(element e, Errors& err, std::string_view path,
                                                        std::string_view field, bool str_slice);
// Every member name of an object folded like Go compares them (ASCII upper case, K U+212A -> K,
// U+017F -> S), for set lookups.
std::string fold_key(std::string_view key);

}  // namespace dg::policy::gojson
