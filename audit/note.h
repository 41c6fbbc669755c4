/*
 * note.h - C2SP signed notes (Ed25519, algorithm byte 0x01) and C2SP
 * tlog-checkpoint bodies.
 *
 * A signed note is the text (which ends in '\n'), a blank line, then one
 * line per signature: "\u2014 <name> <base64(key id[4] || signature[64])>\n".
 * key id = first 4 bytes (big-endian) of SHA-256(name || 0x0A || 0x01 || pub).
 * A verifier key string is "<name>+<8 hex key id>+<base64(0x01 || pub)>".
 *
 * A checkpoint body is "<origin>\n<tree size>\n<base64 root>\n" followed by
 * optional extension lines.
 */
#ifndef CG_NOTE_H
#define CG_NOTE_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"

#define NOTE_NAME_MAX 128
#define NOTE_MAX (64 * 1024)   /* larger notes are rejected before parsing */

uint32_t note_key_id(const char *name, const unsigned char pub[32]);

/*
 * Sign `text` (must end in '\n', no blank-line "\n\n" terminator issues are
 * the caller's: text must not contain an empty line) with the Ed25519 secret
 * key sk (64 bytes, libsodium layout).  *out is a malloc'd NUL-terminated
 * signed note; caller frees.
 */
int note_sign(const char *text, size_t len, const char *name, const unsigned char sk[64],
    char **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3, 4, 5);

/*
 * Verify that `note` carries a valid signature by (name, pub).  Other
 * signers' lines are ignored (they belong to witnesses).  On success *text_len
 * is the length of the signed text at the start of note.  Malformed notes are
 * CG_ERR_FORMAT, a missing or bad signature CG_ERR_VERIFY; messages give the
 * line.
 */
int note_verify(const char *note, size_t len, const char *name, const unsigned char pub[32],
    size_t *text_len, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3, 4, 5);

/* Parse "<name>+<hex id>+<base64(0x01||pub)>"; name goes to name (NOTE_NAME_MAX + 1 bytes). */
int note_parse_verifier_key(const char *vkey, char *name, unsigned char pub[32], struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3);
/* Format a verifier key into out (at least NOTE_NAME_MAX + 80 bytes). */
int note_format_verifier_key(const char *name, const unsigned char pub[32], char *out, size_t out_size)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3);

struct checkpoint {
	char origin[NOTE_NAME_MAX + 1];
	uint64_t size;
	unsigned char root[32];
};

/* Body text into out; *out_len set. out must hold NOTE_NAME_MAX + 80 bytes. */
int checkpoint_format(const struct checkpoint *cp, char *out, size_t out_size, size_t *out_len)
    CG_MUST_CHECK CG_NONNULL(1, 2, 4);
/* Parse a checkpoint body (the signed text of a note). Strict: decimal size without leading zeros, 32-byte root. */
int checkpoint_parse(const char *text, size_t len, struct checkpoint *out, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 3);

/*
 * Witness cosignatures (C2SP tlog-cosignature, cosignature/v1, Ed25519).
 *
 * A cosignature is one more signature line on a checkpoint note:
 *   "\u2014 <witness name> <base64(key id[4] || timestamp[8, big-endian] || signature[64])>\n"
 * with key id = first 4 bytes of SHA-256(name || 0x0A || 0x04 || pub), over
 * the message "cosignature/v1\ntime <timestamp>\n" || the checkpoint body
 * (the note's text, final newline included, no signature lines).  It states
 * that as of that time this is the largest consistent tree the witness saw.
 * A witness verifier key is "<name>+<8 hex key id>+<base64(0x04 || pub)>".
 */
#define NOTE_COSIG_LINE_MAX (NOTE_NAME_MAX + 120)

uint32_t note_cosig_key_id(const char *name, const unsigned char pub[32]) CG_NONNULL(1, 2);
int note_parse_cosig_key(const char *vkey, char *name, unsigned char pub[32], struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3);
int note_format_cosig_key(const char *name, const unsigned char pub[32], char *out, size_t out_size)
    CG_MUST_CHECK CG_NONNULL(1, 2, 3);

/*
 * Cosign the checkpoint body `text` (the signed text of a note) at `timestamp`
 * (< 2^63) with the witness's Ed25519 secret key sk (64 bytes): the signature
 * line, '\n'-terminated, goes to line (NOTE_COSIG_LINE_MAX bytes).
 */
int note_cosign(const char *text, size_t len, const char *name, const unsigned char sk[64], uint64_t timestamp,
    char line[NOTE_COSIG_LINE_MAX], struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3, 4, 6);

/*
 * Check one cosignature line (with or without its final '\n') by (name, pub)
 * over the checkpoint body text.  CG_ERR_NOTFOUND if the line is another
 * signer's (other name or key id), CG_ERR_FORMAT if malformed, CG_ERR_VERIFY
 * if the signature fails.  *timestamp is set on success.
 */
int note_verify_cosig_line(const char *text, size_t text_len, const char *line, size_t line_len, const char *name,
    const unsigned char pub[32], uint64_t *timestamp, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3, 5, 6, 7);

/*
 * Find and check the cosignature of (name, pub) among a signed note's
 * signature lines.  CG_ERR_NOTFOUND if it has none; *text_len is the body's
 * length and *timestamp the cosignature's time on success.
 */
int note_verify_cosignature(const char *note, size_t len, const char *name, const unsigned char pub[32],
    size_t *text_len, uint64_t *timestamp, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3, 4, 5, 6);

#endif
