#include <cstdio>

#include "tools/opensrd/commands.h"

namespace opensrd::cli {

int RunDemo(const DemoOptions& o) {
  std::fprintf(stderr, "opensrd demo: the transport core is not built yet (issue 2)\n");
  return 1;
}

}  // namespace opensrd::cli
