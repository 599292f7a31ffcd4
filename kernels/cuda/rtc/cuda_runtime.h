/* NVRTC stub of <cuda_runtime.h>: see rtc_types.h. */
#include "rtc_types.h"
