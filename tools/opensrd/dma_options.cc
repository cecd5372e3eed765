#include "tools/opensrd/dma_options.h"

namespace opensrd::cli {

Status ApplyDmaOptions(const DmaCliOptions& o, EndpointConfig& cfg) {
  if (o.dma != "on" && o.dma != "off") {
    return Status(Code::kInvalidArgument, "--dma must be on or off");
  }
  Result<dma::PrefetchMode> p = dma::ParsePrefetchMode(o.prefetch);
  if (!p.ok()) return Status(Code::kInvalidArgument, "--dma-prefetch must be on, off or auto");
  cfg.payload_copy = o.dma == "on" ? PayloadCopy::kEngine : PayloadCopy::kDirect;
  cfg.dma_prefetch = *p;
  return Status::Ok();
}

}  // namespace opensrd::cli
