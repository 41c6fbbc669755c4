/* cli_audit.c - crossgate audit: verify, checkpoint, prove, verify-proof, witnesses, show, erase */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <sodium.h>

#include "net/client.h"
#include "base/escape.h"
#include "base/outfile.h"
#include "cli/cli.h"
#include "cli/cliopt.h"
#include "crypto/keyfile.h"
#include "audit/note.h"
#include "audit/audit.h"
#include "audit/consistency.h"
#include "store/store.h"

#define AUDIT_WITNESS_MAX 32

/* ---- helpers ----------------------------------------------------------------- */

/* Read a whole file of at most max bytes, NUL-terminated; 0 or -1 (printed), or ENOENT's -2 if quiet_missing. */
static int
audit_read(const char *what, const char *path, size_t max, char **out, size_t *out_len, int quiet_missing)
{
	FILE *f;
	char *buf = NULL;
	size_t n;

	*out = NULL;
	*out_len = 0;
	if ((f = fopen(path, "rb")) == NULL) {
		if (quiet_missing && errno == ENOENT)
			return -2;
		cli_error("cannot read %s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if ((buf = malloc(max + 2)) == NULL) {
		fclose(f);
		cli_error("out of memory");
		return -1;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f)) {
		cli_error("cannot read %s %s: %s", what, path, strerror(errno));
		goto fail;
	}
	if (n > max) {
		cli_error("%s %s is larger than %zu bytes", what, path, max);
		goto fail;
	}
	fclose(f);
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	return 0;
fail:
	fclose(f);
	free(buf);
	return -1;
}

/* Written to a temporary file, fsynced and renamed: a reader sees the old or the new file, never half. */
static int
audit_write(const char *what, const char *path, const void *data, size_t len)
{
	struct cg_err err;

	if (outfile_write(path, data, len, 0644, &err) != 0) {
		cli_error("cannot write %s: %s", what, err.msg);
		return -1;
	}
	return 0;
}

static int
audit_open_db(const char *db, struct store **st)
{
	struct cg_err err;
	struct stat sb;

	*st = NULL;
	if (stat(db, &sb) != 0) {
		cli_error("cannot open database %s: %s", db, strerror(errno));
		return -1;
	}
	cg_err_clear(&err);
	if (store_open(db, 0, st, &err) != 0) {
		cli_error("%s", err.msg);
		return -1;
	}
	return 0;
}

static int
audit_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static void
audit_hex(const unsigned char *b, size_t len, char *out, size_t out_size)
{
	if (len * 2 + 1 > out_size)
		len = (out_size - 1) / 2;
	sodium_bin2hex(out, out_size, b, len);
}

/* ---- show ------------------------------------------------------------------ */

struct show_arg {
	FILE *out;
	int jsonl;
	int filtered;
	int64_t since;
	const char *type, *actor;
	uint64_t shown;
	int failed;
};

/*
 * Event strings come from the network and from batch headers (partner ids,
 * reasons quoting field names): shown escaped (base/escape.h) in both
 * formats, so that no event can drive the terminal or forge a line.
 */
static json_t *
show_str(const char *s)
{
	char *e = escape_text_dup(s);
	json_t *j = e != NULL ? json_string(e) : NULL;

	free(e);
	return j;
}

static json_t *
show_json(uint64_t seq, const Crossgate__AuditEvent *e)
{
	json_t *o = json_object(), *c;
	char t[AUDIT_TIME_MAX], hex[2 * 64 + 1];
	size_t i;

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "seq", json_integer((json_int_t)seq));
	if (e == NULL) {
		json_object_set_new(o, "erased", json_true());
		return o;
	}
	audit_format_time(e->time, t);
	json_object_set_new(o, "time", json_string(t));
	json_object_set_new(o, "time_unix", json_integer(e->time));
	json_object_set_new(o, "actor", show_str(e->actor));
	json_object_set_new(o, "action", show_str(e->action));
	json_object_set_new(o, "outcome", show_str(e->outcome));
	if (e->purpose[0])
		json_object_set_new(o, "purpose", show_str(e->purpose));
	if (e->partner_id[0])
		json_object_set_new(o, "partner", show_str(e->partner_id));
	if (e->reason[0])
		json_object_set_new(o, "reason", show_str(e->reason));
	if (e->k)
		json_object_set_new(o, "k", json_integer(e->k));
	if (e->n_counts > 0) {
		c = json_object();
		for (i = 0; i < e->n_counts; i++) {
			char *key = escape_text_dup(e->counts[i]->key);

			if (key != NULL)
				json_object_set_new(c, key, json_integer((json_int_t)e->counts[i]->value));
			free(key);
		}
		json_object_set_new(o, "counts", c);
	}
	if (e->policy_hash.len) {
		audit_hex(e->policy_hash.data, e->policy_hash.len, hex, sizeof(hex));
		json_object_set_new(o, "policy_hash", json_string(hex));
	}
	if (e->batch_id.len) {
		audit_hex(e->batch_id.data, e->batch_id.len, hex, sizeof(hex));
		json_object_set_new(o, "batch_id", json_string(hex));
	}
	if (e->batch_digest.len) {
		audit_hex(e->batch_digest.data, e->batch_digest.len, hex, sizeof(hex));
		json_object_set_new(o, "batch_digest", json_string(hex));
	}
	if (e->n_key_ids > 0) {
		c = json_array();
		for (i = 0; i < e->n_key_ids; i++)
			json_array_append_new(c, show_str(e->key_ids[i]));
		json_object_set_new(o, "key_ids", c);
	}
	if (e->n_public_keys > 0) {
		c = json_array();
		for (i = 0; i < e->n_public_keys; i++)
			json_array_append_new(c, show_str(e->public_keys[i]));
		json_object_set_new(o, "public_keys", c);
	}
	return o;
}

/* The escape of an event string for a table cell ("-" if empty); freed by show_row. */
static char *
show_cell(const char *s, const char *empty)
{
	return escape_text_dup(s[0] ? s : empty);
}

