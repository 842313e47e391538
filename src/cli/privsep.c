/* The privileged parent of `serve` (the OpenSMTPD/Postfix-master model). When serve starts as
 * root with a [server] run_as user and TLS, it forks before any thread exists: the child binds,
 * drops to run_as and serves; the parent stays root and does one thing only, read the
 * certificate and key files when the child asks (at a reload), since a key readable by root
 * alone (Let's Encrypt's default) is out of the child's reach. The parent also passes SIGHUP,
 * SIGTERM and SIGINT on to the child and leaves with the child's exit status.
 *
 * The protocol on the socket pair is one request octet from the child ('R') and one answer:
 * a header of two 32-bit lengths (cert, key; both 0 with an error text of the first length
 * when reading failed) followed by the octets. Certificates and keys are at most TLS_PEM_MAX
 * each. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../core/core.h"
#include "../tls/tls.h"
#include "cli.h"

struct privsep {
	int fd; /* the child's end of the socket pair */
};

struct privsep_header {
	uint32_t cert_len; /* or the length of an error text when key_len is UINT32_MAX */
	uint32_t key_len;
};

/* Moves all of len octets (write when out, else read); -1 on error or end of file. */
static int transfer_all(int fd, void *data, size_t len, bool out)
{
	char *p = data;

	while (len > 0) {
		ssize_t n = out ? write(fd, p, len) : read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
	return transfer_all(fd, (void *)data, len, true);
}

static int read_all(int fd, void *data, size_t len)
{
	return transfer_all(fd, data, len, false);
}

/* ---------------- parent ---------------- */

static void parent_answer(int fd, const char *cert_path, const char *key_path)
{
	struct tls_pem cert, key;
	char err[512];
	struct privsep_header h;

	if (tls_pem_read(cert_path, &cert, err, sizeof(err)) < 0) {
		h = (struct privsep_header){ (uint32_t)strlen(err), UINT32_MAX };
		if (write_all(fd, &h, sizeof(h)) == 0)
			write_all(fd, err, h.cert_len);
		return;
	}
	if (tls_pem_read(key_path, &key, err, sizeof(err)) < 0) {
		tls_pem_free(&cert);
		h = (struct privsep_header){ (uint32_t)strlen(err), UINT32_MAX };
		if (write_all(fd, &h, sizeof(h)) == 0)
			write_all(fd, err, h.cert_len);
		return;
	}
	h = (struct privsep_header){ (uint32_t)cert.len, (uint32_t)key.len };
	if (write_all(fd, &h, sizeof(h)) == 0 && write_all(fd, cert.data, cert.len) == 0)
		write_all(fd, key.data, key.len);
	tls_pem_free(&cert);
	tls_pem_free(&key);
}

static int exit_status_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

/* Runs until the child is gone; returns its exit status. Signals arrive through a signalfd,
 * so the loop needs nothing but poll. */
static int parent_loop(pid_t child, int fd, int sigfd, const char *cert_path,
		       const char *key_path)
{
	for (;;) {
		struct pollfd p[2] = { { fd, POLLIN, 0 }, { sigfd, POLLIN, 0 } };
		int status;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si) &&
			    si.ssi_signo != SIGCHLD)
				kill(child, (int)si.ssi_signo);
		}
		if (p[0].revents & POLLIN) {
			char req;
			ssize_t n = read(fd, &req, 1);
			if (n == 1 && req == 'R')
				parent_answer(fd, cert_path, key_path);
			else if (n == 0)
				p[0].revents |= POLLHUP;
		}
		if (waitpid(child, &status, WNOHANG) == child)
			return exit_status_of(status);
		if (p[0].revents & (POLLHUP | POLLERR)) {
			/* The child closed its end: it is exiting; wait for it. */
			if (waitpid(child, &status, 0) == child)
				return exit_status_of(status);
			break;
		}
	}
	return 1;
}

int privsep_fork(const char *cert_path, const char *key_path, struct privsep **child_r)
{
	int sv[2];
	sigset_t set;
	pid_t pid;

	*child_r = NULL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		fprintf(stderr, "roost: socketpair: %s\n", strerror(errno));
		return -1;
	}
	fflush(NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	/* Blocked before the fork so that a signal to the parent in between is not lost; the
	 * child unblocks them again. */
	sigprocmask(SIG_BLOCK, &set, NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "roost: fork: %s\n", strerror(errno));
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		close(sv[0]);
		*child_r = xcalloc(1, sizeof(**child_r));
		(*child_r)->fd = sv[1];
		return 0;
	}
	close(sv[1]);
	/* A child gone mid-answer must not kill the parent before it reports the child's status. */
	signal(SIGPIPE, SIG_IGN);
	int sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sigfd < 0) {
		kill(pid, SIGTERM);
		_exit(1);
	}
	log_info("msg=\"privileged parent started\" child=%ld", (long)pid);
	int status = parent_loop(pid, sv[0], sigfd, cert_path, key_path);
	_exit(status);
}

/* ---------------- child ---------------- */

int privsep_fetch_certificate(struct privsep *p, struct tls_pem *cert, struct tls_pem *key,
			      char *err, size_t errlen)
{
	struct privsep_header h;
	char req = 'R';

	cert->data = key->data = NULL;
	cert->len = key->len = 0;
	if (write_all(p->fd, &req, 1) < 0 || read_all(p->fd, &h, sizeof(h)) < 0) {
		snprintf(err, errlen, "the privileged parent does not answer");
		return -1;
	}
	if (h.key_len == UINT32_MAX) {
		char text[512];
		size_t n = h.cert_len < sizeof(text) - 1 ? h.cert_len : sizeof(text) - 1;
		if (h.cert_len >= sizeof(text) || read_all(p->fd, text, n) < 0)
			n = 0;
		text[n] = '\0';
		snprintf(err, errlen, "%s", n > 0 ? text : "the privileged parent cannot read it");
		return -1;
	}
	if (h.cert_len > TLS_PEM_MAX || h.key_len > TLS_PEM_MAX) {
		snprintf(err, errlen, "certificate or key too large");
		return -1;
	}
	cert->data = xmalloc(h.cert_len + 1);
	key->data = xmalloc(h.key_len + 1);
	if (read_all(p->fd, cert->data, h.cert_len) < 0 || read_all(p->fd, key->data, h.key_len) < 0) {
		tls_pem_free(cert);
		tls_pem_free(key);
		snprintf(err, errlen, "the privileged parent closed the connection");
		return -1;
	}
	cert->len = h.cert_len;
	key->len = h.key_len;
	cert->data[cert->len] = '\0';
	key->data[key->len] = '\0';
	return 0;
}

void privsep_free(struct privsep **p)
{
	if (p == NULL || *p == NULL)
		return;
	close((*p)->fd);
	free(*p);
	*p = NULL;
}
