// Subcommand entry points of the opensrd CLI. Each returns the process exit code. Option structs
// are filled by main.cc (the only file that includes CLI11).
#pragma once
#include <cstdint>
#include <string>

namespace opensrd::cli {

struct DemoOptions {
  int paths = 4;
  double loss = 0.05;  // injected on path 1
  uint64_t messages = 2000;
  uint64_t seed = 1;
};
int RunDemo(const DemoOptions& o);

}  // namespace opensrd::cli
