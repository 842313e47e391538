/* LD_PRELOAD shim for the fsync-failure test: fsync()/fdatasync() fail with EIO on the Nth call
 * of the process (FSYNC_FAIL_AT=N, counting both functions together), and on every later call
 * too when FSYNC_FAIL_STICKY=1. Other calls go to the C library. FSYNC_FAIL_LOG=1 reports the
 * injected failure on stderr. */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_long fsync_calls;

static int should_fail(void)
{
	const char *at = getenv("FSYNC_FAIL_AT");
	const char *sticky = getenv("FSYNC_FAIL_STICKY");
	long n = atomic_fetch_add(&fsync_calls, 1) + 1;
	long target;

	if (at == NULL)
		return 0;
	target = strtol(at, NULL, 10);
	if (target <= 0)
		return 0;
	if (n == target || (sticky != NULL && sticky[0] == '1' && n > target)) {
		if (getenv("FSYNC_FAIL_LOG") != NULL)
			fprintf(stderr, "fsync_fail: injecting EIO on call %ld\n", n);
		return 1;
	}
	return 0;
}

int fsync(int fd)
{
	static int (*real)(int);

	if (should_fail()) {
		errno = EIO;
		return -1;
	}
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "fsync");
	return real(fd);
}

int fdatasync(int fd)
{
	static int (*real)(int);

	if (should_fail()) {
		errno = EIO;
		return -1;
	}
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "fdatasync");
	return real(fd);
}
