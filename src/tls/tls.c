/* Server TLS contexts. Policy: TLS 1.2 and newer, OpenSSL's default cipher lists (which Debian
 * keeps at a sane security level), server cipher preference, no compression, no renegotiation,
 * session tickets on for cheap resumption. */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "tls.h"

struct tls_context {
	pthread_mutex_t lock; /* guards current against a concurrent reload */
	SSL_CTX *current;
	char *cert_path;
	char *key_path;
};

static void tls_error_text(char *err, size_t errlen, const char *what, const char *path)
{
	unsigned long code = ERR_get_error();
	char detail[256] = "unknown error";

	if (code != 0)
		ERR_error_string_n(code, detail, sizeof(detail));
	ERR_clear_error();
	snprintf(err, errlen, "%s '%s': %s", what, path, detail);
}

/* A server context with the policy above and no certificate yet. */
static SSL_CTX *tls_policy_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
		abort(); /* only fails on allocation */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* idle connections hold no TLS buffers */
	return ctx;
}

/* The leaf certificate, then every further certificate of the PEM text as its chain. */
static int tls_use_chain_pem(SSL_CTX *ctx, const struct tls_pem *cert)
{
	BIO *bio = BIO_new_mem_buf(cert->data, (int)cert->len);
	X509 *x;
	int ok = 0;

	if (bio == NULL)
		abort();
	x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
	if (x != NULL && SSL_CTX_use_certificate(ctx, x) == 1 && SSL_CTX_clear_chain_certs(ctx) == 1) {
		X509 *ca;
		ok = 1;
		while ((ca = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
			if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
				X509_free(ca);
				ok = 0;
				break;
			}
		}
		/* The loop ends at the end of the text, which OpenSSL reports as an error. */
		unsigned long last = ERR_peek_last_error();
		if (ok && ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE)
			ERR_clear_error();
	}
	X509_free(x);
	BIO_free(bio);
	return ok;
}

static int tls_use_key_pem(SSL_CTX *ctx, const struct tls_pem *key)
{
	BIO *bio = BIO_new_mem_buf(key->data, (int)key->len);
	EVP_PKEY *pkey;
	int ok;

	if (bio == NULL)
		abort();
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	ok = pkey != NULL && SSL_CTX_use_PrivateKey(ctx, pkey) == 1;
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	return ok;
}

