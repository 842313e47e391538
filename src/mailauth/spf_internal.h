/* The parsed form of an SPF record (RFC 7208 §4.6, §12) and the macro expander (§7), shared by
 * the parser, the evaluation and their tests. Terms point into the record's text, which must
 * outlive the parsed record. */
#ifndef ROOST_MAILAUTH_SPF_INTERNAL_H
#define ROOST_MAILAUTH_SPF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mailauth.h"

enum spf_mech { SPF_MECH_ALL, SPF_MECH_INCLUDE, SPF_MECH_A, SPF_MECH_MX, SPF_MECH_PTR,
		SPF_MECH_IP4, SPF_MECH_IP6, SPF_MECH_EXISTS };

struct spf_term {
	char qualifier; /* '+', '-', '~' or '?' */
	enum spf_mech mech;
	const char *spec; /* domain-spec (macro-string), NULL when absent */
	size_t spec_len;
	unsigned cidr4, cidr6; /* prefix lengths, 32 and 128 when absent */
	uint8_t addr[16];      /* ip4 (first 4 octets) and ip6 */
};

struct spf_record {
	struct spf_term terms[LIMIT_SPF_TERMS];
	size_t count;
	const char *redirect, *exp; /* domain-specs, NULL when absent */
	size_t redirect_len, exp_len;
};

/* 0 with rec filled, -1 with the reason for a record that is not valid SPF (permerror). */
int spf_record_parse(const char *text, size_t len, struct spf_record *rec, char *err,
		     size_t errlen);
/* True when a TXT record is an SPF record: "v=spf1" then a space or its end (§4.5). */
bool spf_is_record(const char *text, size_t len);

/* What the macro letters stand for (§7.3). */
struct spf_macro_vars {
	const char *sender;	   /* s: local@domain */
	const char *local;	   /* l */
	const char *sender_domain; /* o */
	const char *domain;	   /* d: the current domain */
	const char *ip_text;	   /* c */
	const char *ip_dotted;	   /* i: IPv4 dotted, IPv6 nibbles with dots */
	bool ipv6;		   /* v */
	const char *helo;	   /* h */
	const char *receiver;	   /* r */
	int64_t now;		   /* t */
};

/* Expands a macro-string into out (appended). exp_text allows c, r, t (explanations only).
 * A domain-spec result longer than 253 octets loses labels from the left (§7.3). -1 on a
 * syntax error. */
int spf_macro_expand(const struct spf_macro_vars *v, const char *s, size_t len, bool exp_text,
		     bool domain, struct buf *out);

#endif
