/* The scanner object shared by the clamd client (clamd.c) and the check (check.c). */
#ifndef ROOST_VIRUS_INTERNAL_H
#define ROOST_VIRUS_INTERNAL_H

#include <stdbool.h>
#include <sys/socket.h>

#include "virus.h"

struct virus_scanner {
	/* clamd's address, parsed once: numeric IP and port, or a unix socket path */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char *display; /* the address as configured, for logs and errors */
	uint64_t timeout_ms;
	uint64_t max_size;
	enum virus_action action;
	enum virus_on_error on_error;
	char *hostname;
	char *quarantine_dir; /* DATA_DIR/quarantine */
};

#endif
