#ifndef REINDEX_CBLAS_SHIM_H
#define REINDEX_CBLAS_SHIM_H
// No wrappers needed: cblas.h is plain C. The header lives under
// openblas-pthread/ on Debian, which pkg-config's cflags put on the path.
#include <cblas.h>
#endif
