/* Mail authentication: who really sent a message. DKIM (RFC 6376, ed25519-sha256 RFC 8463)
 * signing for the queue's outbound mail and verification of inbound mail, SPF (RFC 7208),
 * DMARC (RFC 7489), ARC (RFC 8617: chain verification, and sealing of the mail the queue
 * forwards), and the Authentication-Results field (RFC 8601) that reports them, run as a
 * delivery check (delivery/check.h) on mail received from other servers.
 *
 * Every DNS lookup goes through dns/ with a deadline; a failed lookup gives a temporary result
 * (temperror), never a hang.
 *
 * ---- DKIM keys ----
 *
 * Key files, per domain, in DATA_DIR/dkim/<domain>/ (folder mode 0700, files 0600):
 *     rsa.key       RSA 2048 private key, PKCS#8 PEM
 *     ed25519.key   Ed25519 private key, PKCS#8 PEM
 *     selectors     "rsa <selector>\ned25519 <selector>\n"
 * A selector is "r" (RSA) or "e" (Ed25519) followed by the UTC year and month the key was made
 * in (r202607, e202607). It is recorded in `selectors` when the key is generated, so it never
 * changes while the key stays the same; a new key gets a fresh selector line.
 *
 * Error policy: -1 (or NULL) with a one-line reason in err; nothing aborts except allocation. */
#ifndef ROOST_MAILAUTH_H
#define ROOST_MAILAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"
#include "../dns/dns.h"

struct dkim_signer;

/* Creates DATA_DIR/dkim/<domain>/ with an RSA 2048 and an Ed25519 key and their selectors.
 * Idempotent: keys already there are kept. domain must be a plain DNS name. */
int dkim_keys_generate(const char *data_dir, const char *domain, char *err, size_t errlen);

/* Appends the TXT records to publish, one per line, zone-file syntax:
 *     <selector>._domainkey.<domain>. IN TXT "v=DKIM1; k=rsa; p=..." "..."
 * Strings are at most 255 octets (RFC 1035 §3.3.14); RSA p= is the base64 SubjectPublicKeyInfo
 * (RFC 6376 §3.6.1), Ed25519 p= the base64 raw 32-byte key (RFC 8463 §4.2). */
int dkim_dns_records(const char *data_dir, const char *domain, struct buf *out, char *err,
		     size_t errlen);

/* Loads the keys found in DATA_DIR/dkim/<domain>/ (at least one must be there). */
struct dkim_signer *dkim_signer_load(const char *data_dir, const char *domain, char *err,
				     size_t errlen);
/* An empty signer for domain, keys added with dkim_signer_add_pem (tests, other key stores). */
struct dkim_signer *dkim_signer_new(const char *domain);
/* Adds a PEM private key (RSA >= 1024 bits or Ed25519) to sign with under selector. */
int dkim_signer_add_pem(struct dkim_signer *signer, const char *selector, const uint8_t *pem,
			size_t pem_len, char *err, size_t errlen);
void dkim_signer_free(struct dkim_signer **signer);

/* Signers loaded once per domain and shared by the queue's delivery threads; a domain's keys
 * are loaded again when its selectors file changes (a new key from `roost domain add` or
 * `roost domain dkim`), so an admin never restarts for a key. Thread-safe. */
struct dkim_signer_cache;
struct dkim_signer_cache *dkim_signer_cache_new(const char *data_dir);
void dkim_signer_cache_free(struct dkim_signer_cache **cache);
/* The signer of domain, or NULL (err says why). Release it with dkim_signer_cache_put. */
const struct dkim_signer *dkim_signer_cache_get(struct dkim_signer_cache *cache,
						const char *domain, char *err, size_t errlen);
void dkim_signer_cache_put(struct dkim_signer_cache *cache, const struct dkim_signer *signer);

/* Signs msg (header block, empty line, body; CRLF line ends) and appends one DKIM-Signature
 * field per key to header_out, each CRLF-terminated and folded to at most 78 columns, ready to
 * be put in front of the message. relaxed/relaxed, t=now, h= lists the present fields of
 * DKIM_SIGNED_FIELDS bottom-up plus one extra "from" (oversigning, RFC 6376 §5.4.2). */
int dkim_sign(const struct dkim_signer *signer, const uint8_t *msg, size_t len, int64_t now,
	      struct buf *header_out, char *err, size_t errlen);

