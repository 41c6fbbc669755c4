/* merkle.c - see merkle.h */
#include "crypto/merkle.h"

#include <stdlib.h>
#include <string.h>
#include <sodium.h>

void
merkle_leaf_hash(const unsigned char *entry, size_t len, unsigned char out[MERKLE_HASH_LEN])
{
	/* RFC 6962 §2.1: the 0x00 prefix keeps a leaf from posing as a node. */
	static const unsigned char prefix = 0x00;
	crypto_hash_sha256_state st;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, &prefix, 1);
	if (len > 0)
		crypto_hash_sha256_update(&st, entry, len);
	crypto_hash_sha256_final(&st, out);
}

void
merkle_node_hash(const unsigned char left[MERKLE_HASH_LEN], const unsigned char right[MERKLE_HASH_LEN],
    unsigned char out[MERKLE_HASH_LEN])
{
	static const unsigned char prefix = 0x01;
	crypto_hash_sha256_state st;

	/* out may alias left or right: nothing is written until final. */
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, &prefix, 1);
	crypto_hash_sha256_update(&st, left, MERKLE_HASH_LEN);
	crypto_hash_sha256_update(&st, right, MERKLE_HASH_LEN);
	crypto_hash_sha256_final(&st, out);
}

/* RFC 6962 §2.1: k is the largest power of two smaller than n (n >= 2). */
static uint64_t
merkle_split(uint64_t n)
{
	uint64_t k = 1;

	while (k < n - k)
		k <<= 1;
	return k;
}

/* Recursion depth is at most 64: each level at least halves n. */
static void
merkle_subtree(const unsigned char (*leaves)[MERKLE_HASH_LEN], uint64_t n, unsigned char out[MERKLE_HASH_LEN])
{
	unsigned char left[MERKLE_HASH_LEN], right[MERKLE_HASH_LEN];
	uint64_t k;

	if (n == 1) {
		memcpy(out, leaves[0], MERKLE_HASH_LEN);
		return;
	}
	k = merkle_split(n);
	merkle_subtree(leaves, k, left);
	merkle_subtree(leaves + k, n - k, right);
	merkle_node_hash(left, right, out);
}

void
merkle_root(const unsigned char (*leaves)[MERKLE_HASH_LEN], uint64_t n, unsigned char out[MERKLE_HASH_LEN])
{
	if (n == 0) {
		crypto_hash_sha256(out, NULL, 0);
		return;
	}
	merkle_subtree(leaves, n, out);
}

void
merkle_frontier_init(struct merkle_frontier *f)
{
	memset(f, 0, sizeof(*f));
}

void
merkle_frontier_append(struct merkle_frontier *f, const unsigned char leaf[MERKLE_HASH_LEN])
{
	unsigned char carry[MERKLE_HASH_LEN];
	unsigned int i = 0;

	/* A 2^64-leaf log cannot exist; reaching it means a corrupted frontier. */
	if (f->size == UINT64_MAX)
		abort();
	memcpy(carry, leaf, MERKLE_HASH_LEN);
	/* Like incrementing a binary counter: equal-sized perfect subtrees merge. */
	while (f->size & ((uint64_t)1 << i)) {
		merkle_node_hash(f->hashes[i], carry, carry);
		i++;
	}
	memcpy(f->hashes[i], carry, MERKLE_HASH_LEN);
	f->size++;
}

void
merkle_frontier_root(const struct merkle_frontier *f, unsigned char out[MERKLE_HASH_LEN])
{
	unsigned char acc[MERKLE_HASH_LEN];
	int have = 0;
	unsigned int i;

	if (f->size == 0) {
		crypto_hash_sha256(out, NULL, 0);
		return;
	}
	/* The rightmost (smallest) subtree is the deepest right child of the MTH split. */
	for (i = 0; i < 64; i++) {
		if (!(f->size & ((uint64_t)1 << i)))
			continue;
		if (!have) {
			memcpy(acc, f->hashes[i], MERKLE_HASH_LEN);
			have = 1;
		} else
			merkle_node_hash(f->hashes[i], acc, acc);
	}
	memcpy(out, acc, MERKLE_HASH_LEN);
}

/* Proofs are built from the root down, but published leaf-first. */
static void
merkle_reverse(unsigned char (*proof)[MERKLE_HASH_LEN], size_t len)
{
	unsigned char tmp[MERKLE_HASH_LEN];
	size_t i;

	for (i = 0; i < len / 2; i++) {
		memcpy(tmp, proof[i], MERKLE_HASH_LEN);
		memcpy(proof[i], proof[len - 1 - i], MERKLE_HASH_LEN);
		memcpy(proof[len - 1 - i], tmp, MERKLE_HASH_LEN);
	}
}

