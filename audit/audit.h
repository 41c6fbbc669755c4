/*
 * audit.h - the append-only audit log.
 *
 * Each event (crossgate.AuditEvent, protobuf) is a leaf of an RFC 6962 Merkle
 * tree kept in the store's audit_events table.  After every append the
 * gateway signs a checkpoint (C2SP tlog-checkpoint as a C2SP signed note,
 * Ed25519) of the new tree size and root, stored in audit_checkpoints.
 * audit_append() signs one per event, so a verifier that recomputes the tree
 * from the stored event bytes can name the first event that was changed,
 * removed, reordered or inserted; audit_append_many() signs one per call.
 *
 * The checkpoint origin is "crossgate/gateway/<key id>" of the gateway's first
 * Ed25519 signing key, for the life of the log, and every signature's key
 * name is the origin (C2SP), also after a rotation: the note key id tells the
 * keys apart.  Logs rotated by earlier versions signed under the new key's own
 * "crossgate/gateway/<key id>"; verifiers accept both (docs/PROTOCOL.md §9.3).
 *
 * Key rotation (audit_rotate): a "key-rotate" event names the old and the new
 * key (ids and public key lines) and gets a checkpoint of its own, signed by
 * the old key (which vouches for the new one) and by the new key; every later
 * checkpoint is signed by the new key only.  A verifier that trusts the first
 * key follows the chain of rotation events (struct audit_keychain), so the
 * original public key is all an auditor needs, and a checkpoint signed by a
 * key that no verified rotation announced is rejected.  An old key cannot
 * append after it was rotated out.
 *
 * Tables (created by audit_schema(); all in the store's file):
 *
 *   audit_events(seq, event, leaf)   leaf = SHA-256(0x00 || event); event is
 *                                    empty once erased (the leaf stays)
 *   audit_checkpoints(size, note)    the signed note for tree `size`
 *   audit_nodes(id, hash)            every perfect subtree above the leaves:
 *                                    level l, index i has id = end * 64 + l with
 *                                    end = (i + 1) << l, so that rows sort in the
 *                                    order appends complete them.  Appends,
 *                                    restoring the tree at open and proofs are
 *                                    O(log n) reads and writes.
 *   audit_spans(end, first)          events [first, end) were appended under one
 *                                    checkpoint: sizes inside have none
 *   audit_erased(seq, erase_event)   payload erased by audit-erase event erase_event
 *   audit_cosignatures(size, witness, key_id, time, line)
 *   audit_keys(seq, key_id, pub)     key-rotate event seq announced key pub: an
 *                                    index for witnesses and proofs, which check
 *                                    each against its signed checkpoint
 *   audit_meta(key, value)           schema version, last logged policy hash
 *
 * Events never carry identifiers, tokens or feature values: only actions,
 * counts, digests, key ids, policy hashes and reasons.
 */
#ifndef CG_AUDIT_H
#define CG_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "crypto/keyfile.h"
#include "crypto/merkle.h"
#include "audit/note.h"
#include "store/store.h"
#include "proto/crossgate.pb-c.h"
#include "proto/audit.pb-c.h"

#define AUDIT_ORIGIN_MAX 64

struct audit;   /* owned by the caller of audit_open; borrows the store and the key */

/*
 * Load the log's current state: the tree's right edge from O(log n) stored
 * nodes, checked against the latest signed checkpoint (CG_ERR_VERIFY, telling
 * to run 'crossgate audit verify', if they disagree: nothing is appended to a
 * tree that is not the one signed).  `sign` (ED25519 secret) is borrowed and
 * must outlive the audit.
 */
int audit_open(struct store *st, const struct keyfile_key *sign, struct audit **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3);
void audit_free(struct audit *a);

/*
 * Append an event and its checkpoint inside the caller's open transaction.
 * seq and time are set here.  After the transaction ends the caller must
 * call audit_txn_end() with whether it committed.  If another process (or
 * another struct audit) appended since, the first append of a transaction
 * reloads the tree first: the server and a CLI command may share a database.
 */
