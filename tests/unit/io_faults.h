/* io_faults.h - I/O-failure injection for runtime/checkpoint.c.
 *
 * Force-included (-include) when checkpoint.c is compiled into
 * test_checkpoint_io: every call that can fail while a checkpoint is saved
 * (open, fdopen, fwrite, fflush, fsync, fclose, rename) goes through a
 * counting wrapper in test_checkpoint_io.c that fails the N-th one with a
 * chosen errno and logs the sequence, so the test can fail each in turn and
 * check the order (file fsynced before the rename, folder after it).
 */
#ifndef NETC_IO_FAULTS_H
#define NETC_IO_FAULTS_H

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int fault_open(const char *path, int flags, ...);
FILE *fault_fdopen(int fd, const char *mode);
size_t fault_fwrite(const void *p, size_t size, size_t n, FILE *f);
int fault_fflush(FILE *f);
int fault_fsync(int fd);
int fault_fclose(FILE *f);
int fault_rename(const char *from, const char *to);

#define open(...) fault_open(__VA_ARGS__)
#define fdopen(fd, mode) fault_fdopen(fd, mode)
#define fwrite(p, s, n, f) fault_fwrite(p, s, n, f)
#define fflush(f) fault_fflush(f)
#define fsync(fd) fault_fsync(fd)
#define fclose(f) fault_fclose(f)
#define rename(a, b) fault_rename(a, b)

#endif
