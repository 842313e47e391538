/* Server TLS contexts. Policy: TLS 1.2 and newer, OpenSSL's default cipher lists (which Debian
 * keeps at a sane security level), server cipher preference, no compression, no renegotiation,
 * session tickets on for cheap resumption. */
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

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

static SSL_CTX *tls_build_ctx(const char *cert, const char *key, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		tls_error_text(err, errlen, "cannot create TLS context for", cert);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* idle connections hold no TLS buffers */
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		tls_error_text(err, errlen, "cannot load certificate", cert);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		tls_error_text(err, errlen, "cannot load private key", key);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_error_text(err, errlen, "private key does not match certificate", cert);
		SSL_CTX_free(ctx);
		return NULL;
	}
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

int tls_context_reload(struct tls_context *ctx, char *err, size_t errlen)
{
	SSL_CTX *fresh = tls_build_ctx(ctx->cert_path, ctx->key_path, err, errlen);
	SSL_CTX *old;

	if (fresh == NULL)
		return -1;
	pthread_mutex_lock(&ctx->lock);
	old = ctx->current;
	ctx->current = fresh;
	pthread_mutex_unlock(&ctx->lock);
	SSL_CTX_free(old); /* live SSL objects keep their own reference */
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
