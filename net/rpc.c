/* rpc.c - see rpc.h */
#include "net/rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "proto/frame.h"

int
rpc_read_frame(struct tls_conn *c, size_t max, unsigned char **buf, size_t *cap, size_t *len,
    int64_t first_deadline, uint32_t read_ms, struct cg_err *err)
{
	unsigned char hdr[FRAME_HDR_LEN], *nb;
	const unsigned char *payload;
	size_t got = 0, n = 0, used;
	int64_t deadline;
	int r;

	*len = 0;
	if ((r = tls_read(c, hdr, 1, first_deadline, &got, err)) != 0)
		return r == CG_ERR_INCOMPLETE && got == 0 ? 0 : r;
	deadline = tls_now_ms() + read_ms;
	if ((r = tls_read(c, hdr + 1, FRAME_HDR_LEN - 1, deadline, NULL, err)) != 0)
		return r;
	/* frame_parse checks the length against max before we allocate anything. */
	r = frame_parse(hdr, FRAME_HDR_LEN, max, &payload, &n, &used, err);
	if (r == CG_ERR_LIMIT) {
		n = ((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) | ((size_t)hdr[2] << 8) | hdr[3];
		return cg_err_set(err, CG_ERR_LIMIT, "frame of %zu bytes is over the limit of %zu bytes", n, max);
	}
	if (r != 0 && r != CG_ERR_INCOMPLETE)
		return r;
	n = ((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) | ((size_t)hdr[2] << 8) | hdr[3];
	if (n > *cap) {
		if ((nb = realloc(*buf, n)) == NULL)
			return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
		*buf = nb;
		*cap = n;
	}
	if (n > 0 && (r = tls_read(c, *buf, n, deadline, NULL, err)) != 0)
		return r;
	*len = n;
	return 1;
}

int
rpc_write_msg(struct tls_conn *c, const ProtobufCMessage *msg, int64_t deadline, struct cg_err *err)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	unsigned char stackbuf[4096], *b = stackbuf;
	int r;

	if (n > FRAME_MAX)
		return cg_err_set(err, CG_ERR_LIMIT, "message of %zu bytes is too large for a frame", n);
	if (n + FRAME_HDR_LEN > sizeof(stackbuf) && (b = malloc(n + FRAME_HDR_LEN)) == NULL)
		return cg_err_set(err, CG_ERR_NOMEM, "out of memory");
	frame_header(n, b);
	protobuf_c_message_pack(msg, b + FRAME_HDR_LEN);
	r = tls_write(c, b, n + FRAME_HDR_LEN, deadline, err);
	if (b != stackbuf)
		free(b);
	return r;
}

int
rpc_name_ok(const char *s)
{
	size_t i, len = strlen(s);

	if (len == 0 || len > RPC_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

/*
 * Printable ASCII; with `note`, signed-note text instead: valid UTF-8 (the
 * signature lines start with an em dash) without control characters other
 * than newlines.
 */
static int
rpc_text_ok(const char *s, size_t max, int note)
{
	size_t i, len = strlen(s);

	if (len > max || (note && !utf8_valid((const unsigned char *)s, len)))
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch == '\n' || ch >= 0x80) && note)
			continue;
		if (ch < 0x20 || ch > 0x7e)
			return 0;
	}
	return 1;
}

const char *
rpc_op_name(const Crossgate__Request *req)
{
	switch (req->op_case) {
	case CROSSGATE__REQUEST__OP_PUSH: return "push";
	case CROSSGATE__REQUEST__OP_EXPORT: return "export";
	case CROSSGATE__REQUEST__OP_AUDIT_FETCH: return "audit_fetch";
	case CROSSGATE__REQUEST__OP_STATS: return "stats";
	case CROSSGATE__REQUEST__OP_AUDIT_COSIGN: return "audit_cosign";
	case CROSSGATE__REQUEST__OP_QUERY: return "query";
	case CROSSGATE__REQUEST__OP_AUDIT_CONSISTENCY: return "audit_consistency";
	case CROSSGATE__REQUEST__OP_AUDIENCE_FETCH: return "audience_fetch";
	case CROSSGATE__REQUEST__OP_AUDIENCE_CREATE: return "audience_create";
	default: return "unknown";
	}
}

