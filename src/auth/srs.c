/* The Sender Rewriting Scheme (the SRS0/SRS1 forms of Shevek's scheme, as libsrs2 and Postfix's
 * postsrsd write them): a message an alias forwards to another domain leaves with an envelope
 * sender in our SRS domain, so the receiver's SPF check looks at us, and a bounce to that
 * address can be routed back to the original sender, but only when its keyed hash verifies
 * (otherwise we would be an open relay).
 *
 *   SRS0=HHHH=TT=domain=local@srs-domain
 *   SRS1=HHHH=first-srs-domain==HHHH=TT=domain=local@srs-domain
 *
 * HHHH: the first four characters of base64(HMAC-SHA1(secret, the fields in order)), the
 * fields lowercased because receivers and relays may change the case of an address (and the
 * hash itself is compared without case for the same reason). TT: days since the epoch modulo
 * 1024 in two base32 characters, so an address stops working max_age days after it was made.
 * SRS1 wraps an address that already is SRS0 of another forwarder: its first hash covers that
 * forwarder's domain and the rest, and it carries no time stamp of its own (the SRS0 inside
 * has one, checked by the host that made it).
 *
 * Everything here is pure computation except auth_srs_secret_load, which reads or creates the
 * secret file. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/core.h"
#include "auth.h"

#define SRS_HASH_LEN 4
#define SRS_STAMP_LEN 2
#define SRS_STAMP_DAYS 1024 /* 2 base32 characters */

static const char srs_base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* HMAC-SHA1 over the lowercased fields, base64, cut to SRS_HASH_LEN characters. */
static void srs_hash(const uint8_t *secret, size_t secret_len, const char *const *fields,
		     size_t field_count, char out[SRS_HASH_LEN + 1])
{
	struct buf data = { NULL, 0, 0 }, b64 = { NULL, 0, 0 };
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;

	for (size_t i = 0; i < field_count; i++)
		for (const char *p = fields[i]; *p; p++) {
			char c = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
			buf_append(&data, &c, 1);
		}
	if (HMAC(EVP_sha1(), secret, (int)secret_len, data.len ? data.data : (const uint8_t *)"",
		 data.len, mac, &mac_len) == NULL)
		abort(); /* SHA-1 HMAC cannot fail short of memory exhaustion */
	b64_encode(&b64, mac, mac_len);
	memcpy(out, b64.data, SRS_HASH_LEN);
	out[SRS_HASH_LEN] = '\0';
	buf_free(&data);
	buf_free(&b64);
}

static void srs_stamp(time_t now, char out[SRS_STAMP_LEN + 1])
{
	unsigned days = (unsigned)((uint64_t)now / 86400 % SRS_STAMP_DAYS);

	out[0] = srs_base32[days >> 5];
	out[1] = srs_base32[days & 31];
	out[2] = '\0';
}

static int srs_base32_value(char c)
{
	if (c >= 'a' && c <= 'z')
		c = (char)(c - 'a' + 'A');
	const char *p = c ? strchr(srs_base32, c) : NULL;
	return p ? (int)(p - srs_base32) : -1;
}

/* Days since the stamp was made, modulo the stamp's period; -1 when it is not a stamp. */
static int srs_stamp_age(const char *stamp, size_t len, time_t now)
{
	int hi, lo;
	unsigned today = (unsigned)((uint64_t)now / 86400 % SRS_STAMP_DAYS);

	if (len != SRS_STAMP_LEN || (hi = srs_base32_value(stamp[0])) < 0 ||
	    (lo = srs_base32_value(stamp[1])) < 0)
		return -1;
	return (int)((today + SRS_STAMP_DAYS - (unsigned)(hi * 32 + lo)) % SRS_STAMP_DAYS);
}

/* "SRS0" or "SRS1" (any case) and one of the separators libsrs2 accepts. */
static bool srs_tagged(const char *local, char digit)
{
	return (local[0] == 'S' || local[0] == 's') && (local[1] == 'R' || local[1] == 'r') &&
	       (local[2] == 'S' || local[2] == 's') && local[3] == digit &&
	       (local[4] == '=' || local[4] == '+' || local[4] == '-');
}

