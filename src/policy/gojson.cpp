#include "policy/gojson.hpp"

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

constexpr uint32_t kAnySig = 0xFFFFFFFFu;

uint32_t signature(std::string_view key) {
  for (char c : key)
    if (static_cast<unsigned char>(c) >= 0x80) return kAnySig;  // may hold a folding rune
  if (key.empty()) return 0;
  char f = key[0];
  if (f >= 'a' && f <= 'z') f = static_cast<char>(f - 32);
  return (static_cast<uint32_t>(key.size()) << 8) | static_cast<unsigned char>(f);
}

}  // namespace

const std::vector<Struct::Entry>& Struct::index() const {
  if (index_.empty()) {
    for (const auto& o : objs_)
      for (auto f : o) index_.push_back({signature(f.key), f.key, f.value});
  }
  return index_;
}

std::vector<element> Struct::values(std::string_view field, Errors& err, std::string_view path) const {
  std::vector<element> out;
  std::string_view first_key;
  element first_value;
  const uint32_t sig = signature(field);
  for (const auto& e : index()) {
    if (e.sig != sig && e.sig != kAnySig) continue;
    if (!key_matches(e.key, field)) continue;
    if (out.empty()) {
      first_key = e.key;
      first_value = e.value;
    } else if (e.key != first_key && !same_value(first_value, e.value)) {
      err.add("ambiguous JSON: " + path_join(path, field) + " is given as \"" + std::string(first_key) + "\" and \"" +
              std::string(e.key) + "\" with different values");
      return {};
    }
    out.push_back(e.value);
  }
  return out;
}

bool Struct::has(std::string_view field) const {
  const uint32_t sig = signature(field);
  for (const auto& e : index())
    if ((e.sig == sig || e.sig == kAnySig) && key_matches(e.key, field)) return true;
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

std::optional<bool> Struct::boolean(std::string_view field, Errors& err, std::string_view path) const {
  std::optional<bool> out;
  for (element v : values(field, err, path)) {
    if (v.type() == element_type::NULL_VALUE) continue;
    if (v.type() != element_type::BOOL) {
      err.add("json: cannot unmarshal " + std::string(type_name(v.type())) + " into bool " + path_join(path, field));
      return std::nullopt;
    }
    out = v.get_bool().value_unsafe();
  }
  return out;
}

std::optional<int64_t> Struct::integer(std::string_view field, Errors& err, std::string_view path, int64_t min,
                                       int64_t max) const {
  std::optional<int64_t> out;
  for (element v : values(field, err, path)) {
    if (v.type() == element_type::NULL_VALUE) continue;
    auto i = as_integer(v, err, path, field, min, max);
    if (!i) return std::nullopt;
    out = i;
  }
  return out;
}

std::optional<std::string_view> Struct::string(std::string_view field, Errors& err, std::string_view path) const {
  std::optional<std::string_view> out;
  for (element v : values(field, err, path)) {
    if (v.type() == element_type::NULL_VALUE) continue;
    auto s = as_string(v, err, path, field);
    if (!s) return std::nullopt;
    out = s;
  }
  return out;
}

Struct Struct::sub(std::string_view field, Errors& err, std::string_view path, bool pointer) const {
  Struct out;
  for (element v : values(field, err, path)) {
    if (v.type() == element_type::NULL_VALUE) {
      if (pointer) out.reset();
      continue;
    }
    if (v.type() != element_type::OBJECT) {
      err.add("json: cannot unmarshal " + std::string(type_name(v.type())) + " into struct " + path_join(path, field));
      return Struct();
    }
    out.add(obj_of(v));
  }
  return out;
}

std::optional<std::vector<std::string_view>> Struct::strings(std::string_view field, Errors& err, std::string_view path,
                                                             bool str_slice) const {
  std::optional<std::vector<std::string_view>> out;
  for (element v : values(field, err, path)) {
    if (v.type() == element_type::NULL_VALUE) {
      out.reset();
      continue;
    }
    auto s = as_strings(v, err, path, field, str_slice);
    if (!s) return std::nullopt;
    out = std::move(s);
  }
  return out;
}

std::optional<std::vector<Struct>> Struct::structs(std::string_view field, Errors& err, std::string_view path) const {
  std::optional<std::vector<Struct>> out;
  bool assigned = false;
  for (element v : values(field, err, path)) {
    if (v.type() == element_type::NULL_VALUE) {
      out.reset();
      assigned = false;
      continue;
    }
    if (v.type() != element_type::ARRAY) {
      err.add("json: cannot unmarshal " + std::string(type_name(v.type())) + " into []struct " + path_join(path, field));
      return std::nullopt;
    }
    auto arr = arr_of(v);
    if (assigned && arr.size() > 0) {
      // Go decodes a second array into the elements left by the first (merging their fields).
      err.add("ambiguous JSON: " + path_join(path, field) + " is given more than once");
      return std::nullopt;
    }
    std::vector<Struct> elems;
    for (element x : arr) {
      if (x.type() == element_type::NULL_VALUE) {
        elems.emplace_back();
        continue;
      }
      if (x.type() != element_type::OBJECT) {
        err.add("json: cannot unmarshal " + std::string(type_name(x.type())) + " into struct in " + path_join(path, field));
        return std::nullopt;
      }
      elems.emplace_back(obj_of(x));
    }
    out = std::move(elems);
    assigned = arr.size() > 0;
  }
  return out;
}

std::optional<std::vector<std::pair<std::string_view, element>>> Struct::map(std::string_view field, Errors& err,
                                                                              std::string_view path) const {
  std::optional<std::vector<std::pair<std::string_view, element>>> out;
  for (element v : values(field, err, path)) {
    if (v.type() == element_type::NULL_VALUE) {
      out.reset();
      continue;
    }
    if (v.type() != element_type::OBJECT) {
      err.add("json: cannot unmarshal " + std::string(type_name(v.type())) + " into map " + path_join(path, field));
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

std::optional<std::vector<std::pair<std::string_view, std::string_view>>> Struct::string_map(std::string_view field,
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
    auto s = as_string(v, err, path, field);
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