/* A query's names and numbers are checked here; what they mean, against the policy, by query.c. */
static int
rpc_query_check(const Crossgate__QueryRequest *q, struct cg_err *err)
{
	size_t i;

	if (!rpc_name_ok(q->purpose))
		return cg_err_set(err, CG_ERR_FORMAT, "request: query purpose must be [a-z0-9_-]{1,%d}", RPC_NAME_MAX);
	if ((q->left[0] != '\0' && !rpc_name_ok(q->left)) || (q->right[0] != '\0' && !rpc_name_ok(q->right)) ||
	    ((q->left[0] == '\0') != (q->right[0] == '\0')))
		return cg_err_set(err, CG_ERR_FORMAT, "request: query needs both partner ids or neither, each "
		    "[a-z0-9_-]{1,%d}", RPC_NAME_MAX);
	if (q->model[0] != '\0') {
		/* model statistics (gateway/model.h): their own fields, and none of an aggregate's */
		if (!rpc_name_ok(q->model) || q->n_model_cols == 0 || q->n_model_cols > RPC_QUERY_GROUP_MAX ||
		    q->n_group_by != 0 || q->n_metrics != 0 || q->epsilon[0] != '\0' || q->buckets != 0 ||
		    !rpc_text_ok(q->model_y, 200, 0) || !rpc_text_ok(q->rho, 32, 0))
			return cg_err_set(err, CG_ERR_FORMAT, "request: a model query needs 1 to %d columns and no "
			    "aggregate fields", RPC_QUERY_GROUP_MAX);
		for (i = 0; i < q->n_model_cols; i++)
			if (q->model_cols[i][0] == '\0' || !rpc_text_ok(q->model_cols[i], 200, 0))
				return cg_err_set(err, CG_ERR_FORMAT, "request: model column %zu is not a column name", i);
		return 0;
	}
	if (q->n_group_by > RPC_QUERY_GROUP_MAX || q->n_metrics == 0 || q->n_metrics > RPC_QUERY_METRIC_MAX)
		return cg_err_set(err, CG_ERR_FORMAT, "request: a query needs 1 to %d metrics and at most %d group "
		    "columns", RPC_QUERY_METRIC_MAX, RPC_QUERY_GROUP_MAX);
	for (i = 0; i < q->n_group_by; i++)
		if (q->group_by[i][0] == '\0' || !rpc_text_ok(q->group_by[i], 200, 0))
			return cg_err_set(err, CG_ERR_FORMAT, "request: query group column %zu is not a column name", i);
	for (i = 0; i < q->n_metrics; i++)
		if (q->metrics[i][0] == '\0' || !rpc_text_ok(q->metrics[i], 220, 0))
			return cg_err_set(err, CG_ERR_FORMAT, "request: query metric %zu is not a metric", i);
	if (!rpc_text_ok(q->rho, 32, 0) || !rpc_text_ok(q->epsilon, 32, 0))
		return cg_err_set(err, CG_ERR_FORMAT, "request: query rho and epsilon are decimals");
	return 0;
}

