#include "policy/gojson.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <unordered_map>

namespace dg::policy::gojson {

using simdjson::dom::element_type;

struct Doc::Impl {
  simdjson::dom::parser parser;
  std::string buf;
};

namespace {

// One parser per thread (judge() runs on every worker thread); a Doc borrows it until the next
// parse on the same thread, which is after the decision is made.
Doc::Impl*& thread_impl() {
  thread_local Doc::Impl impl;
  thread_local Doc::Impl* p = &impl;
  return p;
}

// Arena of the thread's Struct indexes: bump allocation in blocks that never move (a Struct keeps
// pointers), all recycled by Doc::parse(). The generation is a separate trivial thread_local so
// the check on every lookup is one TLS load.
thread_local uint32_t t_gen = 1;

struct Arena {
  static constexpr size_t kBlock = 16 << 10;
  struct Block {
    std::unique_ptr<std::byte[]> mem;
    size_t size;
  };
  std::vector<Block> blocks;
  size_t cur = 0, used = 0;

  void* alloc(size_t bytes) {
    bytes = (bytes + 15) & ~size_t{15};
    while (cur < blocks.size() && used + bytes > blocks[cur].size) {
      ++cur;
      used = 0;
    }
    if (cur == blocks.size()) {
      size_t n = std::max(bytes, kBlock);
      blocks.push_back({std::make_unique<std::byte[]>(n), n});
      used = 0;
    }
    void* p = blocks[cur].mem.get() + used;
    used += bytes;
    return p;
  }
  void recycle() {
    if (++t_gen == 0) t_gen = 1;
    // Keep one block for the next request; a huge body's index is given back.
    if (blocks.size() > 1 || (!blocks.empty() && blocks[0].size > 4 * kBlock)) blocks.clear();
    cur = 0;
    used = 0;
  }
};

thread_local Arena t_arena;

std::string path_join(std::string_view path, std::string_view field) {
  std::string s(path);
  if (!s.empty()) s += '.';
  s += field;
  return s;
}

const char* type_name(element_type t) {
  switch (t) {
    case element_type::ARRAY: return "array";
    case element_type::OBJECT: return "object";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: return "number";
    case element_type::STRING: return "string";
    case element_type::BOOL: return "bool";
    case element_type::NULL_VALUE: return "null";
  }
  return "value";
}

}  // namespace

Doc::Doc() : impl_(thread_impl()) {}
Doc::~Doc() = default;
Doc::Doc(Doc&&) noexcept = default;
Doc& Doc::operator=(Doc&&) noexcept = default;

std::string Doc::parse(std::string_view body) { return parse(body, body.size()); }

std::string Doc::parse(std::string_view body, size_t readable) {
  if (body.size() >= 3 && static_cast<unsigned char>(body[0]) == 0xEF && static_cast<unsigned char>(body[1]) == 0xBB &&
      static_cast<unsigned char>(body[2]) == 0xBF)
    return "invalid JSON body: byte order mark";
  bool blank = true;
  for (char c : body)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
      blank = false;
      break;
    }
  if (blank) {
    body = "{}";
    readable = body.size();
  }
  t_arena.recycle();  // the indexes of the previous document's Structs
  const char* data = body.data();
  if (readable < body.size() + simdjson::SIMDJSON_PADDING) {  // simdjson reads up to that far: copy
    std::string& buf = impl_->buf;
    if (buf.capacity() < body.size() + simdjson::SIMDJSON_PADDING) buf.reserve(body.size() + simdjson::SIMDJSON_PADDING);
    buf.assign(body.data(), body.size());
    data = buf.data();
  }
  auto r = impl_->parser.parse(data, body.size(), false);
  if (r.error()) return std::string("invalid JSON body: ") + simdjson::error_message(r.error());
  root_ = r.value_unsafe();
  return "";
}

bool Doc::is_object() const { return root_.type() == element_type::OBJECT; }
bool Doc::empty_object() const {
  if (!is_object()) return false;
  return object(obj_of(root_)).size() == 0;
}

