/* netrt.h - libnetrt, the netc runtime: the whole public interface. */
#ifndef NETRT_H
#define NETRT_H

const char *nrt_version(void);

#endif
