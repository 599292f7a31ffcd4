/* `dmzbench wan model SWEEPDIR` (stub) */
#include "bench.h"
#include "common/dmz.h"
int dmz_wan_model_main(int argc, char **argv) { (void)argc; (void)argv; return DMZ_EXIT_USAGE; }