bool detail::same_length_fold(const char* key, const char* field, size_t n) {
  for (size_t k = 0; k < n; ++k) {
    char a = key[k], b = field[k];
    if (a == b) continue;
    char la = static_cast<char>(a | 0x20);
    if (la != static_cast<char>(b | 0x20) || la < 'a' || la > 'z') return false;
  }
  return true;
}

bool detail::wide_key_matches(std::string_view key, std::string_view field) {
  size_t i = 0, j = 0;
  while (i < key.size() && j < field.size()) {
    unsigned char k = static_cast<unsigned char>(key[i]);
    char f = field[j];
    char fu = (f >= 'a' && f <= 'z') ? static_cast<char>(f - 32) : f;
    if (k < 0x80) {
      char ku = (k >= 'a' && k <= 'z') ? static_cast<char>(k - 32) : static_cast<char>(k);
      if (ku != fu) return false;
      ++i;
      ++j;
      continue;
    }
    // U+212A KELVIN SIGN (E2 84 AA) folds to K; U+017F LATIN SMALL LETTER LONG S (C5 BF) to S.
    if (fu == 'K' && i + 2 < key.size() && k == 0xE2 && static_cast<unsigned char>(key[i + 1]) == 0x84 &&
        static_cast<unsigned char>(key[i + 2]) == 0xAA) {
      i += 3;
      ++j;
      continue;
    }
    if (fu == 'S' && i + 1 < key.size() && k == 0xC5 && static_cast<unsigned char>(key[i + 1]) == 0xBF) {
      i += 2;
      ++j;
      continue;
    }
    return false;
  }
  return i == key.size() && j == field.size();
}

bool same_value(element a, element b) {
  element_type ta = a.type(), tb = b.type();
  if (ta != tb) return false;
  switch (ta) {
    case element_type::NULL_VALUE: return true;
    case element_type::BOOL: return a.get_bool().value_unsafe() == b.get_bool().value_unsafe();
    case element_type::INT64: return a.get_int64().value_unsafe() == b.get_int64().value_unsafe();
    case element_type::UINT64: return a.get_uint64().value_unsafe() == b.get_uint64().value_unsafe();
    case element_type::DOUBLE: return a.get_double().value_unsafe() == b.get_double().value_unsafe();
    case element_type::STRING: return a.get_string().value_unsafe() == b.get_string().value_unsafe();
    case element_type::ARRAY: {
      auto x = arr_of(a), y = arr_of(b);
      if (x.size() != y.size()) return false;
      auto it = y.begin();
      for (element e : x) {
        if (!same_value(e, *it)) return false;
        ++it;
      }
      return true;
    }
    case element_type::OBJECT: {
      auto x = obj_of(a), y = obj_of(b);
      if (x.size() != y.size()) return false;
      auto it = y.begin();
      for (auto f : x) {
        if (f.key != it.key() || !same_value(f.value, it.value())) return false;
        ++it;
      }
      return true;
    }
  }
  return false;
}

