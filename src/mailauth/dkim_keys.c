/* DKIM keys: the per-domain key files and their selectors, the TXT records that publish
 * them, the signer built from them, and the public-key operations on the header data (RFC 6376
 * §3.7 with rsa-sha256, RFC 8463 §3 with ed25519-sha256). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
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

#include "dkim_internal.h"

int dkim_sign_data(const struct dkim_key *key, const uint8_t *data, size_t len,
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

bool dkim_verify_data(EVP_PKEY *pkey, bool ed25519, const uint8_t *data, size_t len,
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
		err_setf(err, errlen, "invalid domain name for DKIM: %s", domain);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		char c = domain[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.')) {
			err_setf(err, errlen, "invalid domain name for DKIM: %s", domain);
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
		err_setf(err, errlen, "cannot create %s: %s", path, strerror(errno));
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
		err_setf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
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
			err_setf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
			goto out;
		}
		p += n;
		left -= (size_t)n;
	}
	if (fsync(fd) < 0) {
		err_setf(err, errlen, "cannot sync %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, path) < 0) {
		err_setf(err, errlen, "cannot rename %s: %s", tmp, strerror(errno));
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
		err_setf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (out->len + n > max) {
			fclose(f);
			err_setf(err, errlen, "%s is too large", path);
			return -1;
		}
		buf_append(out, chunk, n);
	}
	bool bad = ferror(f) != 0;
	fclose(f);
	if (bad) {
		err_setf(err, errlen, "cannot read %s", path);
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
		err_setf(err, errlen, "cannot encode the key for %s", path);
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
				err_setf(err, errlen, "cannot generate a DKIM key");
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
		err_setf(err, errlen, "key file too large");
		return NULL;
	}
	mem = BIO_new_mem_buf(pem, (int)len);
	if (mem == NULL)
		abort();
	pkey = PEM_read_bio_PrivateKey(mem, NULL, NULL, NULL);
	BIO_free(mem);
	if (pkey == NULL) {
		err_setf(err, errlen, "not a PEM private key");
		return NULL;
	}
	if (EVP_PKEY_is_a(pkey, "ED25519")) {
		*ed25519_r = true;
	} else if (EVP_PKEY_is_a(pkey, "RSA") && EVP_PKEY_get_bits(pkey) >= LIMIT_DKIM_RSA_BITS_MIN &&
		   EVP_PKEY_get_bits(pkey) <= LIMIT_DKIM_RSA_BITS_MAX) {
		*ed25519_r = false;
	} else {
		err_setf(err, errlen, "a DKIM key must be Ed25519 or RSA of 1024 to 8192 bits");
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
		err_setf(err, errlen, "at most %d DKIM keys per signer", DKIM_MAX_KEYS);
		return -1;
	}
	if (!selector_ok(selector)) {
		err_setf(err, errlen, "invalid DKIM selector: %s", selector);
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
		err_setf(err, errlen, "%s: %s", path, inner);
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
		err_setf(err, errlen, "no DKIM keys in %s", dir);
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
				err_setf(err, errlen, "cannot read the Ed25519 public key");
				buf_free(&raw);
				goto out;
			}
			raw.len = n;
		} else {
			int n = i2d_PUBKEY(k->pkey, NULL);
			if (n <= 0) {
				err_setf(err, errlen, "cannot encode the RSA public key");
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

