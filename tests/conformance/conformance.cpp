// kiln_conformance — runs the ONNX backend node tests (libonnx-testdata) through kiln.
//
//   kiln_conformance DIR [--device cpu|cuda] [--filter SUBSTR] [--verbose] [--json FILE] [--jobs N]
//                    [--timeout S]
//   kiln_conformance --list-claimed [--device cpu|cuda]
//
// Each test directory holds model.onnx and test_data_set_*/{input,output}_*.pb. A test is
//   passed       every output of every data set matches (dtype, shape, values within ONNX's tolerances);
//   unsupported  one of its ops is not claimed on the device (no kernel, no schema), its model uses something
//                kiln's IR cannot hold (sequence/optional values, data types past bfloat16), kiln refused it
//                explicitly ("not supported"/"unsupported" in a kiln::Error, or no kernel of the device
//                supports a layer), or it ran past --timeout;
//   failed       anything else: wrong values, shape or dtype, an exception, a crash.
// Every test runs in a forked child, so a crashing kernel fails that test only.
// --device cuda builds every engine for the GPU (strict fp32, no TF32); without a GPU (or a CUDA build) it
// prints one line saying so and exits 0.
// Exit status: 1 if a test failed (only tests whose ops are all claimed can fail), else 0.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <onnx/onnx_pb.h>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <typeinfo>
#include <vector>

#include "device/device_backend.h"
#include "device/kernel.h"
#include "kiln/engine.h"
#include "kiln/error.h"
#include "kiln/onnx.h"
#include "kiln/tensor_data.h"
#include "ops/op.h"
#include "test_data.h"

namespace fs = std::filesystem;
using namespace kiln_conformance;  // test_data.h: reading models and .pb files

namespace {

// BuildOptions::device of every engine (--device); the CPU unless told otherwise.
std::string g_device = "cpu";

enum class Status { Passed, Failed, Unsupported };

struct Outcome {
  Status status = Status::Failed;
  std::string reason;
};

struct OpKey {
  std::string domain, op;
  bool operator<(const OpKey& o) const { return std::tie(domain, op) < std::tie(o.domain, o.op); }
  bool operator==(const OpKey& o) const { return domain == o.domain && op == o.op; }
  std::string label() const { return domain.empty() ? op : domain + "::" + op; }
};

std::string canonical_domain(const std::string& d) { return d == "ai.onnx" ? "" : d; }

// What the parent learns from model.onnx before forking.
struct ValueDecl {
  std::string name;
  bool is_tensor = true;
  int elem_type = 0;  // onnx::TensorProto::DataType
  std::string kind;   // "sequence", "optional", "map", ... when !is_tensor
};

struct TestCase {
  std::string name;
  fs::path dir;
  std::vector<OpKey> ops;          // distinct ops of the graph and its subgraphs, in first-use order
  std::vector<ValueDecl> inputs;   // graph inputs that are not initializers, in order
  std::vector<ValueDecl> outputs;  // graph outputs, in order
  Outcome outcome;
  double seconds = 0;
  bool decided = false;  // decided without running (unclaimed op, unrepresentable model)
};

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

std::string fmt(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t k = 0; k < d.size(); ++k) s += (k ? "," : "") + std::to_string(d[k]);
  return s + "]";
}

// ------------------------------------------------------------------------------------------ model scan
void collect_ops(const onnx::GraphProto& g, std::vector<OpKey>& ops) {
  for (const auto& n : g.node()) {
    OpKey k{canonical_domain(n.domain()), n.op_type()};
    if (std::find(ops.begin(), ops.end(), k) == ops.end()) ops.push_back(k);
    for (const auto& a : n.attribute()) {
      if (a.has_g()) collect_ops(a.g(), ops);
      for (const auto& sg : a.graphs()) collect_ops(sg, ops);
    }
  }
}

