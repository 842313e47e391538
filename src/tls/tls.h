/* TLS policy and certificates: the only place that configures OpenSSL. A tls_context holds the
 * server SSL_CTX; tls_context_reload swaps in freshly read certificate files (SIGHUP) while
 * connections that already hold an SSL keep the old context alive through its refcount. */
#ifndef ROOST_TLS_H
#define ROOST_TLS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ssl_st SSL;
struct tls_context;

/* Loads cert (PEM chain) and key. Returns NULL with a reason in err on failure. */
struct tls_context *tls_context_new(const char *cert_path, const char *key_path, char *err,
				    size_t errlen);
/* Re-reads the same files; on failure the old certificate stays in use and err says why. */
int tls_context_reload(struct tls_context *ctx, char *err, size_t errlen);

/* PEM text of a certificate chain or a key, read by a process that may read the files (a
 * privileged parent) and handed to one that may not. */
#define TLS_PEM_MAX (1024 * 1024)
struct tls_pem {
	char *data; /* NUL-terminated; tls_pem_free wipes and frees it */
	size_t len;
};
int tls_pem_read(const char *path, struct tls_pem *out, char *err, size_t errlen);
void tls_pem_free(struct tls_pem *pem);
/* As tls_context_reload, from text instead of the files (same policy, same checks). */
int tls_context_reload_pem(struct tls_context *ctx, const struct tls_pem *cert,
			   const struct tls_pem *key, char *err, size_t errlen);
/* A new server-side SSL object using the current certificate; caller owns it (SSL_free). */
SSL *tls_context_new_ssl(struct tls_context *ctx);
void tls_context_free(struct tls_context **ctx);

/* A client context for outbound SMTP, TLS 1.2+. Without verify it is opportunistic (RFC 7435):
 * the peer's certificate is not checked, since MX certificates rarely match and a failed check
 * would only make us fall back to clear text. With verify (a smarthost we give a password to)
 * the chain must lead to a CA of ca_file, or of the system's store when ca_file is NULL or
 * empty; the name is checked per connection (tls_client_expect_name). NULL when ca_file cannot
 * be read. Caller frees with tls_client_context_free. */
typedef struct ssl_ctx_st SSL_CTX;
SSL_CTX *tls_client_context_new(bool verify, const char *ca_file);
/* Makes the handshake of ssl fail unless the certificate is valid for name (a host name or a
 * numeric address). */
int tls_client_expect_name(SSL *ssl, const char *name);
void tls_client_context_free(SSL_CTX **ctx);

/* Protocol and cipher of an established connection, for logs and Received: headers. */
const char *tls_ssl_version(const SSL *ssl);
const char *tls_ssl_cipher(const SSL *ssl);

#endif
