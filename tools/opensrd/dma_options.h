// --dma on|off and --dma-prefetch on|off|auto, shared by the subcommands that run a transport
// endpoint (perf server, perf client). AddDmaOptions is a template so that this header needs
// no CLI11 (which only main.cc includes); ApplyDmaOptions turns the strings into the
// EndpointConfig fields (docs/DMA.md, "In the transport").
#pragma once
#include <string>
#include <vector>

#include "opensrd/transport.h"

namespace opensrd::cli {

struct DmaCliOptions {
  std::string dma = "off";        // on: payload copies through the DMA engine
  std::string prefetch = "auto";  // the engine's look-ahead prefetch (with --dma on)
};

// `cmd` is a CLI::App*; `is_member` is CLI::IsMember (passed in so this header stays CLI11-free).
template <typename App, typename IsMember>
void AddDmaOptions(App* cmd, DmaCliOptions& o, IsMember is_member) {
  cmd->add_option("--dma", o.dma,
                  "payload copies through the DMA engine (on) or memcpy (off, default)")
      ->check(is_member(std::vector<std::string>{"on", "off"}));
  cmd->add_option("--dma-prefetch", o.prefetch,
                  "the engine's look-ahead prefetch: on, off or auto (default; see docs/DMA.md)")
      ->check(is_member(std::vector<std::string>{"on", "off", "auto"}));
}

// kInvalidArgument for values other than the above.
Status ApplyDmaOptions(const DmaCliOptions& o, EndpointConfig& cfg);

}  // namespace opensrd::cli