ValueDecl decl_of(const onnx::ValueInfoProto& vi) {
  ValueDecl d;
  d.name = vi.name();
  const auto& t = vi.type();
  if (t.has_tensor_type()) {
    d.elem_type = t.tensor_type().elem_type();
  } else if (t.has_sequence_type() || t.has_optional_type()) {
    d.is_tensor = false;
    d.kind = t.has_sequence_type() ? "sequence" : "optional";
    const onnx::TypeProto* inner = &t;  // the innermost tensor type gives the element type
    while (inner->has_sequence_type() || inner->has_optional_type())
      inner = inner->has_sequence_type() ? &inner->sequence_type().elem_type() : &inner->optional_type().elem_type();
    if (inner->has_tensor_type()) d.elem_type = inner->tensor_type().elem_type();
  } else {
    d.is_tensor = false;
    d.kind = t.has_sequence_type() ? "sequence" : t.has_optional_type() ? "optional" : t.has_map_type() ? "map"
             : t.has_sparse_tensor_type()                                 ? "sparse tensor"
                                                                          : "untyped";
  }
  return d;
}

// Tests whose stored outputs contradict their own model: skipped, with the reason, rather than counted against kiln.
const std::map<std::string, std::string> kInconsistentData = {
    {"test_adam_multiple",
     "expected outputs computed with epsilon 1e-2, which the node does not set (spec default 1e-6; onnx adam.py)"}};

// The ops a test exercises and whether kiln claims them on the device. Fills tc.outcome when decided.
// Every device claims the CPU's ops (each has a reference kernel): the same tests run everywhere. On another
// device a claimed op with no kernel there either folds away at build time (Shape, Constant, ConstantOfShape
// over constants) or is refused by the build ("N layers have no cuda kernel") and counted unsupported.
bool claimed(const OpKey& k) { return !kiln::backend::kernels_for("cpu", k.domain, k.op).empty(); }
bool has_device_kernel(const OpKey& k) { return !kiln::backend::kernels_for(g_device, k.domain, k.op).empty(); }

void scan_model(TestCase& tc) {
  if (auto it = kInconsistentData.find(tc.name); it != kInconsistentData.end()) {
    tc.decided = true;
    tc.outcome = {Status::Unsupported, "inconsistent test data: " + it->second};
    return;
  }
  std::string bytes;
  onnx::ModelProto m;
  if (!read_file(tc.dir / "model.onnx", bytes) || !m.ParseFromString(bytes)) {
    tc.decided = true;
    tc.outcome = {Status::Failed, "cannot read or parse model.onnx"};
    return;
  }
  collect_ops(m.graph(), tc.ops);
  std::set<std::string> inits;
  for (const auto& t : m.graph().initializer()) inits.insert(t.name());
  for (const auto& vi : m.graph().input())
    if (!inits.count(vi.name())) tc.inputs.push_back(decl_of(vi));
  for (const auto& vi : m.graph().output()) tc.outputs.push_back(decl_of(vi));

  std::vector<std::string> unclaimed;
  for (const OpKey& k : tc.ops) {
    if (claimed(k)) continue;
    unclaimed.push_back("'" + k.label() + "'" +
                        (kiln::ops::find_op(k.domain, k.op) ? " (schema without a kernel)" : std::string(" (no schema)")));
  }
  if (!unclaimed.empty()) {
    std::string r = "op not claimed on " + g_device + ": ";
    for (size_t k = 0; k < unclaimed.size(); ++k) r += (k ? ", " : "") + unclaimed[k];
    tc.decided = true;
    tc.outcome = {Status::Unsupported, r};
    return;
  }
  auto check = [&](const std::vector<ValueDecl>& vs, const char* what) {
    for (const ValueDecl& v : vs) {
      if (!v.is_tensor && v.kind != "sequence" && v.kind != "optional") {
        tc.decided = true;
        tc.outcome = {Status::Unsupported, std::string("graph ") + what + " '" + v.name + "' is a " + v.kind +
                                               " value; kiln's IR holds tensors only (not supported)"};
        return;
      }
      if (v.elem_type > static_cast<int>(kiln::DType::BFloat16)) {
        tc.decided = true;
        tc.outcome = {Status::Unsupported, std::string("graph ") + what + " '" + v.name + "' has type " +
                                               type_name(v.elem_type) + ", which kiln does not support"};
        return;
      }
    }
  };
  check(tc.inputs, "input");
  if (!tc.decided) check(tc.outputs, "output");
}

