#include "http/message.hpp"

#include "core/strings.hpp"

namespace dg::http {
namespace {

const std::string* find_header(const std::vector<Header>& headers, std::string_view name) {
  for (const auto& h : headers)
    if (iequals(h.name, name)) return &h.value;
  return nullptr;
}

}  // namespace

const std::string* RequestHead::find(std::string_view name) const { return find_header(headers, name); }

const std::string* ResponseHead::find(std::string_view name) const { return find_header(headers, name); }

bool is_hop_by_hop(std::string_view name) {
  // Dispatch on length first: this runs for every forwarded header.
  switch (name.size()) {
    case 2: return iequals(name, "TE");
    case 7: return iequals(name, "Upgrade") || iequals(name, "Trailer");
    case 10: return iequals(name, "Connection") || iequals(name, "Keep-Alive");
    case 16: return iequals(name, "Proxy-Connection");
    case 17: return iequals(name, "Transfer-Encoding");
    case 18: return iequals(name, "Proxy-Authenticate");
    case 19: return iequals(name, "Proxy-Authorization");
    default: return false;
  }
}

}  // namespace dg::http
