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

#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <span>
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

namespace detail {
constexpr uint64_t hash_mix(uint64_t h, uint64_t w) {
  h = (h ^ (w | 0x2020202020202020ull)) * 0x9E3779B97F4A7C15ull;  // OR 0x20: ASCII letters fold
  return h ^ (h >> 29);
}
constexpr uint64_t hash_load(const char* p, size_t n) {  // n <= 8, little-endian
  uint64_t w = 0;
  if (std::is_constant_evaluated() || std::endian::native != std::endian::little) {
    for (size_t i = 0; i < n; ++i) w |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  } else {
    std::memcpy(&w, p, n);
  }
  return w;
}
// Hash of bytes OR 0x20 (other bytes than letters may collide: hits are checked with key_matches).
// `any` gets every byte ORed in (bit 7 set = a non-ASCII byte).
constexpr uint32_t hash_bytes(const char* p, size_t n, uint64_t& any) {
  uint64_t h = 0x243F6A8885A308D3ull ^ n;
  any = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w = hash_load(p + i, 8);
    any |= w;
    h = hash_mix(h, w);
  }
  if (i < n) {
    uint64_t w = n >= 8 ? hash_load(p + n - 8, 8) : hash_load(p, n);  // tail: the last 8 bytes, overlapping
    any |= w;
    h = hash_mix(h, w);
  }
  return static_cast<uint32_t>(h ^ (h >> 32));
}
uint32_t fold_hash_slow(std::string_view key);
}  // namespace detail

// Hash of a member name folded like Go compares names (ASCII letters case-insensitively; K U+212A
// and U+017F ſ count as K and S, looked at only when the name holds a non-ASCII byte). Names that
// key_matches() accepts for a field always hash like the field; equal hashes are then checked.
inline uint32_t fold_hash(std::string_view key) {
  uint64_t any = 0;
  uint32_t h = detail::hash_bytes(key.data(), key.size(), any);
  if (any & 0x8080808080808080ull) return detail::fold_hash_slow(key);
  return h;
}

// A Go field name with its fold_hash, computed at compile time for literals.
struct Field {
  std::string_view name;
  uint32_t hash;
  template <size_t N>
  consteval Field(const char (&s)[N]) : name(s, N - 1), hash(hash_literal(s, N - 1)) {}  // NOLINT: implicit
  Field(std::string_view s) : name(s), hash(fold_hash(s)) {}                            // NOLINT: implicit
  Field(const std::string& s) : Field(std::string_view(s)) {}                           // NOLINT: implicit

 private:
  static consteval uint32_t hash_literal(const char* s, size_t n) {
    uint64_t any = 0;
    uint32_t h = detail::hash_bytes(s, n, any);
    if (any & 0x8080808080808080ull) throw "field names are ASCII";
    return h;
  }
};

// A fixed set of ASCII field names, for "does this object set any of these fields" questions.
class FieldSet {
 public:
  explicit FieldSet(std::span<const std::string_view> fields);
  // True when `key` selects one of the fields (hash = fold_hash(key)).
  bool contains(std::string_view key, uint32_t hash) const;

 private:
  std::vector<std::string_view> fields_;
  std::vector<uint32_t> hashes_;
  std::vector<uint16_t> slots_;  // index + 1 into fields_, open addressing by hash
  uint32_t mask_ = 0;
};

// A Go struct value: the objects decoded into it, in order. present = a non-nil pointer.
// Lookups go through an index of its members (folded-name hash, key, value) built on the first
// lookup, in a per-thread arena that the next Doc::parse() on the thread recycles (like the
// simdjson document the members point into): no heap allocation per lookup.
class Struct {
 public:
  Struct() = default;
  explicit Struct(object o) { add(o); }
  void add(object o) {
    if (nobjs_ < kInline)
      objs_[nobjs_] = o;
    else
      more_.push_back(o);
    ++nobjs_;
    present_ = true;
    gen_ = 0;
  }
  void reset() {
    nobjs_ = 0;
    more_.clear();
    present_ = false;
    gen_ = 0;
  }
  bool present() const { return present_; }
  size_t object_count() const { return nobjs_; }
  object object_at(size_t i) const { return i < kInline ? objs_[i] : more_[i - kInline]; }

  // Every value assigned to `field`, in order (spelling check applied).
  std::vector<element> values(Field field, Errors& err, std::string_view path) const;
  bool has(Field field) const;
  // True when a member selects one of the fields of `set`.
  bool has_any(const FieldSet& set) const;

  std::optional<bool> boolean(Field field, Errors& err, std::string_view path) const;
  std::optional<int64_t> integer(Field field, Errors& err, std::string_view path,
                                 int64_t min = INT64_MIN, int64_t max = INT64_MAX) const;
  std::optional<std::string_view> string(Field field, Errors& err, std::string_view path) const;
  // Nested struct (pointer = null resets; value struct = null ignored).
  Struct sub(Field field, Errors& err, std::string_view path, bool pointer = true) const;
  // []string or StrSlice (a string is a one-element list). nullopt = nil.
  std::optional<std::vector<std::string_view>> strings(Field field, Errors& err, std::string_view path,
                                                        bool str_slice = false) const;
  // []T of structs: each element a Struct. nullopt = nil.
  std::optional<std::vector<Struct>> structs(Field field, Errors& err, std::string_view path) const;
  // map[string]T: merged entries (last value per key). nullopt = nil.
  std::optional<std::vector<std::pair<std::string_view, element>>> map(Field field, Errors& err,
                                                                        std::string_view path) const;
  // map[string]string convenience.
  std::optional<std::vector<std::pair<std::string_view, std::string_view>>> string_map(Field field, Errors& err,
                                                                                       std::string_view path) const;

  // One member of the index (public for the arena in gojson.cpp).
  struct Entry {
    uint32_t hash;
    uint32_t len;
    const char* key;
    element value;
    std::string_view name() const { return {key, len}; }
  };
  // The values assigned to one field: a few inline, more on the heap (rare).
  class Matches {
   public:
    void push(element e) {
      if (n_ < kInlineMatches)
        v_[n_] = e;
      else
        more_.push_back(e);
      ++n_;
    }
    size_t size() const { return n_; }
    element operator[](size_t i) const { return i < kInlineMatches ? v_[i] : more_[i - kInlineMatches]; }
    void clear() {
      n_ = 0;
      more_.clear();
    }

   private:
    static constexpr size_t kInlineMatches = 4;
    element v_[kInlineMatches];
    size_t n_ = 0;
    std::vector<element> more_;
  };

 private:
  static constexpr size_t kInline = 2;
  // Fills `out` with every value assigned to `field`; false (err set) when spellings disagree.
  bool find(Field field, Errors& err, std::string_view path, Matches& out) const;
  void build() const;
  void ensure_index() const;

  object objs_[kInline];
  std::vector<object> more_;
  size_t nobjs_ = 0;
  bool present_ = false;
  // The index in the thread's arena, valid while gen_ equals the arena's generation (0 = none).
  mutable const Entry* entries_ = nullptr;
  mutable const uint32_t* slots_ = nullptr;  // entry index + 1, open addressing; only when mask_ != 0
  mutable uint32_t gen_ = 0, count_ = 0, mask_ = 0;
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