// ------------------------------------------------------------------------------------------ comparison
// Empty when `got` matches `want`; otherwise why not.
std::string compare(const kiln::TensorData& got, const kiln::TensorData& want) {
  using kiln::DType;
  if (got.dtype() != want.dtype())
    return std::string("dtype ") + kiln::dtype_name(got.dtype()) + ", expected " + kiln::dtype_name(want.dtype());
  if (got.dims() != want.dims()) return "shape " + dims_str(got.dims()) + ", expected " + dims_str(want.dims());
  if (kiln::dtype_is_container(want.dtype())) {  // element by element; an undeclared element dtype matches any
    const auto &g = got.elements(), &w = want.elements();
    if (got.element_dtype() != want.element_dtype() && got.element_dtype() != DType::Undefined &&
        want.element_dtype() != DType::Undefined)
      return std::string("holds ") + kiln::dtype_name(got.element_dtype()) + ", expected " +
             kiln::dtype_name(want.element_dtype());
    if (g.size() != w.size())
      return std::to_string(g.size()) + " elements, expected " + std::to_string(w.size());
    for (size_t k = 0; k < g.size(); ++k)
      if (std::string why = compare(g[k], w[k]); !why.empty()) return "element " + std::to_string(k) + ": " + why;
    return "";
  }
  const int64_t n = want.numel();
  const DType dt = want.dtype();
  if (dt == DType::String) {
    for (int64_t i = 0; i < n; ++i)
      if (got.strings()[static_cast<size_t>(i)] != want.strings()[static_cast<size_t>(i)])
        return "element " + std::to_string(i) + " is \"" + got.strings()[static_cast<size_t>(i)] + "\", expected \"" +
               want.strings()[static_cast<size_t>(i)] + "\"";
    return "";
  }
  const bool floating = dt == DType::Float || dt == DType::Double || dt == DType::Float16 || dt == DType::BFloat16 ||
                        dt == DType::Complex64 || dt == DType::Complex128;
  if (floating) {
    const bool half = dt == DType::Float16 || dt == DType::BFloat16;
    const double rtol = half ? 1e-2 : 1e-3, atol = half ? 1e-3 : 1e-7;
    int64_t count = n;
    std::function<double(const kiln::TensorData&, int64_t)> at;
    if (dt == DType::Complex64) {
      count = 2 * n;
      at = [](const kiln::TensorData& t, int64_t i) { return static_cast<double>(t.data<float>()[i]); };
    } else if (dt == DType::Complex128) {
      count = 2 * n;
      at = [](const kiln::TensorData& t, int64_t i) { return t.data<double>()[i]; };
    } else {
      at = [](const kiln::TensorData& t, int64_t i) { return t.as_double(i); };
    }
    int64_t bad = 0, first = -1;
    double max_err = 0;
    for (int64_t i = 0; i < count; ++i) {
      const double g = at(got, i), w = at(want, i);
      bool ok;
      if (std::isnan(w) || std::isnan(g)) ok = std::isnan(w) && std::isnan(g);
      else if (std::isinf(w) || std::isinf(g)) ok = g == w;
      else {
        const double err = std::fabs(g - w);
        ok = err <= atol + rtol * std::fabs(w);
        if (!ok) max_err = std::max(max_err, err);
      }
      if (!ok && bad++ == 0) first = i;
    }
    if (!bad) return "";
    return std::to_string(bad) + "/" + std::to_string(count) + " values differ (rtol " + fmt(rtol) + ", atol " +
           fmt(atol) + "); first at " + std::to_string(first) + ": got " + fmt(at(got, first)) + ", expected " +
           fmt(at(want, first)) + (max_err > 0 ? "; max abs error " + fmt(max_err) : "");
  }
  // Integers and bools: exact bytes.
  const size_t es = kiln::dtype_size(dt);
  const auto* g = static_cast<const unsigned char*>(got.raw());
  const auto* w = static_cast<const unsigned char*>(want.raw());
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < n; ++i)
    if (std::memcmp(g + i * es, w + i * es, es) != 0 && bad++ == 0) first = i;
  if (!bad) return "";
  auto show = [&](const kiln::TensorData& t) {
    if (dt == DType::UInt64) return std::to_string(t.data<uint64_t>()[first]);
    if (dt == DType::Bool) return std::to_string(static_cast<int>(t.data<uint8_t>()[first]));
    return std::to_string(t.as_int64(first));
  };
  return std::to_string(bad) + "/" + std::to_string(n) + " values differ (exact); first at " + std::to_string(first) +
         ": got " + show(got) + ", expected " + show(want);
}

