/* NVRTC stub of <math.h>: see rtc_types.h. */
#include "rtc_types.h"
