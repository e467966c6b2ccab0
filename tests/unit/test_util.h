// Helpers shared by the unit tests: random non-zero data, tensor builders, comparisons, one-node harness.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kiln/graph.h"
#include "ops/op.h"

namespace kiln::test {

inline std::mt19937& rng() {
  static std::mt19937 g(1234);
  return g;
}

// Random non-zero floats in ±[lo, hi]: a kernel that skips or zeroes something cannot match by accident.
inline std::vector<float> randf(int64_t n, float lo = 0.1f, float hi = 3.0f, bool allow_negative = true) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng()) * (allow_negative && (rng()() & 1) ? -1.0f : 1.0f);
  return v;
}

inline TensorData F(std::vector<int64_t> dims, const std::vector<float>& v) {
  return TensorData::from_vector(DType::Float, std::move(dims), v);
}
inline TensorData I64(std::vector<int64_t> dims, const std::vector<int64_t>& v) {
  return TensorData::from_vector(DType::Int64, std::move(dims), v);
}
inline TensorData I64(const std::vector<int64_t>& v) { return TensorData::vector_int64(v); }

inline std::vector<float> floats(const TensorData& t) {
  std::vector<float> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(static_cast<float>(t.as_double(i)));
  return v;
}

inline void expect_near(const std::vector<float>& got, const std::vector<float>& want, float tol = 1e-5f) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol * (1 + std::fabs(want[i]))) << "at " << i;
}

// Relative L2 error; a NaN (a poisoned output that was never written) propagates and fails any bound.
inline double rel_l2(const float* got, const float* want, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(got[i]) - double(want[i]);
    num += d * d;
    den += double(want[i]) * double(want[i]);
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// One node in its own graph. Inputs with a value become Constants; an empty TensorData is an omitted
// input. run() executes the reference kernel and checks that inference agrees with what it produced.
struct OneNode {
  Graph g;
  Node* node;
  int64_t opset;
  OneNode(const std::string& op, const std::vector<TensorData>& inputs, size_t outputs = 1, int64_t opset = 18)
      : opset(opset) {
    std::vector<Tensor*> ins, outs;
    for (size_t k = 0; k < inputs.size(); ++k)
      ins.push_back(inputs[k].empty_type() ? nullptr : g.add_constant("in" + std::to_string(k), inputs[k]));
    for (size_t k = 0; k < outputs; ++k) outs.push_back(g.add_variable("out" + std::to_string(k)));
    node = g.add_node(op, ins, outs, "the_" + op);
  }
  OneNode& attr(const std::string& name, AttributeValue v) {
    node->attrs.set(name, std::move(v));
    return *this;
  }
  std::vector<TensorData> run() {
    const ops::OpSchema* s = ops::find_op(node->domain, node->op);
    EXPECT_NE(s, nullptr) << node->op;
    EXPECT_NE(s->reference, nullptr) << node->op;
    ops::KernelContext ctx(*node, opset);
    for (Tensor* t : node->inputs()) ctx.in.push_back(t ? &static_cast<Constant*>(t)->values() : nullptr);
    ctx.out.resize(node->outputs().size());
    ops::run_reference(*s, ctx);
    auto inf = infer();
    for (size_t k = 0; k < ctx.out.size(); ++k) {
      EXPECT_EQ(inf.out[k].dtype, ctx.out[k].dtype()) << node->op << " output " << k;
      if (inf.out[k].shape)
        EXPECT_EQ(to_string(*inf.out[k].shape), to_string(make_shape(ctx.out[k].dims())))
            << node->op << " output " << k;
    }
    return ctx.out;
  }
  TensorData run1() { return run().at(0); }
  ops::InferContext infer() {
    ops::InferContext ctx(*node, opset);
    for (Tensor* t : node->inputs()) {
      ops::InputInfo info;
      if (t) {
        info.present = true;
        info.dtype = t->dtype;
        info.shape = t->shape;
        if (auto* c = dynamic_cast<Constant*>(t)) info.value = &c->values();
      }
      ctx.in.push_back(info);
    }
    ctx.out.resize(node->outputs().size());
    ops::infer_node(*ops::find_op(node->domain, node->op), ctx);
    return ctx;
  }
};

}  // namespace kiln::test
