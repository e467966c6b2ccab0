// libFuzzer target: the tensor file readers. The first byte picks the reader (even: read_npy, odd:
// read_tensor_proto); the rest is the file. A tensor that reads back is written with write_npy and read again,
// which must give the same tensor.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz_common.h"
#include "kiln/tensor_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool npy = (data[0] & 1) == 0;
  const std::string path = kiln_fuzz::write_temp(npy ? "input.npy" : "input.pb", data + 1, size - 1);
  kiln_fuzz::expect_only_kiln_errors(npy ? "read_npy" : "read_tensor_proto", [&] {
    const kiln::TensorData t = npy ? kiln::read_npy(path) : kiln::read_tensor_proto(path);
    const std::string out = kiln_fuzz::temp_dir() + "/roundtrip.npy";
    try {
      kiln::write_npy(out, t);
    } catch (const kiln::Error&) {
      return;  // dtypes numpy has no name for
    }
    const kiln::TensorData back = kiln::read_npy(out);
    if (!back.same_values(t)) {
      std::fprintf(stderr, "fuzz: write_npy/read_npy round trip changed the tensor\n");
      std::abort();
    }
  });
  return 0;
}