/* Header fields a signature covers when present, in this order. */
#define DKIM_SIGNED_FIELDS                                                                      \
	"from", "to", "cc", "subject", "date", "message-id", "reply-to", "in-reply-to",        \
		"references", "mime-version", "content-type", "content-transfer-encoding"

enum dkim_status {
	DKIM_PASS,
	DKIM_FAIL,      /* RFC 6376 §3.9 PERMFAIL: signature or body hash does not match */
	DKIM_PERMERROR, /* PERMFAIL too, for a malformed signature, unusable or missing key */
	DKIM_TEMPERROR, /* TEMPFAIL: the key lookup failed for now */
};

struct dkim_result {
	enum dkim_status status;
	char domain[254];
	char selector[64];
	char algorithm[16];
	bool body_partial;  /* PASS, but l= left part of the body unsigned (RFC 6376 §8.2) */
	const char *reason; /* static text */
};

/* Looks up the TXT record of name ("<selector>._domainkey.<domain>") and appends its text (the
 * strings of one record concatenated) to txt_r. Returns 0 found, 1 no such record, -1 for a
 * temporary failure. */
typedef int (*dkim_lookup_fn)(const char *name, struct buf *txt_r, void *ctx);

/* Checks every DKIM-Signature field of msg (at most max, and at most LIMIT_DKIM_SIGNATURES),
 * writing one result per field in header order. Returns how many were checked (0: unsigned),
 * -1 when msg has more header fields than LIMIT_DKIM_HEADER_FIELDS. now is for x= expiry. */
int dkim_verify(const uint8_t *msg, size_t len, dkim_lookup_fn lookup, void *ctx, int64_t now,
		struct dkim_result *results_r, size_t max);

/* The canonicalisation steps, public for the tests: RFC 6376 §3.4.2 for one header field
 * (name ":" value, without its final line end; appends "name:value\r\n") and §3.4.4 for a
 * body (appends the canonical body). */
void dkim_canon_header_relaxed(const uint8_t *field, size_t len, struct buf *out);
void dkim_canon_body_relaxed(const uint8_t *body, size_t len, struct buf *out);
/* RFC 6376 §3.4.3 (simple body): appends the canonical body. */
void dkim_canon_body_simple(const uint8_t *body, size_t len, struct buf *out);


/* ---- DNS with a time budget ---- */

/* Every lookup of one check goes through this: the resolvers of `[dns] resolvers` and one
 * deadline for the whole check, so that a slow or dead DNS server costs at most the budget.
 * query replaces dns_query (unit tests answer from a table); NULL for the real one. */
struct mailauth_dns {
	const char *resolvers;
	uint64_t deadline_ms; /* time_now_ms() value after which every lookup is a TEMPFAIL */
	void (*query)(void *arg, const char *name, enum dns_type type, unsigned timeout_ms,
		      struct dns_answer *answer);
	void *query_arg;
};

/* dns_query within the deadline; a spent budget answers DNS_TEMPFAIL without asking. */
void mailauth_dns_query(struct mailauth_dns *dns, const char *name, enum dns_type type,
			struct dns_answer *answer);

/* ---- SPF (RFC 7208) ---- */

enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
};

struct spf_outcome {
	enum spf_result result;
	bool helo_identity; /* the HELO name was checked (null MAIL FROM), not the MAIL FROM */
	char identity[320]; /* the address checked: MAIL FROM or postmaster@HELO */
	char domain[256];   /* its domain */
	char reason[160];   /* why, for the log and the Authentication-Results comment */
	char explanation[256]; /* exp= text for a fail, "" otherwise */
};

/* check_host() (RFC 7208 §4) for the MAIL FROM identity, or for the HELO identity when sender
 * is "" (§2.4). ip is the client's address in text form; receiver our host name (the r
 * macro). */
void spf_check(struct mailauth_dns *dns, const char *ip, const char *helo, const char *sender,
	       const char *receiver, struct spf_outcome *out);
const char *spf_result_name(enum spf_result r);

/* Parses one SPF record ("v=spf1 ..."): 0 when its syntax is valid, -1 with the reason. The
 * evaluation parses the same way, so a record this refuses gives permerror. */
int spf_record_check(const char *text, size_t len, char *err, size_t errlen);


/* ---- DMARC (RFC 7489) ---- */