namespace {

// Up to this many members a lookup scans them all; above it the index chains them by name shape.
constexpr uint32_t kScanMax = 8;

using detail::has_high_byte;

// Does an ASCII name of n bytes select the field of n bytes?
inline bool ascii_name_eq(const char* k, const char* f, size_t n) { return detail::same_length_matches(k, f, n); }

// The shape of a name as key_matches() reads it: its length in letters (K U+212A and U+017F ſ
// count as one letter, K and S) and its first and last letters. A name can only select a field of
// the same shape (letters compared with the 0x20 bit set), so the indexes chain names by shape.
struct Shape {
  size_t letters = 0;
  unsigned char first = 0, last = 0;
};
inline Shape ascii_shape(const char* k, size_t n) {
  if (n == 0) return {};
  return {n, static_cast<unsigned char>(k[0]), static_cast<unsigned char>(k[n - 1])};
}
Shape wide_shape(std::string_view k) {
  auto u = [&](size_t i) { return static_cast<unsigned char>(k[i]); };
  Shape s;
  for (size_t i = 0; i < k.size(); ++s.letters) {
    unsigned char c = u(i);
    if (c == 0xE2 && i + 2 < k.size() && u(i + 1) == 0x84 && u(i + 2) == 0xAA) {
      c = 'k';
      i += 3;
    } else if (c == 0xC5 && i + 1 < k.size() && u(i + 1) == 0xBF) {
      c = 's';
      i += 2;
    } else {
      ++i;
    }
    if (s.letters == 0) s.first = c;
    s.last = c;
  }
  return s;
}
// Chain of a Struct index (0..63): length and first letter.
inline uint32_t struct_tag(size_t letters, unsigned char first) {
  return (static_cast<uint32_t>(letters) * 5u + (first | 0x20u) * 3u) & 63u;
}
inline uint32_t struct_tag(const char* ascii, size_t n) { return struct_tag(n, n ? static_cast<unsigned char>(ascii[0]) : 0); }
// Chain of a FieldSet (0..255): length, first and last letters.
inline uint32_t set_tag(const Shape& s) {
  uint32_t x = static_cast<uint32_t>(s.letters << 16) | ((s.first | 0x20u) << 8) | (s.last | 0x20u);
  return (x * 0x9E3779B1u) >> 24;
}

}  // namespace

FieldSet::FieldSet(std::span<const std::string_view> fields) : fields_(fields.begin(), fields.end()) {
  next_.assign(fields_.size(), 0);
  for (size_t i = fields_.size(); i-- > 0;) {  // chains in list order
    uint32_t t = set_tag(ascii_shape(fields_[i].data(), fields_[i].size()));
    next_[i] = heads_[t];
    heads_[t] = static_cast<uint16_t>(i + 1);
  }
}

inline bool FieldSet::in_chain(uint32_t tag, std::string_view key) const {
  for (uint32_t i = heads_[tag]; i; i = next_[i - 1])
    if (key_matches(key, fields_[i - 1])) return true;
  return false;
}

bool FieldSet::contains_ascii(std::string_view key) const {
  return in_chain(set_tag(ascii_shape(key.data(), key.size())), key);
}

bool FieldSet::contains(std::string_view key) const {
  if (!has_high_byte(key.data(), key.size())) return contains_ascii(key);
  return in_chain(set_tag(wide_shape(key)), key);
}

void Struct::build() const {
  size_t n = 0;
  for (size_t i = 0; i < nobjs_; ++i) n += object_at(i).size();
  Entry* e = static_cast<Entry*>(t_arena.alloc(n * sizeof(Entry)));
  // Above kScanMax members: chains by name shape, in document order (entry indices + 1).
  uint32_t* heads = nullptr;
  uint32_t tails[kChains];
  if (n > kScanMax) {
    heads = static_cast<uint32_t*>(t_arena.alloc(kChains * sizeof(uint32_t)));
    std::memset(heads, 0, kChains * sizeof(uint32_t));
  }
  uint32_t count = 0;
  for (size_t i = 0; i < nobjs_ && count < n; ++i) {
    object o = object_at(i);
    for (auto it = o.begin(), end = o.end(); it != end && count < n; ++it) {
      std::string_view k = it.key();
      uint32_t len = static_cast<uint32_t>(k.size());
      bool wide = has_high_byte(k.data(), k.size());
      ::new (static_cast<void*>(e + count)) Entry{k.data(), it.value(), wide ? len | Entry::kWide : len, 0};
      ++count;
      if (!heads) continue;
      uint32_t c;
      if (wide) {
        Shape sh = wide_shape(k);
        c = struct_tag(sh.letters, sh.first);
      } else {
        c = struct_tag(k.data(), len);
      }
      if (heads[c])
        e[tails[c] - 1].next = count;
      else
        heads[c] = count;
      tails[c] = count;
    }
  }
  entries_ = e;
  count_ = count;
  heads_ = heads;
  gen_ = t_gen;
}

inline void Struct::ensure_index() const {
  if (gen_ != t_gen) build();
}

