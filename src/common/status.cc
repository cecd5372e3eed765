#include "common/status.h"

namespace opensrd {

const char* CodeName(Code c) {
  switch (c) {
    case Code::kOk:
      return "OK";
    case Code::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case Code::kNotFound:
      return "NOT_FOUND";
    case Code::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case Code::kTimedOut:
      return "TIMED_OUT";
    case Code::kPeerRestarted:
      return "PEER_RESTARTED";
    case Code::kTruncated:
      return "TRUNCATED";
    case Code::kCancelled:
      return "CANCELLED";
    case Code::kIoError:
      return "IO_ERROR";
    case Code::kMalformed:
      return "MALFORMED";
    case Code::kRnrRetryExceeded:
      return "RNR_RETRY_EXCEEDED";
    case Code::kPermissionDenied:
      return "PERMISSION_DENIED";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(code_)) + ": " + msg_;
}

}  // namespace opensrd