static void
show_row(FILE *out, uint64_t seq, const Crossgate__AuditEvent *e)
{
	char t[AUDIT_TIME_MAX], policy[13] = "-", counts[256] = "", *p = counts, key[64];
	char *actor, *action, *outcome, *purpose, *partner, *reason;
	size_t i, left = sizeof(counts);
	int n;

	if (e == NULL) {
		fprintf(out, "%-20s %8" PRIu64 "  (erased: payload removed for retention; leaf hash kept)\n", "-", seq);
		return;
	}
	for (i = 0; i < e->n_counts && left > 1; i++) {
		escape_text(key, sizeof(key), e->counts[i]->key);
		n = snprintf(p, left, "%s%s=%" PRIu64, i ? "," : "", key, e->counts[i]->value);
		if (n < 0 || (size_t)n >= left)
			break;
		p += n;
		left -= (size_t)n;
	}
	if (e->policy_hash.len)
		audit_hex(e->policy_hash.data, e->policy_hash.len, policy, sizeof(policy));
	audit_format_time(e->time, t);
	actor = show_cell(e->actor, "-");
	action = show_cell(e->action, "-");
	outcome = show_cell(e->outcome, "-");
	purpose = show_cell(e->purpose, "-");
	partner = show_cell(e->partner_id, "-");
	reason = show_cell(e->reason, "");
	if (actor != NULL && action != NULL && outcome != NULL && purpose != NULL && partner != NULL && reason != NULL)
		fprintf(out, "%-20s %8" PRIu64 "  %-10s %-18s %-9s %-10s %-28s %-12s %-10s %s\n", t, seq, actor, action,
		    outcome, purpose, counts[0] ? counts : "-", policy, partner, reason);
	else
		fprintf(out, "%-20s %8" PRIu64 "  (out of memory)\n", t, seq);
	free(actor);
	free(action);
	free(outcome);
	free(purpose);
	free(partner);
	free(reason);
}

/*
 * What a third party needs to recompute the tree (docs/PROTOCOL.md §9.9): the
 * leaf hash as stored (an erased event's stands for it), the event bytes, the
 * erasing event, and the signed checkpoint the event closes.
 */
static int
show_json_leaf(json_t *o, const struct audit_record *rec)
{
	char hex[2 * MERKLE_HASH_LEN + 1], *b64 = NULL;
	size_t n = sodium_base64_ENCODED_LEN(rec->len, sodium_base64_VARIANT_ORIGINAL);
	int r = 0;

	audit_hex(rec->leaf, MERKLE_HASH_LEN, hex, sizeof(hex));
	if ((b64 = malloc(n)) == NULL)
		return -1;
	sodium_bin2base64(b64, n, rec->event, rec->len, sodium_base64_VARIANT_ORIGINAL);
	if (json_object_set_new(o, "leaf_hash", json_string(hex)) != 0 ||
	    (!rec->erased && json_object_set_new(o, "event", json_string(b64)) != 0) ||
	    (rec->erased && json_object_set_new(o, "erased_by", json_integer((json_int_t)rec->erased_by)) != 0) ||
	    (rec->checkpoint != NULL && json_object_set_new(o, "checkpoint", json_string(rec->checkpoint)) != 0))
		r = -1;
	free(b64);
	return r;
}

static int
show_cb(const struct audit_record *rec, void *arg)
{
	struct show_arg *s = arg;
	Crossgate__AuditEvent *e = NULL;
	uint64_t seq = rec->seq;
	const unsigned char *event = rec->event;
	size_t len = rec->len;
	int erased = rec->erased;

	if (!erased) {
		if ((e = crossgate__audit_event__unpack(NULL, len, event)) == NULL) {
			cli_error("event %" PRIu64 " is not a valid audit event; run 'crossgate audit verify'", seq);
			s->failed = 1;
			return 1;
		}
		if (e->time < s->since || (s->type && strcmp(e->action, s->type) != 0) ||
		    (s->actor && strcmp(e->actor, s->actor) != 0)) {
			crossgate__audit_event__free_unpacked(e, NULL);
			return 0;
		}
	} else if (s->filtered)
		return 0;
	if (s->jsonl) {
		json_t *o = show_json(seq, e);
		char *line = o && show_json_leaf(o, rec) == 0 ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

		if (line == NULL) {
			cli_error("out of memory");
			s->failed = 1;
			json_decref(o);
			crossgate__audit_event__free_unpacked(e, NULL);
			return 1;
		}
		fprintf(s->out, "%s\n", line);
		free(line);
		json_decref(o);
	} else
		show_row(s->out, seq, e);
	s->shown++;
	if (e != NULL)
		crossgate__audit_event__free_unpacked(e, NULL);
	return 0;
}

static const char show_usage[] =
	"crossgate audit show --db DB [--since TIME] [--type ACTION] [--actor ACTOR] [--format table|jsonl]";
static const char show_help[] =
	"Print the audit trail, oldest first: time (ISO 8601 UTC), seq, actor, action,\n"
	"outcome, purpose, counts, policy hash (first 12 hex digits), partner, reason.\n"
	"--format jsonl prints one JSON object per event (full hashes, key ids) for\n"
	"SIEM tools, with what recomputes the tree: leaf_hash (hex), event (the\n"
	"stored event bytes, base64), erased_by for an erased event, and checkpoint\n"
	"(the signed note) on the event that closes one (docs/PROTOCOL.md §9).\n"
	"TIME is YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or unix seconds;\n"
	"filters keep events at or after --since, with action --type, by --actor.\n"
	"Erased events show as such (unless a filter is given).  Events hold no\n"
	"identifier, token or feature value.  This reads; it does not verify (see\n"
	"'crossgate audit verify').\n";

