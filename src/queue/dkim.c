/* DKIM signing and verification (RFC 6376 with RFC 8463's ed25519-sha256) over a whole message
 * held in memory, with OpenSSL libcrypto for the hashes and the public-key operations.
 *
 * Design notes:
 * 1. Signer and verifier share one path for the data hash (hash_header_data): the fields named
 *    by h=, chosen bottom-up, canonicalised, then the signature field with b= emptied and no
 *    final CRLF (RFC 6376 §3.7). A signer that fed its own fields differently would produce
 *    signatures only our verifier accepts; sharing the code keeps the tests honest only because
 *    the tests also recompute the data by hand.
 * 2. The body is canonicalised in one pass into the hash through a small stack batch, never into
 *    a second copy of the message.
 * 3. ed25519-sha256 signs the 32-byte SHA-256 digest of the header data with PureEdDSA
 *    (RFC 8463 §3), not the data itself; rsa-sha256 is PKCS#1 v1.5 over the data. */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "dkim.h"

#define DKIM_FOLD_COLUMNS 78
#define DKIM_MAX_KEYS 2

struct dkim_key {
	EVP_PKEY *pkey;
	bool ed25519;
	char selector[64];
};

struct dkim_signer {
	char *domain;
	struct dkim_key keys[DKIM_MAX_KEYS];
	size_t key_count;
};

/* One header field as it stands in the message, without its final line end. */
struct dkim_field {
	const uint8_t *p;
	size_t len;
	size_t name_len; /* 0 when the line has no colon: such a field never matches */
	bool used;
};

struct dkim_header {
	struct dkim_field *fields;
	size_t count;
	size_t body_off;
};