int
rpc_request_parse(const unsigned char *buf, size_t len, Crossgate__Request **out, struct cg_err *err)
{
	Crossgate__Request *q;
	int r = CG_ERR_FORMAT;

	*out = NULL;
	if (buf == NULL && len != 0)
		return cg_err_set(err, CG_ERR_ARG, "request: no buffer");
	if ((q = crossgate__request__unpack(NULL, len, buf)) == NULL)
		return cg_err_set(err, CG_ERR_FORMAT, "request: not a valid Request message");
	if (q->version != RPC_VERSION) {
		cg_err_set(err, CG_ERR_FORMAT, "request: protocol version %u is not supported (want %d)",
		    q->version, RPC_VERSION);
		goto out;
	}
	switch (q->op_case) {
	case CROSSGATE__REQUEST__OP_PUSH:
		if (q->push->size == 0) {
			cg_err_set(err, CG_ERR_FORMAT, "request: push of 0 bytes");
			goto out;
		}
		break;
	case CROSSGATE__REQUEST__OP_EXPORT:
		if (!rpc_name_ok(q->export->purpose)) {
			cg_err_set(err, CG_ERR_FORMAT, "request: export purpose must be [a-z0-9_-]{1,%d}",
			    RPC_NAME_MAX);
			goto out;
		}
		if ((q->export->left[0] != '\0' && !rpc_name_ok(q->export->left)) ||
		    (q->export->right[0] != '\0' && !rpc_name_ok(q->export->right)) ||
		    ((q->export->left[0] == '\0') != (q->export->right[0] == '\0'))) {
			cg_err_set(err, CG_ERR_FORMAT, "request: export needs both partner ids or neither, "
			    "each [a-z0-9_-]{1,%d}", RPC_NAME_MAX);
			goto out;
		}
		break;
	case CROSSGATE__REQUEST__OP_QUERY:
		if (rpc_query_check(q->query, err) != 0)
			goto out;
		break;
	case CROSSGATE__REQUEST__OP_AUDIT_FETCH:
	case CROSSGATE__REQUEST__OP_STATS:
	case CROSSGATE__REQUEST__OP_AUDIENCE_FETCH:
		break;
	case CROSSGATE__REQUEST__OP_AUDIENCE_CREATE: {
		const Crossgate__AudienceCreateRequest *ac = q->audience_create;

		int seg = ac->segment_csv.len > 0;

		if (!rpc_name_ok(ac->name) || (ac->rule[0] == '\0') != seg || !rpc_text_ok(ac->rule, RPC_RULE_MAX, 0) ||
		    (seg && (ac->segment_csv.len > RPC_SEGMENT_MAX || ac->segment_meta.len == 0 ||
		    ac->segment_meta.len > RPC_SEGMENT_MAX || ac->cluster < 1 || ac->cluster > 16)) ||
		    (!seg && (ac->segment_meta.len > 0 || ac->cluster != 0)) ||
		    !rpc_text_ok(ac->rho, 32, 0) || (ac->left[0] != '\0' && !rpc_name_ok(ac->left)) ||
		    (ac->right[0] != '\0' && !rpc_name_ok(ac->right)) || ((ac->left[0] == '\0') != (ac->right[0] == '\0'))) {
			cg_err_set(err, CG_ERR_FORMAT, "request: audience_create needs a name [a-z0-9_-]{1,%d}, a rule of "
			    "printable ASCII (at most %d bytes) or a segment (CSV and sidecar of at most %d bytes each, a "
			    "cluster 1..16), and both partner ids or neither", RPC_NAME_MAX, RPC_RULE_MAX, RPC_SEGMENT_MAX);
			goto out;
		}
		break;
	}
	case CROSSGATE__REQUEST__OP_AUDIT_CONSISTENCY:
		if (q->audit_consistency->old_size == 0 || (q->audit_consistency->new_size != 0 &&
		    q->audit_consistency->new_size < q->audit_consistency->old_size)) {
			cg_err_set(err, CG_ERR_FORMAT, "request: audit_consistency needs 0 < old_size <= new_size "
			    "(new_size 0: the latest)");
			goto out;
		}
		break;
	case CROSSGATE__REQUEST__OP_AUDIT_COSIGN:
		if (q->audit_cosign->size == 0 || q->audit_cosign->witness_key[0] == '\0' ||
		    !rpc_text_ok(q->audit_cosign->witness_key, RPC_WITNESS_MAX, 0) ||
		    q->audit_cosign->line[0] == '\0' || !rpc_text_ok(q->audit_cosign->line, RPC_COSIG_LINE_MAX, 1)) {
			cg_err_set(err, CG_ERR_FORMAT, "request: audit_cosign needs a size, a witness key (printable, "
			    "at most %d bytes) and a cosignature line (at most %d bytes)", RPC_WITNESS_MAX,
			    RPC_COSIG_LINE_MAX);
			goto out;
		}
		break;
	default:
		cg_err_set(err, CG_ERR_FORMAT, "request: no known operation");
		goto out;
	}
	*out = q;
	q = NULL;   /* transferred */
	r = 0;
out:
	if (q != NULL)
		crossgate__request__free_unpacked(q, NULL);
	return r;
}

