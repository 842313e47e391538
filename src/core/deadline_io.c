/* Blocking socket steps with one deadline, for the clients that run a whole exchange on a
 * worker thread (clamd, rspamd): the socket is non-blocking and every wait is a poll() that
 * ends at the caller's deadline, so a peer that stops answering costs at most the budget. */
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "core.h"

int fd_wait_ready(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = time_now_ms();
		struct pollfd p = { fd, events, 0 };
		if (now >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		int n = poll(&p, 1, (int)(deadline - now));
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

int fd_connect_within(const struct sockaddr *addr, socklen_t addr_len, uint64_t deadline)
{
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int soerr = 0;
	socklen_t solen = sizeof(soerr);

	if (fd < 0)
		return -1;
	if (connect(fd, addr, addr_len) == 0)
		return fd;
	if ((errno != EINPROGRESS && errno != EAGAIN) || fd_wait_ready(fd, POLLOUT, deadline) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &solen) < 0 || soerr != 0) {
		int saved = soerr != 0 ? soerr : errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}