static int
audit_show_cmd(int argc, char **argv, struct cli_ctx *ctx)
{
	struct show_arg sa;
	struct store *st = NULL;
	struct cg_err err;
	const char *db = NULL, *since = NULL, *format = "table";
	const struct cliopt opts[] = { CLIOPT_REQ("db", &db), CLIOPT_STR("since", &since), CLIOPT_STR("type", &sa.type),
		CLIOPT_STR("actor", &sa.actor), CLIOPT_STR("format", &format), CLIOPT_END };
	int r = 1;

	memset(&sa, 0, sizeof(sa));
	sa.out = ctx->out ? ctx->out : stdout;
	sa.since = INT64_MIN;
	if (cliopt_parse(argc, argv, show_usage, show_help, opts, NULL, &r))
		return r;
	r = 1;
	if (strcmp(format, "jsonl") == 0)
		sa.jsonl = 1;
	else if (strcmp(format, "table") != 0)
		return cli_usage(show_usage, "--format must be table or jsonl");
	cg_err_clear(&err);
	if (since != NULL && audit_parse_time(since, &sa.since, &err) != 0)
		return cli_usage(show_usage, err.msg);
	sa.filtered = since != NULL || sa.type != NULL || sa.actor != NULL;
	if (audit_open_db(db, &st) != 0)
		goto out;
	if (!sa.jsonl)
		fprintf(sa.out, "%-20s %8s  %-10s %-18s %-9s %-10s %-28s %-12s %-10s %s\n", "time", "seq", "actor",
		    "action", "outcome", "purpose", "counts", "policy", "partner", "reason");
	if (audit_iter(st, 0, show_cb, &sa, &err) != 0 || sa.failed) {
		if (!sa.failed)
			cli_error("%s", err.msg);
		goto out;
	}
	r = 0;
out:
	store_close(st);
	return r;
}

/* ---- verify ------------------------------------------------------------------ */

static const char verify_usage[] =
	"crossgate audit verify --db DB --pub GATEWAY_SIGN_PUB [--since SAVED_CHECKPOINT]\n"
	"       [--witness NAME+KEYID+KEY ... --quorum N] [--record-key GATEWAY_SIGN_KEY]";
static const char verify_help[] =
	"Recompute the audit log's Merkle tree (RFC 6962) from the stored events and\n"
	"check every signed checkpoint with the gateway's public key.  Exit 1, naming\n"
	"the first bad event or checkpoint, if anything was changed, removed,\n"
	"reordered or inserted.  Erased events are checked by their stored leaf\n"
	"hashes, and each must be accounted for by a logged audit-erase event.\n"
	"Needs nothing secret.\n"
	"\n"
	"--since FILE  a checkpoint saved earlier ('crossgate audit checkpoint'): its\n"
	"              signature is checked, then that the current log extends it\n"
	"              (RFC 6962 consistency proof).  This catches a log that was\n"
	"              truncated or rewritten and re-signed with the real key.\n"
	"--witness K   a witness's verifier key (as 'crossgate audit witness-keygen'\n"
	"              prints it); repeatable.  With --quorum N, the latest checkpoint\n"
	"              cosigned by at least N of them must exist; every stored\n"
	"              cosignature by a named witness must verify.  Events after it\n"
	"              are reported as not yet witnessed.\n"
	"--record-key  the gateway's signing key: the outcome is appended to the log.\n";

