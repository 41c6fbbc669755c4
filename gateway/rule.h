/*
 * rule.h - an audience's rule: which joined subjects belong to it.
 *
 * Grammar (whitespace between tokens is free; keywords are lower case):
 *
 *   rule    := or
 *   or      := and ( "or" and )*
 *   and     := unary ( "and" unary )*
 *   unary   := "not" unary | "(" or ")" | compare
 *   compare := COLUMN OP VALUE
 *   OP      := "=" | "!=" | "<" | "<=" | ">" | ">="
 *   COLUMN  := [a-z][a-z0-9_]*      a column named as in a query: a quasi-identifier by its
 *                                   name ("age"), a feature as <partner>_<column>
 *   VALUE   := [A-Za-z0-9_.+-]+ | "..." (double quotes, no escapes, no control characters)
 *
 *   k_top_course_category = programming and g_watch_minutes >= 600
 *   age = 20-29 and not (region = North or region = East)
 *
 * What a comparison may say depends on the column (rule_bind, against the
 * policy; the data is never looked at):
 *   - an int feature: any OP against an integer (a threshold);
 *   - a category feature: = or != against one of the column's values;
 *   - a quasi-identifier: = or != against one of its generalized groups (the
 *     finest band, "20-29", or a map's group): never its raw value.
 * Anything else (string features, unknown columns, a value outside the
 * column's domain) is refused.  A subject whose value is missing fails every
 * comparison on it (so "not COL = v" holds for it).
 *
 * Errors (CG_ERR_FORMAT from rule_parse, CG_ERR_POLICY from rule_bind) say
 * "rule: offset N: reason", N the byte offset (from 0) of the token at fault.
 * Limits: RULE_TEXT_MAX bytes, RULE_NODES_MAX nodes, RULE_DEPTH_MAX nesting.
 *
 * The canonical form (rule_canon) prints the parsed rule with one space
 * between tokens, the fewest parentheses that keep its tree, every string
 * value quoted and int thresholds as numbers; its SHA-256 is the rule hash
 * of the audit events (the same for the same rule however it is spaced).  Owned by the
 * caller of rule_parse; rule_free releases everything.
 */
#ifndef CG_RULE_H
#define CG_RULE_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"
#include "gateway/join.h"

#define RULE_TEXT_MAX 4096
#define RULE_NODES_MAX 256
#define RULE_DEPTH_MAX 32

struct rule;

int rule_parse(const char *text, size_t len, struct rule **out, struct cg_err *err) CG_MUST_CHECK CG_NONNULL(1, 3);
void rule_free(struct rule *r);

/* Resolve every column against cols (join_columns' output, kept by the caller while the rule is used). */
int rule_bind(struct rule *r, const struct join_col *cols, size_t ncols, struct cg_err *err)
    CG_MUST_CHECK CG_NONNULL(1, 2);

/* Does the subject with these two payloads belong?  1 or 0.  The rule must be bound. */
int rule_eval(const struct rule *r, Crossgate__RecordPayload *const pl[2]) CG_NONNULL(1, 2);

/* The canonical form into out (truncated at size; returns the full length, as snprintf). */
size_t rule_canon(const struct rule *r, char *out, size_t size) CG_NONNULL(1);
/* SHA-256 of the canonical form, in hex (65 bytes with the NUL). */
void rule_hash_hex(const struct rule *r, char out[65]) CG_NONNULL(1, 2);

#endif