int
rpc_response_parse(const unsigned char *buf, size_t len, Crossgate__Response **out, struct cg_err *err)
{
	Crossgate__Response *p;
	int r = CG_ERR_FORMAT;

	*out = NULL;
	if (buf == NULL && len != 0)
		return cg_err_set(err, CG_ERR_ARG, "response: no buffer");
	if ((p = crossgate__response__unpack(NULL, len, buf)) == NULL)
		return cg_err_set(err, CG_ERR_FORMAT, "response: not a valid Response message");
	switch (p->result_case) {
	case CROSSGATE__RESPONSE__RESULT_ERROR:
		/* The message is printed by clients: keep a hostile server from writing escapes to a terminal. */
		if (!rpc_text_ok(p->error->code, RPC_NAME_MAX, 0) ||
		    !rpc_text_ok(p->error->message, RPC_MESSAGE_MAX, 0) ||
		    !rpc_text_ok(p->error->operation, RPC_NAME_MAX, 0)) {
			cg_err_set(err, CG_ERR_FORMAT, "response: error text is not printable ASCII within limits");
			goto out;
		}
		break;
	case CROSSGATE__RESPONSE__RESULT_PUSH:
		if (p->push->status != CROSSGATE__PUSH_STATUS__PUSH_STATUS_COMMITTED &&
		    p->push->status != CROSSGATE__PUSH_STATUS__PUSH_STATUS_DUPLICATE) {
			cg_err_set(err, CG_ERR_FORMAT, "response: unknown push status %d", (int)p->push->status);
			goto out;
		}
		if ((p->push->batch_id.len != 0 && p->push->batch_id.len != 16) ||
		    (p->push->digest.len != 0 && p->push->digest.len != 32) ||
		    (p->push->partner[0] != '\0' && !rpc_name_ok(p->push->partner))) {
			cg_err_set(err, CG_ERR_FORMAT, "response: malformed push result");
			goto out;
		}
		break;
	case CROSSGATE__RESPONSE__RESULT_EXPORT:
		if (p->export->purpose[0] != '\0' && !rpc_name_ok(p->export->purpose)) {
			cg_err_set(err, CG_ERR_FORMAT, "response: malformed export result");
			goto out;
		}
		break;
	case CROSSGATE__RESPONSE__RESULT_CHUNK:
		if (p->chunk->data.len > RPC_CHUNK_MAX) {
			r = cg_err_set(err, CG_ERR_LIMIT, "response: chunk of %zu bytes is over %d", p->chunk->data.len,
			    RPC_CHUNK_MAX);
			goto out;
		}
		break;
	case CROSSGATE__RESPONSE__RESULT_QUERY:
		if (p->query->charged_nano < 0 || p->query->remaining_nano < 0 ||
		    !rpc_text_ok(p->query->meta_json, 64 * 1024, 1)) {
			cg_err_set(err, CG_ERR_FORMAT, "response: malformed query result");
			goto out;
		}
		break;
	case CROSSGATE__RESPONSE__RESULT_AUDIT_FETCH:
		break;
	case CROSSGATE__RESPONSE__RESULT_AUDIT_CONSISTENCY:
		if (p->audit_consistency->proof.len == 0 || p->audit_consistency->proof.len > RPC_PROOF_MAX) {
			r = cg_err_set(err, CG_ERR_LIMIT, "response: a consistency proof of %zu bytes (1 to %d)",
			    p->audit_consistency->proof.len, RPC_PROOF_MAX);
			goto out;
		}
		break;
	case CROSSGATE__RESPONSE__RESULT_AUDIT_RECORD:
		/* An erased event comes as its leaf hash and the later event that erased it; nothing else does. */
		if (p->audit_record->event.len > RPC_EVENT_MAX ||
		    !rpc_text_ok(p->audit_record->checkpoint, RPC_CHECKPOINT_MAX, 1) ||
		    p->audit_record->seq == UINT64_MAX ||
		    (p->audit_record->erased ? p->audit_record->event.len != 0 || p->audit_record->leaf_hash.len != 32 ||
		    p->audit_record->erased_by <= p->audit_record->seq :
		    p->audit_record->leaf_hash.len != 0 || p->audit_record->erased_by != 0)) {
			cg_err_set(err, CG_ERR_FORMAT, "response: malformed audit record");
			goto out;
		}
		break;
	case CROSSGATE__RESPONSE__RESULT_AUDIT_COSIGNATURE:
		if (p->audit_cosignature->size == 0 || p->audit_cosignature->witness[0] == '\0' ||
		    !rpc_text_ok(p->audit_cosignature->witness, RPC_WITNESS_MAX, 0) ||
		    !rpc_text_ok(p->audit_cosignature->line, RPC_COSIG_LINE_MAX, 1)) {
			cg_err_set(err, CG_ERR_FORMAT, "response: malformed audit cosignature");
			goto out;
		}
		break;
	case CROSSGATE__RESPONSE__RESULT_AUDIT_COSIGN:
		if (!rpc_text_ok(p->audit_cosign->witness, RPC_WITNESS_MAX, 0)) {
			cg_err_set(err, CG_ERR_FORMAT, "response: malformed audit cosign result");
			goto out;
		}
		break;
	case CROSSGATE__RESPONSE__RESULT_AUDIENCE_CREATE: {
		const Crossgate__AudienceCreateResult *ac = p->audience_create;
		size_t i;

		if (!rpc_name_ok(ac->name) || strlen(ac->id) != 32 || strspn(ac->id, "0123456789abcdef") != 32 ||
		    strlen(ac->rule_sha256) != 64 || strspn(ac->rule_sha256, "0123456789abcdef") != 64 ||
		    ac->charged_nano < 0 || ac->remaining_nano < 0 || ac->n_recipients > 2) {
			cg_err_set(err, CG_ERR_FORMAT, "response: malformed audience result");
			goto out;
		}
		for (i = 0; i < ac->n_recipients; i++)
			if (!rpc_name_ok(ac->recipients[i])) {
				cg_err_set(err, CG_ERR_FORMAT, "response: malformed audience result");
				goto out;
			}
		break;
	}
	case CROSSGATE__RESPONSE__RESULT_AUDIENCE_FETCH:
		if (!rpc_name_ok(p->audience_fetch->partner)) {
			cg_err_set(err, CG_ERR_FORMAT, "response: malformed audience fetch result");
			goto out;
		}
		break;
	case CROSSGATE__RESPONSE__RESULT_AUDIENCE_DELIVERY:
		if (strlen(p->audience_delivery->id) != 32 || strspn(p->audience_delivery->id, "0123456789abcdef") != 32 ||
		    !rpc_name_ok(p->audience_delivery->audience) || p->audience_delivery->size == 0 ||
		    p->audience_delivery->size > RPC_DELIVERY_MAX) {
			cg_err_set(err, CG_ERR_FORMAT, "response: malformed audience delivery");
			goto out;
		}
		break;
	case CROSSGATE__RESPONSE__RESULT_STATS: {
		size_t i;
		if (!rpc_name_ok(p->stats->partner) || p->stats->n_purposes > 32) {
			cg_err_set(err, CG_ERR_FORMAT, "response: malformed stats result");
			goto out;
		}
		for (i = 0; i < p->stats->n_purposes; i++) {
			if (!rpc_name_ok(p->stats->purposes[i]->purpose)) {
				cg_err_set(err, CG_ERR_FORMAT, "response: malformed stats result");
				goto out;
			}
		}
		break;
	}
	default:
		cg_err_set(err, CG_ERR_FORMAT, "response: no known result");
		goto out;
	}
	*out = p;
	p = NULL;   /* transferred */
	r = 0;
out:
	if (p != NULL)
		crossgate__response__free_unpacked(p, NULL);
	return r;
}

int
rpc_send_error(struct tls_conn *c, const char *code, const char *operation, const char *message, int keep_open,
    int64_t deadline, struct cg_err *err)
{
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT;
	Crossgate__Error e = CROSSGATE__ERROR__INIT;
	char msg[RPC_MESSAGE_MAX + 1];
	size_t i;

	/* Only printable ASCII goes out, whatever produced the message. */
	snprintf(msg, sizeof(msg), "%s", message);
	for (i = 0; msg[i] != '\0'; i++)
		if ((unsigned char)msg[i] < 0x20 || (unsigned char)msg[i] > 0x7e)
			msg[i] = '?';
	e.code = (char *)code;
	e.operation = (char *)operation;
	e.message = msg;
	e.keep_open = keep_open != 0;
	resp.result_case = CROSSGATE__RESPONSE__RESULT_ERROR;
	resp.error = &e;
	return rpc_write_msg(c, &resp.base, deadline, err);
}
