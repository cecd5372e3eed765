// Parsing of the bridge's --volume specs and of byte sizes.
#include <cctype>
#include <fstream>
#include <sstream>

#include "block/bridge.h"

namespace opensrd::block {
namespace {

Status Bad(const std::string& why) {
  return Status(Code::kInvalidArgument, why);
}

}  // namespace

Result<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Bad("cannot read token file " + path);
  std::string t;
  std::getline(in, t);
  if (!t.empty() && t.back() == '\r') t.pop_back();
  if (t.empty()) return Bad("token file " + path + " is empty");
  if (t.size() > 255) return Bad("token in " + path + " is longer than 255 bytes");
  return t;
}

Result<uint64_t> ParseByteSize(const std::string& s) {
  size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  if (i == 0 || i > 19) return Bad("bad size '" + s + "'");
  uint64_t v = std::stoull(s.substr(0, i));
  std::string unit = s.substr(i);
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  int shift = 0;
  if (unit.empty() || unit == "B") {
    shift = 0;
  } else if (unit == "K" || unit == "KIB") {
    shift = 10;
  } else if (unit == "M" || unit == "MIB") {
    shift = 20;
  } else if (unit == "G" || unit == "GIB") {
    shift = 30;
  } else if (unit == "T" || unit == "TIB") {
    shift = 40;
  } else {
    return Bad("bad size unit in '" + s + "' (use K, M, G, T, KiB, MiB, GiB or TiB)");
  }
  if (shift > 0 && v > (UINT64_MAX >> shift)) return Bad("size '" + s + "' too large");
  return v << shift;
}

Result<VolumeSpec> ParseVolumeSpec(const std::string& spec) {
  VolumeSpec v;
  const size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0) return Bad("volume '" + spec + "': want NAME=PATH[,...]");
  v.name = spec.substr(0, eq);
  if (v.name.size() > 255) return Bad("volume name longer than 255 bytes");
  std::stringstream rest(spec.substr(eq + 1));
  std::string item;
  bool first = true;
  bool have_token = false;
  while (std::getline(rest, item, ',')) {
    if (first) {
      first = false;
      v.path = item;
      if (v.path.empty()) return Bad("volume '" + v.name + "': empty path");
      continue;
    }
    const size_t e = item.find('=');
    const std::string key = item.substr(0, e);
    const std::string val = e == std::string::npos ? "" : item.substr(e + 1);
    if (key == "size") {
      Result<uint64_t> sz = ParseByteSize(val);
      if (!sz.ok()) return Bad("volume '" + v.name + "': " + sz.status().message());
      v.size = *sz;
    } else if (key == "token" || key == "token-file") {
      if (have_token) return Bad("volume '" + v.name + "': give token or token-file once");
      have_token = true;
      if (key == "token") {
        if (val.empty() || val.size() > 255) return Bad("volume '" + v.name + "': bad token");
        v.token = val;
      } else {
        Result<std::string> t = ReadTokenFile(val);
        if (!t.ok()) return Bad("volume '" + v.name + "': " + t.status().message());
        v.token = *t;
      }
    } else if (key == "ro" && val.empty()) {
      v.read_only = true;
    } else if (key == "crash-test" && val.empty()) {
      v.crash_test = true;
    } else if (key == "conf" && !val.empty()) {
      v.rbd_conf = val;
    } else if (key == "id" && !val.empty()) {
      v.rbd_id = val;
    } else {
      return Bad("volume '" + v.name + "': unknown option '" + item + "'");
    }
  }
  if (v.path.empty()) return Bad("volume '" + v.name + "': empty path");
  if (v.path.rfind("rbd:", 0) == 0) {
    const std::string image = v.path.substr(4);
    const size_t slash = image.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == image.size() ||
        image.find('/', slash + 1) != std::string::npos) {
      return Bad("volume '" + v.name + "': want rbd:POOL/IMAGE, got '" + v.path + "'");
    }
    v.rbd_pool = image.substr(0, slash);
    v.rbd_image = image.substr(slash + 1);
    if (v.crash_test) return Bad("volume '" + v.name + "': crash-test is for file volumes");
  } else if (!v.rbd_conf.empty() || !v.rbd_id.empty()) {
    return Bad("volume '" + v.name + "': conf= and id= are for rbd: volumes");
  }
  return v;
}

}  // namespace opensrd::block
