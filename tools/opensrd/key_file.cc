#include "tools/opensrd/key_file.h"

#include "block/bridge.h"

#include <fstream>
#include <iterator>
#include <vector>

namespace opensrd::cli {

namespace {
int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

Result<std::array<uint8_t, 32>> LoadKeyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(Code::kNotFound, "cannot read key file '" + path + "'");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::array<uint8_t, 32> key{};
  if (bytes.size() == 32) {
    for (size_t i = 0; i < 32; ++i) key[i] = static_cast<uint8_t>(bytes[i]);
    return key;
  }
  while (!bytes.empty() && (bytes.back() == '\n' || bytes.back() == '\r')) bytes.pop_back();
  if (bytes.size() != 64) {
    return Status(Code::kInvalidArgument, "key file '" + path +
                                              "' must hold 32 bytes or 64 hex digits, not " +
                                              std::to_string(bytes.size()) + " bytes");
  }
  for (size_t i = 0; i < 32; ++i) {
    const int hi = HexDigit(bytes[2 * i]), lo = HexDigit(bytes[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return Status(Code::kInvalidArgument,
                    "key file '" + path + "': not a hex digit at offset " + std::to_string(2 * i));
    }
    key[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return key;
}

Result<KeyMode> ParseKeyMode(const std::string& s) {
  if (s == "mac") return KeyMode::kMac;
  if (s == "aead") return KeyMode::kAead;
  return Status(Code::kInvalidArgument, "--key-mode must be mac or aead, not '" + s + "'");
}

Status ApplyKeyOptions(const std::string& key_file, const std::string& key_mode,
                       EndpointConfig& cfg) {
  if (key_file.empty()) {
    if (!key_mode.empty()) return Status(Code::kInvalidArgument, "--key-mode needs --key-file");
    return Status::Ok();
  }
  Result<KeyMode> mode = ParseKeyMode(key_mode.empty() ? "mac" : key_mode);
  if (!mode.ok()) return mode.status();
  Result<std::array<uint8_t, 32>> key = LoadKeyFile(key_file);
  if (!key.ok()) return key.status();
  cfg.key_mode = mode.value();
  cfg.cluster_key = key.value();
  return Status::Ok();
}

Result<std::string> LoadToken(const std::string& inline_token, const std::string& token_file) {
  if (!inline_token.empty() && !token_file.empty()) {
    return Status(Code::kInvalidArgument, "give --token or --token-file, not both");
  }
  if (!token_file.empty()) return block::ReadTokenFile(token_file);
  if (inline_token.size() > 255) return Status(Code::kInvalidArgument, "token too long");
  return inline_token;
}

}  // namespace opensrd::cli
