/* SASL mechanisms shared by SMTP AUTH, IMAP AUTHENTICATE and POP3 AUTH: PLAIN (RFC 4616), LOGIN
 * (draft-murchison-sasl-login) and SCRAM-SHA-256 (scram.c). The protocols pass base64 lines
 * as received; this file owns decoding, size limits and cancellation (RFC 4954 §4). */
#include <stdlib.h>
#include <string.h>

#include "auth_internal.h"

const char *sasl_mechanisms(bool plaintext_allowed)
{
	return plaintext_allowed ? "PLAIN LOGIN SCRAM-SHA-256" : "SCRAM-SHA-256";
}

struct sasl_session *sasl_new(struct auth_directory *dir, const char *mech,
			      bool plaintext_allowed)
{
	struct sasl_session *s;
	enum auth_sasl_mech m;

	if (str_ieq(mech, "PLAIN"))
		m = AUTH_MECH_PLAIN;
	else if (str_ieq(mech, "LOGIN"))
		m = AUTH_MECH_LOGIN;
	else if (str_ieq(mech, "SCRAM-SHA-256"))
		m = AUTH_MECH_SCRAM_SHA_256;
	else
		return NULL;
	if (m != AUTH_MECH_SCRAM_SHA_256 && !plaintext_allowed)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->dir = dir;
	s->mech = m;
	return s;
}

void sasl_free(struct sasl_session **sp)
{
	struct sasl_session *s = *sp;

	if (s == NULL)
		return;
	free(s->username);
	free(s->claimed);
	free(s->login_user);
	auth_scram_state_free(&s->scram);
	free(s);
	*sp = NULL;
}

const char *sasl_username(const struct sasl_session *s)
{
	return s->username;
}

const char *sasl_claimed_user(const struct sasl_session *s)
{
	return s->claimed;
}

const char *sasl_failure_reason(const struct sasl_session *s)
{
	return s->fail_reason;
}

static enum sasl_status check_password(struct sasl_session *s, const char *user,
				       const char *password)
{
	char *canonical = NULL;

	switch (auth_verify_password_reason(s->dir, user, password, &canonical, &s->fail_reason)) {
	case AUTH_OK:
		s->username = canonical;
		return SASL_OK;
	case AUTH_TEMPFAIL:
		return SASL_TEMPFAIL;
	case AUTH_FAILED:
		break;
	}
	return SASL_FAILED;
}

/* RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd */
static enum sasl_status plain_step(struct sasl_session *s, const uint8_t *msg, size_t len)
{
	const uint8_t *nul1, *nul2;
	size_t zlen, clen, plen;

	if (len == 0) /* CVE-2020-12674: an empty message is a clean failure */
		return SASL_MALFORMED;
	nul1 = memchr(msg, '\0', len);
	if (nul1 == NULL)
		return SASL_MALFORMED;
	nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - msg));
	if (nul2 == NULL || memchr(nul2 + 1, '\0', len - (size_t)(nul2 + 1 - msg)) != NULL)
		return SASL_MALFORMED;
	zlen = (size_t)(nul1 - msg);
	clen = (size_t)(nul2 - nul1 - 1);
	plen = len - (size_t)(nul2 + 1 - msg);
	/* RFC 4616 §2 requires accepting at least 255 octets per field; beyond our own bound the
	 * message is refused before anything looks at it. */
	if (zlen > LIMIT_AUTH_FIELD || clen > LIMIT_AUTH_FIELD || plen > LIMIT_AUTH_FIELD ||
	    clen == 0 || plen == 0)
		return SASL_MALFORMED;

	char *authzid = xstrndup((const char *)msg, zlen);
	char *authcid = xstrndup((const char *)nul1 + 1, clen);
	char *passwd = xstrndup((const char *)nul2 + 1, plen);
	enum sasl_status status;

	s->claimed = xstrdup(authcid);
	/* Acting as someone else needs an administrator role we do not have (§2). */
	if (zlen > 0 && !str_ieq(authzid, authcid)) {
		s->fail_reason = "authorization identity other than the user";
		status = SASL_FAILED;
	} else
		status = check_password(s, authcid, passwd);
	mem_wipe(passwd, plen);
	free(passwd);
	free(authzid);
	free(authcid);
	return status;
}

