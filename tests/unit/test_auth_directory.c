/* Accounts directory: domains, users and aliases in a temporary data_dir; name validation
 * (CVE-2017-2669); password verification for our yescrypt hashes and imported
 * Dovecot hashes; recipient resolution with aliases, catch-all, plus-addressing and loops. */
#include <crypt.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <time.h>

#include "auth/auth.h"

struct fixture {
	char path[64];
	struct auth_directory *dir;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	snprintf(f->path, sizeof(f->path), "/tmp/roost-dir-XXXXXX");
	assert_non_null(mkdtemp(f->path));
	assert_int_equal(auth_directory_open(f->path, &f->dir, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	auth_directory_close(&f->dir);
	assert_null(f->dir);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->path);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

struct collect {
	char items[64][400];
	bool local[64];
	int n;
};

static void collect_one(const char *s, void *ctx)
{
	struct collect *c = ctx;
	assert_true(c->n < 64);
	snprintf(c->items[c->n++], sizeof(c->items[0]), "%s", s);
}

static void collect_two(const char *a, const char *b, void *ctx)
{
	struct collect *c = ctx;
	assert_true(c->n < 64);
	snprintf(c->items[c->n++], sizeof(c->items[0]), "%s %s", a, b);
}

static void collect_rcpt(const char *t, bool is_local, void *ctx)
{
	struct collect *c = ctx;
	assert_true(c->n < 64);
	c->local[c->n] = is_local;
	snprintf(c->items[c->n++], sizeof(c->items[0]), "%s", t);
}

static void test_domains(void **state)
{
	struct fixture *f = *state;
	struct collect c = { .n = 0 };
	char err[256];

	assert_int_equal(auth_domain_add(f->dir, "Example.ORG", err, sizeof(err)), 0);
	assert_int_equal(auth_domain_add(f->dir, "b.example", err, sizeof(err)), 0);
	assert_int_equal(auth_domain_add(f->dir, "example.org", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "exists"));
	assert_true(auth_domain_exists(f->dir, "EXAMPLE.org"));
	assert_false(auth_domain_exists(f->dir, "other.org"));
	assert_int_equal(auth_domain_list(f->dir, collect_one, &c), 2);
	assert_string_equal(c.items[0], "b.example");
	assert_string_equal(c.items[1], "example.org");
	assert_int_equal(auth_domain_del(f->dir, "b.example", err, sizeof(err)), 0);
	assert_int_equal(auth_domain_del(f->dir, "b.example", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not exist"));
	assert_false(auth_domain_exists(f->dir, "b.example"));

	/* a domain with users is not deleted under them */
	assert_int_equal(auth_user_add(f->dir, "a@example.org", "pw", err, sizeof(err)), 0);
	assert_int_equal(auth_domain_del(f->dir, "example.org", err, sizeof(err)), -1);
	assert_true(auth_domain_exists(f->dir, "example.org"));
}

static void test_bad_names(void **state)
{
	struct fixture *f = *state;
	static const char *const bad_domains[] = {
		"", "bad_dom.org", "-a.org", "a-.org", "a..org", ".a.org", "a.org.", "exa mple.org",
		"a%u.org", "%u%d%{user}", "x';DROP TABLE domains;--", "a/b.org", "\xc3\xa9.org",
		"a\n.org",
	};
	static const char *const bad_users[] = {
		"a%u@example.org", "%u%d%{user}@example.org", "%{sql}@example.org",
		"a!b@example.org",
		"\"q\"@example.org", "a'b@example.org", "a/b@example.org", "a b@example.org",
		"a\tb@example.org", "a\x01@example.org", ".a@example.org", "a.@example.org",
		"a..b@example.org", "@example.org", "a@", "a", "a@b@example.org", "a`b@example.org",
		"x'--@example.org", "a\\b@example.org", "a%example.org@example.org",
	};
	char err[256], label[80], dom[300], local[80];

	assert_int_equal(auth_domain_add(f->dir, "example.org", err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(bad_domains) / sizeof(bad_domains[0]); i++)
		assert_int_equal(auth_domain_add(f->dir, bad_domains[i], err, sizeof(err)), -1);
	for (size_t i = 0; i < sizeof(bad_users) / sizeof(bad_users[0]); i++) {
		assert_int_equal(auth_user_add(f->dir, bad_users[i], "pw", err, sizeof(err)), -1);
		assert_int_equal(auth_verify_password(f->dir, bad_users[i], "pw", NULL),
				 AUTH_FAILED);
	}
	/* 63-octet labels pass, 64 do not; 253 octets in all pass, 254 do not */
	memset(label, 'a', 64);
	label[63] = '\0';
	snprintf(dom, sizeof(dom), "%s.org", label);
	assert_int_equal(auth_domain_add(f->dir, dom, err, sizeof(err)), 0);
	label[63] = 'a';
	label[64] = '\0';
	snprintf(dom, sizeof(dom), "%s.org", label);
	assert_int_equal(auth_domain_add(f->dir, dom, err, sizeof(err)), -1);
	label[63] = '\0';
	/* four labels of 63 and 61 octets with three dots: 253 */
	memset(dom, 'c', 253);
	dom[63] = dom[127] = dom[191] = '.';
	dom[253] = '\0';
	assert_int_equal(auth_domain_add(f->dir, dom, err, sizeof(err)), 0);
	dom[253] = 'c';
	dom[254] = '\0';
	assert_int_equal(auth_domain_add(f->dir, dom, err, sizeof(err)), -1);
	/* local part: 64 octets pass, 65 do not */
	memset(local, 'b', 65);
	local[64] = '\0';
	snprintf(dom, sizeof(dom), "%s@example.org", local);
	assert_int_equal(auth_user_add(f->dir, dom, "pw", err, sizeof(err)), 0);
	local[64] = 'b';
	local[65] = '\0';
	snprintf(dom, sizeof(dom), "%s@example.org", local);
	assert_int_equal(auth_user_add(f->dir, dom, "pw", err, sizeof(err)), -1);
	/* atext that is kept: + = # & and friends, and inner dots */
	assert_int_equal(auth_user_add(f->dir, "first.last+tag_x-y=z@example.org", "pw", err,
				       sizeof(err)),
			 0);
	/* metacharacters never reached SQL: the tables are intact */
	struct collect c = { .n = 0 };
	assert_int_equal(auth_user_list(f->dir, "example.org", collect_one, &c), 2);
}

static void test_users(void **state)
{
	struct fixture *f = *state;
	struct collect c = { .n = 0 };
	char err[256];
	char *canon = NULL;

	assert_int_equal(auth_user_add(f->dir, "a@nowhere.org", "pw", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "domain nowhere.org does not exist"));
	assert_int_equal(auth_domain_add(f->dir, "example.org", err, sizeof(err)), 0);
	assert_int_equal(auth_user_add(f->dir, "Alice@Example.org", "s3cret", err, sizeof(err)),
			 0);
	assert_int_equal(auth_user_add(f->dir, "alice@example.org", "x", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "exists"));
	assert_int_equal(auth_user_add(f->dir, "bob@example.org", "", err, sizeof(err)), -1);
	assert_int_equal(auth_user_add(f->dir, "bob@example.org", "bobpw", err, sizeof(err)), 0);
	assert_true(auth_user_exists(f->dir, "ALICE@example.org"));
	assert_false(auth_user_exists(f->dir, "carol@example.org"));

	assert_int_equal(auth_verify_password(f->dir, "alice@example.org", "s3cret", &canon),
			 AUTH_OK);
	assert_string_equal(canon, "alice@example.org");
	free(canon);
	assert_int_equal(auth_verify_password(f->dir, "ALICE@EXAMPLE.ORG", "s3cret", NULL),
			 AUTH_OK);
	assert_int_equal(auth_verify_password(f->dir, "alice@example.org", "S3cret", &canon),
			 AUTH_FAILED);
	assert_null(canon);
	assert_int_equal(auth_verify_password(f->dir, "alice@example.org", "", NULL), AUTH_FAILED);
	assert_int_equal(auth_verify_password(f->dir, "carol@example.org", "s3cret", NULL),
			 AUTH_FAILED);
	/* bare name: only when there is a single domain */
	assert_int_equal(auth_verify_password(f->dir, "alice", "s3cret", &canon), AUTH_OK);
	assert_string_equal(canon, "alice@example.org");
	free(canon);
	assert_int_equal(auth_domain_add(f->dir, "other.org", err, sizeof(err)), 0);
	assert_int_equal(auth_verify_password(f->dir, "alice", "s3cret", NULL), AUTH_FAILED);

	assert_int_equal(auth_user_passwd(f->dir, "alice@example.org", "new", err, sizeof(err)),
			 0);
	assert_int_equal(auth_verify_password(f->dir, "alice@example.org", "s3cret", NULL),
			 AUTH_FAILED);
	assert_int_equal(auth_verify_password(f->dir, "alice@example.org", "new", NULL), AUTH_OK);
	assert_int_equal(auth_user_passwd(f->dir, "carol@example.org", "new", err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "does not exist"));

	assert_int_equal(auth_user_list(f->dir, NULL, collect_one, &c), 2);
	assert_string_equal(c.items[0], "alice@example.org");
	assert_string_equal(c.items[1], "bob@example.org");
	c.n = 0;
	assert_int_equal(auth_user_list(f->dir, "other.org", collect_one, &c), 0);
	assert_int_equal(auth_user_del(f->dir, "bob@example.org", err, sizeof(err)), 0);
	assert_int_equal(auth_user_del(f->dir, "bob@example.org", err, sizeof(err)), -1);
	assert_int_equal(auth_verify_password(f->dir, "bob@example.org", "bobpw", NULL),
			 AUTH_FAILED);

	/* the stored form is a yescrypt hash, never the password */
	char path[128];
	sqlite3 *db;
	sqlite3_stmt *st;
	snprintf(path, sizeof(path), "%s/accounts.db", f->path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT password_hash, scram_iterations FROM "
					    "users WHERE address = 'alice@example.org'",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_true(strncmp((const char *)sqlite3_column_text(st, 0), "$y$", 3) == 0);
	assert_int_equal(sqlite3_column_int(st, 1), 4096);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static bool has_scram(struct fixture *f, const char *address)
{
	char path[128];
	sqlite3 *db;
	sqlite3_stmt *st;
	bool has;

	snprintf(path, sizeof(path), "%s/accounts.db", f->path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT scram_stored_key FROM users WHERE "
					    "address = ?", -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	has = sqlite3_column_type(st, 0) != SQLITE_NULL;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return has;
}

/* An alias row written straight into the database, as an older version could have. */
static void insert_alias_row(struct fixture *f, const char *alias, const char *target)
{
	char path[128];
	sqlite3 *db;
	sqlite3_stmt *st;

	snprintf(path, sizeof(path), "%s/accounts.db", f->path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO aliases (alias, target) VALUES (?, ?)",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, alias, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, target, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void test_import_passwd(void **state)
{
	struct fixture *f = *state;
	int without_scram = -1;
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	char err[512], file[128], text[2048], sha512[256], blf[256];
	char *setting;
	bool have_blf;

	assert_int_equal(auth_domain_add(f->dir, "example.org", err, sizeof(err)), 0);
	assert_int_equal(auth_domain_add(f->dir, "other.org", err, sizeof(err)), 0);
	snprintf(sha512, sizeof(sha512), "%s", crypt_r("dove", "$6$saltsalt$", cd));
	assert_true(strncmp(sha512, "$6$saltsalt$", 12) == 0);
	setting = crypt_gensalt_ra("$2y$", 4, NULL, 0);
	have_blf = setting != NULL;
	if (have_blf) {
		snprintf(blf, sizeof(blf), "%s", crypt_r("blowfish", setting, cd));
		assert_true(strncmp(blf, "$2y$04$", 7) == 0);
	}
	free(setting);
	snprintf(file, sizeof(file), "%s/passwd", f->path);
	snprintf(text, sizeof(text),
		 "# Dovecot users\n"
		 "u1:{SHA512-CRYPT}%s:1000:1000::/home/u1::\n"
		 "\n"
		 "U2@Other.org:{PLAIN}plainpw::::::\n"
		 "u3:%s\n"
		 "%s%s%s\n",
		 sha512, sha512, have_blf ? "u4:{BLF-CRYPT}" : "# ", have_blf ? blf : "",
		 have_blf ? ":" : "");
	write_file(file, text);
	assert_int_equal(auth_import_passwd_file(f->dir, file, "example.org", &without_scram, err,
						 sizeof(err)),
			 have_blf ? 4 : 3);
	/* the count the CLI explains SCRAM with: every crypt-hash user, not the {PLAIN} one */
	assert_int_equal(without_scram, have_blf ? 3 : 2);
	/* crypt hashes carry no SCRAM keys; {PLAIN} ones get them at import */
	assert_false(has_scram(f, "u1@example.org"));
	assert_false(has_scram(f, "u3@example.org"));
	assert_true(has_scram(f, "u2@other.org"));
	assert_int_equal(auth_verify_password(f->dir, "u1@example.org", "dove", NULL), AUTH_OK);
	assert_int_equal(auth_verify_password(f->dir, "u1@example.org", "dovE", NULL),
			 AUTH_FAILED);
	assert_int_equal(auth_verify_password(f->dir, "u3@example.org", "dove", NULL), AUTH_OK);
	assert_int_equal(auth_verify_password(f->dir, "u2@other.org", "plainpw", NULL), AUTH_OK);
	assert_int_equal(auth_verify_password(f->dir, "u2@other.org", "plainpW", NULL),
			 AUTH_FAILED);
	if (have_blf) {
		assert_int_equal(auth_verify_password(f->dir, "u4@example.org", "blowfish", NULL),
				 AUTH_OK);
		assert_int_equal(auth_verify_password(f->dir, "u4@example.org", "blowfisH", NULL),
				 AUTH_FAILED);
	} else {
		print_message("libxcrypt lacks $2y$: BLF-CRYPT not checked\n");
	}
	/* SCRAM keys for crypt-imported users appear at their first plaintext login */
	assert_true(has_scram(f, "u1@example.org"));
	assert_true(has_scram(f, "u3@example.org"));

	/* a bad line rolls back the whole file and names the line */
	write_file(file, "n1:{PLAIN}a\nn2:{MD5}abc\n");
	assert_int_equal(auth_import_passwd_file(f->dir, file, "example.org", NULL, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, ":2:"));
	assert_false(auth_user_exists(f->dir, "n1@example.org"));
	write_file(file, "n1:{PLAIN}a\nu1:{PLAIN}b\n");
	assert_int_equal(auth_import_passwd_file(f->dir, file, "example.org", NULL, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "exists"));
	assert_false(auth_user_exists(f->dir, "n1@example.org"));
	write_file(file, "n1:{SHA512-CRYPT}$2y$04$abc\n");
	assert_int_equal(auth_import_passwd_file(f->dir, file, "example.org", NULL, err, sizeof(err)),
			 -1);
	write_file(file, "n1@nowhere.org:{PLAIN}a\n");
	assert_int_equal(auth_import_passwd_file(f->dir, file, "example.org", NULL, err, sizeof(err)),
			 -1);
	write_file(file, "%u%d:{PLAIN}a\n");
	assert_int_equal(auth_import_passwd_file(f->dir, file, "example.org", NULL, err, sizeof(err)),
			 -1);
	write_file(file, "n1:{PLAIN}a\nn1:{PLAIN}b\n");
	assert_int_equal(auth_import_passwd_file(f->dir, file, "example.org", NULL, err, sizeof(err)),
			 -1);
	assert_int_equal(auth_import_passwd_file(f->dir, "/nonexistent/x", "example.org", NULL,
						 err, sizeof(err)),
			 -1);
	free(cd);
}

static int resolve(struct fixture *f, const char *addr, struct collect *c)
{
	c->n = 0;
	return auth_resolve_recipient(f->dir, addr, collect_rcpt, c);
}

static bool has_item(const struct collect *c, const char *s, bool local)
{
	for (int i = 0; i < c->n; i++)
		if (strcmp(c->items[i], s) == 0)
			return c->local[i] == local;
	return false;
}

static void test_aliases_and_resolution(void **state)
{
	struct fixture *f = *state;
	struct collect c;
	char err[256];

	assert_int_equal(auth_domain_add(f->dir, "example.org", err, sizeof(err)), 0);
	assert_int_equal(auth_domain_add(f->dir, "catch.org", err, sizeof(err)), 0);
	assert_int_equal(auth_user_add(f->dir, "alice@example.org", "pw", err, sizeof(err)), 0);
	assert_int_equal(auth_user_add(f->dir, "bob@example.org", "pw", err, sizeof(err)), 0);
	assert_int_equal(auth_user_add(f->dir, "carol@catch.org", "pw", err, sizeof(err)), 0);

	/* alias domain must be ours; target syntax is checked */
	assert_int_equal(auth_alias_add(f->dir, "x@remote.org", "alice@example.org", err,
					sizeof(err)),
			 -1);
	assert_int_equal(auth_alias_add(f->dir, "x@example.org", "a%b@example.org", err,
					sizeof(err)),
			 -1);
	assert_int_equal(auth_alias_add(f->dir, "team@example.org", "alice@example.org", err,
					sizeof(err)),
			 0);
	assert_int_equal(auth_alias_add(f->dir, "team@example.org", "bob@example.org", err,
					sizeof(err)),
			 0);
	assert_int_equal(auth_alias_add(f->dir, "team@example.org", "BOB@example.org", err,
					sizeof(err)),
			 -1);
	assert_int_equal(auth_alias_add(f->dir, "team@example.org", "ext@remote.test", err,
					sizeof(err)),
			 0);
	assert_int_equal(auth_alias_add(f->dir, "all@example.org", "team@example.org", err,
					sizeof(err)),
			 0);
	assert_int_equal(auth_alias_add(f->dir, "all@example.org", "alice@example.org", err,
					sizeof(err)),
			 0);
	assert_int_equal(auth_alias_add(f->dir, "@catch.org", "carol@catch.org", err, sizeof(err)),
			 0);
	/* a loop: l1 -> l2 -> l1, and l2 -> bob */
	assert_int_equal(auth_alias_add(f->dir, "l1@example.org", "l2@example.org", err,
					sizeof(err)),
			 0);
	/* refused at add time now; a database from before that check may still hold one */
	assert_int_equal(auth_alias_add(f->dir, "l2@example.org", "l1@example.org", err,
					sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "loop"));
	insert_alias_row(f, "l2@example.org", "l1@example.org");
	assert_int_equal(auth_alias_add(f->dir, "l2@example.org", "bob@example.org", err,
					sizeof(err)),
			 0);
	/* keep-a-copy: alice is an alias of herself and of bob (a user's address: --force) */
	assert_int_equal(auth_alias_add(f->dir, "alice@example.org", "alice@example.org", err,
					sizeof(err)),
			 -1);
	assert_int_equal(auth_alias_add_shadowing(f->dir, "alice@example.org",
						  "alice@example.org", err, sizeof(err)),
			 0);
	assert_int_equal(auth_alias_add_shadowing(f->dir, "alice@example.org", "bob@example.org",
						  err, sizeof(err)),
			 0);

	c.n = 0;
	assert_int_equal(auth_alias_list(f->dir, collect_two, &c), 11);
	assert_string_equal(c.items[0], "@catch.org carol@catch.org");

	assert_int_equal(resolve(f, "bob@example.org", &c), 1);
	assert_true(has_item(&c, "bob@example.org", true));
	assert_int_equal(resolve(f, "Bob+Lists@Example.org", &c), 1);
	assert_true(has_item(&c, "bob@example.org", true));
	assert_int_equal(resolve(f, "nobody@example.org", &c), 0);
	assert_int_equal(resolve(f, "nobody+x@example.org", &c), 0);
	assert_int_equal(resolve(f, "bob@remote.test", &c), 0);
	assert_int_equal(resolve(f, "a%b@example.org", &c), 0);
	assert_int_equal(resolve(f, "alice@example.org", &c), 2);
	assert_true(has_item(&c, "alice@example.org", true));
	assert_true(has_item(&c, "bob@example.org", true));
	/* team: alice (-> alice, bob), bob again (dedupe), remote */
	assert_int_equal(resolve(f, "team@example.org", &c), 3);
	assert_true(has_item(&c, "ext@remote.test", false));
	assert_true(has_item(&c, "alice@example.org", true));
	assert_true(has_item(&c, "bob@example.org", true));
	assert_int_equal(resolve(f, "all+x@example.org", &c), 3);
	/* loop cut, the real target still reached */
	assert_int_equal(resolve(f, "l1@example.org", &c), 1);
	assert_true(has_item(&c, "bob@example.org", true));
	/* catch-all only when nothing else matches */
	assert_int_equal(resolve(f, "whatever@catch.org", &c), 1);
	assert_true(has_item(&c, "carol@catch.org", true));
	assert_int_equal(resolve(f, "carol+tag@catch.org", &c), 1);
	assert_true(has_item(&c, "carol@catch.org", true));

	/* depth: d0 -> d1 -> ... -> d9 -> bob is cut at 8 levels; d2 reaches bob in 8 */
	for (int i = 0; i < 10; i++) {
		char a[64], t[64];
		snprintf(a, sizeof(a), "d%d@example.org", i);
		if (i == 9)
			snprintf(t, sizeof(t), "bob@example.org");
		else
			snprintf(t, sizeof(t), "d%d@example.org", i + 1);
		assert_int_equal(auth_alias_add(f->dir, a, t, err, sizeof(err)), 0);
	}
	assert_int_equal(resolve(f, "d0@example.org", &c), 0);
	assert_int_equal(resolve(f, "d2@example.org", &c), 1);

	assert_int_equal(auth_alias_del(f->dir, "@catch.org", "carol@catch.org", err, sizeof(err)),
			 0);
	assert_int_equal(auth_alias_del(f->dir, "@catch.org", "carol@catch.org", err, sizeof(err)),
			 -1);
	assert_int_equal(resolve(f, "whatever@catch.org", &c), 0);
	/* a domain with aliases is not deleted under them */
	assert_int_equal(auth_domain_del(f->dir, "example.org", err, sizeof(err)), -1);
}

/* [auth] min_password_length counts characters, not octets; the address and its local part
 * are refused in any case. */
static void test_password_rules(void **state)
{
	char err[256];

	(void)state;
	assert_int_equal(auth_password_acceptable("ann@example.org", "1234567", 8, err,
						  sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "at least 8"));
	assert_int_equal(auth_password_acceptable("ann@example.org", "12345678", 8, err,
						  sizeof(err)),
			 0);
	/* seven characters in fourteen octets are still seven */
	assert_int_equal(auth_password_acceptable("ann@example.org",
						  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
						  "\xc3\xa9\xc3\xa9",
						  8, err, sizeof(err)),
			 -1);
	assert_int_equal(auth_password_acceptable("ann@example.org", "x", 1, err, sizeof(err)), 0);
	assert_int_equal(auth_password_acceptable("ann@example.org", "", 1, err, sizeof(err)), -1);
	assert_int_equal(auth_password_acceptable("annabelle@example.org", "AnnaBelle", 4, err,
						  sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "address"));
	assert_int_equal(auth_password_acceptable("annabelle@example.org",
						  "ANNABELLE@EXAMPLE.ORG", 4, err, sizeof(err)),
			 -1);
	assert_int_equal(auth_password_acceptable("annabelle@example.org", "annabelle1", 4, err,
						  sizeof(err)),
			 0);
}

/* Add-time checks of auth_alias_add: a user's address, itself, and loops at any depth, also
 * through plus-addressing and a catch-all. */
static void test_alias_checks(void **state)
{
	struct fixture *f = *state;
	char err[512];

	assert_int_equal(auth_domain_add(f->dir, "example.org", err, sizeof(err)), 0);
	assert_int_equal(auth_domain_add(f->dir, "other.org", err, sizeof(err)), 0);
	assert_int_equal(auth_user_add(f->dir, "alice@example.org", "pw", err, sizeof(err)), 0);

	/* shadowing a mailbox */
	assert_int_equal(auth_alias_add(f->dir, "Alice@example.org", "x@remote.test", err,
					sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "user"));
	assert_non_null(strstr(err, "--force"));
	/* pointing to itself, with no user of that name: delivers nowhere */
	assert_int_equal(auth_alias_add(f->dir, "self@example.org", "SELF@example.org", err,
					sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "itself"));
	assert_int_equal(auth_alias_add_shadowing(f->dir, "self@example.org", "self@example.org",
						  err, sizeof(err)),
			 -1);

	/* a chain twelve long (deeper than resolution follows) closed into a ring */
	for (int i = 0; i < 11; i++) {
		char a[64], t[64];
		snprintf(a, sizeof(a), "r%d@example.org", i);
		snprintf(t, sizeof(t), "r%d@%s", i + 1, i == 5 ? "other.org" : "example.org");
		if (i == 5)
			snprintf(a, sizeof(a), "r5@example.org");
		assert_int_equal(auth_alias_add(f->dir, a, t, err, sizeof(err)), 0);
		if (i == 5) /* the chain crosses to the other domain and back */
			assert_int_equal(auth_alias_add(f->dir, "r6@other.org", "r6@example.org",
							err, sizeof(err)),
					 0);
	}
	assert_int_equal(auth_alias_add(f->dir, "r11@example.org", "r0@example.org", err,
					sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "loop"));
	assert_int_equal(auth_alias_add(f->dir, "r11@example.org", "alice@example.org", err,
					sizeof(err)),
			 0);
	/* through plus-addressing: r0+tag is r0 */
	assert_int_equal(auth_alias_add(f->dir, "r11@example.org", "r0+tag@example.org", err,
					sizeof(err)),
			 -1);
	/* through a catch-all: an unknown name falls into @example.org, which leads to r3 */
	assert_int_equal(auth_alias_add(f->dir, "@example.org", "r3@example.org", err,
					sizeof(err)),
			 0);
	assert_int_equal(auth_alias_add(f->dir, "r11@example.org", "nobody@example.org", err,
					sizeof(err)),
			 -1);
	assert_int_equal(auth_alias_add(f->dir, "@example.org", "unknown@example.org", err,
					sizeof(err)),
			 -1);
	/* a target that is a user ends the walk; a remote one too */
	assert_int_equal(auth_alias_add(f->dir, "@example.org", "alice+x@example.org", err,
					sizeof(err)),
			 0);
	assert_int_equal(auth_alias_add(f->dir, "team@example.org", "r0@remote.test", err,
					sizeof(err)),
			 0);
	/* with --force an alias may take a user's address, and keep a copy for the user; a
	 * loop stays refused */
	assert_int_equal(auth_alias_add_shadowing(f->dir, "alice@example.org", "alice@example.org",
						  err, sizeof(err)),
			 0);
	assert_int_equal(auth_alias_add_shadowing(f->dir, "alice@example.org", "r0@example.org",
						  err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "loop"));
}

struct thread_arg {
	struct auth_directory *dir;
	int ok;
};

static void *verify_thread(void *p)
{
	struct thread_arg *a = p;
	for (int i = 0; i < 4; i++)
		if (auth_verify_password(a->dir, "alice@example.org", "pw", NULL) == AUTH_OK &&
		    auth_verify_password(a->dir, "alice@example.org", "no", NULL) == AUTH_FAILED &&
		    auth_user_exists(a->dir, "alice@example.org"))
			a->ok++;
	return NULL;
}

/* The handle is shared by worker threads. */
static void test_threads(void **state)
{
	struct fixture *f = *state;
	struct thread_arg args[4];
	pthread_t th[4];
	char err[256];

	assert_int_equal(auth_domain_add(f->dir, "example.org", err, sizeof(err)), 0);
	assert_int_equal(auth_user_add(f->dir, "alice@example.org", "pw", err, sizeof(err)), 0);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){ .dir = f->dir };
		assert_int_equal(pthread_create(&th[i], NULL, verify_thread, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].ok, 4);
	}
}

/* Reopening finds the same data and the same schema version. */
static void test_reopen(void **state)
{
	struct fixture *f = *state;
	char err[256];

	assert_int_equal(auth_domain_add(f->dir, "example.org", err, sizeof(err)), 0);
	assert_int_equal(auth_user_add(f->dir, "alice@example.org", "pw", err, sizeof(err)), 0);
	auth_directory_close(&f->dir);
	assert_int_equal(auth_directory_open(f->path, &f->dir, err, sizeof(err)), 0);
	assert_int_equal(auth_verify_password(f->dir, "alice@example.org", "pw", NULL), AUTH_OK);
	assert_int_equal(auth_directory_open("/nonexistent/dir", &(struct auth_directory *){ NULL },
					     err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "cannot open"));
}

static double verify_ms(struct auth_directory *dir, const char *user, const char *password,
			enum auth_result *result_r)
{
	struct timespec a, b;

	/* CPU time of this thread: the hash is work done here, and other load on the machine
	 * stretches wall time but not that */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
	*result_r = auth_verify_password(dir, user, password, NULL);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
	return (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
}

/* login_cache.c: a repeated right password skips the hash; wrong passwords, unknown users and
 * a changed password never profit from it. */
static void test_login_cache(void **state)
{
	struct fixture *f = *state;
	char err[256];
	enum auth_result r;
	double slow, fast;

	assert_int_equal(auth_domain_add(f->dir, "example.org", err, sizeof(err)), 0);
	assert_int_equal(auth_user_add(f->dir, "ann@example.org", "first secret", err, sizeof(err)), 0);
	auth_directory_set_login_cache(f->dir, 600);

	slow = verify_ms(f->dir, "ann@example.org", "first secret", &r);
	assert_int_equal(r, AUTH_OK);
	fast = verify_ms(f->dir, "ann@example.org", "first secret", &r);
	assert_int_equal(r, AUTH_OK);
	assert_true(fast * 4 < slow); /* the hash (~15 ms) was skipped */

	/* a wrong password is still checked the slow way, and still fails */
	slow = verify_ms(f->dir, "ann@example.org", "first secreT", &r);
	assert_int_equal(r, AUTH_FAILED);
	assert_true(slow > fast * 4);
	/* so is an unknown user */
	assert_int_equal(auth_verify_password(f->dir, "bob@example.org", "first secret", NULL),
			 AUTH_FAILED);

	/* a password change (here or in another process) makes the old one fail at once */
	assert_int_equal(auth_user_passwd(f->dir, "ann@example.org", "second secret", err,
					  sizeof(err)), 0);
	assert_int_equal(auth_verify_password(f->dir, "ann@example.org", "first secret", NULL),
			 AUTH_FAILED);
	assert_int_equal(auth_verify_password(f->dir, "ann@example.org", "second secret", NULL),
			 AUTH_OK);

	/* with the cache off, every login pays the hash again */
	auth_directory_set_login_cache(f->dir, 0);
	slow = verify_ms(f->dir, "ann@example.org", "second secret", &r);
	assert_int_equal(r, AUTH_OK);
	assert_true(slow > fast * 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_domains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_users, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import_passwd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aliases_and_resolution, setup, teardown),
		cmocka_unit_test_setup_teardown(test_password_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alias_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_cache, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
