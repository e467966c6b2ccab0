// A plugin library that claims another ABI version: kiln must refuse it with a clear message, not crash.
#include <kiln/plugin.h>

extern "C" int kiln_plugin_abi_version() { return KILN_PLUGIN_ABI_VERSION + 1000; }
extern "C" void kiln_register_plugins(kiln::PluginRegistry&) {}
