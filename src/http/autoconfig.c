/* The mail client autoconfiguration documents, generated from the config for one address:
 * Thunderbird's config-v1.1.xml, Microsoft's Autodiscover POX response and an Apple
 * configuration profile. Each lists what is on: implicit TLS first (RFC 8314 §3 prefers it),
 * then STARTTLS; a protocol whose listeners are off is left out. Every value that came from
 * the request (the address, its domain) goes through http_xml_escape. */
#include <stdio.h>
#include <string.h>

#include "http_internal.h"

static uint16_t first_port(const struct config *cfg, enum listen_kind kind)
{
	return cfg->listen[kind].count > 0 ? cfg->listen[kind].addrs[0].port : 0;
}

void http_mail_ports_from_config(const struct config *cfg, struct http_mail_ports *ports_r)
{
	*ports_r = (struct http_mail_ports){
		.hostname = cfg->hostname,
		.imap = first_port(cfg, LISTEN_IMAP),
		.imaps = first_port(cfg, LISTEN_IMAPS),
		.pop3 = first_port(cfg, LISTEN_POP3),
		.pop3s = first_port(cfg, LISTEN_POP3S),
		.submission = first_port(cfg, LISTEN_SUBMISSION),
		.submissions = first_port(cfg, LISTEN_SUBMISSIONS),
	};
}

void http_xml_escape(struct buf *out, const char *text)
{
	for (const char *p = text; *p != '\0'; p++) {
		switch (*p) {
		case '&': buf_append_str(out, "&amp;"); break;
		case '<': buf_append_str(out, "&lt;"); break;
		case '>': buf_append_str(out, "&gt;"); break;
		case '"': buf_append_str(out, "&quot;"); break;
		case '\'': buf_append_str(out, "&apos;"); break;
		default: buf_append_byte(out, (uint8_t)*p); break;
		}
	}
}

/* One server of a document: its kind, port and whether TLS is implicit. */
struct mail_endpoint {
	const char *type; /* "imap", "pop3", "smtp" */
	uint16_t port;
	bool implicit_tls;
};

/* The servers to advertise, best first: implicit TLS, then STARTTLS, per protocol. */
static size_t mail_endpoints(const struct http_mail_ports *p, struct mail_endpoint *out)
{
	const struct mail_endpoint all[] = {
		{ "imap", p->imaps, true },	  { "imap", p->imap, false },
		{ "pop3", p->pop3s, true },	  { "pop3", p->pop3, false },
		{ "smtp", p->submissions, true }, { "smtp", p->submission, false },
	};
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_LEN(all); i++)
		if (all[i].port != 0)
			out[n++] = all[i];
	return n;
}

/* ---- Thunderbird: https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat */

static void autoconfig_server(struct buf *out, const struct http_mail_ports *p,
			      const struct mail_endpoint *e)
{
	bool outgoing = strcmp(e->type, "smtp") == 0;

	buf_printf(out, "    <%s type=\"%s\">\n", outgoing ? "outgoingServer" : "incomingServer",
		   e->type);
	buf_append_str(out, "      <hostname>");
	http_xml_escape(out, p->hostname);
	buf_printf(out, "</hostname>\n      <port>%u</port>\n", (unsigned)e->port);
	buf_printf(out, "      <socketType>%s</socketType>\n", e->implicit_tls ? "SSL" : "STARTTLS");
	buf_append_str(out, "      <authentication>password-cleartext</authentication>\n"
			    "      <username>%EMAILADDRESS%</username>\n");
	buf_printf(out, "    </%s>\n", outgoing ? "outgoingServer" : "incomingServer");
}