int
merkle_inclusion_proof(const unsigned char (*leaves)[MERKLE_HASH_LEN], uint64_t n, uint64_t index,
    unsigned char (*proof)[MERKLE_HASH_LEN], size_t *len, struct cg_err *err)
{
	uint64_t k;
	size_t count = 0;

	*len = 0;
	if (index >= n)
		return cg_err_set(err, CG_ERR_ARG, "inclusion proof: leaf index is not below the tree size");
	/* RFC 6962 §2.1.1 PATH(m, D[n]), unrolled from the root down. */
	while (n > 1) {
		if (count >= MERKLE_PROOF_MAX)
			return cg_err_set(err, CG_ERR_INTERNAL, "inclusion proof: too long");
		k = merkle_split(n);
		if (index < k) {
			merkle_subtree(leaves + k, n - k, proof[count++]);
			n = k;
		} else {
			merkle_subtree(leaves, k, proof[count++]);
			leaves += k;
			index -= k;
			n -= k;
		}
	}
	merkle_reverse(proof, count);
	*len = count;
	return 0;
}

int
merkle_consistency_proof(const unsigned char (*leaves)[MERKLE_HASH_LEN], uint64_t m, uint64_t n,
    unsigned char (*proof)[MERKLE_HASH_LEN], size_t *len, struct cg_err *err)
{
	uint64_t k;
	size_t count = 0;
	int whole = 1;   /* b in SUBPROOF: m is still the original old tree */

	*len = 0;
	if (m == 0)
		return cg_err_set(err, CG_ERR_ARG, "consistency proof: old tree size is zero");
	if (m > n)
		return cg_err_set(err, CG_ERR_ARG, "consistency proof: old tree size exceeds new tree size");
	/* RFC 6962 §2.1.2 SUBPROOF(m, D[n], b), unrolled from the root down. */
	while (m != n) {
		if (count >= MERKLE_PROOF_MAX)
			return cg_err_set(err, CG_ERR_INTERNAL, "consistency proof: too long");
		k = merkle_split(n);
		if (m <= k) {
			merkle_subtree(leaves + k, n - k, proof[count++]);
			n = k;
		} else {
			merkle_subtree(leaves, k, proof[count++]);
			leaves += k;
			m -= k;
			n -= k;
			whole = 0;
		}
	}
	if (!whole) {
		if (count >= MERKLE_PROOF_MAX)
			return cg_err_set(err, CG_ERR_INTERNAL, "consistency proof: too long");
		merkle_subtree(leaves, n, proof[count++]);
	}
	merkle_reverse(proof, count);
	*len = count;
	return 0;
}

static unsigned int
merkle_bit_len(uint64_t x)
{
	unsigned int n = 0;

	while (x != 0) {
		n++;
		x >>= 1;
	}
	return n;
}

static unsigned int
merkle_popcount(uint64_t x)
{
	unsigned int n = 0;

	while (x != 0) {
		n += (unsigned int)(x & 1);
		x >>= 1;
	}
	return n;
}

/*
 * Hashes in an inclusion proof for (index, size): the levels where the paths
 * to index and to the last leaf differ, plus one per left subtree above them.
 */
static size_t
merkle_inclusion_len(uint64_t index, uint64_t size)
{
	unsigned int inner = merkle_bit_len(index ^ (size - 1));

	return inner + merkle_popcount(inner < 64 ? index >> inner : 0);
}

int
merkle_verify_inclusion(const unsigned char leaf[MERKLE_HASH_LEN], uint64_t index, uint64_t size,
    const unsigned char (*proof)[MERKLE_HASH_LEN], size_t len, const unsigned char root[MERKLE_HASH_LEN],
    struct cg_err *err)
{
	unsigned char r[MERKLE_HASH_LEN];
	uint64_t fn, sn;
	size_t i, want;