namespace {

// Does member `x` select `field`?
inline bool entry_matches(const Struct::Entry& x, const Field& field) {
  if (x.wide()) return key_matches(x.name(), field.name);
  return x.len == field.name.size() && ascii_name_eq(x.key, field.name.data(), x.len);
}

// A second member selecting the same field: fine when spelled the same or with the same value.
[[gnu::noinline]] bool consistent(const Struct::Entry& first, const Struct::Entry& x, const Field& field, Errors& err,
                                  std::string_view path) {
  if (x.name() == first.name() || same_value(first.value, x.value)) return true;
  err.add("ambiguous JSON: " + path_join(path, field.name) + " is given as \"" + std::string(first.name()) + "\" and \"" +
          std::string(x.name()) + "\" with different values");
  return false;
}

}  // namespace

// Calls f(entry) for every member selecting `field`, in document order, until f returns false.
template <typename F>
inline bool Struct::each_match(const Field& field, F&& f) const {
  const Entry* e = entries_;
  const uint32_t len = static_cast<uint32_t>(field.name.size());
  const char* name = field.name.data();
  if (!heads_) {
    for (const Entry *x = e, *end = e + count_; x != end; ++x)
      if (entry_matches(*x, field) && !f(*x)) return false;
    return true;
  }
  for (uint32_t a = heads_[struct_tag(name, len)]; a; a = e[a - 1].next) {
    const Entry& x = e[a - 1];
    if (entry_matches(x, field) && !f(x)) return false;
  }
  return true;
}

inline bool Struct::find(Field field, Errors& err, std::string_view path, Matches& out) const {
  out.clear();
  if (nobjs_ == 0) return true;
  ensure_index();
  const Entry* first = nullptr;
  // Every member selecting the field, in document order; spellings that disagree in value are an
  // error.
  return each_match(field, [&](const Entry& x) {
    if (!first) {
      first = &x;
    } else if (!consistent(*first, x, field, err, path)) {
      out.clear();
      return false;
    }
    out.push(x.value);
    return true;
  });
}

std::vector<element> Struct::values(Field field, Errors& err, std::string_view path) const {
  Matches m;
  std::vector<element> out;
  if (!find(field, err, path, m)) return out;
  out.reserve(m.size());
  for (size_t i = 0; i < m.size(); ++i) out.push_back(m[i]);
  return out;
}

bool Struct::has(Field field) const {
  if (nobjs_ == 0) return false;
  ensure_index();
  return !each_match(field, [](const Entry&) { return false; });
}

bool Struct::has_any(const FieldSet& set) const {
  if (nobjs_ == 0) return false;
  ensure_index();
  for (uint32_t i = 0, n = count_; i < n; ++i) {
    const Entry& x = entries_[i];
    if (x.wide() ? set.contains(x.name()) : set.in_chain(set_tag(ascii_shape(x.key, x.len)), x.name())) return true;
  }
  return false;
}

std::optional<int64_t> as_integer(element e, Errors& err, std::string_view path, std::string_view field, int64_t min,
                                  int64_t max) {
  int64_t v = 0;
  switch (e.type()) {
    case element_type::INT64: v = e.get_int64().value_unsafe(); break;
    default:
      err.add("json: cannot unmarshal " + std::string(type_name(e.type())) + (e.type() == element_type::UINT64 ? " (out of range)" : e.type() == element_type::DOUBLE ? " (not an integer)" : "") +
              " into " + path_join(path, field));
      return std::nullopt;
  }
  if (v < min || v > max) {
    err.add("json: number " + std::to_string(v) + " out of range for " + path_join(path, field));
    return std::nullopt;
  }
  return v;
}

std::optional<std::string_view> as_string(element e, Errors& err, std::string_view path, std::string_view field) {
  if (e.type() != element_type::STRING) {
    err.add("json: cannot unmarshal " + std::string(type_name(e.type())) + " into string " + path_join(path, field));
    return std::nullopt;
  }
  return e.get_string().value_unsafe();
}