static int
audit_verify_cmd(int argc, char **argv, struct cli_ctx *ctx)
{
	static struct audit_witness wit[AUDIT_WITNESS_MAX];
	const char *db = NULL, *pubp = NULL, *recp = NULL, *sincep = NULL, *quorump = NULL, *witv[AUDIT_WITNESS_MAX];
	struct cliopt_list wits = { witv, 0, AUDIT_WITNESS_MAX };
	const struct cliopt opts[] = { CLIOPT_REQ("db", &db), CLIOPT_REQ("pub", &pubp), CLIOPT_STR("since", &sincep),
		CLIOPT_LIST("witness", &wits), CLIOPT_STR("quorum", &quorump), CLIOPT_STR("record-key", &recp), CLIOPT_END };
	struct keyfile_key *pub = NULL, *rec = NULL;
	struct store *st = NULL;
	struct audit *a = NULL;
	struct checkpoint saved;
	struct cg_err err, logerr;
	char *saved_note = NULL;
	size_t saved_len, n_wit = 0, got = 0;
	uint64_t quorum = 0, wsize = 0;
	int r = 1, vr;

	if (cliopt_parse(argc, argv, verify_usage, verify_help, opts, NULL, &r))
		return r;
	r = 1;
	for (n_wit = 0; n_wit < wits.n; n_wit++) {
		cg_err_clear(&err);
		if (note_parse_cosig_key(witv[n_wit], wit[n_wit].name, wit[n_wit].pub, &err) != 0)
			return cli_usage(verify_usage, err.msg);
	}
	if (quorump != NULL && (audit_parse_u64(quorump, &quorum) != 0 || quorum == 0))
		return cli_usage(verify_usage, "--quorum must be a positive number");
	if ((quorump != NULL) != (n_wit > 0))
		return cli_usage(verify_usage, "--witness and --quorum go together");
	if (quorum > n_wit)
		return cli_usage(verify_usage, "--quorum exceeds the number of --witness keys");
	if (cli_load_key(pubp, KEYFILE_ED25519_PUBLIC, &pub) != 0)
		goto out;
	if (recp != NULL && cli_load_key(recp, KEYFILE_ED25519_SECRET, &rec) != 0)
		goto out;
	cg_err_clear(&err);
	if (sincep != NULL && audit_read("saved checkpoint", sincep, NOTE_MAX, &saved_note, &saved_len, 0) != 0)
		goto out;
	if (audit_open_db(db, &st) != 0)
		goto out;
	vr = audit_verify(st, pub, &ctx->audit, &err);
	/* The saved checkpoint is checked with the key in force at its size: verify found the rotations. */
	if (vr == 0 && sincep != NULL) {
		size_t tl;

		if (audit_keychain_check(&ctx->audit.keys, saved_note, saved_len, &saved, &tl, &err) != 0) {
			cli_error("saved checkpoint %s: %s", sincep, err.msg);
			goto out;
		}
		vr = audit_verify_extends(st, &saved, &ctx->audit, &err);
	}
	if (vr == 0 && n_wit > 0)
		vr = audit_verify_witnesses(st, pub, wit, n_wit, (size_t)quorum, &wsize, &got, &err);
	ctx->audit_ok = vr == 0;
	if (vr != 0)
		cli_error("audit log verification FAILED: %s", err.msg);
	else if (ctx->out) {
		fprintf(ctx->out, "audit log ok: %llu events, %llu signed checkpoints; latest checkpoint:\n%s",
		    (unsigned long long)ctx->audit.events, (unsigned long long)ctx->audit.checkpoints,
		    ctx->audit.latest_checkpoint);
		if (ctx->audit.erased > 0)
			fprintf(ctx->out, "erased: %llu events (payloads removed for retention; checked by their "
			    "leaf hashes)\n", (unsigned long long)ctx->audit.erased);
		if (ctx->audit.kept > 0)
			fprintf(ctx->out, "kept: %llu events erased at the gateway after this copy was made\n",
			    (unsigned long long)ctx->audit.kept);
		if (ctx->audit.keys.n > 1) {
			size_t i;
			char hex[2 * KEYFILE_ID_LEN + 1];

			for (i = 1; i < ctx->audit.keys.n; i++) {
				keyfile_id_hex(ctx->audit.keys.keys[i].id, hex);
				fprintf(ctx->out, "key rotation: event %llu hands over to signing key %s (verified under "
				    "the key before it)\n", (unsigned long long)(ctx->audit.keys.keys[i].from - 1), hex);
			}
		}
		if (sincep != NULL)
			fprintf(ctx->out, "consistent: the log extends the saved checkpoint at size %llu (%llu events "
			    "since)\n", (unsigned long long)saved.size,
			    (unsigned long long)(ctx->audit.events - saved.size));
		if (n_wit > 0)
			fprintf(ctx->out, "witnessed: the checkpoint at size %llu is cosigned by %zu of the %zu named "
			    "witnesses (quorum %llu); %llu events since are not yet witnessed\n",
			    (unsigned long long)wsize, got, n_wit, (unsigned long long)quorum,
			    (unsigned long long)(ctx->audit.events - wsize));
	}
	if (rec != NULL) {
		Crossgate__AuditEvent ev;
		Crossgate__AuditEvent__CountsEntry ce, *cep = &ce;

		cg_err_clear(&logerr);
		crossgate__audit_event__init(&ev);
		ev.actor = (char *)"auditor";
		ev.action = (char *)"audit-verify";
		ev.outcome = (char *)(vr == 0 ? "ok" : "failed");
		if (vr != 0)
			ev.reason = err.msg;
		crossgate__audit_event__counts_entry__init(&ce);
		ce.key = (char *)"events";
		ce.value = ctx->audit.events;
		ev.counts = &cep;
		ev.n_counts = 1;
		if (audit_open(st, rec, &a, &logerr) != 0 || audit_log(a, &ev, &logerr) != 0) {
			cli_error("cannot record the verification: %s", logerr.msg);
			goto out;
		}
	}
	r = vr == 0 ? 0 : 1;
out:
	free(saved_note);
	audit_free(a);
	store_close(st);
	keyfile_free(pub);
	keyfile_free(rec);
	return r;
}

/* ---- checkpoint ---------------------------------------------------------------- */

static const char checkpoint_usage[] = "crossgate audit checkpoint --db DB --out FILE";
static const char checkpoint_help[] =
	"Save the log's latest signed checkpoint (a C2SP signed note, with any witness\n"
	"cosignatures the gateway stores for it) to FILE.  An auditor keeps it and later\n"
	"runs 'crossgate audit verify --since FILE' to prove the log only grew since.\n";

