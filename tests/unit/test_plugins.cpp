// Plugin registry, field validation, dynamic loading, ABI check, engine-file round trip.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "kiln/engine.h"
#include "kiln/passes.h"
#include "kiln/plugin.h"
#include "test_util.h"

namespace kiln {
namespace {

using namespace kiln::test;  // NOLINT: shared test helpers

const std::string kScaledTanhLib = std::string(KILN_BINARY_DIR) + "/libscaled_tanh_plugin.so";
const std::string kBadAbiLib = std::string(KILN_BINARY_DIR) + "/libkiln_bad_abi_plugin.so";

void load_scaled_tanh() {
  if (!PluginRegistry::global().has_name("ScaledTanh")) load_plugin_library(kScaledTanhLib);
}

// x → ScaledTanh(attributes) → y
std::unique_ptr<Graph> scaled_tanh_graph(const std::function<void(Node*)>& set_attrs) {
  auto g = std::make_unique<Graph>();
  g->source = "plugin_model.onnx";
  g->set_opset("", 13);
  auto* x = g->add_variable("x", DType::Float, Shape{2, 5});
  auto* y = g->add_variable("y");
  set_attrs(g->add_node("ScaledTanh", {x}, {y}, "st"));
  g->inputs = {x};
  g->outputs = {y};
  return g;
}

TEST(Plugins, BuiltInGroupNormIsRegistered) {
  const PluginCreator* c = PluginRegistry::global().find("GroupNormalizationPlugin");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->version(), "1");
  EXPECT_EQ(PluginRegistry::global().find("GroupNormalizationPlugin", "2"), nullptr);
  EXPECT_EQ(PluginRegistry::global().find("GroupNormalizationPlugin", "1", "other"), nullptr);
  std::vector<std::string> fields;
  for (const PluginField& f : c->fields()) fields.push_back(f.name);
  EXPECT_EQ(fields, (std::vector<std::string>{"eps", "num_groups"}));
}

TEST(Plugins, GroupNormStateRoundTrips) {
  const PluginCreator* c = PluginRegistry::global().find("GroupNormalizationPlugin");
  Attributes f;
  f.set("eps", 3e-4f);
  f.set("num_groups", int64_t{8});
  auto plugin = c->create(f);
  auto back = c->deserialize(plugin->serialize());
  EXPECT_EQ(back->serialize(), plugin->serialize());
  EXPECT_THROW(c->deserialize("garbage"), Error);
}

TEST(Plugins, LoadingALibraryAgainIsANoOpButAnotherWithTheSameCreatorsIsRefused) {
  load_plugin_library(kScaledTanhLib);
  const size_t before = PluginRegistry::global().creators().size();
  // The same library again, by its path or through a symlink (dlopen: the same handle): nothing happens.
  const auto dir = std::filesystem::temp_directory_path() / ("kiln_plugins_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::create_symlink(kScaledTanhLib, dir / "link.so");
  EXPECT_NO_THROW(load_plugin_library(kScaledTanhLib));
  EXPECT_NO_THROW(load_plugin_library((dir / "link.so").string()));
  EXPECT_EQ(PluginRegistry::global().creators().size(), before);
  // A different file registering the same creators is a conflict: a clear error, the registry unchanged.
  std::filesystem::copy_file(kScaledTanhLib, dir / "copy.so");
  const std::string msg = error_of([&] { load_plugin_library((dir / "copy.so").string()); });
  EXPECT_NE(msg.find("already registered"), std::string::npos) << msg;
  EXPECT_EQ(PluginRegistry::global().creators().size(), before);
  std::filesystem::remove_all(dir);
}

TEST(Plugins, LoadedPluginRunsAndRoundTripsThroughEngineFile) {
  load_scaled_tanh();
  auto g = scaled_tanh_graph([](Node* n) {
    n->attrs.set("alpha", 1.5f);
    n->attrs.set("beta", 0.75f);
  });
  auto engine = Engine::build(*g);
  ASSERT_EQ(engine->layers().size(), 1u);
  EXPECT_EQ(engine->layers()[0].kernel, "plugin");
  auto xv = randf(10);
  auto check = [&](Engine& e) {
    auto ctx = e.create_context();
    ctx->set_input("x", F({2, 5}, xv));
    ctx->run();
    std::vector<float> want;
    for (float v : xv) want.push_back(1.5f * std::tanh(0.75f * v));
    expect_near(floats(ctx->output("y")), want);
  };
  check(*engine);
  const std::string path = ::testing::TempDir() + "/plugin_" + std::to_string(::getpid()) + ".kiln";
  engine->save(path);
  {
    // The layer's plugin state is in the engine's metadata (JSON after the 40-byte header).
    std::ifstream f(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), {});
    uint64_t meta_len = 0;
    std::memcpy(&meta_len, bytes.data() + 16, 8);
    const std::string meta = bytes.substr(40, meta_len);
    auto plugin = PluginRegistry::global().find("ScaledTanh")->create([] {
      Attributes a;
      a.set("alpha", 1.5f);
      a.set("beta", 0.75f);
      return a;
    }());
    std::string hex;
    for (unsigned char ch : plugin->serialize()) {
      const char* d = "0123456789abcdef";
      hex += d[ch >> 4];
      hex += d[ch & 15];
    }
    EXPECT_NE(meta.find("\"state\":\"" + hex + "\""), std::string::npos) << meta;
  }
  auto loaded = Engine::load(path);
  EXPECT_EQ(loaded->layers()[0].kernel, "plugin");
  check(*loaded);
  std::remove(path.c_str());
}

TEST(Plugins, FieldsAreValidatedWithTheNodeNamed) {
  load_scaled_tanh();
  auto error = [](const std::function<void(Node*)>& attrs) {
    return error_of([&] { Engine::build(*scaled_tanh_graph(attrs)); });
  };
  std::string unknown = error([](Node* n) {
    n->attrs.set("alpha", 1.f);
    n->attrs.set("gamma", 2.f);
  });
  EXPECT_NE(unknown.find("'st'"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("no field 'gamma'"), std::string::npos) << unknown;
  std::string wrong_type = error([](Node* n) { n->attrs.set("alpha", int64_t{2}); });
  EXPECT_NE(wrong_type.find("must be float"), std::string::npos) << wrong_type;
  std::string missing = error([](Node* n) { n->attrs.set("beta", 2.f); });
  EXPECT_NE(missing.find("needs field 'alpha'"), std::string::npos) << missing;
  std::string version = error([](Node* n) {
    n->attrs.set("alpha", 1.f);
    n->attrs.set("plugin_version", std::string("7"));
  });
  EXPECT_NE(version.find("version '7'"), std::string::npos) << version;
}

TEST(Plugins, UnknownOpListsRegisteredPlugins) {
  Graph g;
  g.source = "m.onnx";
  g.set_opset("", 13);
  auto* x = g.add_variable("x", DType::Float, Shape{2});
  g.add_node("NobodyImplementsThis", {x}, {g.add_variable("y")}, "mystery");
  g.inputs = {x};
  g.outputs = {g.tensor("y")};
  std::string e = error_of([&] { Engine::build(g); });
  EXPECT_NE(e.find("mystery"), std::string::npos) << e;
  EXPECT_NE(e.find("GroupNormalizationPlugin"), std::string::npos) << e;
  EXPECT_NE(e.find("--plugins"), std::string::npos) << e;
}

TEST(Plugins, LibrariesThatAreNotKilnPluginsOrOtherAbiAreRefused) {
  std::string abi = error_of([] { load_plugin_library(kBadAbiLib); });
  EXPECT_NE(abi.find(kBadAbiLib), std::string::npos) << abi;
  EXPECT_NE(abi.find("ABI version"), std::string::npos) << abi;
  std::string missing = error_of([] { load_plugin_library("/nonexistent/libnothing.so"); });
  EXPECT_NE(missing.find("/nonexistent/libnothing.so"), std::string::npos) << missing;
  std::string foreign = error_of([] { load_plugin_library("libm.so.6"); });
  EXPECT_NE(foreign.find("not a kiln plugin library"), std::string::npos) << foreign;
}

}  // namespace
}  // namespace kiln
