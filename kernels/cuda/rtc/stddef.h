/* NVRTC stub of <stddef.h>: see rtc_types.h. */
#include "rtc_types.h"
