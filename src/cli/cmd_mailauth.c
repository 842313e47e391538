/* roost mailauth check --ip IP --helo NAME --mail-from ADDR < MESSAGE: runs the inbound
 * mail-authentication check (SPF, DKIM, DMARC) on one message as if it came from IP, and prints
 * the Authentication-Results field, the DMARC and ARC results, and what delivery would
 * do with it. Lookups use [dns] resolvers and the [mailauth] time budget. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/core.h"
#include "../delivery/check.h"
#include "../mailauth/mailauth.h"
#include "cli.h"

static const char mailauth_usage[] =
	"usage: roost mailauth check --ip IP --helo NAME --mail-from ADDR < MESSAGE";

/* The message from standard input, bare LF turned into CRLF as on the wire. */
static int read_message(struct buf *msg)
{
	int c, prev = 0;

	while ((c = getchar()) != EOF) {
		if (msg->len >= (size_t)LIMIT_MESSAGE_SIZE_DEFAULT) {
			fprintf(stderr, "roost: message larger than %lld octets\n",
				(long long)LIMIT_MESSAGE_SIZE_DEFAULT);
			return -1;
		}
		if (c == '\n' && prev != '\r')
			buf_append_byte(msg, '\r');
		buf_append_byte(msg, (uint8_t)c);
		prev = c;
	}
	return 0;
}

static void print_crlf_text(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != '\r')
			putchar(p[i]);
}

static void print_outcome(const struct mailauth_report *r, const struct delivery_verdict *v,
			  bool junk)
{
	printf("dmarc: %s policy=%s disposition=%s\n", dmarc_result_name(r->dmarc.result),
	       dmarc_policy_name(r->dmarc.policy), dmarc_policy_name(r->dmarc.disposition));
	printf("arc: %s sets=%u (%s)\n", arc_result_name(r->arc.result), r->arc.sets,
	       r->arc.reason[0] != '\0' ? r->arc.reason : "no ARC sets");
	if (r->spf.explanation[0] != '\0')
		printf("spf-explanation: %s\n", r->spf.explanation);
	if (r->forged_count > 0)
		printf("removed: %zu forged Authentication-Results field(s)\n", r->forged_count);
	if (v->action == DELIVERY_CHECK_REJECT || v->action == DELIVERY_CHECK_TEMPFAIL)
		printf("action: %s %s\n", v->action == DELIVERY_CHECK_REJECT ? "reject" : "tempfail",
		       v->reply);
	else
		printf("action: %s\n", junk ? "junk" : "inbox");
}

static int mailauth_run(struct config *cfg, const char *ip, const char *helo, const char *from)
{
	struct mailauth_settings *s = mailauth_settings_new(cfg);
	struct mailauth_report *r = xcalloc(1, sizeof(*r));
	struct delivery_verdict v;
	bool junk = false;
	const char *mailbox = "";
	struct delivery_check_input in = { .sender = from, .helo = helo, .client_ip = ip,
					   .mailboxes = &mailbox, .mailbox_count = 1 };
	struct buf msg;
	int status = 1;

	buf_init(&msg);
	memset(&v, 0, sizeof(v));
	buf_init(&v.headers);
	v.junk = &junk;
	if (read_message(&msg) == 0) {
		in.msg = msg.data;
		in.len = msg.len;
		mailauth_evaluate(s, NULL, msg.data, msg.len, ip, helo, from, r);
		mailauth_apply(s, r, &in, &v);
		print_crlf_text(v.headers.data, v.headers.len);
		print_outcome(r, &v, junk);
		status = 0;
	}
	mailauth_report_free(r);
	free(r);
	buf_free(&v.headers);
	buf_free(&msg);
	mailauth_settings_free(&s);
	return status;
}

int cmd_mailauth(struct config *cfg, int argc, char **argv)
{
	const char *ip = NULL, *helo = NULL, *from = NULL;

	if (argc < 1 || strcmp(argv[0], "check") != 0) {
		fprintf(stderr, "%s\n", mailauth_usage);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		const char **slot = strcmp(argv[i], "--ip") == 0	  ? &ip
				    : strcmp(argv[i], "--helo") == 0	  ? &helo
				    : strcmp(argv[i], "--mail-from") == 0 ? &from
									  : NULL;
		if (slot == NULL || i + 1 == argc) {
			fprintf(stderr, "%s\n", mailauth_usage);
			return 2;
		}
		*slot = argv[++i];
	}
	if (ip == NULL || helo == NULL || from == NULL) {
		fprintf(stderr, "%s\n", mailauth_usage);
		return 2;
	}
	if (strcmp(from, "<>") == 0)
		from = "";
	return mailauth_run(cfg, ip, helo, from);
}
