/* preview.h - `netc preview`: the training samples of one step as a PNG
 * grid, augmented and mixed exactly as the generated train step does it
 * (preview.c). */
#ifndef NETC_PREVIEW_H
#define NETC_PREVIEW_H

#include <stdbool.h>

/* argv[0] is "preview". want_color maps --color's value to yes/no. Prints
 * and returns the exit status (0, 1 input errors, 2 usage or file). */
int preview_main(int argc, char **argv, bool (*want_color)(const char *mode));

#endif
