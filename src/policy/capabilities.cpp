#include "policy/capabilities.hpp"

#include <bit>

#include "core/strings.hpp"

namespace dg::policy {

namespace {

constexpr std::string_view kCaps[] = {
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE"};

}  // namespace

std::optional<uint64_t> capability_bits(std::string_view name) {
  std::string up;
  up.reserve(name.size());
  for (char c : name) up.push_back((c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c);
  if (up == "ALL") return kAllCapabilities;
  std::string_view v = up;
  if (v.substr(0, 4) == "CAP_") v.remove_prefix(4);
  for (size_t i = 0; i < std::size(kCaps); ++i)
    if (kCaps[i] == v) return uint64_t{1} << i;
  return std::nullopt;
}

std::string capability_name(uint64_t bit) {
  if (bit == kAllCapabilities) return "ALL";
  int i = std::countr_zero(bit);
  if (i < static_cast<int>(std::size(kCaps))) return std::string(kCaps[i]);
  return "?";
}

}  // namespace dg::policy
