/* NVRTC stub of <stdlib.h>: see rtc_types.h. */
#include "rtc_types.h"