std::optional<std::vector<std::string_view>> as_strings(element e, Errors& err, std::string_view path,
                                                        std::string_view field, bool str_slice) {
  if (e.type() == element_type::NULL_VALUE) return std::nullopt;
  std::vector<std::string_view> out;
  if (str_slice && e.type() == element_type::STRING) {
    out.push_back(e.get_string().value_unsafe());
    return out;
  }
  if (e.type() != element_type::ARRAY) {
    err.add("json: cannot unmarshal " + std::string(type_name(e.type())) + " into []string " + path_join(path, field));
    return std::nullopt;
  }
  for (element x : arr_of(e)) {
    if (x.type() == element_type::NULL_VALUE) {
      out.emplace_back();
      continue;
    }
    auto s = as_string(x, err, path, field);
    if (!s) return std::nullopt;
    out.push_back(*s);
  }
  return out;
}

std::optional<bool> Struct::boolean(Field field, Errors& err, std::string_view path) const {
  std::optional<bool> out;
  Matches m;
  find(field, err, path, m);
  for (size_t mi = 0; mi < m.size(); ++mi) {
    element v = m[mi];
    if (v.type() == element_type::NULL_VALUE) continue;
    if (v.type() != element_type::BOOL) {
      err.add("json: cannot unmarshal " + std::string(type_name(v.type())) + " into bool " + path_join(path, field.name));
      return std::nullopt;
    }
    out = v.get_bool().value_unsafe();
  }
  return out;
}

std::optional<int64_t> Struct::integer(Field field, Errors& err, std::string_view path, int64_t min,
                                       int64_t max) const {
  std::optional<int64_t> out;
  Matches m;
  find(field, err, path, m);
  for (size_t mi = 0; mi < m.size(); ++mi) {
    element v = m[mi];
    if (v.type() == element_type::NULL_VALUE) continue;
    auto i = as_integer(v, err, path, field.name, min, max);
    if (!i) return std::nullopt;
    out = i;
  }
  return out;
}

std::optional<std::string_view> Struct::string(Field field, Errors& err, std::string_view path) const {
  std::optional<std::string_view> out;
  Matches m;
  find(field, err, path, m);
  for (size_t mi = 0; mi < m.size(); ++mi) {
    element v = m[mi];
    if (v.type() == element_type::NULL_VALUE) continue;
    auto s = as_string(v, err, path, field.name);
    if (!s) return std::nullopt;
    out = s;
  }
  return out;
}

Struct Struct::sub(Field field, Errors& err, std::string_view path, bool pointer) const {
  Struct out;
  Matches m;
  find(field, err, path, m);
  for (size_t mi = 0; mi < m.size(); ++mi) {
    element v = m[mi];
    if (v.type() == element_type::NULL_VALUE) {
      if (pointer) out.reset();
      continue;
    }
    if (v.type() != element_type::OBJECT) {
      err.add("json: cannot unmarshal " + std::string(type_name(v.type())) + " into struct " + path_join(path, field.name));
      return Struct();
    }
    out.add(obj_of(v));
  }
  return out;
}

std::optional<std::vector<std::string_view>> Struct::strings(Field field, Errors& err, std::string_view path,
                                                             bool str_slice) const {
  std::optional<std::vector<std::string_view>> out;
  Matches m;
  find(field, err, path, m);
  for (size_t mi = 0; mi < m.size(); ++mi) {
    element v = m[mi];
    if (v.type() == element_type::NULL_VALUE) {
      out.reset();
      continue;
    }
    auto s = as_strings(v, err, path, field.name, str_slice);
    if (!s) return std::nullopt;
    out = std::move(s);
  }
  return out;
}

