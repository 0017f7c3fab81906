#include <stdio.h>
int main(void) { puts("netc"); return 0; }