	if (index >= size)
		return cg_err_set(err, CG_ERR_VERIFY, "inclusion proof: leaf index is not below the tree size");
	want = merkle_inclusion_len(index, size);
	if (len != want)
		return cg_err_set(err, CG_ERR_VERIFY, "inclusion proof: %zu hashes, expected %zu", len, want);
	/* RFC 9162 §2.1.3.2 */
	fn = index;
	sn = size - 1;
	memcpy(r, leaf, MERKLE_HASH_LEN);
	for (i = 0; i < len; i++) {
		if (sn == 0)
			return cg_err_set(err, CG_ERR_VERIFY, "inclusion proof: too many hashes");
		if ((fn & 1) || fn == sn) {
			merkle_node_hash(proof[i], r, r);
			while (fn != 0 && !(fn & 1)) {
				fn >>= 1;
				sn >>= 1;
			}
		} else
			merkle_node_hash(r, proof[i], r);
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return cg_err_set(err, CG_ERR_VERIFY, "inclusion proof: too few hashes");
	if (memcmp(r, root, MERKLE_HASH_LEN) != 0)
		return cg_err_set(err, CG_ERR_VERIFY, "inclusion proof: computed root does not match the tree root");
	return 0;
}

int
merkle_verify_consistency(uint64_t m, uint64_t n, const unsigned char root_m[MERKLE_HASH_LEN],
    const unsigned char root_n[MERKLE_HASH_LEN], const unsigned char (*proof)[MERKLE_HASH_LEN], size_t len,
    struct cg_err *err)
{
	unsigned char fr[MERKLE_HASH_LEN], sr[MERKLE_HASH_LEN];
	const unsigned char *c;
	uint64_t fn, sn;
	unsigned int shift, inner;
	size_t i, want, start;
	int pow2;

	if (m == 0)
		return cg_err_set(err, CG_ERR_VERIFY, "consistency proof: old tree size is zero");
	if (m > n)
		return cg_err_set(err, CG_ERR_VERIFY, "consistency proof: old tree size exceeds new tree size");
	if (m == n) {
		/* RFC 6962 §2.1.2: the proof between equal trees is empty. */
		if (len != 0)
			return cg_err_set(err, CG_ERR_VERIFY,
			    "consistency proof: %zu hashes for equal tree sizes, expected 0", len);
		if (memcmp(root_m, root_n, MERKLE_HASH_LEN) != 0)
			return cg_err_set(err, CG_ERR_VERIFY, "consistency proof: roots of equal tree sizes differ");
		return 0;
	}
	/*
	 * Expected length: the inclusion proof of leaf m-1 in the new tree, minus
	 * the levels inside the perfect subtree that ends at m, plus that
	 * subtree's root unless it is the whole old tree (m a power of two).
	 */
	for (shift = 0; !(m & ((uint64_t)1 << shift)); shift++)
		;
	pow2 = (m == ((uint64_t)1 << shift));
	inner = merkle_bit_len((m - 1) ^ (n - 1));
	want = (size_t)(inner - shift) + merkle_popcount(inner < 64 ? (m - 1) >> inner : 0) + (pow2 ? 0 : 1);
	if (len != want)
		return cg_err_set(err, CG_ERR_VERIFY, "consistency proof: %zu hashes, expected %zu", len, want);

	/* RFC 9162 §2.1.4.2; step 2 prepends root_m instead of copying the array. */
	fn = m - 1;
	sn = n - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	start = pow2 ? 0 : 1;
	c = pow2 ? root_m : proof[0];
	memcpy(fr, c, MERKLE_HASH_LEN);
	memcpy(sr, c, MERKLE_HASH_LEN);
	for (i = start; i < len; i++) {
		if (sn == 0)
			return cg_err_set(err, CG_ERR_VERIFY, "consistency proof: too many hashes");
		if ((fn & 1) || fn == sn) {
			merkle_node_hash(proof[i], fr, fr);
			merkle_node_hash(proof[i], sr, sr);
			while (fn != 0 && !(fn & 1)) {
				fn >>= 1;
				sn >>= 1;
			}
		} else
			merkle_node_hash(sr, proof[i], sr);
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return cg_err_set(err, CG_ERR_VERIFY, "consistency proof: too few hashes");
	if (memcmp(fr, root_m, MERKLE_HASH_LEN) != 0)
		return cg_err_set(err, CG_ERR_VERIFY, "consistency proof: computed old root does not match");
	if (memcmp(sr, root_n, MERKLE_HASH_LEN) != 0)
		return cg_err_set(err, CG_ERR_VERIFY, "consistency proof: computed new root does not match");
	return 0;
}

void
merkle_frontier_append_nodes(struct merkle_frontier *f, const unsigned char leaf[MERKLE_HASH_LEN],
    unsigned char (*new_nodes)[MERKLE_HASH_LEN], unsigned int *n_new)
{
	unsigned char carry[MERKLE_HASH_LEN];
	unsigned int i = 0;

	if (f->size == UINT64_MAX)
		abort();
	memcpy(carry, leaf, MERKLE_HASH_LEN);
	while (f->size & ((uint64_t)1 << i)) {
		merkle_node_hash(f->hashes[i], carry, carry);
		memcpy(new_nodes[i], carry, MERKLE_HASH_LEN);
		i++;
	}
	memcpy(f->hashes[i], carry, MERKLE_HASH_LEN);
	f->size++;
	*n_new = i;
}

int
merkle_frontier_load(merkle_node_fn get, void *arg, uint64_t size, struct merkle_frontier *f, struct cg_err *err)
{
	struct merkle_frontier tmp;
	unsigned int i;
	int r;

	merkle_frontier_init(f);
	merkle_frontier_init(&tmp);
	/* Bit i of size set: the perfect subtree of 2^i leaves that ends where the next smaller one starts. */
	for (i = 0; i < 64; i++) {
		if (!(size & ((uint64_t)1 << i)))
			continue;
		if ((r = get(arg, i, (size >> i) - 1, tmp.hashes[i], err)) != 0)
			return r;
	}
	tmp.size = size;
	*f = tmp;
	return 0;
}

int
merkle_range_root(merkle_node_fn get, void *arg, uint64_t start, uint64_t n, unsigned char out[MERKLE_HASH_LEN],
    struct cg_err *err)
{
	unsigned char pieces[64][MERKLE_HASH_LEN];
	unsigned int count = 0, i;
	uint64_t pos = start;
	int r;