static SSL_CTX *tls_build_ctx_pem(const struct tls_pem *cert, const struct tls_pem *key,
				  const char *cert_name, const char *key_name, char *err,
				  size_t errlen)
{
	SSL_CTX *ctx = tls_policy_ctx();

	if (!tls_use_chain_pem(ctx, cert)) {
		tls_error_text(err, errlen, "cannot load certificate", cert_name);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (!tls_use_key_pem(ctx, key)) {
		tls_error_text(err, errlen, "cannot load private key", key_name);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_error_text(err, errlen, "private key does not match certificate", cert_name);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int tls_pem_read(const char *path, struct tls_pem *out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[4096];
	size_t n;

	out->data = NULL;
	out->len = 0;
	if (f == NULL) {
		snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
		return -1;
	}
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (b.len + n > TLS_PEM_MAX) {
			snprintf(err, errlen, "'%s' is larger than %d octets", path, TLS_PEM_MAX);
			fclose(f);
			buf_free(&b);
			return -1;
		}
		buf_append(&b, chunk, n);
	}
	if (ferror(f)) {
		snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
		fclose(f);
		buf_free(&b);
		return -1;
	}
	fclose(f);
	buf_cstr(&b);
	out->data = (char *)b.data;
	out->len = b.len;
	return 0;
}

void tls_pem_free(struct tls_pem *pem)
{
	if (pem->data != NULL)
		OPENSSL_cleanse(pem->data, pem->len);
	free(pem->data);
	pem->data = NULL;
	pem->len = 0;
}

/* Reads both files and builds a context from them (the keys never live longer than this). */
static SSL_CTX *tls_build_ctx(const char *cert, const char *key, char *err, size_t errlen)
{
	struct tls_pem cert_pem, key_pem;
	SSL_CTX *ctx = NULL;

	if (tls_pem_read(cert, &cert_pem, err, errlen) < 0)
		return NULL;
	if (tls_pem_read(key, &key_pem, err, errlen) == 0) {
		ctx = tls_build_ctx_pem(&cert_pem, &key_pem, cert, key, err, errlen);
		tls_pem_free(&key_pem);
	}
	tls_pem_free(&cert_pem);
	return ctx;
}

struct tls_context *tls_context_new(const char *cert_path, const char *key_path, char *err,
				    size_t errlen)
{
	SSL_CTX *ssl_ctx = tls_build_ctx(cert_path, key_path, err, errlen);
	struct tls_context *ctx;

	if (ssl_ctx == NULL)
		return NULL;
	ctx = xcalloc(1, sizeof(*ctx));
	pthread_mutex_init(&ctx->lock, NULL);
	ctx->current = ssl_ctx;
	ctx->cert_path = xstrdup(cert_path);
	ctx->key_path = xstrdup(key_path);
	return ctx;
}

static void tls_context_swap(struct tls_context *ctx, SSL_CTX *fresh)
{
	SSL_CTX *old;

	pthread_mutex_lock(&ctx->lock);
	old = ctx->current;
	ctx->current = fresh;
	pthread_mutex_unlock(&ctx->lock);
	SSL_CTX_free(old); /* live SSL objects keep their own reference */
}

int tls_context_reload(struct tls_context *ctx, char *err, size_t errlen)
{
	SSL_CTX *fresh = tls_build_ctx(ctx->cert_path, ctx->key_path, err, errlen);

	if (fresh == NULL)
		return -1;
	tls_context_swap(ctx, fresh);
	return 0;
}

int tls_context_reload_pem(struct tls_context *ctx, const struct tls_pem *cert,
			   const struct tls_pem *key, char *err, size_t errlen)
{
	SSL_CTX *fresh = tls_build_ctx_pem(cert, key, ctx->cert_path, ctx->key_path, err, errlen);

	if (fresh == NULL)
		return -1;
	tls_context_swap(ctx, fresh);
	return 0;
}

SSL *tls_context_new_ssl(struct tls_context *ctx)
{
	SSL *ssl;

	pthread_mutex_lock(&ctx->lock);
	ssl = SSL_new(ctx->current);
	pthread_mutex_unlock(&ctx->lock);
	if (ssl == NULL)
		abort(); /* only fails on allocation */
	return ssl;
}

void tls_context_free(struct tls_context **ctx)
{
	if (ctx == NULL || *ctx == NULL)
		return;
	SSL_CTX_free((*ctx)->current);
	pthread_mutex_destroy(&(*ctx)->lock);
	free((*ctx)->cert_path);
	free((*ctx)->key_path);
	free(*ctx);
	*ctx = NULL;
}

const char *tls_ssl_version(const SSL *ssl)
{
	return SSL_get_version(ssl);
}

const char *tls_ssl_cipher(const SSL *ssl)
{
	return SSL_get_cipher_name(ssl);
}

SSL_CTX *tls_client_context_new(bool verify, const char *ca_file)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		abort();
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	if (!verify) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return ctx;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (ca_file != NULL && ca_file[0] != '\0' ? SSL_CTX_load_verify_locations(ctx, ca_file,
										 NULL) != 1
						   : SSL_CTX_set_default_verify_paths(ctx) != 1) {
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int tls_client_expect_name(SSL *ssl, const char *name)
{
	X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
	unsigned char addr[16];

	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(param, name) == 1 ? 0 : -1;
	return SSL_set1_host(ssl, name) == 1 ? 0 : -1;
}

void tls_client_context_free(SSL_CTX **ctx)
{
	if (ctx == NULL || *ctx == NULL)
		return;
	SSL_CTX_free(*ctx);
	*ctx = NULL;
}
