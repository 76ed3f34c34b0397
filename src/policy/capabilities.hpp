// Linux capability names as dockerd accepts them in CapAdd/CapDrop: any case, with or without the
// CAP_ prefix, ALL = every capability.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dg::policy {

inline constexpr uint64_t kAllCapabilities = ~uint64_t{0};

// Bit for one capability, kAllCapabilities for ALL; nullopt for what dockerd refuses
// (unknown names, "CAP_ALL", leading/trailing spaces).
std::optional<uint64_t> capability_bits(std::string_view name);
// "SYS_ADMIN" for bit 21 ...
std::string capability_name(uint64_t bit);

}  // namespace dg::policy
