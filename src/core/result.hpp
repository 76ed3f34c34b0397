// Result<T>: the one error-return type of dockgate (tl::expected from libexpected-dev).
#pragma once

#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace dg {

struct Error {
  std::string message;
};

template <class T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(std::string message) { return tl::unexpected<Error>(Error{std::move(message)}); }

}  // namespace dg