char *auth_srs_forward(const uint8_t *secret, size_t secret_len, const char *srs_domain,
		       const char *sender, time_t now)
{
	const char *at = strrchr(sender, '@');
	char hash[SRS_HASH_LEN + 1], stamp[SRS_STAMP_LEN + 1];
	char *local, *domain, *out;

	if (at == NULL || at == sender || at[1] == '\0')
		return NULL;
	local = xstrndup(sender, (size_t)(at - sender));
	domain = xstrdup(at + 1);
	if (srs_tagged(local, '1')) {
		/* SRS1=HHHH=host==rest@them: keep host and rest, sign them again as ours */
		const char *host = local + 5 + SRS_HASH_LEN + 1, *sep;
		if (strlen(local) > 5 + SRS_HASH_LEN + 1 && local[5 + SRS_HASH_LEN] == '=' &&
		    (sep = strchr(host, '=')) != NULL && sep > host) {
			char *h = xstrndup(host, (size_t)(sep - host));
			const char *fields[] = { h, sep + 1 };
			srs_hash(secret, secret_len, fields, 2, hash);
			out = xasprintf("SRS1=%s=%s=%s@%s", hash, h, sep + 1, srs_domain);
			free(h);
			goto done;
		}
	}
	if (srs_tagged(local, '0')) {
		/* SRS0=rest@them becomes SRS1=HHHH=them==rest@us */
		const char *rest = local + 4; /* from the separator on */
		const char *fields[] = { domain, rest };
		srs_hash(secret, secret_len, fields, 2, hash);
		out = xasprintf("SRS1=%s=%s=%s@%s", hash, domain, rest, srs_domain);
		goto done;
	}
	srs_stamp(now, stamp);
	{
		const char *fields[] = { stamp, domain, local };
		srs_hash(secret, secret_len, fields, 3, hash);
	}
	out = xasprintf("SRS0=%s=%s=%s=%s@%s", hash, stamp, domain, local, srs_domain);
done:
	free(local);
	free(domain);
	if (strlen(out) > AUTH_SRS_ADDRESS_MAX) { /* too long for a reverse-path */
		free(out);
		out = NULL;
	}
	return out;
}

static bool srs_hash_matches(const char *given, size_t len, const char *want)
{
	return len == SRS_HASH_LEN && str_nieq(given, want, SRS_HASH_LEN);
}

/* SRS0=HHHH=TT=domain=local: the fields after "SRS0=". */
static enum auth_srs_result srs_reverse0(const uint8_t *secret, size_t secret_len,
					 const char *fields, time_t now, int64_t max_age_days,
					 char **original_r)
{
	const char *h = fields, *tt, *dom, *loc;
	char hash[SRS_HASH_LEN + 1];
	enum auth_srs_result result = AUTH_SRS_BAD_HASH;

	if ((tt = strchr(h, '=')) == NULL || (dom = strchr(++tt, '=')) == NULL ||
	    (loc = strchr(++dom, '=')) == NULL || ++loc == dom + 1 || *loc == '\0')
		return AUTH_SRS_MALFORMED;
	char *stamp = xstrndup(tt, (size_t)(dom - 1 - tt));
	char *domain = xstrndup(dom, (size_t)(loc - 1 - dom));
	const char *hash_fields[] = { stamp, domain, loc };
	srs_hash(secret, secret_len, hash_fields, 3, hash);
	if (srs_hash_matches(h, (size_t)(tt - 1 - h), hash)) {
		int age = srs_stamp_age(stamp, strlen(stamp), now);
		if (age < 0)
			result = AUTH_SRS_MALFORMED;
		else if (age > max_age_days)
			result = AUTH_SRS_EXPIRED;
		else {
			*original_r = xasprintf("%s@%s", loc, domain);
			result = AUTH_SRS_OK;
		}
	}
	free(stamp);
	free(domain);
	return result;
}

/* SRS1=HHHH=host=TAIL, TAIL being "=HHHH=TT=domain=local" of the SRS0 address it wraps: the
 * fields after "SRS1=". Routes to SRS0TAIL@host. */
static enum auth_srs_result srs_reverse1(const uint8_t *secret, size_t secret_len,
					 const char *fields, char **original_r)
{
	const char *h = fields, *host, *rest;
	char hash[SRS_HASH_LEN + 1];
	enum auth_srs_result result = AUTH_SRS_BAD_HASH;

	if ((host = strchr(h, '=')) == NULL || (rest = strchr(++host, '=')) == NULL ||
	    rest == host || rest[1] == '\0')
		return AUTH_SRS_MALFORMED;
	char *hostname = xstrndup(host, (size_t)(rest - host));
	rest++; /* the SRS0 part, from its separator on */
	const char *hash_fields[] = { hostname, rest };
	srs_hash(secret, secret_len, hash_fields, 2, hash);
	if (srs_hash_matches(h, (size_t)(host - 1 - h), hash)) {
		*original_r = xasprintf("SRS0%s@%s", rest, hostname);
		result = AUTH_SRS_OK;
	}
	free(hostname);
	return result;
}