std::optional<std::vector<Struct>> Struct::structs(Field field, Errors& err, std::string_view path) const {
  std::optional<std::vector<Struct>> out;
  bool assigned = false;
  Matches m;
  find(field, err, path, m);
  for (size_t mi = 0; mi < m.size(); ++mi) {
    element v = m[mi];
    if (v.type() == element_type::NULL_VALUE) {
      out.reset();
      assigned = false;
      continue;
    }
    if (v.type() != element_type::ARRAY) {
      err.add("json: cannot unmarshal " + std::string(type_name(v.type())) + " into []struct " + path_join(path, field.name));
      return std::nullopt;
    }
    auto arr = arr_of(v);
    if (assigned && arr.size() > 0) {
      // Go decodes a second array into the elements left by the first (merging their fields).
      err.add("ambiguous JSON: " + path_join(path, field.name) + " is given more than once");
      return std::nullopt;
    }
    std::vector<Struct> elems;
    for (element x : arr) {
      if (x.type() == element_type::NULL_VALUE) {
        elems.emplace_back();
        continue;
      }
      if (x.type() != element_type::OBJECT) {
        err.add("json: cannot unmarshal " + std::string(type_name(x.type())) + " into struct in " + path_join(path, field.name));
        return std::nullopt;
      }
      elems.emplace_back(obj_of(x));
    }
    out = std::move(elems);
    assigned = arr.size() > 0;
  }
  return out;
}

std::optional<std::vector<std::pair<std::string_view, element>>> Struct::map(Field field, Errors& err,
                                                                              std::string_view path) const {
  std::optional<std::vector<std::pair<std::string_view, element>>> out;
  // Keys in first-seen order, each with its last value: looked up pairwise while there are few,
  // through a hash index of positions beyond (a big map would otherwise take quadratic time).
  constexpr size_t kLinear = 16;
  std::unordered_map<std::string_view, size_t> pos;
  auto put = [&](std::string_view key, element value) {
    auto& v = *out;
    if (v.size() < kLinear) {
      for (auto& kv : v)
        if (kv.first == key) {
          kv.second = value;
          return;
        }
      v.emplace_back(key, value);
      return;
    }
    if (pos.empty())
      for (size_t i = 0; i < v.size(); ++i) pos.emplace(v[i].first, i);
    auto [it, added] = pos.emplace(key, v.size());
    if (added)
      v.emplace_back(key, value);
    else
      v[it->second].second = value;
  };
  Matches m;
  find(field, err, path, m);
  for (size_t mi = 0; mi < m.size(); ++mi) {
    element v = m[mi];
    if (v.type() == element_type::NULL_VALUE) {
      out.reset();
      pos.clear();
      continue;
    }
    if (v.type() != element_type::OBJECT) {
      err.add("json: cannot unmarshal " + std::string(type_name(v.type())) + " into map " + path_join(path, field.name));
      return std::nullopt;
    }
    object o = obj_of(v);
    if (!out) {
      out.emplace();
      out->reserve(o.size());
    }
    for (auto f : o) put(f.key, f.value);
  }
  return out;
}

std::optional<std::vector<std::pair<std::string_view, std::string_view>>> Struct::string_map(Field field,
                                                                                             Errors& err,
                                                                                             std::string_view path) const {
  auto m = map(field, err, path);
  if (!m) return std::nullopt;
  std::vector<std::pair<std::string_view, std::string_view>> out;
  out.reserve(m->size());
  for (auto& [k, v] : *m) {
    if (v.type() == element_type::NULL_VALUE) {
      out.emplace_back(k, std::string_view());
      continue;
    }
    auto s = as_string(v, err, path, field.name);
    if (!s) return std::nullopt;
    out.emplace_back(k, *s);
  }
  return out;
}

}  // namespace dg::policy::gojson

namespace dg::policy::gojson {

std::string fold_key(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (size_t i = 0; i < key.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(key[i]);
    if (c == 0xE2 && i + 2 < key.size() && static_cast<unsigned char>(key[i + 1]) == 0x84 &&
        static_cast<unsigned char>(key[i + 2]) == 0xAA) {
      out.push_back('K');
      i += 2;
    } else if (c == 0xC5 && i + 1 < key.size() && static_cast<unsigned char>(key[i + 1]) == 0xBF) {
      out.push_back('S');
      i += 1;
    } else {
      out.push_back((c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : static_cast<char>(c));
    }
  }
  return out;
}

}  // namespace dg::policy::gojson
