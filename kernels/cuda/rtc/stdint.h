/* NVRTC stub of <stdint.h>: see rtc_types.h. */
#include "rtc_types.h"