enum dmarc_policy { DMARC_POLICY_NONE, DMARC_POLICY_QUARANTINE, DMARC_POLICY_REJECT };

struct dmarc_record {
	enum dmarc_policy p, sp; /* sp = p when absent */
	unsigned pct;		 /* 0..100 */
	bool strict_dkim, strict_spf;
	char rua[LIMIT_DMARC_RUA_TEXT]; /* the rua= value as published, "" when none */
};

/* Parses a DMARC record ("v=DMARC1; p=...; ..."), §6.3. 0 valid, -1 with the reason. */
int dmarc_record_parse(const char *text, size_t len, struct dmarc_record *rec, char *err,
		       size_t errlen);

/* The organisational domain (§3.2) from the Public Suffix List, written to out; false when
 * domain is a public suffix itself or cannot be looked up. */
bool dmarc_org_domain(const char *domain, char *out, size_t outlen);

enum dmarc_result { DMARC_NONE, DMARC_PASS, DMARC_FAIL, DMARC_TEMPERROR, DMARC_PERMERROR };

struct dmarc_outcome {
	enum dmarc_result result;
	char from_domain[256];
	enum dmarc_policy policy;      /* the policy that applies (p or sp), for the comment */
	enum dmarc_policy disposition; /* what to do: policy after pct, NONE unless FAIL */
	char reason[160];
	/* For aggregate reports (§7.2): the record found and where, and which identifier
	 * aligned. Filled when result is PASS or FAIL. */
	struct dmarc_record published;
	char published_domain[256];
	bool spf_aligned, dkim_aligned;
};

const char *dmarc_result_name(enum dmarc_result r);
const char *dmarc_policy_name(enum dmarc_policy p);

/* The RFC5322.From domain of msg (§6.6.1): exactly one From field with one address. false
 * with a reason when there is none or more than one. */
bool dmarc_from_domain(const uint8_t *msg, size_t len, char *out, size_t outlen,
		       const char **reason_r);

/* §6.6: record discovery for from_domain, alignment of the passing SPF identity and DKIM
 * signatures, and the policy. spf_domain is the domain SPF passed for (NULL when it did not
 * pass); dkim_domains the d= of each passing signature. roll is 0..99, compared with pct. */
void dmarc_check(struct mailauth_dns *dns, const char *from_domain, const char *spf_domain,
		 const char *const *dkim_domains, size_t dkim_count, unsigned roll,
		 struct dmarc_outcome *out);


/* ---- ARC (RFC 8617) ---- */

enum arc_result { ARC_NONE, ARC_PASS, ARC_FAIL };

/* One header field of an ARC set, as it stands in the message, without its final line end. */
struct arc_field {
	const uint8_t *p;
	size_t len;
};

/* The ARC sets of a message by instance: set[i - 1] holds the fields with i=i. */
struct arc_chain {
	struct arc_field aar[LIMIT_ARC_SETS], ams[LIMIT_ARC_SETS], seal[LIMIT_ARC_SETS];
	unsigned count;		  /* N, the highest instance seen (at most LIMIT_ARC_SETS) */
	enum arc_result newest_cv; /* cv= of the ARC-Seal with i=N: FAIL when unreadable, NONE
				    * when there is no such seal */
};

/* Collects the ARC sets of msg and checks their structure (§5.2 steps 1-3: at most 50 sets,
 * the newest not cv=fail, exactly one AAR, AMS and AS per instance, instances 1..N without
 * gaps, cv=none for i=1 and cv=pass above, no h= in a seal). Returns 0 with count 0 for no
 * chain, 0 for a well-formed chain, -1 with *reason_r (static text) for a broken one; count
 * and newest_cv are filled as far as the fields could be read either way. */
int arc_chain_parse(const uint8_t *msg, size_t len, struct arc_chain *chain,
		    const char **reason_r);

struct arc_outcome {
	enum arc_result result;
	unsigned sets;	      /* N: how many ARC sets the message carried */
	unsigned oldest_pass; /* §5.2 step 5 for a pass: 0 when every AMS verifies */
	char domain[254];     /* d= of the newest ARC-Seal, "" when none was read */
	char remote_ip[64];   /* the SMTP client, for smtp.remote-ip */
	bool sealer_dmarc_pass; /* a pass whose newest ARC-Authentication-Results says dmarc=pass */
	char reason[128];
};

