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

/*
 * Two ledgers share one shape: the privacy budget (amounts in nano-rho per
 * analyst and dataset) and the row-export cap (one unit per export, per
 * analyst in all: "dataset" is "*", the purpose is recorded beside it).
 */
struct budget_ledger {
	const char *table;
	const char *charge_action, *refused_action;
	const char *amount_key, *remaining_key;
};

static const struct budget_ledger budget_rho_ledger = {
	"budget_ledger", "budget-charge", "budget-refused", "rho_nano", "remaining_nano",
};
static const struct budget_ledger budget_export_ledger = {
	"export_ledger", "export-charge", "export-refused", "exports", "remaining_exports",
};

static int
budget_ledger_schema(struct store *st, const struct budget_ledger *l, struct cg_err *err)
{
	char sql[1024];

	/* Append-only: the database itself refuses to change or drop a charge. */
	snprintf(sql, sizeof(sql),
	    "CREATE TABLE IF NOT EXISTS %1$s("
	    "  id INTEGER PRIMARY KEY,"
	    "  analyst TEXT NOT NULL,"
	    "  dataset TEXT NOT NULL,"
	    "  rho_nano INTEGER NOT NULL CHECK (rho_nano > 0),"
	    "  purpose TEXT NOT NULL,"
	    "  at INTEGER NOT NULL) STRICT;"
	    "CREATE INDEX IF NOT EXISTS %1$s_who ON %1$s(analyst, dataset);"
	    "CREATE TRIGGER IF NOT EXISTS %1$s_no_update BEFORE UPDATE ON %1$s "
	    "  BEGIN SELECT RAISE(ABORT, 'the %1$s is append-only'); END;"
	    "CREATE TRIGGER IF NOT EXISTS %1$s_no_delete BEFORE DELETE ON %1$s "
	    "  BEGIN SELECT RAISE(ABORT, 'the %1$s is append-only'); END;", l->table);
	if (sqlite3_exec(store_db(st), sql, NULL, NULL, NULL) != SQLITE_OK)
		return budget_dberr(st, "create", err);
	return 0;
}

int
budget_schema(struct store *st, struct cg_err *err)
{
	int r;

	if ((r = budget_ledger_schema(st, &budget_rho_ledger, err)) != 0)
		return r;
	return budget_ledger_schema(st, &budget_export_ledger, err);
}

int64_t
budget_rho_of_epsilon(int64_t eps_nano)
{
	/* rho = eps^2/2 in nano units: (eps_nano^2 / 1e9) / 2, rounded up. */
	__int128 sq = (__int128)eps_nano * eps_nano;
	__int128 den = (__int128)2 * BUDGET_NANO, rho;

	if (eps_nano <= 0)
		return 0;
	rho = (sq + den - 1) / den;
	/* Saturate: a wrapped charge would be a tiny one for an almost noiseless answer. */
	return rho > INT64_MAX ? INT64_MAX : (int64_t)rho;
}

static int
budget_sum(struct store *st, const struct budget_ledger *l, const char *analyst, const char *dataset,
    int64_t *spent, struct cg_err *err)
{
	sqlite3_stmt *s = NULL;
	char sql[256];
	int r = 0;

	*spent = 0;
	snprintf(sql, sizeof(sql), "SELECT coalesce(sum(rho_nano), 0) FROM %s WHERE analyst = ?1 AND dataset = ?2",
	    l->table);
	if (sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) != SQLITE_OK)
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
	return budget_sum(st, &budget_rho_ledger, analyst, dataset, spent_nano, err);
}

/* The export cap counts an analyst's row exports in all, whatever their purpose: one key per analyst. */
#define BUDGET_EXPORTS_ALL "*"

int
budget_exports_used(struct store *st, const char *analyst, uint64_t *used, struct cg_err *err)
{
	int64_t n = 0;
	int r;

	*used = 0;
	if ((r = budget_schema(st, err)) != 0 ||
	    (r = budget_sum(st, &budget_export_ledger, analyst, BUDGET_EXPORTS_ALL, &n, err)) != 0)
		return r;
	*used = (uint64_t)n;
	return 0;
}

static void
budget_event(Crossgate__AuditEvent *ev, Crossgate__AuditEvent__CountsEntry *ce, Crossgate__AuditEvent__CountsEntry **cep,
    const struct budget_ledger *l, const char *analyst, int refused, const char *purpose, int64_t amount,
    int64_t left)
{
	crossgate__audit_event__init(ev);
	ev->actor = (char *)analyst;
	ev->action = (char *)(refused ? l->refused_action : l->charge_action);
	ev->outcome = (char *)(refused ? "refused" : "ok");
	ev->purpose = (char *)(purpose ? purpose : "");
	crossgate__audit_event__counts_entry__init(&ce[0]);
	crossgate__audit_event__counts_entry__init(&ce[1]);
	ce[0].key = (char *)l->amount_key;
	ce[0].value = (uint64_t)amount;
	ce[1].key = (char *)l->remaining_key;
	ce[1].value = (uint64_t)(left > 0 ? left : 0);
	cep[0] = &ce[0];
	cep[1] = &ce[1];
	ev->counts = cep;
	ev->n_counts = 2;
}

/* A charge is positive and its cap not negative: CG_ERR_ARG otherwise (the charge and budget_fits alike). */
static int
budget_amount_check(int64_t amount, int64_t cap, struct cg_err *err)
{
	if (amount <= 0 || cap < 0)
		return cg_err_set(err, CG_ERR_ARG, "budget: a charge must be positive");
	return 0;
}

