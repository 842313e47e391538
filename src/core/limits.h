/* Every protocol and parser limit in one place: its meaning, its default and its hard ceiling.
 * A limit that is also a setting has NAME_DEFAULT (a plain decimal literal: the settings table
 * takes it as text), NAME_MIN and NAME_MAX, and config/config.c builds its table entry from
 * exactly these three (tests/unit/test_config_limits.c checks
 * that they agree); the ceilings bound what an operator may configure, so that no setting can
 * turn a parser into a memory bomb. The reason for each number is beside it: the RFC that
 * asks for it, or the cost it bounds. */
#ifndef ROOST_LIMITS_H
#define ROOST_LIMITS_H

/* IMAP command line excluding literals ([limits] imap_line_preauth, imap_line); RFC 2683
 * §3.2.1.5 asks for at least 8000 octets once logged in. */
#define LIMIT_IMAP_LINE_PREAUTH_DEFAULT 8192
#define LIMIT_IMAP_LINE_PREAUTH_MIN 1024
#define LIMIT_IMAP_LINE_PREAUTH_MAX LIMIT_IMAP_LINE_MAX
#define LIMIT_IMAP_LINE_DEFAULT 65536
#define LIMIT_IMAP_LINE_MIN 8192
#define LIMIT_IMAP_LINE_MAX (1024 * 1024)
/* A literal outside APPEND ([limits] imap_literal), and the sum of literals of one command. */
#define LIMIT_IMAP_LITERAL_DEFAULT 65536
#define LIMIT_IMAP_LITERAL_MIN 1024
#define LIMIT_IMAP_LITERAL_MAX (16 * 1024 * 1024)
#define LIMIT_IMAP_COMMAND_BYTES_DEFAULT (1024 * 1024)
#define LIMIT_IMAP_LITERALS_PER_COMMAND 1000
/* Messages in one MULTIAPPEND (RFC 3502); each waits sealed in tmp/ until the last arrives. */
#define LIMIT_IMAP_MULTIAPPEND_MESSAGES 256

/* SMTP ([limits] smtp_line): RFC 5321 §4.5.3.1.4 requires 512; we allow 2 KiB, and RFC 4954's
 * 12288 for AUTH. */
#define LIMIT_SMTP_LINE_DEFAULT 2048
#define LIMIT_SMTP_LINE_MIN 512
#define LIMIT_SMTP_LINE_MAX (64 * 1024)
#define LIMIT_SASL_RESPONSE 12288
/* [limits] recipients: RFC 5321 §4.5.3.1.8 asks for at least 100. */
#define LIMIT_SMTP_RECIPIENTS_DEFAULT 1000
#define LIMIT_SMTP_RECIPIENTS_MIN 100
#define LIMIT_SMTP_RECIPIENTS_MAX 100000

/* POP3 command line as read, fixed: RFC 2449 §4 allows 255 octets with CRLF per command and 40
 * per argument; twice that leaves room for USER/PASS of long addresses and passwords. Only AUTH
 * lines (an initial response) and SASL responses may be LIMIT_SASL_RESPONSE long. */
#define LIMIT_POP3_LINE 512

/* [limits] message_size: default 50 MiB, ceiling 2 GiB. */
#define LIMIT_MESSAGE_SIZE_DEFAULT 52428800 /* 50 MiB */
#define LIMIT_MESSAGE_SIZE_MIN 1024
#define LIMIT_MESSAGE_SIZE_MAX (2048LL * 1024 * 1024)

/* MIME parsing ([limits] mime_depth, mime_parts, header_block): beyond these the rest is
 * treated as opaque body. The depth's ceiling: the IMAP renderings recurse once per level. */
#define LIMIT_MIME_DEPTH_DEFAULT 100
#define LIMIT_MIME_DEPTH_MIN 2
#define LIMIT_MIME_DEPTH_MAX 1000
#define LIMIT_MIME_PARTS_DEFAULT 10000
#define LIMIT_MIME_PARTS_MIN 10
#define LIMIT_MIME_PARTS_MAX 1000000
#define LIMIT_HEADER_BLOCK_DEFAULT 1048576 /* 1 MiB */
#define LIMIT_HEADER_BLOCK_MIN (64 * 1024)
#define LIMIT_HEADER_BLOCK_MAX (64 * 1024 * 1024)
#define LIMIT_MIME_BOUNDARY 2048
/* Parameters kept per Content-Type/Content-Disposition field, and the highest RFC 2231
 * continuation section number honoured (CVE-2026-27859: 100 k continuations stay cheap). */
#define LIMIT_MIME_PARAMS 256
#define LIMIT_MIME_PARAM_SECTIONS 100

/* Keywords per mailbox and their length. */
#define LIMIT_KEYWORD_LENGTH 64
#define LIMIT_KEYWORDS_PER_MAILBOX 256
/* Keyword names an IMAP session lists in its FLAGS response, in octets. */
#define LIMIT_IMAP_ANNOUNCED_KEYWORDS (LIMIT_KEYWORDS_PER_MAILBOX * (LIMIT_KEYWORD_LENGTH + 1))