/* The Chain Validation Status of msg (RFC 8617 §5.2): structure, the newest
 * ARC-Message-Signature (a DKIM signature without v=, over header and body), every older one
 * for oldest-pass, and every ARC-Seal over the ARC sets up to its own. Keys come through
 * lookup like DKIM's. Every error, a failed key lookup too, is "fail" (§5.2.1). */
void arc_verify(const uint8_t *msg, size_t len, dkim_lookup_fn lookup, void *ctx, int64_t now,
		struct arc_outcome *out);
const char *arc_result_name(enum arc_result r);

/* Whether msg carries an Authentication-Results field of authserv_id (what arc_seal seals). */
bool arc_has_own_results(const uint8_t *msg, size_t len, const char *authserv_id);
/* Adds the next ARC set (RFC 8617 §5.1) to a message that carries our Authentication-Results
 * field (authserv-id = authserv_id): an ARC-Authentication-Results with its results, an
 * ARC-Message-Signature and an ARC-Seal whose cv= is that field's arc= result, signed with the
 * signer's RSA key (its Ed25519 key when it has no RSA one). Appends the three fields, CRLF
 * terminated, to header_out, to be put in front of the message. Returns 1 sealed, 0 nothing to
 * seal (no field of ours, a chain already ended by cv=fail, or LIMIT_ARC_SETS sets), -1 with
 * err. */
int arc_seal(const struct dkim_signer *signer, const uint8_t *msg, size_t len,
	     const char *authserv_id, int64_t now, struct buf *header_out, char *err,
	     size_t errlen);

/* ---- aggregate report data (RFC 7489 §7.2) ---- */

/* One evaluation as an aggregate report counts it: the identifiers and results of Appendix
 * C's <record>, and the policy published. Text fields are NUL-terminated, lower case. */
struct dmarc_report_row {
	char header_from[256];
	char source_ip[46];
	const char *disposition;    /* none, quarantine, reject (static text) */
	const char *dkim_aligned;   /* policy_evaluated: pass or fail */
	const char *spf_aligned;
	char dkim_domain[254];	    /* auth_results: one signature, "" when unsigned */
	const char *dkim_result;    /* none, pass, fail, temperror, permerror */
	char spf_domain[256];	    /* the domain SPF checked */
	const char *spf_scope;	    /* mfrom or helo */
	const char *spf_result;	    /* none, neutral, pass, fail, softfail, temperror, permerror */
	char policy_domain[256];    /* where the record was found */
	struct dmarc_record policy; /* as published, rua included */
};

/* Called once per evaluated message whose DMARC record has rua= (cli/ stores it). May run
 * on any worker thread at once. */
typedef void (*dmarc_recorder_fn)(void *ctx, const struct dmarc_report_row *row);

struct mailauth_report;
/* Fills row from one evaluation; false when there is nothing to report (no DMARC record, or
 * one without rua=). ip is the client's address. */
bool dmarc_report_row_make(const struct mailauth_report *r, const char *ip,
			   struct dmarc_report_row *row);
struct mailauth_settings;
/* Hands the row of one evaluation to the settings' recorder, when there is one and the row
 * is worth reporting. */
void dmarc_report_record(const struct mailauth_settings *s, const struct mailauth_report *r,
			 const char *ip);

/* What one aggregate report says about itself (Appendix C report_metadata and
 * policy_published). begin/end: the UTC day covered, in seconds since the epoch. */
struct dmarc_report_meta {
	const char *org_name;	   /* our host name: also the submitter and the file's receiver */
	const char *email;	   /* [dmarc] report_from */
	const char *report_id;	   /* unique per report: letters, digits, '.', '-' */
	int64_t begin, end;
	const char *policy_domain; /* the domain reported on */
	const struct dmarc_record *policy;
};

/* Appends the XML of Appendix C: one <record> per row with its count. */
void dmarc_report_xml(const struct dmarc_report_meta *m, const struct dmarc_report_row *rows,
		      const uint64_t *counts, size_t n, struct buf *out);
