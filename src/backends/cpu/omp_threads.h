// Shared by the CPU kernels built on oneDNN: the OpenMP team size for one layer's primitives.
#pragma once

// oneDNN in Debian runs on OpenMP (DNNL_CPU_RUNTIME == OMP). kiln does not link libgomp itself, so the
// thread-count calls are weak: they resolve to the libgomp that libdnnl loads, and are skipped if absent.
extern "C" {
int omp_get_max_threads(void) __attribute__((weak));
void omp_set_num_threads(int) __attribute__((weak));
}

namespace kiln::backend {

// Runs a scope with the calling thread's OpenMP team size set to the layer's thread count. oneDNN fixes a
// primitive's thread split when it is created, so this wraps both creation and execution.
class OmpThreads {
 public:
  explicit OmpThreads(int threads) {
    if (threads > 0 && omp_get_max_threads && omp_set_num_threads) {
      saved_ = omp_get_max_threads();
      if (saved_ != threads)
        omp_set_num_threads(threads);
      else
        saved_ = 0;
    }
  }
  ~OmpThreads() {
    if (saved_ > 0) omp_set_num_threads(saved_);
  }
  OmpThreads(const OmpThreads&) = delete;
  OmpThreads& operator=(const OmpThreads&) = delete;

 private:
  int saved_ = 0;
};

}  // namespace kiln::backend
