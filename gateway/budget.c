/* budget.c - see budget.h */
#include "gateway/budget.h"

#include <stdio.h>
#include <string.h>

static int
budget_dberr(struct store *st, const char *what, struct cg_err *err)
{
	return cg_err_set(err, CG_ERR_DB, "%s: budget ledger: %s: %s", store_path(st), what,
	    sqlite3_errmsg(store_db(st)));
}

int
budget_schema(struct store *st, struct cg_err *err)
{
	/* Append-only: the database itself refuses to change or drop a charge. */
	if (sqlite3_exec(store_db(st),
	    "CREATE TABLE IF NOT EXISTS budget_ledger("
	    "  id INTEGER PRIMARY KEY,"
	    "  analyst TEXT NOT NULL,"
	    "  dataset TEXT NOT NULL,"
	    "  rho_nano INTEGER NOT NULL CHECK (rho_nano > 0),"
	    "  purpose TEXT NOT NULL,"
	    "  at INTEGER NOT NULL) STRICT;"
	    "CREATE INDEX IF NOT EXISTS budget_ledger_who ON budget_ledger(analyst, dataset);"
	    "CREATE TRIGGER IF NOT EXISTS budget_ledger_no_update BEFORE UPDATE ON budget_ledger "
	    "  BEGIN SELECT RAISE(ABORT, 'the budget ledger is append-only'); END;"
	    "CREATE TRIGGER IF NOT EXISTS budget_ledger_no_delete BEFORE DELETE ON budget_ledger "
	    "  BEGIN SELECT RAISE(ABORT, 'the budget ledger is append-only'); END;",
	    NULL, NULL, NULL) != SQLITE_OK)
		return budget_dberr(st, "create", err);
	return 0;
}

int64_t
budget_rho_of_epsilon(int64_t eps_nano)
{
	/* rho = eps^2/2 in nano units: (eps_nano^2 / 1e9) / 2, rounded up. */
	__int128 sq = (__int128)eps_nano * eps_nano;
	__int128 den = (__int128)2 * BUDGET_NANO;

	if (eps_nano <= 0)
		return 0;
	return (int64_t)((sq + den - 1) / den);
}

static int
budget_sum(struct store *st, const char *analyst, const char *dataset, int64_t *spent, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	int r = 0;

	*spent = 0;
	if (sqlite3_prepare_v2(store_db(st), "SELECT coalesce(sum(rho_nano), 0) FROM budget_ledger "
	    "WHERE analyst = ?1 AND dataset = ?2", -1, &s, NULL) != SQLITE_OK)
		return budget_dberr(st, "prepare", err);
	sqlite3_bind_text(s, 1, analyst, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, dataset, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		*spent = sqlite3_column_int64(s, 0);
	else
		r = budget_dberr(st, "read", err);
	sqlite3_finalize(s);
	return r;
}

int
budget_spent(struct store *st, const char *analyst, const char *dataset, int64_t *spent_nano, struct cg_err *err)
{
	int r;

	if ((r = budget_schema(st, err)) != 0)
		return r;
	return budget_sum(st, analyst, dataset, spent_nano, err);
}

static void
budget_event(Crossgate__AuditEvent *ev, Crossgate__AuditEvent__CountsEntry *ce, Crossgate__AuditEvent__CountsEntry **cep,
    const char *analyst, const char *action, const char *outcome, const char *purpose, int64_t rho, int64_t left)
{
	crossgate__audit_event__init(ev);
	ev->actor = (char *)analyst;
	ev->action = (char *)action;
	ev->outcome = (char *)outcome;
	ev->purpose = (char *)(purpose ? purpose : "");
	crossgate__audit_event__counts_entry__init(&ce[0]);
	crossgate__audit_event__counts_entry__init(&ce[1]);
	ce[0].key = (char *)"rho_nano";
	ce[0].value = (uint64_t)rho;
	ce[1].key = (char *)"remaining_nano";
	ce[1].value = (uint64_t)(left > 0 ? left : 0);
	cep[0] = &ce[0];
	cep[1] = &ce[1];
	ev->counts = cep;
	ev->n_counts = 2;
}

int
budget_charge(struct store *st, struct audit *a, const char *analyst, const char *dataset, int64_t rho_nano,
    int64_t cap_nano, const char *purpose, int64_t *remaining_nano, struct cg_err *err)
{
	Crossgate__AuditEvent ev;
	Crossgate__AuditEvent__CountsEntry ce[2], *cep[2];
	sqlite3_stmt *s = NULL;
	int64_t spent = 0, left;
	int r, in_txn = 0;

	if (remaining_nano != NULL)
		*remaining_nano = 0;
	if (rho_nano <= 0 || cap_nano < 0)
		return cg_err_set(err, CG_ERR_ARG, "budget: a charge must be positive");
	if ((r = budget_schema(st, err)) != 0)
		return r;
	/* IMMEDIATE: the write lock is taken before the balance is read, so two charges cannot both fit. */
	if ((r = store_begin(st, err)) != 0)
		return r;
	in_txn = 1;
	if ((r = budget_sum(st, analyst, dataset, &spent, err)) != 0)
		goto out;
	left = cap_nano - spent;
	if (rho_nano > left) {
		budget_event(&ev, ce, cep, analyst, "budget-refused", "refused", purpose, rho_nano, left);
		ev.reason = (char *)"the query would overspend the privacy budget";
		if ((r = audit_append(a, &ev, err)) != 0 || (r = store_commit(st, err)) != 0)
			goto out;
		in_txn = 0;
		audit_txn_end(a, 1);
		if (remaining_nano != NULL)
			*remaining_nano = left > 0 ? left : 0;
		return cg_err_set(err, CG_ERR_POLICY, "privacy budget of '%s' on '%s' exhausted: the query needs "
		    "rho %.9f, %.9f of %.9f remains", analyst, dataset, (double)rho_nano / BUDGET_NANO,
		    (double)(left > 0 ? left : 0) / BUDGET_NANO, (double)cap_nano / BUDGET_NANO);
	}
	if (sqlite3_prepare_v2(store_db(st), "INSERT INTO budget_ledger(analyst, dataset, rho_nano, purpose, at) "
	    "VALUES (?1, ?2, ?3, ?4, strftime('%s','now'))", -1, &s, NULL) != SQLITE_OK) {
		r = budget_dberr(st, "prepare", err);
		goto out;
	}
	sqlite3_bind_text(s, 1, analyst, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, dataset, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, rho_nano);
	sqlite3_bind_text(s, 4, purpose ? purpose : "", -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE) {
		r = budget_dberr(st, "record the charge", err);
		goto out;
	}
	budget_event(&ev, ce, cep, analyst, "budget-charge", "ok", purpose, rho_nano, left - rho_nano);
	if ((r = audit_append(a, &ev, err)) != 0 || (r = store_commit(st, err)) != 0)
		goto out;
	in_txn = 0;
	audit_txn_end(a, 1);
	if (remaining_nano != NULL)
		*remaining_nano = left - rho_nano;
	r = 0;
out:
	sqlite3_finalize(s);
	if (in_txn) {
		store_rollback(st);
		audit_txn_end(a, 0);
	}
	return r;
}