int audit_append(struct audit *a, Crossgate__AuditEvent *ev, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);
void audit_txn_end(struct audit *a, int committed);

/* Append one event in a transaction of its own (rejections, exports, keygen). */
int audit_log(struct audit *a, Crossgate__AuditEvent *ev, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);

uint64_t audit_size(const struct audit *a);

/* The origin string for a gateway signing (public) key. */
void audit_origin(const unsigned char key_id[KEYFILE_ID_LEN], char out[AUDIT_ORIGIN_MAX]);

#define AUDIT_ROTATE_ACTION "key-rotate"
#define AUDIT_KEYS_MAX 64            /* rotations a verifier follows */

/*
 * The gateway signing keys a verifier trusts, in order: keys[0] is the key
 * it was given (the log's first key: it names the origin); keys[i] (i > 0)
 * was announced by the key-rotate event at seq keys[i].from - 1, verified
 * under keys[i - 1].  A checkpoint of size s must be signed by the last key
 * with from < s (the rotation's own checkpoint, size from, by the old key).
 */
struct audit_signer {
	uint64_t from;
	unsigned char id[KEYFILE_ID_LEN];
	unsigned char pub[32];
	char name[AUDIT_ORIGIN_MAX];  /* the signed-note key name */
};

struct audit_keychain {
	char origin[AUDIT_ORIGIN_MAX];
	size_t n;
	struct audit_signer keys[AUDIT_KEYS_MAX + 1];
};

