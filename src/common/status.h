// Status and Result<T>: errors as values on the data path (GCC 12 has no std::expected in C++20).
// Plain value types; no thread-safety concerns beyond those of the contained value.
#pragma once
#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace opensrd {

enum class Code {
  kOk = 0,
  kInvalidArgument,    // API misuse: bad handle, empty buffer, size out of range
  kNotFound,           // unknown queue, peer or context
  kResourceExhausted,  // queue full, no receive buffer
  kTimedOut,           // peer did not answer within the configured timeout
  kPeerRestarted,      // the peer came back with a new incarnation; in-flight work is lost
  kTruncated,          // message larger than the posted receive buffer
  kCancelled,          // endpoint shut down with work outstanding
  kIoError,            // socket or system call failure
  kMalformed,          // bytes that do not parse
  kRnrRetryExceeded,   // the receiver refused (no receive buffer) for the whole peer timeout
  kPermissionDenied,   // wrong token or key: the caller is not allowed to do this
};

const char* CodeName(Code c);

class Status {
 public:
  Status() = default;
  Status(Code code, std::string msg) : code_(code), msg_(std::move(msg)) {}
  static Status Ok() { return {}; }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return msg_; }
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string msg_;
};

template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design, like expected
  Result(Status s) : v_(std::move(s)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT
  bool ok() const { return std::holds_alternative<T>(v_); }
  const T& value() const { return std::get<T>(v_); }
  T& value() { return std::get<T>(v_); }
  const T& operator*() const { return value(); }
  const T* operator->() const { return &value(); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace opensrd