void http_autoconfig_xml(struct buf *out, const struct http_mail_ports *ports,
			 const char *address, const char *domain)
{
	struct mail_endpoint e[6];
	size_t n = mail_endpoints(ports, e);

	(void)address; /* the document names the user with the %EMAILADDRESS% placeholder */
	buf_append_str(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			    "<clientConfig version=\"1.1\">\n  <emailProvider id=\"");
	http_xml_escape(out, domain);
	buf_append_str(out, "\">\n    <domain>");
	http_xml_escape(out, domain);
	buf_append_str(out, "</domain>\n    <displayName>");
	http_xml_escape(out, domain);
	buf_append_str(out, "</displayName>\n    <displayShortName>");
	http_xml_escape(out, domain);
	buf_append_str(out, "</displayShortName>\n");
	for (size_t i = 0; i < n; i++) /* incoming first, as the format asks */
		if (strcmp(e[i].type, "smtp") != 0)
			autoconfig_server(out, ports, &e[i]);
	for (size_t i = 0; i < n; i++)
		if (strcmp(e[i].type, "smtp") == 0)
			autoconfig_server(out, ports, &e[i]);
	buf_append_str(out, "  </emailProvider>\n</clientConfig>\n");
}

/* ---- Microsoft Autodiscover (POX, [MS-OXDSCLI]) ---- */

static void autodiscover_protocol(struct buf *out, const struct http_mail_ports *p,
				  const struct mail_endpoint *e, const char *address)
{
	const char *type = strcmp(e->type, "imap") == 0	  ? "IMAP"
			   : strcmp(e->type, "pop3") == 0 ? "POP3"
							  : "SMTP";

	buf_printf(out, "      <Protocol>\n        <Type>%s</Type>\n        <Server>", type);
	http_xml_escape(out, p->hostname);
	buf_printf(out, "</Server>\n        <Port>%u</Port>\n        <LoginName>", (unsigned)e->port);
	http_xml_escape(out, address);
	/* Encryption SSL = TLS from the first byte; TLS = STARTTLS */
	buf_printf(out, "</LoginName>\n        <SPA>off</SPA>\n        <Encryption>%s</Encryption>\n"
			"        <AuthRequired>on</AuthRequired>\n      </Protocol>\n",
		   e->implicit_tls ? "SSL" : "TLS");
}

void http_autodiscover_xml(struct buf *out, const struct http_mail_ports *ports,
			   const char *address)
{
	struct mail_endpoint e[6];
	size_t n = mail_endpoints(ports, e);
	bool seen_imap = false, seen_pop3 = false, seen_smtp = false;

	buf_append_str(out,
		       "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
		       "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/"
		       "responseschema/2006\">\n"
		       "  <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/"
		       "outlook/responseschema/2006a\">\n"
		       "    <Account>\n      <AccountType>email</AccountType>\n"
		       "      <Action>settings</Action>\n");
	/* Outlook takes one Protocol per Type: the best of each. */
	for (size_t i = 0; i < n; i++) {
		bool *seen = strcmp(e[i].type, "imap") == 0   ? &seen_imap
			     : strcmp(e[i].type, "pop3") == 0 ? &seen_pop3
							      : &seen_smtp;
		if (*seen)
			continue;
		*seen = true;
		autodiscover_protocol(out, ports, &e[i], address);
	}
	buf_append_str(out, "    </Account>\n  </Response>\n</Autodiscover>\n");
}

/* ---- Apple configuration profile (Configuration Profile Reference, com.apple.mail.managed) */

/* A UUID derived from text (FNV-1a, 128 bits from two seeds), so that fetching the profile
 * again gives the same identifiers and installing it replaces the earlier one. */
static void stable_uuid(const char *salt, const char *text, char out[37])
{
	uint64_t h[2] = { 0xcbf29ce484222325ull, 0x84222325cbf29ce4ull };

	for (int k = 0; k < 2; k++) {
		for (const char *p = salt; *p != '\0'; p++)
			h[k] = (h[k] ^ (uint8_t)*p) * 0x100000001b3ull;
		for (const char *p = text; *p != '\0'; p++)
			h[k] = (h[k] ^ (uint8_t)*p) * 0x100000001b3ull;
	}
	snprintf(out, 37, "%08X-%04X-4%03X-%04X-%012llX", (unsigned)(h[0] >> 32),
		 (unsigned)((h[0] >> 16) & 0xffff), (unsigned)(h[0] & 0xfff),
		 (unsigned)(0x8000 | ((h[1] >> 48) & 0x3fff)),
		 (unsigned long long)(h[1] & 0xffffffffffffull));
}

static void plist_string(struct buf *out, const char *key, const char *value)
{
	buf_printf(out, "\t\t\t<key>%s</key>\n\t\t\t<string>", key);
	http_xml_escape(out, value);
	buf_append_str(out, "</string>\n");
}

