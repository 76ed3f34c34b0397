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
#include <new>
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
  // The same for a body whose buffer has `readable` bytes from body.data() (allocated, and
  // initialised): with body.size() + simdjson::SIMDJSON_PADDING of them it is parsed in place,
  // without the copy parse(body) makes.
  std::string parse(std::string_view body, size_t readable);
  element root() const { return root_; }
  bool is_object() const;
  bool empty_object() const;

  struct Impl;  // the thread's parser and padded buffer

 private:
  Impl* impl_ = nullptr;
  element root_;
};

// True when a JSON member name selects the Go field `field` (ASCII). Inline below.
inline bool key_matches(std::string_view key, std::string_view field);
bool same_value(element a, element b);

namespace detail {
inline constexpr uint64_t kFold = 0x2020202020202020ull;  // OR 0x20: ASCII letters fold
// The n <= 8 bytes at p as a little-endian number (bytes n.. zero), without reading past p + n.
constexpr uint64_t load_upto8(const char* p, size_t n) {
  uint64_t w = 0;
  if (std::is_constant_evaluated() || std::endian::native != std::endian::little) {
    for (size_t i = 0; i < n; ++i) w |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  } else if (n == 8) {
    std::memcpy(&w, p, 8);
  } else if (n >= 4) {
    // Two overlapping 4-byte loads inside [p, p+n): no call to a variable-length memcpy.
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + n - 4, 4);
    w = lo | (static_cast<uint64_t>(hi) << (8 * (n - 4)));
  } else if (n > 0) {
    auto b = [p](size_t i) { return static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i); };
    w = b(0) | b(n / 2) | b(n - 1);
  }
  return w;
}
inline uint64_t load8(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}
// a[0, n) == b[0, n), inline for the short names of JSON members.
inline bool bytes_equal(const char* a, const char* b, size_t n) {
  if (std::endian::native == std::endian::little) {
    if (n <= 8) return load_upto8(a, n) == load_upto8(b, n);
    if (n <= 16) return load8(a) == load8(b) && load8(a + n - 8) == load8(b + n - 8);
  }
  return std::memcmp(a, b, n) == 0;
}
// Any byte >= 0x80 in [p, p+n)?
inline bool has_high_byte(const char* p, size_t n) {
  uint64_t any;
  if (std::endian::native != std::endian::little) {
    any = 0;
    for (size_t i = 0; i < n; ++i) any |= static_cast<unsigned char>(p[i]);
    return any & 0x80;
  }
  if (n <= 8) {
    any = load_upto8(p, n);
  } else if (n <= 16) {
    any = load8(p) | load8(p + n - 8);
  } else {  // words, the last one overlapping
    any = load8(p + n - 8);
    for (size_t i = 0; i + 8 < n; i += 8) any |= load8(p + i);
  }
  return any & 0x8080808080808080ull;
}
// key_matches() for names of the same length n, the letter by letter part.
bool same_length_fold(const char* key, const char* field, size_t n);
// key_matches() for a longer key holding a non-ASCII byte.
bool wide_key_matches(std::string_view key, std::string_view field);
// key_matches() for names of the same length: words first; equal, or differing in more than the
// 0x20 bit of some byte (no match), are decided at once.
inline bool same_length_matches(const char* k, const char* f, size_t n) {
  if (std::endian::native == std::endian::little && n <= 16) {
    uint64_t a0, b0, a1, b1;
    if (n > 8) {
      a0 = load8(k), b0 = load8(f);
      a1 = load8(k + n - 8), b1 = load8(f + n - 8);
    } else {
      a0 = load_upto8(k, n), b0 = load_upto8(f, n);
      a1 = b1 = 0;
    }
    if (a0 == b0 && a1 == b1) return true;
    if (((a0 ^ b0) | (a1 ^ b1)) & ~kFold) return false;
  } else if (std::memcmp(k, f, n) == 0) {
    return true;
  }
  return same_length_fold(k, f, n);
}
}  // namespace detail

