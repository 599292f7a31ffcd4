/* NVRTC stub of <unistd.h>: see rtc_types.h. */
#include "rtc_types.h"
