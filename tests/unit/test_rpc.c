/* test_rpc.c - checked decoding of the network protocol's messages */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgtest.h"
#include "net/rpc.h"

static unsigned char buf[70000];

static size_t
pack_req(Crossgate__Request *r)
{
	return crossgate__request__pack(r, buf);
}

static size_t
pack_resp(Crossgate__Response *r)
{
	return crossgate__response__pack(r, buf);
}

int
main(void)
{
	Crossgate__Request req = CROSSGATE__REQUEST__INIT, *q = NULL;
	Crossgate__PushRequest pr = CROSSGATE__PUSH_REQUEST__INIT;
	Crossgate__ExportRequest er = CROSSGATE__EXPORT_REQUEST__INIT;
	Crossgate__AuditFetchRequest fr = CROSSGATE__AUDIT_FETCH_REQUEST__INIT;
	Crossgate__Response resp = CROSSGATE__RESPONSE__INIT, *p = NULL;
	Crossgate__Error e = CROSSGATE__ERROR__INIT;
	Crossgate__PushResult pres = CROSSGATE__PUSH_RESULT__INIT;
	Crossgate__Chunk ch = CROSSGATE__CHUNK__INIT;
	Crossgate__AuditRecord ar = CROSSGATE__AUDIT_RECORD__INIT;
	struct cg_err err;
	static unsigned char big[RPC_CHUNK_MAX + 1];
	size_t n;

	/* push */
	req.version = 1;
	req.op_case = CROSSGATE__REQUEST__OP_PUSH;
	req.push = &pr;
	pr.size = 1234;
	n = pack_req(&req);
	CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), 0);
	CHECK(q != NULL && q->op_case == CROSSGATE__REQUEST__OP_PUSH && q->push->size == 1234);
	CHECK_STR(rpc_op_name(q), "push");
	crossgate__request__free_unpacked(q, NULL);
	pr.size = 0;
	n = pack_req(&req);
	CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "push of 0 bytes");
	CHECK(q == NULL);
	pr.size = 1;
	req.version = 2;
	n = pack_req(&req);
	CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "protocol version 2 is not supported (want 1)");
	req.version = 1;

	/* export */
	req.op_case = CROSSGATE__REQUEST__OP_EXPORT;
	req.export = &er;
	er.purpose = "analytics";
	n = pack_req(&req);
	CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), 0);
	CHECK_STR(q != NULL ? q->export->purpose : NULL, "analytics");
	crossgate__request__free_unpacked(q, NULL);
	er.purpose = "Analytics; DROP";
	n = pack_req(&req);
	CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "export purpose must be [a-z0-9_-]");
	er.purpose = "";
	n = pack_req(&req);
	CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);
	er.purpose = "analytics";
	er.left = "k";
	n = pack_req(&req);
	CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "both partner ids or neither");
	er.right = "g";
	n = pack_req(&req);
	CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), 0);
	crossgate__request__free_unpacked(q, NULL);

	/* audience_create: a rule or a segment (its two files and a cluster), exactly one of them */
	{
		Crossgate__AudienceCreateRequest ac = CROSSGATE__AUDIENCE_CREATE_REQUEST__INIT;
		static unsigned char csv[RPC_SEGMENT_MAX + 1], meta[] = "{}";

		req.op_case = CROSSGATE__REQUEST__OP_AUDIENCE_CREATE;
		req.audience_create = &ac;
		ac.name = "seg";
		ac.rule = "g_watch >= 1";
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), 0);
		crossgate__request__free_unpacked(q, NULL);
		ac.segment_csv.data = csv;
		ac.segment_csv.len = 10;
		ac.segment_meta.data = meta;
		ac.segment_meta.len = 2;
		ac.cluster = 2;
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);     /* both */
		CHECK_CONTAINS(err.msg, "a rule of printable ASCII (at most 4096 bytes) or a segment");
		ac.rule = "";
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), 0);
		CHECK(q != NULL && q->audience_create->cluster == 2 && q->audience_create->segment_csv.len == 10);
		crossgate__request__free_unpacked(q, NULL);
		ac.cluster = 0;
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);     /* no cluster */
		ac.cluster = 17;
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);
		ac.cluster = 1;
		ac.segment_csv.len = RPC_SEGMENT_MAX + 1;
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);     /* too large */
		ac.segment_csv.len = 10;
		ac.segment_meta.len = 0;
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);     /* no sidecar */
		ac.segment_csv.len = 0;
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);     /* neither, a stray cluster */
		ac.cluster = 0;
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);     /* neither */
	}

	/* query: names and numbers checked here, their meaning by query.c */
	{
		Crossgate__QueryRequest qr = CROSSGATE__QUERY_REQUEST__INIT;
		char *groups[] = { "region", "k_top_course_category" }, *metrics[] = { "count", "sum:k_spend" };
		char *bad_metric[] = { "count\n" }, *many[RPC_QUERY_METRIC_MAX + 1];
		size_t i;

		for (i = 0; i < RPC_QUERY_METRIC_MAX + 1; i++)
			many[i] = "count";
		req.op_case = CROSSGATE__REQUEST__OP_QUERY;
		req.query = &qr;
		qr.purpose = "analytics";
		qr.group_by = groups;
		qr.n_group_by = 2;
		qr.metrics = metrics;
		qr.n_metrics = 2;
		qr.rho = "0.5";
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), 0);
		CHECK(q != NULL && q->query->n_metrics == 2 && q->query->n_group_by == 2);
		CHECK_STR(q != NULL ? rpc_op_name(q) : NULL, "query");
		crossgate__request__free_unpacked(q, NULL);
		qr.n_metrics = 0;
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);
		CHECK_CONTAINS(err.msg, "a query needs 1 to 16 metrics");
		qr.metrics = many;
		qr.n_metrics = RPC_QUERY_METRIC_MAX + 1;
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);
		qr.metrics = bad_metric;
		qr.n_metrics = 1;
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);
		CHECK_CONTAINS(err.msg, "query metric 0 is not a metric");
		qr.metrics = metrics;
		qr.n_metrics = 2;
		qr.left = "k";
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);
		CHECK_CONTAINS(err.msg, "query needs both partner ids or neither");
		qr.left = "";
		qr.purpose = "Bad Purpose";
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);
		CHECK_CONTAINS(err.msg, "query purpose must be");
		qr.purpose = "analytics";
	}

	/* a model query (gateway/model.h): its own fields, and none of an aggregate's */
	{
		Crossgate__QueryRequest qr = CROSSGATE__QUERY_REQUEST__INIT;
		char *cols[] = { "k_spend", "g_watch" }, *metrics[] = { "count" }, *bad_col[] = { "k_spend\n" };

		req.op_case = CROSSGATE__REQUEST__OP_QUERY;
		req.query = &qr;
		qr.purpose = "analytics";
		qr.model = "ridge";
		qr.model_cols = cols;
		qr.n_model_cols = 2;
		qr.model_y = "k_conv";
		qr.rho = "0.7";
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), 0);
		CHECK(q != NULL && q->query->n_model_cols == 2 && strcmp(q->query->model_y, "k_conv") == 0);
		crossgate__request__free_unpacked(q, NULL);
		qr.metrics = metrics;
		qr.n_metrics = 1;
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);
		CHECK_CONTAINS(err.msg, "a model query needs 1 to 8 columns and no aggregate fields");
		qr.n_metrics = 0;
		qr.n_model_cols = 0;
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);
		CHECK_CONTAINS(err.msg, "a model query needs 1 to 8 columns");
		qr.model_cols = bad_col;
		qr.n_model_cols = 1;
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);
		CHECK_CONTAINS(err.msg, "model column 0 is not a column name");
		qr.model_cols = cols;
		qr.model_y = "k_conv\n";
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);
		qr.model_y = "";
		qr.model = "Bad Model";
		n = pack_req(&req);
		CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);
	}

	/* audit fetch, no operation, garbage, empty */
	req.op_case = CROSSGATE__REQUEST__OP_AUDIT_FETCH;
	req.audit_fetch = &fr;
	fr.from = 7;
	n = pack_req(&req);
	CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), 0);
	CHECK(q != NULL && q->audit_fetch->from == 7);
	CHECK_STR(rpc_op_name(q), "audit_fetch");
	crossgate__request__free_unpacked(q, NULL);
	req.op_case = CROSSGATE__REQUEST__OP__NOT_SET;
	n = pack_req(&req);
	CHECK_EQ_INT(rpc_request_parse(buf, n, &q, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "no known operation");
	CHECK_EQ_INT(rpc_request_parse((const unsigned char *)"\xff\xff\xff", 3, &q, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "not a valid Request message");
	CHECK_EQ_INT(rpc_request_parse((const unsigned char *)"", 0, &q, &err), CG_ERR_FORMAT);
	CHECK_EQ_INT(rpc_request_parse(NULL, 5, &q, &err), CG_ERR_ARG);
	/* a field of an unknown number is skipped, as protobuf says; the version still counts */
	CHECK_EQ_INT(rpc_request_parse((const unsigned char *)"\x08\x01\x22\x00\x78\x05", 6, &q, &err), 0);
	crossgate__request__free_unpacked(q, NULL);

	/* responses */
	resp.result_case = CROSSGATE__RESPONSE__RESULT_ERROR;
	resp.error = &e;
	e.code = "refused";
	e.operation = "export";
	e.message = "principal 'k-agent' may not export";
	n = pack_resp(&resp);
	CHECK_EQ_INT(rpc_response_parse(buf, n, &p, &err), 0);
	CHECK_STR(p != NULL ? p->error->message : NULL, "principal 'k-agent' may not export");
	crossgate__response__free_unpacked(p, NULL);
	e.message = "evil \x1b[2J terminal";
	n = pack_resp(&resp);
	CHECK_EQ_INT(rpc_response_parse(buf, n, &p, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "error text is not printable ASCII");

	resp.result_case = CROSSGATE__RESPONSE__RESULT_PUSH;
	resp.push = &pres;
	pres.status = CROSSGATE__PUSH_STATUS__PUSH_STATUS_COMMITTED;
	pres.records = 10;
	pres.partner = "k";
	n = pack_resp(&resp);
	CHECK_EQ_INT(rpc_response_parse(buf, n, &p, &err), 0);
	crossgate__response__free_unpacked(p, NULL);
	pres.status = 7;
	n = pack_resp(&resp);
	CHECK_EQ_INT(rpc_response_parse(buf, n, &p, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "unknown push status 7");
	pres.status = CROSSGATE__PUSH_STATUS__PUSH_STATUS_DUPLICATE;
	pres.batch_id.data = big;
	pres.batch_id.len = 15;
	n = pack_resp(&resp);
	CHECK_EQ_INT(rpc_response_parse(buf, n, &p, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "malformed push result");

	resp.result_case = CROSSGATE__RESPONSE__RESULT_CHUNK;
	resp.chunk = &ch;
	ch.data.data = big;
	ch.data.len = RPC_CHUNK_MAX;
	n = pack_resp(&resp);
	CHECK_EQ_INT(rpc_response_parse(buf, n, &p, &err), 0);
	crossgate__response__free_unpacked(p, NULL);
	ch.data.len = RPC_CHUNK_MAX + 1;
	n = pack_resp(&resp);
	CHECK_EQ_INT(rpc_response_parse(buf, n, &p, &err), CG_ERR_LIMIT);
	CHECK_CONTAINS(err.msg, "chunk of 65537 bytes is over 65536");

	resp.result_case = CROSSGATE__RESPONSE__RESULT_AUDIT_RECORD;
	resp.audit_record = &ar;
	ar.seq = 3;
	ar.checkpoint = "crossgate/gateway/0011223344556677\n4\nAAAA\n\n\xe2\x80\x94 crossgate/gateway/x sig\n";
	n = pack_resp(&resp);
	CHECK_EQ_INT(rpc_response_parse(buf, n, &p, &err), 0);
	crossgate__response__free_unpacked(p, NULL);
	ar.checkpoint = "bad utf-8 \xe2\x80\n";
	n = pack_resp(&resp);
	CHECK_EQ_INT(rpc_response_parse(buf, n, &p, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "malformed audit record");
	ar.checkpoint = "tab\there";
	n = pack_resp(&resp);
	CHECK_EQ_INT(rpc_response_parse(buf, n, &p, &err), CG_ERR_FORMAT);

	resp.result_case = CROSSGATE__RESPONSE__RESULT__NOT_SET;
	n = pack_resp(&resp);
	CHECK_EQ_INT(rpc_response_parse(buf, n, &p, &err), CG_ERR_FORMAT);
	CHECK_CONTAINS(err.msg, "no known result");
	CHECK_EQ_INT(rpc_response_parse((const unsigned char *)"\x0a\xff", 2, &p, &err), CG_ERR_FORMAT);

	/* names */
	CHECK(rpc_name_ok("analytics"));
	CHECK(rpc_name_ok("a-b_c9"));
	CHECK(!rpc_name_ok(""));
	CHECK(!rpc_name_ok("UPPER"));
	CHECK(!rpc_name_ok("0123456789012345678901234567890123"));
	CGT_DONE();
}
