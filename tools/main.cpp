// kiln — command-line entry point. Errors reach the user as one line on stderr and a non-zero exit.
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>

#include "commands.h"
#include "kiln/error.h"
#include "kiln/tensor_data.h"

namespace {

// "8G", "512M", "1.5GiB", "1000000": a byte count with an optional binary suffix (K, M, G, T; "iB"/"B" allowed).
uint64_t parse_bytes(const std::string& flag, const std::string& text) {
  size_t used = 0;
  double value = -1;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
  }
  std::string unit = text.substr(used);
  for (const char* tail : {"iB", "B"})
    if (unit.size() > std::strlen(tail) && unit.ends_with(tail)) unit.resize(unit.size() - std::strlen(tail));
  const std::string units = "KMGT";
  double scale = 1;
  if (unit.size() == 1 && units.find(static_cast<char>(std::toupper(unit[0]))) != std::string::npos)
    scale = std::pow(1024.0, 1 + static_cast<double>(units.find(static_cast<char>(std::toupper(unit[0])))));
  else if (!unit.empty() && unit != "B")
    value = -1;
  const double bytes = value * scale;
  if (!(bytes >= 1) || bytes >= 1.8e19)
    throw kiln::Error(flag + ": '" + kiln::printable(text) + "' is not a size (e.g. 8G, 512M, 1000000)");
  return static_cast<uint64_t>(bytes);
}

// oneDNN runs its convolutions on OpenMP (libgomp), whose workers by default spin for a while after every
// parallel region. When the machine's cores are shared (another process, or kiln's own single-threaded layers
// between convolutions) the spinning workers starve the thread that has the work: with two threads on two
// loaded cores SqueezeNet's median went from 40 to 89 ms, its worst run to 614 ms (bench/bench_threads_cpu.py).
// libgomp reads its settings once, when it loads, before main(), so the CLI sets a passive wait policy and
// re-executes itself once. A user's OMP_WAIT_POLICY or GOMP_SPINCOUNT is left alone.
void use_passive_openmp_workers(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: run on with the default policy
}

}  // namespace

int main(int argc, char** argv) {
  use_passive_openmp_workers(argv);
  CLI::App app{"kiln: ONNX inference optimizer and runtime"};
  app.require_subcommand(1);
  // Global: the memory limit for allocations that inputs drive (tensors, arenas, files read whole).
  std::string max_memory;
  app.add_option("--maxMemory", max_memory,
                 "Refuse any host allocation above this size, e.g. 8G, 512M (default: physical memory)");
  app.fallthrough();  // (before the subcommands, which inherit it) `kiln exec --maxMemory=...` as well as `kiln --maxMemory=... exec`
  std::map<CLI::App*, kiln::cli::Command> commands;
  auto add = [&](CLI::App* sub, kiln::cli::Command run) { commands[sub] = std::move(run); };
  {
    CLI::App* sub = app.add_subcommand("inspect", "Summarize an ONNX model: I/O, ops, params, MACs, shapes");
    add(sub, kiln::cli::add_inspect(*sub));
  }
  {
    CLI::App* sub = app.add_subcommand("surgeon", "Rewrite an ONNX model and save it as ONNX");
    add(sub, kiln::cli::add_surgeon(*sub));
  }
  {
    CLI::App* sub = app.add_subcommand("exec", "Build or load an engine, run and time it (trtexec-style flags)");
    add(sub, kiln::cli::add_exec(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  // Messages are one line of printable text whatever the input held (kiln::printable).
  try {
    if (!max_memory.empty()) kiln::set_max_memory(parse_bytes("--maxMemory", max_memory));
    for (auto& [sub, run] : commands)
      if (sub->parsed()) return run();
  } catch (const kiln::Error& e) {
    std::cerr << "kiln: error: " << kiln::printable(e.what(), 1000) << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "kiln: error: out of memory (a limit below physical memory can be set with --maxMemory)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "kiln: internal error: " << kiln::printable(e.what(), 1000) << "\n";
    return 2;
  }
  return 0;
}
