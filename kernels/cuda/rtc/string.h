/* NVRTC stub of <string.h>: see rtc_types.h. */
#include "rtc_types.h"
