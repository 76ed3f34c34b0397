#include "policy/gojson.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>

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

std::string Doc::parse(std::string_view body) {
  if (body.size() >= 3 && static_cast<unsigned char>(body[0]) == 0xEF && static_cast<unsigned char>(body[1]) == 0xBB &&
      static_cast<unsigned char>(body[2]) == 0xBF)
    return "invalid JSON body: byte order mark";
  bool blank = true;
  for (char c : body)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
      blank = false;
      break;
    }
  if (blank) body = "{}";
  t_arena.recycle();  // the indexes of the previous document's Structs
  std::string& buf = impl_->buf;
  if (buf.capacity() < body.size() + simdjson::SIMDJSON_PADDING) buf.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  buf.assign(body.data(), body.size());
  auto r = impl_->parser.parse(buf.data(), buf.size(), false);
  if (r.error()) return std::string("invalid JSON body: ") + simdjson::error_message(r.error());
  root_ = r.value_unsafe();
  return "";
}

bool Doc::is_object() const { return root_.type() == element_type::OBJECT; }
bool Doc::empty_object() const {
  if (!is_object()) return false;
  return object(obj_of(root_)).size() == 0;
}

bool key_matches(std::string_view key, std::string_view field) {
  // Fast paths: an ASCII key matches only with the same length; the two folding runes are longer
  // than the letters they fold to, so a shorter key never matches.
  if (key.size() < field.size()) return false;
  if (key.size() == field.size()) {
    if (key == field) return true;  // the usual spelling
    for (size_t k = 0; k < key.size(); ++k) {
      char a = key[k], b = field[k];
      if (a == b) continue;
      char la = static_cast<char>(a | 0x20);
      if (la != static_cast<char>(b | 0x20) || la < 'a' || la > 'z') return false;
    }
    return true;
  }
  {
    bool ascii = true;
    for (char c : key) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
    if (ascii) return false;
  }
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
    if (fu == 'K' && i + 2 < key.size() + 0 && k == 0xE2 && static_cast<unsigned char>(key[i + 1]) == 0x84 &&
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

// Up to this many members a lookup scans the hashes; above it the index gets a hash table.
constexpr uint32_t kScanMax = 12;

}  // namespace

uint32_t detail::fold_hash_slow(std::string_view key) {
  std::string f = fold_key(key);  // K U+212A -> K, U+017F -> S (and ASCII upper case)
  uint64_t any = 0;
  return hash_bytes(f.data(), f.size(), any);
}

FieldSet::FieldSet(std::span<const std::string_view> fields) : fields_(fields.begin(), fields.end()) {
  size_t n = 16;
  while (n < fields_.size() * 2) n *= 2;
  mask_ = static_cast<uint32_t>(n - 1);
  slots_.assign(n, 0);
  for (size_t i = 0; i < fields_.size(); ++i) {
    uint32_t h = fold_hash(fields_[i]);
    hashes_.push_back(h);
    uint32_t s = h & mask_;
    while (slots_[s]) s = (s + 1) & mask_;
    slots_[s] = static_cast<uint16_t>(i + 1);
  }
}

bool FieldSet::contains(std::string_view key, uint32_t hash) const {
  for (uint32_t s = hash & mask_; slots_[s]; s = (s + 1) & mask_) {
    size_t i = slots_[s] - 1u;
    if (hashes_[i] == hash && key_matches(key, fields_[i])) return true;
  }
  return false;
}

void Struct::build() const {
  size_t n = 0;
  for (size_t i = 0; i < nobjs_; ++i) n += object_at(i).size();
  Entry* e = static_cast<Entry*>(t_arena.alloc(n * sizeof(Entry)));
  uint32_t count = 0;
  for (size_t i = 0; i < nobjs_ && count < n; ++i)
    for (auto f : object_at(i)) {
      if (count == n) break;
      ::new (static_cast<void*>(e + count)) Entry{fold_hash(f.key), static_cast<uint32_t>(f.key.size()), f.key.data(), f.value};
      ++count;
    }
  entries_ = e;
  count_ = count;
  mask_ = 0;
  slots_ = nullptr;
  if (count > kScanMax) {
    uint32_t size = 32;
    while (size < count * 2) size *= 2;
    mask_ = size - 1;
    uint32_t* slots = static_cast<uint32_t*>(t_arena.alloc(size * sizeof(uint32_t)));
    std::fill_n(slots, size, 0u);
    // Linear probing keeps the members of one name in document order along the probe sequence.
    for (uint32_t i = 0; i < count; ++i) {
      uint32_t s = e[i].hash & mask_;
      while (slots[s]) s = (s + 1) & mask_;
      slots[s] = i + 1;
    }
    slots_ = slots;
  }
  gen_ = t_gen;
}

inline void Struct::ensure_index() const {
  if (gen_ != t_gen) build();
}

bool Struct::find(Field field, Errors& err, std::string_view path, Matches& out) const {
  out.clear();
  if (nobjs_ == 0) return true;
  ensure_index();
  const Entry* e = entries_;
  const uint32_t h = field.hash;
  std::string_view first_key;
  element first_value;
  auto visit = [&](const Entry& x) {
    if (x.hash != h || !key_matches(x.name(), field.name)) return true;
    if (out.size() == 0) {
      first_key = x.name();
      first_value = x.value;
    } else if (x.name() != first_key && !same_value(first_value, x.value)) {
      err.add("ambiguous JSON: " + path_join(path, field.name) + " is given as \"" + std::string(first_key) + "\" and \"" +
              std::string(x.name()) + "\" with different values");
      out.clear();
      return false;
    }
    out.push(x.value);
    return true;
  };
  if (mask_ == 0) {
    for (uint32_t i = 0; i < count_; ++i)
      if (!visit(e[i])) return false;
    return true;
  }
  for (uint32_t s = h & mask_; slots_[s]; s = (s + 1) & mask_)
    if (!visit(e[slots_[s] - 1])) return false;
  return true;
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
  const Entry* e = entries_;
  if (mask_ == 0) {
    for (uint32_t i = 0; i < count_; ++i)
      if (e[i].hash == field.hash && key_matches(e[i].name(), field.name)) return true;
    return false;
  }
  for (uint32_t s = field.hash & mask_; slots_[s]; s = (s + 1) & mask_)
    if (e[slots_[s] - 1].hash == field.hash && key_matches(e[slots_[s] - 1].name(), field.name)) return true;
  return false;
}

bool Struct::has_any(const FieldSet& set) const {
  if (nobjs_ == 0) return false;
  ensure_index();
  for (uint32_t i = 0; i < count_; ++i)
    if (set.contains(entries_[i].name(), entries_[i].hash)) return true;
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
  Matches m;
  find(field, err, path, m);
  for (size_t mi = 0; mi < m.size(); ++mi) {
    element v = m[mi];
    if (v.type() == element_type::NULL_VALUE) {
      out.reset();
      continue;
    }
    if (v.type() != element_type::OBJECT) {
      err.add("json: cannot unmarshal " + std::string(type_name(v.type())) + " into map " + path_join(path, field.name));
      return std::nullopt;
    }
    if (!out) out.emplace();
    for (auto f : obj_of(v)) {
      bool replaced = false;
      for (auto& kv : *out)
        if (kv.first == f.key) {
          kv.second = f.value;
          replaced = true;
        }
      if (!replaced) out->emplace_back(f.key, f.value);
    }
  }
  return out;
}

std::optional<std::vector<std::pair<std::string_view, std::string_view>>> Struct::string_map(Field field,
                                                                                             Errors& err,
                                                                                             std::string_view path) const {
  auto m = map(field, err, path);
  if (!m) return std::nullopt;
  std::vector<std::pair<std::string_view, std::string_view>> out;
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
