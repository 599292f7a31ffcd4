/* kernels/cuda/rtc/rtc_types.h — the little of the C library that the device
 * code of the kernel files needs, for NVRTC, which has no system headers
 * (make check-pascal, make kernel-resources put this folder first on its
 * include path; the stubs beside it all include this one). Never seen by nvcc
 * or the C compilers. */
#ifndef DMZ_RTC_TYPES_H
#define DMZ_RTC_TYPES_H
#ifndef __CUDACC_RTC__
#error "kernels/cuda/rtc/ is for NVRTC only"
#endif
typedef unsigned long size_t;
typedef long ptrdiff_t;
typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long long int64_t;
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
typedef unsigned long uintptr_t;
#ifndef NULL
#define NULL 0
#endif
#define INFINITY __int_as_float(0x7f800000)
#define NAN __int_as_float(0x7fffffff)
#endif
