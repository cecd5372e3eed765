#include "tools/opensrd/capture.h"

namespace opensrd::cli {

Result<std::unique_ptr<PcapWriter>> OpenCapture(const std::string& path) {
  if (path.empty()) return std::unique_ptr<PcapWriter>();
  Result<std::unique_ptr<PcapWriter>> w = PcapWriter::Open({.path = path});
  if (!w.ok()) return Status(Code::kInvalidArgument, "--pcap " + w.status().message());
  return w;
}

nlohmann::json FinishCapture(PcapWriter* w) {
  if (w == nullptr) return nullptr;
  w->Close();
  const PcapStats s = w->stats();
  return {{"file", w->path()},
          {"captured", s.captured},
          {"written", s.written},
          {"dropped", s.dropped},
          {"write_errors", s.write_errors}};
}

std::string CaptureSummary(const nlohmann::json& j) {
  if (j.is_null()) return "";
  return "pcap " + j["file"].get<std::string>() + ": " +
         std::to_string(j["written"].get<uint64_t>()) + " datagrams written, " +
         std::to_string(j["dropped"].get<uint64_t>()) + " dropped (buffer full), " +
         std::to_string(j["write_errors"].get<uint64_t>()) + " write errors";
}

}  // namespace opensrd::cli
