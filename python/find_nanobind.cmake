# nanobind's CMake package for the Python being built for (python/CMakeLists.txt and python/prebuilt/). Asked at
# every configure: pip's isolated build environments are temporary folders, so a cached path goes stale.
find_package(Python 3.9 COMPONENTS Interpreter Development.Module REQUIRED)
execute_process(COMMAND "${Python_EXECUTABLE}" -m nanobind --cmake_dir OUTPUT_STRIP_TRAILING_WHITESPACE
                OUTPUT_VARIABLE kiln_nanobind_dir RESULT_VARIABLE kiln_nanobind_status)
if(NOT kiln_nanobind_status EQUAL 0)
  message(FATAL_ERROR "kiln: nanobind is not installed for ${Python_EXECUTABLE} (pip install nanobind)")
endif()
set(nanobind_DIR "${kiln_nanobind_dir}" CACHE PATH "nanobind's CMake package folder" FORCE)
find_package(nanobind CONFIG REQUIRED)