// ------------------------------------------------------------------------------------------ one test
Outcome from_exception(const std::string& stage, const std::exception& e) {
  const std::string msg = one_line(e.what());
  const bool is_kiln = dynamic_cast<const kiln::Error*>(&e) != nullptr;
  const std::string l = lower(msg);
  if (dynamic_cast<const Unrepresentable*>(&e)) return {Status::Unsupported, stage + ": " + msg};
  // The planner's "N layers have no <device> kernel ...:", and a run's "no <device> kernel supports op ..."
  // (a kernel chosen per run by input values or shapes), are refusals too (only devices without a reference
  // fallback, such as cuda, can say them).
  if (is_kiln && (l.find("not supported") != std::string::npos || l.find("unsupported") != std::string::npos ||
                  l.find(" layer has no ") != std::string::npos || l.find(" layers have no ") != std::string::npos ||
                  l.find("no " + g_device + " kernel supports") != std::string::npos))
    return {Status::Unsupported, "refused at " + stage + ": " + msg};
  return {Status::Failed, stage + ": " + msg + (is_kiln ? "" : std::string(" [") + typeid(e).name() + "]")};
}

std::map<std::string, kiln::DType> declared_types(const std::vector<ValueDecl>& vs) {
  std::map<std::string, kiln::DType> m;
  for (const auto& v : vs) m[v.name] = static_cast<kiln::DType>(v.elem_type);
  return m;
}

