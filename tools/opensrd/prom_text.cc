#include "tools/opensrd/prom_text.h"

#include <cstdlib>
#include <cstring>

namespace opensrd::cli {

namespace {

bool NameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

// Reads a name at `pos`; empty on failure.
std::string_view Name(std::string_view s, size_t& pos) {
  const size_t start = pos;
  while (pos < s.size() && NameChar(s[pos], pos == start)) ++pos;
  return s.substr(start, pos - start);
}

bool ParseValue(std::string_view v, double& out) {
  if (v == "NaN" || v == "+Inf" || v == "-Inf" || v == "Inf") {
    out = v == "NaN" ? __builtin_nan("") : (v[0] == '-' ? -__builtin_inf() : __builtin_inf());
    return true;
  }
  if (v.empty() || v.size() > 64) return false;
  char buf[65];
  std::memcpy(buf, v.data(), v.size());
  buf[v.size()] = '\0';
  char* end = nullptr;
  out = std::strtod(buf, &end);
  // strtod takes "nan", "inf", hex floats and leading spaces; the format does not.
  if (end != buf + v.size() || buf[0] == ' ') return false;
  for (char c : v) {
    if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) {
      return false;
    }
  }
  return true;
}

// One sample line (not a comment, not blank).
bool ParseLine(std::string_view line, PromSample& out, PromReject& why) {
  size_t pos = 0;
  std::string_view name = Name(line, pos);
  if (name.empty()) {
    why = PromReject::kBadName;
    return false;
  }
  out.name.assign(name);
  out.labels.clear();
  if (pos < line.size() && line[pos] == '{') {
    ++pos;
    while (true) {
      if (pos < line.size() && line[pos] == '}') {
        ++pos;
        break;
      }
      if (out.labels.size() >= PromText::kMaxLabels) {
        why = PromReject::kTooLong;
        return false;
      }
      std::string_view key = Name(line, pos);
      if (key.empty()) {
        why = pos < line.size() ? PromReject::kBadName : PromReject::kBadLabels;
        return false;
      }
      if (pos + 1 >= line.size() || line[pos] != '=' || line[pos + 1] != '"') {
        why = PromReject::kBadLabels;
        return false;
      }
      pos += 2;
      std::string value;
      bool closed = false;
      while (pos < line.size()) {
        const char c = line[pos++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (pos >= line.size()) break;
          const char e = line[pos++];
          if (e == 'n') {
            value += '\n';
          } else if (e == '\\' || e == '"') {
            value += e;
          } else {
            why = PromReject::kBadLabels;
            return false;
          }
        } else {
          value += c;
        }
      }
      if (!closed) {
        why = PromReject::kBadLabels;
        return false;
      }
      out.labels.emplace_back(std::string(key), std::move(value));
      if (pos < line.size() && line[pos] == ',')
        ++pos;
      else if (pos >= line.size() || line[pos] != '}') {
        why = PromReject::kBadLabels;
        return false;
      }
    }
  }
  if (pos >= line.size() || line[pos] != ' ') {
    why = PromReject::kMissingValue;
    return false;
  }
  while (pos < line.size() && line[pos] == ' ') ++pos;
  std::string_view rest = line.substr(pos);
  if (rest.empty()) {
    why = PromReject::kMissingValue;
    return false;
  }
  // An optional time stamp follows the value; stat does not use it.
  const size_t space = rest.find(' ');
  if (!ParseValue(rest.substr(0, space), out.value)) {
    why = PromReject::kBadValue;
    return false;
  }
  return true;
}

}  // namespace

std::string_view PromSample::Label(std::string_view key) const {
  for (const auto& [k, v] : labels) {
    if (k == key) return v;
  }
  return {};
}

uint64_t PromText::total_rejected() const {
  uint64_t n = 0;
  for (uint64_t r : rejected) n += r;
  return n;
}

PromText ParsePromText(std::string_view text) {
  PromText out;
  size_t pos = 0;
  PromSample sample;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    if (line.size() > PromText::kMaxLine) {
      ++out.rejected[static_cast<size_t>(PromReject::kTooLong)];
      continue;
    }
    PromReject why = PromReject::kBadName;
    if (ParseLine(line, sample, why)) {
      out.samples.push_back(sample);
    } else {
      ++out.rejected[static_cast<size_t>(why)];
    }
  }
  return out;
}

}  // namespace opensrd::cli