static void plist_int(struct buf *out, const char *key, unsigned value)
{
	buf_printf(out, "\t\t\t<key>%s</key>\n\t\t\t<integer>%u</integer>\n", key, value);
}

static void plist_bool(struct buf *out, const char *key, bool value)
{
	buf_printf(out, "\t\t\t<key>%s</key>\n\t\t\t<%s/>\n", key, value ? "true" : "false");
}

/* The best endpoint of a type, or NULL. */
static const struct mail_endpoint *best_of(const struct mail_endpoint *e, size_t n,
					   const char *type)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(e[i].type, type) == 0)
			return &e[i];
	return NULL;
}

static void mobileconfig_account(struct buf *out, const struct http_mail_ports *p,
				 const char *address, const char *domain)
{
	struct mail_endpoint e[6];
	size_t n = mail_endpoints(p, e);
	const struct mail_endpoint *in = best_of(e, n, "imap");
	const struct mail_endpoint *smtp = best_of(e, n, "smtp");
	char uuid[37];

	if (in == NULL)
		in = best_of(e, n, "pop3");
	buf_append_str(out, "\t\t<dict>\n");
	plist_string(out, "EmailAccountDescription", address);
	plist_string(out, "EmailAccountType",
		     in != NULL && strcmp(in->type, "pop3") == 0 ? "EmailTypePOP" : "EmailTypeIMAP");
	plist_string(out, "EmailAddress", address);
	if (in != NULL) {
		plist_string(out, "IncomingMailServerAuthentication", "EmailAuthPassword");
		plist_string(out, "IncomingMailServerHostName", p->hostname);
		plist_int(out, "IncomingMailServerPortNumber", in->port);
		/* true for STARTTLS too: the client then requires TLS on that port */
		plist_bool(out, "IncomingMailServerUseSSL", true);
		plist_string(out, "IncomingMailServerUsername", address);
	}
	if (smtp != NULL) {
		plist_string(out, "OutgoingMailServerAuthentication", "EmailAuthPassword");
		plist_string(out, "OutgoingMailServerHostName", p->hostname);
		plist_int(out, "OutgoingMailServerPortNumber", smtp->port);
		plist_bool(out, "OutgoingMailServerUseSSL", true);
		plist_string(out, "OutgoingMailServerUsername", address);
		plist_bool(out, "OutgoingPasswordSameAsIncomingPassword", true);
	}
	plist_string(out, "PayloadDescription", "Mail account");
	plist_string(out, "PayloadDisplayName", address);
	buf_append_str(out, "\t\t\t<key>PayloadIdentifier</key>\n\t\t\t<string>mail.");
	http_xml_escape(out, domain);
	buf_append_str(out, ".account</string>\n");
	plist_string(out, "PayloadType", "com.apple.mail.managed");
	stable_uuid("account", address, uuid);
	plist_string(out, "PayloadUUID", uuid);
	plist_int(out, "PayloadVersion", 1);
	buf_append_str(out, "\t\t</dict>\n");
}

void http_mobileconfig(struct buf *out, const struct http_mail_ports *ports, const char *address,
		       const char *domain)
{
	char uuid[37];

	buf_append_str(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			    "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
			    "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
			    "<plist version=\"1.0\">\n<dict>\n\t<key>PayloadContent</key>\n"
			    "\t<array>\n");
	mobileconfig_account(out, ports, address, domain);
	buf_append_str(out, "\t</array>\n\t<key>PayloadDisplayName</key>\n\t<string>");
	http_xml_escape(out, address);
	buf_append_str(out, "</string>\n\t<key>PayloadIdentifier</key>\n\t<string>mail.");
	http_xml_escape(out, domain);
	buf_append_str(out, "</string>\n\t<key>PayloadType</key>\n\t<string>Configuration</string>\n");
	stable_uuid("profile", address, uuid);
	buf_printf(out, "\t<key>PayloadUUID</key>\n\t<string>%s</string>\n", uuid);
	buf_append_str(out, "\t<key>PayloadVersion</key>\n\t<integer>1</integer>\n</dict>\n</plist>\n");
}
