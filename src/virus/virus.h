/* Virus scanning through an existing clamd (ClamAV's daemon): a small clamd client and the
 * delivery check that uses it ([virus] settings). The check streams the spooled message to
 * clamd with INSTREAM and turns the answer into the verdict: X-Virus-Scanned/X-Virus-Status
 * header fields, a 554 5.7.0 naming the signature (or the copy filed into \Junk, or kept in the
 * quarantine), and for a clamd that is down or slow a 451 4.7.0 or a pass with a header.
 *
 * Threading: every function here blocks (sockets with poll() time limits); the check runs on
 * the worker pool inside delivery_txn_finish, never on an event loop. The scanner is read-only
 * after virus_scanner_new and shared by every worker thread. */
#ifndef ROOST_VIRUS_H
#define ROOST_VIRUS_H

#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"
#include "../delivery/check.h"

struct virus_scanner;

/* From the [virus] settings; NULL with a reason in err when [virus] clamd is not an address
 * we can use. Call only when cfg->virus_clamd is set. */
struct virus_scanner *virus_scanner_new(const struct config *cfg, char *err, size_t errlen);
void virus_scanner_free(struct virus_scanner **scanner);

/* PING, then VERSION: 0 with clamd's version text in version (e.g. "ClamAV 1.0.7/..."), -1
 * with a reason in err when clamd does not answer as it should within the time limit. */
int virus_scanner_ping(const struct virus_scanner *scanner, char *version, size_t versionlen,
		       char *err, size_t errlen);

enum virus_scan_result {
	VIRUS_SCAN_CLEAN,
	VIRUS_SCAN_INFECTED, /* name holds the signature */
	VIRUS_SCAN_ERROR,    /* name holds the reason */
};

/* Streams len bytes to clamd (INSTREAM) and reads its answer, all within the scanner's time
 * limit. name gets the signature or the error. */
enum virus_scan_result virus_scan(const struct virus_scanner *scanner, const uint8_t *data,
				  size_t len, char *name, size_t namelen);

/* The delivery check (check.h); arg is the scanner. */
void virus_check(void *arg, const struct delivery_check_input *in,
		 struct delivery_verdict *verdict);

#endif
