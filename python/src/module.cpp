// kiln._kiln: the nanobind extension over kiln's public C++ API (include/kiln). kiln/__init__.py builds the
// Python API (InferenceSession, Builder, Engine) on it.
#include <nanobind/nanobind.h>

#include "kiln/error.h"

namespace nb = nanobind;

namespace kiln::py {
void bind_engine(nb::module_& m);
void bind_fold(nb::module_& m);
}  // namespace kiln::py

NB_MODULE(_kiln, m) {
  m.doc() = "kiln's C++ API (include/kiln): import, build, run, fold.";
  m.attr("__version__") = KILN_VERSION;
  // kiln::Error -> kiln.Error (a RuntimeError) with kiln's one-line message.
  nb::exception<kiln::Error>(m, "Error", PyExc_RuntimeError);
  kiln::py::bind_engine(m);
  kiln::py::bind_fold(m);
}
