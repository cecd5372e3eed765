// --pcap FILE for every command that drives endpoints: opens the shared PcapWriter and reports
// what it wrote when the command ends (docs/OBSERVABILITY.md).
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/pcap_writer.h"
#include "common/status.h"

namespace opensrd::cli {

// Empty path: no capture (null writer). Otherwise opens `path` (truncating it); a file that
// cannot be created is an error naming it (the caller exits 2).
Result<std::unique_ptr<PcapWriter>> OpenCapture(const std::string& path);

// Closes the writer (everything buffered reaches the file) and returns its counters as JSON
// {file, captured, written, dropped, write_errors}; null JSON when there is no writer.
nlohmann::json FinishCapture(PcapWriter* w);

// One line for stderr: "pcap FILE: N datagrams written, M dropped (buffer full)".
std::string CaptureSummary(const nlohmann::json& j);

}  // namespace opensrd::cli
