/* roost domain|user|alias: maintenance of the accounts directory (data_dir/accounts.db).
 * Passwords come from standard input only, so they never show in argv or shell history. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../auth/auth.h"
#include "../core/core.h"
#include "../store/store.h"
#include "cli.h"

static struct auth_directory *open_directory(struct config *cfg)
{
	struct auth_directory *dir = NULL;
	char err[512];
	char *data_dir = config_resolve_path(cfg, cfg->data_dir);

	if (fs_mkdir_p(data_dir) < 0) {
		fprintf(stderr, "roost: cannot create %s: %s\n", data_dir, strerror(errno));
		free(data_dir);
		return NULL;
	}
	if (auth_directory_open(data_dir, &dir, err, sizeof(err)) < 0)
		fprintf(stderr, "roost: %s\n", err);
	free(data_dir);
	return dir;
}

static void print_item(const char *item, void *ctx)
{
	(void)ctx;
	printf("%s\n", item);
}

static void print_alias(const char *alias, const char *target, void *ctx)
{
	(void)ctx;
	printf("%s %s\n", alias, target);
}

static int usage_error(const char *usage)
{
	fprintf(stderr, "usage: roost %s\n", usage);
	return 2;
}

static int fail(const char *err)
{
	fprintf(stderr, "roost: %s\n", err);
	return 1;
}

static const char domain_usage[] =
	"domain add DOMAIN | domain del DOMAIN | domain list | domain dkim DOMAIN | "
	"domain dkim-sign DOMAIN < message | domain dns DOMAIN | domain check DOMAIN | "
	"domain set DOMAIN NAME VALUE | "
	"domain unset DOMAIN NAME | domain settings DOMAIN\n"
	"(set: quota.storage SIZE (500M, 2G, octets; 0 or none = unlimited) or quota.messages N, "
	"limits of the sum over the domain's accounts)";

static void print_domain_setting(const char *name, const char *value, void *ctx)
{
	(void)ctx;
	printf("%s = %s\n", name, value);
}

/* `domain set|unset|settings`: the values are checked here, as `user set` does. */
static int domain_settings_command(struct config *cfg, int argc, char **argv)
{
	struct auth_directory *dir;
	char err[512];
	int status = 0;

	if (strcmp(argv[0], "set") == 0 &&
	    config_domain_setting_check(argv[2], argv[3], NULL, err, sizeof(err)) < 0)
		return fail(err);
	if (strcmp(argv[0], "unset") == 0 &&
	    config_domain_setting_check(argv[2], "0", NULL, err, sizeof(err)) < 0)
		return fail(err);
	dir = open_directory(cfg);
	if (dir == NULL)
		return 1;
	if (strcmp(argv[0], "settings") == 0) {
		if (!auth_domain_exists(dir, argv[1])) {
			fprintf(stderr, "roost: domain %s does not exist\n", argv[1]);
			status = 1;
		} else if (auth_domain_settings(dir, argv[1], print_domain_setting, NULL) < 0) {
			status = fail("cannot read the accounts database");
		}
	} else if (auth_domain_setting_set(dir, argv[1], argv[2],
					   strcmp(argv[0], "set") == 0 ? argv[3] : NULL, err,
					   sizeof(err)) < 0) {
		status = fail(err);
	}
	auth_directory_close(&dir);
	return status;
}

int cmd_domain(struct config *cfg, int argc, char **argv)
{
	struct auth_directory *dir;
	char err[512];
	int status = 0;

	if (argc < 1)
		return usage_error(domain_usage);
	if (strcmp(argv[0], "dkim") == 0 && argc == 2)
		return cmd_domain_dkim(cfg, argv[1]);
	if (strcmp(argv[0], "dkim-sign") == 0 && argc == 2)
		return cmd_domain_dkim_sign(cfg, argv[1]);
	if (strcmp(argv[0], "dns") == 0 && argc == 2)
		return cmd_domain_dns(cfg, argv[1]);
	if (strcmp(argv[0], "check") == 0 && argc == 2)
		return cmd_domain_check(cfg, argv[1]);
	if ((strcmp(argv[0], "set") == 0 && argc == 4) ||
	    (strcmp(argv[0], "unset") == 0 && argc == 3) ||
	    (strcmp(argv[0], "settings") == 0 && argc == 2))
		return domain_settings_command(cfg, argc, argv);
	bool one = strcmp(argv[0], "add") == 0 || strcmp(argv[0], "del") == 0;
	if (!(one && argc == 2) && !(strcmp(argv[0], "list") == 0 && argc == 1))
		return usage_error(domain_usage);
	dir = open_directory(cfg);
	if (dir == NULL)
		return 1;
	if (strcmp(argv[0], "add") == 0) {
		if (auth_domain_add(dir, argv[1], err, sizeof(err)) < 0)
			status = fail(err);
		else
			cli_dkim_generate(cfg, argv[1]); /* a missing key is a warning, not a failure */
	} else if (strcmp(argv[0], "del") == 0) {
		if (auth_domain_del(dir, argv[1], err, sizeof(err)) < 0)
			status = fail(err);
	} else if (auth_domain_list(dir, print_item, NULL) < 0) {
		status = fail("cannot read the accounts database");
	}
	auth_directory_close(&dir);
	return status;
}

