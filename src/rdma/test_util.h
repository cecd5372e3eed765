// Helpers shared by the rdma unit tests.
#pragma once
#include <string>

#include "common/status.h"

namespace opensrd::rdma::testing {

// The stable token a decoder error starts with ("bad_icrc", "too_short", ...), or "ok".
template <typename R>
std::string Token(const R& r) {
  if (r.ok()) return "ok";
  std::string m = r.status().message();  // status() returns a copy
  return m.substr(0, m.find(':'));
}

}  // namespace opensrd::rdma::testing
