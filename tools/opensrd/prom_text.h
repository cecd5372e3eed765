// A parser for the Prometheus text exposition format (0.0.4) as `opensrd stat` reads it from a
// --metrics endpoint: samples only (HELP, TYPE and other comments are skipped), each as its
// name, its labels in order and its value. The input comes from the network, so every line is
// checked and a bad line is skipped and counted, never trusted. Sans-I/O; not thread-safe.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace opensrd::cli {

struct PromSample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // in the order written, unescaped
  double value = 0;
  // The label's value, or "" when absent.
  std::string_view Label(std::string_view key) const;
};

// Why a line was refused (PromText::rejected counts them by reason).
enum class PromReject : uint8_t {
  kBadName,       // the metric or a label name is empty or has a character outside [a-zA-Z0-9_:]
  kBadLabels,     // no '=', no opening quote, unterminated value, bad escape, or missing '}'
  kMissingValue,  // nothing after the name and labels
  kBadValue,      // the value is not a number (NaN and +/-Inf are numbers)
  kTooLong,       // a line beyond kMaxLine bytes, or beyond kMaxLabels labels
  kCount
};

struct PromText {
  static constexpr size_t kMaxLine = 4096;
  static constexpr size_t kMaxLabels = 16;
  std::vector<PromSample> samples;
  uint64_t rejected[static_cast<size_t>(PromReject::kCount)] = {};
  uint64_t total_rejected() const;
};

PromText ParsePromText(std::string_view text);

}  // namespace opensrd::cli