	if (n == 0)
		return cg_err_set(err, CG_ERR_ARG, "merkle range: empty range");
	if (start > UINT64_MAX - n)
		return cg_err_set(err, CG_ERR_ARG, "merkle range: past the largest tree size");
	/* Largest pieces first, each aligned to its own size: the MTH split order. */
	for (i = 64; i-- > 0;) {
		uint64_t w = (uint64_t)1 << i;

		if (!(n & w))
			continue;
		if (pos & (w - 1))
			return cg_err_set(err, CG_ERR_ARG, "merkle range: start is not aligned to the range");
		if ((r = get(arg, i, pos >> i, pieces[count], err)) != 0)
			return r;
		count++;
		pos += w;
	}
	/* The smallest piece is the deepest right child: fold from the right. */
	memcpy(out, pieces[count - 1], MERKLE_HASH_LEN);
	for (i = count - 1; i-- > 0;)
		merkle_node_hash(pieces[i], out, out);
	return 0;
}

int
merkle_inclusion_proof_nodes(merkle_node_fn get, void *arg, uint64_t n, uint64_t index,
    unsigned char (*proof)[MERKLE_HASH_LEN], size_t *len, struct cg_err *err)
{
	uint64_t k, offset = 0;
	size_t count = 0;
	int r;

	*len = 0;
	if (index >= n)
		return cg_err_set(err, CG_ERR_ARG, "inclusion proof: leaf index is not below the tree size");
	/* As merkle_inclusion_proof, with ranges instead of leaf arrays. */
	while (n > 1) {
		if (count >= MERKLE_PROOF_MAX)
			return cg_err_set(err, CG_ERR_INTERNAL, "inclusion proof: too long");
		k = merkle_split(n);
		if (index < k) {
			r = merkle_range_root(get, arg, offset + k, n - k, proof[count++], err);
			n = k;
		} else {
			r = merkle_range_root(get, arg, offset, k, proof[count++], err);
			offset += k;
			index -= k;
			n -= k;
		}
		if (r != 0)
			return r;
	}
	merkle_reverse(proof, count);
	*len = count;
	return 0;
}

int
merkle_consistency_proof_nodes(merkle_node_fn get, void *arg, uint64_t m, uint64_t n,
    unsigned char (*proof)[MERKLE_HASH_LEN], size_t *len, struct cg_err *err)
{
	uint64_t k, offset = 0;
	size_t count = 0;
	int whole = 1, r;

	*len = 0;
	if (m == 0)
		return cg_err_set(err, CG_ERR_ARG, "consistency proof: old tree size is zero");
	if (m > n)
		return cg_err_set(err, CG_ERR_ARG, "consistency proof: old tree size exceeds new tree size");
	while (m != n) {
		if (count >= MERKLE_PROOF_MAX)
			return cg_err_set(err, CG_ERR_INTERNAL, "consistency proof: too long");
		k = merkle_split(n);
		if (m <= k) {
			r = merkle_range_root(get, arg, offset + k, n - k, proof[count++], err);
			n = k;
		} else {
			r = merkle_range_root(get, arg, offset, k, proof[count++], err);
			offset += k;
			m -= k;
			n -= k;
			whole = 0;
		}
		if (r != 0)
			return r;
	}
	if (!whole) {
		if (count >= MERKLE_PROOF_MAX)
			return cg_err_set(err, CG_ERR_INTERNAL, "consistency proof: too long");
		if ((r = merkle_range_root(get, arg, offset, n, proof[count++], err)) != 0)
			return r;
	}
	merkle_reverse(proof, count);
	*len = count;
	return 0;
}