/* Check and record one charge, with its audit event, in one IMMEDIATE transaction. CG_ERR_POLICY if over the cap. */
static int
budget_ledger_charge(struct store *st, struct audit *a, const struct budget_ledger *l, const char *analyst,
    const char *dataset, int64_t amount, int64_t cap, const char *purpose, int64_t *remaining, struct cg_err *err)
{
	Crossgate__AuditEvent ev;
	Crossgate__AuditEvent__CountsEntry ce[2], *cep[2];
	sqlite3_stmt *s = NULL;
	char sql[256];
	int64_t spent = 0, left;
	int r, in_txn = 0;

	if (remaining != NULL)
		*remaining = 0;
	if ((r = budget_amount_check(amount, cap, err)) != 0)
		return r;
	if ((r = budget_schema(st, err)) != 0)
		return r;
	/* IMMEDIATE: the write lock is taken before the balance is read, so two charges cannot both fit. */
	if ((r = store_begin(st, err)) != 0)
		return r;
	in_txn = 1;
	if ((r = budget_sum(st, l, analyst, dataset, &spent, err)) != 0)
		goto out;
	left = cap - spent;
	if (amount > left) {
		budget_event(&ev, ce, cep, l, analyst, 1, purpose, amount, left);
		ev.reason = (char *)(l == &budget_rho_ledger ? "the query would overspend the privacy budget"
		    : "the analyst's row-export cap is reached");
		if ((r = audit_append(a, &ev, err)) != 0 || (r = store_commit(st, err)) != 0)
			goto out;
		in_txn = 0;
		audit_txn_end(a, 1);
		if (remaining != NULL)
			*remaining = left > 0 ? left : 0;
		return CG_ERR_POLICY;    /* the caller words the message */
	}
	snprintf(sql, sizeof(sql), "INSERT INTO %s(analyst, dataset, rho_nano, purpose, at) "
	    "VALUES (?1, ?2, ?3, ?4, strftime('%%s','now'))", l->table);
	if (sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) != SQLITE_OK) {
		r = budget_dberr(st, "prepare", err);
		goto out;
	}
	sqlite3_bind_text(s, 1, analyst, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, dataset, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, amount);
	sqlite3_bind_text(s, 4, purpose ? purpose : "", -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE) {
		r = budget_dberr(st, "record the charge", err);
		goto out;
	}
	budget_event(&ev, ce, cep, l, analyst, 0, purpose, amount, left - amount);
	if ((r = audit_append(a, &ev, err)) != 0 || (r = store_commit(st, err)) != 0)
		goto out;
	in_txn = 0;
	audit_txn_end(a, 1);
	if (remaining != NULL)
		*remaining = left - amount;
	r = 0;
out:
	sqlite3_finalize(s);
	if (in_txn) {
		store_rollback(st);
		audit_txn_end(a, 0);
	}
	return r;
}

/* The one wording of a charge that does not fit, whether refused by the charge or by budget_fits(). */
static int
budget_exhausted(const char *analyst, const char *dataset, int64_t rho_nano, int64_t left, int64_t cap_nano,
    struct cg_err *err)
{
	return cg_err_set(err, CG_ERR_POLICY, "privacy budget of '%s' on '%s' exhausted: the query needs rho %.9f, "
	    "%.9f of %.9f remains", analyst, dataset, (double)rho_nano / BUDGET_NANO, (double)left / BUDGET_NANO,
	    (double)cap_nano / BUDGET_NANO);
}

int
budget_charge(struct store *st, struct audit *a, const char *analyst, const char *dataset, int64_t rho_nano,
    int64_t cap_nano, const char *purpose, int64_t *remaining_nano, struct cg_err *err)
{
	int64_t left = 0;
	int r;

	r = budget_ledger_charge(st, a, &budget_rho_ledger, analyst, dataset, rho_nano, cap_nano, purpose, &left, err);
	if (remaining_nano != NULL)
		*remaining_nano = left;
	if (r == CG_ERR_POLICY)
		return budget_exhausted(analyst, dataset, rho_nano, left, cap_nano, err);
	return r;
}

int
budget_fits(struct store *st, const char *analyst, const char *dataset, int64_t rho_nano, int64_t cap_nano,
    struct cg_err *err)
{
	int64_t spent = 0;
	int r;

	if ((r = budget_amount_check(rho_nano, cap_nano, err)) != 0 ||
	    (r = budget_spent(st, analyst, dataset, &spent, err)) != 0)
		return r;
	if (rho_nano > cap_nano - spent)     /* the charge's own test */
		return budget_exhausted(analyst, dataset, rho_nano, spent > cap_nano ? 0 : cap_nano - spent, cap_nano,
		    err);
	return 0;
}

int
budget_export_charge(struct store *st, struct audit *a, const char *analyst, const char *purpose, uint32_t cap,
    struct cg_err *err)
{
	int64_t left = 0;
	int r;

	r = budget_ledger_charge(st, a, &budget_export_ledger, analyst, BUDGET_EXPORTS_ALL, 1, cap, purpose, &left, err);
	if (r == CG_ERR_POLICY)
		return cg_err_set(err, CG_ERR_POLICY, "analyst '%s' has taken all %u row exports the policy allows "
		    "(max_exports)", analyst, cap);
	return r;
}
