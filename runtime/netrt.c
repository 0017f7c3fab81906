/* netrt.c - library-wide facts. */
#include "netrt.h"

#include "netc_config.h"

const char *nrt_version(void)
{
    return NETC_VERSION;
}
