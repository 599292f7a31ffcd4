/* NVRTC stub of <stdio.h>: see rtc_types.h. */
#include "rtc_types.h"
