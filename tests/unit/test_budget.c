/*
 * test_budget.c - the privacy-budget ledger: charges within the cap pass,
 * an overspend is refused with the remaining budget, the ledger cannot be
 * changed, and concurrent processes and threads never spend more than the
 * cap together; the row-export cap works the same way.
 */
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sodium.h>

#include "cgtest.h"
#include "crypto/keyfile.h"
#include "gateway/budget.h"

static char dir[] = "/tmp/cg-test-budget-XXXXXX";
static char db[128];
static struct keyfile_key *gw, *gwpub;

static int open_all(struct store **st, struct audit **a);

/* One thread's connection racing for the "threads" budget: 30 charges of 0.1 against 1.0. */
static void *
race_thread(void *arg)
{
	struct store *st;
	struct audit *a;
	int j, *granted = arg;

	*granted = -1;
	if (open_all(&st, &a) != 0)
		return NULL;
	*granted = 0;
	for (j = 0; j < 30; j++) {
		struct cg_err e;
		int r = budget_charge(st, a, "threads", "kg", BUDGET_NANO / 10, BUDGET_NANO, "analytics", NULL, &e);
		if (r == 0)
			(*granted)++;
		else if (r != CG_ERR_POLICY) {
			fprintf(stderr, "thread charge: %s\n", e.msg);
			*granted = -1000;
		}
	}
	audit_free(a);
	store_close(st);
	return NULL;
}

static int
open_all(struct store **st, struct audit **a)
{
	struct cg_err err;

	*st = NULL;
	*a = NULL;
	if (store_open(db, STORE_OPEN_CREATE, st, &err) != 0 || audit_open(*st, gw, a, &err) != 0) {
		fprintf(stderr, "open: %s\n", err.msg);
		return -1;
	}
	return 0;
}

