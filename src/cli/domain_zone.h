/* The DNS records a domain served by this server should have (`roost domain dns` prints them,
 * `roost domain check` compares them with what DNS answers): one list, built from the config
 * and the domain's DKIM keys, so the two commands can never disagree about what is expected.
 * Private to cli/. */
#ifndef ROOST_CLI_DOMAIN_ZONE_H
#define ROOST_CLI_DOMAIN_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"
#include "../core/core.h"
#include "../dns/dns.h"

/* How `domain check` judges what it finds for a record. */
enum zone_match {
	ZONE_MATCH_HOST,    /* MX, CNAME, SRV (with port), A/AAAA: the same host or address */
	ZONE_MATCH_SPF,	    /* the expected mechanisms are there, with their qualifiers */
	ZONE_MATCH_DKIM,    /* the same p= key */
	ZONE_MATCH_DMARC,   /* v= and p= present, rua= names our address */
	ZONE_MATCH_MTASTS,  /* v=STSv1 and the same id= */
	ZONE_MATCH_TLSRPT,  /* v=TLSRPTv1 and rua= names our address */
	ZONE_MATCH_PTR,	    /* the address's PTR names the host, whose address is that address */
};

enum zone_item_kind { ZONE_COMMENT, ZONE_RECORD };

struct zone_item {
	enum zone_item_kind kind;
	char *text;	      /* COMMENT: one line without "; "; RECORD: TXT text or target host */
	/* RECORD only: */
	char *name;	      /* absolute, without the trailing dot */
	enum dns_type type;   /* TXT, A, AAAA, MX, SRV, CNAME or PTR */
	uint16_t priority;    /* MX, SRV */
	uint16_t weight;      /* SRV */
	uint16_t port;	      /* SRV; 0 with target "" (".") for a service not offered */
	bool published_elsewhere; /* printed as a comment: the PTR is in the address owner's zone */
	enum zone_match match;
	char *address;	      /* PTR: the address whose reverse name this is */
};

struct zone {
	struct zone_item *items;
	size_t count;
	char *contact; /* the local address named in rua= of DMARC and TLS-RPT */
};

/* Builds the list for domain under cfg; the DKIM records come from the keys in data_dir as
 * `roost domain dkim` prints them. -1 with err when the domain has no DKIM keys (the rest of
 * the list is built all the same). */
int zone_build(const struct config *cfg, const char *data_dir, const char *domain,
	       struct zone *z, char *err, size_t errlen);
void zone_free(struct zone *z);

/* Appends one item as zone-file text with its newline: "; text" for a comment, otherwise
 * "NAME. IN TYPE DATA" (commented out when published elsewhere). */
void zone_item_format(struct buf *out, const struct zone_item *item);
/* Appends text as the character-strings of a TXT record: ` "..." "..."`, each of at most 255
 * octets of text (RFC 1035 §3.3.14), `"` and `\` escaped (§5.1). */
void zone_txt_append(struct buf *out, const char *text);
/* Parses one "NAME. IN TXT "..." "..."" line (as the DKIM code writes them): the name without
 * its dot and the strings joined, both heap. -1 when the line is not such a record. */
int zone_txt_parse(const char *line, size_t len, char **name_r, char **text_r);

/* The MTA-STS policy file for mode (RFC 8461 §3.2), CRLF lines, heap; and its id: 16 hex
 * digits derived from the policy text, so it changes whenever the policy does. */
char *zone_mtasts_policy(enum mtasts_mode mode, const char *mx_host);
void zone_mtasts_id(const char *policy, char id[17]);

/* An address other servers can reach: not loopback, private (RFC 1918, RFC 4193), shared
 * (RFC 6598), link-local, multicast or unspecified. */
bool zone_address_is_public(const char *address);

#endif