static bool is_wsp(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static bool is_fws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- canonicalisation (RFC 6376 §3.4) ---- */

typedef void (*canon_sink_fn)(void *ctx, const uint8_t *p, size_t n);

static void sink_buf(void *ctx, const uint8_t *p, size_t n)
{
	buf_append(ctx, p, n);
}

/* Collects small pieces into a stack array so the hash sees few large updates. */
struct batch {
	uint8_t data[4096];
	size_t len;
	canon_sink_fn sink;
	void *ctx;
};

static void batch_put(struct batch *b, const uint8_t *p, size_t n)
{
	if (b->len + n > sizeof(b->data)) {
		b->sink(b->ctx, b->data, b->len);
		b->len = 0;
		if (n > sizeof(b->data)) {
			b->sink(b->ctx, p, n);
			return;
		}
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void batch_flush(struct batch *b)
{
	if (b->len > 0)
		b->sink(b->ctx, b->data, b->len);
	b->len = 0;
}

/* RFC 6376 §3.4.3 (simple) and §3.4.4 (relaxed). A bare LF ends a line as CRLF does, because
 * the message goes out with CRLF line ends and the hash must match what the receiver sees. */
static void canon_body(const uint8_t *b, size_t len, bool relaxed, canon_sink_fn sink, void *ctx)
{
	struct batch out = { .len = 0, .sink = sink, .ctx = ctx };
	size_t empties = 0, pos = 0;
	bool emitted = false;

	while (pos < len) {
		size_t start = pos;
		const uint8_t *nl = memchr(b + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - b) : len;

		pos = nl != NULL ? end + 1 : len;
		if (nl != NULL && end > start && b[end - 1] == '\r')
			end--;
		if (relaxed)
			while (end > start && is_wsp(b[end - 1]))
				end--;
		if (end == start) {
			empties++;
			continue;
		}
		for (; empties > 0; empties--)
			batch_put(&out, (const uint8_t *)"\r\n", 2);
		if (!relaxed) {
			batch_put(&out, b + start, end - start);
		} else {
			size_t i = start;
			while (i < end) {
				size_t run = i;
				while (run < end && !is_wsp(b[run]))
					run++;
				batch_put(&out, b + i, run - i);
				if (run == end)
					break;
				batch_put(&out, (const uint8_t *)" ", 1);
				while (run < end && is_wsp(b[run]))
					run++;
				i = run;
			}
		}
		batch_put(&out, (const uint8_t *)"\r\n", 2);
		emitted = true;
	}
	if (!relaxed && !emitted) /* §3.4.3: an empty body is one CRLF */
		batch_put(&out, (const uint8_t *)"\r\n", 2);
	batch_flush(&out);
}

void dkim_canon_body_relaxed(const uint8_t *body, size_t len, struct buf *out)
{
	canon_body(body, len, true, sink_buf, out);
}

/* RFC 6376 §3.4.2. CR and LF inside a field only occur at fold points, where they are followed
 * by WSP, so treating them as WSP is the same as unfolding first. */
static void canon_header_relaxed(const uint8_t *p, size_t len, struct buf *out)
{
	const uint8_t *colon = memchr(p, ':', len);
	size_t name_end = colon != NULL ? (size_t)(colon - p) : len;
	size_t i;
	bool space = false, started = false;

	while (name_end > 0 && is_fws(p[name_end - 1]))
		name_end--;
	for (i = 0; i < name_end; i++) {
		uint8_t c = p[i];
		buf_append_byte(out, c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c);
	}
	buf_append_byte(out, ':');
	for (i = colon != NULL ? (size_t)(colon - p) + 1 : len; i < len; i++) {
		if (is_fws(p[i])) {
			space = started;
			continue;
		}
		if (space)
			buf_append_byte(out, ' ');
		space = false;
		started = true;
		buf_append_byte(out, p[i]);
	}
	buf_append(out, "\r\n", 2);
}

void dkim_canon_header_relaxed(const uint8_t *field, size_t len, struct buf *out)
{
	canon_header_relaxed(field, len, out);
}

static void canon_header(const uint8_t *p, size_t len, bool relaxed, struct buf *out)
{
	if (relaxed) {
		canon_header_relaxed(p, len, out);
	} else {
		buf_append(out, p, len);
		buf_append(out, "\r\n", 2);
	}
}

/* ---- header block ---- */

/* Splits the header block into fields; body_off is where the body starts (len when the message
 * has no empty line). -1 when there are more than LIMIT_DKIM_HEADER_FIELDS fields. */
static int header_parse(const uint8_t *msg, size_t len, struct dkim_header *h)
{
	size_t pos = 0, cap = 0;

	h->fields = NULL;
	h->count = 0;
	h->body_off = len;
	while (pos < len) {
		const uint8_t *nl = memchr(msg + pos, '\n', len - pos);
		size_t next = nl != NULL ? (size_t)(nl - msg) + 1 : len;
		size_t end = nl != NULL ? (size_t)(nl - msg) : len;

		if (nl != NULL && end > pos && msg[end - 1] == '\r')
			end--;
		if (end == pos && nl != NULL) {
			h->body_off = next;
			return 0;
		}
		if (is_wsp(msg[pos]) && h->count > 0) {
			struct dkim_field *f = &h->fields[h->count - 1];
			f->len = end - (size_t)(f->p - msg);
		} else {
			if (h->count == LIMIT_DKIM_HEADER_FIELDS) {
				free(h->fields);
				h->fields = NULL;
				return -1;
			}
			if (h->count == cap) {
				cap = cap == 0 ? 32 : cap * 2;
				h->fields = xrealloc(h->fields, cap * sizeof(*h->fields));
			}
			struct dkim_field *f = &h->fields[h->count++];
			const uint8_t *colon = memchr(msg + pos, ':', end - pos);
			f->p = msg + pos;
			f->len = end - pos;
			f->used = false;
			f->name_len = colon != NULL ? (size_t)(colon - (msg + pos)) : 0;
			while (f->name_len > 0 && is_wsp(f->p[f->name_len - 1]))
				f->name_len--;
		}
		pos = next;
	}
	return 0;
}

static bool field_is(const struct dkim_field *f, const char *name, size_t name_len)
{
	return f->name_len == name_len && name_len > 0 &&
	       str_nieq((const char *)f->p, name, name_len);
}

struct name_ref {
	const char *p;
	size_t len;
};

/* RFC 6376 §3.7 step 2 and §5.4.2: each name in h= takes the bottom-most instance not yet taken;
 * a name with no instance left contributes nothing. sig is the signature field with b= emptied. */
static void hash_header_data(struct dkim_header *h, const struct name_ref *names, size_t n,
			     bool relaxed, const uint8_t *sig, size_t sig_len, struct buf *out)
{
	for (size_t i = 0; i < h->count; i++)
		h->fields[i].used = false;
	for (size_t k = 0; k < n; k++) {
		for (size_t i = h->count; i-- > 0;) {
			struct dkim_field *f = &h->fields[i];
			if (f->used || !field_is(f, names[k].p, names[k].len))
				continue;
			f->used = true;
			canon_header(f->p, f->len, relaxed, out);
			break;
		}
	}
	canon_header(sig, sig_len, relaxed, out);
	out->len -= 2; /* §3.7: the signature field goes in without its trailing CRLF */
}

/* ---- hashing and public-key operations ---- */

struct limited_sink {
	EVP_MD_CTX *md;
	uint64_t left; /* l= remainder, UINT64_MAX for no limit */
	uint64_t total;
};

static void sink_limited(void *ctx, const uint8_t *p, size_t n)
{
	struct limited_sink *s = ctx;
	size_t take = n;

	s->total += n;
	if (s->left != UINT64_MAX) {
		if (take > s->left)
			take = (size_t)s->left;
		s->left -= take;
	}
	if (take > 0)
		EVP_DigestUpdate(s->md, p, take);
}

/* Body hash (SHA-256) of the canonical body truncated to limit octets (UINT64_MAX: whole).
 * Returns -1 when the canonical body is shorter than limit (§6.1.3 treats that as invalid). */
static int body_hash(const uint8_t *body, size_t len, bool relaxed, uint64_t limit,
		     uint8_t hash_r[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct limited_sink s = { .md = md, .left = limit, .total = 0 };
	unsigned int out_len = 0;

	if (md == NULL)
		abort();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	canon_body(body, len, relaxed, sink_limited, &s);
	EVP_DigestFinal_ex(md, hash_r, &out_len);
	EVP_MD_CTX_free(md);
	return limit != UINT64_MAX && s.total < limit ? -1 : 0;
}

static int sign_data(const struct dkim_key *key, const uint8_t *data, size_t len,
		     struct buf *sig_r)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t digest[32];
	unsigned int dlen = 0;
	size_t sig_len = 0;
	int ret = -1;

	if (md == NULL)
		abort();
	if (key->ed25519) {
		/* RFC 8463 §3: PureEdDSA over the SHA-256 of the header data */
		EVP_Digest(data, len, digest, &dlen, EVP_sha256(), NULL);
		data = digest;
		len = dlen;
	}
	if (EVP_DigestSignInit(md, NULL, key->ed25519 ? NULL : EVP_sha256(), NULL, key->pkey) !=
		    1 ||
	    EVP_DigestSign(md, NULL, &sig_len, data, len) != 1)
		goto out;
	buf_reserve(sig_r, sig_len);
	if (EVP_DigestSign(md, sig_r->data + sig_r->len, &sig_len, data, len) != 1)
		goto out;
	sig_r->len += sig_len;
	ret = 0;
out:
	EVP_MD_CTX_free(md);
	return ret;
}

static bool verify_data(EVP_PKEY *pkey, bool ed25519, const uint8_t *data, size_t len,
			const uint8_t *sig, size_t sig_len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t digest[32];
	unsigned int dlen = 0;
	bool ok;

	if (md == NULL)
		abort();
	if (ed25519) {
		EVP_Digest(data, len, digest, &dlen, EVP_sha256(), NULL);
		data = digest;
		len = dlen;
	}
	ok = EVP_DigestVerifyInit(md, NULL, ed25519 ? NULL : EVP_sha256(), NULL, pkey) == 1 &&
	     EVP_DigestVerify(md, sig, sig_len, data, len) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

/* ---- key files ---- */

/* A plain lower-case DNS name: the folder name is built from it, so no '/', no "..". */
static int domain_check(const char *domain, char *err, size_t errlen)
{
	size_t len = strlen(domain);

	if (len == 0 || len > 253 || domain[0] == '.' || domain[0] == '-' ||
	    domain[len - 1] == '.' || strstr(domain, "..") != NULL) {
		set_err(err, errlen, "invalid domain name for DKIM: %s", domain);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		char c = domain[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.')) {
			set_err(err, errlen, "invalid domain name for DKIM: %s", domain);
			return -1;
		}
	}
	return 0;
}

static char *key_dir(const char *data_dir, const char *domain)
{
	char *dir = xasprintf("%s/dkim/%s", data_dir, domain);

	for (char *p = dir + strlen(data_dir) + 6; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	return dir;
}

static int make_dir(const char *path, char *err, size_t errlen)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		set_err(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Writes data to path through a temporary file and a rename, mode 0600, fsync'd. */
static int write_file(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
	char *tmp = xasprintf("%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ret = -1;

	if (fd < 0) {
		set_err(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	const uint8_t *p = data;
	size_t left = len;
	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			set_err(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
			goto out;
		}
		p += n;
		left -= (size_t)n;
	}
	if (fsync(fd) < 0) {
		set_err(err, errlen, "cannot sync %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, path) < 0) {
		set_err(err, errlen, "cannot rename %s: %s", tmp, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	close(fd);
	if (ret < 0)
		unlink(tmp);
	free(tmp);
	return ret;
}

/* Reads a small file (at most max octets) into out; 1 when it does not exist. */
static int read_file(const char *path, size_t max, struct buf *out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	uint8_t chunk[4096];
	size_t n;

	if (f == NULL) {
		if (errno == ENOENT)
			return 1;
		set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (out->len + n > max) {
			fclose(f);
			set_err(err, errlen, "%s is too large", path);
			return -1;
		}
		buf_append(out, chunk, n);
	}
	bool bad = ferror(f) != 0;
	fclose(f);
	if (bad) {
		set_err(err, errlen, "cannot read %s", path);
		return -1;
	}
	return 0;
}

struct selectors {
	char rsa[64];
	char ed25519[64];
};

/* The selectors file: "rsa <sel>\ned25519 <sel>\n"; missing lines leave the fields empty. */
static int selectors_read(const char *dir, struct selectors *s, char *err, size_t errlen)
{
	char *path = xasprintf("%s/selectors", dir);
	struct buf b;
	int r;

	buf_init(&b);
	s->rsa[0] = s->ed25519[0] = '\0';
	r = read_file(path, 4096, &b, err, errlen);
	free(path);
	if (r < 0) {
		buf_free(&b);
		return -1;
	}
	char *save = NULL;
	for (char *line = strtok_r((char *)buf_cstr(&b), "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char kind[16], sel[64];
		if (sscanf(line, "%15s %63s", kind, sel) != 2)
			continue;
		if (strcmp(kind, "rsa") == 0)
			snprintf(s->rsa, sizeof(s->rsa), "%s", sel);
		else if (strcmp(kind, "ed25519") == 0)
			snprintf(s->ed25519, sizeof(s->ed25519), "%s", sel);
	}
	buf_free(&b);
	return 0;
}

static int key_write(EVP_PKEY *pkey, const char *path, char *err, size_t errlen)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data = NULL;
	int ret = -1;

	if (mem == NULL)
		abort();
	if (PEM_write_bio_PrivateKey(mem, pkey, NULL, NULL, 0, NULL, NULL) == 1) {
		long n = BIO_get_mem_data(mem, &data);
		ret = write_file(path, data, (size_t)n, err, errlen);
		OPENSSL_cleanse(data, (size_t)n);
	} else {
		set_err(err, errlen, "cannot encode the key for %s", path);
	}
	BIO_free(mem);
	return ret;
}

int dkim_keys_generate(const char *data_dir, const char *domain, char *err, size_t errlen)
{
	struct selectors sel;
	struct stat st;
	char *top, *dir = NULL, *rsa = NULL, *ed = NULL;
	bool changed = false;
	int ret = -1;

	if (domain_check(domain, err, errlen) < 0)
		return -1;
	top = xasprintf("%s/dkim", data_dir);
	dir = key_dir(data_dir, domain);
	if (make_dir(top, err, errlen) < 0 || make_dir(dir, err, errlen) < 0 ||
	    selectors_read(dir, &sel, err, errlen) < 0)
		goto out;

	time_t now = (time_t)time_wall_seconds();
	struct tm tm;
	gmtime_r(&now, &tm);
	rsa = xasprintf("%s/rsa.key", dir);
	ed = xasprintf("%s/ed25519.key", dir);
	for (int k = 0; k < 2; k++) {
		const char *path = k == 0 ? rsa : ed;
		char *slot = k == 0 ? sel.rsa : sel.ed25519;
		if (stat(path, &st) == 0 && slot[0] != '\0')
			continue;
		if (stat(path, &st) < 0) {
			EVP_PKEY *pkey = k == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
						: EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
			if (pkey == NULL) {
				set_err(err, errlen, "cannot generate a DKIM key");
				goto out;
			}
			int w = key_write(pkey, path, err, errlen);
			EVP_PKEY_free(pkey);
			if (w < 0)
				goto out;
		}
		snprintf(slot, 64, "%c%04d%02d", k == 0 ? 'r' : 'e', tm.tm_year + 1900,
			 tm.tm_mon + 1);
		changed = true;
	}
	if (changed) {
		char *path = xasprintf("%s/selectors", dir);
		char *text = xasprintf("rsa %s\ned25519 %s\n", sel.rsa, sel.ed25519);
		int w = write_file(path, text, strlen(text), err, errlen);
		free(text);
		free(path);
		if (w < 0)
			goto out;
	}
	ret = 0;
out:
	free(top);
	free(dir);
	free(rsa);
	free(ed);
	return ret;
}

static EVP_PKEY *key_from_pem(const uint8_t *pem, size_t len, bool *ed25519_r, char *err,
			      size_t errlen)
{
	BIO *mem;
	EVP_PKEY *pkey;

	if (len > INT32_MAX) {
		set_err(err, errlen, "key file too large");
		return NULL;
	}
	mem = BIO_new_mem_buf(pem, (int)len);
	if (mem == NULL)
		abort();
	pkey = PEM_read_bio_PrivateKey(mem, NULL, NULL, NULL);
	BIO_free(mem);
	if (pkey == NULL) {
		set_err(err, errlen, "not a PEM private key");
		return NULL;
	}
	if (EVP_PKEY_is_a(pkey, "ED25519")) {
		*ed25519_r = true;
	} else if (EVP_PKEY_is_a(pkey, "RSA") && EVP_PKEY_get_bits(pkey) >= LIMIT_DKIM_RSA_BITS_MIN &&
		   EVP_PKEY_get_bits(pkey) <= LIMIT_DKIM_RSA_BITS_MAX) {
		*ed25519_r = false;
	} else {
		set_err(err, errlen, "a DKIM key must be Ed25519 or RSA of 1024 to 8192 bits");
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

struct dkim_signer *dkim_signer_new(const char *domain)
{
	struct dkim_signer *s = xcalloc(1, sizeof(*s));

	s->domain = xstrdup(domain);
	for (char *p = s->domain; *p != '\0'; p++) /* d= as DNS names are written: lower case */
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	return s;
}

static bool selector_ok(const char *sel)
{
	size_t len = strlen(sel);

	if (len == 0 || len >= sizeof(((struct dkim_key *)0)->selector))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = sel[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_'))
			return false;
	}
	return true;
}

int dkim_signer_add_pem(struct dkim_signer *signer, const char *selector, const uint8_t *pem,
			size_t pem_len, char *err, size_t errlen)
{
	struct dkim_key *k;

	if (signer->key_count == DKIM_MAX_KEYS) {
		set_err(err, errlen, "at most %d DKIM keys per signer", DKIM_MAX_KEYS);
		return -1;
	}
	if (!selector_ok(selector)) {
		set_err(err, errlen, "invalid DKIM selector: %s", selector);
		return -1;
	}
	k = &signer->keys[signer->key_count];
	k->pkey = key_from_pem(pem, pem_len, &k->ed25519, err, errlen);
	if (k->pkey == NULL)
		return -1;
	snprintf(k->selector, sizeof(k->selector), "%s", selector);
	signer->key_count++;
	return 0;
}

void dkim_signer_free(struct dkim_signer **signer)
{
	struct dkim_signer *s = *signer;

	if (s == NULL)
		return;
	for (size_t i = 0; i < s->key_count; i++)
		EVP_PKEY_free(s->keys[i].pkey);
	free(s->domain);
	free(s);
	*signer = NULL;
}

/* Loads one key file under its selector; 1 when the file or its selector is missing. */
static int signer_load_one(struct dkim_signer *s, const char *dir, const char *file,
			   const char *selector, char *err, size_t errlen)
{
	char *path = xasprintf("%s/%s", dir, file);
	struct buf pem;
	int r;

	buf_init(&pem);
	r = read_file(path, 64 * 1024, &pem, err, errlen);
	if (r == 0 && selector[0] == '\0')
		r = 1;
	if (r == 0 && dkim_signer_add_pem(s, selector, pem.data, pem.len, err, errlen) < 0) {
		char inner[256];
		snprintf(inner, sizeof(inner), "%s", err != NULL ? err : "");
		set_err(err, errlen, "%s: %s", path, inner);
		r = -1;
	}
	mem_wipe(pem.data, pem.len);
	buf_free(&pem);
	free(path);
	return r;
}

struct dkim_signer *dkim_signer_load(const char *data_dir, const char *domain, char *err,
				     size_t errlen)
{
	struct dkim_signer *s;
	struct selectors sel;
	char *dir;

	if (domain_check(domain, err, errlen) < 0)
		return NULL;
	dir = key_dir(data_dir, domain);
	s = dkim_signer_new(domain);
	if (selectors_read(dir, &sel, err, errlen) < 0 ||
	    signer_load_one(s, dir, "ed25519.key", sel.ed25519, err, errlen) < 0 ||
	    signer_load_one(s, dir, "rsa.key", sel.rsa, err, errlen) < 0) {
		dkim_signer_free(&s);
	} else if (s->key_count == 0) {
		set_err(err, errlen, "no DKIM keys in %s", dir);
		dkim_signer_free(&s);
	}
	free(dir);
	return s;
}

/* Appends one quoted TXT record, cut into strings of at most 255 octets. */
static void dns_record(struct buf *out, const char *selector, const char *domain,
		       const char *text)
{
	size_t len = strlen(text);

	buf_printf(out, "%s._domainkey.%s. IN TXT", selector, domain);
	for (size_t off = 0; off < len; off += 255) {
		size_t n = len - off > 255 ? 255 : len - off;
		buf_printf(out, " \"%.*s\"", (int)n, text + off);
	}
	buf_append_str(out, "\n");
}

int dkim_dns_records(const char *data_dir, const char *domain, struct buf *out, char *err,
		     size_t errlen)
{
	struct dkim_signer *s = dkim_signer_load(data_dir, domain, err, errlen);
	int ret = -1;

	if (s == NULL)
		return -1;
	for (size_t i = 0; i < s->key_count; i++) {
		struct dkim_key *k = &s->keys[i];
		struct buf raw, text;
		buf_init(&raw);
		buf_init(&text);
		if (k->ed25519) {
			size_t n = 32;
			buf_reserve(&raw, n);
			if (EVP_PKEY_get_raw_public_key(k->pkey, raw.data, &n) != 1 || n != 32) {
				set_err(err, errlen, "cannot read the Ed25519 public key");
				buf_free(&raw);
				goto out;
			}
			raw.len = n;
		} else {
			int n = i2d_PUBKEY(k->pkey, NULL);
			if (n <= 0) {
				set_err(err, errlen, "cannot encode the RSA public key");
				buf_free(&raw);
				goto out;
			}
			buf_reserve(&raw, (size_t)n);
			uint8_t *p = raw.data;
			i2d_PUBKEY(k->pkey, &p);
			raw.len = (size_t)n;
		}
		buf_printf(&text, "v=DKIM1; k=%s; p=", k->ed25519 ? "ed25519" : "rsa");
		b64_encode(&text, raw.data, raw.len);
		dns_record(out, k->selector, s->domain, buf_cstr(&text));
		buf_free(&raw);
		buf_free(&text);
	}
	ret = 0;
out:
	dkim_signer_free(&s);
	return ret;
}

/* ---- signing ---- */

/* Builds a header field folded at DKIM_FOLD_COLUMNS: pieces join with sep (" " or "") unless
 * the line would grow too long, in which case they join with CRLF SP, which relaxed header
 * canonicalisation reads as one space — allowed wherever we fold (RFC 6376 §3.5: FWS between
 * tags, around ':' in h=, anywhere inside b= and bh=). */
struct fold {
	struct buf *out;
	size_t col;
};

static void fold_put(struct fold *f, const char *piece, size_t n, const char *sep)
{
	size_t sep_len = strlen(sep);

	if (f->col > 1 && f->col + sep_len + n > DKIM_FOLD_COLUMNS) {
		buf_append_str(f->out, "\r\n ");
		f->col = 1;
	} else {
		buf_append_str(f->out, sep);
		f->col += sep_len;
	}
	buf_append(f->out, piece, n);
	f->col += n;
}

/* Continues a base64 value from the current column, cut to the room left on each line. */
static void fold_value(struct fold *f, const uint8_t *data, size_t len)
{
	size_t off = 0;

	while (off < len) {
		size_t room = f->col < DKIM_FOLD_COLUMNS ? DKIM_FOLD_COLUMNS - f->col : 0;
		if (room < 8) {
			buf_append_str(f->out, "\r\n ");
			f->col = 1;
			continue;
		}
		size_t n = len - off < room ? len - off : room;
		buf_append(f->out, data + off, n);
		f->col += n;
		off += n;
	}
}

static const char *const signed_fields[] = { DKIM_SIGNED_FIELDS };

int dkim_sign(const struct dkim_signer *signer, const uint8_t *msg, size_t len, int64_t now,
	      struct buf *header_out, char *err, size_t errlen)
{
	struct dkim_header h;
	struct name_ref names[LIMIT_DKIM_H_TAG_FIELDS];
	size_t n_names = 0;
	uint8_t bh[32];
	bool has_from = false;
	int ret = -1;

	if (signer->key_count == 0) {
		set_err(err, errlen, "no DKIM key to sign with");
		return -1;
	}
	if (header_parse(msg, len, &h) < 0) {
		set_err(err, errlen, "too many header fields to sign");
		return -1;
	}
	for (size_t k = 0; k < ARRAY_LEN(signed_fields); k++) {
		size_t nlen = strlen(signed_fields[k]);
		for (size_t i = 0; i < h.count; i++) {
			if (!field_is(&h.fields[i], signed_fields[k], nlen))
				continue;
			if (n_names + 1 >= LIMIT_DKIM_H_TAG_FIELDS) {
				set_err(err, errlen, "too many header fields to sign");
				goto out;
			}
			names[n_names++] = (struct name_ref){ signed_fields[k], nlen };
			has_from = has_from || k == 0;
		}
	}
	if (!has_from) { /* RFC 6376 §5.4: From is required */
		set_err(err, errlen, "the message has no From field");
		goto out;
	}
	/* one more "from" than present: a From added later breaks the signature (§5.4.2) */
	names[n_names++] = (struct name_ref){ "from", 4 };
	body_hash(msg + h.body_off, len - h.body_off, true, UINT64_MAX, bh);

	for (size_t i = 0; i < signer->key_count; i++) {
		const struct dkim_key *key = &signer->keys[i];
		struct buf field, data, sig, b64;
		struct fold f = { .out = &field, .col = 0 };
		char tag[300];

		buf_init(&field);
		buf_init(&data);
		buf_init(&sig);
		buf_init(&b64);
		buf_append_str(&field, "DKIM-Signature:");
		f.col = field.len;
		fold_put(&f, "v=1;", 4, " ");
		snprintf(tag, sizeof(tag), "a=%s;", key->ed25519 ? "ed25519-sha256" : "rsa-sha256");
		fold_put(&f, tag, strlen(tag), " ");
		fold_put(&f, "c=relaxed/relaxed;", 18, " ");
		snprintf(tag, sizeof(tag), "d=%s;", signer->domain);
		fold_put(&f, tag, strlen(tag), " ");
		snprintf(tag, sizeof(tag), "s=%s;", key->selector);
		fold_put(&f, tag, strlen(tag), " ");
		snprintf(tag, sizeof(tag), "t=%lld;", (long long)now);
		fold_put(&f, tag, strlen(tag), " ");
		for (size_t k = 0; k < n_names; k++) {
			snprintf(tag, sizeof(tag), "%s%s%s", k == 0 ? "h=" : "", names[k].p,
				 k + 1 < n_names ? ":" : ";");
			fold_put(&f, tag, strlen(tag), k == 0 ? " " : "");
		}
		b64_encode(&b64, bh, sizeof(bh));
		buf_append_byte(&b64, ';');
		fold_put(&f, "bh=", 3, " ");
		fold_value(&f, b64.data, b64.len);
		fold_put(&f, "b=", 2, " ");

		hash_header_data(&h, names, n_names, true, field.data, field.len, &data);
		int r = sign_data(key, data.data, data.len, &sig);
		if (r == 0) {
			buf_reset(&b64);
			b64_encode(&b64, sig.data, sig.len);
			fold_value(&f, b64.data, b64.len);
			buf_append_str(&field, "\r\n");
			buf_append(header_out, field.data, field.len);
		} else {
			set_err(err, errlen, "signing with selector %s failed", key->selector);
		}
		buf_free(&field);
		buf_free(&data);
		buf_free(&sig);
		buf_free(&b64);
		if (r < 0)
			goto out;
	}
	ret = 0;
out:
	free(h.fields);
	return ret;
}

/* ---- verifying ---- */

#define DKIM_MAX_TAGS 32

/* One tag=value of a tag-list (RFC 6376 §3.2); value trimmed of FWS, val_start/val_end the raw
 * span after '=' up to the ';' (what §3.7 empties for b=). */
struct dkim_tag {
	const uint8_t *name;
	size_t name_len;
	const uint8_t *val;
	size_t val_len;
	size_t val_start, val_end;
};

struct dkim_tags {
	struct dkim_tag tag[DKIM_MAX_TAGS];
	size_t count;
};

/* Parses p[0..len); offsets are relative to p. -1 on a syntax error or a duplicate tag. */
static int tags_parse(const uint8_t *p, size_t len, struct dkim_tags *t)
{
	size_t pos = 0;

	t->count = 0;
	while (pos < len) {
		const uint8_t *semi = memchr(p + pos, ';', len - pos);
		size_t end = semi != NULL ? (size_t)(semi - p) : len;
		size_t a = pos, b;

		while (a < end && is_fws(p[a]))
			a++;
		if (a == end) { /* empty spec: only allowed as the last one (trailing ';') */
			if (semi != NULL && end + 1 < len) {
				size_t z = end + 1;
				while (z < len && is_fws(p[z]))
					z++;
				if (z < len)
					return -1;
			}
			break;
		}
		const uint8_t *eq = memchr(p + a, '=', end - a);
		if (eq == NULL || t->count == DKIM_MAX_TAGS)
			return -1;
		struct dkim_tag *tag = &t->tag[t->count];
		b = (size_t)(eq - p);
		tag->val_start = b + 1;
		tag->val_end = end;
		while (b > a && is_fws(p[b - 1]))
			b--;
		if (b == a)
			return -1;
		tag->name = p + a;
		tag->name_len = b - a;
		for (size_t i = a; i < b; i++)
			if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
			      (p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
				return -1;
		size_t vs = tag->val_start, ve = end;
		while (vs < ve && is_fws(p[vs]))
			vs++;
		while (ve > vs && is_fws(p[ve - 1]))
			ve--;
		tag->val = p + vs;
		tag->val_len = ve - vs;
		for (size_t k = 0; k < t->count; k++)
			if (t->tag[k].name_len == tag->name_len &&
			    memcmp(t->tag[k].name, tag->name, tag->name_len) == 0)
				return -1; /* §3.2: duplicate tags make the list invalid */
		t->count++;
		pos = semi != NULL ? end + 1 : len;
	}
	return 0;
}

static const struct dkim_tag *tag_find(const struct dkim_tags *t, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < t->count; i++)
		if (t->tag[i].name_len == n && memcmp(t->tag[i].name, name, n) == 0)
			return &t->tag[i];
	return NULL;
}

static bool tag_is(const struct dkim_tag *tag, const char *value)
{
	size_t n = strlen(value);

	return tag != NULL && tag->val_len == n && memcmp(tag->val, value, n) == 0;
}

/* Decodes a base64 value in which FWS may appear anywhere (§3.5 b=, bh=; §3.6.1 p=). */
static int b64_decode_fws(const struct dkim_tag *tag, struct buf *out)
{
	struct buf clean;
	int r;

	buf_init(&clean);
	for (size_t i = 0; i < tag->val_len; i++)
		if (!is_fws(tag->val[i]))
			buf_append_byte(&clean, tag->val[i]);
	r = b64_decode(out, (const char *)clean.data, clean.len);
	buf_free(&clean);
	return r;
}

/* A domain name or selector: labels of letters, digits, '-' and '_' joined by dots. */
static bool copy_name(const struct dkim_tag *tag, char *dst, size_t size)
{
	if (tag == NULL || tag->val_len == 0 || tag->val_len >= size)
		return false;
	for (size_t i = 0; i < tag->val_len; i++) {
		uint8_t c = tag->val[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || (c == '.' && i > 0 && tag->val[i - 1] != '.')))
			return false;
	}
	memcpy(dst, tag->val, tag->val_len);
	dst[tag->val_len] = '\0';
	return dst[tag->val_len - 1] != '.';
}

/* Parses "simple" / "relaxed" from the c= tag (§3.5; default simple/simple). */
static int parse_canon(const struct dkim_tag *tag, bool *hrelaxed_r, bool *brelaxed_r)
{
	*hrelaxed_r = *brelaxed_r = false;
	if (tag == NULL)
		return 0;
	const uint8_t *slash = memchr(tag->val, '/', tag->val_len);
	size_t hlen = slash != NULL ? (size_t)(slash - tag->val) : tag->val_len;
	const uint8_t *bp = slash != NULL ? slash + 1 : NULL;
	size_t blen = slash != NULL ? tag->val_len - hlen - 1 : 0;

	if (hlen == 7 && memcmp(tag->val, "relaxed", 7) == 0)
		*hrelaxed_r = true;
	else if (!(hlen == 6 && memcmp(tag->val, "simple", 6) == 0))
		return -1;
	if (bp == NULL)
		return 0;
	if (blen == 7 && memcmp(bp, "relaxed", 7) == 0)
		*brelaxed_r = true;
	else if (!(blen == 6 && memcmp(bp, "simple", 6) == 0))
		return -1;
	return 0;
}

/* Splits h= at ':' (FWS allowed around it). -1 when empty, too long or without From. */
static int parse_h(const struct dkim_tag *tag, struct name_ref *names, size_t *n_r)
{
	size_t pos = 0, n = 0;
	bool from = false;

	while (pos <= tag->val_len) {
		const uint8_t *colon = memchr(tag->val + pos, ':', tag->val_len - pos);
		size_t end = colon != NULL ? (size_t)(colon - tag->val) : tag->val_len;
		size_t a = pos, b = end;
		while (a < b && is_fws(tag->val[a]))
			a++;
		while (b > a && is_fws(tag->val[b - 1]))
			b--;
		if (a == b || n == LIMIT_DKIM_H_TAG_FIELDS)
			return -1;
		names[n].p = (const char *)tag->val + a;
		names[n].len = b - a;
		from = from || (b - a == 4 && str_nieq(names[n].p, "from", 4));
		n++;
		if (colon == NULL)
			break;
		pos = end + 1;
	}
	*n_r = n;
	return from ? 0 : -1; /* §6.1.1: a signature not covering From is unacceptable */
}

static int parse_u64(const struct dkim_tag *tag, uint64_t *v_r)
{
	return tag != NULL && tag->val_len <= 20
		       ? str_to_u64((const char *)tag->val, tag->val_len, UINT64_MAX, v_r)
		       : -1;
}

/* RFC 6376 §3.6.1 key record -> public key. Sets *reason on failure. */
static EVP_PKEY *key_from_record(const struct buf *txt, bool want_ed25519, const char **reason,
				 bool *strict_r)
{
	struct dkim_tags t;
	const struct dkim_tag *v, *k, *h, *p, *s, *flags;
	EVP_PKEY *pkey = NULL;
	struct buf raw;

	*strict_r = false;
	if (tags_parse(txt->data, txt->len, &t) < 0) {
		*reason = "malformed key record";
		return NULL;
	}
	v = tag_find(&t, "v");
	k = tag_find(&t, "k");
	h = tag_find(&t, "h");
	p = tag_find(&t, "p");
	s = tag_find(&t, "s");
	flags = tag_find(&t, "t");
	if ((v != NULL && (!tag_is(v, "DKIM1") || v != &t.tag[0])) || p == NULL) {
		*reason = "malformed key record";
		return NULL;
	}
	if (p->val_len == 0) {
		*reason = "key revoked";
		return NULL;
	}
	bool ed = tag_is(k, "ed25519");
	if (k != NULL && !ed && !tag_is(k, "rsa")) {
		*reason = "unknown key type";
		return NULL;
	}
	if (ed != want_ed25519) {
		*reason = "key type does not match the algorithm";
		return NULL;
	}
	if (h != NULL) {
		struct name_ref hs[LIMIT_DKIM_H_TAG_FIELDS];
		size_t n = 0;
		bool sha256 = false;
		/* the h= of a key record has the same list syntax as a signature's h= */
		for (size_t pos = 0; pos <= h->val_len && n < ARRAY_LEN(hs);) {
			const uint8_t *c = memchr(h->val + pos, ':', h->val_len - pos);
			size_t end = c != NULL ? (size_t)(c - h->val) : h->val_len;
			size_t a = pos, b = end;
			while (a < b && is_fws(h->val[a]))
				a++;
			while (b > a && is_fws(h->val[b - 1]))
				b--;
			sha256 = sha256 || (b - a == 6 && memcmp(h->val + a, "sha256", 6) == 0);
			n++;
			if (c == NULL)
				break;
			pos = end + 1;
		}
		if (!sha256) {
			*reason = "key does not allow sha256";
			return NULL;
		}
	}
	if (s != NULL && !tag_is(s, "*") && !tag_is(s, "email")) {
		*reason = "key not for email";
		return NULL;
	}
	if (flags != NULL)
		for (size_t i = 0; i < flags->val_len; i++)
			if (flags->val[i] == 's' &&
			    (i == 0 || flags->val[i - 1] == ':' || is_fws(flags->val[i - 1])) &&
			    (i + 1 == flags->val_len || flags->val[i + 1] == ':' ||
			     is_fws(flags->val[i + 1])))
				*strict_r = true;
	buf_init(&raw);
	if (b64_decode_fws(p, &raw) < 0) {
		*reason = "malformed public key";
		goto out;
	}
	if (ed) {
		if (raw.len == 32)
			pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw.data, 32);
	} else if (raw.len <= LONG_MAX) {
		const uint8_t *q = raw.data;
		pkey = d2i_PUBKEY(NULL, &q, (long)raw.len);
		if (pkey == NULL) { /* some publish the bare PKCS#1 RSAPublicKey */
			q = raw.data;
			pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, (long)raw.len);
		}
		if (pkey != NULL &&
		    (!EVP_PKEY_is_a(pkey, "RSA") || EVP_PKEY_get_bits(pkey) < LIMIT_DKIM_RSA_BITS_MIN ||
		     EVP_PKEY_get_bits(pkey) > LIMIT_DKIM_RSA_BITS_MAX)) {
			EVP_PKEY_free(pkey);
			pkey = NULL;
			*reason = "RSA key size not acceptable";
			goto out;
		}
	}
	if (pkey == NULL)
		*reason = "malformed public key";
out:
	buf_free(&raw);
	return pkey;
}

static void verify_one(struct dkim_header *h, size_t idx, const uint8_t *msg, size_t len,
		       dkim_lookup_fn lookup, void *ctx, int64_t now, struct dkim_result *r)
{
	const struct dkim_field *f = &h->fields[idx];
	const uint8_t *colon = memchr(f->p, ':', f->len);
	size_t voff = (size_t)(colon - f->p) + 1;
	struct dkim_tags t;
	struct name_ref names[LIMIT_DKIM_H_TAG_FIELDS];
	size_t n_names = 0;
	bool hrel, brel, ed, strict;
	uint64_t l = UINT64_MAX, x = 0;
	struct buf bh, b, txt, sigf, data;
	EVP_PKEY *pkey = NULL;
	uint8_t hash[32];
	char name[340];

	memset(r, 0, sizeof(*r));
	r->status = DKIM_PERMERROR;
	buf_init(&bh);
	buf_init(&b);
	buf_init(&txt);
	buf_init(&sigf);
	buf_init(&data);
	if (tags_parse(f->p + voff, f->len - voff, &t) < 0) {
		r->reason = "malformed signature";
		goto out;
	}
	const struct dkim_tag *a = tag_find(&t, "a"), *tb = tag_find(&t, "b"),
			      *tbh = tag_find(&t, "bh"), *th = tag_find(&t, "h"),
			      *ti = tag_find(&t, "i"), *tl = tag_find(&t, "l"),
			      *tx = tag_find(&t, "x");
	if (!copy_name(tag_find(&t, "d"), r->domain, sizeof(r->domain)) ||
	    !copy_name(tag_find(&t, "s"), r->selector, sizeof(r->selector))) {
		r->reason = "missing or malformed d= or s=";
		goto out;
	}
	if (a != NULL && a->val_len < sizeof(r->algorithm)) {
		memcpy(r->algorithm, a->val, a->val_len);
		r->algorithm[a->val_len] = '\0';
	}
	if (!tag_is(tag_find(&t, "v"), "1") || tb == NULL || tbh == NULL || th == NULL) {
		r->reason = "missing required tag";
		goto out;
	}
	ed = tag_is(a, "ed25519-sha256");
	if (!ed && !tag_is(a, "rsa-sha256")) { /* RFC 8301 §3.1: rsa-sha1 is not accepted */
		r->reason = "unsupported algorithm";
		goto out;
	}
	if (parse_canon(tag_find(&t, "c"), &hrel, &brel) < 0) {
		r->reason = "unsupported canonicalization";
		goto out;
	}
	if (parse_h(th, names, &n_names) < 0) {
		r->reason = "h= is malformed or does not cover From";
		goto out;
	}
	if ((tl != NULL && parse_u64(tl, &l) < 0) || (tx != NULL && parse_u64(tx, &x) < 0)) {
		r->reason = "malformed l= or x=";
		goto out;
	}
	if (tx != NULL && x <= INT64_MAX && (int64_t)x < now) {
		r->status = DKIM_FAIL;
		r->reason = "signature expired";
		goto out;
	}
	/* §3.5 i=: its domain is d= or a subdomain of it */
	const uint8_t *at = ti != NULL ? memchr(ti->val, '@', ti->val_len) : NULL;
	size_t ilen = 0, dlen = strlen(r->domain);
	if (ti != NULL) {
		if (at == NULL) {
			r->reason = "malformed i=";
			goto out;
		}
		ilen = ti->val_len - (size_t)(at + 1 - ti->val);
		const char *idom = (const char *)at + 1;
		if (!(ilen == dlen && str_nieq(idom, r->domain, dlen)) &&
		    !(ilen > dlen && idom[ilen - dlen - 1] == '.' &&
		      str_nieq(idom + ilen - dlen, r->domain, dlen))) {
			r->reason = "i= is not within d=";
			goto out;
		}
	}
	if (b64_decode_fws(tbh, &bh) < 0 || bh.len != 32 || b64_decode_fws(tb, &b) < 0 ||
	    b.len == 0) {
		r->reason = "malformed b= or bh=";
		goto out;
	}

	snprintf(name, sizeof(name), "%s._domainkey.%s", r->selector, r->domain);
	int found = lookup(name, &txt, ctx);
	if (found < 0) {
		r->status = DKIM_TEMPERROR;
		r->reason = "key lookup failed";
		goto out;
	}
	if (found > 0 || txt.len > LIMIT_DKIM_KEY_RECORD) {
		r->reason = found > 0 ? "no key record" : "key record too large";
		goto out;
	}
	pkey = key_from_record(&txt, ed, &r->reason, &strict);
	if (pkey == NULL)
		goto out;
	if (strict && ti != NULL && ilen != dlen) {
		r->reason = "key requires i= to equal d=";
		goto out;
	}

	r->status = DKIM_FAIL;
	if (body_hash(msg + h->body_off, len - h->body_off, brel, l, hash) < 0 ||
	    !mem_equal_ct(hash, bh.data, 32)) {
		r->reason = "body hash mismatch";
		goto out;
	}
	/* §3.7: the signature field with the b= value (and the FWS around it) taken out */
	size_t cut_start = voff + tb->val_start, cut_end = voff + tb->val_end;
	buf_append(&sigf, f->p, cut_start);
	buf_append(&sigf, f->p + cut_end, f->len - cut_end);
	hash_header_data(h, names, n_names, hrel, sigf.data, sigf.len, &data);
	if (!verify_data(pkey, ed, data.data, data.len, b.data, b.len)) {
		r->reason = "signature mismatch";
		goto out;
	}
	r->status = DKIM_PASS;
	r->reason = "ok";
out:
	EVP_PKEY_free(pkey);
	buf_free(&bh);
	buf_free(&b);
	buf_free(&txt);
	buf_free(&sigf);
	buf_free(&data);
}

int dkim_verify(const uint8_t *msg, size_t len, dkim_lookup_fn lookup, void *ctx, int64_t now,
		struct dkim_result *results_r, size_t max)
{
	struct dkim_header h;
	size_t n = 0;

	if (header_parse(msg, len, &h) < 0)
		return -1;
	if (max > LIMIT_DKIM_SIGNATURES)
		max = LIMIT_DKIM_SIGNATURES;
	for (size_t i = 0; i < h.count && n < max; i++)
		if (field_is(&h.fields[i], "dkim-signature", 14))
			verify_one(&h, i, msg, len, lookup, ctx, now, &results_r[n++]);
	free(h.fields);
	return (int)n;
}