int
main(void)
{
	struct store *st;
	struct audit *a;
	struct audit_report rep;
	struct cg_err err = { 0 };
	int64_t left, spent;
	uint64_t n_audit;
	pid_t kids[4];
	int i, status, ok_children = 0;

	if (sodium_init() < 0 || mkdtemp(dir) == NULL)
		return 1;
	snprintf(db, sizeof(db), "%s/g.db", dir);
	CHECK_EQ_INT(keyfile_generate(KEYFILE_ED25519_SECRET, &gw, &err), 0);
	CHECK_EQ_INT(keyfile_public_of(gw, &gwpub, &err), 0);
	if (gw == NULL || gwpub == NULL || open_all(&st, &a) != 0)
		CGT_DONE();

	/* rho = eps^2 / 2, rounded up: never undercharged. */
	CHECK_EQ_INT(budget_rho_of_epsilon(BUDGET_NANO), BUDGET_NANO / 2);
	CHECK_EQ_INT(budget_rho_of_epsilon(BUDGET_NANO / 10), 5000000);
	CHECK_EQ_INT(budget_rho_of_epsilon(1), 1);
	CHECK_EQ_INT(budget_rho_of_epsilon(0), 0);

	/* Within the cap: recorded, with what remains. */
	CHECK_EQ_INT(budget_charge(st, a, "ana", "kg", 300000000, BUDGET_NANO, "analytics", &left, &err), 0);
	CHECK_EQ_INT(left, 700000000);
	/* budget_fits: the charge's test and message, nothing recorded or audited. */
	n_audit = audit_size(a);
	CHECK_EQ_INT(budget_fits(st, "ana", "kg", 700000000, BUDGET_NANO, &err), 0);
	CHECK_EQ_INT(budget_fits(st, "ana", "kg", 700000001, BUDGET_NANO, &err), CG_ERR_POLICY);
	CHECK_CONTAINS(err.msg, "privacy budget of 'ana' on 'kg' exhausted: the query needs rho 0.700000001, "
	    "0.700000000 of 1.000000000 remains");
	CHECK_EQ_INT(budget_fits(st, "ana", "kg", 0, BUDGET_NANO, &err), CG_ERR_ARG);
	CHECK_EQ_INT(budget_fits(st, "ana", "kg", 1, 200000000, &err), CG_ERR_POLICY);   /* spent past a lowered cap */
	CHECK_CONTAINS(err.msg, "0.000000000 of 0.200000000 remains");
	CHECK_EQ_INT(budget_spent(st, "ana", "kg", &spent, &err), 0);
	CHECK_EQ_INT(spent, 300000000);
	CHECK_EQ_INT(audit_size(a), n_audit);
	CHECK_EQ_INT(budget_charge(st, a, "ana", "kg", 700000000, BUDGET_NANO, "analytics", &left, &err), 0);
	CHECK_EQ_INT(left, 0);
	/* Over it: refused, with the remaining budget in the message, and logged. */
	CHECK_EQ_INT(budget_charge(st, a, "ana", "kg", 1, BUDGET_NANO, "analytics", &left, &err), CG_ERR_POLICY);
	CHECK_CONTAINS(err.msg, "privacy budget of 'ana' on 'kg' exhausted");
	CHECK_CONTAINS(err.msg, "0.000000000 of 1.000000000 remains");
	CHECK_EQ_INT(budget_spent(st, "ana", "kg", &spent, &err), 0);
	CHECK_EQ_INT(spent, BUDGET_NANO);
	/* Budgets are per analyst and per dataset. */
	CHECK_EQ_INT(budget_charge(st, a, "bob", "kg", 500000000, BUDGET_NANO, "analytics", &left, &err), 0);
	CHECK_EQ_INT(budget_charge(st, a, "ana", "other", 500000000, BUDGET_NANO, "analytics", &left, &err), 0);
	CHECK_EQ_INT(budget_charge(st, a, "ana", "kg", 0, BUDGET_NANO, "analytics", &left, &err), CG_ERR_ARG);
	/* Append-only: no refunds, not even by SQL. */
	CHECK(sqlite3_exec(store_db(st), "UPDATE budget_ledger SET rho_nano = 1", NULL, NULL, NULL) != SQLITE_OK);
	CHECK(sqlite3_exec(store_db(st), "DELETE FROM budget_ledger", NULL, NULL, NULL) != SQLITE_OK);
	CHECK_EQ_INT(budget_spent(st, "ana", "kg", &spent, &err), 0);
	CHECK_EQ_INT(spent, BUDGET_NANO);
	audit_free(a);
	store_close(st);

	/* Four processes race 30 charges of 0.1 each against a cap of 1.0: exactly 10 fit. */
	for (i = 0; i < 4; i++) {
		if ((kids[i] = fork()) == 0) {
			struct store *cst;
			struct audit *ca;
			int j, granted = 0;

			if (open_all(&cst, &ca) != 0)
				_exit(100);
			for (j = 0; j < 30; j++) {
				struct cg_err e;
				int r = budget_charge(cst, ca, "race", "kg", BUDGET_NANO / 10, BUDGET_NANO, "analytics", NULL,
				    &e);
				if (r == 0)
					granted++;
				else if (r != CG_ERR_POLICY)
					_exit(101);
			}
			audit_free(ca);
			store_close(cst);
			_exit(granted);
		}
	}
	{
		int total = 0;
		for (i = 0; i < 4; i++) {
			if (waitpid(kids[i], &status, 0) == kids[i] && WIFEXITED(status) && WEXITSTATUS(status) <= 30) {
				ok_children++;
				total += WEXITSTATUS(status);
			}
		}
		CHECK_EQ_INT(ok_children, 4);
		CHECK_EQ_INT(total, 10);
	}
	if (open_all(&st, &a) == 0) {
		CHECK_EQ_INT(budget_spent(st, "race", "kg", &spent, &err), 0);
		CHECK_EQ_INT(spent, BUDGET_NANO);
		/* Every charge and refusal is an audit event, and the log written by five processes verifies. */
		CHECK_EQ_INT(audit_verify(st, gwpub, &rep, &err), 0);
		CHECK_EQ_INT(rep.events, 5 + 4 * 30);   /* five charges and refusals above, then the race */
		audit_free(a);
		store_close(st);
	}
	/* Four threads, each with its own connection, race the same way: exactly 10 fit. */
	{
		pthread_t th[4];
		int granted[4], total = 0;

		for (i = 0; i < 4; i++)
			CHECK_EQ_INT(pthread_create(&th[i], NULL, race_thread, &granted[i]), 0);
		for (i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			CHECK(granted[i] >= 0);
			total += granted[i];
		}
		CHECK_EQ_INT(total, 10);
	}
	/* The row-export cap: three of three, then refused by name, and counted in all, whatever the purpose. */
	if (open_all(&st, &a) == 0) {
		uint64_t used = 0;

		for (i = 0; i < 3; i++)
			CHECK_EQ_INT(budget_export_charge(st, a, "ana", "analytics", 3, &err), 0);
		CHECK_EQ_INT(budget_export_charge(st, a, "ana", "analytics", 3, &err), CG_ERR_POLICY);
		CHECK_CONTAINS(err.msg, "analyst 'ana' has taken all 3 row exports the policy allows");
		CHECK_EQ_INT(budget_exports_used(st, "ana", &used, &err), 0);
		CHECK_EQ_INT(used, 3);
		/* The cap is in all, whatever the purpose. */
		CHECK_EQ_INT(budget_export_charge(st, a, "ana", "marketing", 3, &err), CG_ERR_POLICY);
		CHECK_EQ_INT(budget_export_charge(st, a, "bob", "marketing", 3, &err), 0);
		/* A charge past int64 saturates (the cap then refuses it); it never wraps to a small one. */
		CHECK(budget_rho_of_epsilon(INT64_MAX) == INT64_MAX);
		CHECK(budget_rho_of_epsilon(192076776699890LL) == INT64_MAX);
		CHECK_EQ_INT(budget_rho_of_epsilon(1000000000LL), 500000000LL);
		CHECK(sqlite3_exec(store_db(st), "DELETE FROM export_ledger", NULL, NULL, NULL) != SQLITE_OK);
		audit_free(a);
		store_close(st);
	}
	keyfile_free(gw);
	keyfile_free(gwpub);
	{
		char cmd[160];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	}
	CGT_DONE();
}
