// cpu.movement kernels (Transpose, DepthToSpace, SpaceToDepth, Concat, Pad, Resize/Upsample) against the reference
// kernels: moved bits must be identical, and every output element written (outputs start as NaN).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "device/kernel.h"
#include "kiln/passes.h"
#include "ops/op.h"

namespace kiln {
namespace {

TensorData random_tensor(std::vector<int64_t> dims, uint32_t seed) {
  TensorData t(DType::Float, std::move(dims));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.1f, 1.0f);
  std::bernoulli_distribution sign(0.5);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = sign(rng) ? u(rng) : -u(rng);
  return t;
}

// One node of `op`: variable inputs get random data, constant inputs their given values.
struct Case {
  Graph g;
  Node* node = nullptr;
  std::vector<Tensor*> ins;
  std::vector<TensorData> data;  // per input: the variable's random values (unused for constants)
  explicit Case(int64_t opset) { g.set_opset("", opset); }
  Case& var(std::vector<int64_t> dims) {
    const uint32_t seed = static_cast<uint32_t>(ins.size() * 7 + 1);
    ins.push_back(g.add_variable("x" + std::to_string(ins.size()), DType::Float, make_shape(dims)));
    data.push_back(random_tensor(dims, seed));
    g.inputs.push_back(ins.back());
    return *this;
  }
  Case& cst(TensorData v) {
    ins.push_back(g.add_constant("c" + std::to_string(ins.size()), v));
    data.push_back(v);
    return *this;
  }
  Case& none() {
    ins.push_back(nullptr);
    data.emplace_back();
    return *this;
  }
  Node* make(const std::string& op) {
    node = g.add_node(op, ins, {g.add_variable("y")}, "n");
    g.outputs = {node->output(0)};
    return node;
  }
};

// Runs cpu.movement (with `threads`) and the reference; expects bit-identical outputs.
void check(Case& c, int threads = 2) {
  infer_shapes(c.g);
  const Node& n = *c.node;
  backend::LayerDesc desc;
  desc.node = &n;
  desc.opset = c.g.opset(n.domain);
  desc.threads = threads;
  for (Tensor* t : n.inputs()) {
    backend::LayerDesc::Operand o;
    if (t) {
      o.present = true;
      o.dtype = t->dtype;
      o.dims = static_dims(*t->shape);
      if (auto* k = dynamic_cast<Constant*>(t)) o.constant = &k->values();
    }
    desc.inputs.push_back(o);
  }
  const std::vector<int64_t> ydims = static_dims(*n.output(0)->shape);
  desc.outputs.push_back({DType::Float, ydims, nullptr, true});

  const backend::KernelFactory* f = backend::find_kernel("cpu", "", n.op, "cpu.movement");
  ASSERT_TRUE(f) << n.op;
  ASSERT_TRUE(f->supports(desc)) << n.op << " not supported";
  auto k = f->create(desc);
  std::vector<backend::TensorView> views;
  for (size_t j = 0; j < c.ins.size(); ++j) {
    if (!c.ins[j]) {
      views.emplace_back();
      continue;
    }
    views.push_back({c.data[j].dtype(), c.data[j].dims(), const_cast<void*>(c.data[j].raw())});
  }
  TensorData y(DType::Float, ydims);
  std::fill(y.data<float>(), y.data<float>() + y.numel(), std::numeric_limits<float>::quiet_NaN());
  k->run(views, {{DType::Float, ydims, y.raw()}});

  ops::KernelContext ctx(n, desc.opset);
  for (size_t j = 0; j < c.ins.size(); ++j) ctx.in.push_back(c.ins[j] ? &c.data[j] : nullptr);
  ctx.out.resize(1);
  ops::run_reference(*ops::find_op(n.domain, n.op), ctx);
  ASSERT_EQ(ctx.out[0].dims(), ydims);
  EXPECT_EQ(std::memcmp(y.raw(), ctx.out[0].raw(), y.nbytes()), 0) << n.op << " differs from the reference";
}

void transpose(std::vector<int64_t> dims, std::vector<int64_t> perm, int threads = 2) {
  Case c(13);
  c.var(dims);
  Node* n = c.make("Transpose");
  if (!perm.empty()) n->attrs.set("perm", perm);
  SCOPED_TRACE(::testing::PrintToString(dims) + " perm " + ::testing::PrintToString(perm));
  check(c, threads);
}

TEST(CpuMovement, TransposePackNetSpaceToDepth) {
  transpose({1, 4, 6, 2, 10, 2}, {0, 1, 3, 5, 2, 4});
  transpose({1, 64, 96, 2, 160, 2}, {0, 1, 3, 5, 2, 4});  // large: threaded
  transpose({2, 3, 5, 2, 7, 2}, {0, 3, 5, 1, 2, 4});      // the packnet-sfm order
  transpose({1, 64, 96, 2, 160, 2}, {0, 1, 3, 5, 2, 4}, 1);
}

TEST(CpuMovement, TransposeGeneral) {
  transpose({7, 9}, {1, 0});
  transpose({300, 1000}, {1, 0});  // one big tile, split over threads
  transpose({2, 3, 4, 5}, {});     // reversed
  transpose({2, 3, 4, 5}, {0, 2, 3, 1});
  transpose({2, 3, 4, 5}, {0, 1, 2, 3});
  transpose({3, 1, 4, 1, 5}, {4, 1, 2, 0, 3});
  transpose({1, 1, 1}, {2, 0, 1});
  transpose({5, 6, 7}, {1, 0, 2});  // contiguous inner runs
  transpose({2, 3, 4, 5, 6, 3}, {5, 3, 1, 0, 4, 2});
  transpose({8, 64, 2, 300}, {0, 3, 1, 2});
  transpose({2, 0, 3}, {2, 0, 1});  // empty
}

void d2s(std::vector<int64_t> dims, int64_t b, const std::string& mode, int threads = 2) {
  Case c(13);
  c.var(dims);
  Node* n = c.make("DepthToSpace");
  n->attrs.set("blocksize", b);
  n->attrs.set("mode", mode);
  SCOPED_TRACE(::testing::PrintToString(dims) + " b=" + std::to_string(b) + " " + mode);
  check(c, threads);
}

TEST(CpuMovement, DepthToSpace) {
  for (const char* mode : {"DCR", "CRD"}) {
    d2s({1, 8, 3, 5}, 2, mode);
    d2s({2, 18, 4, 3}, 3, mode);
    d2s({1, 4, 1, 1}, 2, mode);
    d2s({1, 256, 48, 80}, 2, mode);  // PackNet-sized: threaded
    d2s({1, 256, 48, 80}, 2, mode, 1);
    d2s({1, 64, 17, 9}, 4, mode);
  }
}

TEST(CpuMovement, SpaceToDepth) {
  for (auto [dims, b] : std::vector<std::pair<std::vector<int64_t>, int64_t>>{
           {{1, 3, 4, 6}, 2}, {{2, 5, 9, 6}, 3}, {{1, 64, 96, 160}, 2}, {{1, 1, 2, 2}, 2}}) {
    Case c(13);
    c.var(dims);
    c.make("SpaceToDepth")->attrs.set("blocksize", b);
    SCOPED_TRACE(::testing::PrintToString(dims));
    check(c);
  }
}

void concat(std::vector<std::vector<int64_t>> shapes, int64_t axis, int threads = 2) {
  Case c(13);
  for (auto& s : shapes) c.var(s);
  c.make("Concat")->attrs.set("axis", axis);
  SCOPED_TRACE(::testing::PrintToString(shapes) + " axis " + std::to_string(axis));
  check(c, threads);
}

TEST(CpuMovement, Concat) {
  concat({{1, 3, 4, 5}, {1, 2, 4, 5}}, 1);
  concat({{2, 3, 4, 5}, {2, 3, 1, 5}, {2, 3, 2, 5}}, 2);
  concat({{2, 3, 4, 5}, {2, 3, 4, 1}}, -1);
  concat({{2, 3}, {4, 3}}, 0);
  concat({{3, 7}}, 1);
  concat({{1, 64, 96, 160}, {1, 32, 96, 160}, {1, 1, 96, 160}}, 1);  // PackNet-sized, threaded
  concat({{4, 64, 30, 40}, {4, 64, 30, 40}}, 3);
  concat({{1, 64, 96, 160}, {1, 32, 96, 160}}, 1, 1);
  concat({{2, 0, 3}, {2, 4, 3}}, 1);  // an empty input
}

TEST(CpuMovement, ConcatWithConstantInput) {
  Case c(13);
  c.var({2, 3, 4});
  c.cst(random_tensor({2, 1, 4}, 99));
  c.make("Concat")->attrs.set("axis", int64_t{1});
  check(c);
}

void pad(std::vector<int64_t> dims, std::vector<int64_t> pads, float value, int64_t opset = 13, int threads = 2) {
  Case c(opset);
  c.var(dims);
  if (opset >= 11) {
    c.cst(TensorData::vector_int64(pads));
    c.cst(TensorData::scalar_float(value));
  }
  Node* n = c.make("Pad");
  if (opset < 11) {
    n->attrs.set("pads", pads);
    n->attrs.set("value", value);
  }
  SCOPED_TRACE(::testing::PrintToString(dims) + " pads " + ::testing::PrintToString(pads));
  check(c, threads);
}

TEST(CpuMovement, PadConstant) {
  pad({1, 3, 5, 7}, {0, 0, 1, 2, 0, 0, 3, 1}, 0.5f);
  pad({2, 3, 4}, {1, 0, 2, 0, 3, 1}, -1.25f);
  pad({2, 3, 4, 5}, {0, 0, -1, 1, 0, 1, 1, -2}, 0.f);  // negative pads crop
  pad({9}, {2, 3}, 7.f);
  pad({1, 64, 96, 160}, {0, 0, 1, 1, 0, 0, 1, 1}, 0.f);  // threaded
  pad({1, 3, 5, 7}, {0, 0, 1, 2, 0, 0, 3, 1}, 2.f, 2);  // attribute form
}

TEST(CpuMovement, PadAbsentValueAndAxes) {
  Case c(18);
  c.var({2, 5, 6});
  c.cst(TensorData::vector_int64({1, 2, 0, 3})).none().cst(TensorData::vector_int64({2, 0}));
  c.make("Pad");
  check(c);
}

void resize11(std::vector<int64_t> dims, std::vector<float> scales, int threads = 2) {
  Case c(13);
  c.var(dims);
  c.cst(TensorData::from_vector<float>(DType::Float, {0}, {}));
  c.cst(TensorData::from_vector<float>(DType::Float, {static_cast<int64_t>(scales.size())}, scales));
  Node* n = c.make("Resize");
  n->attrs.set("mode", std::string("nearest"));
  n->attrs.set("coordinate_transformation_mode", std::string("asymmetric"));
  n->attrs.set("nearest_mode", std::string("floor"));
  SCOPED_TRACE(::testing::PrintToString(dims) + " scales " + ::testing::PrintToString(scales));
  check(c, threads);
}

TEST(CpuMovement, ResizeNearestIntegerScales) {
  resize11({1, 3, 5, 7}, {1, 1, 2, 2});
  resize11({2, 3, 4, 5}, {1, 2, 3, 1});
  resize11({1, 2, 3, 4}, {1, 1, 1, 4});
  resize11({1, 64, 48, 80}, {1, 1, 2, 2});  // PackNet's x2, threaded
  resize11({1, 64, 48, 80}, {1, 1, 2, 2}, 1);
}

TEST(CpuMovement, ResizeFromSizesAndUpsample) {
  {
    Case c(13);
    c.var({1, 2, 3, 4});
    c.none().none().cst(TensorData::vector_int64({1, 2, 9, 8}));
    Node* n = c.make("Resize");
    n->attrs.set("coordinate_transformation_mode", std::string("asymmetric"));
    n->attrs.set("nearest_mode", std::string("floor"));
    check(c);
  }
  {
    Case c(9);
    c.var({1, 2, 3, 4});
    c.cst(TensorData::from_vector<float>(DType::Float, {4}, {1.f, 1.f, 2.f, 3.f}));
    c.make("Upsample");
    check(c);
  }
  {
    Case c(7);
    c.var({1, 2, 3, 4});
    c.make("Upsample")->attrs.set("scales", std::vector<float>{1.f, 1.f, 2.f, 2.f});
    check(c);
  }
}

TEST(CpuMovement, UnsupportedCasesFallBack) {
  // Half-pixel nearest, fractional scales: not this kernel's; the reference still runs them.
  Case c(13);
  c.var({1, 1, 4, 4});
  c.cst(TensorData::from_vector<float>(DType::Float, {0}, {}));
  c.cst(TensorData::from_vector<float>(DType::Float, {4}, {1.f, 1.f, 2.f, 2.f}));
  c.make("Resize");
  infer_shapes(c.g);
  backend::LayerDesc d;
  d.node = c.node;
  d.opset = 13;
  for (Tensor* t : c.node->inputs()) {
    backend::LayerDesc::Operand o{t->dtype, static_dims(*t->shape), nullptr, true};
    if (auto* k = dynamic_cast<Constant*>(t)) o.constant = &k->values();
    d.inputs.push_back(o);
  }
  d.outputs.push_back({DType::Float, static_dims(*c.node->output(0)->shape), nullptr, true});
  const auto* f = backend::find_kernel("cpu", "", "Resize", "cpu.movement");
  ASSERT_TRUE(f);
  EXPECT_FALSE(f->supports(d));
  c.node->attrs.set("coordinate_transformation_mode", std::string("asymmetric"));
  EXPECT_FALSE(f->supports(d));  // nearest_mode round_prefer_floor
  c.node->attrs.set("nearest_mode", std::string("floor"));
  EXPECT_TRUE(f->supports(d));
  c.node->attrs.set("mode", std::string("linear"));
  EXPECT_FALSE(f->supports(d));
}

}  // namespace
}  // namespace kiln