inline bool key_matches(std::string_view key, std::string_view field) {
  // An ASCII key matches only with the same length; the two folding runes are longer than the
  // letters they fold to, so a shorter key never matches.
  if (key.size() < field.size()) return false;
  if (key.size() == field.size()) return detail::same_length_matches(key.data(), field.data(), key.size());
  if (!detail::has_high_byte(key.data(), key.size())) return false;
  return detail::wide_key_matches(key, field);
}

// A Go field name (ASCII; checked at compile time for literals).
struct Field {
  std::string_view name;
  template <size_t N>
  consteval Field(const char (&s)[N]) : name(s, N - 1) {  // NOLINT: implicit
    for (size_t i = 0; i + 1 < N; ++i)
      if (static_cast<unsigned char>(s[i]) >= 0x80) throw "field names are ASCII";
  }
  Field(std::string_view s) : name(s) {}                   // NOLINT: implicit
  Field(const std::string& s) : name(s) {}                 // NOLINT: implicit
};

// A fixed set of ASCII field names, for "does this object set any of these fields" questions.
class FieldSet {
 public:
  explicit FieldSet(std::span<const std::string_view> fields);
  // True when `key` selects one of the fields.
  bool contains(std::string_view key) const;
  // The same for a key known to hold only ASCII bytes.
  bool contains_ascii(std::string_view key) const;

 private:
  friend class Struct;
  bool in_chain(uint32_t tag, std::string_view key) const;
  std::vector<std::string_view> fields_;
  std::vector<uint16_t> next_;   // index + 1 of the next field in the same chain
  uint16_t heads_[256] = {};     // index + 1 of the first field per name shape (gojson.cpp)
};

// A Go struct value: the objects decoded into it, in order. present = a non-nil pointer.
// Lookups go through an index of its members built on the first lookup, in a per-thread arena that
// the next Doc::parse() on the thread recycles (like the simdjson document the members point into):
// no heap allocation per lookup. A name can only select a field of its length and first letter
// (as Go folds them), so the index chains the members by those, in document order.
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
    const char* key;
    element value;
    uint32_t len;   // of the name; kWide set when it holds a non-ASCII byte
    uint32_t next;  // entry index + 1 of the next member in the same chain, 0 = last
    static constexpr uint32_t kWide = 1u << 31;
    bool wide() const { return len & kWide; }
    std::string_view name() const { return {key, len & ~kWide}; }
  };
  static constexpr uint32_t kChains = 64;  // by the name's length and first letter
  // The values assigned to one field: a few inline, more on the heap (rare).
  class Matches {
   public:
    Matches() {}  // NOLINT: the inline slots stay uninitialised until pushed
    void push(element e) {
      if (n_ < kInlineMatches)
        ::new (static_cast<void*>(&u_.v[n_])) element(e);
      else
        more_.push_back(e);
      ++n_;
    }
    size_t size() const { return n_; }
    element operator[](size_t i) const { return i < kInlineMatches ? u_.v[i] : more_[i - kInlineMatches]; }
    void clear() {
      n_ = 0;
      more_.clear();
    }

   private:
    static constexpr size_t kInlineMatches = 4;
    static_assert(std::is_trivially_destructible_v<element> && std::is_trivially_copyable_v<element>);
    union Slots {
      Slots() {}  // NOLINT: no element constructed
      element v[kInlineMatches];
    } u_;
    size_t n_ = 0;
    std::vector<element> more_;
  };

 private:
  static constexpr size_t kInline = 2;
  // Fills `out` with every value assigned to `field`; false (err set) when spellings disagree.
  bool find(Field field, Errors& err, std::string_view path, Matches& out) const;
  template <typename F>
  bool each_match(const Field& field, F&& f) const;
  void build() const;
  void ensure_index() const;

  object objs_[kInline];
  std::vector<object> more_;
  size_t nobjs_ = 0;
  bool present_ = false;
  // The index in the thread's arena, valid while gen_ equals the arena's generation (0 = none).
  mutable const Entry* entries_ = nullptr;
  mutable const uint32_t* heads_ = nullptr;  // [kChains] first entry index + 1 per chain; null = scan all
  mutable uint32_t gen_ = 0, count_ = 0;
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