static const char user_usage[] =
	"user add ADDRESS | user del [--purge] ADDRESS | user passwd ADDRESS | "
	"user list [DOMAIN] | user import-passwd FILE DOMAIN | user set ADDRESS NAME VALUE | "
	"user unset ADDRESS NAME | user settings ADDRESS (with the quota used)\n"
	"(add and passwd read the password from standard input, asking twice on a terminal; it "
	"needs [auth] min_password_length characters and must not be the address. del moves the "
	"mail to DATA_DIR/archive/DOMAIN/USER-TIME, --purge removes it. import-passwd keeps "
	"crypt hashes: those users have PLAIN/LOGIN at once and SCRAM-SHA-256 after their first "
	"plaintext login or a user passwd. set overrides a server setting for one account: "
	"pop3.delete_action, pop3.include_junk, spam.threshold, quota.storage (500M, 2G, "
	"octets; 0 or none = unlimited), quota.messages)";

static void collect_setting(const char *name, const char *value, void *ctx)
{
	struct account_settings *as = ctx;
	char err[256];

	/* A value stored by another version that this one does not know is shown, not used. */
	if (config_account_apply(as, name, value, err, sizeof(err)) < 0)
		fprintf(stderr, "roost: ignoring stored setting: %s\n", err);
}

static void print_limit(const char *what, uint64_t used, uint64_t limit, const char *unit)
{
	if (limit == STORE_QUOTA_NONE)
		printf("%s = %llu%s of unlimited\n", what, (unsigned long long)used, unit);
	else
		printf("%s = %llu%s of %llu%s (%llu%%)\n", what, (unsigned long long)used, unit,
		       (unsigned long long)limit, unit,
		       (unsigned long long)(limit != 0 ? used * 100 / limit : 100));
}

/* The quota lines of `user settings`: usage from the account's index and the limits in
 * effect (the account's own, lowered to what its domain has left). */
static int print_quota_usage(struct config *cfg, struct auth_directory *dir, const char *user)
{
	char *data_dir = config_resolve_path(cfg, cfg->data_dir);
	struct store_settings set = { .data_dir = data_dir };
	struct store_err serr = { 0 };
	struct cli_quota policy = { cfg, dir };
	struct store_account *acct = NULL;
	struct store_quota q;
	int status = 0;
	struct store *store = store_open(&set, &serr);

	free(data_dir);
	if (store == NULL)
		return fail(serr.text);
	store_set_quota_policy(store, cli_quota_policy, &policy);
	if (store_account_open(store, user, &acct, &serr) != STORE_OK ||
	    store_account_quota(acct, &q, &serr) != STORE_OK) {
		status = fail(serr.text);
	} else {
		print_limit("quota.storage.used", q.used_bytes, q.limit_bytes, " octets");
		print_limit("quota.messages.used", q.used_messages, q.limit_messages, "");
		if (q.policy.domain_storage != 0 || q.policy.domain_messages != 0)
			printf("quota.domain.used = %llu octets, %llu messages\n",
			       (unsigned long long)q.domain_used_bytes,
			       (unsigned long long)q.domain_used_messages);
	}
	store_account_close(&acct);
	store_close(&store);
	return status;
}

/* `user settings`: every per-account setting with the value that applies and where it
 * comes from. */
static int print_user_settings(struct config *cfg, struct auth_directory *dir, const char *user)
{
	struct account_settings effective;

	if (!auth_user_exists(dir, user)) {
		fprintf(stderr, "roost: user %s does not exist\n", user);
		return 1;
	}
	config_account_defaults(cfg, &effective);
	if (auth_user_settings(dir, user, collect_setting, &effective) < 0)
		return fail("cannot read the accounts database");
	config_account_print(&effective, stdout);
	return print_quota_usage(cfg, dir, user);
}

