// kiln — CUDA kernels whose output count depends on the data (NonZero, Compress, Unique, NonMaxSuppression)
// while the plan gave that output a static size (a shape the model declares). The device writes the count it
// found (and an op-specific invalid-input mark) into the head of the workspace; a copy on the stream brings
// it into the layer's pinned host staging, and check_host_work compares it with the planned count once the
// run is over. The kernels never write past the planned outputs: a mismatch is reported, not truncated.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

#include "backends/cuda/cuda_common.h"

namespace kiln::cuda {

// What the device found. `invalid` is -1 when the input was valid, else an op-specific value the message
// names (e.g. the index of a condition entry past the axis).
struct DataCountReport {
  long long found;
  long long invalid;
};

class DataCountKernel : public CudaKernel {
 public:
  size_t host_staging_bytes() const override { return sizeof(DataCountReport); }
  size_t workspace_bytes() const final { return kHead + body_workspace_bytes(); }
  void check_host_work(const RunContext& rc) const override {
    if (!rc.host_staging) return;
    DataCountReport r;
    std::memcpy(&r, rc.host_staging, sizeof r);
    if (r.invalid >= 0) throw Error(op_ + ": " + invalid_message(r.invalid));
    if (r.found != planned_)
      throw Error(op_ + ": the data gives " + std::to_string(r.found) + " " + what_ +
                  ", the planned output has " + std::to_string(planned_));
  }

 protected:
  // `what`: the counted thing, plural ("non-zero elements", "selected boxes").
  DataCountKernel(std::string op, std::string what, int64_t planned)
      : op_(std::move(op)), what_(std::move(what)), planned_(planned) {}
  int64_t planned() const { return planned_; }

  // The kernels write the report here (each run writes both fields).
  static DataCountReport* device_report(const RunContext& rc) {
    return static_cast<DataCountReport*>(rc.workspace);
  }
  // The rest of the workspace, body_workspace_bytes() of it, 256-byte aligned.
  static void* body_workspace(const RunContext& rc) {
    return static_cast<unsigned char*>(rc.workspace) + kHead;
  }
  virtual size_t body_workspace_bytes() const { return 0; }
  virtual std::string invalid_message(long long invalid) const {
    return "invalid input (" + std::to_string(invalid) + ")";
  }

  // After the kernels that write the report: its copy to the host.
  void enqueue_report(const RunContext& rc) const {
    if (!rc.host_staging) throw Error(op_ + ": enqueued without its host staging memory");
    KILN_CUDA_CHECK(cudaMemcpyAsync(rc.host_staging, rc.workspace, sizeof(DataCountReport),
                                    cudaMemcpyDeviceToHost, rc.stream));
  }

 private:
  static constexpr size_t kHead = 256;
  std::string op_, what_;
  int64_t planned_;
};

}  // namespace kiln::cuda
