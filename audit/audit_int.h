/* audit_int.h - internal to audit/: the log's state, the shared limits and the helpers
 * that audit.c and its sections (audit_keychain.c, audit_erase.c, audit_verify.c,
 * audit_copy.c, audit_proof.c, audit_witness.c) share.  Not part of the module's
 * interface: nothing outside audit/ includes it; callers use audit.h. */
#ifndef CG_AUDIT_INT_H
#define CG_AUDIT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"

/* Bumped when the audit tables change; audit_schema() migrates older files. */
#define AUDIT_SCHEMA_VERSION 3     /* 2: audit_nodes; 3: audit_keys */
#define AUDIT_ERASE_ACTION "audit-erase"
#define AUDIT_NODE_END_MAX ((uint64_t)1 << 56)   /* id = end * 64 + level stays below 2^63 */
#define AUDIT_NONE UINT64_MAX

struct audit {
	struct store *st;
	const struct keyfile_key *sign;
	char origin[AUDIT_ORIGIN_MAX];      /* the log's: its first key's, and every signature's key name */
	struct merkle_frontier committed;
	struct merkle_frontier pending;
	sqlite3_stmt *ins_event, *ins_cp, *ins_node, *ins_span, *max_seq;
};

/*
 * The fields verification needs, without unpacking (which allocates): the
 * wire format is walked whole, so that garbage is still rejected, and the
 * last value of a repeated scalar wins, as protobuf parsers do.
 */
struct audit_view {
	uint64_t seq;
	int64_t time;
	const unsigned char *action;
	size_t action_len;
};

struct audit_nodes {
	struct store *st;
	sqlite3_stmt *leaf, *node;
};

/* audit.c */
int audit_dberr(struct store *st, const char *what, struct cg_err *err);
int audit_prepare(struct store *st, const char *sql, sqlite3_stmt **s, struct cg_err *err);
int audit_step(struct store *st, sqlite3_stmt *s, const char *what, struct cg_err *err);
sqlite3_int64 audit_node_id(unsigned int level, uint64_t index);
int audit_meta_get(struct store *st, const char *key, unsigned char *out, size_t out_size, size_t *out_len, struct cg_err *err);
int audit_meta_set(struct store *st, const char *key, const void *value, size_t len, struct cg_err *err);
int audit_nodes_open(struct store *st, struct audit_nodes *n, struct cg_err *err);
void audit_nodes_close(struct audit_nodes *n);
int audit_node_get(void *arg, unsigned int level, uint64_t index, unsigned char out[MERKLE_HASH_LEN], struct cg_err *err);
int audit_size_of(struct store *st, sqlite3_stmt *s, uint64_t *size, struct cg_err *err);
int audit_latest_row(struct store *st, uint64_t *size, char **note, struct cg_err *err);
int audit_sync(struct audit *a, struct cg_err *err);

/* audit_keychain.c */
int audit_view_parse(const unsigned char *b, size_t len, struct audit_view *v);
int audit_view_is(const struct audit_view *v, const char *action);
int audit_note_text(const char *note, size_t len, size_t *text_len);
int audit_note_verify(const char *note, size_t len, const char *origin, const char *own, const unsigned char pub[32], size_t *text_len, struct cg_err *err);
int audit_keychain_apply(struct audit_keychain *kc, uint64_t seq, const unsigned char *event, size_t len, struct cg_err *err);

/* audit_proof.c */
int audit_consistent(struct store *st, uint64_t m, const unsigned char root_m[MERKLE_HASH_LEN], uint64_t n, const unsigned char root_n[MERKLE_HASH_LEN], struct cg_err *sub);

#endif
