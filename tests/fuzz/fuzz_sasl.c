/* libFuzzer target for the SASL decoders: the first byte picks PLAIN, LOGIN or SCRAM-SHA-256,
 * the rest is split at '\n' into client responses fed to sasl_step as they would arrive. The
 * directory holds one user (alice@example.org / secret) so SCRAM also runs its known-user path. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

static struct auth_directory *fuzz_dir(void)
{
	static struct auth_directory *dir;
	char path[] = "/tmp/roost-fuzz-sasl-XXXXXX";
	char err[256];

	if (dir != NULL)
		return dir;
	if (mkdtemp(path) == NULL || auth_directory_open(path, &dir, err, sizeof(err)) < 0 ||
	    auth_domain_add(dir, "example.org", err, sizeof(err)) < 0 ||
	    auth_user_add(dir, "alice@example.org", "secret", err, sizeof(err)) < 0)
		abort();
	return dir;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const mechs[] = { "PLAIN", "LOGIN", "SCRAM-SHA-256" };
	struct sasl_session *s;
	struct buf ch;
	size_t pos = 1;

	if (size < 1)
		return 0;
	s = sasl_new(fuzz_dir(), mechs[data[0] % 3], true);
	buf_init(&ch);
	if (data[0] & 0x80)
		sasl_step(s, NULL, 0, &ch);
	while (pos <= size) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t len = nl != NULL ? (size_t)(nl - (data + pos)) : size - pos;
		char *line = malloc(len + 1);
		memcpy(line, data + pos, len);
		line[len] = '\0';
		buf_reset(&ch);
		enum sasl_status st = sasl_step(s, line, len, &ch);
		free(line);
		if (st == SASL_OK && sasl_username(s) == NULL)
			abort();
		if (st != SASL_CONTINUE)
			break;
		pos += len + 1;
	}
	buf_free(&ch);
	sasl_free(&s);
	return 0;
}
