/* Every protocol and parser limit in one place: its meaning, its default and its hard ceiling.
 * The defaults are what [limits] in roost.conf starts from; the ceilings bound what an operator
 * may configure, so that no setting can turn a parser into a memory bomb. Reasons for the
 * numbers are in ../shared TESTPLAN §2.3 and the RFCs named beside them. */
#ifndef ROOST_LIMITS_H
#define ROOST_LIMITS_H

/* IMAP command line excluding literals; RFC 2683 §3.2.1.5 asks for at least 8000 octets. */
#define LIMIT_IMAP_LINE_PREAUTH_DEFAULT (8 * 1024)
#define LIMIT_IMAP_LINE_DEFAULT (64 * 1024)
#define LIMIT_IMAP_LINE_MAX (1024 * 1024)
/* A literal outside APPEND, and the sum of literals of one command. */
#define LIMIT_IMAP_LITERAL_DEFAULT (64 * 1024)
#define LIMIT_IMAP_COMMAND_BYTES_DEFAULT (1024 * 1024)
#define LIMIT_IMAP_LITERALS_PER_COMMAND 1000
/* RFC 7888: a non-synchronising literal with LITERAL- is at most 4096 octets. */
#define LIMIT_IMAP_LITERAL_MINUS 4096

/* SMTP: RFC 5321 §4.5.3.1.4 requires 512; we allow 2 KiB, and RFC 4954's 12288 for AUTH. */
#define LIMIT_SMTP_LINE_DEFAULT 2048
#define LIMIT_SASL_RESPONSE 12288
#define LIMIT_SMTP_RECIPIENTS_DEFAULT 1000
#define LIMIT_SMTP_RECIPIENTS_MAX 100000

/* POP3 command line: RFC 2449 allows 255 octets; we allow more for AUTH responses. */
#define LIMIT_POP3_LINE_DEFAULT 512

/* Message size: default 50 MiB, ceiling 2 GiB. */
#define LIMIT_MESSAGE_SIZE_DEFAULT (50LL * 1024 * 1024)
#define LIMIT_MESSAGE_SIZE_MAX (2048LL * 1024 * 1024)

/* MIME parsing: beyond these the rest is treated as opaque body. */
#define LIMIT_MIME_DEPTH_DEFAULT 100
#define LIMIT_MIME_PARTS_DEFAULT 10000
#define LIMIT_HEADER_BLOCK_DEFAULT (1024 * 1024)
#define LIMIT_MIME_BOUNDARY 2048
/* Ceiling for a configured nesting depth: the IMAP renderings recurse once per level. */
#define LIMIT_MIME_DEPTH_MAX 1000
/* Parameters kept per Content-Type/Content-Disposition field, and the highest RFC 2231
 * continuation section number honoured (CVE-2026-27859: 100 k continuations stay cheap). */
#define LIMIT_MIME_PARAMS 256
#define LIMIT_MIME_PARAM_SECTIONS 100

/* Keywords per mailbox and their length. */
#define LIMIT_KEYWORD_LENGTH 64
#define LIMIT_KEYWORDS_PER_MAILBOX 256

/* Connections. */
#define LIMIT_CONNECTIONS_PER_IP_DEFAULT 100
#define LIMIT_USER_IP_CONNECTIONS_DEFAULT 30
#define LIMIT_BAD_COMMANDS_PREAUTH 3
#define LIMIT_BAD_COMMANDS_POSTAUTH 20
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

#endif