enum auth_srs_result auth_srs_reverse(const uint8_t *secret, size_t secret_len,
				      const char *srs_domain, const char *address, time_t now,
				      int64_t max_age_days, char **original_r)
{
	const char *at = strrchr(address, '@');
	enum auth_srs_result result;
	size_t dlen = strlen(srs_domain);

	*original_r = NULL;
	if (at == NULL || at - address < 5 || (!srs_tagged(address, '0') && !srs_tagged(address, '1')))
		return AUTH_SRS_NOT_SRS;
	/* the domain, case-insensitive, a trailing dot allowed */
	if (!(str_nieq(at + 1, srs_domain, dlen) &&
	      (at[1 + dlen] == '\0' || (at[1 + dlen] == '.' && at[2 + dlen] == '\0'))))
		return AUTH_SRS_NOT_SRS;
	if (strlen(address) > AUTH_SRS_ADDRESS_MAX)
		return AUTH_SRS_MALFORMED;
	char *local = xstrndup(address + 5, (size_t)(at - address - 5));
	if (address[3] == '0')
		result = srs_reverse0(secret, secret_len, local, now, max_age_days, original_r);
	else
		result = srs_reverse1(secret, secret_len, local, original_r);
	free(local);
	return result;
}

const char *auth_srs_result_str(enum auth_srs_result r)
{
	switch (r) {
	case AUTH_SRS_OK:
		return "ok";
	case AUTH_SRS_NOT_SRS:
		return "not srs";
	case AUTH_SRS_MALFORMED:
		return "malformed srs address";
	case AUTH_SRS_BAD_HASH:
		return "srs hash does not verify";
	case AUTH_SRS_EXPIRED:
		return "srs address expired";
	}
	return "?";
}

/* ---- the secret file ---- */

static int srs_secret_read(const char *path, uint8_t *secret_r, size_t *len_r, char *err,
			   size_t errlen)
{
	char text[AUTH_SRS_SECRET_MAX + 2];
	FILE *f = fopen(path, "re");
	size_t n;

	if (f == NULL) {
		err_setf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	n = fread(text, 1, sizeof(text), f);
	fclose(f);
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
		n--;
	if (n < 16 || n > AUTH_SRS_SECRET_MAX) {
		err_setf(err, errlen, "%s: the secret must be 16 to %d characters on one line", path,
			 AUTH_SRS_SECRET_MAX);
		return -1;
	}
	memcpy(secret_r, text, n);
	mem_wipe(text, sizeof(text));
	*len_r = n;
	return 0;
}

/* 32 random bytes as 64 hex digits: text, so that an administrator can copy one secret to
 * every MX of a domain (each must verify what the others made). */
static int srs_secret_create(const char *path, char *err, size_t errlen)
{
	uint8_t raw[32];
	char hex[sizeof(raw) * 2 + 2];
	int fd;
	ssize_t w;

	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		err_setf(err, errlen, "no random bytes for the SRS secret");
		return -1;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	hex[sizeof(raw) * 2] = '\n';
	mem_wipe(raw, sizeof(raw));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? 0 : (err_setf(err, errlen, "%s: %s", path, strerror(errno)), -1);
	w = write(fd, hex, sizeof(raw) * 2 + 1);
	mem_wipe(hex, sizeof(hex));
	if (w != (ssize_t)(sizeof(raw) * 2 + 1) || fsync(fd) < 0) {
		err_setf(err, errlen, "%s: %s", path, w < 0 ? strerror(errno) : "short write");
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	char *dir = xstrdup(path);
	fs_fsync_dir(dirname(dir));
	free(dir);
	return 0;
}

int auth_srs_secret_load(const char *path, uint8_t *secret_r, size_t *len_r, char *err,
			 size_t errlen)
{
	if (access(path, F_OK) < 0 && srs_secret_create(path, err, errlen) < 0)
		return -1;
	return srs_secret_read(path, secret_r, len_r, err, errlen);
}