/* Connections: [limits] connections_per_ip, [auth] user_ip_connections, [limits]
 * bad_commands (protocol errors before a connection is closed; IMAP allows only
 * LIMIT_BAD_COMMANDS_PREAUTH before login), [limits] max_connections (0: from the descriptor
 * limit, below) and [limits] prelogin_timeout (seconds from connect to login; 0 = none). */
#define LIMIT_CONNECTIONS_PER_IP_DEFAULT 100
#define LIMIT_CONNECTIONS_PER_IP_MIN 1
#define LIMIT_CONNECTIONS_PER_IP_MAX 100000
#define LIMIT_USER_IP_CONNECTIONS_DEFAULT 30
#define LIMIT_USER_IP_CONNECTIONS_MIN 1
#define LIMIT_USER_IP_CONNECTIONS_MAX 100000
#define LIMIT_BAD_COMMANDS_PREAUTH 3
#define LIMIT_BAD_COMMANDS_DEFAULT 20
#define LIMIT_BAD_COMMANDS_MIN 1
#define LIMIT_BAD_COMMANDS_MAX 1000
#define LIMIT_MAX_CONNECTIONS_DEFAULT 0
#define LIMIT_MAX_CONNECTIONS_MIN 0
#define LIMIT_MAX_CONNECTIONS_MAX 10000000
#define LIMIT_PRELOGIN_TIMEOUT_DEFAULT 60
#define LIMIT_PRELOGIN_TIMEOUT_MIN 0
#define LIMIT_PRELOGIN_TIMEOUT_MAX 86400
/* Descriptors kept out of [limits] max_connections' default for the store, the queue, SQLite
 * and the refusals themselves: max(64, one eighth of the limit). */
#define LIMIT_FD_RESERVE_MIN 64
#define LIMIT_FD_RESERVE_DIVISOR 8
/* A failed accept (EMFILE, ENFILE, ENOBUFS, ENOMEM) pauses every listener for this long,
 * doubling up to the maximum while it keeps failing. */
#define LIMIT_ACCEPT_BACKOFF_FIRST_MS 100
#define LIMIT_ACCEPT_BACKOFF_MAX_MS 2000

/* Pending output above which a peer that does not read is dropped. */
#define LIMIT_OUTPUT_PENDING (16 * 1024 * 1024)

/* Change-feed updates an IMAP session holds for its client (imap/selected.c): keyword text of
 * coalesced flag changes (beyond it only UIDs are kept and the flags are read again from the
 * store), UIDs with a flag change (beyond it the flags of the whole view are read again),
 * appended or expunged UIDs not yet reported (beyond it "* BYE"), and keyword text of events
 * posted to a session's loop and not yet taken in (beyond it UIDs only). */
#define LIMIT_IMAP_PENDING_FLAG_BYTES (256 * 1024)
#define LIMIT_IMAP_PENDING_FLAG_UIDS (16 * 1024)
#define LIMIT_IMAP_PENDING_UIDS (128 * 1024)
#define LIMIT_IMAP_FEED_QUEUED_BYTES (1024 * 1024)

/* IMAP NOTIFY (RFC 5465, imap/notify.c): mailboxes one NOTIFY SET may watch besides the
 * selected one, counted over the names it gives and the existing mailboxes its filters match
 * (beyond it NO [LIMIT]; a watched set that grows past it later ends NOTIFY with
 * NOTIFICATIONOVERFLOW); mailbox-list changes (LIST responses) held while a command runs or
 * the client does not read, and account events posted to the session's loop and not yet
 * taken in (beyond either NOTIFICATIONOVERFLOW, and NOTIFY is off). STATUS notifications are
 * coalesced per mailbox, so their number is bounded by the first limit. */
#define LIMIT_IMAP_NOTIFY_MAILBOXES 1000
#define LIMIT_IMAP_NOTIFY_PENDING_LISTS 256
#define LIMIT_IMAP_NOTIFY_POSTS 4096

/* IMAP CONTEXT=SEARCH/SORT (RFC 5267 §4, imap/context.c): searches a session keeps alive
 * with RETURN (UPDATE), and the results one of them may hold, in messages. Past the first
 * a new one is refused with NOUPDATE; a result that grows past the second ends its context
 * with NOUPDATE. Every change is re-checked against every live context, so both bound the
 * work one change costs the session. */
#define LIMIT_IMAP_CONTEXTS 16
#define LIMIT_IMAP_CONTEXT_RESULT (100 * 1000)

/* SORT and THREAD answers kept between commands (imap/sort_kept.c), for the whole process:
 * at most this many bytes (4 per message for its UID, 4 more for a sort order, or a THREAD's
 * text) in at most this many entries; an entry above a quarter of the bytes is not kept.
 * 32 MiB keep 40 orders of 100,000-message mailboxes. */
