/*
 * pack.h - the partner side: CSV in, one sealed and signed batch file out.
 *
 * Each row is checked against the partner's schema in the policy; identifiers
 * are normalized and, for rows whose latest consent includes `match`, turned
 * into tokens (token.h).  Rows of one user within the file (rows of one key:
 * the normalized email, or the phone of rows without an email, as the
 * gateway's join groups them; a shared phone never merges two emails) are
 * merged: the row with the latest
 * consent_at wins (ties: the later line), so a withdrawal in a newer row is
 * never undone by an older one.  Local user ids and identifiers never leave
 * the partner; the payload holds only the feature and quasi-identifier
 * columns.
 *
 * Withdrawal.  A user whose latest row lacks `match` gets no data record.
 * With a state file (state.h) the agent knows what it sent before: a user
 * id it sent gets a withdrawal record (proto SealedRecord.withdrawal)
 * carrying the remembered tokens, in every batch that lists it without
 * `match` (a batch packed but never pushed loses nothing; the gateway takes
 * a repeated withdrawal harmlessly); one never sent is never tokenized.  Without a state file (or a row without a user id) the agent
 * cannot know, so every such user gets a withdrawal with the tokens of the
 * row's identifiers: the gateway uses them only to erase and to keep a keyed
 * hash, never stores them (README, "Withdrawal").  A user id sent before
 * with `match` whose newer row keeps `match` but lost another purpose gets
 * its data record and a narrowing withdrawal (only with a state file: without
 * one, the gateway's newest-consent rule alone narrows the user).  The state
 * remembers each user's last consent sent.
 *
 * Rows are checked and normalized, and records tokenized, sealed and
 * encoded, on `threads` worker threads; the CSV reading, the merge by key,
 * the state and receipts and the writing stay on the calling thread, in
 * input order, so records, their order and the batch bytes (apart from the
 * batch's random key, id and the signature over them) do not depend on the
 * thread count.
 *
 * A bad row is reported ("file:line:column (name): reason", never the value)
 * and counted; it does not stop the others unless `strict`.
 */
#ifndef CG_PACK_H
#define CG_PACK_H

#include <stdint.h>
#include <stdio.h>
#include "base/err.h"
#include "crypto/keyfile.h"
#include "policy/policy.h"

struct pack_opts {
	const struct policy *pol;
	const char *partner_id;
	const char *input;                  /* CSV path, "-" for stdin */
	const char *output;                 /* batch file path */
	const struct keyfile_key *match;    /* KEYFILE_MATCH */
	const struct keyfile_key *sign;     /* partner's KEYFILE_ED25519_SECRET */
	const struct keyfile_key *gateway;  /* gateway's KEYFILE_X25519_PUBLIC */
	int strict;                         /* any bad row fails the whole file, nothing written */
	FILE *report;                       /* bad-row lines go here (NULL: not printed) */
	uint64_t report_max;                /* print at most this many bad-row lines (0: all) */
	int progress;                       /* print a progress line on stderr */
	const char *state;                  /* agent state file (state.h) to remember user id -> tokens, or NULL */
	const char *receipts;               /* directory for the withdrawals' receipts (receipt.h), or NULL */
	unsigned threads;                   /* worker threads (0: one per online CPU); the output is the same for any */
	unsigned task_rows;                 /* rows per worker task (0: 2048); small values let a test cross many
	                                       task and window boundaries */
};

struct pack_stats {
	uint64_t rows;                      /* data rows read */
	uint64_t bad_rows;
	uint64_t duplicates;                /* rows superseded by a later row of the same user */
	uint64_t no_match;                  /* users whose latest row lacks `match` consent: no data record */
	uint64_t withdrawn;                 /* of those, users sent a withdrawal (the rest: never sent, never tokenized) */
	uint64_t narrowed;                  /* users keeping `match` who lost another purpose: narrowing withdrawals */
	uint64_t packed;                    /* data records written */
	uint64_t receipts;                  /* receipt files written (one per withdrawal, with `receipts`) */
	unsigned char batch_id[16];
	unsigned char digest[32];
};

int pack_csv(const struct pack_opts *o, struct pack_stats *stats, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

#endif
