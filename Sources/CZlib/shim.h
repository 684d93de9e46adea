#ifndef COHORT_CZLIB_SHIM_H
#define COHORT_CZLIB_SHIM_H
#include <zlib.h>
/* inflateInit2/deflateInit2 are macros; expose them as functions for Swift. */
static inline int cohort_inflateInit2(z_streamp strm, int windowBits) {
  return inflateInit2(strm, windowBits);
}
static inline int cohort_deflateInit2(z_streamp strm, int level, int windowBits) {
  return deflateInit2(strm, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY);
}
#endif