Outcome run_test(const TestCase& tc) {
  std::string stage = "import";
  try {
    auto graph = kiln::import_onnx((tc.dir / "model.onnx").string());

    std::vector<fs::path> sets;
    for (const auto& e : fs::directory_iterator(tc.dir))
      if (e.is_directory() && e.path().filename().string().starts_with("test_data_set_")) sets.push_back(e.path());
    std::sort(sets.begin(), sets.end());
    if (sets.empty()) return {Status::Failed, "no test_data_set_* directory"};

    std::unique_ptr<kiln::Engine> engine;
    std::map<std::string, std::vector<int64_t>> built_shapes;
    for (const fs::path& set : sets) {
      const std::string where = set.filename().string() + ": ";
      stage = where + "reading data";
      std::vector<fs::path> in_files = numbered(set, "input"), out_files = numbered(set, "output");
      if (in_files.size() > tc.inputs.size())
        return {Status::Failed, where + std::to_string(in_files.size()) + " input files for " +
                                    std::to_string(tc.inputs.size()) + " graph inputs"};
      if (out_files.size() > tc.outputs.size())
        return {Status::Failed, where + std::to_string(out_files.size()) + " output files for " +
                                    std::to_string(tc.outputs.size()) + " graph outputs"};
      // Inputs: by graph input order; a .pb's own name wins when it names a graph input.
      std::vector<std::pair<std::string, kiln::TensorData>> feeds;
      for (size_t k = 0; k < in_files.size(); ++k) {
        std::string name = tc.inputs[k].name;
        int declared = tc.inputs[k].elem_type;
        NamedTensor nt = load_pb(in_files[k], declared, tc.inputs[k].kind);
        for (const auto& d : tc.inputs)
          if (!nt.name.empty() && d.name == nt.name && nt.name != name) {
            name = d.name;
            nt = load_pb(in_files[k], d.elem_type, d.kind);
          }
        feeds.emplace_back(name, std::move(nt.value));
      }
      std::vector<std::pair<std::string, kiln::TensorData>> expected;
      for (size_t k = 0; k < out_files.size(); ++k) {
        std::string name = tc.outputs[k].name;
        NamedTensor nt = load_pb(out_files[k], tc.outputs[k].elem_type, tc.outputs[k].kind);
        for (const auto& d : tc.outputs)
          if (!nt.name.empty() && d.name == nt.name && nt.name != name) {
            name = d.name;
            nt = load_pb(out_files[k], d.elem_type, d.kind);
          }
        expected.emplace_back(name, std::move(nt.value));
      }

      // Fix the shapes of inputs the model leaves symbolic or unknown. Where the data contradicts a
      // declared shape (ONNX 1.12's castlike tests declare 'like' 3x4 but store one element), the data
      // wins, as in ONNX's own reference backends, which do not enforce declared input shapes.
      std::map<std::string, std::vector<int64_t>> shapes;
      for (kiln::Tensor* t : graph->inputs) {
        if (t->is_constant()) continue;
        for (const auto& [name, value] : feeds) {
          if (name != t->name) continue;
          bool conflict = t->shape && t->shape->size() != value.dims().size();
          for (size_t d = 0; !conflict && t->shape && d < t->shape->size(); ++d)
            conflict = (*t->shape)[d].is_static() && (*t->shape)[d].value != value.dims()[d];
          if (conflict) t->shape.reset();
          if (!t->has_static_shape()) shapes[name] = value.dims();
        }
      }
      if (!engine || shapes != built_shapes) {
        stage = where + "build";
        kiln::BuildOptions opts;
        opts.device = g_device;
        opts.tf32 = false;  // ONNX's tolerances are fp32's: no TF32 convolutions on the GPU
        opts.threads = 1;
        opts.input_shapes = shapes;
        engine = kiln::Engine::build(*graph, opts);
        built_shapes = shapes;
      }
      stage = where + "bind";
      auto ctx = engine->create_context();
      for (const auto& [name, value] : feeds) ctx->set_input(name, value);
      stage = where + "run";
      ctx->run();
      stage = where + "compare";
      for (const auto& [name, want] : expected) {
        const kiln::TensorData& got = ctx->output(name);
        std::string why = compare(got, want);
        if (!why.empty()) return {Status::Failed, where + "output '" + name + "': " + why};
      }
    }
    return {Status::Passed, ""};
  } catch (const std::exception& e) {
    return from_exception(stage, e);
  } catch (...) {
    return {Status::Failed, stage + ": unknown exception"};
  }
}

// ------------------------------------------------------------------------------------------- children
struct Child {
  pid_t pid = -1;
  int fd = -1;
  size_t index = 0;
  std::string buf;
  std::chrono::steady_clock::time_point start;
  bool killed = false;
};

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t w = ::write(fd, s.data() + off, s.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    off += static_cast<size_t>(w);
  }
}

Child spawn(const TestCase& tc, size_t index) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::close(fds[0]);
    Outcome o = run_test(tc);
    const char c = o.status == Status::Passed ? 'P' : o.status == Status::Unsupported ? 'U' : 'F';
    write_all(fds[1], std::string(1, c) + o.reason);
    ::close(fds[1]);
    ::_exit(0);
  }
  ::close(fds[1]);
  Child ch;
  ch.pid = pid;
  ch.fd = fds[0];
  ch.index = index;
  ch.start = std::chrono::steady_clock::now();
  return ch;
}

Outcome finish(Child& ch, double timeout_s) {
  int st = 0;
  while (::waitpid(ch.pid, &st, 0) < 0 && errno == EINTR) {
  }
  ::close(ch.fd);
  if (ch.killed)
    return {Status::Unsupported, "too slow for the reference (over " + fmt(timeout_s) + " s; killed)"};
  if (WIFSIGNALED(st))
    return {Status::Failed, std::string("crashed: signal ") + std::to_string(WTERMSIG(st)) + " (" +
                                strsignal(WTERMSIG(st)) + ")"};
  if (ch.buf.empty())
    return {Status::Failed, "the test process exited with status " + std::to_string(WEXITSTATUS(st)) +
                                " without a result"};
  Outcome o;
  o.status = ch.buf[0] == 'P' ? Status::Passed : ch.buf[0] == 'U' ? Status::Unsupported : Status::Failed;
  o.reason = ch.buf.substr(1);
  return o;
}

