/* What each path answers. Only these exist; everything else is 404 and nothing is read from
 * disk:
 *   /metrics                                        Prometheus text format 0.0.4
 *   /mail/config-v1.1.xml?emailaddress=A            Thunderbird autoconfig (also under
 *   /.well-known/autoconfig/mail/config-v1.1.xml     /.well-known/autoconfig/)
 *   POST /autodiscover/autodiscover.xml             Outlook Autodiscover (POX)
 *   /apple/mobileconfig?emailaddress=A              Apple configuration profile
 * An address whose domain is not ours gets 404, so the server tells nobody which other
 * domains it would configure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "http.h"
#include "http_internal.h"

static void reply(struct evhttp_request *req, int code, const char *reason,
		  const char *content_type, const struct buf *body)
{
	struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
	struct evbuffer *out = evbuffer_new();

	if (out == NULL)
		abort();
	evhttp_add_header(headers, "Content-Type", content_type);
	evhttp_add_header(headers, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(headers, "Cache-Control", "no-store");
	if (body != NULL && body->len > 0)
		evbuffer_add(out, body->data, body->len);
	evhttp_send_reply(req, code, reason, out);
	evbuffer_free(out);
}

static void reply_text(struct evhttp_request *req, int code, const char *reason)
{
	struct buf b;

	buf_init(&b);
	buf_printf(&b, "%d %s\n", code, reason);
	reply(req, code, reason, "text/plain; charset=utf-8", &b);
	buf_free(&b);
}

static bool is_get(struct evhttp_request *req)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	return cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;
}

static void serve_metrics(const struct http_hooks *hooks, struct evhttp_request *req)
{
	struct buf b;

	if (hooks->before_scrape != NULL)
		hooks->before_scrape(hooks->ctx);
	buf_init(&b);
	metrics_format(&b);
	reply(req, HTTP_OK, "OK", "text/plain; version=0.0.4; charset=utf-8", &b);
	buf_free(&b);
}

/* The address a request names, checked, with its domain ours. 0, or -1 after replying. */
static int our_address(const struct http_hooks *hooks, struct evhttp_request *req, int found,
		       char *address, const char **domain_r)
{
	if (found <= 0 || !http_address_parse(address, domain_r)) {
		reply_text(req, HTTP_BADREQUEST, "Bad Request");
		return -1;
	}
	if (hooks->local_domain == NULL || !hooks->local_domain(hooks->ctx, *domain_r)) {
		reply_text(req, HTTP_NOTFOUND, "Not Found");
		return -1;
	}
	return 0;
}

static int query_address(struct evhttp_request *req, char *address, size_t len)
{
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));

	if (query == NULL)
		return 0;
	return http_query_value(query, strlen(query), "emailaddress", address, len);
}

typedef void (*document_fn)(struct buf *out, const struct http_mail_ports *ports,
			    const char *address, const char *domain);

static void serve_document(const struct config *cfg, const struct http_hooks *hooks,
			   struct evhttp_request *req, document_fn generate,
			   const char *content_type)
{
	char address[LIMIT_HTTP_ADDRESS + 1];
	const char *domain;
	struct http_mail_ports ports;
	struct buf b;

	if (our_address(hooks, req, query_address(req, address, sizeof(address)), address,
			&domain) < 0)
		return;
	http_mail_ports_from_config(cfg, &ports);
	buf_init(&b);
	generate(&b, &ports, address, domain);
	if (strcmp(content_type, "application/x-apple-aspen-config") == 0) {
		char disposition[300];

		/* the domain passed http_address_parse: letters, digits, '-' and '.' only */
		snprintf(disposition, sizeof(disposition),
			 "attachment; filename=\"%s.mobileconfig\"", domain);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Disposition",
				  disposition);
	}
	reply(req, HTTP_OK, "OK", content_type, &b);
	buf_free(&b);
}

static void serve_autodiscover(const struct config *cfg, const struct http_hooks *hooks,
			       struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	char address[LIMIT_HTTP_ADDRESS + 1];
	const char *domain;
	struct http_mail_ports ports;
	struct buf b;

	/* evhttp refused bodies over LIMIT_HTTP_BODY already; the check keeps the bound here */
	const uint8_t *body = len > 0 && len <= LIMIT_HTTP_BODY ? evbuffer_pullup(in, -1) : NULL;
	int found = body != NULL ? http_autodiscover_address(body, len, address, sizeof(address))
				 : 0;

	if (our_address(hooks, req, found, address, &domain) < 0)
		return;
	http_mail_ports_from_config(cfg, &ports);
	buf_init(&b);
	http_autodiscover_xml(&b, &ports, address);
	reply(req, HTTP_OK, "OK", "application/xml; charset=utf-8", &b);
	buf_free(&b);
}

void http_route(const struct config *cfg, const struct http_hooks *hooks, bool metrics_only,
		struct evhttp_request *req)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;

	if (path == NULL) {
		reply_text(req, HTTP_BADREQUEST, "Bad Request");
	} else if (strcmp(path, "/metrics") == 0 && is_get(req)) {
		serve_metrics(hooks, req);
	} else if (metrics_only) {
		reply_text(req, HTTP_NOTFOUND, "Not Found");
	} else if ((strcmp(path, "/mail/config-v1.1.xml") == 0 ||
		    strcmp(path, "/.well-known/autoconfig/mail/config-v1.1.xml") == 0) &&
		   is_get(req)) {
		serve_document(cfg, hooks, req, http_autoconfig_xml, "application/xml; charset=utf-8");
	} else if (strcasecmp(path, "/autodiscover/autodiscover.xml") == 0 &&
		   evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
		serve_autodiscover(cfg, hooks, req);
	} else if (strcmp(path, "/apple/mobileconfig") == 0 && is_get(req)) {
		serve_document(cfg, hooks, req, http_mobileconfig, "application/x-apple-aspen-config");
	} else {
		reply_text(req, HTTP_NOTFOUND, "Not Found");
	}
}
