// How many compute threads a request really gets. OpenMP starts every thread it is asked
// for, and libgomp ends the whole process ("Thread creation failed") when the system
// refuses one, so a thread count from a caller is bounded here before any kernel runs.
#pragma once

namespace mst {

// The CPUs this process may run on (its affinity mask, which a container's cpuset
// narrows); at least 1.
int usable_cpus();

// The compute thread count for `requested` (the option called `what` in messages):
// 0 (each caller's own default) is returned as is; more than usable_cpus() is clamped
// to it with a logged warning (more threads than CPUs never speeds up compute-bound
// kernels); negative is MST_ERR_INVALID_ARGUMENT.
int resolve_compute_threads(long long requested, const char *what);

}  // namespace mst
