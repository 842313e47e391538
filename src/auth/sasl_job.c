/* One SASL step packaged as a unit of work: a protocol makes it on its event loop, runs
 * sasl_job_run on a worker thread (the step may hash a password), then reads status and
 * challenge back on its loop. Shared by IMAP AUTHENTICATE, SMTP AUTH and POP3 AUTH; plain
 * user-and-password commands use struct password_job (password_job.c). */
#include <stdlib.h>

#include "auth.h"

struct sasl_job *sasl_job_new(struct sasl_session *sasl, const char *line, size_t len)
{
	struct sasl_job *job = xcalloc(1, sizeof(*job));

	job->sasl = sasl;
	if (line != NULL) {
		job->line = xstrndup(line, len);
		job->len = len;
	}
	buf_init(&job->challenge);
	return job;
}

void sasl_job_run(void *arg)
{
	struct sasl_job *job = arg;

	job->status = sasl_step(job->sasl, job->line, job->line ? job->len : 0, &job->challenge);
	job->reason = sasl_failure_reason(job->sasl);
}

void sasl_job_free(struct sasl_job **jobp)
{
	struct sasl_job *job = jobp ? *jobp : NULL;

	if (job == NULL)
		return;
	if (job->line) {
		mem_wipe(job->line, job->len); /* it may hold a password */
		free(job->line);
	}
	buf_free(&job->challenge);
	free(job);
	*jobp = NULL;
}
