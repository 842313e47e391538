/* One password check packaged as a unit of work, the counterpart of struct sasl_job for the
 * plain user-and-password commands (IMAP LOGIN, POP3 USER/PASS): made on an event loop, run
 * on a worker thread (the check hashes the password), read back on the loop. */
#include <stdlib.h>

#include "auth.h"

struct password_job *password_job_new(struct auth_directory *dir, const char *user,
				      size_t user_len, const char *password, size_t password_len)
{
	struct password_job *job = xcalloc(1, sizeof(*job));

	job->dir = dir;
	job->user = xstrndup(user, user_len);
	job->password = xstrndup(password, password_len);
	job->password_len = password_len;
	return job;
}

void password_job_run(void *arg)
{
	struct password_job *job = arg;

	job->result = auth_verify_password_reason(job->dir, job->user, job->password,
						  &job->canonical, &job->reason);
}

void password_job_free(struct password_job **jobp)
{
	struct password_job *job = jobp ? *jobp : NULL;

	if (job == NULL)
		return;
	mem_wipe(job->password, job->password_len);
	free(job->password);
	free(job->user);
	free(job->canonical);
	free(job);
	*jobp = NULL;
}
