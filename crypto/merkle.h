/*
 * merkle.h - RFC 6962 Merkle tree hashing and proofs.
 *
 *   leaf hash = SHA-256(0x00 || entry)           (RFC 6962 §2.1)
 *   node hash = SHA-256(0x01 || left || right)
 *   MTH({})   = SHA-256("")
 *
 * Leaves are passed as arrays of 32-byte leaf hashes.  Proof verification
 * follows RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency), which
 * accept exactly the proofs RFC 6962 §2.1.1/§2.1.2 define.
 */
#ifndef CG_MERKLE_H
#define CG_MERKLE_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"

#define MERKLE_HASH_LEN 32
#define MERKLE_PROOF_MAX 128   /* > 2 * 64 levels */

void merkle_leaf_hash(const unsigned char *entry, size_t len, unsigned char out[MERKLE_HASH_LEN]);
void merkle_node_hash(const unsigned char left[MERKLE_HASH_LEN], const unsigned char right[MERKLE_HASH_LEN],
    unsigned char out[MERKLE_HASH_LEN]);

/* MTH over n leaf hashes (n may be 0). */
void merkle_root(const unsigned char (*leaves)[MERKLE_HASH_LEN], uint64_t n, unsigned char out[MERKLE_HASH_LEN]);

/*
 * The right edge of the tree: one hash per perfect subtree, so that an append
 * costs O(log n) and the root needs no access to old leaves.
 */
struct merkle_frontier {
	uint64_t size;
	unsigned char hashes[64][MERKLE_HASH_LEN];   /* hashes[i] valid iff bit i of size is set */
};

void merkle_frontier_init(struct merkle_frontier *f);
void merkle_frontier_append(struct merkle_frontier *f, const unsigned char leaf[MERKLE_HASH_LEN]);
void merkle_frontier_root(const struct merkle_frontier *f, unsigned char out[MERKLE_HASH_LEN]);

/*
 * Proof generation: proof must have room for MERKLE_PROOF_MAX hashes; *len
 * hashes are written, leaf side first (RFC 6962 order).  Bad sizes or
 * indices are CG_ERR_ARG.
 */
/* Inclusion proof of leaf `index` in the tree of the first n leaves; *len hashes written to proof. */
int merkle_inclusion_proof(const unsigned char (*leaves)[MERKLE_HASH_LEN], uint64_t n, uint64_t index,
    unsigned char (*proof)[MERKLE_HASH_LEN], size_t *len, struct cg_err *err) CG_MUST_CHECK;
/* Consistency proof between the trees of the first m and the first n leaves (0 < m <= n). */
int merkle_consistency_proof(const unsigned char (*leaves)[MERKLE_HASH_LEN], uint64_t m, uint64_t n,
    unsigned char (*proof)[MERKLE_HASH_LEN], size_t *len, struct cg_err *err) CG_MUST_CHECK;

/* 0 if the proof holds, CG_ERR_VERIFY (message says why) if not. */
int merkle_verify_inclusion(const unsigned char leaf[MERKLE_HASH_LEN], uint64_t index, uint64_t size,
    const unsigned char (*proof)[MERKLE_HASH_LEN], size_t len, const unsigned char root[MERKLE_HASH_LEN],
    struct cg_err *err) CG_MUST_CHECK;
int merkle_verify_consistency(uint64_t m, uint64_t n, const unsigned char root_m[MERKLE_HASH_LEN],
    const unsigned char root_n[MERKLE_HASH_LEN], const unsigned char (*proof)[MERKLE_HASH_LEN], size_t len,
    struct cg_err *err) CG_MUST_CHECK;

/*
 * Proofs from stored hashes.  A log that keeps the hash of every perfect
 * subtree (level l, index i: the MTH of leaves [i * 2^l, (i + 1) * 2^l);
 * level 0 is the leaf hashes) never needs the leaves to answer a proof: every
 * hash RFC 6962 puts in a proof is one such node or a right-edge fold of a
 * few of them.  `get` fetches one node into out; a non-zero return (with err
 * set) stops the computation and is returned.
 */
typedef int (*merkle_node_fn)(void *arg, unsigned int level, uint64_t index, unsigned char out[MERKLE_HASH_LEN],
    struct cg_err *err);

/*
 * Append a leaf and report the perfect subtrees it completes: new_nodes[j] is
 * the node at level j + 1, index (old size >> (j + 1)); *n_new of them (the
 * number of trailing one bits of the old size).  new_nodes needs 64 entries.
 */
void merkle_frontier_append_nodes(struct merkle_frontier *f, const unsigned char leaf[MERKLE_HASH_LEN],
    unsigned char (*new_nodes)[MERKLE_HASH_LEN], unsigned int *n_new) CG_NONNULL(1, 2, 3, 4);

/* The frontier of the tree of `size` leaves, from popcount(size) stored nodes. */
int merkle_frontier_load(merkle_node_fn get, void *arg, uint64_t size, struct merkle_frontier *f,
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 4);

/*
 * MTH(D[start : start + n]) from stored nodes.  `start` must be a multiple of
 * the smallest power of two >= n, as every range RFC 6962 proofs name is.
 */
int merkle_range_root(merkle_node_fn get, void *arg, uint64_t start, uint64_t n, unsigned char out[MERKLE_HASH_LEN],
    struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 5);

/* As merkle_inclusion_proof / merkle_consistency_proof, from stored nodes: O(log n) node reads. */
int merkle_inclusion_proof_nodes(merkle_node_fn get, void *arg, uint64_t n, uint64_t index,
    unsigned char (*proof)[MERKLE_HASH_LEN], size_t *len, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 5, 6);
int merkle_consistency_proof_nodes(merkle_node_fn get, void *arg, uint64_t m, uint64_t n,
    unsigned char (*proof)[MERKLE_HASH_LEN], size_t *len, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 5, 6);

#endif