/* Appends data compressed in gzip format (RFC 1952). -1 when zlib fails. */
int dmarc_report_gzip(const uint8_t *data, size_t len, struct buf *out);
/* §7.2.1.1: "receiver!policy-domain!begin!end.xml.gz". */
void dmarc_report_file_name(const struct dmarc_report_meta *m, char *out, size_t outlen);
/* Appends the report mail to `to` (CRLF line ends): the §7.2.1.1 subject, a short text part
 * and the gzip'd XML as an application/gzip attachment under the file name above. */
void dmarc_report_message(const struct dmarc_report_meta *m, const char *to, int64_t now,
			  const uint8_t *gz, size_t gz_len, struct buf *out);

/* One destination of a rua= list (§6.2): a mailto: address and its !size limit in bytes
 * (0: none). domain is the address's domain, lower case. */
struct dmarc_rua {
	char address[320];
	char domain[256];
	uint64_t max_size;
};
/* The mailto: URIs of a rua= value, at most max (other schemes are skipped). */
size_t dmarc_rua_parse(const char *rua, struct dmarc_rua *out, size_t max);

/* ---- Authentication-Results (RFC 8601) and the whole check ---- */

struct config;
struct delivery_check_input;
struct delivery_verdict;

/* What the check needs from the configuration, copied (cli/ makes it at start-up). */
struct mailauth_settings {
	char *authserv_id;	   /* [server] hostname */
	char *resolvers;	   /* [dns] resolvers */
	unsigned time_budget_ms;   /* [mailauth] time_budget */
	bool verify;		   /* [mailauth] verify */
	bool reject_quarantines;   /* [dmarc] reject = quarantine */
	char *arc_trusted;	   /* [mailauth] arc_trusted: domains, space separated */
	/* [dmarc] reports = on: cli/ sets a recorder of evaluations; NULL records nothing. */
	dmarc_recorder_fn dmarc_recorder;
	void *dmarc_recorder_ctx;
};

struct mailauth_settings *mailauth_settings_new(const struct config *cfg);
void mailauth_settings_free(struct mailauth_settings **s);

#define MAILAUTH_MAX_FORGED 16

struct mailauth_report {
	struct spf_outcome spf;
	struct dkim_result dkim[LIMIT_DKIM_SIGNATURES];
	int dkim_count; /* -1: the header block could not be read */
	struct dmarc_outcome dmarc;
	struct arc_outcome arc;
	/* DMARC failed but a trusted ARC sealer saw it pass: the policy is not applied (RFC 7489
	 * §6.7 local policy), and the field says so */
	bool dmarc_arc_override;
	struct buf field; /* "Authentication-Results: ...", folded, without the final CRLF */
	/* Authentication-Results fields that claim our authserv-id (forged): whole fields with
	 * their line end, to be left out of the stored message. */
	size_t forged_off[MAILAUTH_MAX_FORGED], forged_len[MAILAUTH_MAX_FORGED];
	size_t forged_count;
};

/* Runs SPF, DKIM and DMARC on one message and writes the Authentication-Results field.
 * sender "" is the null sender. The report is the caller's; free it with
 * mailauth_report_free. dns NULL: the settings' resolvers and time budget. */
void mailauth_evaluate(const struct mailauth_settings *s, struct mailauth_dns *dns,
		       const uint8_t *msg, size_t len, const char *ip, const char *helo,
		       const char *sender, struct mailauth_report *r);
void mailauth_report_free(struct mailauth_report *r);

/* The authserv-id of an Authentication-Results field value (after the colon), CFWS skipped;
 * false when there is none. */
bool authres_authserv_id(const uint8_t *value, size_t len, char *out, size_t outlen);

/* The result of the first resinfo for method ("arc", "dmarc", ...) in an
 * Authentication-Results field value (after the colon); false when there is none. Comments
 * and quoted strings are stepped over. */
bool authres_method_result(const uint8_t *value, size_t len, const char *method, char *out,
			   size_t outlen);

/* Turns a report into the verdict: forged fields dropped, our field added, the results for
 * later checks, and the DMARC policy (REJECT with 550 5.7.1, or every mailbox's copy into
 * Junk). */
void mailauth_apply(const struct mailauth_settings *s, struct mailauth_report *r,
		    const struct delivery_check_input *in, struct delivery_verdict *verdict);

/* The delivery check (delivery/check.h): arg is a struct mailauth_settings. Does nothing for
 * authenticated submissions or when verify is off. */
void mailauth_check(void *arg, const struct delivery_check_input *in,
		    struct delivery_verdict *verdict);

#endif