#define LIMIT_IMAP_SORT_KEPT_BYTES (32u * 1024 * 1024)
#define LIMIT_IMAP_SORT_KEPT_ENTRIES 64

/* Login penalty records (per IP, per user) and user+IP session counts kept in memory, each
 * table; beyond it the least recently touched entry is dropped. 65536 entries cost ~10 MiB. */
#define LIMIT_AUTH_PENALTY_ENTRIES 65536

/* Usernames and passwords as they arrive in SASL (RFC 4616 needs at least 255 each). */
#define LIMIT_AUTH_FIELD 1024

/* Store: a mailbox name in UTF-8 bytes (our own ceiling; the Maildir++ folder name derived
 * from it must also fit NAME_MAX, checked separately), mailboxes per account, and how many
 * saves one group commit may take at once. */
#define LIMIT_MAILBOX_NAME 1000
#define LIMIT_MAILBOXES_PER_ACCOUNT 10000
/* Subscribed names without a mailbox (RFC 3501 §6.3.6) an account may keep. */
#define LIMIT_ORPHAN_SUBSCRIPTIONS 1000
#define LIMIT_STORE_COMMIT_BATCH 256
/* Unreferenced files in a Maildir tmp/ older than this many seconds are leftovers of a crash. */
#define LIMIT_STORE_TMP_AGE 3600
/* Expunged UIDs remembered per mailbox for QRESYNC (RFC 7162 §3.2.5): about 24 bytes of index
 * each. Older ones are forgotten and a client resyncing from before them gets the RFC's
 * fallback (every UID it knows that is gone), which is correct, only longer. */
#define LIMIT_EXPUNGE_HISTORY 50000

/* DKIM (RFC 6376): DKIM-Signature fields checked per message (each costs a key lookup and a
 * public-key operation), header fields scanned per message, names in one h= tag, the size of a
 * key record's text, and the RSA key sizes accepted (RFC 8301 §3.2: at least 1024 bits; we cap
 * at 8192 so a hostile record cannot make verification arbitrarily slow). Fixed, not settings. */
#define LIMIT_DKIM_SIGNATURES 8
#define LIMIT_DKIM_HEADER_FIELDS 10000
#define LIMIT_DKIM_H_TAG_FIELDS 64
#define LIMIT_DKIM_KEY_RECORD 8192
#define LIMIT_DKIM_RSA_BITS_MIN 1024
#define LIMIT_DKIM_RSA_BITS_MAX 8192

/* ARC (RFC 8617 §5.2 step 1): ARC sets per message; a chain with more is "fail", and a message
 * that already carries this many is forwarded without our set. Fixed by the RFC. */
#define LIMIT_ARC_SETS 50

/* SPF (RFC 7208 §4.6.4): DNS-querying terms per check_host() evaluation, lookups that find
 * nothing, MX and PTR names followed per mechanism; terms of one record and include/redirect
 * depth (ours: the lookup limit already bounds depth, these keep a hostile record small). */
#define LIMIT_SPF_DNS_LOOKUPS 10
#define LIMIT_SPF_VOID_LOOKUPS 2
#define LIMIT_SPF_MX_NAMES 10
#define LIMIT_SPF_PTR_NAMES 10
#define LIMIT_SPF_TERMS 128
#define LIMIT_SPF_DEPTH 10

/* Greylisting: triplets kept in DATA_DIR/greylist.db (about 150 octets each with the index, so
 * some 150 MB at most); past it the least recently seen go, checked every 1,000 new ones. */
#define LIMIT_GREYLIST_ENTRIES 1000000
/* DMARC aggregate reports (RFC 7489 §7.2): distinct rows (sender IP, results, disposition) one
 * UTC day may record, the days kept before they are deleted, the text of a policy's rua= tag
 * kept per domain, and the mailto: addresses of one rua= used. Evaluations past the row cap
 * still increment the rows they match; new combinations are dropped (and counted in the log),
 * so a flood of forged mail from many addresses cannot grow the file without bound. */
#define LIMIT_DMARC_REPORT_ROWS_PER_DAY 20000
#define LIMIT_DMARC_REPORT_KEEP_DAYS 7
#define LIMIT_DMARC_RUA_TEXT 512
#define LIMIT_DMARC_RUA_ADDRESSES 4

/* HTTP listeners (http/): the request line and header fields together, and a body (only the
 * Autodiscover POST has one: a few hundred octets in practice). The idle timeout closes a
 * connection that sends nothing; the request deadline closes one that sends a request too
 * slowly to finish (one octet a second keeps an idle timeout alive forever), counted from
 * the connection or the end of its previous request. An e-mail address taken from a request
 * is at most RFC 5321's path length. Clients fetch these rarely, so the bounds are tight. */
#define LIMIT_HTTP_HEADERS 8192
#define LIMIT_HTTP_BODY 16384
#define LIMIT_HTTP_IDLE_SECONDS 10
#define LIMIT_HTTP_REQUEST_SECONDS 10
#define LIMIT_HTTP_ADDRESS 256

#endif