static int set_user_setting(struct auth_directory *dir, int argc, char **argv)
{
	struct account_settings check;
	char err[512];

	/* Refuse a name or value the server would not understand before storing it. */
	memset(&check, 0, sizeof(check));
	if (argc == 4 && config_account_apply(&check, argv[2], argv[3], err, sizeof(err)) < 0)
		return fail(err);
	if (argc == 3 && !config_account_known(argv[2])) {
		fprintf(stderr, "roost: %s is not a per-account setting (those are: %s)\n",
			argv[2], config_account_names());
		return 1;
	}
	if (auth_user_setting_set(dir, argv[1], argv[2], argc == 4 ? argv[3] : NULL, err,
				  sizeof(err)) < 0)
		return fail(err);
	return 0;
}

/* Mail left at a new user's address (a delete whose move failed, or a delivery that was
 * already under way when the user was deleted) is moved to the archive before the user
 * exists: a new account never inherits an earlier one's mail. */
static int archive_leftover_mail(struct config *cfg, const char *address)
{
	struct store_err serr = { 0 };
	char *archived = NULL;
	char *data_dir = config_resolve_path(cfg, cfg->data_dir);
	enum store_error e = store_account_remove(data_dir, address, false, &archived, &serr);

	free(data_dir);
	if (e == STORE_ERR_NOT_FOUND)
		return 0;
	if (e != STORE_OK) {
		fprintf(stderr, "roost: mail of an earlier %s is in the way and cannot be moved: "
			"%s\n", address, serr.text);
		return -1;
	}
	printf("mail of an earlier %s was moved to %s; the new account starts empty\n", address,
	       archived);
	free(archived);
	return 0;
}

/* `user add` and `user passwd`: every check that needs no password comes before asking for
 * it, so a terminal user does not type a password twice to learn the domain is missing. */
static int set_password(struct config *cfg, struct auth_directory *dir, bool add,
			const char *address)
{
	char err[512];
	char *pw;
	int status = 0;

	if (add && auth_user_addable(dir, address, err, sizeof(err)) < 0)
		return fail(err);
	if (!add && !auth_user_exists(dir, address)) {
		fprintf(stderr, "roost: user %s does not exist\n", address);
		return 1;
	}
	pw = cli_read_new_password();
	if (pw == NULL)
		return 1;
	if (auth_password_acceptable(address, pw, (uint32_t)cfg->min_password_length, err,
				     sizeof(err)) < 0)
		status = fail(err);
	else if (add && archive_leftover_mail(cfg, address) < 0)
		status = 1;
	else if ((add ? auth_user_add(dir, address, pw, err, sizeof(err))
		      : auth_user_passwd(dir, address, pw, err, sizeof(err))) < 0)
		status = fail(err);
	mem_wipe(pw, strlen(pw));
	free(pw);
	return status;
}

/* `user del [--purge] ADDRESS`: the user goes first, so nothing new is delivered or logged in,
 * then the mail directory is moved (or removed) in one rename the server can detect. */
static int delete_user(struct config *cfg, struct auth_directory *dir, const char *address,
		       bool purge)
{
	struct store_err serr = { 0 };
	char err[512];
	char *archived = NULL;

	if (auth_user_del(dir, address, err, sizeof(err)) < 0)
		return fail(err);
	char *data_dir = config_resolve_path(cfg, cfg->data_dir);
	enum store_error e = store_account_remove(data_dir, address, purge, &archived, &serr);
	free(data_dir);
	if (e == STORE_ERR_NOT_FOUND) {
		printf("deleted %s (it had no mail)\n", address);
	} else if (e != STORE_OK) {
		fprintf(stderr, "roost: deleted %s, but its mail was not %s: %s\n", address,
			purge ? "removed" : "archived", serr.text);
		if (!purge) /* it is still at the address: say what keeps it from a new user */
			fprintf(stderr, "roost: `roost user add %s` would move it to the archive "
				"first\n", address);
		return 1;
	} else if (purge) {
		printf("deleted %s and removed its mail\n", address);
	} else {
		printf("deleted %s; its mail is in %s\n", address, archived);
	}
	free(archived);
	return 0;
}

