// Cluster key files for --key-file: 32 bytes, as raw bytes or as 64 hex digits (an optional
// trailing newline). Make one with: head -c 32 /dev/urandom > cluster.key
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "common/status.h"
#include "opensrd/transport.h"

namespace opensrd::cli {

Result<std::array<uint8_t, 32>> LoadKeyFile(const std::string& path);
// "mac" or "aead"; anything else is refused.
Result<KeyMode> ParseKeyMode(const std::string& s);
// Fills cfg.key_mode / cfg.cluster_key from the options (no file: no key). Errors name the
// problem (missing file, wrong size, bad hex, bad mode).
Status ApplyKeyOptions(const std::string& key_file, const std::string& key_mode,
                       EndpointConfig& cfg);

// A volume token: inline (`--token`, visible to other users in the process list) or from a file
// (`--token-file`, the first line); at most one of them. Neither: the empty token.
Result<std::string> LoadToken(const std::string& inline_token, const std::string& token_file);

}  // namespace opensrd::cli