// -------------------------------------------------------------------------------------------- report
std::string json_escape(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          o += b;
        } else {
          o += static_cast<char>(c);
        }
    }
  }
  return o;
}

const char* status_name(Status s) {
  return s == Status::Passed ? "passed" : s == Status::Failed ? "failed" : "unsupported";
}


int list_claimed() {
  std::vector<OpKey> keys;
  for (const kiln::ops::OpSchema* s : kiln::ops::all_ops()) {
    OpKey k{canonical_domain(s->domain), s->op};
    if (claimed(k)) keys.push_back(k);
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  for (const OpKey& k : keys) {
    std::string kernels;
    for (const auto* f : kiln::backend::kernels_for(g_device, k.domain, k.op))
      kernels += (kernels.empty() ? "" : ", ") + f->name;
    std::printf("%-28s %s\n", k.label().c_str(), kernels.c_str());
  }
  std::printf("%zu ops claimed on %s\n", keys.size(), g_device.c_str());
  return 0;
}

// "" when engines can be built and run for `device` here; otherwise why not. A device that is not the host's
// is probed in a forked child: CUDA initialized in this process would be unusable in every test child forked
// after it.
std::string device_unavailable_reason(const std::string& device) {
  const kiln::DeviceBackend* b = kiln::find_device_backend(device);
  if (!b) return "kiln was built without a '" + device + "' device backend";
  if (b->host || !b->unavailable_reason) return "";
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) return std::string("fork: ") + std::strerror(errno);
  if (pid == 0) {
    ::close(fds[0]);
    std::string why;
    try {
      why = b->unavailable_reason();
    } catch (const std::exception& e) {
      why = e.what();
    }
    write_all(fds[1], "R" + why);
    ::close(fds[1]);
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string reply;
  char buf[512];
  for (;;) {
    const ssize_t r = ::read(fds[0], buf, sizeof buf);
    if (r > 0) reply.append(buf, static_cast<size_t>(r));
    else if (r == 0 || errno != EINTR) break;
  }
  ::close(fds[0]);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (reply.empty()) return "the device probe exited without an answer";
  return reply.substr(1);
}

void usage() {
  std::fprintf(stderr,
               "usage: kiln_conformance DIR [--device cpu|cuda] [--filter SUBSTR] [--verbose] [--json FILE] [--jobs N]\n"
               "                        [--timeout S]\n"
               "       kiln_conformance --list-claimed [--device cpu|cuda]\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir, filter, json_path;
  bool verbose = false, list = false;
  int jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  double timeout_s = 0;  // 0: the device's default
  for (int k = 1; k < argc; ++k) {
    std::string a = argv[k];
    if (a.rfind("--device=", 0) == 0) {
      g_device = a.substr(9);
      continue;
    }
    auto value = [&]() -> std::string {
      if (k + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++k];
    };
    if (a == "--filter") filter = value();
    else if (a == "--device") g_device = value();
    else if (a == "--verbose" || a == "-v") verbose = true;
    else if (a == "--json") json_path = value();
    else if (a == "--list-claimed") list = true;
    else if (a == "--jobs" || a == "-j") jobs = std::max(1, std::atoi(value().c_str()));
    else if (a == "--timeout") timeout_s = std::atof(value().c_str());
    else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "kiln_conformance: unknown option '%s'\n", a.c_str());
      usage();
      return 2;
    } else if (dir.empty()) dir = a;
    else {
      usage();
      return 2;
    }
  }
  if (list) return list_claimed();
  // A GPU test child creates a CUDA context and loads cuDNN before its first layer runs.
  if (timeout_s <= 0) timeout_s = g_device == "cpu" ? 10.0 : 60.0;
  if (g_device != "cpu") {
    const std::string why = device_unavailable_reason(g_device);
    if (!why.empty()) {
      std::printf("kiln_conformance --device=%s: skipped: %s\n", g_device.c_str(), why.c_str());
      std::printf("0 passed, 0 failed, 0 skipped\n");
      return 0;
    }
  }
  if (dir.empty()) {
    usage();
    return 2;
  }
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    std::printf("kiln_conformance: test data directory '%s' not found (install libonnx-testdata); nothing to run\n",
                dir.c_str());
    std::printf("0 passed, 0 failed, 0 skipped\n");
    return 0;
  }

  std::vector<TestCase> tests;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_directory() || !fs::exists(e.path() / "model.onnx")) continue;
    std::string name = e.path().filename().string();
    if (!filter.empty() && name.find(filter) == std::string::npos) continue;
    TestCase tc;
    tc.name = name;
    tc.dir = e.path();
    tests.push_back(std::move(tc));
  }
  std::sort(tests.begin(), tests.end(), [](const TestCase& a, const TestCase& b) { return a.name < b.name; });
  for (TestCase& tc : tests) scan_model(tc);

  const auto t0 = std::chrono::steady_clock::now();
  size_t done = 0, npass = 0, nfail = 0, nunsup = 0;
  auto record = [&](TestCase& tc, Outcome o) {
    tc.outcome = std::move(o);
    ++done;
    (tc.outcome.status == Status::Passed ? npass : tc.outcome.status == Status::Failed ? nfail : nunsup)++;
    if (done % 100 == 0 || done == tests.size())
      std::printf("[%4zu/%zu] %zu passed, %zu failed, %zu unsupported (%.1f s)\n", done, tests.size(), npass, nfail,
                  nunsup, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    std::fflush(stdout);
  };

  std::vector<Child> running;
  size_t next = 0;
  while (next < tests.size() || !running.empty()) {
    while (next < tests.size() && static_cast<int>(running.size()) < jobs) {
      TestCase& tc = tests[next];
      if (tc.decided) {
        record(tc, tc.outcome);
      } else {
        running.push_back(spawn(tc, next));
      }
      ++next;
    }
    if (running.empty()) continue;
    std::vector<pollfd> pfds;
    for (const Child& ch : running) pfds.push_back({ch.fd, POLLIN, 0});
    ::poll(pfds.data(), pfds.size(), 50);
    const auto now = std::chrono::steady_clock::now();
    for (size_t k = 0; k < running.size();) {
      Child& ch = running[k];
      bool eof = false;
      if (pfds[k].revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[4096];
        ssize_t r = ::read(ch.fd, buf, sizeof buf);
        if (r > 0) ch.buf.append(buf, static_cast<size_t>(r));
        else if (r == 0 || errno != EINTR) eof = true;
      }
      if (!eof && !ch.killed && std::chrono::duration<double>(now - ch.start).count() > timeout_s) {
        ::kill(ch.pid, SIGKILL);
        ch.killed = true;
      }
      if (eof) {
        TestCase& tc = tests[ch.index];
        tc.seconds = std::chrono::duration<double>(now - ch.start).count();
        record(tc, finish(ch, timeout_s));
        running.erase(running.begin() + static_cast<std::ptrdiff_t>(k));
        pfds.erase(pfds.begin() + static_cast<std::ptrdiff_t>(k));
      } else {
        ++k;
      }
    }
  }
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Per-op table: a test counts under every op it uses (Constant only when it is the sole op), so rows can
  // add up to more than the totals.
  struct Row {
    size_t passed = 0, failed = 0, unsupported = 0;
  };
  std::map<OpKey, Row> rows;
  for (const TestCase& tc : tests) {
    std::vector<OpKey> ops;
    for (const OpKey& k : tc.ops)
      if (!(k.domain.empty() && k.op == "Constant") || tc.ops.size() == 1) ops.push_back(k);
    if (ops.empty()) ops.push_back({"", "(no op)"});
    for (const OpKey& k : ops) {
      Row& r = rows[k];
      (tc.outcome.status == Status::Passed ? r.passed : tc.outcome.status == Status::Failed ? r.failed
                                                                                           : r.unsupported)++;
    }
  }
  std::printf("\n%-34s %-8s %7s %7s %12s\n", "op", g_device.c_str(), "passed", "failed", "unsupported");
  for (const auto& [k, r] : rows)
    std::printf("%-34s %-8s %7zu %7zu %12zu\n", k.label().c_str(), !claimed(k) ? "-" : has_device_kernel(k) ? "claimed" : "no kernel", r.passed, r.failed,
                r.unsupported);

  // Failures always (one line each, reasons shortened unless --verbose); refusals of claimed ops always
  // (they are the list of what kiln knowingly leaves out); other unsupported reasons with --verbose.
  auto shorten = [&](const std::string& s) { return verbose || s.size() <= 240 ? s : s.substr(0, 237) + "..."; };
  bool header = false;
  for (const TestCase& tc : tests)
    if (tc.outcome.status == Status::Failed) {
      if (!header) std::printf("\nFailed tests:\n");
      header = true;
      std::printf("  FAIL %s: %s\n", tc.name.c_str(), shorten(tc.outcome.reason).c_str());
    }
  header = false;
  for (const TestCase& tc : tests)
    if (tc.outcome.status == Status::Unsupported && !tc.decided) {
      if (!header) std::printf("\nClaimed ops refused or too slow (counted as unsupported):\n");
      header = true;
      std::printf("  UNSUPPORTED %s: %s\n", tc.name.c_str(), shorten(tc.outcome.reason).c_str());
    }
  if (verbose) {
    header = false;
    for (const TestCase& tc : tests)
      if (tc.outcome.status == Status::Unsupported && tc.decided) {
        if (!header) std::printf("\nUnsupported tests:\n");
        header = true;
        std::printf("  UNSUPPORTED %s: %s\n", tc.name.c_str(), tc.outcome.reason.c_str());
      }
  } else {
    // Every other skip by its reason (an unclaimed op, a sequence-typed input, ...), with a count and the first
    // tests, so the last lines account for every skipped test without --verbose.
    std::map<std::string, std::vector<std::string>> by_reason;
    for (const TestCase& tc : tests)
      if (tc.outcome.status == Status::Unsupported && tc.decided) by_reason[tc.outcome.reason].push_back(tc.name);
    if (!by_reason.empty()) std::printf("\nSkipped, by reason (--verbose lists every test):\n");
    for (const auto& [reason, names] : by_reason) {
      std::string first;
      for (size_t k = 0; k < names.size() && k < 3; ++k) first += (k ? ", " : "") + names[k];
      std::printf("  %3zu  %s  [%s%s]\n", names.size(), shorten(reason).c_str(), first.c_str(),
                  names.size() > 3 ? ", ..." : "");
    }
  }

  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << "{\n  \"dir\": \"" << json_escape(dir) << "\",\n  \"device\": \"" << json_escape(g_device)
        << "\",\n  \"passed\": " << npass << ",\n  \"failed\": " << nfail
        << ",\n  \"skipped\": " << nunsup << ",\n  \"seconds\": " << fmt(total_s) << ",\n  \"tests\": [\n";
    for (size_t k = 0; k < tests.size(); ++k) {
      const TestCase& tc = tests[k];
      out << "    {\"name\": \"" << json_escape(tc.name) << "\", \"ops\": [";
      for (size_t j = 0; j < tc.ops.size(); ++j)
        out << (j ? ", " : "") << "\"" << json_escape(tc.ops[j].label()) << "\"";
      out << "], \"status\": \"" << status_name(tc.outcome.status) << "\", \"reason\": \""
          << json_escape(tc.outcome.reason) << "\", \"seconds\": " << fmt(tc.seconds) << "}"
          << (k + 1 < tests.size() ? "," : "") << "\n";
    }
    out << "  ]\n}\n";
    if (!out) std::fprintf(stderr, "kiln_conformance: cannot write %s\n", json_path.c_str());
  }

  std::printf("\n%zu tests in %.1f s (%d jobs, device %s)\n", tests.size(), total_s, jobs, g_device.c_str());
  std::printf("%zu passed, %zu failed, %zu skipped\n", npass, nfail, nunsup);
  return nfail ? 1 : 0;
}