static int
audit_checkpoint_cmd(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *db = NULL, *outp = NULL;
	const struct cliopt opts[] = { CLIOPT_REQ("db", &db), CLIOPT_REQ("out", &outp), CLIOPT_END };
	struct store *st = NULL;
	struct cg_err err;
	char *note = NULL;
	uint64_t size;
	int r = 1;

	if (cliopt_parse(argc, argv, checkpoint_usage, checkpoint_help, opts, NULL, &r))
		return r;
	r = 1;
	if (audit_open_db(db, &st) != 0)
		goto out;
	cg_err_clear(&err);
	if (audit_latest_checkpoint(st, 1, &note, &size, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (audit_write("checkpoint", outp, note, strlen(note)) != 0)
		goto out;
	if (ctx->out)
		fprintf(ctx->out, "saved the checkpoint at size %llu to %s\n", (unsigned long long)size, outp);
	r = 0;
out:
	free(note);
	store_close(st);
	return r;
}

/* ---- prove / verify-proof -------------------------------------------------------- */

static const char prove_usage[] = "crossgate audit prove --db DB --event N --out FILE\n"
	"       crossgate audit prove --db DB --consistency OLD [--to NEW] --out FILE";
static const char prove_help[] =
	"Write a self-contained inclusion proof of event N (its seq): the event bytes,\n"
	"its index, the RFC 6962 audit path from the stored tree, and the latest signed\n"
	"checkpoint (with its cosignatures).  Anyone with the gateway's public key checks\n"
	"it offline with 'crossgate audit verify-proof FILE --pub KEY'.  Format:\n"
	"crossgate.audit.InclusionProof (proto/audit.proto).\n"
	"\n"
	"--consistency OLD writes a consistency proof instead: the signed checkpoints of\n"
	"tree sizes OLD and NEW (default: the latest) and the RFC 6962 proof that the\n"
	"newer tree extends the older one, so that an auditor who kept the checkpoint\n"
	"of size OLD checks the new one without any event (crossgate.audit.\n"
	"ConsistencyProof; docs/PROTOCOL.md section 9.6).  Both sizes need a checkpoint\n"
	"of their own (events appended together share the last one's).\n";

static int
audit_prove_cmd(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *db = NULL, *outp = NULL, *evp = NULL, *oldp = NULL, *top = NULL;
	const struct cliopt opts[] = { CLIOPT_REQ("db", &db), CLIOPT_STR("event", &evp), CLIOPT_STR("consistency", &oldp),
		CLIOPT_STR("to", &top), CLIOPT_STR("out", &outp), CLIOPT_END };
	struct store *st = NULL;
	struct cg_err err;
	unsigned char *buf = NULL;
	size_t len;
	uint64_t index = 0, old_size = 0, new_size = 0;
	int r = 1;

	if (cliopt_parse(argc, argv, prove_usage, prove_help, opts, NULL, &r))
		return r;
	r = 1;
	if ((evp == NULL) == (oldp == NULL)) return cli_usage(prove_usage, "give --event or --consistency (one of them)");
	if (top != NULL && oldp == NULL) return cli_usage(prove_usage, "--to goes with --consistency");
	if (outp == NULL) return cli_missing(prove_usage, "--out");
	if (evp != NULL && audit_parse_u64(evp, &index) != 0)
		return cli_usage(prove_usage, "--event must be an event number (seq)");
	if (oldp != NULL && (audit_parse_u64(oldp, &old_size) != 0 || old_size == 0 ||
	    (top != NULL && (audit_parse_u64(top, &new_size) != 0 || new_size < old_size))))
		return cli_usage(prove_usage, "--consistency and --to must be tree sizes, 0 < OLD <= NEW");
	if (audit_open_db(db, &st) != 0)
		goto out;
	cg_err_clear(&err);
	if ((oldp != NULL ? consistency_prove(st, old_size, new_size, &buf, &len, &err) :
	    audit_prove(st, index, &buf, &len, &err)) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (audit_write("proof", outp, buf, len) != 0)
		goto out;
	if (ctx->out && oldp != NULL)
		fprintf(ctx->out, "wrote the consistency proof from tree size %llu to %s to %s (%zu bytes)\n",
		    (unsigned long long)old_size, top != NULL ? top : "the latest", outp, len);
	else if (ctx->out)
		fprintf(ctx->out, "wrote the inclusion proof of event %llu to %s (%zu bytes)\n",
		    (unsigned long long)index, outp, len);
	r = 0;
out:
	free(buf);
	store_close(st);
	return r;
}

static const char vproof_usage[] = "crossgate audit verify-proof FILE --pub GATEWAY_SIGN_PUB [--since SAVED_CHECKPOINT]";
static const char vproof_help[] =
	"Check an inclusion proof file offline with only the gateway's public key: the\n"
	"checkpoint's signature and form, the event's leaf hash and seq, and the audit\n"
	"path to the signed root.  Exit 1, saying which, on any mismatch.  Prints the\n"
	"proven event.  A consistency proof file (audit prove --consistency) is checked\n"
	"the same way: both checkpoints' signatures, then that the newer tree extends\n"
	"the older one; with --since (a checkpoint saved with 'audit checkpoint'), the\n"
	"older one must also be the saved one, size and root: a log rewritten and\n"
	"re-signed since the checkpoint was saved is caught.\n";

/*
 * A consistency proof starts from the checkpoint the auditor saved: same size,
 * same root (a saved checkpoint of a rotated log needs 'audit verify --since').
 */
static int
vproof_since(const char *path, const struct keyfile_key *pub, const struct checkpoint *older)
{
	struct checkpoint saved;
	struct cg_err err;
	char *note = NULL;
	size_t len;
	int r = 1;

	if (audit_read("checkpoint", path, NOTE_MAX, &note, &len, 0) != 0)
		return 1;
	cg_err_clear(&err);
	if (audit_checkpoint_check(note, len, pub, &saved, &err) != 0)
		cli_error("%s: the saved checkpoint does not verify: %s", path, err.msg);
	else if (saved.size != older->size || sodium_memcmp(saved.root, older->root, sizeof(saved.root)) != 0)
		cli_error("proof verification FAILED: the proof starts from a tree of %llu events that is not the saved "
		    "checkpoint's (%llu events, %s): the log was rewritten since it was saved",
		    (unsigned long long)older->size, (unsigned long long)saved.size, path);
	else
		r = 0;
	free(note);
	return r;
}

static int
audit_verify_proof_cmd(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *pubp = NULL, *file, *sincep = NULL;
	const struct cliopt opts[] = { CLIOPT_STR("pub", &pubp), CLIOPT_STR("since", &sincep), CLIOPT_END };
	struct keyfile_key *pub = NULL;
	struct audit_proof *p = NULL;
	struct checkpoint cp;
	struct cg_err err;
	char *buf = NULL;
	size_t len;
	int r = 1, argi;

	if (cliopt_parse(argc, argv, vproof_usage, vproof_help, opts, &argi, &r))
		return r;
	r = 1;
	if (argi + 1 != argc) return cli_usage(vproof_usage, "expected one proof FILE");
	file = argv[argi];
	if (pubp == NULL) return cli_missing(vproof_usage, "--pub");
	if (cli_load_key(pubp, KEYFILE_ED25519_PUBLIC, &pub) != 0)
		goto out;
	if (audit_read("proof", file, AUDIT_PROOF_MAX, &buf, &len, 0) != 0)
		goto out;
	cg_err_clear(&err);
	if (consistency_is_file((unsigned char *)buf, len)) {
		struct checkpoint older;

		if (consistency_verify((unsigned char *)buf, len, pub, &older, &cp, &err) != 0) {
			cli_error("%s: proof verification FAILED: %s", file, err.msg);
			goto out;
		}
		if (sincep != NULL && vproof_since(sincep, pub, &older) != 0)
			goto out;
		if (ctx->out)
			fprintf(ctx->out, "proof ok: the log %s of %llu events extends its tree of %llu events (both "
			    "roots signed by the gateway key)\n", cp.origin, (unsigned long long)cp.size,
			    (unsigned long long)older.size);
		r = 0;
		goto out;
	}
	if (sincep != NULL) {
		cli_error("%s: --since goes with a consistency proof file, not an inclusion proof", file);
		goto out;
	}
	if (audit_proof_parse((unsigned char *)buf, len, &p, &err) != 0 || audit_proof_verify(p, pub, &cp, &err) != 0) {
		cli_error("%s: proof verification FAILED: %s", file, err.msg);
		goto out;
	}
	if (ctx->out) {
		fprintf(ctx->out, "proof ok: event %llu is in the log %s of %llu events (root signed by the "
		    "gateway key)\n", (unsigned long long)p->index, cp.origin, (unsigned long long)cp.size);
		if (p->erased)
			fprintf(ctx->out, "the event's payload was erased for retention: proven by its leaf hash\n");
		else {
			Crossgate__AuditEvent *e = crossgate__audit_event__unpack(NULL, p->event_len, p->event);

			if (e != NULL) {
				show_row(ctx->out, p->index, e);
				crossgate__audit_event__free_unpacked(e, NULL);
			}
		}
	}
	r = 0;
out:
	audit_proof_free(p);
	free(buf);
	keyfile_free(pub);
	return r;
}

/* ---- vkey ----------------------------------------------------------------------- */

static const char vkey_usage[] = "crossgate audit vkey --pub GATEWAY_SIGN_PUB [--key ROTATED_SIGN_PUB]";
static const char vkey_help[] =
	"Print the gateway's C2SP verifier key (NAME+KEYID+BASE64), for note and\n"
	"checkpoint tools outside crossgate.  --pub is the log's first signing key,\n"
	"whose origin names every signature; --key, a key a rotation brought in\n"
	"since (default: the first key itself).  docs/PROTOCOL.md section 9.3.\n";

static int
audit_vkey_cmd(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *pubp = NULL, *keyp = NULL;
	const struct cliopt opts[] = { CLIOPT_REQ("pub", &pubp), CLIOPT_STR("key", &keyp), CLIOPT_END };
	struct keyfile_key *first = NULL, *key = NULL;
	char origin[AUDIT_ORIGIN_MAX], vkey[NOTE_NAME_MAX + 80];
	int r = 1;

	if (cliopt_parse(argc, argv, vkey_usage, vkey_help, opts, NULL, &r))
		return r;
	r = 1;
	if (cli_load_key(pubp, KEYFILE_ED25519_PUBLIC, &first) != 0 ||
	    (keyp != NULL && cli_load_key(keyp, KEYFILE_ED25519_PUBLIC, &key) != 0))
		goto out;
	audit_origin(first->id, origin);
	if (note_format_verifier_key(origin, (key != NULL ? key : first)->pub, vkey, sizeof(vkey)) != 0) {
		cli_error("cannot format the verifier key");
		goto out;
	}
	fprintf(ctx->out ? ctx->out : stdout, "%s\n", vkey);
	r = 0;
out:
	keyfile_free(first);
	keyfile_free(key);
	return r;
}

/* ---- witnesses ---------------------------------------------------------------- */

static const char wkeygen_usage[] = "crossgate audit witness-keygen --name NAME --dir DIR [--force]";
static const char wkeygen_help[] =
	"Make a witness's Ed25519 key pair: DIR/witness.key (secret, 0600),\n"
	"DIR/witness.pub, and DIR/witness.vkey, the verifier key line\n"
	"NAME+KEYID+KEY (C2SP tlog-cosignature, type 0x04) that auditors pass to\n"
	"'crossgate audit verify --witness'.  NAME is a schema-less URL-like name,\n"
	"e.g. witness.example.org/auditor1.\n";

static int
audit_wkeygen_cmd(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *name = NULL, *dir = NULL;
	struct keyfile_key *k = NULL, *pub = NULL;
	struct cg_err err;
	char path[4096], vkey[NOTE_NAME_MAX + 80], comment[NOTE_NAME_MAX + 40];
	int r = 1, force = 0;
	const struct cliopt opts[] = { CLIOPT_REQ("name", &name), CLIOPT_REQ("dir", &dir), CLIOPT_FLAG("force", &force),
		CLIOPT_END };

	if (cliopt_parse(argc, argv, wkeygen_usage, wkeygen_help, opts, NULL, &r))
		return r;
	r = 1;
	cg_err_clear(&err);
	if (keyfile_generate(KEYFILE_ED25519_SECRET, &k, &err) != 0 || keyfile_public_of(k, &pub, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (note_format_cosig_key(name, pub->pub, vkey, sizeof(vkey)) != 0) {
		cli_usage(wkeygen_usage, "--name must be non-empty, at most 128 bytes, without spaces or '+'");
		r = CLI_USAGE;
		goto out;
	}
	if (cli_mkdir(dir, 0700) != 0)
		goto out;
	snprintf(comment, sizeof(comment), "crossgate witness %s", name);
	snprintf(path, sizeof(path), "%s/witness.key", dir);
	if (keyfile_write(path, k, comment, force, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/witness.pub", dir);
	if (keyfile_write(path, pub, comment, force, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/witness.vkey", dir);
	{
		char line[sizeof(vkey) + 1];

		snprintf(line, sizeof(line), "%s\n", vkey);
		if (!force && access(path, F_OK) == 0) {
			cli_error("%s exists (use --force to replace it)", path);
			goto out;
		}
		if (audit_write("verifier key", path, line, strlen(line)) != 0)
			goto out;
	}
	if (ctx->out)
		fprintf(ctx->out, "witness key for %s in %s; verifier key:\n%s\n", name, dir, vkey);
	r = 0;
out:
	keyfile_free(k);
	keyfile_free(pub);
	return r;
}

static const char cosign_usage[] =
	"crossgate audit cosign --db DB --pub GATEWAY_SIGN_PUB --key WITNESS_KEY --name NAME --state FILE";
static const char cosign_help[] =
	"Act as a witness (C2SP tlog-cosignature, cosignature/v1): check the gateway's\n"
	"latest checkpoint with its public key, prove from the stored tree that it is\n"
	"consistent with the checkpoint this witness last cosigned (kept in the state\n"
	"FILE; none the first time), cosign it, store the cosignature in the gateway's\n"
	"database (which serves it with the checkpoint) and update FILE.  Exit 1, and\n"
	"nothing is cosigned, if the log was rolled back or rewritten since.\n";

static int
audit_cosign_cmd(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *db = NULL, *pubp = NULL, *keyp = NULL, *name = NULL, *statep = NULL;
	const struct cliopt opts[] = { CLIOPT_REQ("db", &db), CLIOPT_REQ("pub", &pubp), CLIOPT_REQ("key", &keyp),
		CLIOPT_REQ("name", &name), CLIOPT_REQ("state", &statep), CLIOPT_END };
	struct keyfile_key *pub = NULL, *wk = NULL;
	struct store *st = NULL;
	struct cg_err err;
	char *prev = NULL, *state = NULL;
	size_t prev_len = 0;
	uint64_t size;
	int r = 1, rr;

	if (cliopt_parse(argc, argv, cosign_usage, cosign_help, opts, NULL, &r))
		return r;
	r = 1;
	if (cli_load_key(pubp, KEYFILE_ED25519_PUBLIC, &pub) != 0 || cli_load_key(keyp, KEYFILE_ED25519_SECRET, &wk) != 0)
		goto out;
	rr = audit_read("witness state", statep, NOTE_MAX, &prev, &prev_len, 1);
	if (rr == -1)
		goto out;
	if (audit_open_db(db, &st) != 0)
		goto out;
	cg_err_clear(&err);
	if (audit_cosign(st, pub, wk, name, prev, prev_len, (uint64_t)time(NULL), &state, &size, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (audit_write("witness state", statep, state, strlen(state)) != 0)
		goto out;
	if (ctx->out)
		fprintf(ctx->out, "cosigned the checkpoint at size %llu as %s; state saved to %s\n",
		    (unsigned long long)size, name, statep);
	r = 0;
out:
	free(prev);
	free(state);
	store_close(st);
	keyfile_free(pub);
	keyfile_free(wk);
	return r;
}

static const char witness_usage[] =
	"crossgate audit witness " CLI_CLIENT_USAGE "\n"
	"       --copy LOCAL.db --pub GATEWAY_SIGN_PUB --witness-key WITNESS_KEY --name NAME --state FILE";
static const char witness_help[] =
	"Act as a witness over the network, with an auditor's certificate: extend the\n"
	"local copy LOCAL.db from the gateway ('audit fetch'), verify it with the\n"
	"gateway's public key, cosign its latest checkpoint after proving it consistent\n"
	"with the one this witness last cosigned (state FILE), and submit the\n"
	"cosignature, which the gateway checks and stores.  The state is updated only\n"
	"once the gateway accepted it.\n";

static int
audit_witness_cmd(int argc, char **argv, struct cli_ctx *ctx)
{
	struct client_opts co;
	const char *copyp = NULL, *pubp = NULL, *wkp = NULL, *name = NULL, *statep = NULL;
	const struct cliopt opts[] = { CLIOPT_CLIENT(&co), CLIOPT_REQ("copy", &copyp), CLIOPT_REQ("pub", &pubp),
		CLIOPT_REQ("witness-key", &wkp), CLIOPT_REQ("name", &name), CLIOPT_REQ("state", &statep), CLIOPT_END };
	struct keyfile_key *pub = NULL, *wk = NULL;
	struct store *st = NULL;
	struct audit_report rep;
	struct cg_err err;
	char *prev = NULL, *state = NULL, vkey[NOTE_NAME_MAX + 80], *line;
	size_t prev_len = 0, len;
	uint64_t from = 0, got = 0, remote = 0, size = 0;
	int r = 1;

	memset(&co, 0, sizeof(co));
	if (cliopt_parse(argc, argv, witness_usage, witness_help, opts, NULL, &r))
		return r;
	r = 1;
	if (cli_load_key(pubp, KEYFILE_ED25519_PUBLIC, &pub) != 0 || cli_load_key(wkp, KEYFILE_ED25519_SECRET, &wk) != 0)
		goto out;
	if (note_format_cosig_key(name, wk->pub, vkey, sizeof(vkey)) != 0) {
		r = cli_usage(witness_usage, "--name must be non-empty, at most 128 bytes, without spaces or '+'");
		goto out;
	}
	if (audit_read("witness state", statep, NOTE_MAX, &prev, &prev_len, 1) == -1)
		goto out;
	cg_err_clear(&err);
	if (store_open(copyp, STORE_OPEN_CREATE, &st, &err) != 0 || audit_stored_size(st, &from, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (cli_fetch_copy(&co, st, from, &got, &remote, &err) != 0) {
		cli_error("audit fetch failed: %s", err.msg);
		goto out;
	}
	if (audit_verify(st, pub, &rep, &err) != 0) {
		cli_error("audit log verification FAILED: %s; refusing to cosign", err.msg);
		goto out;
	}
	if (audit_cosign(st, pub, wk, name, prev, prev_len, (uint64_t)time(NULL), &state, &size, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	/* The state is the note and, last, this witness's line. */
	len = strlen(state);
	for (line = state + len - 1; line > state && line[-1] != '\n'; line--)
		;
	if (cli_submit_cosignature(&co, size, vkey, line, &err) != 0) {
		cli_error("submitting the cosignature failed: %s", err.msg);
		goto out;
	}
	if (audit_write("witness state", statep, state, len) != 0)
		goto out;
	if (ctx->out)
		fprintf(ctx->out, "%llu events fetched; the log verifies; cosigned the checkpoint at size %llu as %s "
		    "and the gateway stored it; state saved to %s\n", (unsigned long long)got, (unsigned long long)size,
		    name, statep);
	r = 0;
out:
	free(prev);
	free(state);
	store_close(st);
	keyfile_free(pub);
	keyfile_free(wk);
	return r;
}

/* ---- erase --------------------------------------------------------------------- */

static const char erase_usage[] =
	"crossgate audit erase --db DB --key GATEWAY_SIGN_KEY (--before TIME | --seq FROM-TO) [--reason TEXT]";
static const char erase_help[] =
	"Retention: erase the payloads of the events logged before TIME (YYYY-MM-DD,\n"
	"YYYY-MM-DDTHH:MM:SSZ or unix seconds) or with seq FROM to TO (inclusive).\n"
	"Their leaf hashes stay, so the tree, every checkpoint, verification and every\n"
	"proof still hold.  The erasure is itself logged (an audit-erase event with the\n"
	"count and range), audit-erase events are never erased, and verification\n"
	"refuses an erased event that no audit-erase event accounts for.\n";

static int
audit_erase_cmd(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *db = NULL, *keyp = NULL, *before = NULL, *seqs = NULL, *reason = NULL;
	const struct cliopt opts[] = { CLIOPT_REQ("db", &db), CLIOPT_REQ("key", &keyp), CLIOPT_STR("before", &before),
		CLIOPT_STR("seq", &seqs), CLIOPT_STR("reason", &reason), CLIOPT_END };
	struct keyfile_key *k = NULL;
	struct store *st = NULL;
	struct audit *a = NULL;
	struct cg_err err;
	char why[160], t[AUDIT_TIME_MAX];
	uint64_t from = 0, to = UINT64_MAX, n = 0;
	int64_t cutoff = INT64_MAX;
	int r = 1;

	if (cliopt_parse(argc, argv, erase_usage, erase_help, opts, NULL, &r))
		return r;
	r = 1;
	if ((before == NULL) == (seqs == NULL))
		return cli_usage(erase_usage, "give one of --before or --seq");
	cg_err_clear(&err);
	if (before != NULL) {
		if (audit_parse_time(before, &cutoff, &err) != 0)
			return cli_usage(erase_usage, err.msg);
		audit_format_time(cutoff, t);
		snprintf(why, sizeof(why), "retention: events before %s", t);
	} else {
		char buf[64], *dash;

		snprintf(buf, sizeof(buf), "%s", seqs);
		if ((dash = strchr(buf, '-')) == NULL)
			return cli_usage(erase_usage, "--seq must be FROM-TO");
		*dash = '\0';
		if (audit_parse_u64(buf, &from) != 0 || audit_parse_u64(dash + 1, &to) != 0 || to < from ||
		    to == UINT64_MAX)
			return cli_usage(erase_usage, "--seq must be FROM-TO with FROM <= TO");
		snprintf(why, sizeof(why), "retention: events %llu to %llu", (unsigned long long)from,
		    (unsigned long long)to);
		to++;
	}
	if (reason != NULL)
		snprintf(why, sizeof(why), "%s", reason);
	if (cli_load_key(keyp, KEYFILE_ED25519_SECRET, &k) != 0)
		goto out;
	if (audit_open_db(db, &st) != 0)
		goto out;
	if (audit_open(st, k, &a, &err) != 0 || audit_erase(a, from, to, cutoff, why, &n, &err) != 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (ctx->out) {
		if (n == 0)
			fprintf(ctx->out, "nothing to erase\n");
		else
			fprintf(ctx->out, "erased the payloads of %llu events (leaf hashes kept); logged as event %llu\n",
			    (unsigned long long)n, (unsigned long long)(audit_size(a) - 1));
	}
	r = 0;
out:
	audit_free(a);
	store_close(st);
	keyfile_free(k);
	return r;
}

/* ---- audit --------------------------------------------------------------------- */

static const struct {
	const char *name;
	int (*fn)(int, char **, struct cli_ctx *);
	const char *what;
} audit_cmds[] = {
	{ "verify", audit_verify_cmd, "recompute the tree, check every checkpoint [--since, --witness]" },
	{ "checkpoint", audit_checkpoint_cmd, "save the latest signed checkpoint (for verify --since)" },
	{ "prove", audit_prove_cmd, "write an inclusion or consistency proof file" },
	{ "verify-proof", audit_verify_proof_cmd, "check a proof file offline" },
	{ "show", audit_show_cmd, "print the trail (table or JSON lines)" },
	{ "vkey", audit_vkey_cmd, "print the gateway's C2SP verifier key" },
	{ "witness-keygen", audit_wkeygen_cmd, "make a witness key pair" },
	{ "cosign", audit_cosign_cmd, "as a witness, cosign the latest checkpoint" },
	{ "erase", audit_erase_cmd, "erase old payloads, keeping leaf hashes (retention)" },
	{ "fetch", cli_audit_fetch, "copy a gateway's log over mutual TLS for offline verify" },
	{ "witness", audit_witness_cmd, "fetch, verify, cosign and submit over mutual TLS" },
};

static void
audit_usage_all(FILE *f)
{
	size_t i;

	fprintf(f, "usage: crossgate audit COMMAND [options]   (crossgate audit COMMAND --help)\n\n");
	for (i = 0; i < sizeof(audit_cmds) / sizeof(audit_cmds[0]); i++)
		fprintf(f, "  %-15s %s\n", audit_cmds[i].name, audit_cmds[i].what);
}

int
cmd_audit(int argc, char **argv, struct cli_ctx *ctx)
{
	size_t i;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		audit_usage_all(argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_USAGE : 0;
	}
	for (i = 0; i < sizeof(audit_cmds) / sizeof(audit_cmds[0]); i++) {
		if (strcmp(argv[1], audit_cmds[i].name) == 0)
			return audit_cmds[i].fn(argc - 1, argv + 1, ctx);
	}
	cli_error("unknown audit command '%.40s'", argv[1]);
	audit_usage_all(stderr);
	return CLI_USAGE;
}
