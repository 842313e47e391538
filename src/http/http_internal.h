/* Private to http/: the request parsing written here (query strings, Autodiscover bodies,
 * addresses) and the generators of the autoconfiguration documents, apart from the server so
 * that unit tests and the fuzzer drive them without a socket. */
#ifndef ROOST_HTTP_INTERNAL_H
#define ROOST_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"
#include "../core/core.h"

/* The value of the first NAME=VALUE pair of a query string (without the '?'),
 * percent-decoded ('+' is a space), NUL-terminated in out. 1 when found, 0 when absent, -1
 * when the value does not fit, has a bad escape or decodes to a NUL. */
int http_query_value(const char *query, size_t query_len, const char *name, char *out,
		     size_t outlen);

/* A plain address LOCAL@DOMAIN: a dot-atom local part (RFC 5322 §3.2.3), a domain of
 * letters, digits, hyphens and dots, at most LIMIT_HTTP_ADDRESS octets. On success the
 * domain is lower-cased in place and *domain_r points into address. */
bool http_address_parse(char *address, const char **domain_r);

/* The text of the EMailAddress element of an Autodiscover request (POX, any namespace
 * prefix), surrounding white space removed. 1 when found, 0 when absent, -1 when it does not
 * fit in out. */
int http_autodiscover_address(const uint8_t *body, size_t len, char *out, size_t outlen);

/* What the documents advertise, from the config: a port is 0 when its listener is off. */
struct http_mail_ports {
	const char *hostname;
	uint16_t imap, imaps, pop3, pop3s, submission, submissions;
};
void http_mail_ports_from_config(const struct config *cfg, struct http_mail_ports *ports_r);

/* Appends text with &, <, >, " and ' escaped for XML. */
void http_xml_escape(struct buf *out, const char *text);

/* Thunderbird's autoconfig (config-v1.1.xml) for an address of domain. */
void http_autoconfig_xml(struct buf *out, const struct http_mail_ports *ports,
			 const char *address, const char *domain);
/* Microsoft Autodiscover POX response (Outlook "responseschema/2006a"). */
void http_autodiscover_xml(struct buf *out, const struct http_mail_ports *ports,
			   const char *address);
/* An unsigned Apple configuration profile (plist XML) with one mail account. */
void http_mobileconfig(struct buf *out, const struct http_mail_ports *ports, const char *address,
		       const char *domain);

/* ---- the server side (route.c, server.c) ---- */
struct evhttp_request;
struct bufferevent;
struct http_hooks;
struct http_server;

/* Answers one complete request: /metrics, and unless metrics_only the autoconfiguration
 * paths; 404 for anything else. */
void http_route(const struct config *cfg, const struct http_hooks *hooks, bool metrics_only,
		struct evhttp_request *req);
void http_server_request_done(struct http_server *srv, struct bufferevent *bev);

#endif