/* A chain of one trusted key (ED25519 public or secret); CG_ERR_ARG for another type. */
int audit_keychain_init(struct audit_keychain *kc, const struct keyfile_key *pub, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

/*
 * Check a checkpoint note against the chain: its origin, and the signature of
 * the key in force at its size.  CG_ERR_VERIFY with the size and the key it
 * needed.  *cp on success.
 */
int audit_keychain_check(const struct audit_keychain *kc, const char *note, size_t len, struct checkpoint *cp,
    size_t *text_len, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 4, 5);

/*
 * The chain from `pub` through the log's stored key-rotate events: each is
 * proven (inclusion proof from the stored nodes) in its own checkpoint, which
 * must verify under the previous key.  For witnesses and proof files, which
 * do not walk the whole log.
 */
int audit_keychain_load(struct store *st, const struct keyfile_key *pub, struct audit_keychain *kc,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3);

/*
 * Log the gateway's keys (action "keygen" when they were just made, "keys"
 * when a server finds an empty log): key ids of enc, the signing key and
 * storage, and the public key lines of enc and the signing key.  Never a
 * secret.  enc is the X25519 key (secret or public), storage the storage key.
 */
int audit_log_keys(struct audit *a, const char *action, const struct keyfile_key *enc,
    const struct keyfile_key *storage, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4);

/*
 * Rotate the signing key: log a key-rotate event (ids and public key lines
 * of the old and the new key) under a checkpoint signed by the current key
 * and `next`, in a transaction of its own; from then on `a` signs with
 * `next` (borrowed: it must outlive a).  CG_ERR_ARG if next is not an Ed25519
 * secret key or is the current key.
 */
int audit_rotate(struct audit *a, const struct keyfile_key *next, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

/* One stored event as audit_iter() serves it; pointers are valid during the callback only. */
struct audit_record {
	uint64_t seq;
	const unsigned char *event;     /* empty (len 0) once erased */
	size_t len;
	int erased;
	uint64_t erased_by;             /* erased: the seq of the audit-erase event that did it */
	const unsigned char *leaf;      /* the stored leaf hash, MERKLE_HASH_LEN bytes */
	const char *checkpoint;         /* the signed note for size seq + 1; NULL inside a span */
};

/*
 * Walk the stored log from event `from` on, in order: cb gets each record
 * (the checkpoint is NULL inside a span of audit_append_many(), whose
 * checkpoint comes with its last event).  A non-zero return from cb stops
 * the walk and is returned.  For serving the log to auditors (who verify it
 * themselves).
 */
typedef int (*audit_iter_cb)(const struct audit_record *rec, void *arg);
int audit_iter(struct store *st, uint64_t from, audit_iter_cb cb, void *arg, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 3);

/*
 * Append an event with the checkpoint the gateway signed for it, as fetched
 * from a gateway: no key needed, nothing is re-signed, seq must be the next
 * index.  For an auditor's local copy, which audit_verify() then checks.  An
 * empty checkpoint ("") is an event inside a span (audit_iter gave NULL).
 * An erased event (len 0) travels as its leaf hash and the seq of the
 * audit-erase event that erased it (rec->erased; CG_ERR_FORMAT without them).
 * The file is marked as a copy: an erasure at the gateway after events were
 * copied leaves their payloads here, which audit_verify() then accepts.
 */
int audit_import(struct store *st, const struct audit_record *rec, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

struct audit_report {
	uint64_t events;
	uint64_t checkpoints;
	unsigned char root[32];
	char latest_checkpoint[512];
	uint64_t erased;                /* events whose payload was erased (checked by leaf hash) */
	uint64_t kept;                  /* a copy: events erased at the gateway after they were copied */
	struct audit_keychain keys;     /* the trusted key and every verified rotation */
};

/*
 * Recompute the tree from the stored event bytes (the stored leaf hash for an
 * erased event) and check every checkpoint's signature by `pub` (an ED25519
 * public key: the log's first key), or by the key a verified key-rotate event
 * handed over to (rep->keys), and its root, that a checkpoint exists for every size outside a
 * span, that every erased event is accounted for by a later audit-erase
 * event, and that the stored leaf hashes and tree nodes (which proofs are
 * made of) are the recomputed ones.  On the first problem returns
 * CG_ERR_VERIFY with a message naming the event or checkpoint.
 */
int audit_verify(struct store *st, const struct keyfile_key *pub, struct audit_report *rep,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3);

/* Create the audit tables if needed; a log from before audit_nodes gets its nodes rebuilt once. */
int audit_schema(struct store *st, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);

/*
 * Append n events under one signed checkpoint (at the last one's size) in a
 * transaction of its own: for bulk writers, where a checkpoint per event would
 * cost one Ed25519 signature and ~200 bytes each.  evs[i]->seq and time are set.
 */
int audit_append_many(struct audit *a, Crossgate__AuditEvent **evs, size_t n, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

/*
 * Log a "policy-load" event (actor "gateway", policy_hash = hash, reason
 * "previous policy <hex>" or "first policy") if hash differs from the last
 * policy hash logged this way; otherwise nothing.  For the server at start and
 * on reload, and for every CLI command that loads a policy.
 */
int audit_policy_seen(struct audit *a, const unsigned char hash[32], struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

/*
 * Retention: erase the payload of every event with from <= seq < to and time
 * < before (pass INT64_MAX for "any time"), except audit-erase events and
 * events already erased, keeping their leaf hashes so that the tree, the
 * checkpoints and every proof still hold.  Logs one "audit-erase" event
 * (counts erased, from, to; reason) in the same transaction, then checkpoints
 * the WAL so that the old payloads leave the disk.  Nothing to erase: *erased
 * = 0 and nothing is logged.
 */
int audit_erase(struct audit *a, uint64_t from, uint64_t to, int64_t before, const char *reason,
    uint64_t *erased, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 6);

/* Stored log size (max seq + 1), O(log n). */
int audit_stored_size(struct store *st, uint64_t *size, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);

/*
 * The latest signed checkpoint note (malloc'd, caller frees) and its size,
 * with the stored witness cosignature lines for that size appended if
 * with_cosignatures.  CG_ERR_NOTFOUND for an empty log.
 */
int audit_latest_checkpoint(struct store *st, int with_cosignatures, char **note, uint64_t *size,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3, 4);

/* Proofs from the stored nodes (never recomputing the tree); proof has MERKLE_PROOF_MAX entries. */
int audit_inclusion_proof(struct store *st, uint64_t index, uint64_t size, unsigned char (*proof)[MERKLE_HASH_LEN],
    size_t *len, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 4, 5);
int audit_consistency_proof(struct store *st, uint64_t m, uint64_t n, unsigned char (*proof)[MERKLE_HASH_LEN],
    size_t *len, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 4, 5);

/*
 * Inclusion proof files (proto/audit.proto InclusionProof): self-contained,
 * checked offline with the gateway's public key alone.
 */
#define AUDIT_PROOF_MAX (256 * 1024)
#define AUDIT_PROOF_FORMAT "crossgate-inclusion-proof/v1"

struct audit_proof {
	uint64_t index;
	unsigned char *event;          /* owned; NULL when erased */
	size_t event_len;
	int erased;
	unsigned char leaf[MERKLE_HASH_LEN];
	unsigned char hashes[MERKLE_PROOF_MAX][MERKLE_HASH_LEN];
	size_t n_hashes;
	char *checkpoint;              /* owned, NUL-terminated signed note */
	struct audit_proof_rotation {
		uint64_t index;            /* the key-rotate event's seq */
		unsigned char *event;      /* owned */
		size_t event_len;
		unsigned char hashes[MERKLE_PROOF_MAX][MERKLE_HASH_LEN];
		size_t n_hashes;
		char *checkpoint;          /* owned: the note for size index + 1 */
	} *rotations;                  /* owned, n_rotations of them, in log order */
	size_t n_rotations;
};

/*
 * The key-rotate events below tree size `below`, each with its own checkpoint
 * and its inclusion proof in it, in log order (*out malloc'd, n of them; free
 * with audit_rotations_free); and following them from a chain's last key, each
 * checked under the key before (CG_ERR_VERIFY naming the event).  For proof
 * files (this module's and consistency.h's).
 */
int audit_rotations_load(struct store *st, uint64_t below, struct audit_proof_rotation **out, size_t *n,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3, 4);
void audit_rotations_free(struct audit_proof_rotation *rot, size_t n);
int audit_keychain_follow(struct audit_keychain *kc, const struct audit_proof_rotation *rot, size_t n,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1);
/* The rotations as KeyRotation messages pointing into rot: one malloc'd block (free() it), NULL if out of memory. */
Crossgate__Audit__KeyRotation **audit_rotations_pb(const struct audit_proof_rotation *rot, size_t n);

/* The proof file of event `index` against the latest checkpoint; *out malloc'd, caller frees. */
int audit_prove(struct store *st, uint64_t index, unsigned char **out, size_t *out_len, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 3, 4);
/* Parse (not verify) a proof file: sizes, lengths and field rules; CG_ERR_FORMAT/LIMIT with the field. */
int audit_proof_parse(const unsigned char *buf, size_t len, struct audit_proof **out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(3);
void audit_proof_free(struct audit_proof *p);
/*
 * Check a parsed proof with the gateway's (first) public key: the key
 * rotations it carries (each key-rotate event proven in its own checkpoint,
 * signed by the key before), the checkpoint's signature by the key then in
 * force and its body, the event's leaf hash and seq, the inclusion proof.
 * CG_ERR_VERIFY saying which; *cp is the proven checkpoint on success.
 */
int audit_proof_verify(const struct audit_proof *p, const struct keyfile_key *pub, struct checkpoint *cp,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3);

/*
 * Parse a saved checkpoint note (as `crossgate audit checkpoint` writes it),
 * checking its signature by `pub` under the log's origin.  (A checkpoint made
 * after a rotation needs the chain: audit_keychain_check.)
 */
int audit_checkpoint_check(const char *note, size_t len, const struct keyfile_key *pub, struct checkpoint *cp,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3, 4);

/*
 * After a successful audit_verify (rep): the current log extends the saved
 * checkpoint `saved` (RFC 6962 §2.1.2 consistency proof from the stored
 * nodes, checked against the saved root and the verified current root).
 * CG_ERR_VERIFY if the log was truncated or any event below the saved size
 * was rewritten, even with every checkpoint re-signed by the real key.
 */
int audit_verify_extends(struct store *st, const struct checkpoint *saved, const struct audit_report *rep,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3);

/*
 * Witness cosigning (note.h): verify the latest checkpoint with the gateway's
 * public key, check that it extends `prev` (the checkpoint note this witness
 * last cosigned, NULL the first time) with a consistency proof from the
 * stored nodes, cosign it at `now` and store the line in audit_cosignatures.
 * *state (malloc'd) is the cosigned note for the witness to keep as its new
 * prev; *size its tree size.  CG_ERR_VERIFY, naming the sizes, if the log does
 * not extend prev (rolled back or rewritten).
 */
int audit_cosign(struct store *st, const struct keyfile_key *gw_pub, const struct keyfile_key *witness,
    const char *name, const char *prev, size_t prev_len, uint64_t now, char **state, uint64_t *size,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2, 3, 4, 8, 9);

/*
 * Store a cosignature line of the checkpoint of tree `size` by witness
 * (name, pub), after checking it against that checkpoint (CG_ERR_NOTFOUND if
 * there is none, CG_ERR_VERIFY if the line does not verify).  For a witness
 * that cosigned elsewhere (its own copy) and submits over the network.
 */
int audit_cosignature_add(struct store *st, uint64_t size, const char *name, const unsigned char pub[32],
    const char *line, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3, 4, 5);

/* One stored cosignature, as served to auditors and copied (unchecked: verify --witness checks it). */
struct audit_cosig {
	uint64_t size;
	const char *witness;
	uint32_t key_id;
	uint64_t time;
	const char *line;
};
typedef int (*audit_cosig_cb)(const struct audit_cosig *c, void *arg);
/* The stored cosignatures of checkpoints of size >= from, by size; a non-zero return from cb stops. */
int audit_cosig_iter(struct store *st, uint64_t from, audit_cosig_cb cb, void *arg, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 3);
/* Store a copied cosignature as is. */
int audit_cosig_put(struct store *st, const struct audit_cosig *c, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);

struct audit_witness {
	char name[NOTE_NAME_MAX + 1];
	unsigned char pub[32];
};

/*
 * The largest checkpoint that carries valid cosignatures from at least
 * `quorum` of the n named witnesses (a witness named twice counts once):
 * *size and *got (how many).  Each stored cosignature by a named witness must
 * verify (CG_ERR_VERIFY otherwise); no such checkpoint is CG_ERR_VERIFY too,
 * naming the best one found.  Run after audit_verify, which checks the
 * checkpoints themselves.
 */
int audit_verify_witnesses(struct store *st, const struct keyfile_key *gw_pub, const struct audit_witness *w,
    size_t n, size_t quorum, uint64_t *size, size_t *got, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3, 6, 7);

/*
 * Walk the events from seq `from` on: cb gets the seq, the event bytes and
 * whether the payload was erased (then len is 0).  A non-zero return from cb
 * stops the walk and is returned.
 */
typedef int (*audit_event_cb)(uint64_t seq, const unsigned char *event, size_t len, int erased, void *arg);
int audit_walk(struct store *st, uint64_t from, audit_event_cb cb, void *arg, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 3);

/*
 * Times as the trail shows them: ISO 8601 UTC ("2024-05-01T12:00:00Z").
 * audit_parse_time accepts that, "YYYY-MM-DD" (midnight UTC), or unix seconds.
 */
#define AUDIT_TIME_MAX 32
int audit_parse_time(const char *s, int64_t *out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 2);
void audit_format_time(int64_t t, char out[AUDIT_TIME_MAX]) CG_NONNULL(2);

#endif