/* LOGIN: the server asks "Username:" then "Password:"; each answer is one text field. */
static enum sasl_status login_step(struct sasl_session *s, const uint8_t *msg, size_t len,
				   struct buf *raw_out)
{
	if (len == 0 || len > LIMIT_AUTH_FIELD || memchr(msg, '\0', len) != NULL)
		return SASL_MALFORMED;
	if (s->login_user == NULL) {
		s->login_user = xstrndup((const char *)msg, len);
		s->claimed = xstrdup(s->login_user);
		buf_append_str(raw_out, "Password:");
		return SASL_CONTINUE;
	}
	char *passwd = xstrndup((const char *)msg, len);
	enum sasl_status status = check_password(s, s->login_user, passwd);
	mem_wipe(passwd, len);
	free(passwd);
	return status;
}

enum sasl_status sasl_step(struct sasl_session *s, const char *line, size_t len,
			   struct buf *challenge_r)
{
	struct buf raw, out;
	enum sasl_status status;

	if (s->done) {
		s->fail_reason = "malformed SASL response";
		return SASL_MALFORMED;
	}
	if (line == NULL) {
		/* The server speaks first: LOGIN asks for the name, the others send an empty
		 * challenge inviting the initial response. */
		if (s->step != 0 || s->login_user != NULL) {
			s->fail_reason = "malformed SASL response";
			return SASL_MALFORMED;
		}
		if (s->mech == AUTH_MECH_LOGIN)
			b64_encode(challenge_r, (const uint8_t *)"Username:", 9);
		return SASL_CONTINUE;
	}
	/* RFC 4954 §4: "*" cancels; the line bound is RFC 4954's 12288 octets. */
	if (len == 1 && line[0] == '*') {
		s->done = true;
		s->fail_reason = "cancelled by the client";
		return SASL_CANCELLED;
	}
	if (len > LIMIT_SASL_RESPONSE) {
		s->done = true;
		s->fail_reason = "malformed SASL response";
		return SASL_MALFORMED;
	}
	buf_init(&raw);
	buf_init(&out);
	if (!(len == 1 && line[0] == '=') && b64_decode(&raw, line, len) < 0) {
		status = SASL_MALFORMED;
		goto out;
	}
	switch (s->mech) {
	case AUTH_MECH_PLAIN:
		status = plain_step(s, raw.data, raw.len);
		break;
	case AUTH_MECH_LOGIN:
		status = login_step(s, raw.data, raw.len, &out);
		break;
	case AUTH_MECH_SCRAM_SHA_256:
	default:
		status = s->step < 2 ? auth_scram_step(s, (const char *)raw.data, raw.len, &out)
				     : SASL_MALFORMED;
		break;
	}
	if (status == SASL_CONTINUE || status == SASL_OK)
		b64_encode(challenge_r, out.data, out.len);
	if (status == SASL_FAILED && s->mech == AUTH_MECH_SCRAM_SHA_256)
		s->fail_reason = s->scram.known ? "wrong password (SCRAM proof)"
						: "unknown user (or no SCRAM keys yet)";
out:
	if (status == SASL_CONTINUE || status == SASL_OK)
		s->fail_reason = NULL;
	else if (status == SASL_MALFORMED)
		s->fail_reason = "malformed SASL response";
	else if (status == SASL_CANCELLED)
		s->fail_reason = "cancelled by the client";
	else if (status == SASL_TEMPFAIL)
		s->fail_reason = "accounts directory error";
	else if (s->fail_reason == NULL)
		s->fail_reason = "authentication failed";
	s->step++;
	if (status != SASL_CONTINUE)
		s->done = true;
	if (raw.data != NULL)
		mem_wipe(raw.data, raw.len);
	buf_free(&raw);
	buf_free(&out);
	return status;
}