static int import_passwd(struct auth_directory *dir, const char *path, const char *domain)
{
	char err[512];
	int without_scram = 0;
	int n = auth_import_passwd_file(dir, path, domain, &without_scram, err, sizeof(err));

	if (n < 0)
		return fail(err);
	printf("imported %d user(s)\n", n);
	if (without_scram > 0)
		printf("note: %d of them kept a crypt hash, which cannot give SCRAM-SHA-256 keys: "
		       "PLAIN and LOGIN (IMAP LOGIN, POP3 USER/PASS) work for them now, "
		       "SCRAM-SHA-256 fails for them until their first successful login with one "
		       "of those (which adds the keys) or a new password set with "
		       "`roost user passwd`\n",
		       without_scram);
	return 0;
}

int cmd_user(struct config *cfg, int argc, char **argv)
{
	struct auth_directory *dir;
	int status = 0;

	if (argc < 1)
		return usage_error(user_usage);
	const char *sub = argv[0];
	bool purge = strcmp(sub, "del") == 0 && argc == 3 && strcmp(argv[1], "--purge") == 0;
	if (purge) {
		argv[1] = argv[2];
		argc = 2;
	}
	bool ok = ((strcmp(sub, "add") == 0 || strcmp(sub, "del") == 0 ||
		    strcmp(sub, "passwd") == 0) && argc == 2 && argv[1][0] != '-') ||
		  (strcmp(sub, "list") == 0 && argc <= 2) ||
		  (strcmp(sub, "import-passwd") == 0 && argc == 3) ||
		  (strcmp(sub, "set") == 0 && argc == 4) ||
		  (strcmp(sub, "unset") == 0 && argc == 3) ||
		  (strcmp(sub, "settings") == 0 && argc == 2);
	if (!ok)
		return usage_error(user_usage);
	dir = open_directory(cfg);
	if (dir == NULL)
		return 1;
	if (strcmp(sub, "add") == 0 || strcmp(sub, "passwd") == 0) {
		status = set_password(cfg, dir, strcmp(sub, "add") == 0, argv[1]);
	} else if (strcmp(sub, "del") == 0) {
		status = delete_user(cfg, dir, argv[1], purge);
	} else if (strcmp(sub, "list") == 0) {
		if (argc == 2 && !auth_domain_exists(dir, argv[1])) {
			fprintf(stderr, "roost: domain %s does not exist\n", argv[1]);
			status = 1;
		} else if (auth_user_list(dir, argc == 2 ? argv[1] : NULL, print_item, NULL) < 0) {
			status = fail("cannot read the accounts database");
		}
	} else if (strcmp(sub, "set") == 0 || strcmp(sub, "unset") == 0) {
		status = set_user_setting(dir, argc, argv);
	} else if (strcmp(sub, "settings") == 0) {
		status = print_user_settings(cfg, dir, argv[1]);
	} else {
		status = import_passwd(dir, argv[1], argv[2]);
	}
	auth_directory_close(&dir);
	return status;
}

static const char alias_usage[] =
	"alias add [--force] ALIAS TARGET... | alias del ALIAS TARGET... | alias list\n"
	"(ALIAS is an address or @domain for a catch-all. add refuses an ALIAS that is a user's "
	"address unless --force, and a TARGET that leads back to ALIAS)";

int cmd_alias(struct config *cfg, int argc, char **argv)
{
	struct auth_directory *dir;
	char err[512];
	int status = 0;

	if (argc < 1)
		return usage_error(alias_usage);
	bool add = strcmp(argv[0], "add") == 0, del = strcmp(argv[0], "del") == 0;
	bool force = add && argc >= 2 && strcmp(argv[1], "--force") == 0;
	if (force) {
		argv++;
		argc--;
	}
	if (!((add || del) && argc >= 3 && argv[1][0] != '-') &&
	    !(strcmp(argv[0], "list") == 0 && argc == 1))
		return usage_error(alias_usage);
	dir = open_directory(cfg);
	if (dir == NULL)
		return 1;
	if (add || del) {
		for (int i = 2; i < argc; i++) {
			int rc = del     ? auth_alias_del(dir, argv[1], argv[i], err, sizeof(err))
				 : force ? auth_alias_add_shadowing(dir, argv[1], argv[i], err,
								    sizeof(err))
					 : auth_alias_add(dir, argv[1], argv[i], err, sizeof(err));
			if (rc < 0) {
				status = fail(err);
				break;
			}
		}
	} else if (auth_alias_list(dir, print_alias, NULL) < 0) {
		status = fail("cannot read the accounts database");
	}
	auth_directory_close(&dir);
	return status;
}
